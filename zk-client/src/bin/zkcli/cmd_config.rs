//! The ensemble's configuration: `config` (with `-c`, the client addresses as
//! `ConfigUtils` gives them) and `reconfig`.

use zk_client::Error;

use crate::cli_error::{keeper, CliError};
use crate::command_table::{usage_error, CONFIG, RECONFIG};
use crate::ctx::Ctx;
use crate::format;
use crate::opts;
use crate::watches::Kind;

/// `ConfigUtils.getClientConfigStr`: the version and each server's client address.
fn client_config(config: &str) -> String {
    let props = crate::javaprops::load(config);
    let mut version = String::new();
    let mut servers = Vec::new();
    for (key, value) in &props {
        let (key, value) = (key.trim(), value.trim());
        if key == "version" {
            version = value.to_string();
        }
        if !key.starts_with("server.") {
            continue;
        }
        servers.push(client_address(value).unwrap_or_default());
    }
    format!("{version} {}", servers.join(","))
}

/// The client address of a `server.N` value (`host:port:port[:role];[host:]port`).
fn client_address(value: &str) -> Option<String> {
    let (_, client) = value.split_once(';')?;
    let client = client.trim();
    if let Some(rest) = client.strip_prefix('[') {
        let (host, port) = rest.split_once("]:")?;
        return Some(format!("{host}:{}", port.trim()));
    }
    match client.rsplit_once(':') {
        Some((host, port)) => Some(format!("{host}:{port}")),
        None => Some(format!("0.0.0.0:{client}")),
    }
}

pub async fn config(words: &[String], ctx: &mut Ctx<'_>) -> Result<(), CliError> {
    let p = opts::parse(&CONFIG, words)?;
    let zk = ctx.zk("/zookeeper/config").await?;
    let (data, stat) = if p.has("w") {
        let (read, w) = zk.get_config_and_watch();
        let r = ctx
            .rq(read)
            .await
            .map_err(|e| keeper(&e, "/zookeeper/config"))?;
        ctx.run.watch(Kind::Data, "/zookeeper/config", w);
        r
    } else {
        ctx.rq(zk.get_config())
            .await
            .map_err(|e| keeper(&e, "/zookeeper/config"))?
    };
    let text = String::from_utf8_lossy(&data).into_owned();
    ctx.run.outln(if p.has("c") {
        client_config(&text)
    } else {
        text
    });
    if p.has("s") {
        ctx.run.out(format::stat(&stat));
    }
    Ok(())
}

pub async fn reconfig(words: &[String], ctx: &mut Ctx<'_>) -> Result<(), CliError> {
    let p = opts::parse(&RECONFIG, words)?;
    let non_incremental = p.has("file") || p.has("members");
    let incremental = p.has("add") || p.has("remove");
    if !non_incremental && !incremental {
        return Err(usage_error("reconfig"));
    }
    let version =
        match p.value("v") {
            Some(v) => Some(i64::from_str_radix(v, 16).map_err(|_| {
                CliError::new("-v must be followed by a long (configuration version)")
            })?),
            None => None,
        };
    if non_incremental && incremental {
        return Err(CliError::new("Can't use -file or -members together with -add or -remove (mixing incremental and non-incremental modes is not allowed)"));
    }
    if p.has("file") && p.has("members") {
        return Err(CliError::new(
            "Can't use -file and -members together (conflicting non-incremental modes)",
        ));
    }
    let joining = p.value("add").map(str::to_lowercase);
    let leaving = p.value("remove").map(str::to_lowercase);
    let mut members = p.value("members").map(str::to_lowercase);
    if let Some(file) = p.value("file") {
        let text = std::fs::read_to_string(file)
            .map_err(|e| CliError::new(format!("Error processing {file}{e}")))?;
        let servers: Vec<String> = crate::javaprops::load(&text)
            .into_iter()
            .filter(|(k, _)| k.starts_with("server."))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        members = Some(servers.join(","));
    }
    let zk = ctx.zk("").await?;
    let (data, stat) = ctx
        .rq(zk.reconfig(
            joining.as_deref(),
            leaving.as_deref(),
            members.as_deref(),
            version,
        ))
        .await
        .map_err(|e| match e {
            // Java's reconfig throws its KeeperException without a path.
            Error::Keeper { code, .. } => keeper(
                &Error::Keeper {
                    code,
                    path: String::new(),
                },
                "",
            ),
            e => keeper(&e, ""),
        })?;
    ctx.run.outln(format!(
        "Committed new configuration:\n{}",
        String::from_utf8_lossy(&data)
    ));
    if p.has("s") {
        ctx.run.out(format::stat(&stat));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_config_lists_client_addresses() {
        let cfg = "server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\nserver.2=h:1:2;2182\nversion=100000000";
        // In Java's (hash) order of the keys: server.2 before server.1.
        assert_eq!(client_config(cfg), "100000000 0.0.0.0:2182,127.0.0.1:2181");
        assert_eq!(client_config(""), " ");
    }
}
