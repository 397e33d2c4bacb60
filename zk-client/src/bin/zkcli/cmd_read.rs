//! The commands that read znodes or leave watches: `ls` (and `ls2`), `get`, `stat`,
//! `sync`, `getEphemerals`, `getAllChildrenNumber`, `addWatch`.

use zk_client::{AddWatchMode, ErrorCode, Stat};

use crate::cli_error::{check_path, keeper, CliError};
use crate::command_table::{usage_error, ADDWATCH, GET, LS, NONE, STAT};
use crate::ctx::Ctx;
use crate::format;
use crate::opts::{self, Parsed, Spec};
use crate::run::Run;
use crate::subtree::visit;
use crate::watches::Kind;

/// `get path [watch]`, `ls path [watch]`, `stat path [watch]`: the third word is
/// taken for `-w` (zkCli.sh rewrites it in place), with a deprecation notice.
fn retain_compatibility(
    spec: &Spec,
    p: Parsed,
    words: &mut [String],
    notice: &str,
    run: &mut Run,
) -> Result<Parsed, CliError> {
    if p.args.len() > 2 {
        words[2] = "-w".into();
        run.errln(notice);
        return Ok(opts::parse(spec, words)?);
    }
    Ok(p)
}

pub async fn ls(mut words: Vec<String>, ctx: &mut Ctx<'_>) -> Result<(), CliError> {
    let p = opts::parse(&LS, &words)?;
    if p.has("?") {
        ctx.run
            .outln("usage: ls [options] path\n -?   help\n -R   recurse\n -s   stat\n -w   watch");
    }
    let p = retain_compatibility(
        &LS,
        p,
        &mut words,
        "'ls path [watch]' has been deprecated. Please use 'ls [-w] path' instead.",
        ctx.run,
    )?;
    if p.args.len() < 2 {
        return Err(usage_error("ls"));
    }
    let path = p.args[1].as_str();
    let watch = p.has("w");
    check_path(path)?;
    let zk = ctx.zk(path).await?;
    if p.has("R") {
        let mut watches = Vec::new();
        let visited = visit(&zk, path, watch, &mut watches).await;
        ctx.run.watches.extend(watches);
        let visited = visited.map_err(|(e, at)| keeper(&e, &at))?;
        for (node, _) in visited {
            ctx.run.outln(node);
        }
        return Ok(());
    }
    let (mut children, stat) = match (watch, p.has("s")) {
        (false, false) => (ctx.rq(zk.get_children(path)).await, None),
        (false, true) => match ctx.rq(zk.get_children_with_stat(path)).await {
            Ok((c, s)) => (Ok(c), Some(s)),
            Err(e) => (Err(e), None),
        },
        (true, false) => {
            let (read, w) = zk.get_children_and_watch(path);
            let r = ctx.rq(read).await;
            if r.is_ok() {
                ctx.run.watch(Kind::Child, path, w);
            }
            (r, None)
        }
        (true, true) => {
            let (read, w) = zk.get_children_with_stat_and_watch(path);
            match ctx.rq(read).await {
                Ok((c, s)) => {
                    ctx.run.watch(Kind::Child, path, w);
                    (Ok(c), Some(s))
                }
                Err(e) => (Err(e), None),
            }
        }
    };
    let children = children.as_mut().map_err(|e| keeper(e, path))?;
    children.sort();
    ctx.run.outln(format::list(children));
    if let Some(s) = stat {
        ctx.run.out(format::stat(&s));
    }
    Ok(())
}

pub async fn get(mut words: Vec<String>, ctx: &mut Ctx<'_>) -> Result<(), CliError> {
    let p = opts::parse(&GET, &words)?;
    if p.args.len() < 2 {
        return Err(usage_error("get"));
    }
    let p = retain_compatibility(
        &GET,
        p,
        &mut words,
        "'get path [watch]' has been deprecated. Please use 'get [-s] [-w] path' instead.",
        ctx.run,
    )?;
    let path = p.args[1].as_str();
    check_path(path)?;
    let zk = ctx.zk(path).await?;
    let (data, stat) = if p.has("w") {
        let (read, w) = zk.get_data_nullable_and_watch(path);
        let r = ctx.rq(read).await.map_err(|e| keeper(&e, path))?;
        ctx.run.watch(Kind::Data, path, w);
        r
    } else {
        ctx.rq(zk.get_data_nullable(path))
            .await
            .map_err(|e| keeper(&e, path))?
    };
    let data = data.unwrap_or_else(|| b"null".to_vec());
    let text = if p.has("x") {
        format::hexdump(&data)
    } else if p.has("b") {
        format::base64(&data)
    } else {
        String::from_utf8_lossy(&data).into_owned()
    };
    ctx.run.outln(text);
    if p.has("s") {
        ctx.run.out(format::stat(&stat));
    }
    Ok(())
}

