//! Deleting a subtree ([`crate::Client::delete_recursive`]): children first, the top
//! znode last under the caller's version check.

use zk_proto::{ErrorCode, Stat};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::reply::Reply;

/// Rounds of "delete the children, then the top" before a subtree that keeps growing
/// under the deletion is reported NotEmpty.
const ROUNDS: usize = 5;

/// Deletes `path` and everything under it. `checked` is the top's `exists`, queued
/// when the caller called (so the version check keeps its place in the session's
/// order).
pub(crate) async fn delete_tree(
    client: &Client,
    path: &str,
    version: Option<i32>,
    checked: Reply<Option<Stat>>,
) -> Result<()> {
    match checked.await? {
        None => return Err(Error::keeper(ErrorCode::NoNode, path)),
        Some(stat) if version.is_some_and(|v| v != stat.version) => {
            return Err(Error::keeper(ErrorCode::BadVersion, path));
        }
        Some(_) => {}
    }
    let mut rounds = 0;
    loop {
        let deleted = match delete_children(client, path).await {
            Ok(()) => client.delete(path, version).await,
            Err(e) => Err(e),
        };
        match deleted {
            Err(e) if e.code() == Some(ErrorCode::NotEmpty) && rounds + 1 < ROUNDS => {
                rounds += 1;
            }
            other => return other,
        }
    }
}

/// Deletes everything under `path`, deepest first, without recursion on the stack
/// (a tree may be deep). Znodes gone meanwhile are skipped.
async fn delete_children(client: &Client, path: &str) -> Result<()> {
    // Depth-first: a znode's children are listed when it is first met and it is
    // deleted once they are gone.
    let mut stack: Vec<(String, bool)> = vec![(path.to_string(), false)];
    while let Some((node, listed)) = stack.pop() {
        if listed {
            if node != path {
                match client.delete(&node, None).await {
                    Ok(()) => {}
                    Err(e) if e.code() == Some(ErrorCode::NoNode) => {}
                    Err(e) => return Err(e),
                }
            }
            continue;
        }
        let children = match client.get_children(&node).await {
            Ok(children) => children,
            Err(e) if e.code() == Some(ErrorCode::NoNode) => continue,
            Err(e) => return Err(e),
        };
        stack.push((node.clone(), true));
        for child in children {
            stack.push((crate::paths::join(&node, &child), false));
        }
    }
    Ok(())
}
