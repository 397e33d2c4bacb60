//! The admin endpoint, as ZooKeeper's AdminServer (`admin.serverPort`, default 8080;
//! off with `admin.enableServer=false`): `GET /commands` lists the commands,
//! `GET /commands/<name>` runs one and answers JSON `{"command": …, "error": null, …}`.
//! Names are AdminServer's (`monitor`, `configuration`, `connections`, …) or the
//! four-letter words they stand for (`mntr`, `conf`, `cons`, …), and `hash` (the tree's
//! digest, for comparing members). As on ZooKeeper, the four-letter-word whitelist does
//! not apply here.

use serde_json::{json, Map, Value};

use super::four_letter;
use super::http::HttpResponse;
use crate::core::ServerCore;

/// AdminServer's command names, with the four-letter word each runs.
pub const COMMANDS: &[(&str, &str)] = &[
    ("configuration", "conf"),
    ("connection_stat_reset", "crst"),
    ("connections", "cons"),
    ("dirs", "dirs"),
    ("dump", "dump"),
    ("environment", "envi"),
    ("is_read_only", "isro"),
    ("monitor", "mntr"),
    ("ruok", "ruok"),
    ("server_stats", "srvr"),
    ("stat_reset", "srst"),
    ("stats", "stat"),
    ("watch_summary", "wchs"),
    ("watches", "wchc"),
    ("watches_by_path", "wchp"),
];

/// Answers `GET path`.
pub fn handle(core: &ServerCore, path: &str) -> HttpResponse {
    let path = path.trim_end_matches('/');
    if path == "/commands" || path.is_empty() {
        let names: Vec<&str> = COMMANDS
            .iter()
            .map(|(name, _)| *name)
            .chain(["hash"])
            .collect();
        return HttpResponse::json(200, &json!({ "commands": names }));
    }
    let Some(name) = path.strip_prefix("/commands/") else {
        return HttpResponse::json(404, &json!({ "error": format!("no such page: {path}") }));
    };
    if name == "hash" {
        return HttpResponse::json(200, &digests(core));
    }
    let Some((command, word)) = COMMANDS
        .iter()
        .find(|(n, w)| *n == name || *w == name)
        .copied()
    else {
        return HttpResponse::json(
            404,
            &json!({ "command": name, "error": format!("Unknown command: {name}") }),
        );
    };
    let text = four_letter::respond(core, word);
    let mut body = Map::new();
    body.insert("command".into(), json!(command));
    body.insert("error".into(), Value::Null);
    match word {
        "ruok" => {}
        "isro" => {
            body.insert("read_only".into(), json!(text == "ro"));
        }
        "mntr" => {
            for line in text.lines() {
                if let Some((k, v)) = line.split_once('\t') {
                    let key = k.strip_prefix("zk_").unwrap_or(k);
                    body.insert(key.into(), number_or_text(v));
                }
            }
        }
        "conf" | "envi" => {
            for line in text.lines() {
                if let Some((k, v)) = line.split_once('=') {
                    body.insert(k.into(), number_or_text(v));
                }
            }
        }
        "dirs" => {
            for line in text.lines() {
                if let Some((k, v)) = line.split_once(": ") {
                    body.insert(k.into(), number_or_text(v));
                }
            }
        }
        _ => {
            body.insert("output".into(), json!(text));
        }
    }
    if text.starts_with("This ZooKeeper instance is not currently serving requests") {
        body.insert("error".into(), json!(text.trim_end()));
    }
    HttpResponse::json(200, &Value::Object(body))
}

/// AdminServer's `hash`: the tree's digest at the last applied zxid. ZooKeeper keeps a
/// short history of digests; we answer the current one, read under one lock so the pair
/// is consistent. Members that applied the same transactions answer the same pair.
fn digests(core: &ServerCore) -> Value {
    let db = core.db();
    json!({
        "command": "hash",
        "error": null,
        "digests": [{ "zxid": db.last_zxid(), "digest": db.tree().digest() }],
    })
}

/// A number where the text is one (integers, then decimals), else the text.
fn number_or_text(v: &str) -> Value {
    if let Ok(n) = v.parse::<i64>() {
        json!(n)
    } else if let Ok(f) = v.parse::<f64>() {
        json!(f)
    } else {
        json!(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_become_json_numbers() {
        assert_eq!(number_or_text("42"), json!(42));
        assert_eq!(number_or_text("0.5"), json!(0.5));
        assert_eq!(number_or_text("leader"), json!("leader"));
    }
}
