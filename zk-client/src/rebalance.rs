//! Moving clients when the server list changes, so that load stays balanced: ZooKeeper's
//! client-side rebalancing (`StaticHostProvider.updateServerList` and
//! `nextHostInReconfigMode`, ZOOKEEPER-1355), as pure functions of a random roll.
//!
//! With `old` the list the client had, `new` the list it gets, and "new servers" those
//! of `new` not in `old`:
//!
//! - the list grew and the client's server is in it: move with probability
//!   `1 - |old|/|new|`, to one of the new servers (the expected load evens out);
//! - the list grew and the client's server is not in it: move, to a new server;
//! - the list shrank or kept its size and the client's server is in it: stay;
//! - otherwise move, to a new server with probability `1 - probOld`, to one of the
//!   remaining old ones with `probOld = numOld·(|old| - |new|) / (|new|·(|old| - numOld))`
//!   (`numOld`: servers of `new` that were in `old`). A server only removed leaves its
//!   clients to the remaining ones; one only replaced sends them to its replacement.
//!
//! Servers are told apart by their `host:port` strings, as ZooKeeper's client does for
//! the unresolved addresses of a connect string.

/// What a server list update asks of the client.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Move {
    /// Keep the current connection.
    Stay,
    /// Reconnect (same session), to a server new in the list with probability
    /// `prob_new`, else to one that was already in it (see [`ReconfigPlan`]).
    Reconnect {
        /// The chance, at each attempt, to pick a new server over an old one.
        prob_new: f64,
    },
}

/// ZooKeeper's decision (`StaticHostProvider.updateServerList`): whether a client on
/// `current` moves when its server list goes from `old` to `new` (deduplicated), `roll`
/// being uniform in `[0, 1)` (Java's `nextFloat`).
pub(crate) fn should_move(old: &[String], new: &[String], current: &str, roll: f64) -> Move {
    let current_stays = new.iter().any(|h| h == current);
    let num_old = new.iter().filter(|h| old.contains(h)).count();
    if new.len() > old.len() {
        if !current_stays || roll <= 1.0 - old.len() as f64 / new.len() as f64 {
            Move::Reconnect { prob_new: 1.0 }
        } else {
            Move::Stay
        }
    } else if current_stays {
        Move::Stay
    } else {
        let denominator = new.len() * old.len().saturating_sub(num_old);
        // Every old server remains but the client's (one not listed before): Java's
        // division gives NaN or infinity there, which picks the old servers.
        let prob_old = if denominator == 0 {
            1.0
        } else {
            (num_old * (old.len() - new.len())) as f64 / denominator as f64
        };
        Move::Reconnect {
            prob_new: 1.0 - prob_old,
        }
    }
}

/// Where a client that moves tries to connect (`nextHostInReconfigMode`): each attempt
/// takes a new server with probability `prob_new` (an old one otherwise), each server
/// once; when one kind is used up, the other; when both are, `None` (back to the plain
/// round of the list).
#[derive(Debug, Clone)]
pub(crate) struct ReconfigPlan {
    old: Vec<String>,
    new: Vec<String>,
    prob_new: f64,
    next_old: usize,
    next_new: usize,
}

impl ReconfigPlan {
    /// The plan for list `list` (in the order to try them) after `previous`.
    pub(crate) fn new(previous: &[String], list: &[String], prob_new: f64) -> ReconfigPlan {
        let (old, new) = list.iter().cloned().partition(|h| previous.contains(h));
        ReconfigPlan {
            old,
            new,
            prob_new,
            next_old: 0,
            next_new: 0,
        }
    }

