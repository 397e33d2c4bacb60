//! The handle's side of the request queue: commands are queued when a method is
//! *called*, in call order, even when the bounded channel to the session task is full.
//!
//! The channel is tried first. When it is full the command waits in an overflow FIFO
//! that a small task drains into the channel as room appears; while anything waits
//! there, every later command goes behind it, so nothing overtakes. (Queuing at first
//! poll instead would let a later call overtake an earlier, unpolled one.) Memory is
//! still bounded by the callers: each waiting command belongs to a future someone
//! holds, and the session task takes at most `max_in_flight` onto the wire.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc::{self, error::TrySendError};

use crate::session::Command;

/// Queues commands for one session task, in call order.
#[derive(Debug)]
pub(crate) struct CommandQueue {
    tx: mpsc::Sender<Command>,
    overflow: Arc<Mutex<Overflow>>,
    /// Where the drainer runs (calls may come from outside any runtime: the blocking
    /// facade).
    runtime: tokio::runtime::Handle,
}

/// The session task is gone: the client was closed or its session ended.
#[derive(Debug)]
pub(crate) struct SessionGone;

#[derive(Debug, Default)]
struct Overflow {
    waiting: VecDeque<Command>,
    /// A drainer is running; new commands go behind `waiting`.
    draining: bool,
}

fn lock(m: &Mutex<Overflow>) -> MutexGuard<'_, Overflow> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl CommandQueue {
    pub(crate) fn new(tx: mpsc::Sender<Command>, runtime: tokio::runtime::Handle) -> Self {
        CommandQueue {
            tx,
            overflow: Arc::default(),
            runtime,
        }
    }

    /// Queues `command` now. `Err` when the session task is gone (the command is
    /// dropped: nothing will answer it).
    pub(crate) fn push(&self, command: Command) -> Result<(), SessionGone> {
        let mut overflow = lock(&self.overflow);
        if overflow.draining {
            overflow.waiting.push_back(command);
            return Ok(());
        }
        match self.tx.try_send(command) {
            Ok(()) => Ok(()),
            Err(TrySendError::Closed(_)) => Err(SessionGone),
            Err(TrySendError::Full(command)) => {
                overflow.waiting.push_back(command);
                overflow.draining = true;
                self.runtime
                    .spawn(drain(self.tx.clone(), self.overflow.clone()));
                Ok(())
            }
        }
    }
}

/// Moves the overflow into the channel, oldest first, as room appears; stops when it
/// is empty. If the session task is gone, the waiting commands are dropped (their
/// callers learn why from the session's final state).
async fn drain(tx: mpsc::Sender<Command>, overflow: Arc<Mutex<Overflow>>) {
    loop {
        let permit = tx.reserve().await;
        let mut o = lock(&overflow);
        match permit {
            Ok(permit) => match o.waiting.pop_front() {
                Some(command) => permit.send(command),
                None => {
                    o.draining = false;
                    return;
                }
            },
            Err(_) => {
                let dropped = std::mem::take(&mut o.waiting);
                o.draining = false;
                drop(o);
                drop(dropped);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Outgoing;
    use tokio::sync::oneshot;
    use zk_proto::{Request, SyncRequest};

    fn request(n: usize) -> Command {
        let (responder, _) = oneshot::channel();
        Command::Request(Outgoing {
            request: Request::Sync(SyncRequest {
                path: format!("/{n}"),
            }),
            path: String::new(),
            watch: None,
            responder,
        })
    }

    fn number(c: Command) -> usize {
        match c {
            Command::Request(o) => match o.request {
                Request::Sync(s) => s.path[1..].parse().unwrap(),
                _ => unreachable!(),
            },
            _ => unreachable!(),
        }
    }

    /// Commands pushed while the channel is full (and while earlier ones still wait)
    /// come out in the order they were pushed: none overtakes another.
    #[tokio::test]
    async fn a_full_channel_keeps_call_order() {
        let (tx, mut rx) = mpsc::channel(2);
        let queue = CommandQueue::new(tx, tokio::runtime::Handle::current());
        for n in 0..10 {
            assert!(queue.push(request(n)).is_ok());
        }
        let mut seen = Vec::new();
        for n in 10..20 {
            seen.push(number(rx.recv().await.unwrap()));
            // Room appears while commands still wait: a new one must not take it.
            assert!(queue.push(request(n)).is_ok());
        }
        while seen.len() < 20 {
            seen.push(number(rx.recv().await.unwrap()));
        }
        assert_eq!(seen, (0..20).collect::<Vec<_>>());
        // Drained: the next command goes straight into the channel.
        tokio::task::yield_now().await;
        assert!(queue.push(request(20)).is_ok());
        assert_eq!(number(rx.recv().await.unwrap()), 20);
    }

    #[tokio::test]
    async fn a_closed_session_gives_the_command_back() {
        let (tx, rx) = mpsc::channel(2);
        let queue = CommandQueue::new(tx, tokio::runtime::Handle::current());
        drop(rx);
        assert!(queue.push(request(0)).is_err());
    }
}
