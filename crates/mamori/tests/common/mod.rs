//! What the binary's integration tests share: running `mamori` with a config file, and a guard
//! that stops a background `mamori serve` (or a peer) even when the test panics.
// Each test crate uses a part of this.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

/// The binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mamori"))
}

/// `mamori --config CFG ARGS…`, without the caller's `RUST_LOG`.
pub fn mamori(cfg: &Path, args: &[&str]) -> Output {
    Command::new(bin()).arg("--config").arg(cfg).args(args).env_remove("RUST_LOG").output().unwrap()
}

/// Kills and reaps the process when dropped.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Asserts success (showing both streams otherwise) and returns stdout.
pub fn ok(o: Output) -> String {
    assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}
