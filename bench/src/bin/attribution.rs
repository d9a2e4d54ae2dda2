//! Attribution benchmark (issue 5): lookups per second on one core and heap bytes per session of
//! mamori's session index with 10 million sessions, beside a plain `HashMap<(IpAddr, u16), …>`
//! holding the same sessions, in the same run.
//!
//! ```text
//! cargo run --release -p mamori-bench --bin attribution -- --sessions 10000000
//! ```
//!
//! The sessions (deterministic, `--seed`) are 90 days of a carrier's dynamic addressing: a
//! "slot" is an address (or a CGNAT port block) handed to one session after another, each of a
//! random subscriber, for a random duration (70 % 1 h–3 days, 25 % 3–30 days, 5 % 1–60 min)
//! with a random gap. Half the slots are public IPv4 addresses, half are 2016-port blocks of
//! CGNAT addresses (32 blocks per address, ports 1024–65535), and every session is dual-stack
//! with a delegated /56 of its own slot's IPv6 range, so each session is two index entries.
//!
//! Queries are drawn from the sessions (an instant inside one, its address, and for CGNAT its
//! port; 5 % of CGNAT queries without a port) plus 10 % random misses, half IPv4 and half IPv6.
//! Both structures answer every query; their answers are compared (they must agree) before the
//! timed loops. Heap is counted by a counting global allocator (`cap`), from just before a
//! structure is built to just after (its own build's garbage freed).
//!
//! The baseline is what one would write first: `HashMap<(IpAddr, u16), Vec<(start, end,
//! subscriber)>>`, keyed by the address and the first port of the CGNAT block (known to be fixed
//! 2016-port blocks: the baseline's best case), with the subscriber names in a `Vec<Box<str>>`.

use std::alloc::System;
use std::collections::HashMap;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use cap::Cap;
use mamori_attribution::index::{self, Attribution, Index};
use mamori_attribution::radius::{Ipv6Prefix, PortBlock};
use mamori_attribution::session::{SessionKey, SessionRow};
use mamori_bench::{Args, command_line, fmt_rate, machine_description, thousands};

#[global_allocator]
static ALLOC: Cap<System> = Cap::new(System, usize::MAX);

const USAGE: &str = "attribution: session index lookups/s and bytes/session beside a HashMap

usage: attribution [--sessions N] [--subscribers N] [--lookups N] [--queries N] [--sorted-batch N] [--seed N]
                   [--only KIND] [--batch-only [--passes N]]

  --sessions N     sessions in both structures (default 10000000)
  --subscribers N  distinct subscribers (default 1000000)
  --lookups N      timed lookups per structure (default 10000000)
  --queries N      distinct queries, cycled (default 2000000)
  --sorted-batch N queries per call of the sorted batches (default 1000000: a report)
  --seed N         generator seed (default 5)
  --only KIND      time only one kind of query, to see what each costs: ipv6, ipv4 (public addresses),
                   cgnat (CGNAT addresses, with or without a port), cgnat-port (with a port) or
                   cgnat-no-port (without: every block's session answers); misses are dropped with
                   the other kinds; or with-ports: the whole mix but its port-less CGNAT queries,
                   misses included (default: the whole mix)
  --batch-only     time only the index's `lookup_batch` (after checking its answer to every distinct
                   query against the one-by-one lookup), to compare builds of the index quickly: no
                   one-by-one or sorted timing, no HashMap baseline
  --passes N       with --batch-only: time the batched lookups N times (default 3)";

const KNOWN: &[&str] =
    &["sessions", "subscribers", "lookups", "queries", "sorted-batch", "seed", "only", "batch-only", "passes"];

/// The kinds of query `--only` keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Only {
    Ipv6,
    Ipv4,
    Cgnat,
    CgnatPort,
    CgnatNoPort,
    /// The default mix without its port-less CGNAT queries.
    WithPorts,
}

