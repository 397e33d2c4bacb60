//! Durable storage: the segmented transaction log, and small files written atomically
//! (vote, snapshots).

pub mod atomic_file;
pub mod log;
