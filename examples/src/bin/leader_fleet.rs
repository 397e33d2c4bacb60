//! `leader_fleet <connect-string> <worker-id>`: a worker of a fleet. It joins the
//! election on `/examples/fleet/leader`, prints `<id> leads` when it becomes the
//! leader and `<id> follows` when it stops, and works (prints a heartbeat) only while
//! it leads. Start several; kill the leader's process and another takes over once the
//! dead worker's session expires.

use std::process::ExitCode;
use std::time::Duration;

use zk_client::Client;
use zk_recipes::{CloseMode, LeaderLatch};

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, connect, id] = args.as_slice() else {
        eprintln!("usage: leader_fleet <connect-string> <worker-id>");
        return ExitCode::FAILURE;
    };
    let client = match Client::builder(connect)
        .session_timeout(Duration::from_secs(2))
        .connect()
        .await
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("leader_fleet: cannot connect to {connect}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let latch = LeaderLatch::new(&client, "/examples/fleet/leader", id);
    latch.start();
    let mut leadership = latch.leadership();
    println!("{id} joined");
    loop {
        let leading = *leadership.borrow_and_update();
        println!("{id} {}", if leading { "leads" } else { "follows" });
        if leading {
            // The work a leader does, as long as it leads.
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => println!("{id} working"),
                    changed = leadership.changed() => {
                        if changed.is_err() {
                            return ExitCode::FAILURE;
                        }
                        break;
                    }
                    _ = tokio::signal::ctrl_c() => {
                        latch.close_with(CloseMode::NotifyLeader).await;
                        return ExitCode::SUCCESS;
                    }
                }
            }
        } else {
            tokio::select! {
                changed = leadership.changed() => {
                    if changed.is_err() {
                        return ExitCode::FAILURE;
                    }
                }
                _ = tokio::signal::ctrl_c() => {
                    latch.close_with(CloseMode::Silent).await;
                    return ExitCode::SUCCESS;
                }
            }
        }
    }
}