impl Only {
    fn parse(v: &str) -> Result<Only> {
        Ok(match v {
            "ipv6" => Only::Ipv6,
            "ipv4" => Only::Ipv4,
            "cgnat" => Only::Cgnat,
            "cgnat-port" => Only::CgnatPort,
            "cgnat-no-port" => Only::CgnatNoPort,
            "with-ports" => Only::WithPorts,
            _ => bail!("--only {v:?}: expected ipv6, ipv4, cgnat, cgnat-port, cgnat-no-port or with-ports"),
        })
    }

    /// Whether a query drawn from session `s` is of this kind.
    fn keeps(self, s: &Session, q: &Query) -> bool {
        match (self, q) {
            (Only::Ipv6, Query::V6 { .. }) => true,
            (Only::Ipv4, Query::V4 { .. }) => s.block.is_none(),
            (Only::Cgnat, Query::V4 { .. }) => s.block.is_some(),
            (Only::CgnatPort, Query::V4 { port, .. }) => s.block.is_some() && port.is_some(),
            (Only::CgnatNoPort, Query::V4 { port, .. }) => s.block.is_some() && port.is_none(),
            (Only::WithPorts, Query::V4 { port, .. }) => s.block.is_none() || port.is_some(),
            (Only::WithPorts, Query::V6 { .. }) => true,
            _ => false,
        }
    }
}

/// 2026-08-26T00:00:00Z: 90 days before the end of the data.
const T_BASE: u32 = 1_787_702_400;
const SPAN: u32 = 90 * 86_400;
const BLOCK: u32 = 2016;
const BLOCKS_PER_ADDR: u32 = 32;
const SESSIONS_PER_SLOT: u64 = 10;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[derive(Clone, Copy)]
struct Session {
    start: u32,
    end: u32,
    sub: u32,
    v4: u32,
    /// (first, last) port of a CGNAT block; `None`: the whole address.
    block: Option<(u16, u16)>,
    v6: u128,
}

#[derive(Clone, Copy)]
enum Query {
    V4 { addr: u32, port: Option<u16>, at: u32 },
    V6 { addr: u128, at: u32 },
}

/// Calls `f` for every session, slot by slot.
fn generate(sessions: u64, subscribers: u64, seed: u64, mut f: impl FnMut(&Session)) {
    let slots = sessions.div_ceil(SESSIONS_PER_SLOT);
    let mut made = 0u64;
    for slot in 0..slots {
        let mut rng = Rng(seed ^ slot.wrapping_mul(0xd1b5_4a32_d192_ed03));
        let cgnat = slot % 2 == 1;
        let (v4, block) = if cgnat {
            let i = (slot / 2) as u32;
            let addr = u32::from(Ipv4Addr::new(100, 96, 0, 0)) + i / BLOCKS_PER_ADDR; // stands for a public pool
            let first = 1024 + (i % BLOCKS_PER_ADDR) * BLOCK;
            (addr, Some((first as u16, (first + BLOCK - 1) as u16)))
        } else {
            (u32::from(Ipv4Addr::new(20, 0, 0, 0)) + (slot / 2) as u32, None)
        };
        // 2001:db8::/32 + slot number as the /56's bits 32–55 (and beyond, for > 16M slots).
        let v6 = (0x2001_0db8u128 << 96) | (u128::from(slot) << 72);
        let mut t = T_BASE + rng.below(86_400) as u32;
        for _ in 0..SESSIONS_PER_SLOT {
            if made == sessions {
                return;
            }
            let dur = match rng.below(100) {
                0..70 => 3600 + rng.below(3 * 86_400 - 3600),
                70..95 => 3 * 86_400 + rng.below(27 * 86_400),
                _ => 60 + rng.below(3540),
            } as u32;
            let s = Session { start: t, end: t + dur, sub: rng.below(subscribers) as u32, v4, block, v6 };
            f(&s);
            made += 1;
            t = t + dur + rng.below(600) as u32;
            if t > T_BASE + SPAN {
                t = T_BASE + rng.below(86_400) as u32; // wraps: keeps the count, makes some overlap
            }
        }
    }
}

fn sub_name(n: u32) -> String {
    format!("S{n:07}")
}

