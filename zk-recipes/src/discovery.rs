//! Service discovery with curator-x-discovery's layout (Curator 5.4): each instance of
//! a service is a node `<basePath>/<serviceName>/<instanceId>` holding the instance as
//! Curator's `JsonInstanceSerializer` writes it, so Curator's `ServiceDiscovery`,
//! `ServiceCache` and `ServiceProvider` and these read each other's registrations.
//!
//! - [`ServiceDiscovery`] registers, updates and unregisters this process's
//!   instances — ephemeral nodes kept in place, made again after a deletion and after
//!   a session expiry on a client that renews sessions — and queries the names and
//!   instances of services.
//! - [`ServiceCache`] mirrors the instances of one service (one persistent recursive
//!   watch), with a stream of additions, updates and removals.
//! - [`ServiceProvider`] picks an instance for each use: round-robin, random or sticky
//!   ([`ProviderStrategy`]), skipping disabled instances and instances its users
//!   reported failing ([`DownInstancePolicy`]).
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = zk_server::testing::TestingServer::start().await?;
//! # let client = zk_client::Client::connect(&server.connect_string()).await?;
//! use zk_recipes::discovery::{ProviderStrategy, ServiceDiscovery, ServiceInstance};
//!
//! // A service process registers itself ...
//! let discovery: ServiceDiscovery = ServiceDiscovery::new(&client, "/services");
//! let me = ServiceInstance::new("api", "host-1")
//!     .with_address("10.0.0.1")
//!     .with_port(8080)
//!     .with_payload(serde_json::json!({"zone": "eu-west"}));
//! discovery.register(me).await?;
//!
//! // ... and its clients spread their requests over the instances.
//! let provider = discovery.provider("api").strategy(ProviderStrategy::RoundRobin).build();
//! provider.start();
//! provider.ready().await;
//! if let Some(instance) = provider.instance() {
//!     let target = instance.socket_address();
//!     // ... on failure: provider.note_error(&instance), and ask again.
//! #   let _ = target;
//! }
//! provider.close().await;
//! discovery.close().await;
//! # Ok(()) }
//! ```

mod cache;
mod instance;
mod provider;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use zk_client::{Client, CreateMode, SessionState};
use zk_proto::ErrorCode;

pub use cache::{CacheEvent, ServiceCache};
pub use instance::{JsonInstanceSerializer, Payload, ServiceInstance, ServiceType};
pub use provider::{DownInstancePolicy, ProviderStrategy, ServiceProvider, ServiceProviderBuilder};

use crate::error::{Error, Result};
use crate::kept_node::{Foreign, KeptNode};
use crate::lease::client_is_over;
use crate::protected::ensure_containers;

/// How long [`ServiceDiscovery::register`] waits for the instance's node.
const REGISTER_WAIT: Duration = Duration::from_secs(30);

/// One registration: the instance and the keeper of its node.
#[derive(Debug)]
struct Registration<T> {
    instance: ServiceInstance<T>,
    mode: CreateMode,
    node: KeptNode,
}

/// Registers this process's service instances and finds everyone's, under one base
/// path (Curator's `ServiceDiscovery`). Payloads are `T` (untyped JSON by default).
///
/// Dropping it stops keeping its registrations (their nodes are deleted in the
/// background); [`ServiceDiscovery::close`] deletes them before returning.
#[derive(Debug)]
pub struct ServiceDiscovery<T = Value> {
    client: Client,
    base_path: String,
    serializer: JsonInstanceSerializer,
    registrations: tokio::sync::Mutex<BTreeMap<(String, String), Registration<T>>>,
}

/// A bad argument as a recipe error.
fn bad(what: String) -> Error {
    Error::Client(zk_client::Error::BadArguments(what))
}

/// Whether `part` can be one component of a path.
fn is_node_name(part: &str) -> bool {
    !part.is_empty() && part != "." && part != ".." && !part.contains('/')
}

impl<T: Payload> ServiceDiscovery<T> {
    /// Discovery under `base_path` (e.g. `/services`) through `client`, with Curator's
    /// default serialization.
    pub fn new(client: &Client, base_path: &str) -> ServiceDiscovery<T> {
        let base = base_path.trim_end_matches('/');
        ServiceDiscovery {
            client: client.clone(),
            base_path: base.to_string(),
            serializer: JsonInstanceSerializer::new(),
            registrations: tokio::sync::Mutex::new(BTreeMap::new()),
        }
    }

