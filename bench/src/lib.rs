//! Shared helpers for mamori's side-by-side benchmarks (results in `BENCHMARKS.md`).
//!
//! Every benchmark binary measures mamori *and* its baseline in the same run, on the same disk,
//! and prints a markdown table of rates and ratios together with the command and machine that
//! produced it. Nothing here is a timed unit test: the numbers only mean something next to the
//! baseline measured a moment earlier on the same machine.

pub mod flow;

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// `--name value` / `--name=value` / `--flag` arguments, parsed without a framework.
#[derive(Debug, Clone, Default)]
pub struct Args {
    values: BTreeMap<String, Option<String>>,
}

impl Args {
    /// Parses the process arguments, refusing any option not in `known` (names without `--`).
    /// `--help` prints `usage` and exits.
    pub fn from_env(known: &[&str], usage: &str) -> Result<Self> {
        Self::parse(std::env::args().skip(1), known, usage)
    }

    /// Parses the given arguments (see [`Args::from_env`]).
    pub fn parse(args: impl IntoIterator<Item = String>, known: &[&str], usage: &str) -> Result<Self> {
        let mut values = BTreeMap::new();
        let mut it = args.into_iter().peekable();
        while let Some(arg) = it.next() {
            if arg == "--help" || arg == "-h" {
                println!("{usage}");
                std::process::exit(0);
            }
            let Some(name) = arg.strip_prefix("--") else {
                bail!("unexpected argument {arg:?}\n\n{usage}");
            };
            let (name, value) = match name.split_once('=') {
                Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                None => {
                    let v = it.next_if(|next| !next.starts_with("--"));
                    (name.to_owned(), v)
                }
            };
            if !known.contains(&name.as_str()) {
                bail!("unknown option --{name}\n\n{usage}");
            }
            values.insert(name, value);
        }
        Ok(Args { values })
    }

    /// The value of `--name`, or `default` when absent. Accepts `_` as a digit separator.
    pub fn get<T: FromStr>(&self, name: &str, default: T) -> Result<T>
    where
        T::Err: std::fmt::Display,
    {
        match self.values.get(name) {
            None => Ok(default),
            Some(None) => bail!("--{name} needs a value"),
            Some(Some(v)) => v.replace('_', "").parse().map_err(|e| anyhow::anyhow!("--{name} {v:?}: {e}")),
        }
    }

    /// The raw value of `--name`, if given.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).and_then(|v| v.as_deref())
    }

    /// Whether `--name` was given.
    pub fn flag(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }
}

/// The command line that started this process, for pasting next to its results.
pub fn command_line() -> String {
    let mut args = std::env::args();
    let exe = args.next().unwrap_or_default();
    let name = Path::new(&exe).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or(exe);
    std::iter::once(name).chain(args).collect::<Vec<_>>().join(" ")
}

/// Block-device counters of the device holding a path, read from `/proc/diskstats` (Linux).
///
/// They count the whole device, so other processes' I/O is included: treat them as an estimate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskCounters {
    /// Write requests completed.
    pub writes: u64,
    /// Flush (cache-flush) requests completed; about one per `fsync`/`fdatasync` on a
    /// write-back device.
    pub flushes: u64,
}

impl DiskCounters {
    /// The counters accumulated since `earlier`.
    pub fn since(self, earlier: DiskCounters) -> DiskCounters {
        DiskCounters {
            writes: self.writes.saturating_sub(earlier.writes),
            flushes: self.flushes.saturating_sub(earlier.flushes),
        }
    }
}

/// The device holding `path`, as `/proc/diskstats` names it by major and minor number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Device {
    /// Major number.
    pub major: u64,
    /// Minor number.
    pub minor: u64,
}

impl Device {
    /// The device of the file system holding `path` (Unix only; `None` elsewhere).
    pub fn of(path: &Path) -> Option<Device> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let dev = std::fs::metadata(path).ok()?.dev();
            let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
            let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
            Some(Device { major, minor })
        }
        #[cfg(not(unix))]
        {
            let _ = path;
            None
        }
    }

    /// Current counters, if `/proc/diskstats` lists the device with flush statistics.
    pub fn counters(&self) -> Option<DiskCounters> {
        let text = std::fs::read_to_string("/proc/diskstats").ok()?;
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 20 || f[0].parse::<u64>().ok()? != self.major || f[1].parse::<u64>().ok()? != self.minor {
                continue;
            }
            // Fields after the name: 5 = writes completed, 16 = flushes completed (Linux ≥ 5.5).
            return Some(DiskCounters { writes: f[3 + 4].parse().ok()?, flushes: f[3 + 15].parse().ok()? });
        }
        None
    }

    /// The device's name in `/proc/diskstats` (e.g. `vda`), if listed.
    pub fn name(&self) -> Option<String> {
        let text = std::fs::read_to_string("/proc/diskstats").ok()?;
        text.lines().find_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (f.len() > 3 && f[0] == self.major.to_string() && f[1] == self.minor.to_string()).then(|| f[2].to_owned())
        })
    }
}

