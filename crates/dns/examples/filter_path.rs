//! The inline filter's per-query path, in one process, for instruction counts
//! (`valgrind --tool=callgrind`): the real `filter::serve` (UDP threads, answer cache) with the
//! benchmark's 1M-name list and query mix, in front of a resolver started outside (the
//! benchmark's Unbound), fed by a client thread that keeps a window of queries outstanding.
//!
//! `cargo build --release -p mamori-dns --example filter_path`
//! `filter_path BLOCK_LIST QUERIES UPSTREAM [PASSES] [CACHE_ENTRIES]`
//! (`bench/dns/gen.py` writes `block.txt` and `queries.txt`; `PASSES`, default 1, are the measured
//! passes over the queries after one warm-up pass.) Run it with `PASSES=0` and `PASSES=1` under
//! callgrind and subtract: the difference is what one pass over the queries costs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RecordType};
use mamori_core::clock::WallClock;
use mamori_core::config::Config;
use mamori_core::governance::Governance;
use mamori_dns::engine::NoLookup;
use mamori_dns::filter::{self, Filter};
use mamori_dns::reputation::{ListFormat, load};
use mamori_store::{SqliteStore, StoreOptions};

/// Queries outstanding at once (dnsperf's `-q` is 500 over 8 sockets; one socket here).
const WINDOW: usize = 64;

/// Sends `queries` in windows of [`WINDOW`]; with `answers`, keeps each query's answer (by index:
/// query `i` went out with id `i mod 65536`).
fn pass(sock: &UdpSocket, to: SocketAddr, queries: &[Vec<u8>], mut answers: Option<&mut [Vec<u8>]>) -> (usize, usize) {
    let (mut sent, mut got) = (0, 0);
    let mut buf = [0u8; 4096];
    for (c, chunk) in queries.chunks(WINDOW).enumerate() {
        let start = c * WINDOW;
        for q in chunk {
            sock.send_to(q, to).unwrap();
            sent += 1;
        }
        for _ in chunk {
            let Ok((n, _)) = sock.recv_from(&mut buf) else {
                break; // a loss: the window moves on after the read timeout
            };
            got += 1;
            if let Some(a) = answers.as_deref_mut() {
                let id = u16::from_be_bytes([buf[0], buf[1]]);
                let i = start + usize::from(id.wrapping_sub(start as u16));
                if let Some(slot) = a.get_mut(i) {
                    *slot = buf[..n].to_vec();
                }
            }
        }
    }
    (sent, got)
}

/// A digest of the answers with their ids and TTLs set to 0 (TTLs age with the seconds an answer
/// spent in the cache, which differ from run to run), for comparing builds: `DIGEST=1`.
fn digest(answers: &[Vec<u8>]) -> (u64, usize) {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    let mut bad = 0;
    for (i, a) in answers.iter().enumerate() {
        i.hash(&mut h);
        let Ok(mut m) = Message::from_vec(a) else {
            bad += 1;
            continue;
        };
        m.set_id(0);
        for r in m.answers_mut() {
            r.set_ttl(0);
        }
        for r in m.name_servers_mut() {
            r.set_ttl(0);
        }
        for r in m.additionals_mut() {
            r.set_ttl(0);
        }
        m.to_vec().unwrap().hash(&mut h);
    }
    (h.finish(), bad)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: filter_path BLOCK_LIST QUERIES UPSTREAM [PASSES] [CACHE_ENTRIES]");
        std::process::exit(2);
    }
    let upstream: SocketAddr = args[3].parse().expect("UPSTREAM as ip:port");
    let passes: usize = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(1);
    let cache: usize = args.get(5).and_then(|a| a.parse().ok()).unwrap_or(100_000);

    let list = load(std::path::Path::new(&args[1]), Some(ListFormat::Plain), Some("bench")).unwrap();
    let queries: Vec<Vec<u8>> = std::fs::read_to_string(&args[2])
        .unwrap()
        .lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let (name, t) = l.split_once(' ')?;
            let rt = if t == "AAAA" { RecordType::AAAA } else { RecordType::A };
            let mut m = Message::new();
            m.set_id(i as u16).set_recursion_desired(true);
            m.add_query(Query::query(Name::from_ascii(name).ok()?, rt));
            m.to_vec().ok()
        })
        .collect();

    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("m.sqlite"), StoreOptions::default()).unwrap());
    let gov = Governance::new(store, Arc::new(WallClock), Arc::new(Config::default())).unwrap();
    let f = Arc::new(
        Filter::new(&gov, Arc::new(WallClock), None, Arc::new(NoLookup), "192.0.2.80".parse().unwrap()).unwrap(),
    );
    f.set_static_list(list.names);
    f.enable_cache(cache);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (addr, _tasks) = rt.block_on(filter::serve(f.clone(), "127.0.0.1:0".parse().unwrap(), upstream)).unwrap();

    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let warm = pass(&sock, addr, &queries, None);
    let mut answers = std::env::var_os("DIGEST").map(|_| vec![Vec::new(); queries.len()]);
    let q0 = f.stats.queries.load(Ordering::Relaxed);
    let c0 = f.stats.cached.load(Ordering::Relaxed);
    let mut measured = (0, 0);
    for _ in 0..passes {
        let (s, g) = pass(&sock, addr, &queries, answers.as_deref_mut());
        measured = (measured.0 + s, measured.1 + g);
    }
    let s = &f.stats;
    println!(
        "warm-up: {} sent, {} answered; measured: {} sent, {} answered, {} reached the filter, {} from the cache, {} blocked",
        warm.0,
        warm.1,
        measured.0,
        measured.1,
        s.queries.load(Ordering::Relaxed) - q0,
        s.cached.load(Ordering::Relaxed) - c0,
        s.blocked_list.load(Ordering::Relaxed),
    );
    if let Some(a) = &answers {
        let (d, bad) = digest(a);
        println!("answers of the last pass: digest {d:016x} ({bad} not parseable)");
    }
}
