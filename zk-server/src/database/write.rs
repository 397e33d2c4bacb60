//! Applying committed transactions: every check ZooKeeper's PrepRequestProcessor makes,
//! in its order, then the change to the tree, then the watch events it fires.

use bytes::Bytes;
use zk_proto::path::{parent, validate_path};
use zk_proto::{
    Acl, CheckVersionRequest, Create2Response, CreateMode, CreateRequest, CreateResponse,
    CreateTtlRequest, DeleteRequest, ErrorCode, EventType, MultiOp, MultiRequest, MultiResponse,
    OpCode, OpResult, Perms, Response, SetAclRequest, SetAclResponse, SetDataRequest,
    SetDataResponse, Stat,
};

use super::{Applied, SessionEntry, WatchEvent, ZkDatabase};
use crate::acl;
use crate::tree::quota::{self, StatsTrack};
use crate::tree::{
    ttl_owner, NodeKind, CONFIG_PATH, CONTAINER_OWNER, MAX_TTL, QUOTA_PATH, ZOOKEEPER_PATH,
};
use crate::txn::{Txn, TxnOp};

type OpOutcome<T> = Result<T, ErrorCode>;

/// Who is writing, and when: the parts of a [`Txn`] every op needs.
struct Ctx<'a> {
    zxid: i64,
    time: i64,
    session_id: i64,
    auth: &'a [zk_proto::Id],
    extended_types: bool,
    enforce_quota: bool,
    x509_provider: bool,
    sasl_provider: bool,
    /// Inside a multi: the quotas as they stood before it (see [`QuotaBaseline`]).
    quota_baseline: Option<&'a QuotaBaseline>,
}

impl Ctx<'_> {
    /// The optional ACL providers the proposer had.
    fn providers(&self) -> acl::Providers {
        acl::Providers {
            x509: self.x509_provider,
            sasl: self.sasl_provider,
        }
    }
}

/// Every quota's limits and usage as they stood before a multi began. ZooKeeper's
/// `checkQuota` reads the committed tree, so each op of a multi is judged against the
/// usage before the multi, not after the ops ahead of it (three creates with room
/// for one pass together; observed on ZooKeeper 3.8).
struct QuotaBaseline(Vec<(String, StatsTrack, StatsTrack)>);

impl QuotaBaseline {
    /// The quota governing `path` (the longest root), with its limits and usage.
    fn quota_for(&self, path: &str) -> Option<(String, StatsTrack, StatsTrack)> {
        self.0
            .iter()
            .filter(|(root, _, _)| quota::governs(root, path))
            .max_by_key(|(root, _, _)| root.len())
            .cloned()
    }
}

/// A create, however it arrived (create/create2/createContainer/createTTL, alone or in
/// a multi).
struct CreateArgs<'a> {
    opcode: OpCode,
    path: &'a str,
    data: &'a Option<Bytes>,
    acl: &'a [Acl],
    flags: i32,
    ttl: i64,
}

