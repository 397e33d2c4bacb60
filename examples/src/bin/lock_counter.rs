//! `lock_counter <connect-string> <file> <turns>`: takes `turns` turns at incrementing
//! the number in `file`, each under the lock `/examples/counter-lock`. Run several at
//! once: no increment is lost. Each turn prints the fencing token it held. A turn
//! whose lease was in doubt once the lock was taken writes nothing, says so on
//! stderr, and is taken again: the file ends `turns` higher, never less.

use std::process::ExitCode;
use std::time::Duration;

use zk_client::Client;
use zk_recipes::{LeaseState, Lock};

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, connect, file, turns] = args.as_slice() else {
        eprintln!("usage: lock_counter <connect-string> <file> <turns>");
        return ExitCode::FAILURE;
    };
    let Ok(turns) = turns.parse::<u32>() else {
        eprintln!("lock_counter: turns must be a number");
        return ExitCode::FAILURE;
    };
    let client = match Client::builder(connect)
        .session_timeout(Duration::from_secs(10))
        .connect()
        .await
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("lock_counter: cannot connect to {connect}: {e}");
            return ExitCode::FAILURE;
        }
    };
    /// Turns in a row that may find the lease in doubt before the program gives up.
    const MAX_DOUBTFUL: u32 = 100;
    let mut lock = Lock::new(&client, "/examples/counter-lock");
    let (mut done, mut doubtful) = (0, 0);
    while done < turns {
        let guard = match lock.acquire().await {
            Ok(guard) => guard,
            Err(e) => {
                eprintln!("lock_counter: acquire failed: {e}");
                return ExitCode::FAILURE;
            }
        };
        let token = guard.fencing_token();
        // Act only while the lease holds (a lost connection means: maybe not ours).
        let lease = guard.lease().state();
        if lease != LeaseState::Held {
            doubtful += 1;
            eprintln!("lock_counter: lease {lease:?} once acquired; this turn is taken again");
            if doubtful > MAX_DOUBTFUL {
                eprintln!("lock_counter: {MAX_DOUBTFUL} turns in a row found the lease in doubt");
                return ExitCode::FAILURE;
            }
        } else {
            doubtful = 0;
            done += 1;
            let current: u64 = std::fs::read_to_string(file)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            if let Err(e) = std::fs::write(file, format!("{}\n", current + 1)) {
                eprintln!("lock_counter: cannot write {file}: {e}");
                return ExitCode::FAILURE;
            }
            println!(
                "turn with fencing token {token:?}: {} -> {}",
                current,
                current + 1
            );
        }
        if let Err(e) = guard.release().await {
            eprintln!("lock_counter: release failed: {e}");
            return ExitCode::FAILURE;
        }
    }
    client.close().await;
    ExitCode::SUCCESS
}
