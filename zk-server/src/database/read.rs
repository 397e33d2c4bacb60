//! The reads a server answers from its own copy of the state, with ZooKeeper's
//! permission checks (FinalRequestProcessor). Watch registration is the caller's.

use zk_proto::{
    Acl, ErrorCode, ExistsResponse, GetAclResponse, GetAllChildrenNumberResponse,
    GetChildren2Response, GetChildrenResponse, GetDataResponse, GetEphemeralsResponse, Id, MultiOp,
    MultiRequest, MultiResponse, OpResult, Perms, Request, Response,
};

use super::ZkDatabase;
use crate::acl;
use crate::tree::NodeRef;

impl ZkDatabase {
    /// Answers a read request for `session_id` holding identities `auth`. Requests that
    /// are not reads answer `Unimplemented` (the caller routes writes to the log).
    pub fn read(
        &self,
        session_id: i64,
        auth: &[Id],
        request: &Request,
    ) -> Result<Response, ErrorCode> {
        match request {
            Request::Exists(r) => {
                // The one read ZooKeeper validates: a NUL is BadArguments.
                if r.path.contains('\0') {
                    return Err(ErrorCode::BadArguments);
                }
                let node = self.node(&r.path)?;
                Ok(Response::Exists(ExistsResponse { stat: node.stat() }))
            }
            Request::GetData(r) => {
                let node = self.readable(&r.path, auth)?;
                Ok(Response::GetData(GetDataResponse {
                    data: node.data(),
                    stat: node.stat(),
                }))
            }
            Request::GetChildren(r) => {
                let node = self.readable(&r.path, auth)?;
                Ok(Response::GetChildren(GetChildrenResponse {
                    children: node.children().map(str::to_owned).collect(),
                }))
            }
            Request::GetChildren2(r) => {
                let node = self.readable(&r.path, auth)?;
                Ok(Response::GetChildren2(GetChildren2Response {
                    children: node.children().map(str::to_owned).collect(),
                    stat: node.stat(),
                }))
            }
            Request::GetAcl(r) => self.get_acl(&r.path, auth),
            Request::GetAllChildrenNumber(r) => {
                self.readable(&r.path, auth)?;
                let path = if r.path.is_empty() {
                    "/"
                } else {
                    r.path.as_str()
                };
                let total = self.tree.descendant_count(path);
                Ok(Response::GetAllChildrenNumber(
                    GetAllChildrenNumberResponse {
                        total_number: i32::try_from(total).unwrap_or(i32::MAX),
                    },
                ))
            }
            Request::GetEphemerals(r) => Ok(Response::GetEphemerals(GetEphemeralsResponse {
                ephemerals: self
                    .tree
                    .ephemerals_of(session_id)
                    .filter(|p| p.starts_with(r.prefix_path.as_str()))
                    .map(str::to_owned)
                    .collect(),
            })),
            Request::MultiRead(m) => self.multi_read(auth, m).map(Response::Multi),
            _ => Err(ErrorCode::Unimplemented),
        }
    }

    /// Reads do not validate paths: a malformed one names no node. The empty path is
    /// the root, as in ZooKeeper (which stores the root under both "" and "/").
    fn node(&self, path: &str) -> Result<NodeRef<'_>, ErrorCode> {
        let path = if path.is_empty() { "/" } else { path };
        self.tree.get(path).ok_or(ErrorCode::NoNode)
    }

    fn readable(&self, path: &str, auth: &[Id]) -> Result<NodeRef<'_>, ErrorCode> {
        let node = self.node(path)?;
        acl::check(node.acl(), Perms::READ, auth)?;
        Ok(node)
    }

    /// READ or ADMIN may read an ACL; without ADMIN, digest hashes are masked as
    /// `user:x` (ZOOKEEPER-1392).
    fn get_acl(&self, path: &str, auth: &[Id]) -> Result<Response, ErrorCode> {
        let node = self.node(path)?;
        acl::check(node.acl(), Perms::READ | Perms::ADMIN, auth)?;
        let acl = if acl::check(node.acl(), Perms::ADMIN, auth).is_ok() {
            node.acl().to_vec()
        } else {
            node.acl().iter().map(mask_digest).collect()
        };
        Ok(Response::GetAcl(GetAclResponse {
            acl,
            stat: node.stat(),
        }))
    }

    fn multi_read(&self, auth: &[Id], m: &MultiRequest) -> Result<MultiResponse, ErrorCode> {
        let mut results = Vec::with_capacity(m.ops.len());
        for op in &m.ops {
            let result = match op {
                MultiOp::GetChildren(r) => match self.readable(&r.path, auth) {
                    Ok(node) => OpResult::GetChildren {
                        children: node.children().map(str::to_owned).collect(),
                    },
                    Err(code) => OpResult::error(code),
                },
                MultiOp::GetData(r) => match self.readable(&r.path, auth) {
                    Ok(node) => OpResult::GetData {
                        data: node.data(),
                        stat: node.stat(),
                    },
                    Err(code) => OpResult::error(code),
                },
                // ZooKeeper fails the whole request ("Invalid type of op").
                _ => return Err(ErrorCode::MarshallingError),
            };
            results.push(result);
        }
        Ok(MultiResponse { results })
    }
}

fn mask_digest(entry: &Acl) -> Acl {
    if entry.id.scheme != "digest" {
        return entry.clone();
    }
    let user = entry.id.id.split(':').next().unwrap_or("");
    Acl {
        perms: entry.perms,
        id: Id::new("digest", format!("{user}:x")),
    }
}
