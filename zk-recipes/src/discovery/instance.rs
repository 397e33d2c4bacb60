//! [`ServiceInstance`] and its JSON form, byte for byte what curator-x-discovery 5.4's
//! `JsonInstanceSerializer` writes (in its default, compatible mode):
//!
//! ```text
//! {"name":"api","id":"j1","address":"10.0.0.5","port":8080,"sslPort":null,
//!  "payload":{"@class":"java.util.HashMap","a":"1"},"registrationTimeUTC":1700000000000,
//!  "serviceType":"DYNAMIC","uriSpec":null}
//! ```
//!
//! Every field is written, `null` when absent, in that order; `enabled` only when
//! asked ([`JsonInstanceSerializer::write_enabled`], Curator's non-compatible mode).
//! Reading ignores unknown fields and takes missing ones as Curator does (`enabled`
//! true, `serviceType` DYNAMIC, times 0). Jackson writes a payload object with its
//! Java class first (`"@class"`); that key is dropped when reading and written only
//! when a [`JsonInstanceSerializer::payload_class`] is set (Curator reads a payload
//! without it as a `LinkedHashMap`, which is what a `Map` payload class accepts).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};

/// What a payload must be: any serde type (the default is untyped JSON,
/// [`serde_json::Value`]).
pub trait Payload: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {}

impl<T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static> Payload for T {}

/// How an instance is registered (Curator's `ServiceType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServiceType {
    /// An ephemeral node: gone with the session of its registrant (which makes it
    /// again on a client that renews sessions). The usual kind.
    #[default]
    Dynamic,
    /// A persistent node, until unregistered.
    Static,
    /// A persistent node, until unregistered (Curator makes no difference either).
    Permanent,
    /// An ephemeral-sequential node (Curator only; [`super::ServiceDiscovery`] reads
    /// them but does not register them).
    DynamicSequential,
}

/// One instance of a service, as registered under `<basePath>/<name>/<id>`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceInstance<T = Value> {
    /// The service's name.
    pub name: String,
    /// This instance's id, unique within the service (its node's name).
    pub id: String,
    /// Where it is (host name or IP), if said.
    pub address: Option<String>,
    /// Its port, if any.
    pub port: Option<u16>,
    /// Its TLS port, if any.
    pub ssl_port: Option<u16>,
    /// Whatever else its clients need to know.
    pub payload: Option<T>,
    /// When it was registered (Curator's `registrationTimeUTC`, milliseconds).
    pub registration_time: SystemTime,
    /// How it is registered.
    pub service_type: ServiceType,
    /// Curator's `UriSpec` as its JSON (`{"parts":[{"value":..,"variable":..},..]}`),
    /// kept as it is.
    pub uri_spec: Option<Value>,
    /// Whether providers may hand it out (Curator's `enabled`; only written with
    /// [`JsonInstanceSerializer::write_enabled`]).
    pub enabled: bool,
}

impl<T> ServiceInstance<T> {
    /// An instance `id` of service `name`, registered now (to the millisecond, as it
    /// is written), dynamic, enabled, with nothing else said.
    pub fn new(name: &str, id: &str) -> ServiceInstance<T> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        ServiceInstance {
            name: name.to_string(),
            id: id.to_string(),
            address: None,
            port: None,
            ssl_port: None,
            payload: None,
            registration_time: time_of(now),
            service_type: ServiceType::Dynamic,
            uri_spec: None,
            enabled: true,
        }
    }

    /// With this address.
    pub fn with_address(mut self, address: &str) -> Self {
        self.address = Some(address.to_string());
        self
    }

    /// With this port.
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// With this TLS port.
    pub fn with_ssl_port(mut self, port: u16) -> Self {
        self.ssl_port = Some(port);
        self
    }

    /// With this payload.
    pub fn with_payload(mut self, payload: T) -> Self {
        self.payload = Some(payload);
        self
    }

    /// Registered as `service_type`.
    pub fn with_service_type(mut self, service_type: ServiceType) -> Self {
        self.service_type = service_type;
        self
    }

    /// With Curator's `UriSpec` JSON.
    pub fn with_uri_spec(mut self, uri_spec: Value) -> Self {
        self.uri_spec = Some(uri_spec);
        self
    }

    /// Enabled or not.
    pub fn with_enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// The registration time as Curator writes it: milliseconds since the epoch.
    pub fn registration_time_utc(&self) -> i64 {
        match self.registration_time.duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
        }
    }

    /// `address:port` (or `address:ssl_port` without a port), if both are known.
    pub fn socket_address(&self) -> Option<String> {
        let address = self.address.as_deref()?;
        let port = self.port.or(self.ssl_port)?;
        Some(format!("{address}:{port}"))
    }
}