pub async fn stat(mut words: Vec<String>, ctx: &mut Ctx<'_>) -> Result<(), CliError> {
    let p = opts::parse(&STAT, &words)?;
    if p.args.len() < 2 {
        return Err(usage_error("stat"));
    }
    let p = retain_compatibility(
        &STAT,
        p,
        &mut words,
        "'stat path [watch]' has been deprecated. Please use 'stat [-w] path' instead.",
        ctx.run,
    )?;
    let path = p.args[1].as_str();
    check_path(path)?;
    let zk = ctx.zk(path).await?;
    let found = if p.has("w") {
        let (read, w) = zk.exists_and_watch(path);
        let r = ctx.rq(read).await.map_err(|e| keeper(&e, path))?;
        let kind = if r.is_some() { Kind::Data } else { Kind::Exist };
        ctx.run.watch(kind, path, w);
        r
    } else {
        ctx.rq(zk.exists(path))
            .await
            .map_err(|e| keeper(&e, path))?
    };
    let stat: Stat = found.ok_or_else(|| CliError::new(format!("Node does not exist: {path}")))?;
    ctx.run.out(format::stat(&stat));
    Ok(())
}

pub async fn sync(words: &[String], ctx: &mut Ctx<'_>) -> Result<(), CliError> {
    let p = opts::parse(&NONE, words)?;
    if p.args.len() < 2 {
        return Err(usage_error("sync"));
    }
    let path = p.args[1].as_str();
    check_path(path)?;
    let zk = ctx.zk(path).await?;
    match ctx.rq(zk.sync(path)).await {
        Ok(()) => ctx.run.outln("Sync is OK"),
        Err(e) => ctx.run.outln(format!(
            "Sync has failed. rc={}",
            e.code()
                .map_or(ErrorCode::ConnectionLoss.code(), |c| c.code())
        )),
    }
    Ok(())
}

pub async fn get_ephemerals(words: &[String], ctx: &mut Ctx<'_>) -> Result<(), CliError> {
    let p = opts::parse(&NONE, words)?;
    let path = p.args.get(1).map_or("/", String::as_str);
    check_path(path)?;
    // Java's getEphemerals ignores the chroot: the prefix is sent as given and the
    // server's full paths come back. Ask ours for the same and put the chroot back.
    let chroot = zk_client::connect_string::ConnectString::parse(&ctx.conn.host)
        .ok()
        .and_then(|c| c.chroot);
    let ask = match &chroot {
        None => Some(path.to_string()),
        Some(root) if root.starts_with(path) => Some("/".to_string()),
        Some(root) => path.strip_prefix(root.as_str()).map(str::to_string),
    };
    let zk = ctx.zk(path).await?;
    let eph = match ask {
        Some(prefix) => ctx
            .rq(zk.get_ephemerals(&prefix))
            .await
            .map_err(|e| keeper(&e, path))?,
        None => Vec::new(),
    };
    let eph: Vec<String> = match &chroot {
        None => eph,
        Some(root) => eph
            .into_iter()
            .map(|e| {
                if e == "/" {
                    root.clone()
                } else {
                    format!("{root}{e}")
                }
            })
            .collect(),
    };
    ctx.run.outln(format::list(&eph));
    Ok(())
}

pub async fn all_children(words: &[String], ctx: &mut Ctx<'_>) -> Result<(), CliError> {
    let p = opts::parse(&NONE, words)?;
    if p.args.len() < 2 {
        return Err(usage_error("getAllChildrenNumber"));
    }
    let path = p.args[1].as_str();
    check_path(path)?;
    let zk = ctx.zk(path).await?;
    let n = ctx
        .rq(zk.get_all_children_number(path))
        .await
        .map_err(|e| keeper(&e, path))?;
    ctx.run.outln(n.to_string());
    Ok(())
}

pub async fn add_watch(words: &[String], ctx: &mut Ctx<'_>) -> Result<(), CliError> {
    let p = opts::parse(&ADDWATCH, words)?;
    if p.args.len() != 2 {
        return Err(usage_error("addWatch"));
    }
    let mode = match p.value("m").map(str::to_uppercase).as_deref() {
        None | Some("PERSISTENT_RECURSIVE") => AddWatchMode::PersistentRecursive,
        Some("PERSISTENT") => AddWatchMode::Persistent,
        Some(_) => return Err(usage_error("addWatch")),
    };
    let path = p.args[1].as_str();
    check_path(path)?;
    let zk = ctx.zk(path).await?;
    let w = ctx
        .rq(zk.add_watch(path, mode))
        .await
        .map_err(|e| keeper(&e, path))?;
    let kind = match mode {
        AddWatchMode::Persistent => Kind::Persistent,
        AddWatchMode::PersistentRecursive => Kind::Recursive,
    };
    ctx.run.watch(kind, path, w);
    Ok(())
}