/// CPU time of this process so far (user + system, all threads, including exited ones), from
/// `/proc/self/stat` (Linux; 10 ms resolution).
pub fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces): state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux architecture mamori targets.
    Some(Duration::from_millis(ticks * 10))
}

/// Scheduler time of this process's live threads whose name starts with a prefix.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ThreadTime {
    /// Time spent running on a CPU.
    pub on_cpu: Duration,
    /// Time spent runnable but waiting for a CPU.
    pub runq_wait: Duration,
}

impl ThreadTime {
    /// The time accumulated since `earlier`.
    pub fn since(self, earlier: ThreadTime) -> ThreadTime {
        ThreadTime {
            on_cpu: self.on_cpu.saturating_sub(earlier.on_cpu),
            runq_wait: self.runq_wait.saturating_sub(earlier.runq_wait),
        }
    }
}

/// Sums `/proc/self/task/*/schedstat` over the threads whose name (at most 15 bytes on Linux)
/// starts with `prefix`; `None` if there is none or the kernel doesn't keep the statistics.
pub fn thread_time(prefix: &str) -> Option<ThreadTime> {
    let mut total = ThreadTime::default();
    let mut found = false;
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.trim_end().starts_with(prefix) {
            continue;
        }
        let Ok(s) = std::fs::read_to_string(task.path().join("schedstat")) else { continue };
        let mut f = s.split_whitespace().map(|v| v.parse::<u64>().unwrap_or(0));
        total.on_cpu += Duration::from_nanos(f.next().unwrap_or(0));
        total.runq_wait += Duration::from_nanos(f.next().unwrap_or(0));
        found = true;
    }
    found.then_some(total)
}

/// A short description of the machine: CPU, core count, memory, and the file system of `dir`.
pub fn machine_description(dir: &Path) -> String {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|k| k.parse::<f64>().ok()))
        })
        .map(|kib| kib / (1024.0 * 1024.0))
        .unwrap_or(0.0);
    let (fs, source) = filesystem_of(dir).unwrap_or_else(|| ("unknown".into(), "unknown".into()));
    let cache = Device::of(dir)
        .and_then(|d| d.name())
        .and_then(|n| {
            // A partition's queue belongs to its disk; try both.
            let base: String = n.trim_end_matches(|c: char| c.is_ascii_digit()).to_owned();
            [n, base].iter().find_map(|d| std::fs::read_to_string(format!("/sys/block/{d}/queue/write_cache")).ok())
        })
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    format!("{cpus} × {cpu}, {mem_gib:.0} GiB RAM; {dir} on {fs} ({source}, write cache: {cache})", dir = dir.display())
}

/// The file-system type and source of the mount holding `dir` (longest matching mount point in
/// `/proc/mounts`).
pub fn filesystem_of(dir: &Path) -> Option<(String, String)> {
    let dir = std::fs::canonicalize(dir).ok()?;
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 3 && dir.starts_with(f[1])).then(|| (f[1].len(), f[2].to_owned(), f[0].to_owned()))
        })
        .max_by_key(|(len, _, _)| *len)
        .map(|(_, fs, src)| (fs, src))
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Items per second.
pub fn rate(count: u64, elapsed: Duration) -> f64 {
    let s = elapsed.as_secs_f64();
    if s > 0.0 { count as f64 / s } else { 0.0 }
}

/// A rate, rounded, with thousands separators.
pub fn fmt_rate(r: f64) -> String {
    thousands(r.round().max(0.0) as u64)
}

/// A ratio such as `12.3×`.
pub fn fmt_ratio(r: f64) -> String {
    if !r.is_finite() || r <= 0.0 {
        "–".into()
    } else if r >= 100.0 {
        format!("{r:.0}×")
    } else if r >= 10.0 {
        format!("{r:.1}×")
    } else {
        format!("{r:.2}×")
    }
}

/// Prints a progress line to stderr.
pub fn progress(what: &str, done: u64, total: u64, elapsed: Duration) -> Result<()> {
    use std::io::Write;
    let mut e = std::io::stderr().lock();
    writeln!(
        e,
        "  {what}: {} / {} ({:.1} s, {}/s)",
        thousands(done),
        thousands(total),
        elapsed.as_secs_f64(),
        fmt_rate(rate(done, elapsed))
    )
    .context("writing progress")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_parse() {
        let a = Args::parse(
            ["--entries", "1_000", "--dir=/x", "--keep"].map(String::from),
            &["entries", "dir", "keep"],
            "usage",
        )
        .unwrap();
        assert_eq!(a.get("entries", 0u64).unwrap(), 1000);
        assert_eq!(a.value("dir"), Some("/x"));
        assert!(a.flag("keep"));
        assert!(Args::parse(["--nope".to_string()], &["entries"], "usage").is_err());
    }

    #[test]
    fn thousands_groups() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