impl<'a> CreateArgs<'a> {
    /// create / create2 / createContainer: no TTL.
    fn plain(opcode: OpCode, r: &'a CreateRequest) -> CreateArgs<'a> {
        CreateArgs {
            opcode,
            path: &r.path,
            data: &r.data,
            acl: &r.acl,
            flags: r.flags,
            ttl: -1,
        }
    }

    /// createTTL.
    fn ttl(r: &'a CreateTtlRequest) -> CreateArgs<'a> {
        CreateArgs {
            opcode: OpCode::CreateTtl,
            path: &r.path,
            data: &r.data,
            acl: &r.acl,
            flags: r.flags,
            ttl: r.ttl,
        }
    }
}

impl ZkDatabase {
    /// Applies the committed transaction at `zxid`, unless it is a copy of one applied
    /// before (numbered at or below the last applied from its member): then nothing
    /// changes and the outcome is [`Applied::duplicate`].
    pub fn apply(&mut self, zxid: i64, txn: &Txn) -> Applied {
        self.last_zxid = self.last_zxid.max(zxid);
        let last = self.applied_seqs.entry(txn.origin.server).or_insert(0);
        if txn.origin.seq <= *last {
            return Applied::duplicate();
        }
        *last = txn.origin.seq;
        let ctx = Ctx {
            zxid,
            time: txn.time,
            session_id: txn.session_id,
            auth: &txn.auth,
            extended_types: txn.extended_types,
            enforce_quota: txn.enforce_quota,
            x509_provider: txn.x509_provider,
            sasl_provider: txn.sasl_provider,
            quota_baseline: None,
        };
        let mut events = Vec::new();
        let result = self.apply_op(&ctx, &txn.op, &mut events);
        Applied { result, events }
    }

    fn apply_op(&mut self, ctx: &Ctx, op: &TxnOp, ev: &mut Vec<WatchEvent>) -> OpOutcome<Response> {
        match op {
            TxnOp::CreateSession { timeout, passwd } => {
                if self.sessions.contains_key(&ctx.session_id) {
                    return Err(ErrorCode::SessionExpired);
                }
                self.sessions.insert(
                    ctx.session_id,
                    SessionEntry {
                        timeout: *timeout,
                        passwd: passwd.clone(),
                    },
                );
                Ok(Response::Empty)
            }
            TxnOp::CloseSession => {
                if self.sessions.remove(&ctx.session_id).is_none() {
                    return Err(ErrorCode::SessionExpired);
                }
                let paths: Vec<String> = self
                    .tree
                    .ephemerals_of(ctx.session_id)
                    .map(str::to_owned)
                    .collect();
                for path in paths {
                    self.delete_with_events(&path, ctx.zxid, ev);
                }
                Ok(Response::Empty)
            }
            TxnOp::ReapContainer { path } => {
                let reapable = self.tree.get(path).is_some_and(|n| {
                    n.kind() == NodeKind::Container && n.is_leaf() && n.stored_stat().cversion > 0
                });
                if reapable {
                    self.delete_with_events(path, ctx.zxid, ev);
                }
                Ok(Response::Empty)
            }
            TxnOp::SetConfig { servers } => {
                let data = format!("{servers}\nversion={:x}", ctx.zxid);
                let path = crate::tree::CONFIG_PATH;
                let acl = self
                    .tree
                    .get(path)
                    .map(|n| n.acl().clone())
                    .unwrap_or_default();
                let stat = self
                    .tree
                    .set_data(path, Some(data.into()), -1, ctx.zxid, ctx.time)
                    .ok_or(ErrorCode::SystemError)?;
                ev.push(WatchEvent {
                    path: path.to_string(),
                    event_type: EventType::NodeDataChanged,
                    acl,
                });
                Ok(Response::SetData(SetDataResponse { stat }))
            }
            TxnOp::ReapTtl { path } => {
                let reapable = self.tree.get(path).is_some_and(|n| match n.kind() {
                    NodeKind::Ttl(ttl) => {
                        n.is_leaf() && ctx.time.saturating_sub(n.stored_stat().mtime) > ttl
                    }
                    _ => false,
                });
                if reapable {
                    self.delete_with_events(path, ctx.zxid, ev);
                }
                Ok(Response::Empty)
            }
            _ => {
                if !self.sessions.contains_key(&ctx.session_id) {
                    return Err(ErrorCode::SessionExpired);
                }
                self.apply_client_op(ctx, op, ev)
            }
        }
    }

    fn apply_client_op(
        &mut self,
        ctx: &Ctx,
        op: &TxnOp,
        ev: &mut Vec<WatchEvent>,
    ) -> OpOutcome<Response> {
        match op {
            TxnOp::Create { opcode, request } => {
                let args = CreateArgs::plain(*opcode, request);
                let (path, stat) = self.create(ctx, &args, ev)?;
                Ok(create_response(*opcode, path, stat))
            }
            TxnOp::CreateTtl(request) => {
                let args = CreateArgs::ttl(request);
                let (path, stat) = self.create(ctx, &args, ev)?;
                Ok(create_response(OpCode::CreateTtl, path, stat))
            }
            TxnOp::Delete(r) => self.delete(ctx, r, ev).map(|()| Response::Empty),
            TxnOp::SetData(r) => self
                .set_data(ctx, r, ev)
                .map(|stat| Response::SetData(SetDataResponse { stat })),
            TxnOp::SetAcl(r) => self
                .set_acl(ctx, r)
                .map(|stat| Response::SetAcl(SetAclResponse { stat })),
            TxnOp::Check(r) => self
                .check(ctx, r)
                .map(|stat| Response::SetData(SetDataResponse { stat })),
            TxnOp::Multi(m) => Ok(Response::Multi(self.multi(ctx, m, ev))),
            TxnOp::CreateSession { .. }
            | TxnOp::CloseSession
            | TxnOp::ReapContainer { .. }
            | TxnOp::SetConfig { .. }
            | TxnOp::ReapTtl { .. } => Err(ErrorCode::SystemError),
        }
    }

    /// `PrepRequestProcessor.pRequest2TxnCreate` + `DataTree.createNode`, checks in
    /// ZooKeeper's order. The *opcode* decides container and TTL nodes (flag 4 sent
    /// with create/create2 makes a plain persistent node, as in ZooKeeper); the flags
    /// decide sequential and ephemeral.
    fn create(
        &mut self,
        ctx: &Ctx,
        a: &CreateArgs,
        ev: &mut Vec<WatchEvent>,
    ) -> OpOutcome<(String, Stat)> {
        let mode = CreateMode::from_code(a.flags).ok_or(ErrorCode::BadArguments)?;
        // validateCreateRequest: TTL needs extended types, then EphemeralType.validateTTL.
        if mode.is_ttl() && !ctx.extended_types {
            return Err(ErrorCode::Unimplemented);
        }
        if mode.is_ttl() != (a.opcode == OpCode::CreateTtl)
            || (mode.is_ttl() && !(1..=MAX_TTL).contains(&a.ttl))
        {
            return Err(ErrorCode::BadArguments);
        }
        // validatePathForCreate: a parent must be nameable.
        let Some(last_slash) = a.path.rfind('/') else {
            return Err(ErrorCode::BadArguments);
        };
        if a.path.contains('\0') {
            return Err(ErrorCode::BadArguments);
        }
        let acl = acl::fix_up(a.acl, ctx.auth, ctx.providers())?;
        let parent_path = if last_slash == 0 {
            "/"
        } else {
            &a.path[..last_slash]
        };
        let parent_node = self.tree.get(parent_path).ok_or(ErrorCode::NoNode)?;
        acl::check(parent_node.acl(), Perms::CREATE, ctx.auth)?;
        let path = if mode.is_sequential() {
            format!("{}{:010}", a.path, parent_node.stored_stat().cversion)
        } else {
            a.path.to_string()
        };
        validate_path(&path).map_err(|_| ErrorCode::BadArguments)?;
        if self.tree.get(&path).is_some() {
            return Err(ErrorCode::NodeExists);
        }
        if matches!(parent_node.kind(), NodeKind::Ephemeral(_)) {
            return Err(ErrorCode::NoChildrenForEphemerals);
        }
        let data_len = a.data.as_ref().map_or(0, |d| d.len()) as i64;
        self.check_quota(ctx, &path, 1, data_len)?;
        let owner = match a.opcode {
            OpCode::CreateContainer => CONTAINER_OWNER,
            OpCode::CreateTtl => ttl_owner(a.ttl),
            _ if mode.is_ephemeral() => ctx.session_id,
            _ => 0,
        };
        let parent_acl = parent_node.acl().clone();
        let stat = self
            .tree
            .create_node(&path, a.data.clone(), &acl, owner, ctx.zxid, ctx.time)
            .ok_or(ErrorCode::SystemError)?;
        let acl = self
            .tree
            .get(&path)
            .map(|n| n.acl().clone())
            .unwrap_or_else(|| acl.into());
        ev.push(WatchEvent {
            path: path.clone(),
            event_type: EventType::NodeCreated,
            acl,
        });
        ev.push(WatchEvent {
            path: parent_path.to_string(),
            event_type: EventType::NodeChildrenChanged,
            acl: parent_acl,
        });
        Ok((path, stat))
    }

    /// `PrepRequestProcessor` delete + `DataTree.deleteNode`.
    /// ZooKeeper validates only what it needs to find the parent; anything else that
    /// is malformed simply does not exist (NoNode).
    fn delete(&mut self, ctx: &Ctx, r: &DeleteRequest, ev: &mut Vec<WatchEvent>) -> OpOutcome<()> {
        let Some(last_slash) = r.path.rfind('/') else {
            return Err(ErrorCode::BadArguments);
        };
        if r.path.contains('\0') || is_special_path(&r.path) {
            return Err(ErrorCode::BadArguments);
        }
        let parent_path = if last_slash == 0 {
            "/"
        } else {
            &r.path[..last_slash]
        };
        let parent_node = self.tree.get(parent_path).ok_or(ErrorCode::NoNode)?;
        acl::check(parent_node.acl(), Perms::DELETE, ctx.auth)?;
        let node = self.tree.get(&r.path).ok_or(ErrorCode::NoNode)?;
        check_version(node.stored_stat().version, r.version)?;
        if !node.is_leaf() {
            return Err(ErrorCode::NotEmpty);
        }
        self.delete_with_events(&r.path, ctx.zxid, ev);
        Ok(())
    }

    fn set_data(
        &mut self,
        ctx: &Ctx,
        r: &SetDataRequest,
        ev: &mut Vec<WatchEvent>,
    ) -> OpOutcome<Stat> {
        validate_path(&r.path).map_err(|_| ErrorCode::BadArguments)?;
        let node = self.tree.get(&r.path).ok_or(ErrorCode::NoNode)?;
        acl::check(node.acl(), Perms::WRITE, ctx.auth)?;
        // PrepRequestProcessor checks the quota before the version.
        let growth = r.data.as_ref().map_or(0, |d| d.len()) as i64 - node.data_len() as i64;
        self.check_quota(ctx, &r.path, 0, growth)?;
        let version = check_version(node.stored_stat().version, r.version)?;
        let acl = node.acl().clone();
        let stat = self
            .tree
            .set_data(&r.path, r.data.clone(), version, ctx.zxid, ctx.time)
            .ok_or(ErrorCode::NoNode)?;
        ev.push(WatchEvent {
            path: r.path.clone(),
            event_type: EventType::NodeDataChanged,
            acl,
        });
        Ok(stat)
    }

    fn set_acl(&mut self, ctx: &Ctx, r: &SetAclRequest) -> OpOutcome<Stat> {
        validate_path(&r.path).map_err(|_| ErrorCode::BadArguments)?;
        let acl = acl::fix_up(&r.acl, ctx.auth, ctx.providers())?;
        let node = self.tree.get(&r.path).ok_or(ErrorCode::NoNode)?;
        acl::check(node.acl(), Perms::ADMIN, ctx.auth)?;
        let aversion = check_version(node.stored_stat().aversion, r.version)?;
        self.tree
            .set_acl(&r.path, acl, aversion)
            .ok_or(ErrorCode::NoNode)
    }

    fn check(&mut self, ctx: &Ctx, r: &CheckVersionRequest) -> OpOutcome<Stat> {
        validate_path(&r.path).map_err(|_| ErrorCode::BadArguments)?;
        let node = self.tree.get(&r.path).ok_or(ErrorCode::NoNode)?;
        acl::check(node.acl(), Perms::READ, ctx.auth)?;
        check_version(node.stored_stat().version, r.version)?;
        Ok(node.stat())
    }

    /// All or nothing: on the first failure every change is rolled back and the results
    /// say, as ZooKeeper's do, Ok for the ops before it, its error for it, and
    /// RuntimeInconsistency for the ops after it.
    fn multi(&mut self, ctx: &Ctx, m: &MultiRequest, ev: &mut Vec<WatchEvent>) -> MultiResponse {
        let baseline = QuotaBaseline(
            self.tree
                .quota_roots()
                .filter_map(|root| self.tree.quota_for(root))
                .collect(),
        );
        let ctx = &Ctx {
            quota_baseline: Some(&baseline),
            ..*ctx
        };
        self.tree.begin_journal();
        let mut op_events = Vec::new();
        let mut results = Vec::with_capacity(m.ops.len());
        let mut failure = None;
        for (i, op) in m.ops.iter().enumerate() {
            match self.multi_op(ctx, op, &mut op_events) {
                Ok(result) => results.push(result),
                Err(code) => {
                    failure = Some((i, code));
                    break;
                }
            }
        }
        match failure {
            None => {
                self.tree.commit_journal();
                ev.append(&mut op_events);
                MultiResponse { results }
            }
            Some((failed, code)) => {
                self.tree.rollback_journal();
                let results = (0..m.ops.len())
                    .map(|i| match i.cmp(&failed) {
                        std::cmp::Ordering::Less => OpResult::error(ErrorCode::Ok),
                        std::cmp::Ordering::Equal => OpResult::error(code),
                        std::cmp::Ordering::Greater => {
                            OpResult::error(ErrorCode::RuntimeInconsistency)
                        }
                    })
                    .collect();
                MultiResponse { results }
            }
        }
    }

    fn multi_op(
        &mut self,
        ctx: &Ctx,
        op: &MultiOp,
        ev: &mut Vec<WatchEvent>,
    ) -> OpOutcome<OpResult> {
        match op {
            MultiOp::Create { opcode, request } => {
                let args = CreateArgs::plain(*opcode, request);
                let (path, stat) = self.create(ctx, &args, ev)?;
                Ok(create_result(*opcode, path, stat))
            }
            MultiOp::CreateTtl(request) => {
                let args = CreateArgs::ttl(request);
                let (path, stat) = self.create(ctx, &args, ev)?;
                Ok(create_result(OpCode::CreateTtl, path, stat))
            }
            MultiOp::Delete(r) => self.delete(ctx, r, ev).map(|()| OpResult::Delete),
            MultiOp::SetData(r) => self
                .set_data(ctx, r, ev)
                .map(|stat| OpResult::SetData { stat }),
            MultiOp::Check(r) => self.check(ctx, r).map(|_| OpResult::Check),
            // Reads belong in multiRead, which never reaches the log.
            MultiOp::GetChildren(_) | MultiOp::GetData(_) => Err(ErrorCode::BadArguments),
        }
    }
}

impl ZkDatabase {
    /// `ZooKeeperServer.checkQuota` (called by PrepRequestProcessor for creates and
    /// setData): see [`quota::check`] for which limits a change is judged against.
    /// Passing a hard limit is QuotaExceeded when the proposer enforces quotas
    /// (`zookeeper.enforceQuota`); anything else passed is only logged.
    fn check_quota(&self, ctx: &Ctx, path: &str, count: i64, bytes: i64) -> OpOutcome<()> {
        let governing = match ctx.quota_baseline {
            Some(baseline) => baseline.quota_for(path),
            None => self.tree.quota_for(path),
        };
        let Some((root, limits, usage)) = governing else {
            return Ok(());
        };
        for over in quota::check(&limits, &usage, count, bytes) {
            tracing::warn!(
                path,
                quota = root,
                over.what,
                over.usage,
                over.limit,
                over.hard,
                "quota exceeded"
            );
            if over.hard && ctx.enforce_quota {
                return Err(ErrorCode::QuotaExceeded);
            }
        }
        Ok(())
    }
}

/// ZooKeeper's `checkAndIncVersion`: -1 matches any version.
fn check_version(current: i32, expected: i32) -> OpOutcome<i32> {
    if expected != -1 && expected != current {
        return Err(ErrorCode::BadVersion);
    }
    Ok(current.wrapping_add(1))
}

/// Paths that can never be deleted (`ZKDatabase.isSpecialPath`).
fn is_special_path(path: &str) -> bool {
    matches!(path, "/" | ZOOKEEPER_PATH | QUOTA_PATH | CONFIG_PATH)
}

impl ZkDatabase {
    /// Deletes a znode and records NodeDeleted on it and NodeChildrenChanged on its
    /// parent, each with the ACL that guards it.
    fn delete_with_events(&mut self, path: &str, zxid: i64, ev: &mut Vec<WatchEvent>) {
        let Some(acl) = self.tree.delete_node(path, zxid) else {
            return;
        };
        let parent_path = parent(path);
        let parent_acl = self
            .tree
            .get(parent_path)
            .map(|p| p.acl().clone())
            .unwrap_or_default();
        ev.push(WatchEvent {
            path: path.to_string(),
            event_type: EventType::NodeDeleted,
            acl,
        });
        ev.push(WatchEvent {
            path: parent_path.to_string(),
            event_type: EventType::NodeChildrenChanged,
            acl: parent_acl,
        });
    }
}

/// create answers with the path; create2/createContainer/createTTL with path and Stat.
/// (Inside a multi ZooKeeper answers create2 with the path only: see `create_result`.)
fn create_response(opcode: OpCode, path: String, stat: Stat) -> Response {
    if opcode == OpCode::Create {
        Response::Create(CreateResponse { path })
    } else {
        Response::Create2(Create2Response { path, stat })
    }
}

/// Inside a multi, create and create2 answer with the path only; createContainer and
/// createTTL with path and Stat (observed on ZooKeeper 3.8).
fn create_result(opcode: OpCode, path: String, stat: Stat) -> OpResult {
    match opcode {
        OpCode::Create | OpCode::Create2 => OpResult::Create { path },
        _ => OpResult::Create2 { path, stat },
    }
}
