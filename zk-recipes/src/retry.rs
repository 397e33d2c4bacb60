//! The recipes' one retry driver: an idempotent operation runs again under the
//! client's [`RetryPolicy`](zk_client::retry::RetryPolicy) while it fails
//! transiently. A recipe given a client from
//! [`Client::with_retry_policy`](zk_client::Client::with_retry_policy) retries as
//! that policy says.

use std::future::Future;

use zk_client::{Client, Error as ClientError};

/// Whether trying again can help: a lost connection, or an expired session on a
/// client that renews sessions (the next attempt runs on the new one).
pub(crate) fn is_transient(client: &Client, e: &ClientError) -> bool {
    e.is_retryable() || (*e == ClientError::SessionExpired && client.renews_expired_sessions())
}

/// Runs `op` again while it fails transiently and `client`'s retry policy allows.
pub(crate) async fn with_retries<T, F, Fut>(client: &Client, mut op: F) -> Result<T, ClientError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ClientError>>,
{
    let mut schedule = client.retry_policy().start();
    loop {
        match op().await {
            Err(e) if is_transient(client, &e) => match schedule.next_delay() {
                Some(delay) => tokio::time::sleep(delay).await,
                None => return Err(e),
            },
            other => return other,
        }
    }
}