/// Milliseconds since the epoch back to a time.
fn time_of(ms: i64) -> SystemTime {
    let magnitude = Duration::from_millis(ms.unsigned_abs());
    if ms >= 0 {
        UNIX_EPOCH + magnitude
    } else {
        UNIX_EPOCH.checked_sub(magnitude).unwrap_or(UNIX_EPOCH)
    }
}

/// Reads and writes instances as curator-x-discovery's `JsonInstanceSerializer`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JsonInstanceSerializer {
    payload_class: Option<String>,
    write_enabled: bool,
}

/// The fields in Curator's order; `Option`s are written as `null`.
#[derive(Serialize)]
struct Outgoing<'a> {
    name: &'a str,
    id: &'a str,
    address: Option<&'a str>,
    port: Option<u16>,
    #[serde(rename = "sslPort")]
    ssl_port: Option<u16>,
    payload: Option<OutgoingPayload<'a>>,
    #[serde(rename = "registrationTimeUTC")]
    registration_time_utc: i64,
    #[serde(rename = "serviceType")]
    service_type: ServiceType,
    #[serde(rename = "uriSpec")]
    uri_spec: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    enabled: Option<bool>,
}

/// A payload, with Jackson's `"@class"` first when it is an object and a class is set.
enum OutgoingPayload<'a> {
    Plain(Value),
    Tagged(&'a str, serde_json::Map<String, Value>),
}

impl Serialize for OutgoingPayload<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            OutgoingPayload::Plain(v) => v.serialize(s),
            OutgoingPayload::Tagged(class, fields) => {
                let mut map = s.serialize_map(Some(fields.len() + 1))?;
                map.serialize_entry("@class", class)?;
                for (k, v) in fields {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

/// What Curator may have written; anything missing as Curator's defaults.
#[derive(Deserialize)]
struct Incoming {
    #[serde(default)]
    name: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default, rename = "sslPort")]
    ssl_port: Option<u16>,
    #[serde(default)]
    payload: Value,
    #[serde(default, rename = "registrationTimeUTC")]
    registration_time_utc: Option<i64>,
    #[serde(default, rename = "serviceType")]
    service_type: Option<ServiceType>,
    #[serde(default, rename = "uriSpec")]
    uri_spec: Option<Value>,
    #[serde(default)]
    enabled: Option<bool>,
}

/// A JSON problem as a recipe error.
pub(crate) fn json_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Client(zk_client::Error::Protocol(format!("{what}: {e}")))
}

impl JsonInstanceSerializer {
    /// Curator's default: no `"@class"` in payloads, no `enabled` field.
    pub fn new() -> JsonInstanceSerializer {
        JsonInstanceSerializer::default()
    }

    /// Writes object payloads with Jackson's `"@class": class` first, so that a Curator
    /// reader whose payload class is a Java bean (not a `Map`) can read them.
    pub fn payload_class(mut self, class: &str) -> Self {
        self.payload_class = Some(class.to_string());
        self
    }

    /// Writes the `enabled` field too (Curator's `compatibleSerializationMode` false).
    pub fn write_enabled(mut self, write: bool) -> Self {
        self.write_enabled = write;
        self
    }

    /// The node data for `instance`.
    pub fn serialize<T: Serialize>(&self, instance: &ServiceInstance<T>) -> Result<Vec<u8>> {
        let payload = match &instance.payload {
            None => None,
            Some(p) => {
                let value = serde_json::to_value(p)
                    .map_err(|e| json_error("cannot serialize the payload", e))?;
                Some(match (value, &self.payload_class) {
                    (Value::Object(mut fields), Some(class)) => {
                        fields.remove("@class");
                        OutgoingPayload::Tagged(class, fields)
                    }
                    (value, _) => OutgoingPayload::Plain(value),
                })
            }
        };
        let outgoing = Outgoing {
            name: &instance.name,
            id: &instance.id,
            address: instance.address.as_deref(),
            port: instance.port,
            ssl_port: instance.ssl_port,
            payload,
            registration_time_utc: instance.registration_time_utc(),
            service_type: instance.service_type,
            uri_spec: instance.uri_spec.as_ref(),
            enabled: self.write_enabled.then_some(instance.enabled),
        };
        serde_json::to_vec(&outgoing).map_err(|e| json_error("cannot serialize an instance", e))
    }

