//! Memory probe (issue 5, "What limits it" in BENCHMARKS.md): what random reads of main memory
//! cost on this machine, which is the floor under the session index's lookups. It times, over
//! one anonymous mapping (4 KiB pages, or transparent huge pages with `--pages huge`):
//!
//! - a dependent chain of random reads (each address comes from the previous read): latency;
//! - independent random reads, 32 at a time, each group first software-prefetched then read
//!   (what `Index::lookup_batch` does): one cache line per read, four lines of one 4 KiB page
//!   per read (a bucket of records), and two lines in two pages per read (a directory, then a run).
//!
//! ```text
//! cargo build --release -p mamori-bench --bin memprobe
//! taskset -c 0 target/release/memprobe [--mib 512] [--reads 4000000] [--pages 4k|huge]
//! ```

use std::hint::black_box;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use mamori_bench::flow::Rng;
use mamori_bench::{Args, command_line, machine_description};
use memmap2::{Advice, MmapMut};

const USAGE: &str = "memprobe: the cost of random reads of main memory (latency and throughput)

usage: memprobe [--mib N] [--reads N] [--pages 4k|huge]

  --mib N      size of the mapping read, MiB (default 512: about the 10M-session index)
  --reads N    reads (or groups of reads) timed per pattern (default 4000000)
  --pages P    4k (default) or huge (madvise for transparent huge pages)";

const KNOWN: &[&str] = &["mib", "reads", "pages"];
const WORDS_PER_LINE: usize = 8;
const WORDS_PER_PAGE: usize = 512;
const GROUP: usize = 32;

/// A random index below `n`.
fn below(rng: &mut Rng, n: usize) -> usize {
    (rng.next_u64() % n as u64) as usize
}

/// Nanoseconds per item of a timed closure over `n` items.
fn ns_per(n: usize, f: impl FnOnce() -> u64) -> f64 {
    let t = Instant::now();
    black_box(f());
    t.elapsed().as_nanos() as f64 / n as f64
}

/// Reads `groups` (each a list of word indexes) 32 at a time: first a software prefetch of every
/// word of the 32, then the reads.
fn prefetched_reads(words: &[u64], groups: &[Vec<usize>]) -> u64 {
    let mut sum = 0u64;
    for chunk in groups.chunks(GROUP) {
        for g in chunk {
            for &i in g {
                prefetch_index::prefetch_index(words, i);
            }
        }
        for g in chunk {
            for &i in g {
                sum = sum.wrapping_add(words[i]);
            }
        }
    }
    sum
}

fn main() -> Result<()> {
    let args = Args::from_env(KNOWN, USAGE)?;
    let mib: usize = args.get("mib", 512)?;
    let reads: usize = args.get("reads", 4_000_000)?;
    let pages: String = args.get("pages", "4k".to_owned())?;
    let huge = match pages.as_str() {
        "4k" => false,
        "huge" => true,
        other => bail!("--pages {other:?}: expected 4k or huge"),
    };
    if mib < 8 || reads == 0 {
        bail!("--mib must be at least 8 and --reads positive");
    }
    let mut map = MmapMut::map_anon(mib << 20).context("mapping the probe's memory")?;
    if huge {
        map.advise(Advice::HugePage).context("madvise(MADV_HUGEPAGE)")?;
    }
    let words: &mut [u64] =
        bytemuck::try_cast_slice_mut(&mut map[..]).map_err(|e| anyhow::anyhow!("mapping not aligned: {e}"))?;
    let lines = words.len() / WORDS_PER_LINE;
    let pages_n = words.len() / WORDS_PER_PAGE;
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);

    // One random cycle through every line (Sattolo's shuffle), stored in the lines themselves.
    let mut next: Vec<u32> = (0..lines as u32).collect();
    for i in (1..lines).rev() {
        let j = below(&mut rng, i);
        next.swap(i, j);
    }
    for (line, n) in next.iter().enumerate() {
        words[line * WORDS_PER_LINE] = u64::from(*n) * WORDS_PER_LINE as u64;
    }
    drop(next);
    let words: &[u64] = words;

    let chase = reads.min(2_000_000);
    let latency = ns_per(chase, || {
        let mut at = 0usize;
        for _ in 0..chase {
            at = words[at] as usize;
        }
        at as u64
    });
    let line = |rng: &mut Rng| below(rng, lines) * WORDS_PER_LINE;
    let one: Vec<Vec<usize>> = (0..reads).map(|_| vec![line(&mut rng)]).collect();
    let one_ns = ns_per(reads, || prefetched_reads(words, &one));
    drop(one);
    let same_page: Vec<Vec<usize>> = (0..reads)
        .map(|_| {
            let page = below(&mut rng, pages_n) * WORDS_PER_PAGE;
            let first = below(&mut rng, WORDS_PER_PAGE / WORDS_PER_LINE - 3) * WORDS_PER_LINE;
            (0..4).map(|l| page + first + l * WORDS_PER_LINE).collect()
        })
        .collect();
    let same_page_ns = ns_per(reads, || prefetched_reads(words, &same_page));
    drop(same_page);
    let two_pages: Vec<Vec<usize>> = (0..reads).map(|_| vec![line(&mut rng), line(&mut rng)]).collect();
    let two_pages_ns = ns_per(reads, || prefetched_reads(words, &two_pages));

    println!("Command: `{}`\n", command_line());
    println!("Machine: {}\n", machine_description(&std::env::temp_dir()));
    println!("{mib} MiB mapping, {} pages\n", if huge { "transparent huge" } else { "4 KiB" });
    println!("| pattern | ns |");
    println!("|---|--:|");
    println!("| dependent random reads (latency), per read | {latency:.1} |");
    println!("| independent random reads, 32 prefetched at a time: 1 line, per read | {one_ns:.1} |");
    println!("| the same, 4 adjacent lines of one page, per group | {same_page_ns:.1} |");
    println!("| the same, 2 lines in 2 random pages, per group | {two_pages_ns:.1} |");
    Ok(())
}
