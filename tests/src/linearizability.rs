//! A linearizability checker for one ZooKeeper znode used as a register: reads
//! (sync + getData), writes (setData with version -1) and compare-and-set (setData
//! with an expected version), each with its call and return time as a client saw it.
//!
//! The search is Wing & Gong's, with Lowe's memoisation: linearize, one at a time, an
//! operation that was called before every not-yet-linearized operation returned,
//! applying it to the register model; remember (set of linearized operations, model
//! state) pairs already explored. An operation whose outcome is unknown (the
//! connection was lost before its reply) never returned: it may take effect at any
//! point after its call, or never.

use std::collections::HashSet;

/// The register: a znode's data (a number here) and its data version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Register {
    /// The value last written.
    pub value: u64,
    /// The znode's data version.
    pub version: i32,
}

/// What a client asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// sync, then getData.
    Read,
    /// setData with version -1.
    Write(u64),
    /// setData of `value` if the version is `expected`.
    Cas {
        /// The version the caller read.
        expected: i32,
        /// The value to write.
        value: u64,
    },
}

/// What the client was told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A read's answer.
    Read(Register),
    /// setData succeeded; the Stat's new version.
    Written(i32),
    /// BadVersion.
    CasFailed,
    /// No answer (connection lost): may or may not have taken effect.
    Unknown,
}

/// One operation of the history.
#[derive(Debug, Clone, Copy)]
pub struct Event {
    /// What was asked.
    pub op: Op,
    /// What came back.
    pub outcome: Outcome,
    /// When it was called (any monotonic unit).
    pub call: u64,
    /// When it returned; ignored for [`Outcome::Unknown`].
    pub ret: u64,
}

impl Event {
    fn returned(&self) -> bool {
        self.outcome != Outcome::Unknown
    }

    fn ret_or_never(&self) -> u64 {
        if self.returned() {
            self.ret
        } else {
            u64::MAX
        }
    }

    /// The register after this operation takes effect at `state`, if it can.
    fn step(&self, state: Register) -> Option<Register> {
        let written = |value| Register {
            value,
            version: state.version + 1,
        };
        match (self.op, self.outcome) {
            (Op::Read, Outcome::Read(seen)) => (seen == state).then_some(state),
            (Op::Write(value), Outcome::Written(version)) => {
                (version == state.version + 1).then_some(written(value))
            }
            (Op::Write(value), Outcome::Unknown) => Some(written(value)),
            (Op::Cas { expected, value }, Outcome::Written(version)) => {
                (state.version == expected && version == expected + 1).then_some(written(value))
            }
            (Op::Cas { expected, .. }, Outcome::CasFailed) => {
                (state.version != expected).then_some(state)
            }
            (Op::Cas { expected, value }, Outcome::Unknown) => {
                (state.version == expected).then_some(written(value))
            }
            _ => None,
        }
    }
}

/// A set of operation indices.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Done(Vec<u64>);

