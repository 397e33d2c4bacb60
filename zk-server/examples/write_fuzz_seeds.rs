//! Writes the hand-made seed inputs of the `peer_frames` and `storage_files` fuzz
//! targets ([`zk_server::fuzzing::peer::seeds`], [`zk_server::fuzzing::storage::seeds`])
//! into `<dir>/peer_frames/` and `<dir>/storage_files/`, one file per seed, named for
//! what it holds (`request-0`, `snapshot-v2-sealed-1`, …). Files of the same names are
//! overwritten, others left alone.
//!
//! ```text
//! cargo run -p zk-server --features fuzzing --example write_fuzz_seeds -- fuzz/corpus.work
//! ```
//!
//! then fuzz (`scripts/fuzz.sh <target>` starts from `fuzz/corpus.work/<target>`) and
//! minimize into the checked-in corpus, as `scripts/fuzz.sh` describes.

use std::path::PathBuf;
use std::process::ExitCode;

use zk_server::fuzzing;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(dir), None) = (args.next(), args.next()) else {
        eprintln!(
            "usage: write_fuzz_seeds <dir>   (writes <dir>/peer_frames, <dir>/storage_files)"
        );
        return ExitCode::from(2);
    };
    let dir = PathBuf::from(dir);
    let targets = [
        ("peer_frames", fuzzing::peer::seeds()),
        ("storage_files", fuzzing::storage::seeds()),
    ];
    for (target, seeds) in targets {
        let target_dir = dir.join(target);
        let written = std::fs::create_dir_all(&target_dir).and_then(|()| {
            for (name, seed) in &seeds {
                std::fs::write(target_dir.join(name), seed)?;
            }
            Ok(())
        });
        if let Err(e) = written {
            eprintln!("write_fuzz_seeds: {}: {e}", target_dir.display());
            return ExitCode::FAILURE;
        }
        println!("{}: {} seeds", target_dir.display(), seeds.len());
    }
    ExitCode::SUCCESS
}
