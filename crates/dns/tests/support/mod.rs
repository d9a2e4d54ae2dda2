//! Test harness: a real Unbound on loopback with a generated configuration, stopped on drop (so
//! also when a test panics), and a small DNS client.
//!
//! Tests call [`unbound_binary`] first: without Unbound they skip loudly, unless
//! `MAMORI_REQUIRE_PEERS` is set (CI, `scripts/test.sh`), where they fail.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RecordType};

pub fn unbound_binary() -> Option<PathBuf> {
    for dir in ["/usr/sbin", "/usr/local/sbin", "/usr/bin", "/sbin"] {
        let p = Path::new(dir).join("unbound");
        if p.exists() {
            return Some(p);
        }
    }
    if std::env::var_os("MAMORI_REQUIRE_PEERS").is_some() {
        panic!(
            "unbound not installed but MAMORI_REQUIRE_PEERS is set: install the Debian packages listed in scripts/test.sh"
        );
    }
    eprintln!(
        "\n################################################################################\n\
         SKIPPED: unbound not installed, so the real-peer test did not run.\n\
         Install: apt-get install unbound\n\
         (set MAMORI_REQUIRE_PEERS=1 to fail instead of skipping; scripts/test.sh does)\n\
         ################################################################################\n"
    );
    None
}

/// A port free on loopback for both UDP and TCP.
pub fn free_port() -> u16 {
    loop {
        let t = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = t.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Where Unbound sends dnstap.
pub enum Dnstap {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

pub struct UnboundOptions {
    /// The port to listen on (else a free one).
    pub port: Option<u16>,
    pub dnstap: Option<Dnstap>,
    /// (zone name, primary address) of an RPZ served by mamori.
    pub rpz: Option<(String, SocketAddr)>,
    /// `local-zone` lines: (zone, type), and `local-data` records.
    pub local_zones: Vec<(String, String)>,
    pub local_data: Vec<String>,
    /// Zones Unbound serves to its own iterator (`auth-zone` with `for-upstream`), as if fetched
    /// from an authoritative server, so response policies apply to them: (zone, zone file text).
    pub auth_zones: Vec<(String, String)>,
}

pub struct Unbound {
    child: Child,
    pub addr: SocketAddr,
    pub dir: PathBuf,
}

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Unbound {
    pub fn start(bin: &Path, dir: &Path, o: UnboundOptions) -> Unbound {
        let port = o.port.unwrap_or_else(free_port);
        let mut c = String::new();
        writeln!(c, "server:").unwrap();
        writeln!(c, "  interface: 127.0.0.1\n  port: {port}\n  do-ip6: no\n  do-daemonize: no").unwrap();
        writeln!(c, "  username: \"\"\n  chroot: \"\"\n  directory: \"{}\"", dir.display()).unwrap();
        writeln!(c, "  pidfile: \"{}/unbound.pid\"\n  use-syslog: no\n  logfile: \"\"", dir.display()).unwrap();
        writeln!(c, "  verbosity: 1\n  num-threads: 1\n  access-control: 127.0.0.0/8 allow").unwrap();
        writeln!(c, "  do-not-query-localhost: no\n  module-config: \"respip iterator\"").unwrap();
        writeln!(c, "  trust-anchor-signaling: no\n  root-key-sentinel: no\n  harden-referral-path: no").unwrap();
        // Unbound answers `test.` itself (RFC 6761) unless told not to.
        writeln!(c, "  local-zone: \"test.\" nodefault").unwrap();
        for (z, t) in &o.local_zones {
            writeln!(c, "  local-zone: \"{z}\" {t}").unwrap();
        }
        for d in &o.local_data {
            writeln!(c, "  local-data: \"{d}\"").unwrap();
        }
        writeln!(c, "remote-control:\n  control-enable: no").unwrap();
        for (i, (zone, text)) in o.auth_zones.iter().enumerate() {
            let f = dir.join(format!("auth{i}.zone"));
            std::fs::write(&f, text).unwrap();
            writeln!(c, "auth-zone:\n  name: \"{zone}\"\n  zonefile: \"{}\"", f.display()).unwrap();
            writeln!(c, "  for-upstream: yes\n  for-downstream: no\n  fallback-enabled: no").unwrap();
        }
        if let Some(d) = &o.dnstap {
            writeln!(c, "dnstap:\n  dnstap-enable: yes\n  dnstap-send-identity: yes\n  dnstap-send-version: yes")
                .unwrap();
            writeln!(c, "  dnstap-log-client-query-messages: yes\n  dnstap-log-client-response-messages: yes").unwrap();
            match d {
                Dnstap::Unix(p) => writeln!(c, "  dnstap-socket-path: \"{}\"", p.display()).unwrap(),
                Dnstap::Tcp(a) => {
                    writeln!(c, "  dnstap-ip: \"{}@{}\"\n  dnstap-tls: no", a.ip(), a.port()).unwrap();
                }
            }
        }
        if let Some((name, primary)) = &o.rpz {
            writeln!(c, "rpz:\n  name: \"{name}\"\n  primary: {}@{}", primary.ip(), primary.port()).unwrap();
            writeln!(c, "  zonefile: \"{}/rpz.zone\"\n  allow-notify: 127.0.0.1\n  rpz-log: yes", dir.display())
                .unwrap();
        }
        let conf = dir.join("unbound.conf");
        std::fs::write(&conf, &c).unwrap();
        let log = std::fs::File::create(dir.join("unbound.log")).unwrap();
        let child = Command::new(bin)
            .arg("-d")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let u = Unbound { child, addr: SocketAddr::from(([127, 0, 0, 1], port)), dir: dir.to_owned() };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if query(u.addr, "www.example.test.", RecordType::A).is_some() {
                return u;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("unbound did not start:\n{}\n{}", c, u.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("unbound.log")).unwrap_or_default()
    }
}

/// One UDP query; `None` on timeout.
pub fn query(server: SocketAddr, name: &str, rt: RecordType) -> Option<Message> {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let mut m = Message::new();
    let id: u16 = rand_id();
    m.set_id(id).set_recursion_desired(true).add_query(Query::query(Name::from_ascii(name).unwrap(), rt));
    sock.send_to(&m.to_vec().unwrap(), server).unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = sock.recv_from(&mut buf).ok()?;
    let r = Message::from_vec(&buf[..n]).ok()?;
    (r.id() == id).then_some(r)
}

fn rand_id() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static N: AtomicU16 = AtomicU16::new(4242);
    N.fetch_add(7, Ordering::Relaxed)
}

/// Polls `f` until it returns `Some` or the timeout passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
