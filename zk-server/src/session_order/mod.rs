//! The order one connection's answers go out in: ZooKeeper's per-session FIFO, without
//! making the connection's reader wait.
//!
//! - A write is submitted to the log as soon as it is read and opens a *gate*: it is
//!   answered when this server has applied it ([`crate::core::ServerCore::apply_committed`]).
//!   `sync` and `reconfig` open gates too, closed by their own tasks.
//! - A request read behind an open gate is *parked* on it. When the gate is released,
//!   its parked reads are evaluated there and then: for a write, inside the apply,
//!   under the database lock, against the tree as of that write and before anything
//!   later is applied.
//! - A read with nothing ahead of it is evaluated at once, by the reader.
//! - A write read behind an unfinished `sync` or `reconfig` is parked too, and
//!   submitted when that gate is released: were it submitted at once, it could be
//!   applied before the reads queued ahead of it were evaluated.
//!
//! Answers and watch notifications reach the connection's writer through one channel,
//! the [`Outbox`], and are always pushed under the database lock (read or write). The
//! channel's order is therefore the order in which things happened: a read's answer
//! follows the notifications of the changes it saw and precedes those of later
//! changes (a client registers its watcher only when the answer arrives).

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;

use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio_util::sync::CancellationToken;
use zk_proto::{ErrorCode, Id, OpCode, ReplyHeader, Request, Response, WatcherEvent};

use crate::core::{notification_bytes, ConnCounters, Owed, ServerCore, SubmitError};
use crate::database::ZkDatabase;
use crate::evaluate::run_read;
use crate::txn::TxnOp;
use crate::watches::ConnId;

/// What a connection's writer is handed, in the order it must write it.
#[derive(Debug)]
pub enum Outgoing {
    /// A watch notification; its bytes count against the connection's output limit
    /// until it is written.
    Event(WatcherEvent),
    /// The answer to one request.
    Answer(Answer),
    /// Everything the connection's reader read has been answered; the writer stops.
    End,
}

/// The channel from everything that answers a connection to its writer. Unbounded as
/// a channel, bounded in use: answers by the connection's and the server's outstanding
/// request permits (carried in each [`Ticket`]), notifications by count and bytes
/// (`deliver` in [`crate::core`]).
pub type Outbox = mpsc::UnboundedSender<Outgoing>;

/// What a request holds from the moment it is read until its answer is written.
#[derive(Debug)]
pub struct Ticket {
    /// The request's type, for the metrics (`None`: not understood).
    pub op: Option<OpCode>,
    /// When it was read.
    pub started: Instant,
    /// Its share of `globalOutstandingLimit` (none when it was its connection's only
    /// request and the limit was reached).
    pub global: Option<OwnedSemaphorePermit>,
    /// Its place in its connection's queue of unanswered requests.
    pub connection: Option<OwnedSemaphorePermit>,
}

impl Ticket {
    /// A ticket for a request read now, holding no permits.
    pub fn new() -> Ticket {
        Ticket {
            op: None,
            started: Instant::now(),
            global: None,
            connection: None,
        }
    }
}

impl Default for Ticket {
    fn default() -> Ticket {
        Ticket::new()
    }
}

/// One request's answer, ready to be written.
#[derive(Debug)]
pub struct Answer {
    /// The reply header (xid, zxid, error).
    pub header: ReplyHeader,
    /// The body, sent only with no error (and for a refused `sasl` request's token).
    pub body: Option<Response>,
    /// The connection closes once this is written.
    pub close_after: bool,
    /// The request's ticket, given back once written.
    pub ticket: Ticket,
}

/// A read waiting for its turn.
#[derive(Debug)]
pub struct ReadRequest {
    /// Its xid.
    pub xid: i32,
    /// The request.
    pub request: Request,
    /// The connection's identities when it was read.
    pub auth: Arc<Vec<Id>>,
    /// Its ticket.
    pub ticket: Ticket,
}

/// A write not yet submitted.
#[derive(Debug)]
pub struct WriteRequest {
    /// Its xid.
    pub xid: i32,
    /// The transaction it proposes.
    pub op: TxnOp,
    /// The connection's identities when it was read.
    pub auth: Arc<Vec<Id>>,
    /// The connection closes once it is answered (closeSession).
    pub close_after: bool,
    /// Its ticket.
    pub ticket: Ticket,
}

/// A request that takes its turn in the connection's order without a gate of its own.
#[derive(Debug)]
pub enum Turn {
    /// A read: evaluated when its turn comes.
    Read(ReadRequest),
    /// An answer known when the request was read (an error, auth). With `stamp`, its
    /// header's zxid is the last applied one when its turn comes, as ZooKeeper's final
    /// processor stamps it (stamped when read, it could go below that of an earlier
    /// write of the connection).
    Ready {
        /// The answer.
        answer: Answer,
        /// Whether to stamp it.
        stamp: bool,
    },
    /// A write: submitted when nothing unfinished that is not a write is ahead of it,
    /// opening its gate.
    Write(WriteRequest),
    /// The reader is done: the writer stops once everything ahead is written.
    End,
}

