//! The database as a snapshot holds it.
//!
//! Version 2 (written): the magic `ZKRSDB02`; a u32 (little-endian) length and an
//! rmp-serde header (sessions, last zxid, the write numbers applied from each member);
//! then the tree in its own encoding ([`crate::tree::encode`]).
//!
//! Version 1 (read, never written): the whole database as one rmp-serde value, the
//! tree a map of paths to znodes. Members upgraded from it load their last snapshot,
//! and a leader still on it may send one.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::{SessionEntry, ZkDatabase};
use crate::tree::encode::TreeDecodeError;
use crate::tree::{DataTree, Znode};

/// What a version-2 database begins with.
pub const MAGIC: &[u8; 8] = b"ZKRSDB02";

/// Why a snapshot of the database cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The header would not encode.
    #[error("cannot encode the snapshot's header: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
    /// The header (or a whole version-1 snapshot) would not decode.
    #[error("cannot decode the snapshot: {0}")]
    Decode(#[from] rmp_serde::decode::Error),
    /// The tree would not decode.
    #[error(transparent)]
    Tree(#[from] TreeDecodeError),
}

/// Everything but the tree, as written.
#[derive(Serialize)]
struct HeaderOut<'a> {
    sessions: &'a BTreeMap<i64, SessionEntry>,
    last_zxid: i64,
    applied_seqs: &'a BTreeMap<u64, u64>,
}

/// Everything but the tree, as read.
#[derive(Deserialize)]
struct HeaderIn {
    sessions: BTreeMap<i64, SessionEntry>,
    last_zxid: i64,
    applied_seqs: BTreeMap<u64, u64>,
}

/// A version-1 database: its fields in their order (`applied_seqs` came last, and
/// snapshots from before it lack it).
#[derive(Deserialize)]
struct V1Database {
    tree: V1Tree,
    sessions: BTreeMap<i64, SessionEntry>,
    last_zxid: i64,
    #[serde(default)]
    applied_seqs: BTreeMap<u64, u64>,
}

/// A version-1 tree: every znode by path (its other fields were not written).
#[derive(Deserialize)]
struct V1Tree {
    nodes: HashMap<String, Znode>,
}

impl ZkDatabase {
    /// Serialises the whole state (for snapshots), in version 2.
    pub fn to_snapshot(&self) -> Result<Vec<u8>, SnapshotError> {
        let header = rmp_serde::to_vec(&HeaderOut {
            sessions: &self.sessions,
            last_zxid: self.last_zxid,
            applied_seqs: &self.applied_seqs,
        })?;
        // About 80 bytes per znode besides its data and name (counted with its path).
        let estimate = self.tree.node_count() * 80 + self.tree.approximate_data_size() as usize;
        let mut out = Vec::with_capacity(MAGIC.len() + 4 + header.len() + estimate);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(&header);
        self.tree.encode_into(&mut out);
        Ok(out)
    }

    /// The state as a version-1 snapshot held it (the code before the compact tree):
    /// one rmp-serde value, the tree a map of paths to znodes. For tests of the upgrade
    /// and the `storage_files` fuzz target's seeds.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn to_v1_snapshot(&self) -> Vec<u8> {
        let model = crate::tree::model::ModelTree::from_tree(&self.tree);
        let v1 = (&model, &self.sessions, self.last_zxid, &self.applied_seqs);
        rmp_serde::to_vec(&v1).unwrap_or_default()
    }

    /// Restores a state written by [`ZkDatabase::to_snapshot`], in either version.
    pub fn from_snapshot(bytes: &[u8]) -> Result<ZkDatabase, SnapshotError> {
        let Some(rest) = bytes.strip_prefix(MAGIC.as_slice()) else {
            let v1: V1Database = rmp_serde::from_slice(bytes)?;
            return Ok(ZkDatabase {
                tree: DataTree::from_nodes_exact(v1.tree.nodes),
                sessions: v1.sessions,
                last_zxid: v1.last_zxid,
                applied_seqs: v1.applied_seqs,
            });
        };
        let (len, rest) = rest
            .split_first_chunk::<4>()
            .ok_or(TreeDecodeError::Truncated)?;
        let len = u32::from_le_bytes(*len) as usize;
        if rest.len() < len {
            return Err(TreeDecodeError::Truncated.into());
        }
        let (header, mut rest) = rest.split_at(len);
        let header: HeaderIn = rmp_serde::from_slice(header)?;
        let tree = DataTree::decode(&mut rest)?;
        if !rest.is_empty() {
            return Err(
                TreeDecodeError::Invalid(format!("{} bytes after the tree", rest.len())).into(),
            );
        }
        Ok(ZkDatabase {
            tree,
            sessions: header.sessions,
            last_zxid: header.last_zxid,
            applied_seqs: header.applied_seqs,
        })
    }
}
