//! Session liveness, which is *not* replicated: when each session was last heard from,
//! and which sessions have outlived their timeout. The leader alone expires sessions
//! (by proposing closeSession), and a new leader first gives every session a fresh full
//! timeout, so a failover never expires a live client.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Deadlines of the sessions this server is responsible for expiring.
#[derive(Debug, Default)]
pub struct SessionTracker {
    sessions: HashMap<i64, Tracked>,
    /// Sessions heard from since the last [`SessionTracker::take_touched`] (a follower
    /// passes them on to the leader).
    touched: HashSet<i64>,
    /// On the leader: the member each session last (re)connected through. A write
    /// from a session's earlier connection elsewhere is refused (ZooKeeper's session
    /// move); a new leader starts without owners.
    owners: HashMap<i64, u64>,
}

#[derive(Debug, Clone, Copy)]
struct Tracked {
    timeout: Duration,
    deadline: Instant,
    /// A closeSession was proposed; do not propose another.
    closing: bool,
}

impl SessionTracker {
    /// An empty tracker.
    pub fn new() -> SessionTracker {
        SessionTracker::default()
    }

    /// Starts tracking a session with a full timeout from `now`.
    pub fn add(&mut self, session: i64, timeout_ms: i32, now: Instant) {
        let timeout = Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(0));
        self.sessions.insert(
            session,
            Tracked {
                timeout,
                deadline: now + timeout,
                closing: false,
            },
        );
    }

    /// The session was heard from: its deadline moves to `now + timeout`. False if the
    /// session is unknown or already being closed.
    pub fn touch(&mut self, session: i64, now: Instant) -> bool {
        match self.sessions.get_mut(&session) {
            Some(t) if !t.closing => {
                t.deadline = now + t.timeout;
                self.touched.insert(session);
                true
            }
            _ => false,
        }
    }

    /// A client (re)connected its session through member `server` (on the leader):
    /// `None` if the session is unknown here, `Some(false)` if it is being closed,
    /// else `Some(true)` with the session touched and owned by `server`.
    pub fn set_owner(&mut self, session: i64, server: u64, now: Instant) -> Option<bool> {
        let tracked = self.sessions.get(&session)?;
        if tracked.closing {
            return Some(false);
        }
        self.touch(session, now);
        self.owners.insert(session, server);
        Some(true)
    }

    /// The member a session last connected through, when this tracker knows it.
    pub fn owner(&self, session: i64) -> Option<u64> {
        self.owners.get(&session).copied()
    }

    /// The sessions heard from since the last call (sorted).
    pub fn take_touched(&mut self) -> Vec<i64> {
        let mut touched: Vec<i64> = self.touched.drain().collect();
        touched.sort_unstable();
        touched
    }

    /// Stops tracking (the session was closed).
    pub fn remove(&mut self, session: i64) {
        self.sessions.remove(&session);
        self.touched.remove(&session);
        self.owners.remove(&session);
    }

    /// Sessions past their deadline, each returned once (marked closing).
    pub fn take_expired(&mut self, now: Instant) -> Vec<i64> {
        let mut expired: Vec<i64> = self
            .sessions
            .iter_mut()
            .filter(|(_, t)| !t.closing && t.deadline <= now)
            .map(|(id, t)| {
                t.closing = true;
                *id
            })
            .collect();
        expired.sort_unstable();
        expired
    }

    /// Marks a session closing now, as [`SessionTracker::take_expired`] marks one past
    /// its deadline: later touches and reconnects no longer save it. True if this call
    /// marked it (the caller proposes its close); false if the session is unknown here
    /// or already closing.
    pub fn begin_close(&mut self, session: i64) -> bool {
        match self.sessions.get_mut(&session) {
            Some(t) if !t.closing => {
                t.closing = true;
                true
            }
            _ => false,
        }
    }

    /// Undoes [`SessionTracker::begin_close`] when the close could not be proposed: the
    /// session lives on, its deadline unchanged.
    pub fn cancel_close(&mut self, session: i64) {
        if let Some(t) = self.sessions.get_mut(&session) {
            t.closing = false;
        }
    }

    /// Tracks exactly `sessions`, each with a fresh full timeout (on becoming leader or
    /// after recovery).
    pub fn reset_all(&mut self, sessions: impl IntoIterator<Item = (i64, i32)>, now: Instant) {
        self.sessions.clear();
        self.touched.clear();
        self.owners.clear();
        for (id, timeout) in sessions {
            self.add(id, timeout, now);
        }
    }

    /// Number of tracked sessions.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether no session is tracked.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }
}

/// Hands out session ids as ZooKeeper's `SessionTrackerImpl.initializeNextSessionId`
/// does: the server id in the top byte, wall-clock milliseconds below, then a counter.
#[derive(Debug)]
pub struct SessionIdGenerator {
    next: i64,
}

