//! What a reentrant recipe holds, and the guards that hand it out: a [`Holding`] is
//! the holder's slot (empty, or a value with a count of acquires), a [`Hold`] is one
//! acquire. The last hold released gives the value back ([`Release`]), explicitly
//! with `release().await` or, for a hold dropped unreleased, in the background. The
//! lock, read-write lock and multi-lock guards stand on it.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use crate::error::Result;
use crate::protected::NodeGuard;

/// Something held that is given back once no acquire holds it any more.
pub(crate) trait Release: Send + 'static {
    /// Gives it back.
    fn release(self) -> impl Future<Output = Result<()>> + Send;
}

/// A node of ours held by a guard: given back by deleting it.
impl Release for NodeGuard {
    async fn release(self) -> Result<()> {
        self.remove().await
    }
}

type Slot<T> = Arc<Mutex<Option<(T, usize)>>>;

/// One holder's slot: empty, or what it holds and how many acquires hold it.
#[derive(Debug)]
pub(crate) struct Holding<T> {
    slot: Slot<T>,
}

impl<T> Default for Holding<T> {
    fn default() -> Self {
        Holding {
            slot: Arc::new(Mutex::new(None)),
        }
    }
}

impl<T: Release> Holding<T> {
    /// Whether something is held.
    pub(crate) fn is_held(&self) -> bool {
        self.slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// One more acquire of what is held already, with `view` of it (`None` if
    /// nothing is held).
    pub(crate) fn reenter<R>(&self, view: impl FnOnce(&T) -> R) -> Option<(Hold<T>, R)> {
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        let (value, count) = slot.as_mut()?;
        *count += 1;
        let seen = view(value);
        Some((
            Hold {
                slot: self.slot.clone(),
                active: true,
            },
            seen,
        ))
    }

    /// Starts holding `value` (the first acquire).
    pub(crate) fn hold(&self, value: T) -> Hold<T> {
        *self.slot.lock().unwrap_or_else(PoisonError::into_inner) = Some((value, 1));
        Hold {
            slot: self.slot.clone(),
            active: true,
        }
    }
}

/// One acquire of a [`Holding`]'s value.
#[derive(Debug)]
pub(crate) struct Hold<T: Release> {
    slot: Slot<T>,
    active: bool,
}

impl<T: Release> Hold<T> {
    /// Ends this acquire; the last one gives the value back and says how that went.
    pub(crate) async fn release(mut self) -> Result<()> {
        self.active = false;
        match leave(&self.slot) {
            Some(value) => value.release().await,
            None => Ok(()),
        }
    }
}

impl<T: Release> Drop for Hold<T> {
    fn drop(&mut self) {
        if !self.active {
            return;
        }
        if let Some(value) = leave(&self.slot) {
            // Drop cannot wait; a runtime is there when a recipe guard is dropped in
            // async code. Without one the node goes with the session.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    if let Err(e) = value.release().await {
                        tracing::warn!(error = %e, "releasing a dropped guard failed");
                    }
                });
            }
        }
    }
}

/// One acquire fewer; the value when it was the last.
fn leave<T>(slot: &Slot<T>) -> Option<T> {
    let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
    let (_, count) = slot.as_mut()?;
    *count -= 1;
    if *count == 0 {
        slot.take().map(|(value, _)| value)
    } else {
        None
    }
}
