//! Durable storage: the segmented transaction log, and small files written atomically
//! (vote, snapshots), and the disk under them (free space; injected faults for tests).

pub mod atomic_file;
pub mod disk;
pub mod log;
