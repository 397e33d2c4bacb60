//! Memory per znode, byte-exact: znodes of 100 bytes under one parent
//! (`/zkbench-populated/k0001234`, as `zk-bench --workload populate` makes them), built
//! through the same path a server applies a committed create (`ZkDatabase::apply` on a
//! `Txn` decoded from its log encoding), counted by a global allocator that charges
//! every live allocation its glibc chunk (`malloc_usable_size + 8`).
//!
//! The suite runs it on 200,000 znodes (a few seconds in a debug build); the figure for
//! a million: `cargo test -p zk-server --release --test tree_memory -- --nocapture`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, Ordering};

use bytes::Bytes;
use zk_proto::{Acl, CreateMode, CreateRequest, OpCode};
use zk_server::database::ZkDatabase;
use zk_server::txn::{Origin, Txn, TxnOp};

/// Counts the heap the process holds, as glibc charges it: each chunk's usable size
/// plus its 8-byte header.
struct Counting;

static HELD: AtomicI64 = AtomicI64::new(0);
static LIVE: AtomicI64 = AtomicI64::new(0);

fn charge(ptr: *mut u8) -> i64 {
    // SAFETY: `ptr` was returned by the system allocator and is still live.
    (unsafe { libc::malloc_usable_size(ptr.cast()) } + 8) as i64
}

// SAFETY: every call forwards to the system allocator; the counters only observe.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc(layout);
        if !ptr.is_null() {
            HELD.fetch_add(charge(ptr), Ordering::Relaxed);
            LIVE.fetch_add(1, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc_zeroed(layout);
        if !ptr.is_null() {
            HELD.fetch_add(charge(ptr), Ordering::Relaxed);
            LIVE.fetch_add(1, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(charge(ptr), Ordering::Relaxed);
        LIVE.fetch_sub(1, Ordering::Relaxed);
        System.dealloc(ptr, layout);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let before = charge(ptr);
        let moved = System.realloc(ptr, layout, new_size);
        if !moved.is_null() {
            HELD.fetch_add(charge(moved) - before, Ordering::Relaxed);
        }
        moved
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// A million in a release build (the benchmark's figure); a fifth of that in a debug
/// build (the test suite's), which fills the same structures to the same load.
const ZNODES: u64 = if cfg!(debug_assertions) {
    200_000
} else {
    1_000_000
};
const VALUE_SIZE: usize = 100;
const SESSION: i64 = 0x0100_0000_0000_0001;
/// The budget per znode, data included (Apache ZooKeeper 3.8's heap holds ~445 B).
const BUDGET: f64 = 200.0;

/// What `apply` sees for a client's write: the transaction as the log stores it,
/// decoded (so its data is a `Bytes` of its own, as on every member).
fn logged(seq: u64, op: TxnOp) -> Txn {
    let origin = Origin { server: 1, seq };
    let txn = Txn::for_test(
        origin,
        SESSION,
        seq as i32,
        1_700_000_000_000 + seq as i64,
        op,
    );
    let encoded = rmp_serde::to_vec(&txn).expect("a transaction encodes");
    rmp_serde::from_slice(&encoded).expect("a transaction decodes")
}

fn create(path: String, data: &[u8]) -> TxnOp {
    TxnOp::Create {
        opcode: OpCode::Create2,
        request: CreateRequest {
            path,
            data: Some(Bytes::copy_from_slice(data)),
            acl: Acl::open_unsafe(),
            flags: CreateMode::Persistent.code(),
        },
    }
}

/// The order creates arrive from `zk-bench populate`'s 64 loops: ascending, but
/// shuffled within each window of 64 keys (a fixed linear congruential shuffle).
fn arrival_order() -> impl Iterator<Item = u64> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    (0..ZNODES).step_by(64).flat_map(move |start| {
        let end = (start + 64).min(ZNODES);
        let mut window: Vec<u64> = (start..end).collect();
        for i in (1..window.len()).rev() {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            window.swap(i, (state >> 33) as usize % (i + 1));
        }
        window
    })
}

#[test]
fn znodes_of_100_bytes_fit_the_budget() {
    let mut db = ZkDatabase::new();
    let mut zxid = 0i64;
    let mut next = |db: &mut ZkDatabase, op: TxnOp| {
        zxid += 1;
        let txn = logged(zxid as u64, op);
        let applied = db.apply(zxid, &txn);
        assert!(applied.result.is_ok(), "{:?}", applied.result);
    };
    next(
        &mut db,
        TxnOp::CreateSession {
            timeout: 30_000,
            passwd: Bytes::from_static(&[7; 16]),
        },
    );
    next(&mut db, create("/zkbench-populated".into(), b""));
    let value = vec![b'v'; VALUE_SIZE];
    let (held_before, live_before) = (HELD.load(Ordering::SeqCst), LIVE.load(Ordering::SeqCst));
    for k in arrival_order() {
        next(
            &mut db,
            create(format!("/zkbench-populated/k{k:07}"), &value),
        );
    }
    let held = HELD.load(Ordering::SeqCst) - held_before;
    let live = LIVE.load(Ordering::SeqCst) - live_before;
    assert_eq!(db.tree().node_count() as u64, ZNODES + 5);
    let per_znode = held as f64 / ZNODES as f64;
    println!(
        "tree_memory: {ZNODES} znodes of {VALUE_SIZE} B: {held} B held in {live} allocations, \
         {per_znode:.1} B per znode (budget {BUDGET} B)"
    );
    println!("{}", db.tree().footprint());
    // Recovery's share: writing and reading the snapshot of this tree.
    let started = std::time::Instant::now();
    let snapshot = db.to_snapshot().expect("the snapshot encodes");
    let encoded = started.elapsed();
    let started = std::time::Instant::now();
    let restored = ZkDatabase::from_snapshot(&snapshot).expect("the snapshot decodes");
    let decoded = started.elapsed();
    assert_eq!(restored.tree().node_count(), db.tree().node_count());
    println!(
        "snapshot: {} MB, encoded in {encoded:.2?}, loaded in {decoded:.2?}",
        snapshot.len() / 1_000_000
    );
    assert!(
        per_znode <= BUDGET,
        "{per_znode:.1} B per znode, over the budget of {BUDGET} B"
    );
}
