//! The commands that write znodes: `create`, `set`, `delete`, `deleteall` (and `rmr`).

use std::time::Duration;

use zk_client::{CreateMode, ErrorCode};

use crate::cli_error::{check_path, keeper, CliError};
use crate::cmd_args::{data_arg, int_option};
use crate::command_table::{usage_error, CREATE, DELETE, DELETEALL, SET};
use crate::ctx::Ctx;
use crate::format;
use crate::java_num::{java_int, java_long};
use crate::opts;

pub async fn set(words: &[String], ctx: &mut Ctx<'_>) -> Result<(), CliError> {
    let p = opts::parse(&SET, words)?;
    if p.args.len() < 3 {
        return Err(usage_error("set"));
    }
    let path = p.args[1].as_str();
    let data = data_arg(&p, &p.args[2])?;
    let version = int_option(&p, "v")?;
    check_path(path)?;
    let zk = ctx.zk(path).await?;
    let stat = ctx
        .rq(zk.set_data(path, &data, version.filter(|v| *v != -1)))
        .await
        .map_err(|e| keeper(&e, path))?;
    if p.has("s") {
        ctx.run.out(format::stat(&stat));
    }
    Ok(())
}

/// TTLs fit in 40 bits (`EphemeralType.TTL.maxValue()`).
const MAX_TTL: i64 = 0xFF_FFFF_FFFF;

pub async fn create(words: &[String], ctx: &mut Ctx<'_>) -> Result<(), CliError> {
    let p = opts::parse(&CREATE, words)?;
    if p.args.len() < 2 {
        return Err(usage_error("create"));
    }
    let (e, s, c, t) = (p.has("e"), p.has("s"), p.has("c"), p.has("t"));
    if c && (e || s) {
        return Err(CliError::new(
            "-c cannot be combined with -s or -e. Containers cannot be ephemeral or sequential.",
        ));
    }
    let ttl = match p.value("t") {
        Some(v) => java_long(v).ok_or_else(|| CliError::new("-t argument must be a long value"))?,
        None => 0,
    };
    if t && e {
        return Err(CliError::new("TTLs cannot be used with Ephemeral znodes"));
    }
    if t && c {
        return Err(CliError::new("TTLs cannot be used with Container znodes"));
    }
    let mode = match (e, s, c, t) {
        (true, true, _, _) => CreateMode::EphemeralSequential,
        (true, false, _, _) => CreateMode::Ephemeral,
        (false, true, _, true) => CreateMode::PersistentSequentialWithTtl,
        (false, true, _, false) => CreateMode::PersistentSequential,
        (false, false, true, _) => CreateMode::Container,
        (false, false, false, true) => CreateMode::PersistentWithTtl,
        (false, false, false, false) => CreateMode::Persistent,
    };
    if t && (ttl <= 0 || ttl > MAX_TTL) {
        return Err(CliError::new(format!(
            "ttl must be positive and cannot be larger than: {MAX_TTL}"
        )));
    }
    let path = p.args[1].as_str();
    let data = match p.args.get(2) {
        Some(text) => Some(data_arg(&p, text)?),
        None => None,
    };
    let acl = match p.args.get(3) {
        Some(text) => {
            let (acl, complaints) = format::parse_acl(text);
            for c in complaints {
                ctx.run.errln(c);
            }
            acl
        }
        None => zk_client::Acl::open_unsafe(),
    };
    zk_proto::path::validate_create_path(path, mode.is_sequential())
        .map_err(|e| CliError::new(e.0))?;
    if acl.is_empty() {
        ctx.run.errln("KeeperErrorCode = InvalidACL");
        return Err(CliError::new("Acl is not valid : null"));
    }
    let zk = ctx.zk(path).await?;
    let create = zk.create(path).acl(&acl);
    let create = match data.as_deref() {
        Some(data) => create.data(data),
        None => create.null_data(),
    };
    // The mode says TTL exactly when -t gave one.
    let created: std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send + '_>> =
        match (t, mode) {
            (true, CreateMode::PersistentSequentialWithTtl) => {
                Box::pin(create.ttl(Duration::from_millis(ttl as u64)).sequential())
            }
            (true, _) => Box::pin(create.ttl(Duration::from_millis(ttl as u64))),
            (false, mode) => Box::pin(create.mode(mode)),
        };
    match ctx.rq(created).await {
        Ok(created) => {
            ctx.run.errln(format!("Created {created}"));
            Ok(())
        }
        Err(err) => {
            match err.code() {
                Some(ErrorCode::EphemeralOnLocalSession) => ctx
                    .run
                    .errln("Unable to create ephemeral node on a local session"),
                Some(ErrorCode::InvalidAcl) => ctx
                    .run
                    .errln(format!("KeeperErrorCode = InvalidACL for {path}")),
                _ => {}
            }
            Err(keeper(&err, path))
        }
    }
}

pub async fn delete(words: &[String], ctx: &mut Ctx<'_>) -> Result<(), CliError> {
    let p = opts::parse(&DELETE, words)?;
    if p.args.len() < 2 {
        return Err(usage_error("delete"));
    }
    if p.args.len() > 2 {
        ctx.run.errln(
            "'delete path [version]' has been deprecated. Please use 'delete [-v version] path' instead.",
        );
    }
    let path = p.args[1].as_str();
    let version = int_option(&p, "v")?;
    check_path(path)?;
    let zk = ctx.zk(path).await?;
    ctx.rq(zk.delete(path, version.filter(|v| *v != -1)))
        .await
        .map_err(|e| keeper(&e, path))
}

pub async fn deleteall(words: &[String], ctx: &mut Ctx<'_>, name: &str) -> Result<(), CliError> {
    let p = opts::parse(&DELETEALL, words)?;
    if p.args.len() < 2 {
        return Err(CliError::new(format!("{name} path [-b batch size]")));
    }
    let batch = match p.value("b") {
        Some(v) => java_int(v).ok_or_else(|| CliError::new("-b argument must be an int value"))?,
        None => 1000,
    };
    let path = p.args[1].as_str();
    check_path(path)?;
    let zk = ctx.zk(path).await?;
    // ZKUtil.listSubTreeBFS, then deletes from the deepest, `batch` per multi.
    let mut tree = vec![path.to_string()];
    let mut next = 0;
    while next < tree.len() {
        let node = tree[next].clone();
        next += 1;
        let children = ctx
            .rq(zk.get_children(&node))
            .await
            .map_err(|e| keeper(&e, &node))?;
        let base = if node == "/" { "" } else { node.as_str() };
        tree.extend(children.iter().map(|c| format!("{base}/{c}")));
    }
    let mut ok = true;
    let mut txn = zk.transaction();
    let mut ops = 0;
    for (i, node) in tree.iter().enumerate().rev() {
        txn = txn.delete(node, None);
        ops += 1;
        if ops == batch || i == 0 {
            let done = std::mem::replace(&mut txn, zk.transaction());
            ops = 0;
            if ctx.rq(done.commit()).await.is_err() {
                ok = false;
                break;
            }
        }
    }
    if !ok {
        ctx.run
            .errln("Failed to delete some node(s) in the subtree!");
    }
    Ok(())
}
