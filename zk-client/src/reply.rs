//! [`Reply`]: the future every request method returns.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::error::Result;

/// The server's answer to one request, to `.await`.
///
/// The request was queued when the method returning this `Reply` was *called*, so
/// requests reach the server in call order, ZooKeeper's per-session FIFO. (The
/// [`Create`](crate::Create) builder is the exception: it is queued when first
/// polled.) Dropping a `Reply` does not take the request back; it only forgets the answer.
///
/// A `Reply` is `Send`, `Unpin` and `'static`: it can be stored, moved to another task
/// or joined with others.
#[must_use = "the request is sent either way; a dropped Reply only loses its answer"]
pub struct Reply<T> {
    inner: Pin<Box<dyn Future<Output = Result<T>> + Send + 'static>>,
}

impl<T> Reply<T> {
    /// Wraps the future that resolves with the answer.
    pub(crate) fn new(fut: impl Future<Output = Result<T>> + Send + 'static) -> Reply<T> {
        Reply {
            inner: Box::pin(fut),
        }
    }

    /// A reply known already (a request refused before it was sent).
    pub(crate) fn ready(result: Result<T>) -> Reply<T>
    where
        T: Send + 'static,
    {
        Reply::new(std::future::ready(result))
    }

    /// This reply's answer turned into another type.
    pub(crate) fn map<U>(self, f: impl FnOnce(T) -> U + Send + 'static) -> Reply<U>
    where
        T: 'static,
    {
        Reply::new(async move { self.await.map(f) })
    }
}

impl<T> Future for Reply<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        self.inner.as_mut().poll(cx)
    }
}

impl<T> fmt::Debug for Reply<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Reply")
    }
}
