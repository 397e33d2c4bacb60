//! What the storage a lock guards would see: who is inside, and which fencing token
//! wrote last. Lock tests call [`Monitor::enter`] and [`Monitor::exit`] around each
//! turn; every overlap or token that does not grow is recorded as a violation.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use zk_recipes::FencingToken;

/// Who is inside the lock, as the guarded storage would see it.
#[derive(Default)]
pub struct Monitor {
    inside: AtomicUsize,
    last_token: Mutex<Option<FencingToken>>,
    /// A value the holders increment (a lost update shows as a lower count).
    pub counter: AtomicU64,
    /// Turns taken with the lease held throughout.
    pub turns: AtomicU64,
    /// Every overlap or fencing token that did not grow.
    pub violations: Mutex<Vec<String>>,
}

impl Monitor {
    /// `who` enters holding `token`.
    pub fn enter(&self, who: &str, token: FencingToken) {
        if self.inside.fetch_add(1, Ordering::SeqCst) != 0 {
            self.violate(format!("{who} entered while another holder was inside"));
        }
        if let Ok(mut last) = self.last_token.lock() {
            if last.is_some_and(|l| l >= token) {
                self.violate(format!("{who}: token {token:?} after {last:?}"));
            }
            *last = Some(token);
        }
    }

    /// The holder leaves.
    pub fn exit(&self) {
        self.inside.fetch_sub(1, Ordering::SeqCst);
    }

    fn violate(&self, what: String) {
        if let Ok(mut v) = self.violations.lock() {
            v.push(what);
        }
    }
}
