//! Test harness: real Kamailio (running `examples/kamailio/kamailio.cfg`) and sipp on loopback,
//! on free ports, in a temporary directory, killed on drop (also when a test panics).
//!
//! Shared by `crates/kamailio/tests/*.rs` and `crates/mamori/tests/kamailio.rs` (included with
//! `#[path]`). Tests call [`peers`] first: without the binaries they skip loudly, unless
//! `MAMORI_REQUIRE_PEERS` is set (CI), where they fail.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::fs;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Kamailio configuration under test.
pub const KAMAILIO_CFG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/kamailio/kamailio.cfg");
/// The sipp scenarios.
pub const SIPP_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../kamailio/tests/sipp");

/// Reason phrases of `kamailio.cfg`'s refusals.
pub const LINE_SUSPENDED: &str = "International calls suspended (mamori)";
pub const IP_SUSPENDED: &str = "Authentication suspended for this address (mamori)";
pub const COUNTRY_RESTRICTED: &str = "Calls to this country are restricted (mamori)";

/// The real programs.
#[derive(Debug, Clone)]
pub struct Peers {
    pub kamailio: PathBuf,
    pub sipp: PathBuf,
}

fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin", "/usr/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The peers, or `None` (with a loud message) when they are not installed and
/// `MAMORI_REQUIRE_PEERS` is unset. Panics when they are missing and required.
pub fn peers() -> Option<Peers> {
    match (find("kamailio"), find("sipp")) {
        (Some(kamailio), Some(sipp)) => Some(Peers { kamailio, sipp }),
        (k, s) => {
            let missing: Vec<&str> =
                [("kamailio", k.is_none()), ("sipp", s.is_none())].into_iter().filter(|x| x.1).map(|x| x.0).collect();
            if std::env::var_os("MAMORI_REQUIRE_PEERS").is_some() {
                panic!(
                    "{} not installed but MAMORI_REQUIRE_PEERS is set: install the Debian packages listed in scripts/test.sh",
                    missing.join(" and ")
                );
            }
            eprintln!(
                "\n################################################################################\n\
                 SKIPPED: {} not installed, so the real-peer test did not run.\n\
                 Install: apt-get install kamailio kamailio-extra-modules sip-tester\n\
                 (set MAMORI_REQUIRE_PEERS=1 to fail instead of skipping; scripts/test.sh does)\n\
                 ################################################################################\n",
                missing.join(" and ")
            );
            None
        }
    }
}

/// Hands out each port once per test process, so tests running in parallel threads never pick
/// the same one between probing it and binding it.
fn fresh(probe: impl Fn() -> u16) -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    loop {
        let p = probe();
        if !given.contains(&p) {
            given.push(p);
            return p;
        }
    }
}

/// A UDP port free on loopback right now (and never handed out before in this process).
pub fn free_udp_port() -> u16 {
    fresh(|| UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port())
}

/// A TCP port free on loopback right now (and never handed out before in this process).
pub fn free_tcp_port() -> u16 {
    fresh(|| TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port())
}

/// Whether a UDP socket is bound to this port on IPv4 (from /proc/net/udp, without touching it).
pub fn udp_port_bound(port: u16) -> bool {
    let needle = format!(":{port:04X} ");
    fs::read_to_string("/proc/net/udp")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .any(|l| l.split_whitespace().nth(1).is_some_and(|local| format!("{local} ").ends_with(&needle)))
}

/// A child process in its own process group, killed with its whole group on drop.
#[derive(Debug)]
pub struct Proc {
    pub child: Child,
    pub name: &'static str,
}