    /// Writes instances with `serializer` (for Curator readers with a typed payload
    /// class, or that use `enabled`).
    pub fn with_serializer(mut self, serializer: JsonInstanceSerializer) -> Self {
        self.serializer = serializer;
        self
    }

    /// The base path.
    pub fn base_path(&self) -> &str {
        &self.base_path
    }

    /// The client it works through.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The path of the node of instance `id` of service `name`.
    pub fn path_for(&self, name: &str, id: &str) -> String {
        format!("{}/{name}/{id}", self.base_path)
    }

    /// Registers `instance` (or, if already registered here, updates it) and waits
    /// until its node is there. A dynamic instance is an ephemeral node kept in place
    /// until unregistered: made again if deleted and after its session expires on a
    /// client that renews sessions. Static and permanent ones are persistent nodes.
    ///
    /// If the node cannot be made within 30 s (no connection), this fails but the
    /// registration stays, made as soon as it can be; [`ServiceDiscovery::unregister`]
    /// drops it.
    pub async fn register(&self, instance: ServiceInstance<T>) -> Result<()> {
        if !is_node_name(&instance.name) || !is_node_name(&instance.id) {
            return Err(bad(format!(
                "service name {:?} and instance id {:?} must be node names",
                instance.name, instance.id
            )));
        }
        let mode = match instance.service_type {
            ServiceType::Dynamic => CreateMode::Ephemeral,
            ServiceType::Static | ServiceType::Permanent => CreateMode::Persistent,
            ServiceType::DynamicSequential => {
                return Err(bad(
                    "DYNAMIC_SEQUENTIAL instances are not registered here".to_string()
                ))
            }
        };
        let data = self.serializer.serialize(&instance)?;
        let key = (instance.name.clone(), instance.id.clone());
        let path = self.path_for(&instance.name, &instance.id);
        let mut registrations = self.registrations.lock().await;
        if let Some(existing) = registrations.get_mut(&key) {
            if existing.mode == mode {
                existing.node.set_data(&data).await?;
                existing.instance = instance;
                return Ok(());
            }
        }
        if let Some(old) = registrations.remove(&key) {
            old.node.close().await;
        }
        // Parents first (containers, as Curator makes them), so the keeper's first
        // create succeeds; the keeper makes them again if they go meanwhile.
        let dir = format!("{}/{}", self.base_path, instance.name);
        if let Err(e) = ensure_containers(&self.client, &dir).await {
            tracing::debug!(error = %e, %dir, "discovery: parents not made yet");
        }
        // Another session's node at our path (ours before an expiry, or a duplicate
        // id) is waited out: it goes with its session.
        let node = KeptNode::new(&self.client, &path, mode, &data, Foreign::WaitOut);
        node.start();
        let made = self.wait_made(&node).await;
        tracing::debug!(%path, ok = made.is_ok(), "discovery: registered");
        registrations.insert(
            key,
            Registration {
                instance,
                mode,
                node,
            },
        );
        made
    }

    /// Waits for a new registration's node; why not, if it is not made in time.
    async fn wait_made(&self, node: &KeptNode) -> Result<()> {
        let mut states = self.client.state_changes();
        tokio::select! {
            made = node.wait_made(REGISTER_WAIT) => {
                if made {
                    Ok(())
                } else {
                    Err(Error::Client(zk_client::Error::ConnectionLoss))
                }
            }
            state = states.wait_for(|s| client_is_over(&self.client, s)) => {
                Err(Error::Client(match state {
                    Some(SessionState::Expired) => zk_client::Error::SessionExpired,
                    Some(SessionState::AuthFailed) => zk_client::Error::AuthFailed,
                    _ => zk_client::Error::Closed,
                }))
            }
        }
    }

    /// Changes a registered instance (its payload, address, ...): the node's data now
    /// (or, without a connection, when it is next made). Fails if the instance
    /// (`name`, `id`) is not registered here.
    pub async fn update(&self, instance: ServiceInstance<T>) -> Result<()> {
        let mut registrations = self.registrations.lock().await;
        let key = (instance.name.clone(), instance.id.clone());
        let Some(registration) = registrations.get_mut(&key) else {
            return Err(bad(format!(
                "instance {} of {} is not registered here",
                instance.id, instance.name
            )));
        };
        let data = self.serializer.serialize(&instance)?;
        registration.node.set_data(&data).await?;
        registration.instance = instance;
        Ok(())
    }