fn queries(sessions: u64, subscribers: u64, seed: u64, count: usize, only: Option<Only>) -> Vec<Query> {
    let mut rng = Rng(seed.wrapping_mul(7) ^ 0x5eed);
    let keep = (count as f64 * 0.9 / sessions as f64).min(1.0);
    let mut out = Vec::with_capacity(count);
    generate(sessions, subscribers, seed, |s| {
        if out.len() >= count * 9 / 10 || (rng.below(1_000_000) as f64) >= keep * 1_000_000.0 {
            return;
        }
        let at = s.start + rng.below(u64::from(s.end - s.start)) as u32;
        let q = if rng.below(2) == 0 {
            let port = match s.block {
                Some((f, l)) if rng.below(20) != 0 => Some(f + rng.below(u64::from(l - f) + 1) as u16),
                Some(_) => None,
                None => (rng.below(2) == 0).then(|| rng.below(65_536) as u16),
            };
            Query::V4 { addr: s.v4, port, at }
        } else {
            Query::V6 { addr: s.v6 | u128::from(rng.next() & 0xff_ffff_ffff_ffff), at }
        };
        if only.is_none_or(|o| o.keeps(s, &q)) {
            out.push(q);
        }
    });
    while only.is_none_or(|o| o == Only::WithPorts) && out.len() < count {
        let at = T_BASE + rng.below(u64::from(SPAN)) as u32;
        if rng.below(2) == 0 {
            out.push(Query::V4 { addr: rng.next() as u32, port: Some(rng.below(65_536) as u16), at });
        } else {
            out.push(Query::V6 { addr: (0x2001_0db8u128 << 96) | u128::from(rng.next()) << 40, at });
        }
    }
    // Shuffle so consecutive queries touch unrelated memory.
    for i in (1..out.len()).rev() {
        out.swap(i, rng.below(i as u64 + 1) as usize);
    }
    out
}

// ── the baseline ──────────────────────────────────────────────────────────────────────────

/// (start, end, subscriber) of each session on a key.
type Spans = Vec<(u32, u32, u32)>;

struct Baseline {
    map: HashMap<(IpAddr, u16), Spans>,
    names: Vec<Box<str>>,
}

impl Baseline {
    fn build(sessions: u64, subscribers: u64, seed: u64) -> Baseline {
        let names = (0..subscribers as u32).map(|n| sub_name(n).into_boxed_str()).collect();
        let mut map: HashMap<(IpAddr, u16), Spans> = HashMap::new();
        generate(sessions, subscribers, seed, |s| {
            let port = s.block.map_or(0, |(f, _)| f);
            map.entry((IpAddr::V4(Ipv4Addr::from(s.v4)), port)).or_default().push((s.start, s.end, s.sub));
            let v6 = IpAddr::V6(Ipv6Addr::from(s.v6));
            map.entry((v6, 0)).or_default().push((s.start, s.end, s.sub));
        });
        Baseline { map, names }
    }

    fn scan(&self, key: (IpAddr, u16), at: u32, first: &mut Option<u32>, more: &mut Vec<u32>) {
        if let Some(v) = self.map.get(&key) {
            for &(s, e, sub) in v {
                if s <= at && at < e {
                    match *first {
                        None => *first = Some(sub),
                        Some(f) if f == sub => {}
                        Some(_) => {
                            if !more.contains(&sub) {
                                more.push(sub)
                            }
                        }
                    }
                }
            }
        }
    }

    /// The key whose bucket a query reads first for its data: the CGNAT block holding the
    /// port, else the address (or the /56).
    fn data_key(q: &Query) -> (IpAddr, u16) {
        match *q {
            Query::V4 { addr, port: Some(p), .. } if u32::from(p) >= 1024 => {
                (IpAddr::V4(Ipv4Addr::from(addr)), (1024 + (u32::from(p) - 1024) / BLOCK * BLOCK) as u16)
            }
            Query::V4 { addr, .. } => (IpAddr::V4(Ipv4Addr::from(addr)), 0),
            Query::V6 { addr, .. } => (IpAddr::V6(Ipv6Addr::from(addr & (u128::MAX << 72))), 0),
        }
    }

