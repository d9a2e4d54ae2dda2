//! FreeRADIUS `detail` files (the `detail` module's accounting log), for back-fill.
//!
//! A record is a line with the time the server wrote it (`Tue Nov 24 13:18:34 2026`), then one
//! `Attribute-Name = value` line per attribute, indented by a tab, then a blank line:
//!
//! ```text
//! Tue Nov 24 13:18:34 2026
//!     Acct-Status-Type = Start
//!     User-Name = "alice@isp.example"
//!     Acct-Session-Id = "00000001"
//!     Framed-IP-Address = 100.64.0.7
//!     Alc-Nat-Port-Range = "203.0.113.9 1024-2047 router base"
//!     Event-Timestamp = "Nov 24 2026 13:18:34 UTC"
//!     Timestamp = 1795526314
//! ```
//!
//! Strings are quoted with backslash escapes (`\"`, `\\`, `\n`, `\t`, `\r`, octal `\ooo`);
//! dates are quoted `Mon DD YYYY HH:MM:SS ZONE`; numbers, addresses and enumerated names are
//! bare. The time of an event is its Event-Timestamp, else the `Timestamp` the server added minus
//! Acct-Delay-Time (the header line is in the server's local time zone, which the file does not
//! say, so it is never used). A record that can't be used is reported with its line number and
//! skipped; the rest of the file is read on.

use std::io::BufRead;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::radius::{Ipv6Prefix, PortBlock, StatusType};
use crate::session::AcctEvent;

/// A record that can't be used, or a line that can't be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {detail}")]
pub struct DetailError {
    /// 1-based line of the record's start (or of the offending line).
    pub line: usize,
    /// What is wrong.
    pub detail: String,
}

/// Reads records one by one: `Ok` events and `Err` for records skipped.
#[derive(Debug)]
pub struct DetailReader<R> {
    input: R,
    line: usize,
    buf: Vec<u8>,
    /// A header line read ahead (the start of the next record) and its line number.
    pending_header: Option<usize>,
    done: bool,
}

/// Reads a detail file.
pub fn read_detail<R: BufRead>(input: R) -> DetailReader<R> {
    DetailReader { input, line: 0, buf: Vec::new(), pending_header: None, done: false }
}

impl<R: BufRead> DetailReader<R> {
    /// The next line without its end, `None` at the end of the input.
    fn next_line(&mut self) -> Result<Option<String>, DetailError> {
        self.buf.clear();
        match self.input.read_until(b'\n', &mut self.buf) {
            Ok(0) => Ok(None),
            Ok(_) => {
                self.line += 1;
                while matches!(self.buf.last(), Some(b'\n' | b'\r')) {
                    self.buf.pop();
                }
                Ok(Some(String::from_utf8_lossy(&self.buf).into_owned()))
            }
            Err(e) => Err(DetailError { line: self.line + 1, detail: format!("read error: {e}") }),
        }
    }
}

impl<R: BufRead> Iterator for DetailReader<R> {
    type Item = Result<AcctEvent, DetailError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        // Find the record's header.
        let start = match self.pending_header.take() {
            Some(l) => l,
            None => loop {
                match self.next_line() {
                    Err(e) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                    Ok(None) => {
                        self.done = true;
                        return None;
                    }
                    Ok(Some(l)) if l.trim().is_empty() => continue,
                    Ok(Some(l)) if l.starts_with([' ', '\t']) => {
                        // An attribute outside a record: report it and the lines after it until
                        // the next header.
                        let line = self.line;
                        loop {
                            match self.next_line() {
                                Ok(Some(l)) if l.starts_with([' ', '\t']) => continue,
                                Ok(Some(l)) if l.trim().is_empty() => break,
                                Ok(Some(_)) => {
                                    self.pending_header = Some(self.line);
                                    break;
                                }
                                Ok(None) => {
                                    self.done = true;
                                    break;
                                }
                                Err(_) => {
                                    self.done = true;
                                    break;
                                }
                            }
                        }
                        return Some(Err(DetailError {
                            line,
                            detail: "attribute line outside a record (no timestamp line before it)".into(),
                        }));
                    }
                    Ok(Some(_)) => break self.line,
                }
            },
        };
        let mut attrs: Vec<(String, String, usize)> = Vec::new();
        let mut bad: Option<DetailError> = None;
        loop {
            match self.next_line() {
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
                Ok(None) => {
                    self.done = true;
                    break;
                }
                Ok(Some(l)) if l.trim().is_empty() => break,
                Ok(Some(l)) if !l.starts_with([' ', '\t']) => {
                    // A header without the blank line before it: the next record starts here.
                    self.pending_header = Some(self.line);
                    break;
                }
                Ok(Some(l)) => match l.trim().split_once(" = ") {
                    Some((name, value)) => attrs.push((name.trim().to_owned(), value.trim().to_owned(), self.line)),
                    None => {
                        bad.get_or_insert(DetailError {
                            line: self.line,
                            detail: format!("expected `Attribute = value`, found `{}`", l.trim()),
                        });
                    }
                },
            }
        }
        if let Some(e) = bad {
            return Some(Err(e));
        }
        Some(event(&attrs).map_err(|detail| DetailError { line: start, detail }))
    }
}