/// A request answered later, and what was read behind it.
#[derive(Debug)]
struct Gate {
    id: u64,
    /// A `sync` or `reconfig` (not answered in log order).
    task: bool,
    /// Its answer, complete once `done`.
    answer: Answer,
    done: bool,
    /// Its header's zxid is the last applied one when it is written (a refusal).
    stamp: bool,
    /// What was read after it and before the next gate, in order.
    parked: Vec<Turn>,
}

/// One connection's unanswered requests, in order. Locked after the database (read or
/// write) and before the pending writes, the watches and the connections.
#[derive(Debug)]
pub struct SessionOrder {
    conn: ConnId,
    session_id: i64,
    outbox: Outbox,
    close: CancellationToken,
    counters: Arc<ConnCounters>,
    gates: VecDeque<Gate>,
    next_gate: u64,
    this: Weak<Mutex<SessionOrder>>,
}

/// A connection's [`SessionOrder`], shared by its reader, the writes it owes and the
/// tasks answering its `sync` and `reconfig` requests.
#[derive(Debug, Clone)]
pub struct SharedOrder(Arc<Mutex<SessionOrder>>);

impl SharedOrder {
    /// The order of connection `conn` carrying `session_id`, answering into `outbox`;
    /// `close` is cancelled when a write it owes is lost.
    pub fn new(
        conn: ConnId,
        session_id: i64,
        outbox: Outbox,
        close: CancellationToken,
        counters: Arc<ConnCounters>,
    ) -> SharedOrder {
        SharedOrder(Arc::new_cyclic(|this| {
            Mutex::new(SessionOrder {
                conn,
                session_id,
                outbox,
                close,
                counters,
                gates: VecDeque::new(),
                next_gate: 0,
                this: this.clone(),
            })
        }))
    }

    /// Locks it (take the database lock first when both are needed).
    pub fn lock(&self) -> MutexGuard<'_, SessionOrder> {
        // A panic while holding it is a bug; keep the connection's order usable.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A write's answer owed to its connection: held by the core until the write is
/// applied ([`OwedAnswer::answer`]). Dropped unanswered (the leader changed, the write
/// was refused, the write path stopped), it closes the connection: the client will
/// reconnect and learn what became of its writes.
#[derive(Debug)]
pub struct OwedAnswer {
    /// Strong: the connection's reader may be gone while its answers are owed.
    order: SharedOrder,
    gate: u64,
    close: CancellationToken,
    answered: bool,
}

impl OwedAnswer {
    /// The write was applied at `zxid` with `result`: its gate is answered, and what
    /// waited behind it is released. Called under the database write lock.
    pub fn answer(
        mut self,
        zxid: i64,
        result: Result<Response, ErrorCode>,
        db: &ZkDatabase,
        core: &ServerCore,
    ) {
        self.answered = true;
        self.order
            .lock()
            .complete(self.gate, zxid, result, db, core);
    }
}

impl OwedAnswer {
    /// Gives it up without closing the connection (the write was refused, and the
    /// refusal is answered in its place).
    fn disarm(mut self) {
        self.answered = true;
    }
}

impl Drop for OwedAnswer {
    fn drop(&mut self) {
        if !self.answered {
            self.close.cancel();
        }
    }
}

impl SessionOrder {
    /// Takes a request read by the connection's reader (under `db`, this server's
    /// database, read-locked): answered, submitted or parked.
    pub fn take(&mut self, turn: Turn, db: &ZkDatabase, core: &ServerCore) {
        let at = self.gates.len();
        self.admit(turn, at, db, core);
        self.release(db, core);
    }

    /// Opens a gate for a `sync` or `reconfig`, answered by [`SessionOrder::complete`]
    /// once its task is done: `answer` is completed then.
    pub fn open_task(&mut self, answer: Answer) -> u64 {
        self.open_at(self.gates.len(), answer, true)
    }

    /// Completes gate `id` with its outcome, then releases what can go: every gate at
    /// the front that is complete, and what is parked behind each.
    pub fn complete(
        &mut self,
        id: u64,
        zxid: i64,
        result: Result<Response, ErrorCode>,
        db: &ZkDatabase,
        core: &ServerCore,
    ) {
        if let Some(gate) = self.gates.iter_mut().find(|g| g.id == id) {
            let (err, body) = match result {
                Ok(body) => (ErrorCode::Ok, Some(body)),
                Err(code) => (code, None),
            };
            gate.answer.header.zxid = zxid;
            gate.answer.header.err = err.code();
            gate.answer.body = body;
            gate.done = true;
        }
        self.release(db, core);
    }

    fn open_at(&mut self, at: usize, answer: Answer, task: bool) -> u64 {
        let id = self.next_gate;
        self.next_gate += 1;
        self.gates.insert(
            at,
            Gate {
                id,
                task,
                answer,
                done: false,
                stamp: false,
                parked: Vec::new(),
            },
        );
        id
    }