    /// The instance in node data (unknown fields ignored, missing ones defaulted).
    pub fn deserialize<T: DeserializeOwned>(&self, data: &[u8]) -> Result<ServiceInstance<T>> {
        let incoming: Incoming = serde_json::from_slice(data)
            .map_err(|e| json_error("not a curator-x-discovery instance", e))?;
        let payload = match incoming.payload {
            Value::Null => None,
            mut value => {
                if let Value::Object(fields) = &mut value {
                    fields.remove("@class");
                }
                Some(
                    serde_json::from_value(value)
                        .map_err(|e| json_error("the instance's payload", e))?,
                )
            }
        };
        Ok(ServiceInstance {
            name: incoming.name,
            id: incoming.id,
            address: incoming.address,
            port: incoming.port,
            ssl_port: incoming.ssl_port,
            payload,
            registration_time: time_of(incoming.registration_time_utc.unwrap_or(0)),
            service_type: incoming.service_type.unwrap_or_default(),
            uri_spec: incoming.uri_spec.filter(|u| !u.is_null()),
            enabled: incoming.enabled.unwrap_or(true),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Curator 5.4 wrote for a `Map<String,String>` payload with a `UriSpec`
    /// (captured from `tests/interop/curator_discovery/CuratorDiscovery.java`).
    const CURATOR: &str = r#"{"name":"api","id":"j1","address":"10.0.0.5","port":8080,"sslPort":8443,"payload":{"@class":"java.util.HashMap","a":"1","b":"2"},"registrationTimeUTC":1795436761185,"serviceType":"DYNAMIC","uriSpec":{"parts":[{"value":"scheme","variable":true},{"value":"://","variable":false},{"value":"address","variable":true},{"value":":","variable":false},{"value":"port","variable":true},{"value":"/x","variable":false}]}}"#;

    #[test]
    fn curators_bytes_read_and_written_back_the_same() {
        let s = JsonInstanceSerializer::new().payload_class("java.util.HashMap");
        let instance: ServiceInstance = s.deserialize(CURATOR.as_bytes()).unwrap();
        assert_eq!(instance.name, "api");
        assert_eq!(instance.id, "j1");
        assert_eq!(instance.address.as_deref(), Some("10.0.0.5"));
        assert_eq!((instance.port, instance.ssl_port), (Some(8080), Some(8443)));
        assert_eq!(
            instance.payload,
            Some(serde_json::json!({"a": "1", "b": "2"}))
        );
        assert_eq!(instance.registration_time_utc(), 1795436761185);
        assert_eq!(instance.service_type, ServiceType::Dynamic);
        assert!(instance.enabled);
        assert_eq!(
            String::from_utf8(s.serialize(&instance).unwrap()).unwrap(),
            CURATOR
        );
    }

    #[test]
    fn absent_fields_are_null_and_enabled_is_written_only_when_asked() {
        let mut instance = ServiceInstance::<Value>::new("svc", "i-1");
        instance.registration_time = time_of(42);
        let plain = JsonInstanceSerializer::new().serialize(&instance).unwrap();
        assert_eq!(
            String::from_utf8(plain).unwrap(),
            r#"{"name":"svc","id":"i-1","address":null,"port":null,"sslPort":null,"payload":null,"registrationTimeUTC":42,"serviceType":"DYNAMIC","uriSpec":null}"#
        );
        let disabled = instance.with_enabled(false);
        let s = JsonInstanceSerializer::new().write_enabled(true);
        let bytes = s.serialize(&disabled).unwrap();
        assert!(String::from_utf8_lossy(&bytes).ends_with(r#""uriSpec":null,"enabled":false}"#));
        let back: ServiceInstance = s.deserialize(&bytes).unwrap();
        assert_eq!(back, disabled);
    }

    #[test]
    fn unknown_fields_are_ignored_and_missing_ones_defaulted() {
        let s = JsonInstanceSerializer::new();
        let minimal: ServiceInstance = s
            .deserialize(br#"{"name":"a","id":"b","someday":{"x":1},"payload":"text"}"#)
            .unwrap();
        assert_eq!(minimal.payload, Some(Value::from("text")));
        assert_eq!(minimal.registration_time, UNIX_EPOCH);
        assert_eq!(minimal.service_type, ServiceType::Dynamic);
        assert!(minimal.enabled && minimal.uri_spec.is_none() && minimal.port.is_none());
        assert!(s.deserialize::<Value>(b"not json").is_err());
        assert!(s
            .deserialize::<Value>(br#"{"serviceType":"ELSEWHERE"}"#)
            .is_err());
    }

    #[test]
    fn typed_payloads_round_trip() {
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        struct Details {
            zone: String,
            weight: u32,
        }
        let s = JsonInstanceSerializer::new().payload_class("com.example.Details");
        let instance = ServiceInstance::new("svc", "x").with_payload(Details {
            zone: "eu".into(),
            weight: 3,
        });
        let bytes = s.serialize(&instance).unwrap();
        assert!(String::from_utf8_lossy(&bytes)
            .contains(r#""payload":{"@class":"com.example.Details","weight":3,"zone":"eu"}"#));
        let back: ServiceInstance<Details> = s.deserialize(&bytes).unwrap();
        assert_eq!(back.payload, instance.payload);
        assert_eq!(
            back.registration_time_utc(),
            instance.registration_time_utc()
        );
    }
}