/// Unquotes a FreeRADIUS string value (bare values are returned as they are).
pub fn unquote(v: &str) -> Result<String, String> {
    let Some(inner) = v.strip_prefix('"') else { return Ok(v.to_owned()) };
    let Some(inner) = inner.strip_suffix('"') else { return Err(format!("unterminated string {v}")) };
    let mut out = Vec::with_capacity(inner.len());
    let b = inner.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some(b'n') => out.push(b'\n'),
            Some(b'r') => out.push(b'\r'),
            Some(b't') => out.push(b'\t'),
            Some(b'"') => out.push(b'"'),
            Some(b'\\') => out.push(b'\\'),
            Some(d) if d.is_ascii_digit() => {
                let oct = b.get(i + 1..i + 4).ok_or_else(|| format!("bad escape in {v}"))?;
                let s = std::str::from_utf8(oct).map_err(|_| format!("bad escape in {v}"))?;
                out.push(u8::from_str_radix(s, 8).map_err(|_| format!("bad octal escape in {v}"))?);
                i += 4;
                continue;
            }
            _ => return Err(format!("bad escape in {v}")),
        }
        i += 2;
    }
    String::from_utf8(out).map_err(|_| format!("{v} is not UTF-8 once unescaped"))
}

/// A FreeRADIUS date (`Nov 24 2026 13:18:34 UTC`) or Unix seconds, as Unix seconds.
pub fn parse_date(v: &str) -> Result<u32, String> {
    let v = unquote(v)?;
    if let Ok(n) = v.parse::<u32>() {
        return Ok(n);
    }
    let w: Vec<&str> = v.split_ascii_whitespace().collect();
    let [mon, day, year, time, zone] = w[..] else {
        return Err(format!("date `{v}` is not `Mon DD YYYY HH:MM:SS ZONE`"));
    };
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = MONTHS.iter().position(|m| *m == mon).ok_or_else(|| format!("date `{v}`: unknown month"))? as i8 + 1;
    let offset_secs: i32 = match zone {
        "UTC" | "GMT" | "Z" => 0,
        "JST" => 9 * 3600,
        z if (z.starts_with('+') || z.starts_with('-')) && z.len() == 5 => {
            let h: i32 = z[1..3].parse().map_err(|_| format!("date `{v}`: bad zone"))?;
            let m: i32 = z[3..5].parse().map_err(|_| format!("date `{v}`: bad zone"))?;
            let s = h * 3600 + m * 60;
            if z.starts_with('-') { -s } else { s }
        }
        _ => return Err(format!("date `{v}`: time zone `{zone}` is not UTC, GMT, JST or ±hhmm")),
    };
    let num = |s: &str| s.parse::<i16>().map_err(|_| format!("date `{v}`: `{s}` is not a number"));
    let hms: Vec<&str> = time.split(':').collect();
    let [h, mi, s] = hms[..] else { return Err(format!("date `{v}`: time is not HH:MM:SS")) };
    let dt =
        jiff::civil::DateTime::new(num(year)?, month, num(day)? as i8, num(h)? as i8, num(mi)? as i8, num(s)? as i8, 0)
            .map_err(|e| format!("date `{v}`: {e}"))?;
    let offset = jiff::tz::Offset::from_seconds(offset_secs).map_err(|e| format!("date `{v}`: {e}"))?;
    let ts = offset.to_timestamp(dt).map_err(|e| format!("date `{v}`: {e}"))?;
    u32::try_from(ts.as_second()).map_err(|_| format!("date `{v}` is outside 1970–2106"))
}

