//! Watch and session events as zkCli.sh's default watcher prints them (`WATCHER::`),
//! and collecting the events that are already there into a command's output.

use zk_client::{SessionState, WatchedEvent};

use crate::conn::Conn;
use crate::run::Run;
use crate::watches::WatchTable;

/// What zkCli.sh's watcher prints for an event: `WATCHER::` and the event, each after
/// an empty line. `path` `None` prints as Java's `null`.
pub fn event_text(state: &str, kind: &str, path: Option<&str>) -> String {
    format!(
        "\nWATCHER::\n\nWatchedEvent state:{state} type:{kind} path:{}\n",
        path.unwrap_or("null")
    )
}

/// The `KeeperState` name Java reports a session state change with.
pub fn keeper_state(s: SessionState) -> Option<&'static str> {
    Some(match s {
        SessionState::Connected => "SyncConnected",
        SessionState::ConnectedReadOnly => "ConnectedReadOnly",
        SessionState::Disconnected => "Disconnected",
        SessionState::Expired => "Expired",
        SessionState::AuthFailed => "AuthFailed",
        SessionState::Closed => "Closed",
        SessionState::Connecting => return None,
    })
}

/// What zkCli.sh's watcher prints for a watch event.
pub fn watch_text(ev: &WatchedEvent) -> String {
    event_text(
        &format!("{:?}", ev.state),
        &format!("{:?}", ev.event_type),
        Some(&ev.path),
    )
}

/// Adds the events already there to `run` (as text, if it prints watches).
pub fn drain_events(conn: &mut Conn, watches: &mut WatchTable, run: &mut Run) {
    loop {
        let text = match conn.try_state() {
            Some(s) => keeper_state(s).map(|k| event_text(k, "None", None)),
            None => match watches.try_event(conn) {
                Some(w) => Some(watch_text(&w)),
                None => return,
            },
        };
        if let (Some(t), true) = (text, run.print_watches) {
            run.out(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_as_zkcli_prints_them() {
        assert_eq!(
            event_text("SyncConnected", "None", None),
            "\nWATCHER::\n\nWatchedEvent state:SyncConnected type:None path:null\n"
        );
    }
}