    /// Unregisters instance `id` of service `name` and deletes its node (nothing if it
    /// was not registered here).
    pub async fn unregister(&self, name: &str, id: &str) -> Result<()> {
        let removed = self
            .registrations
            .lock()
            .await
            .remove(&(name.to_string(), id.to_string()));
        let Some(registration) = removed else {
            return Ok(());
        };
        let persistent = registration.mode == CreateMode::Persistent;
        registration.node.close().await;
        // The keeper deletes the node once; make sure it went (a lost answer).
        let path = self.path_for(name, id);
        let client = &self.client;
        match client.retry(|| client.exists(&path)).await {
            Ok(Some(stat))
                if stat.ephemeral_owner == client.session_id()
                    || (persistent && stat.ephemeral_owner == 0) =>
            {
                match client.retry(|| client.delete(&path, None)).await {
                    Ok(()) => Ok(()),
                    Err(e) if e.code() == Some(ErrorCode::NoNode) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
            Ok(_) => Ok(()),
            // An ephemeral node goes with its session anyway.
            Err(e) if e.is_session_lost() && !persistent => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The instances registered here, by service name and id.
    pub async fn registered(&self) -> Vec<ServiceInstance<T>> {
        self.registrations
            .lock()
            .await
            .values()
            .map(|r| r.instance.clone())
            .collect()
    }

    /// The names of every service (registered anywhere), sorted.
    pub async fn query_for_names(&self) -> Result<Vec<String>> {
        let client = &self.client;
        match client.retry(|| client.get_children(&self.base_path)).await {
            Ok(mut names) => {
                names.sort();
                Ok(names)
            }
            Err(e) if e.code() == Some(ErrorCode::NoNode) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// Every instance of service `name`, by id. Nodes that hold no readable instance
    /// are skipped (and logged).
    pub async fn query_for_instances(&self, name: &str) -> Result<Vec<ServiceInstance<T>>> {
        let client = &self.client;
        let dir = format!("{}/{name}", self.base_path);
        let mut ids = match client.retry(|| client.get_children(&dir)).await {
            Ok(ids) => ids,
            Err(e) if e.code() == Some(ErrorCode::NoNode) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        ids.sort();
        let reads: Vec<_> = ids
            .iter()
            .map(|id| {
                let path = format!("{dir}/{id}");
                async move { (client.retry(|| client.get_data(&path)).await, path) }
            })
            .collect();
        let mut instances = Vec::new();
        for (read, path) in futures::future::join_all(reads).await {
            match read {
                Ok((data, _)) => match self.serializer.deserialize(&data) {
                    Ok(instance) => instances.push(instance),
                    Err(e) => {
                        tracing::warn!(error = %e, %path, "discovery: skipping an unreadable instance")
                    }
                },
                Err(e) if e.code() == Some(ErrorCode::NoNode) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(instances)
    }

    /// Instance `id` of service `name`, if registered (anywhere). Fails if its node
    /// holds no readable instance.
    pub async fn query_for_instance(
        &self,
        name: &str,
        id: &str,
    ) -> Result<Option<ServiceInstance<T>>> {
        let client = &self.client;
        let path = self.path_for(name, id);
        match client.retry(|| client.get_data(&path)).await {
            Ok((data, _)) => self.serializer.deserialize(&data).map(Some),
            Err(e) if e.code() == Some(ErrorCode::NoNode) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// A cache of the instances of service `name` (not started: call
    /// [`ServiceCache::start`]).
    pub fn service_cache(&self, name: &str) -> ServiceCache<T> {
        ServiceCache::new(&self.client, &self.base_path, name)
    }

    /// A builder for a provider of service `name` (round-robin and Curator's default
    /// down-instance policy unless changed).
    pub fn provider(&self, name: &str) -> ServiceProviderBuilder<T> {
        ServiceProviderBuilder::new(&self.client, &self.base_path, name)
    }

    /// Unregisters every instance registered here (deleting their nodes).
    pub async fn close(self) {
        let keys: Vec<(String, String)> = self.registrations.lock().await.keys().cloned().collect();
        for (name, id) in keys {
            if let Err(e) = self.unregister(&name, &id).await {
                tracing::debug!(error = %e, %name, %id, "discovery: unregister on close failed");
            }
        }
    }
}
