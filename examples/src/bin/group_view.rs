//! `group_view <connect-string> <member-id> [payload]`: a member of the group at
//! `/examples/group/members`. It joins with its payload (default: its id), prints
//! every change it sees (`<id> sees <other> joined|updated|left`) and the whole group
//! after it (`<id> view: a,b,c`). Start several; kill one and the others see it leave
//! once its session expires.

use std::process::ExitCode;
use std::time::Duration;

use futures::StreamExt;
use zk_client::Client;
use zk_recipes::{GroupMember, MemberEvent};

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (connect, id, payload) = match args.as_slice() {
        [_, connect, id] => (connect, id, id.clone()),
        [_, connect, id, payload] => (connect, id, payload.clone()),
        _ => {
            eprintln!("usage: group_view <connect-string> <member-id> [payload]");
            return ExitCode::FAILURE;
        }
    };
    let client = match Client::builder(connect)
        .session_timeout(Duration::from_secs(2))
        .renew_expired_sessions(true)
        .connect()
        .await
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("group_view: cannot connect to {connect}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let member = GroupMember::new(&client, "/examples/group/members", id, payload.as_bytes());
    member.start();
    let mut changes = member.changes();
    let view =
        |members: &zk_recipes::Members| members.keys().cloned().collect::<Vec<_>>().join(",");
    println!("{id} view: {}", view(&member.ready().await));
    loop {
        tokio::select! {
            change = changes.next() => {
                let Some(change) = change else {
                    eprintln!("group_view: the client ended");
                    return ExitCode::FAILURE;
                };
                match change {
                    MemberEvent::Joined(other, _) => println!("{id} sees {other} joined"),
                    MemberEvent::Updated(other, _) => println!("{id} sees {other} updated"),
                    MemberEvent::Left(other) => println!("{id} sees {other} left"),
                }
                println!("{id} view: {}", view(&member.members()));
            }
            _ = tokio::signal::ctrl_c() => {
                member.close().await;
                return ExitCode::SUCCESS;
            }
        }
    }
}