    /// [`Baseline::lookup`] of a batch, in the order of the hash table's buckets (std's
    /// `HashMap` puts a key in bucket `hash & (buckets - 1)`), answers in the caller's order.
    fn lookup_sorted(&self, qs: &[Query], out: &mut Vec<Attribution>) {
        use std::hash::BuildHasher;
        // `capacity()` is 7/8 of the (power-of-two) bucket count.
        let buckets = (self.map.capacity() / 7 * 8).next_power_of_two().max(1) as u64;
        let mut order: Vec<u64> = qs
            .iter()
            .enumerate()
            .map(|(i, q)| {
                let bucket = self.map.hasher().hash_one(Self::data_key(q)) & (buckets - 1);
                ((bucket & 0xffff_ffff) << 32) | i as u64
            })
            .collect();
        index::radix_sort_high32(&mut order);
        let base = out.len();
        out.resize(base + qs.len(), Attribution::Unknown);
        for k in order {
            let i = (k as u32) as usize;
            out[base + i] = self.lookup(&qs[i]);
        }
    }

    fn lookup(&self, q: &Query) -> Attribution {
        let (mut first, mut more) = (None, Vec::new());
        match *q {
            Query::V4 { addr, port, at } => {
                let ip = IpAddr::V4(Ipv4Addr::from(addr));
                // The whole address…
                self.scan((ip, 0), at, &mut first, &mut more);
                // …and the CGNAT blocks: the one holding the port, or all of them.
                match port {
                    Some(p) if u32::from(p) >= 1024 => {
                        let f = 1024 + (u32::from(p) - 1024) / BLOCK * BLOCK;
                        self.scan((ip, f as u16), at, &mut first, &mut more);
                    }
                    Some(_) => {}
                    None => {
                        for b in 0..BLOCKS_PER_ADDR {
                            self.scan((ip, (1024 + b * BLOCK) as u16), at, &mut first, &mut more);
                        }
                    }
                }
            }
            Query::V6 { addr, at } => {
                let p = addr & (u128::MAX << 72);
                self.scan((IpAddr::V6(Ipv6Addr::from(p)), 0), at, &mut first, &mut more);
            }
        }
        match first {
            None => Attribution::Unknown,
            Some(f) if more.is_empty() => Attribution::Unique(mamori_attribution::SubscriberNo(f)),
            Some(f) => {
                more.push(f);
                more.sort_unstable();
                Attribution::Ambiguous(more.into_iter().map(mamori_attribution::SubscriberNo).collect())
            }
        }
    }
}

fn build_index(sessions: u64, subscribers: u64, seed: u64) -> Index {
    let mut index = Index::new();
    let mut row = SessionRow {
        key: SessionKey([0; 16]),
        subscriber: String::new(),
        nas: String::new(),
        start: 0,
        last: 0,
        interim: 0,
        stop: None,
        framed_ipv4: None,
        port_blocks: Vec::new(),
        ipv6: Vec::new(),
    };
    generate(sessions, subscribers, seed, |s| {
        row.subscriber = sub_name(s.sub);
        row.start = s.start;
        row.last = s.start;
        row.stop = Some(s.end);
        row.port_blocks.clear();
        row.framed_ipv4 = None;
        match s.block {
            Some((first, last)) => row.port_blocks.push(PortBlock { public: Ipv4Addr::from(s.v4), first, last }),
            None => row.framed_ipv4 = Some(Ipv4Addr::from(s.v4)),
        }
        row.ipv6.clear();
        row.ipv6.push(Ipv6Prefix::new(Ipv6Addr::from(s.v6), 56));
        index.insert(&row);
    });
    index.compact();
    index
}

fn index_lookup(ix: &Index, q: &Query) -> Attribution {
    match *q {
        Query::V4 { addr, port, at } => ix.lookup_v4_secs(Ipv4Addr::from(addr), port, at),
        Query::V6 { addr, at } => ix.lookup_v6_secs(Ipv6Addr::from(addr), at),
    }
}

