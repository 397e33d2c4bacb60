//! The commands about access: `getAcl`, `setAcl`, `addauth`, `whoami`.

use std::time::Duration;

use zk_client::{Error, ErrorCode};

use crate::cli_error::{check_path, keeper, CliError};
use crate::cmd_args::int_option;
use crate::command_table::{usage_error, GETACL, NONE, SETACL};
use crate::ctx::Ctx;
use crate::format;
use crate::opts;
use crate::subtree::visit;

pub async fn get_acl(words: &[String], ctx: &mut Ctx<'_>) -> Result<(), CliError> {
    let p = opts::parse(&GETACL, words)?;
    if p.args.len() < 2 {
        return Err(usage_error("getAcl"));
    }
    let path = p.args[1].as_str();
    check_path(path)?;
    let zk = ctx.zk(path).await?;
    let (acl, stat) = ctx
        .rq(zk.get_acl(path))
        .await
        .map_err(|e| keeper(&e, path))?;
    ctx.run.out(format::acl(&acl));
    if p.has("s") {
        ctx.run.out(format::stat(&stat));
    }
    Ok(())
}

pub async fn set_acl(words: &[String], ctx: &mut Ctx<'_>) -> Result<(), CliError> {
    let p = opts::parse(&SETACL, words)?;
    if p.args.len() < 3 {
        return Err(usage_error("setAcl"));
    }
    let path = p.args[1].as_str();
    let (acl, complaints) = format::parse_acl(&p.args[2]);
    for c in complaints {
        ctx.run.errln(c);
    }
    let version = int_option(&p, "v")?.filter(|v| *v != -1);
    check_path(path)?;
    if p.has("R") {
        let zk = ctx.zk(path).await?;
        let nodes = visit(&zk, path, false, &mut Vec::new())
            .await
            .map_err(|(e, at)| keeper(&e, &at))?;
        for (node, _) in nodes {
            let result = if acl.is_empty() {
                Err(Error::Keeper {
                    code: ErrorCode::InvalidAcl,
                    path: String::new(),
                })
            } else {
                ctx.rq(zk.set_acl(&node, &acl, version)).await
            };
            if let Err(e) = result {
                // Java prints the KeeperException's message, without a newline.
                let code = e.code().unwrap_or(ErrorCode::SystemError);
                let at = match &e {
                    Error::Keeper { path, .. } => path.clone(),
                    _ => node.clone(),
                };
                ctx.run.out(if at.is_empty() {
                    format!("KeeperErrorCode = {}", code.message())
                } else {
                    format!("KeeperErrorCode = {} for {at}", code.message())
                });
            }
        }
        return Ok(());
    }
    if acl.is_empty() {
        return Err(CliError::new("Acl is not valid : null"));
    }
    let zk = ctx.zk(path).await?;
    let stat = ctx
        .rq(zk.set_acl(path, &acl, version))
        .await
        .map_err(|e| keeper(&e, path))?;
    if p.has("s") {
        ctx.run.out(format::stat(&stat));
    }
    Ok(())
}

pub async fn addauth(words: &[String], ctx: &mut Ctx<'_>) -> Result<(), CliError> {
    let p = opts::parse(&NONE, words)?;
    if p.args.len() < 2 {
        return Err(usage_error("addauth"));
    }
    let auth = p
        .args
        .get(2)
        .map(|a| a.as_bytes().to_vec())
        .unwrap_or_default();
    let zk = ctx.zk("").await?;
    // Java does not wait for the answer: a refused credential ends the session,
    // which is reported as an AuthFailed event.
    if let Err(Error::AuthFailed) = ctx.rq(zk.add_auth(&p.args[1], &auth)).await {
        // Let the session end before the next command looks at it.
        let mut state = zk.state_changes();
        let _ =
            tokio::time::timeout(Duration::from_secs(2), state.wait_for(|s| s.is_terminal())).await;
    }
    Ok(())
}

pub async fn whoami(ctx: &mut Ctx<'_>) -> Result<(), CliError> {
    let zk = ctx.zk("").await?;
    let ids = ctx.rq(zk.whoami()).await.map_err(|e| keeper(&e, ""))?;
    ctx.run.outln("Auth scheme: User");
    for id in ids {
        ctx.run.outln(format!("{}: {}", id.auth_scheme, id.user));
    }
    Ok(())
}
