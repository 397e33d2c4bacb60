//! The lifecycle every background recipe shares: built, then [`Background::start`]ed
//! (its task spawned), then ended with [`Background::close`] (stop, and wait for the
//! task to finish its cleanup) or by being dropped (stop; the task cleans up on its
//! own). The task watches a stop signal of type `S`: `bool` for most recipes, or
//! what the owner asked for on close (a leader latch's close mode).

use std::future::Future;
use std::sync::{Mutex, PoisonError};

use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;

type Run<S> = Box<dyn FnOnce(watch::Receiver<S>) -> BoxFuture<'static, ()> + Send>;

/// A recipe's background task, from built to closed.
pub(crate) struct Background<S: Clone + Send + Sync + 'static = bool> {
    stop: watch::Sender<S>,
    /// The stop value a drop sends.
    on_drop: S,
    state: Mutex<State<S>>,
}

enum State<S> {
    Built(Run<S>),
    Running(JoinHandle<()>),
    Done,
}

impl<S: Clone + Send + Sync + 'static> std::fmt::Debug for Background<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &*self.state.lock().unwrap_or_else(PoisonError::into_inner) {
            State::Built(_) => "built",
            State::Running(_) => "running",
            State::Done => "closed",
        };
        f.debug_struct("Background").field("state", &state).finish()
    }
}

impl Background<bool> {
    /// A task that runs `run` once started, until its stop signal turns `true`.
    pub(crate) fn new<F, Fut>(run: F) -> Background<bool>
    where
        F: FnOnce(watch::Receiver<bool>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Background::with_signal(false, true, run)
    }
}

impl<S: Clone + Send + Sync + 'static> Background<S> {
    /// A task whose stop signal starts at `running` and is set to `on_drop` when the
    /// owner is dropped (or to what [`Background::close_with`] is given).
    pub(crate) fn with_signal<F, Fut>(running: S, on_drop: S, run: F) -> Background<S>
    where
        F: FnOnce(watch::Receiver<S>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (stop, _) = watch::channel(running);
        Background {
            stop,
            on_drop,
            state: Mutex::new(State::Built(Box::new(move |stopped| run(stopped).boxed()))),
        }
    }

    /// Spawns the task (on the current tokio runtime); starting again, or after
    /// close, does nothing. Whether this call started it.
    pub(crate) fn start(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if !matches!(*state, State::Built(_)) {
            return false;
        }
        let State::Built(run) = std::mem::replace(&mut *state, State::Done) else {
            return false;
        };
        *state = State::Running(tokio::spawn(run(self.stop.subscribe())));
        true
    }

    /// Stops the task with `signal` and waits until it has finished (its cleanup
    /// done). A task never started is dropped unstarted.
    pub(crate) async fn close_with(&self, signal: S) {
        self.stop.send_replace(signal);
        let state = std::mem::replace(
            &mut *self.state.lock().unwrap_or_else(PoisonError::into_inner),
            State::Done,
        );
        if let State::Running(task) = state {
            let _ = task.await;
        }
    }
}

impl Background<bool> {
    /// Stops the task and waits until it has finished (its cleanup done).
    pub(crate) async fn close(&self) {
        self.close_with(true).await
    }
}

impl<S: Clone + Send + Sync + 'static> Drop for Background<S> {
    fn drop(&mut self) {
        // The task sees the stop and cleans up on its own; nothing waits for it.
        self.stop.send_replace(self.on_drop.clone());
    }
}
