//! Runnable examples of the stack; each lives in `src/bin/`:
//!
//! - `lock_counter`: processes take turns, under a distributed [`zk_recipes::Lock`],
//!   incrementing a number kept in a shared file (a resource outside ZooKeeper).
//! - `leader_fleet`: a worker that joins its fleet's election
//!   ([`zk_recipes::LeaderLatch`]) and works only while it leads; kill the leader's
//!   process and another worker takes over.
