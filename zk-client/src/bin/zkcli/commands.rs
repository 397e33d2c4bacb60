//! Runs one of zkCli.sh's commands that talk to the server: picks the command's
//! implementation by name (`ls2` and `rmr` as the old zkCli.sh took them) and runs it.
//! The commands themselves are in `cmd_read`, `cmd_write`, `cmd_acl`, `cmd_config` and
//! `quota`; the shell's own commands (`quit`, `history`, `redo`, `printwatches`,
//! `connect`, `close`, `removewatches`, `help`) are in `shell`.

use crate::cli_error::CliError;
use crate::command_table::{usage_error, DELQUOTA, NONE, SETQUOTA};
use crate::ctx::Ctx;
use crate::opts;
use crate::{cmd_acl, cmd_config, cmd_read, cmd_write, quota};

/// Runs server command `words[0]` (a name of [`COMMANDS`](crate::command_table::COMMANDS) or
/// [`EXTRA_COMMANDS`](crate::command_table::EXTRA_COMMANDS)).
pub async fn exec(words: &[String], ctx: &mut Ctx<'_>) -> Result<(), CliError> {
    let name = words[0].as_str();
    match name {
        "ls" => cmd_read::ls(words.to_vec(), ctx).await,
        "ls2" => {
            ctx.run
                .errln("'ls2' has been deprecated. Please use 'ls [-s] path' instead.");
            let mut w = vec!["ls".to_string(), "-s".to_string()];
            w.extend(words[1..].iter().cloned());
            cmd_read::ls(w, ctx).await
        }
        "get" => cmd_read::get(words.to_vec(), ctx).await,
        "set" => cmd_write::set(words, ctx).await,
        "stat" => cmd_read::stat(words.to_vec(), ctx).await,
        "create" => cmd_write::create(words, ctx).await,
        "delete" => cmd_write::delete(words, ctx).await,
        "deleteall" => cmd_write::deleteall(words, ctx, "deleteall").await,
        "rmr" => {
            ctx.run
                .errln("The command 'rmr' has been deprecated. Please use 'deleteall' instead.");
            cmd_write::deleteall(words, ctx, "rmr").await
        }
        "sync" => cmd_read::sync(words, ctx).await,
        "getAcl" => cmd_acl::get_acl(words, ctx).await,
        "setAcl" => cmd_acl::set_acl(words, ctx).await,
        "addauth" => cmd_acl::addauth(words, ctx).await,
        "getEphemerals" => cmd_read::get_ephemerals(words, ctx).await,
        "getAllChildrenNumber" => cmd_read::all_children(words, ctx).await,
        "addWatch" => cmd_read::add_watch(words, ctx).await,
        "whoami" => cmd_acl::whoami(ctx).await,
        "config" => cmd_config::config(words, ctx).await,
        "reconfig" => cmd_config::reconfig(words, ctx).await,
        "version" => {
            let p = opts::parse(&NONE, words)?;
            if p.args.len() > 1 {
                return Err(usage_error("version"));
            }
            ctx.run.outln(format!(
                "ZooKeeper CLI version: zkcli {} (zk-rs), for ZooKeeper 3.8",
                env!("CARGO_PKG_VERSION")
            ));
            Ok(())
        }
        "setquota" => {
            let p = opts::parse(&SETQUOTA, words)?;
            if p.args.len() < 2 {
                return Err(usage_error("setquota"));
            }
            let zk = if p.args[1].starts_with(quota::QUOTA_ROOT) {
                None
            } else {
                Some(ctx.zk(&p.args[1]).await?)
            };
            match zk {
                Some(zk) => quota::setquota(&zk, ctx.run, &p).await,
                None => {
                    ctx.run.errln(format!(
                        "cannot set a quota under the path: {}",
                        quota::QUOTA_ROOT
                    ));
                    Ok(())
                }
            }
        }
        "listquota" => {
            let p = opts::parse(&NONE, words)?;
            if p.args.len() < 2 {
                return Err(usage_error("listquota"));
            }
            let zk = ctx.zk(&p.args[1]).await?;
            quota::listquota(&zk, ctx.run, &p.args[1]).await
        }
        "delquota" => {
            let p = opts::parse(&DELQUOTA, words)?;
            if p.args.len() < 2 {
                return Err(usage_error("delquota"));
            }
            let zk = ctx.zk(&p.args[1]).await?;
            quota::delquota(&zk, ctx.run, &p).await
        }
        other => Err(CliError::new(format!("Command not found {other}"))),
    }
}