/// Decodes the `0x…` form FreeRADIUS prints for attributes its dictionary lacks.
fn hex_value(v: &str) -> Option<Vec<u8>> {
    let h = v.strip_prefix("0x")?;
    if h.len() % 2 != 0 {
        return None;
    }
    (0..h.len()).step_by(2).map(|i| u8::from_str_radix(h.get(i..i + 2)?, 16).ok()).collect()
}

fn event(attrs: &[(String, String, usize)]) -> Result<AcctEvent, String> {
    let mut status = None;
    let mut ev = AcctEvent {
        status: StatusType::Other(0),
        user_name: None,
        session_id: None,
        nas: String::new(),
        time: 0,
        interim: None,
        session_time: None,
        framed_ipv4: None,
        port_blocks: Vec::new(),
        ipv6: Vec::new(),
    };
    let (mut event_ts, mut server_ts, mut delay) = (None, None, None);
    let (mut nas_ip, mut nas_ipv6, mut nas_id, mut client_ip) = (None, None, None, None);
    let (mut hw_addr, mut hw_first, mut hw_last) = (None, None, None);
    for (name, value, line) in attrs {
        let bad = |what: &str| format!("line {line}: {name} = {value}: {what}");
        let int = || unquote(value).ok().and_then(|v| v.parse::<u32>().ok()).ok_or_else(|| bad("not an integer"));
        let v4 =
            || unquote(value).ok().and_then(|v| v.parse::<Ipv4Addr>().ok()).ok_or_else(|| bad("not an IPv4 address"));
        let prefix =
            || unquote(value).ok().and_then(|v| Ipv6Prefix::parse(&v)).ok_or_else(|| bad("not an IPv6 prefix"));
        match name.as_str() {
            "Acct-Status-Type" => {
                status = Some(StatusType::from_name(&unquote(value)?).ok_or_else(|| bad("unknown status type"))?)
            }
            "User-Name" => ev.user_name = Some(unquote(value).map_err(|e| bad(&e))?),
            "Acct-Session-Id" => ev.session_id = Some(unquote(value).map_err(|e| bad(&e))?.into_bytes()),
            "NAS-IP-Address" => nas_ip = Some(v4()?),
            "NAS-IPv6-Address" => {
                nas_ipv6 = Some(
                    unquote(value)
                        .ok()
                        .and_then(|v| v.parse::<Ipv6Addr>().ok())
                        .ok_or_else(|| bad("not an IPv6 address"))?,
                )
            }
            "NAS-Identifier" => nas_id = Some(unquote(value).map_err(|e| bad(&e))?),
            "Client-IP-Address" | "Packet-Src-IP-Address" => {
                client_ip = unquote(value).ok().and_then(|v| v.parse::<IpAddr>().ok())
            }
            "Framed-IP-Address" => ev.framed_ipv4 = Some(v4()?),
            "Framed-IPv6-Prefix" | "Delegated-IPv6-Prefix" => ev.ipv6.push(prefix()?),
            "Framed-IPv6-Address" => ev.ipv6.push(prefix()?),
            "Acct-Interim-Interval" => ev.interim = Some(int()?).filter(|i| *i > 0),
            "Acct-Session-Time" => ev.session_time = Some(int()?),
            "Acct-Delay-Time" => delay = Some(int()?),
            "Event-Timestamp" => event_ts = Some(parse_date(value).map_err(|e| bad(&e))?),
            "Timestamp" => server_ts = Some(int()?),
            "Alc-Nat-Port-Range" => {
                ev.port_blocks.extend(PortBlock::parse_nokia(&unquote(value)?).map_err(|e| bad(&e))?)
            }
            "Attr-26.6527.121" => {
                let bytes = hex_value(value).ok_or_else(|| bad("not a hex value"))?;
                let s = String::from_utf8(bytes).map_err(|_| bad("not UTF-8"))?;
                ev.port_blocks.extend(PortBlock::parse_nokia(&s).map_err(|e| bad(&e))?)
            }
            "Huawei-NAT-Public-Address" => hw_addr = Some(v4()?),
            "Huawei-NAT-Start-Port" => hw_first = Some(int()?),
            "Huawei-NAT-End-Port" => hw_last = Some(int()?),
            _ => {}
        }
    }
    ev.status = status.ok_or("no Acct-Status-Type")?;
    ev.time = match (event_ts, server_ts) {
        (Some(t), _) => t,
        (None, Some(t)) => t.saturating_sub(delay.unwrap_or(0)),
        (None, None) => return Err("no time: neither Event-Timestamp nor Timestamp".into()),
    };
    // The same order as live accounting (see `AcctEvent::nas`).
    ev.nas = if let Some(id) = nas_id {
        id
    } else if let Some(ip) = nas_ipv6 {
        ip.to_string()
    } else if let Some(ip) = nas_ip {
        ip.to_string()
    } else if let Some(ip) = client_ip {
        ip.to_string()
    } else {
        return Err("no NAS: none of NAS-Identifier, NAS-IPv6-Address, NAS-IP-Address, Client-IP-Address".into());
    };
    match (hw_addr, hw_first, hw_last) {
        (None, None, None) => {}
        (Some(public), Some(f), Some(l)) => match (u16::try_from(f), u16::try_from(l)) {
            (Ok(first), Ok(last)) if first <= last => ev.port_blocks.push(PortBlock { public, first, last }),
            _ => return Err(format!("Huawei NAT ports {f}-{l} are not a port range")),
        },
        _ => return Err("Huawei NAT port block incomplete".into()),
    }
    ev.ipv6.sort_unstable();
    ev.ipv6.dedup();
    ev.port_blocks.sort_unstable();
    ev.port_blocks.dedup();
    Ok(ev)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Tue Nov 24 13:18:34 2026
\tAcct-Status-Type = Start
\tUser-Name = \"alice@isp.example\"
\tAcct-Session-Id = \"00000001\"
\tNAS-IP-Address = 192.0.2.1
\tFramed-IP-Address = 100.64.0.7
\tDelegated-IPv6-Prefix = 2001:db8:1200::/56
\tAlc-Nat-Port-Range = \"203.0.113.9 1024-2047 router base\"
\tEvent-Timestamp = \"Nov 24 2026 13:18:34 UTC\"
\tTimestamp = 1795526315

Tue Nov 24 13:18:40 2026
\tAcct-Status-Type = Stop
\tUser-Name = \"bob\"
\tthis line is broken

Tue Nov 24 13:18:41 2026
\tAcct-Status-Type = Interim-Update
\tUser-Name = \"carol\"
\tAcct-Session-Id = \"7\"
\tNAS-Identifier = \"bng-1\"
\tAcct-Delay-Time = 5
\tTimestamp = 1795526321
";

    #[test]
    fn reads_records_and_reports_bad_ones_with_their_line() {
        let out: Vec<_> = read_detail(SAMPLE.as_bytes()).collect();
        assert_eq!(out.len(), 3);
        let a = out[0].as_ref().unwrap();
        assert_eq!(a.status, StatusType::Start);
        assert_eq!(a.user_name.as_deref(), Some("alice@isp.example"));
        assert_eq!(a.time, 1_795_526_314);
        assert_eq!(a.nas, "192.0.2.1");
        assert_eq!(a.port_blocks[0].first, 1024);
        assert_eq!(a.ipv6[0].len, 56);
        let e = out[1].as_ref().unwrap_err();
        assert_eq!(e.line, 15);
        assert!(e.detail.contains("this line is broken"), "{e}");
        let c = out[2].as_ref().unwrap();
        assert_eq!((c.time, c.nas.as_str()), (1_795_526_316, "bng-1"));
    }

    /// A detail file from a Japanese system, in Shift_JIS: decoded whole first
    /// ([`crate::text`]), its user names read as the Japanese text they are.
    #[test]
    fn shift_jis_detail_files_are_decoded_first() {
        use crate::text::{Encoding, TextError, decode};
        let utf8 = SAMPLE.replace("alice@isp.example", "東京都-ｱﾘｽ@isp.example");
        let (sjis, _, unmappable) = encoding_rs::SHIFT_JIS.encode(&utf8);
        assert!(!unmappable && std::str::from_utf8(&sjis).is_err());
        let text = decode(&sjis, Encoding::Auto).unwrap();
        assert_eq!(text.encoding, Encoding::ShiftJis);
        let out: Vec<_> = read_detail(text.text.as_bytes()).collect();
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].as_ref().unwrap().user_name.as_deref(), Some("東京都-ｱﾘｽ@isp.example"));
        // Asked for UTF-8, the same file is refused at its first Shift_JIS byte.
        let e = decode(&sjis, Encoding::Utf8).unwrap_err();
        assert!(matches!(e, TextError::NotUtf8 { line: 3, looks_shift_jis: true, .. }), "{e:?}");
    }

    /// A file FreeRADIUS wrote (see `testdata/detail/README.md`), imported: the same sessions
    /// and answers as live accounting.
    #[test]
    fn real_freeradius_detail_file() {
        let text = include_str!("../testdata/detail/freeradius-3.2.1.detail");
        let events: Vec<AcctEvent> = read_detail(text.as_bytes()).map(|r| r.unwrap()).collect();
        assert_eq!(events.len(), 5);
        const T: u32 = 1_795_526_314;
        assert_eq!(events[0].time, T);
        assert_eq!(events[0].port_blocks.len(), 2);
        assert_eq!(events[0].ipv6.len(), 2);
        assert_eq!(events[1].time, T + 300);
        assert_eq!(events[2].nas, "me60-tokyo-1");
        assert_eq!(events[2].port_blocks[0].public, Ipv4Addr::new(198, 51, 100, 4));
        assert_eq!(events[3].status, StatusType::Stop);
        assert_eq!(events[4].nas, "2001:db8::1");
        assert_eq!(events[4].ipv6, vec![Ipv6Prefix::parse("2001:db8:99::5/128").unwrap()]);

        let dir = tempfile::tempdir().unwrap();
        let mut a = crate::Attributor::open(&crate::store_path(dir.path()), crate::Settings::default()).unwrap();
        let report = a.import_detail(text.as_bytes()).unwrap();
        assert_eq!((report.records, report.imported, report.written, report.skipped.len()), (5, 5, 3, 0));
        let ix = crate::read(a.index());
        let who = |ip: &str, port, t| {
            ix.resolve(&ix.lookup(ip.parse().unwrap(), port, jiff::Timestamp::from_second(t).unwrap()))
        };
        use crate::Attribution::*;
        use mamori_core::subject::SubscriberId;
        assert_eq!(
            who("203.0.113.9", Some(4500), i64::from(T) + 699),
            Unique(SubscriberId("alice@isp.example".into()))
        );
        assert_eq!(who("203.0.113.9", Some(4500), i64::from(T) + 700), Unknown);
        assert_eq!(
            who("2001:db8:1200:1::1", None, i64::from(T) + 10),
            Unique(SubscriberId("alice@isp.example".into()))
        );
        assert_eq!(who("2001:db8:99::5", None, i64::from(T) + 900), Unique(SubscriberId("carol".into())));
    }

    #[test]
    fn dates_and_strings() {
        assert_eq!(parse_date("\"Jan  1 1970 09:00:00 JST\"").unwrap(), 0);
        assert_eq!(parse_date("\"Jan  1 1970 00:00:10 +0000\"").unwrap(), 10);
        assert!(parse_date("\"Jan  1 1970 00:00:10 CET\"").is_err());
        assert_eq!(unquote(r#""a\"b\\c\101""#).unwrap(), "a\"b\\cA");
        assert!(unquote("\"open").is_err());
    }

    #[test]
    fn missing_time_and_orphan_lines() {
        let text = "\tUser-Name = \"x\"\n\nMon Nov 23 00:00:00 2026\n\tAcct-Status-Type = Start\n\tNAS-IP-Address = 192.0.2.1\n";
        let out: Vec<_> = read_detail(text.as_bytes()).collect();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].as_ref().unwrap_err().line, 1);
        let e = out[1].as_ref().unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.detail.contains("no time"), "{e}");
    }
}