    /// The next server to try, `roll` uniform in `[0, 1)`.
    pub(crate) fn next(&mut self, roll: f64) -> Option<String> {
        let take_new = roll <= self.prob_new;
        if self.next_new < self.new.len() && (take_new || self.next_old >= self.old.len()) {
            self.next_new += 1;
            return Some(self.new[self.next_new - 1].clone());
        }
        if self.next_old < self.old.len() {
            self.next_old += 1;
            return Some(self.old[self.next_old - 1].clone());
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(hosts: &[&str]) -> Vec<String> {
        hosts.iter().map(|h| h.to_string()).collect()
    }

    #[test]
    fn a_grown_list_moves_a_client_with_probability_one_minus_old_over_new() {
        let old = list(&["a:1"]);
        let new = list(&["a:1", "b:1", "c:1"]);
        // 1 - 1/3 = 2/3: rolls up to it move, above it stay.
        for roll in [0.0, 0.3, 0.66] {
            assert_eq!(
                should_move(&old, &new, "a:1", roll),
                Move::Reconnect { prob_new: 1.0 },
                "{roll}"
            );
        }
        for roll in [0.67, 0.9, 0.999] {
            assert_eq!(should_move(&old, &new, "a:1", roll), Move::Stay, "{roll}");
        }
        // 3 -> 5: 1 - 3/5 = 0.4.
        let old = list(&["a:1", "b:1", "c:1"]);
        let new = list(&["a:1", "b:1", "c:1", "d:1", "e:1"]);
        assert_eq!(
            should_move(&old, &new, "b:1", 0.39),
            Move::Reconnect { prob_new: 1.0 }
        );
        assert_eq!(should_move(&old, &new, "b:1", 0.41), Move::Stay);
    }

    #[test]
    fn a_client_whose_server_left_a_grown_list_moves_to_a_new_server() {
        let old = list(&["a:1", "b:1"]);
        let new = list(&["b:1", "c:1", "d:1"]);
        for roll in [0.0, 0.5, 0.999] {
            assert_eq!(
                should_move(&old, &new, "a:1", roll),
                Move::Reconnect { prob_new: 1.0 }
            );
        }
    }

    #[test]
    fn a_client_whose_server_remains_in_a_shrunk_or_same_size_list_stays() {
        let old = list(&["a:1", "b:1", "c:1"]);
        for roll in [0.0, 0.5, 0.999] {
            assert_eq!(
                should_move(&old, &list(&["a:1", "b:1"]), "a:1", roll),
                Move::Stay
            );
            assert_eq!(
                should_move(&old, &list(&["c:1", "a:1", "b:1"]), "a:1", roll),
                Move::Stay
            );
            // Same size, one replaced, the client's server kept.
            assert_eq!(
                should_move(&old, &list(&["a:1", "b:1", "d:1"]), "a:1", roll),
                Move::Stay
            );
        }
    }

    #[test]
    fn a_client_whose_server_was_removed_moves_to_a_remaining_one() {
        let old = list(&["a:1", "b:1", "c:1"]);
        let new = list(&["b:1", "c:1"]);
        // numOld = 2: probOld = 2·(3-2) / (2·(3-2)) = 1.
        assert_eq!(
            should_move(&old, &new, "a:1", 0.5),
            Move::Reconnect { prob_new: 0.0 }
        );
    }

    #[test]
    fn a_client_whose_server_was_replaced_moves_to_old_and_new_servers_in_proportion() {
        // Same size, a replaced by d: probOld = 2·0 / (3·1) = 0, all of a's clients
        // go to d.
        let old = list(&["a:1", "b:1", "c:1"]);
        assert_eq!(
            should_move(&old, &list(&["b:1", "c:1", "d:1"]), "a:1", 0.5),
            Move::Reconnect { prob_new: 1.0 }
        );
        // 4 -> 3, a and b replaced by e: numOld = 2, probOld = 2·1 / (3·2) = 1/3.
        let old = list(&["a:1", "b:1", "c:1", "d:1"]);
        let Move::Reconnect { prob_new } =
            should_move(&old, &list(&["c:1", "d:1", "e:1"]), "a:1", 0.5)
        else {
            panic!("must move");
        };
        assert!((prob_new - 2.0 / 3.0).abs() < 1e-9, "{prob_new}");
        // Everything replaced: numOld = 0, all to the new ones.
        assert_eq!(
            should_move(&old, &list(&["x:1", "y:1"]), "a:1", 0.5),
            Move::Reconnect { prob_new: 1.0 }
        );
    }

    #[test]
    fn a_client_on_a_server_outside_both_lists_moves_to_the_old_ones() {
        // Java's 0/0 case: every old server remains; the client's was never listed.
        let old = list(&["a:1", "b:1"]);
        assert_eq!(
            should_move(&old, &list(&["a:1", "b:1"]), "z:1", 0.5),
            Move::Reconnect { prob_new: 0.0 }
        );
    }

    #[test]
    fn the_plan_tries_new_servers_first_then_old_ones_then_gives_up() {
        let previous = list(&["a:1", "b:1"]);
        let mut plan = ReconfigPlan::new(&previous, &list(&["c:1", "a:1", "d:1", "b:1"]), 1.0);
        let tried: Vec<_> = std::iter::from_fn(|| plan.next(0.5)).collect();
        assert_eq!(tried, list(&["c:1", "d:1", "a:1", "b:1"]));
        assert_eq!(plan.next(0.0), None);
    }

    #[test]
    fn the_plan_follows_the_rolls_between_old_and_new() {
        let previous = list(&["a:1", "b:1"]);
        let mut plan = ReconfigPlan::new(&previous, &list(&["a:1", "b:1", "c:1"]), 0.25);
        assert_eq!(plan.next(0.9).as_deref(), Some("a:1")); // old
        assert_eq!(plan.next(0.1).as_deref(), Some("c:1")); // new
                                                            // New ones used up: old, whatever the roll.
        assert_eq!(plan.next(0.1).as_deref(), Some("b:1"));
        assert_eq!(plan.next(0.1), None);
        // prob_new 0: old ones first, new ones once they are used up.
        let mut plan = ReconfigPlan::new(&previous, &list(&["c:1", "b:1"]), 0.0);
        assert_eq!(plan.next(0.5).as_deref(), Some("b:1"));
        assert_eq!(plan.next(0.5).as_deref(), Some("c:1"));
        assert_eq!(plan.next(0.5), None);
    }
}
