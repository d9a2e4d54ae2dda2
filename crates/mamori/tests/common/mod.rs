//! What the binary's integration tests share: running `mamori` with a config file, and a guard
//! that stops a background `mamori serve` (or a peer) even when the test panics.
// Each test crate uses a part of this.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// The binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mamori"))
}

/// `mamori --config CFG ARGS…`, without the caller's `RUST_LOG`.
pub fn mamori(cfg: &Path, args: &[&str]) -> Output {
    Command::new(bin()).arg("--config").arg(cfg).args(args).env_remove("RUST_LOG").output().unwrap()
}

/// `mamori --config CFG serve` in the background at `RUST_LOG=info`, its log written to `log`
/// (tests wait for its lines), stopped when the guard drops.
pub fn serve(cfg: &Path, log: &Path) -> KillOnDrop {
    KillOnDrop(
        Command::new(bin())
            .arg("--config")
            .arg(cfg)
            .arg("serve")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap(),
    )
}

/// Kills and reaps the process when dropped.
pub struct KillOnDrop(pub Child);

impl KillOnDrop {
    /// Asks the process to stop (SIGTERM, as an init system does) and waits up to `grace` for it;
    /// whether it exited successfully in time.
    pub fn terminate(&mut self, grace: std::time::Duration) -> bool {
        let pid = self.0.id().to_string();
        if !Command::new("kill").args(["-TERM", &pid]).status().is_ok_and(|s| s.success()) {
            return false;
        }
        let deadline = std::time::Instant::now() + grace;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.0.try_wait() {
                return status.success();
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        false
    }
}

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

/// A TCP port free on loopback right now.
pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A UDP port free on loopback right now.
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The body of `GET path` on a loopback HTTP port (empty while nothing listens there).
pub fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return String::new() };
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    resp.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default()
}
