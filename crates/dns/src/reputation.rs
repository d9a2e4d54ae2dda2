//! Reputation lists (C&C domains, malware sites) from files in common formats: plain lists (one
//! name a line), hosts files (`0.0.0.0 name …`) and RPZ zones (`name CNAME .`, `*.name CNAME .`).
//! Each list keeps its source and date; lines that don't parse are reported with their number and
//! skipped.

use std::path::Path;

use crate::names::{Match, SuffixMap, normalize};

/// A list file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ListFormat {
    /// One name a line; each name lists its subtree.
    Plain,
    /// `ADDRESS name [name …]`; exact names.
    Hosts,
    /// An RPZ zone file: `name CNAME .` (exact) and `*.name CNAME .` (subtree).
    Rpz,
}

impl ListFormat {
    /// Guesses from the file name (`.rpz`/`.zone` → RPZ, `hosts` → hosts, else plain).
    pub fn guess(path: &Path) -> ListFormat {
        let n = path.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
        if n.ends_with(".rpz") || n.ends_with(".zone") || n.contains("rpz") {
            ListFormat::Rpz
        } else if n.contains("hosts") {
            ListFormat::Hosts
        } else {
            ListFormat::Plain
        }
    }
}

/// A line that was skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}:{line}: {reason}")]
pub struct LineError {
    /// The list's source.
    pub source_name: String,
    /// 1-based line number.
    pub line: usize,
    /// Why.
    pub reason: &'static str,
}

/// A loaded list.
#[derive(Debug, Clone)]
pub struct ReputationList {
    /// Where it came from (a feed name or file).
    pub source: String,
    /// Its date as the provider gave it, if known.
    pub date: Option<String>,
    /// The names.
    pub names: SuffixMap<()>,
    /// Lines skipped.
    pub skipped: Vec<LineError>,
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 253
        && n.split('.').all(|l| {
            !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Parses a list's text.
pub fn parse(text: &str, format: ListFormat, source: &str, date: Option<String>) -> ReputationList {
    let mut names = SuffixMap::new();
    let mut skipped = Vec::new();
    let mut origin = String::new();
    let mut skip = |line: usize, reason: &'static str| {
        if skipped.len() < 1000 {
            skipped.push(LineError { source_name: source.to_owned(), line, reason });
        }
    };
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = match format {
            ListFormat::Rpz => raw.split(';').next().unwrap_or(""),
            _ => raw.split('#').next().unwrap_or(""),
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match format {
            ListFormat::Plain => {
                let n = normalize(line);
                if valid_name(&n) { names.insert(&n, Match::Subtree, ()) } else { skip(line_no, "not a domain name") }
            }
            ListFormat::Hosts => {
                let mut t = line.split_whitespace();
                let addr = t.next().unwrap_or("");
                if addr.parse::<std::net::IpAddr>().is_err() {
                    skip(line_no, "hosts line without an address");
                    continue;
                }
                for n in t {
                    let n = normalize(n);
                    if n == "localhost" || n.ends_with(".localdomain") || n == "localhost.localdomain" {
                        continue;
                    }
                    if valid_name(&n) { names.insert(&n, Match::Exact, ()) } else { skip(line_no, "not a domain name") }
                }
            }
            ListFormat::Rpz => {
                let toks: Vec<&str> = line.split_whitespace().collect();
                if toks[0].eq_ignore_ascii_case("$ORIGIN") {
                    origin = toks.get(1).map(|o| normalize(o)).unwrap_or_default();
                    continue;
                }
                if toks[0].starts_with('$') || raw.starts_with(char::is_whitespace) {
                    continue; // $TTL, continuation lines of the SOA
                }
                let Some(ci) = toks.iter().position(|t| t.eq_ignore_ascii_case("CNAME")) else {
                    continue; // SOA, NS and other policy records
                };
                if toks.get(ci + 1) != Some(&".") {
                    continue; // only NXDOMAIN policies list a name as bad
                }
                let owner = toks[0];
                let mut n = if let Some(abs) = owner.strip_suffix('.') {
                    let abs = abs.to_ascii_lowercase();
                    match abs.strip_suffix(&format!(".{origin}")) {
                        Some(rel) if !origin.is_empty() => rel.to_owned(),
                        _ => abs,
                    }
                } else {
                    owner.to_ascii_lowercase()
                };
                let m = if let Some(rest) = n.strip_prefix("*.") {
                    n = rest.to_owned();
                    Match::Subtree
                } else {
                    Match::Exact
                };
                if !valid_name(&n) {
                    skip(line_no, "not a domain name");
                    continue;
                }
                // `*.x` and `x` together list the subtree; keep the wider one.
                if names.lookup(&n).is_some_and(|(k, _)| k == n) && m == Match::Exact {
                    continue;
                }
                names.insert(&n, m, ());
            }
        }
    }
    ReputationList { source: source.to_owned(), date, names, skipped }
}

/// Reads a list file; the date defaults to the file's modification time.
pub fn load(path: &Path, format: Option<ListFormat>, source: Option<&str>) -> std::io::Result<ReputationList> {
    let text = std::fs::read_to_string(path)?;
    let date = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| jiff::Timestamp::try_from(t).ok())
        .map(|t| t.to_string());
    let src = source.map(str::to_owned).unwrap_or_else(|| path.display().to_string());
    Ok(parse(&text, format.unwrap_or_else(|| ListFormat::guess(path)), &src, date))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_hosts_and_rpz_lists() {
        let p = parse("# feed\nBad.Example.\nnot a name\n\nc2.test # trailing\n", ListFormat::Plain, "feed", None);
        assert!(p.names.matches("x.bad.example"));
        assert!(p.names.matches("c2.test"));
        assert_eq!(p.skipped.len(), 1);
        assert_eq!(p.skipped[0].line, 3);

        let h = parse("127.0.0.1 localhost\n0.0.0.0 evil.test www.evil.test\nnonsense\n", ListFormat::Hosts, "h", None);
        assert!(h.names.matches("evil.test"));
        assert!(!h.names.matches("a.evil.test"));
        assert!(!h.names.matches("localhost"));
        assert_eq!(h.skipped.len(), 1);

        let zone = "$TTL 60\n$ORIGIN rpz.example.\n@ SOA ns. admin. 1 3600 600 86400 60\n  NS localhost.\n\
                    cnc.test CNAME .\n*.cnc.test CNAME .\nexact.test.rpz.example. CNAME .\npassthru.test CNAME rpz-passthru.\n";
        let r = parse(zone, ListFormat::Rpz, "r", Some("2026-11-01".into()));
        assert!(r.names.matches("a.cnc.test"));
        assert!(r.names.matches("cnc.test"));
        assert!(r.names.matches("exact.test"));
        assert!(!r.names.matches("passthru.test"));
        assert_eq!(r.names.len(), 2);
    }
}