impl SessionIdGenerator {
    /// A generator for server `server_id` (0 for standalone; ids below 255 keep the top
    /// byte clear of the TTL mark).
    pub fn new(server_id: u64) -> SessionIdGenerator {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let base = (now_ms << 24) >> 8;
        let mut next = (base | ((server_id & 0xff) << 56)) as i64;
        if next == crate::tree::CONTAINER_OWNER || next == 0 {
            next = next.wrapping_add(1);
        }
        SessionIdGenerator { next }
    }

    /// The next id.
    pub fn next_id(&mut self) -> i64 {
        let id = self.next;
        self.next = self.next.wrapping_add(1);
        if self.next == crate::tree::CONTAINER_OWNER || self.next == 0 {
            self.next = self.next.wrapping_add(1);
        }
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_after_their_timeout_unless_touched() {
        let t0 = Instant::now();
        let mut t = SessionTracker::new();
        t.add(1, 1000, t0);
        t.add(2, 1000, t0);
        assert!(t.touch(2, t0 + Duration::from_millis(900)));
        assert_eq!(t.take_expired(t0 + Duration::from_millis(1000)), vec![1]);
        // Reported once.
        assert_eq!(
            t.take_expired(t0 + Duration::from_millis(1100)),
            Vec::<i64>::new()
        );
        assert!(!t.touch(1, t0 + Duration::from_millis(1100)));
        assert_eq!(t.take_expired(t0 + Duration::from_millis(1900)), vec![2]);
    }

    #[test]
    fn a_session_closed_now_is_not_saved_by_a_touch_nor_expired_again() {
        let t0 = Instant::now();
        let mut t = SessionTracker::new();
        t.add(1, 1000, t0);
        assert!(t.begin_close(1));
        assert!(!t.begin_close(1), "marked once");
        assert!(!t.begin_close(2), "unknown");
        assert!(!t.touch(1, t0));
        assert_eq!(t.set_owner(1, 3, t0), Some(false));
        assert_eq!(
            t.take_expired(t0 + Duration::from_millis(2000)),
            Vec::<i64>::new()
        );
    }

    #[test]
    fn touches_are_collected_once_for_the_leader() {
        let t0 = Instant::now();
        let mut t = SessionTracker::new();
        t.add(1, 1000, t0);
        t.add(2, 1000, t0);
        assert!(t.touch(2, t0));
        assert!(t.touch(1, t0));
        assert!(t.touch(2, t0));
        assert!(!t.touch(7, t0), "an unknown session is not passed on");
        assert_eq!(t.take_touched(), vec![1, 2]);
        assert_eq!(t.take_touched(), Vec::<i64>::new());
        t.touch(1, t0);
        t.remove(1);
        assert_eq!(t.take_touched(), Vec::<i64>::new());
    }

    #[test]
    fn the_leader_knows_which_member_a_session_is_on() {
        let t0 = Instant::now();
        let mut t = SessionTracker::new();
        assert_eq!(t.set_owner(1, 2, t0), None, "unknown session");
        t.add(1, 1000, t0);
        assert_eq!(
            t.set_owner(1, 2, t0 + Duration::from_millis(900)),
            Some(true)
        );
        assert_eq!(t.owner(1), Some(2));
        // Revalidation touches: not expired at the original deadline.
        assert!(t.take_expired(t0 + Duration::from_millis(1000)).is_empty());
        assert_eq!(t.set_owner(1, 3, t0), Some(true));
        assert_eq!(t.owner(1), Some(3));
        assert_eq!(t.take_expired(t0 + Duration::from_secs(5)), vec![1]);
        assert_eq!(t.set_owner(1, 2, t0), Some(false), "being closed");
        t.remove(1);
        assert_eq!(t.owner(1), None);
    }

    #[test]
    fn reset_gives_every_session_a_fresh_timeout() {
        let t0 = Instant::now();
        let mut t = SessionTracker::new();
        t.add(1, 1000, t0);
        let later = t0 + Duration::from_millis(5000);
        t.reset_all([(1, 1000), (3, 2000)], later);
        assert!(t
            .take_expired(later + Duration::from_millis(999))
            .is_empty());
        assert_eq!(t.take_expired(later + Duration::from_millis(1000)), vec![1]);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn session_ids_carry_the_server_id_and_are_unique() {
        let mut g = SessionIdGenerator::new(3);
        let a = g.next_id();
        let b = g.next_id();
        assert_ne!(a, b);
        assert_eq!((a as u64) >> 56, 3);
        let mut standalone = SessionIdGenerator::new(0);
        assert_eq!((standalone.next_id() as u64) >> 56, 0);
    }
}