/// A comparable answer: subscriber names, sorted.
fn names(a: &Attribution, name: impl Fn(u32) -> String) -> Vec<String> {
    let mut v: Vec<String> = match a {
        Attribution::Unique(s) => vec![name(s.0)],
        Attribution::Ambiguous(v) => v.iter().map(|s| name(s.0)).collect(),
        Attribution::Unknown => vec![],
    };
    v.sort_unstable();
    v
}

fn timed(lookups: u64, qs: &[Query], mut f: impl FnMut(&Query) -> Attribution) -> (Duration, [u64; 3]) {
    let mut kinds = [0u64; 3];
    let started = Instant::now();
    for i in 0..lookups as usize {
        let a = f(&qs[i % qs.len()]);
        kinds[match &a {
            Attribution::Unique(_) => 0,
            Attribution::Ambiguous(_) => 1,
            Attribution::Unknown => 2,
        }] += 1;
        black_box(a);
    }
    (started.elapsed(), kinds)
}

/// `lookups` lookups of `qs` (cycled), `batch` queries per call of `f`, counting answer kinds.
fn timed_batches<Q>(
    lookups: u64,
    qs: &[Q],
    batch: usize,
    out: &mut Vec<Attribution>,
    mut f: impl FnMut(&[Q], &mut Vec<Attribution>),
) -> (Duration, [u64; 3]) {
    let mut kinds = [0u64; 3];
    let started = Instant::now();
    let mut done = 0u64;
    while done < lookups {
        let from = (done as usize) % qs.len();
        let n = (lookups - done).min(batch as u64).min((qs.len() - from) as u64) as usize;
        out.clear();
        f(&qs[from..from + n], out);
        for a in out.iter() {
            kinds[match a {
                Attribution::Unique(_) => 0,
                Attribution::Ambiguous(_) => 1,
                Attribution::Unknown => 2,
            }] += 1;
        }
        black_box(&*out);
        done += n as u64;
    }
    (started.elapsed(), kinds)
}

/// The queries as `lookup_batch` takes them.
fn batch_queries(qs: &[Query]) -> Vec<index::Query> {
    qs.iter()
        .map(|q| match *q {
            Query::V4 { addr, port, at } => index::Query { addr: IpAddr::V4(Ipv4Addr::from(addr)), port, at },
            Query::V6 { addr, at } => index::Query { addr: IpAddr::V6(Ipv6Addr::from(addr)), port: None, at },
        })
        .collect()
}

