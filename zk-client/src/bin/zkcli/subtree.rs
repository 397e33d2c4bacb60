//! Walking a subtree as `ZKUtil.visitSubTreeDFS` does (`ls -R`, `setAcl -R`, quotas).

use zk_client::{Client, Error, ErrorCode};

use crate::watches::{Kind, Slot};

/// Visits `path` and everything below as `ZKUtil.visitSubTreeDFS` calls back: the
/// node, then a node's children (sorted) before their own children; with each
/// node's children (none for a node gone meanwhile). With `watch`, leaves a data watch
/// on `path` and a child watch on every node. An error comes with its path.
pub async fn visit(
    zk: &Client,
    path: &str,
    watch: bool,
    watches: &mut Vec<(Kind, String, Slot)>,
) -> Result<Vec<(String, Vec<String>)>, (Error, String)> {
    if watch {
        let (read, w) = zk.get_data_and_watch(path);
        read.await.map_err(|e| (e, path.to_string()))?;
        watches.push((Kind::Data, path.to_string(), w.into()));
    } else {
        zk.get_data(path).await.map_err(|e| (e, path.to_string()))?;
    }
    let mut order = vec![path.to_string()];
    let mut kids = std::collections::HashMap::new();
    let mut stack = vec![path.to_string()];
    while let Some(node) = stack.pop() {
        let listed = if watch {
            let (read, w) = zk.get_children_and_watch(&node);
            let r = read.await;
            if r.is_ok() {
                watches.push((Kind::Child, node.clone(), w.into()));
            }
            r
        } else {
            zk.get_children(&node).await
        };
        let mut children = match listed {
            Ok(c) => c,
            Err(e) if e.code() == Some(ErrorCode::NoNode) => Vec::new(),
            Err(e) => return Err((e, node)),
        };
        children.sort();
        let base = if node == "/" { "" } else { node.as_str() };
        let paths: Vec<String> = children.iter().map(|c| format!("{base}/{c}")).collect();
        order.extend(paths.iter().cloned());
        stack.extend(paths.into_iter().rev());
        kids.insert(node, children);
    }
    Ok(order
        .into_iter()
        .map(|p| {
            let c = kids.remove(&p).unwrap_or_default();
            (p, c)
        })
        .collect())
}