impl Done {
    fn new(n: usize) -> Done {
        Done(vec![0; n.div_ceil(64)])
    }
    fn has(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    fn with(&self, i: usize) -> Done {
        let mut d = self.clone();
        d.0[i / 64] |= 1 << (i % 64);
        d
    }
}

/// Whether `history`, starting from `initial`, is linearizable. On failure, says how
/// far the longest explained prefix went.
pub fn check(history: &[Event], initial: Register) -> Result<(), String> {
    let mut events: Vec<Event> = history.to_vec();
    events.sort_by_key(|e| e.call);
    let mut seen = HashSet::new();
    let mut deepest = 0;
    if search(
        &events,
        Done::new(events.len()),
        0,
        initial,
        &mut seen,
        &mut deepest,
    ) {
        Ok(())
    } else {
        Err(format!(
            "not linearizable: {} operations, at most {deepest} could be ordered",
            events.len()
        ))
    }
}

fn search(
    events: &[Event],
    done: Done,
    count: usize,
    state: Register,
    seen: &mut HashSet<(Done, Register)>,
    deepest: &mut usize,
) -> bool {
    *deepest = (*deepest).max(count);
    // Explained once every operation that returned is linearized.
    let open: Vec<usize> = (0..events.len()).filter(|i| !done.has(*i)).collect();
    if open.iter().all(|i| !events[*i].returned()) {
        return true;
    }
    if !seen.insert((done.clone(), state)) {
        return false;
    }
    // Next may be any open operation called before the earliest open return.
    let horizon = open
        .iter()
        .map(|i| events[*i].ret_or_never())
        .min()
        .unwrap_or(u64::MAX);
    for &i in &open {
        let e = &events[i];
        if e.call > horizon {
            break; // sorted by call
        }
        if let Some(next) = e.step(state) {
            if search(events, done.with(i), count + 1, next, seen, deepest) {
                return true;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: Register = Register {
        value: 0,
        version: 0,
    };

    fn ev(op: Op, outcome: Outcome, call: u64, ret: u64) -> Event {
        Event {
            op,
            outcome,
            call,
            ret,
        }
    }

    fn read(value: u64, version: i32) -> Outcome {
        Outcome::Read(Register { value, version })
    }

    #[test]
    fn sequential_histories_are_linearizable() {
        let h = [
            ev(Op::Write(5), Outcome::Written(1), 0, 1),
            ev(Op::Read, read(5, 1), 2, 3),
            ev(
                Op::Cas {
                    expected: 1,
                    value: 6,
                },
                Outcome::Written(2),
                4,
                5,
            ),
            ev(
                Op::Cas {
                    expected: 1,
                    value: 7,
                },
                Outcome::CasFailed,
                6,
                7,
            ),
            ev(Op::Read, read(6, 2), 8, 9),
        ];
        assert!(check(&h, START).is_ok());
    }

    #[test]
    fn a_stale_read_after_a_completed_write_is_not() {
        let h = [
            ev(Op::Write(5), Outcome::Written(1), 0, 1),
            ev(Op::Read, read(0, 0), 2, 3),
        ];
        assert!(check(&h, START).is_err());
    }

    #[test]
    fn concurrent_operations_may_be_ordered_either_way() {
        // The read overlaps the write: old or new value are both fine.
        for seen in [read(0, 0), read(5, 1)] {
            let h = [
                ev(Op::Write(5), Outcome::Written(1), 0, 10),
                ev(Op::Read, seen, 1, 2),
            ];
            assert!(check(&h, START).is_ok());
        }
    }

    #[test]
    fn two_successful_cas_from_the_same_version_are_not() {
        let cas = |value| Op::Cas { expected: 0, value };
        let h = [
            ev(cas(1), Outcome::Written(1), 0, 5),
            ev(cas(2), Outcome::Written(1), 1, 6),
        ];
        assert!(check(&h, START).is_err());
    }

    #[test]
    fn an_unknown_write_may_or_may_not_have_happened() {
        let lost = ev(Op::Write(9), Outcome::Unknown, 0, 0);
        assert!(check(&[lost, ev(Op::Read, read(0, 0), 5, 6)], START).is_ok());
        assert!(check(&[lost, ev(Op::Read, read(9, 1), 5, 6)], START).is_ok());
        // But once seen, it cannot be unseen.
        let h = [
            lost,
            ev(Op::Read, read(9, 1), 5, 6),
            ev(Op::Read, read(0, 0), 7, 8),
        ];
        assert!(check(&h, START).is_err());
        // And it cannot take effect before it was called.
        let h = [
            ev(Op::Read, read(9, 1), 0, 1),
            ev(Op::Write(9), Outcome::Unknown, 2, 0),
        ];
        assert!(check(&h, START).is_err());
    }

    #[test]
    fn versions_must_count_every_write() {
        let h = [
            ev(Op::Write(1), Outcome::Written(1), 0, 1),
            ev(Op::Write(2), Outcome::Written(3), 2, 3),
        ];
        assert!(check(&h, START).is_err());
    }
}