/// `--batch-only`: every distinct query's batched answer checked against the one-by-one answer,
/// then `passes` timings of `lookups` batched lookups, 4,096 per call.
fn batch_only(index: &Index, qs: &[Query], lookups: u64, passes: u32) -> Result<()> {
    let batch_qs = batch_queries(qs);
    let mut out = Vec::with_capacity(4096);
    for (c, chunk) in batch_qs.chunks(4096).enumerate() {
        out.clear();
        index.lookup_batch(chunk, &mut out);
        for (i, a) in out.iter().enumerate() {
            if *a != index_lookup(index, &qs[c * 4096 + i]) {
                bail!("lookup_batch answers query {} differently from one by one", c * 4096 + i);
            }
        }
    }
    println!("Command: `{}`\n", command_line());
    println!("| pass | `lookup_batch` lookups/s | ns/lookup |");
    println!("|--:|--:|--:|");
    for pass in 1..=passes.max(1) {
        let (d, _) = timed_batches(lookups, &batch_qs, 4096, &mut out, |qs, out| index.lookup_batch(qs, out));
        println!(
            "| {pass} | {} | {:.1} |",
            fmt_rate(lookups as f64 / d.as_secs_f64()),
            d.as_nanos() as f64 / lookups as f64
        );
    }
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::from_env(KNOWN, USAGE)?;
    let sessions: u64 = args.get("sessions", 10_000_000)?;
    let subscribers: u64 = args.get("subscribers", 1_000_000)?;
    let lookups: u64 = args.get("lookups", 10_000_000)?;
    let nq: usize = args.get("queries", 2_000_000)?;
    let seed: u64 = args.get("seed", 5)?;
    let sorted_batch: usize = args.get("sorted-batch", 1_000_000)?;
    let only = args.value("only").map(Only::parse).transpose()?;
    if sorted_batch == 0
        || sessions == 0
        || subscribers == 0
        || lookups == 0
        || nq == 0
        || subscribers > u64::from(u32::MAX)
    {
        bail!("--sessions, --subscribers, --lookups and --queries must be positive");
    }
    let machine = machine_description(&std::env::temp_dir());
    eprintln!("attribution bench: {machine}");

    let qs = queries(sessions, subscribers, seed, nq, only);
    if qs.is_empty() {
        bail!("no query of the kind asked for: raise --sessions or --queries");
    }
    eprintln!("{} queries drawn", thousands(qs.len() as u64));

    // mamori's index.
    let before = ALLOC.allocated();
    let t = Instant::now();
    let index = build_index(sessions, subscribers, seed);
    let build_index_time = t.elapsed();
    // Heap bytes, plus the entries the index keeps in huge-page mappings (not seen by the
    // allocator).
    let index_bytes = ALLOC.allocated().saturating_sub(before) + index.mapped_bytes();
    eprintln!(
        "index: {} entries, {} subscribers, built in {:.1} s, {} bytes",
        thousands(index.entries() as u64),
        thousands(index.subscribers() as u64),
        build_index_time.as_secs_f64(),
        thousands(index_bytes as u64)
    );
    if args.flag("batch-only") {
        return batch_only(&index, &qs, lookups, args.get("passes", 3)?);
    }
    let index_answers: Vec<Vec<String>> = qs
        .iter()
        .map(|q| {
            names(&index_lookup(&index, q), |n| {
                index.subscriber(mamori_attribution::SubscriberNo(n)).unwrap_or("?").to_owned()
            })
        })
        .collect();
    let (index_time, index_kinds) = timed(lookups, &qs, |q| index_lookup(&index, q));
    eprintln!("index: {} lookups in {:.2} s", thousands(lookups), index_time.as_secs_f64());
    // The same queries through `lookup_batch`, 4096 at a time.
    let batch_qs = batch_queries(&qs);
    let mut out = Vec::with_capacity(4096);
    let (batch_time, batch_kinds) =
        timed_batches(lookups, &batch_qs, 4096, &mut out, |qs, out| index.lookup_batch(qs, out));
    eprintln!("index (batch): {} lookups in {:.2} s", thousands(lookups), batch_time.as_secs_f64());
    if batch_kinds != index_kinds {
        bail!("batch answer kinds differ: {batch_kinds:?} vs {index_kinds:?}");
    }
    // The same query stream through `lookup_sorted`, `--sorted-batch` at a time (the way a
    // report's rows are attributed): sorting, lookups in index order and the answers put back
    // in the caller's order are all timed. First, every distinct query's answer must be the
    // one-by-one answer.
    let mut sorted_out = Vec::with_capacity(sorted_batch.min(lookups as usize));
    for (c, chunk) in batch_qs.chunks(sorted_batch).enumerate() {
        sorted_out.clear();
        index.lookup_sorted(chunk, &mut sorted_out);
        let from = c * sorted_batch;
        for (i, a) in sorted_out.iter().enumerate() {
            if *a != index_lookup(&index, &qs[from + i]) {
                bail!("lookup_sorted answers query {} differently", from + i);
            }
        }
    }
    let (sorted_time, sorted_kinds) =
        timed_batches(lookups, &batch_qs, sorted_batch, &mut sorted_out, |qs, out| index.lookup_sorted(qs, out));
    eprintln!("index (sorted batch): {} lookups in {:.2} s", thousands(lookups), sorted_time.as_secs_f64());
    if sorted_kinds != index_kinds {
        bail!("sorted batch answer kinds differ: {sorted_kinds:?} vs {index_kinds:?}");
    }
    drop(sorted_out);
    drop(batch_qs);
    drop(index);

    // The baseline.
    let before = ALLOC.allocated();
    let t = Instant::now();
    let base = Baseline::build(sessions, subscribers, seed);
    let build_base_time = t.elapsed();
    let base_bytes = ALLOC.allocated().saturating_sub(before);
    eprintln!(
        "baseline: {} keys, built in {:.1} s, {} bytes",
        thousands(base.map.len() as u64),
        build_base_time.as_secs_f64(),
        thousands(base_bytes as u64)
    );
    let mut disagree = 0u64;
    for (q, want) in qs.iter().zip(&index_answers) {
        if names(&base.lookup(q), |n| base.names[n as usize].to_string()) != *want {
            disagree += 1;
        }
    }
    drop(index_answers);
    if disagree > 0 {
        bail!("{disagree} queries answered differently by the index and the baseline");
    }
    let (base_time, base_kinds) = timed(lookups, &qs, |q| base.lookup(q));
    eprintln!("baseline: {} lookups in {:.2} s", thousands(lookups), base_time.as_secs_f64());
    if base_kinds != index_kinds {
        bail!("answer kinds differ: index {index_kinds:?}, baseline {base_kinds:?}");
    }
    // The baseline given the same lever: each batch sorted by its queries' bucket in the hash
    // table (the same radix sort), looked up in that order, answers put back in order.
    let mut base_out = Vec::with_capacity(sorted_batch.min(lookups as usize));
    let (base_sorted_time, base_sorted_kinds) =
        timed_batches(lookups, &qs, sorted_batch, &mut base_out, |qs, out| base.lookup_sorted(qs, out));
    eprintln!("baseline (sorted batch): {} lookups in {:.2} s", thousands(lookups), base_sorted_time.as_secs_f64());
    if base_sorted_kinds != index_kinds {
        bail!("answer kinds differ: index {index_kinds:?}, baseline sorted {base_sorted_kinds:?}");
    }
    drop(base_out);

    let rate = |d: Duration| lookups as f64 / d.as_secs_f64();
    println!("Command: `{}`\n", command_line());
    println!("Machine: {machine}\n");
    println!(
        "{} sessions ({} index entries: IPv4 or CGNAT block + IPv6 /56 each), {} subscribers, {} lookups over {} distinct queries ({} unique, {} ambiguous, {} unknown answers); both structures gave the same answer to every query.\n",
        thousands(sessions),
        thousands(2 * sessions),
        thousands(subscribers),
        thousands(lookups),
        thousands(qs.len() as u64),
        thousands(index_kinds[0]),
        thousands(index_kinds[1]),
        thousands(index_kinds[2]),
    );
    println!("| structure | lookups/s (1 core) | ns/lookup | heap bytes | bytes/session | build |");
    println!("|---|---:|---:|---:|---:|---:|");
    let sorted_name = format!("mamori index, `lookup_sorted` ({} per call, sorted)", thousands(sorted_batch as u64));
    let base_sorted_name =
        format!("`HashMap<(IpAddr, u16), Vec<…>>` ({} per call, sorted by bucket)", thousands(sorted_batch as u64));
    for (name, d, bytes, build) in [
        (sorted_name.as_str(), sorted_time, index_bytes, build_index_time),
        ("mamori index, `lookup_batch` (4,096 per call, random order)", batch_time, index_bytes, build_index_time),
        ("mamori index, `lookup_v4`/`lookup_v6` (one by one, random order)", index_time, index_bytes, build_index_time),
        (base_sorted_name.as_str(), base_sorted_time, base_bytes, build_base_time),
        ("`HashMap<(IpAddr, u16), Vec<…>>` (one by one, random order)", base_time, base_bytes, build_base_time),
    ] {
        println!(
            "| {name} | {} | {:.0} | {} | {:.1} | {:.1} s |",
            fmt_rate(rate(d)),
            d.as_nanos() as f64 / lookups as f64,
            thousands(bytes as u64),
            bytes as f64 / sessions as f64,
            build.as_secs_f64()
        );
    }
    println!(
        "\nmamori / baseline: lookups/s ×{:.2} (sorted batches, each sorted), ×{:.2} (batch vs one by one), ×{:.2} (one by one); bytes/session ×{:.2}",
        rate(sorted_time) / rate(base_sorted_time),
        rate(batch_time) / rate(base_time),
        rate(index_time) / rate(base_time),
        index_bytes as f64 / base_bytes as f64
    );
    Ok(())
}