impl Proc {
    pub fn spawn(name: &'static str, cmd: &mut Command) -> Proc {
        cmd.process_group(0);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc { child, name }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGTERM to the group, then SIGKILL after `grace`; waits for the leader.
    pub fn stop(&mut self, grace: Duration) {
        if self.exited().is_some() {
            // The leader is gone; make sure no child of it stays behind.
            signal_group(self.pid(), "KILL");
            return;
        }
        signal_group(self.pid(), "TERM");
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if self.exited().is_some() {
                signal_group(self.pid(), "KILL");
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        signal_group(self.pid(), "KILL");
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(3));
    }
}

/// Signals a process group we created (its id is the leader's pid).
fn signal_group(pgid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg("--")
        .arg(format!("-{pgid}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A running Kamailio.
pub struct Kamailio {
    peers: Peers,
    dir: tempfile::TempDir,
    proc: Option<Proc>,
    pub sip_port: u16,
    pub http_port: u16,
    pub evapi_port: u16,
    /// Where calls are relayed (a sipp UAS).
    pub next_hop_port: u16,
    starts: u32,
}

impl Kamailio {
    /// Starts Kamailio with these SIP lines (`line id`, `password`), relaying calls to
    /// `127.0.0.1:next_hop_port`. Waits until JSON-RPC answers.
    pub fn start(peers: &Peers, lines: &[(&str, &str)], next_hop_port: u16) -> Kamailio {
        let mut dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("run")).unwrap();
        fs::create_dir_all(dir.path().join("db")).unwrap();
        let mut pw = String::from("username(str) password(str)\n");
        for (l, p) in lines {
            pw.push_str(&format!("{l}:{p}\n"));
        }
        fs::write(dir.path().join("db/sip_passwords"), pw).unwrap();
        let mut last_log = String::new();
        for _attempt in 0..3 {
            let mut k = Kamailio {
                peers: peers.clone(),
                proc: None,
                sip_port: free_udp_port(),
                http_port: free_tcp_port(),
                evapi_port: free_tcp_port(),
                next_hop_port,
                starts: 0,
                dir,
            };
            match k.launch() {
                Ok(()) => return k,
                Err(log) => {
                    last_log = log;
                    dir = k.take_dir();
                }
            }
        }
        panic!("Kamailio did not start (3 attempts); last log:\n{last_log}");
    }

    fn take_dir(mut self) -> tempfile::TempDir {
        if let Some(mut p) = self.proc.take() {
            p.stop(Duration::from_secs(3));
        }
        let placeholder = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, placeholder)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join(format!("kamailio-{}.log", self.starts))
    }

    fn launch(&mut self) -> Result<(), String> {
        self.starts += 1;
        let run = self.dir.path().join("run");
        let log = fs::File::create(self.log_path()).unwrap();
        let mut cmd = Command::new(&self.peers.kamailio);
        cmd.args(["-DD", "-E", "-m", "48", "-M", "8", "-f", KAMAILIO_CFG])
            .arg("-P")
            .arg(run.join("kamailio.pid"))
            .arg("-Y")
            .arg(&run)
            .arg("-w")
            .arg(&run)
            .args(["-A", &format!("SIP_PORT={}", self.sip_port)])
            .args(["-A", &format!("HTTP_PORT={}", self.http_port)])
            .args(["-A", &format!("EVAPI_BIND=\"127.0.0.1:{}\"", self.evapi_port)])
            .args(["-A", &format!("NEXT_HOP=\"sip:127.0.0.1:{}\"", self.next_hop_port)])
            .args(["-A", &format!("PASSWORDS_DB=\"text://{}\"", self.dir.path().join("db").display())])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let mut proc = Proc::spawn("kamailio", &mut cmd);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = proc.exited() {
                drop(proc);
                return Err(format!("kamailio exited ({status}):\n{}", tail(&self.log_path(), 40)));
            }
            if self.rpc_ready() {
                self.proc = Some(proc);
                return Ok(());
            }
            if Instant::now() > deadline {
                drop(proc);
                return Err(format!("kamailio not ready after 20 s:\n{}", tail(&self.log_path(), 40)));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn rpc_ready(&self) -> bool {
        let body = r#"{"jsonrpc":"2.0","method":"htable.listTables","id":1}"#;
        let Ok(mut s) =
            TcpStream::connect_timeout(&([127, 0, 0, 1], self.http_port).into(), Duration::from_millis(200))
        else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let req = format!(
            "POST /RPC HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        if std::io::Write::write_all(&mut s, req.as_bytes()).is_err() {
            return false;
        }
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out.contains("mamori_lines")
    }

    /// Kills Kamailio (its htables are lost) and starts it again on the same ports.
    pub fn restart(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.stop(Duration::from_secs(5));
        }
        // The ports were ours; give the kernel a moment to release them.
        let mut result = Err(String::new());
        for _ in 0..5 {
            result = self.launch();
            if result.is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        panic!("Kamailio did not restart: {}", result.unwrap_err());
    }

    pub fn rpc_url(&self) -> String {
        format!("http://127.0.0.1:{}/RPC", self.http_port)
    }

    pub fn evapi_addr(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.evapi_port).into()
    }

    pub fn log(&self) -> String {
        tail(&self.log_path(), 60)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.stop(Duration::from_secs(5));
        }
    }
}

/// The far end: a sipp UAS answering every call.
pub struct Uas {
    pub port: u16,
    _proc: Proc,
    _dir: tempfile::TempDir,
}

impl Uas {
    pub fn start(peers: &Peers) -> Uas {
        let dir = tempfile::tempdir().unwrap();
        let port = free_udp_port();
        let out = fs::File::create(dir.path().join("uas.out")).unwrap();
        let mut cmd = Command::new(&peers.sipp);
        cmd.arg("-sf")
            .arg(Path::new(SIPP_DIR).join("uas.xml"))
            .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-nostdin", "-trace_err"])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        let proc = Proc::spawn("sipp uas", &mut cmd);
        // sipp binds at once; wait until the kernel lists the socket.
        let mut proc = proc;
        assert!(
            wait_until(Duration::from_secs(5), || udp_port_bound(port) || proc.exited().is_some()),
            "sipp UAS did not bind"
        );
        if let Some(s) = proc.exited() {
            panic!("sipp UAS exited ({s}):\n{}", tail(&dir.path().join("uas.out"), 20));
        }
        Uas { port, _proc: proc, _dir: dir }
    }
}

/// What a sipp UAC is expected to see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The call is answered (after digest authentication).
    Answered,
    /// After authentication, `403` with this reason.
    RefusedAfterAuth(&'static str),
    /// `403` with this reason before any challenge.
    RefusedBeforeAuth(&'static str),
    /// REGISTER succeeds (after authentication).
    Registered,
    /// REGISTER refused with `403` and this reason before any challenge.
    RegisterRefused(&'static str),
}

/// One sipp run against Kamailio.
pub struct Sipp<'a> {
    pub peers: &'a Peers,
    pub kamailio: &'a Kamailio,
    pub line: &'a str,
    pub password: &'a str,
    pub from_ip: &'a str,
    pub hold_ms: u64,
}

impl<'a> Sipp<'a> {
    pub fn new(peers: &'a Peers, kamailio: &'a Kamailio, line: &'a str, password: &'a str) -> Self {
        Sipp { peers, kamailio, line, password, from_ip: "127.0.0.1", hold_ms: 200 }
    }

    pub fn from(mut self, ip: &'a str) -> Self {
        self.from_ip = ip;
        self
    }

    fn scenario(&self, dir: &Path, expect: Expect) -> PathBuf {
        let (file, reason) = match expect {
            Expect::Answered => ("uac_call.xml", None),
            Expect::RefusedAfterAuth(r) => ("uac_refused.xml", Some(r)),
            Expect::RefusedBeforeAuth(r) => ("uac_refused_noauth.xml", Some(r)),
            Expect::Registered => ("register.xml", None),
            Expect::RegisterRefused(r) => ("register_refused.xml", Some(r)),
        };
        let src = fs::read_to_string(Path::new(SIPP_DIR).join(file)).unwrap();
        let regex = reason.map(|r| r.replace('(', "[(]").replace(')', "[)]")).unwrap_or_default();
        let path = dir.join(file);
        fs::write(&path, src.replace("@REASON@", &regex)).unwrap();
        path
    }

    fn command(&self, dir: &Path, scenario: &Path, number: &str) -> Command {
        let mut cmd = Command::new(&self.peers.sipp);
        cmd.arg(format!("127.0.0.1:{}", self.kamailio.sip_port))
            .arg("-sf")
            .arg(scenario)
            .args(["-s", number, "-key", "calling", self.line, "-au", self.line, "-ap", self.password])
            .args(["-i", self.from_ip, "-nostdin", "-trace_err"])
            .current_dir(dir)
            .stdin(Stdio::null());
        cmd
    }

    /// Places one call (or REGISTER) and checks the outcome; panics with sipp's errors and
    /// Kamailio's log otherwise.
    pub fn expect(&self, number: &str, expect: Expect) {
        if let Err(e) = self.try_expect(number, expect) {
            panic!("{e}\n--- kamailio log ---\n{}", self.kamailio.log());
        }
    }

    /// Like [`Self::expect`], returning the failure instead of panicking.
    pub fn try_expect(&self, number: &str, expect: Expect) -> Result<(), String> {
        let dir = tempfile::tempdir().unwrap();
        let scenario = self.scenario(dir.path(), expect);
        let out = fs::File::create(dir.path().join("sipp.out")).unwrap();
        let mut cmd = self.command(dir.path(), &scenario, number);
        cmd.args(["-m", "1", "-d", &self.hold_ms.to_string(), "-timeout", "15", "-timeout_error"])
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        let mut proc = Proc::spawn("sipp uac", &mut cmd);
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = proc.exited() {
                break s;
            }
            if Instant::now() > deadline {
                return Err(format!("sipp ({expect:?}, from {}) hung", self.from_ip));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if status.success() {
            return Ok(());
        }
        let mut errors = String::new();
        for e in fs::read_dir(dir.path()).unwrap().flatten() {
            if e.file_name().to_string_lossy().ends_with("_errors.log") {
                errors.push_str(&fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
        Err(format!(
            "sipp: expected {expect:?} for a call from {} (line {}) — exit {status}\n--- sipp errors ---\n{errors}\n--- sipp output ---\n{}",
            self.from_ip,
            self.line,
            tail(&dir.path().join("sipp.out"), 15)
        ))
    }

    /// Starts `calls` concurrent answered calls held for `hold_ms`, in the background.
    pub fn burst(&self, number: &str, calls: u32, hold_ms: u64) -> Burst {
        let dir = tempfile::tempdir().unwrap();
        let scenario = self.scenario(dir.path(), Expect::Answered);
        let out = fs::File::create(dir.path().join("sipp.out")).unwrap();
        let mut cmd = self.command(dir.path(), &scenario, number);
        cmd.args(["-m", &calls.to_string(), "-l", &calls.to_string(), "-r", &calls.to_string()])
            .args(["-d", &hold_ms.to_string(), "-timeout", "120"])
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        let proc = Proc::spawn("sipp burst", &mut cmd);
        Burst { proc, dir }
    }
}

/// A background burst of calls.
pub struct Burst {
    pub proc: Proc,
    pub dir: tempfile::TempDir,
}

impl Burst {
    /// Waits for the end of the burst (or kills it after `timeout`); true when every call was
    /// answered.
    pub fn wait(mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(s) = self.proc.exited() {
                return s.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

/// Polls `f` until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}
