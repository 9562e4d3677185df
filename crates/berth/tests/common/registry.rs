//! `berth registry serve` on a free port of 127.0.0.1, its storage in a scratch directory.
//! The caller owns the process (and kills it when done).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub struct Started {
    pub child: Child,
    /// `127.0.0.1:PORT`, as the server printed it.
    pub addr: String,
    pub storage: PathBuf,
    pub dir: tempfile::TempDir,
}

/// Starts the server with `extra` flags and waits for the line that names its address.
pub fn start(extra: &[&str]) -> Started {
    let dir = tempfile::Builder::new()
        .prefix("registry-")
        .tempdir_in(super::scratch_dir())
        .unwrap();
    let storage = dir.path().join("storage");
    let mut child = Command::new(super::BIN)
        .args(["registry", "serve", "--addr", "127.0.0.1:0", "--storage"])
        .arg(&storage)
        .args(extra)
        .env("BERTH_ROOT", dir.path().join("root"))
        .env("BERTH_RUNROOT", dir.path().join("run"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("://")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("registry serve printed {line:?}"))
        .to_string();
    Started {
        child,
        addr,
        storage,
        dir,
    }
}