    /// Admits `turn` with the gates before index `at` ahead of it; returns where the
    /// next turn goes.
    fn admit(&mut self, turn: Turn, at: usize, db: &ZkDatabase, core: &ServerCore) -> usize {
        match turn {
            Turn::Write(write) => {
                // Behind an unfinished sync or reconfig: it waits (see the module doc).
                let behind_task = self.gates.iter().take(at).any(|g| g.task && !g.done);
                if behind_task {
                    self.gates[at - 1].parked.push(Turn::Write(write));
                    return at;
                }
                self.submit(write, at, core);
                at + 1
            }
            other if at > 0 => {
                self.gates[at - 1].parked.push(other);
                at
            }
            other => {
                self.run(other, db, core);
                at
            }
        }
    }

    /// Submits a write, opening its gate at index `at`; a refused write's gate is
    /// complete at once, with the refusal.
    fn submit(&mut self, write: WriteRequest, at: usize, core: &ServerCore) {
        let WriteRequest {
            xid,
            op,
            auth,
            close_after,
            ticket,
        } = write;
        let answer = Answer {
            header: ReplyHeader::new(xid, 0, ErrorCode::Ok),
            body: None,
            close_after,
            ticket,
        };
        let Some(order) = self.this.upgrade() else {
            // Unreachable: `self` is borrowed from the order's own mutex.
            self.close.cancel();
            return;
        };
        let gate = self.open_at(at, answer, false);
        let owed = OwedAnswer {
            order: SharedOrder(order),
            gate,
            close: self.close.clone(),
            answered: false,
        };
        let submitted = core.submit_owed(
            Some(&self.close),
            self.session_id,
            xid,
            auth.as_ref().clone(),
            op,
            Owed::Answer(owed),
        );
        let refusal = match submitted {
            Ok(()) => return,
            Err((e, owed)) => {
                // Refused, not lost: answered in its turn with the refusal.
                if let Owed::Answer(owed) = owed {
                    owed.disarm();
                }
                tracing::warn!(error = %e, "write refused");
                match e {
                    // The client keeps its session and may read; the write was not done.
                    SubmitError::DiskFull(_) => (ErrorCode::SystemError, false),
                    SubmitError::Unavailable(_) => (ErrorCode::ConnectionLoss, true),
                }
            }
        };
        if let Some(g) = self.gates.iter_mut().find(|g| g.id == gate) {
            g.answer.header.err = refusal.0.code();
            g.answer.close_after |= refusal.1;
            g.stamp = true;
            g.done = true;
        }
    }

    /// Writes out every complete gate at the front, evaluating what was parked behind
    /// each in order.
    fn release(&mut self, db: &ZkDatabase, core: &ServerCore) {
        while self.gates.front().is_some_and(|g| g.done) {
            let Some(gate) = self.gates.pop_front() else {
                break;
            };
            let mut answer = gate.answer;
            // A refusal, or a sync or reconfig (completed out of log order): stamped
            // when written, so the connection's reply zxids never go back.
            if gate.stamp || gate.task {
                answer.header.zxid = db.last_zxid();
            }
            self.send(Outgoing::Answer(answer));
            let mut at = 0;
            for turn in gate.parked {
                at = self.admit(turn, at, db, core);
            }
        }
    }

    /// Answers a turn whose time has come.
    fn run(&mut self, turn: Turn, db: &ZkDatabase, core: &ServerCore) {
        match turn {
            Turn::Read(read) => {
                let (reply_xid, result, fired) = {
                    let mut watches = core.watches();
                    run_read(
                        db,
                        &mut watches,
                        self.conn,
                        self.session_id,
                        read.xid,
                        &read.request,
                        &read.auth,
                    )
                };
                // Fired by the read itself (setWatches catching up), before its answer.
                // Counted as queued notifications are, since the writer uncounts them.
                for (_, event) in fired {
                    self.counters
                        .queued_bytes
                        .fetch_add(notification_bytes(&event), Ordering::Relaxed);
                    self.counters.queued_events.fetch_add(1, Ordering::Relaxed);
                    self.send(Outgoing::Event(event));
                }
                let (err, body) = match result {
                    Ok(body) => (ErrorCode::Ok, Some(body)),
                    Err(code) => (code, None),
                };
                self.send(Outgoing::Answer(Answer {
                    header: ReplyHeader::new(reply_xid, db.last_zxid(), err),
                    body,
                    close_after: false,
                    ticket: read.ticket,
                }));
            }
            Turn::Ready { mut answer, stamp } => {
                if stamp {
                    answer.header.zxid = db.last_zxid();
                }
                self.send(Outgoing::Answer(answer));
            }
            Turn::End => self.send(Outgoing::End),
            // Admitted by `admit`, never run.
            Turn::Write(write) => self.submit(write, 0, core),
        }
    }

    fn send(&self, outgoing: Outgoing) {
        // The writer gone, the connection is closing: nothing is left to tell.
        let _ = self.outbox.send(outgoing);
    }
}

#[cfg(test)]
mod tests;
