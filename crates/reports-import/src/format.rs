//! Report formats: which columns hold the time, the address, the port and the detail (infection,
//! tag, device type, list name), by the names their publishers use.

use std::net::IpAddr;
use std::str::FromStr;

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::Offset;
use mamori_core::catalog::MeasureId;
use mamori_core::config::{NaiveTimes, ReportMappingConfig};

/// The kinds of report `mamori reports import --kind` accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Shadowserver sinkhole / botnet drone events (`timestamp,ip,port,asn,geo,…,infection,…,tag`).
    ShadowserverSinkhole,
    /// Shadowserver open DNS resolvers (`scan_dns`, "Accessible DNS": `timestamp,ip,protocol,port,…,tag`).
    ShadowserverDns,
    /// Shadowserver vulnerable devices (`scan_*` reports: `timestamp,ip,protocol,port,…,tag`).
    ShadowserverVuln,
    /// A weak-credential IoT list in the style of the NOTICE survey (address, port, time, device type).
    NoticeIot,
    /// A takedown list of infected hosts (address, port, time, malware family).
    Takedown,
    /// A spam blacklist listing (address, list name, time).
    Blacklist,
    /// A mapping named in `[[report_import.mappings]]`.
    Custom(String),
}

impl Kind {
    /// The name on the command line.
    pub fn name(&self) -> String {
        match self {
            Kind::ShadowserverSinkhole => "shadowserver-sinkhole".into(),
            Kind::ShadowserverDns => "shadowserver-dns".into(),
            Kind::ShadowserverVuln => "shadowserver-vuln".into(),
            Kind::NoticeIot => "notice-iot".into(),
            Kind::Takedown => "takedown".into(),
            Kind::Blacklist => "blacklist".into(),
            Kind::Custom(n) => format!("custom:{n}"),
        }
    }
}

impl FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "shadowserver-sinkhole" => Kind::ShadowserverSinkhole,
            "shadowserver-dns" => Kind::ShadowserverDns,
            "shadowserver-vuln" => Kind::ShadowserverVuln,
            "notice-iot" => Kind::NoticeIot,
            "takedown" => Kind::Takedown,
            "blacklist" => Kind::Blacklist,
            _ => match s.strip_prefix("custom:") {
                Some(n) if !n.is_empty() => Kind::Custom(n.to_owned()),
                _ => {
                    return Err(format!(
                        "unknown report kind `{s}`: expected shadowserver-sinkhole, shadowserver-dns, \
                         shadowserver-vuln, notice-iot, takedown, blacklist or custom:NAME"
                    ));
                }
            },
        })
    }
}

/// One logical column and the header names that may carry it (the first present wins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// What it is (`timestamp`, `address`, `port`, `detail`).
    pub role: &'static str,
    /// Accepted header names, compared without case.
    pub names: Vec<String>,
    /// The report is unusable without it.
    pub required: bool,
}

/// How to read one kind of report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    /// The kind.
    pub kind: Kind,
    /// The measure its rows are findings of.
    pub measure: MeasureId,
    /// The instant of the observation.
    pub timestamp: Column,
    /// The address observed.
    pub address: Column,
    /// Its source port (picks the subscriber behind carrier-grade NAT).
    pub port: Column,
    /// What was seen: infection, tag, device type, list name.
    pub detail: Column,
    /// The offset of times written without one (Shadowserver: UTC; NOTICE: Japan time).
    pub naive_offset: Offset,
}

fn col(role: &'static str, names: &[&str], required: bool) -> Column {
    Column { role, names: names.iter().map(|s| (*s).to_owned()).collect(), required }
}

/// Japan Standard Time (no daylight saving).
pub fn jst() -> Offset {
    Offset::constant(9)
}

impl Format {
    /// A built-in format (`None` for [`Kind::Custom`]).
    pub fn builtin(kind: &Kind) -> Option<Format> {
        let ts = |names: &[&str]| col("timestamp", names, true);
        let f = match kind {
            Kind::ShadowserverSinkhole => Format {
                kind: kind.clone(),
                measure: MeasureId::BotsAlertFromThirdParty,
                timestamp: ts(&["timestamp"]),
                address: col("address", &["ip", "src_ip"], true),
                port: col("port", &["port", "src_port"], false),
                detail: col("detail", &["infection", "family", "tag"], false),
                naive_offset: Offset::UTC,
            },
            Kind::ShadowserverDns => Format {
                kind: kind.clone(),
                measure: MeasureId::RouterAlertVulnerable,
                timestamp: ts(&["timestamp"]),
                address: col("address", &["ip"], true),
                port: col("port", &["port"], false),
                detail: col("detail", &["tag", "dns_version"], false),
                naive_offset: Offset::UTC,
            },
            Kind::ShadowserverVuln => Format {
                kind: kind.clone(),
                measure: MeasureId::RouterAlertVulnerable,
                timestamp: ts(&["timestamp"]),
                address: col("address", &["ip", "src_ip"], true),
                port: col("port", &["port", "src_port"], false),
                detail: col("detail", &["tag", "vulnerability", "infection"], false),
                naive_offset: Offset::UTC,
            },
            Kind::NoticeIot => Format {
                kind: kind.clone(),
                measure: MeasureId::IotAlertWeakCredentials,
                timestamp: ts(&["detected_at", "timestamp", "time", "検知日時", "調査日時"]),
                address: col("address", &["ip_address", "ip", "address", "IPアドレス"], true),
                port: col("port", &["port", "ポート番号", "ポート"], false),
                detail: col("detail", &["device_type", "device", "機器種別"], false),
                naive_offset: jst(),
            },
            Kind::Takedown => Format {
                kind: kind.clone(),
                measure: MeasureId::BotsAlertFromThirdParty,
                timestamp: ts(&["timestamp", "seen_at", "last_seen", "time"]),
                address: col("address", &["ip", "address", "src_ip"], true),
                port: col("port", &["port", "src_port"], false),
                detail: col("detail", &["malware", "family", "botnet", "infection"], false),
                naive_offset: Offset::UTC,
            },
            Kind::Blacklist => Format {
                kind: kind.clone(),
                measure: MeasureId::MailBlacklistAlert,
                timestamp: ts(&["listed_at", "timestamp", "time"]),
                address: col("address", &["ip", "address", "listed_ip"], true),
                port: col("port", &["port"], false),
                detail: col("detail", &["list", "list_name", "blacklist"], true),
                naive_offset: Offset::UTC,
            },
            Kind::Custom(_) => return None,
        };
        Some(f)
    }

    /// The format a `[[report_import.mappings]]` entry describes.
    pub fn custom(m: &ReportMappingConfig) -> Result<Format, String> {
        let measure: MeasureId = m.measure.parse().map_err(|e| format!("mapping `{}`: {e}", m.name))?;
        if !matches!(
            measure,
            MeasureId::BotsAlertFromThirdParty
                | MeasureId::IotAlertWeakCredentials
                | MeasureId::RouterAlertVulnerable
                | MeasureId::MailBlacklistAlert
        ) {
            return Err(format!("mapping `{}`: {measure} does not take third-party reports", m.name));
        }
        let one = |role, name: &Option<String>| match name {
            Some(n) => col(role, &[n.as_str()], true),
            None => col(role, &[], false),
        };
        Ok(Format {
            kind: Kind::Custom(m.name.clone()),
            measure,
            timestamp: col("timestamp", &[m.timestamp.as_str()], true),
            address: col("address", &[m.address.as_str()], true),
            port: one("port", &m.port),
            detail: one("detail", &m.detail),
            naive_offset: match m.naive_times {
                NaiveTimes::Utc => Offset::UTC,
                NaiveTimes::Japan => jst(),
            },
        })
    }

    /// Finds each column in the header; the missing required ones are returned by name.
    pub fn resolve(&self, header: &csv::StringRecord) -> Result<Positions, Vec<String>> {
        let names: Vec<String> =
            header.iter().map(|h| h.trim().trim_start_matches('\u{feff}').to_lowercase()).collect();
        let mut missing = Vec::new();
        let mut find = |c: &Column| {
            let pos = c.names.iter().find_map(|n| {
                let n = n.to_lowercase();
                names.iter().position(|h| *h == n)
            });
            if pos.is_none() && c.required {
                missing.push(if c.names.len() == 1 {
                    format!("`{}`", c.names[0])
                } else {
                    format!(
                        "{} (one of {})",
                        c.role,
                        c.names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
                    )
                });
            }
            pos
        };
        let p = Positions {
            timestamp: find(&self.timestamp),
            address: find(&self.address),
            port: find(&self.port),
            detail: find(&self.detail),
        };
        if missing.is_empty() { Ok(p) } else { Err(missing) }
    }

    /// Reads one row.
    pub fn row(&self, p: &Positions, rec: &csv::StringRecord) -> Result<Row, String> {
        let get = |i: Option<usize>, role: &str| -> Result<Option<&str>, String> {
            match i {
                None => Ok(None),
                Some(i) => match rec.get(i) {
                    Some(v) => Ok(Some(v.trim())),
                    None => Err(format!("{} fields, the {role} column is field {}", rec.len(), i + 1)),
                },
            }
        };
        let ts = get(p.timestamp, "timestamp")?.unwrap_or_default();
        let at = parse_time(ts, self.naive_offset).ok_or_else(|| format!("bad timestamp `{ts}`"))?;
        let a = get(p.address, "address")?.unwrap_or_default();
        let addr: IpAddr = a.parse().map_err(|_| format!("bad address `{a}`"))?;
        let port = match get(p.port, "port")? {
            None | Some("") => None,
            Some(s) => match s.parse::<u16>() {
                Ok(0) => None,
                Ok(n) => Some(n),
                Err(_) => return Err(format!("bad port `{s}`")),
            },
        };
        let detail = get(p.detail, "detail")?.filter(|s| !s.is_empty()).map(str::to_owned);
        if self.detail.required && detail.is_none() {
            return Err(format!("empty {}", self.detail.names.first().map_or("detail", String::as_str)));
        }
        Ok(Row { at, addr, port, detail })
    }
}

/// Where each column is in a report's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Positions {
    /// Timestamp.
    pub timestamp: Option<usize>,
    /// Address.
    pub address: Option<usize>,
    /// Port.
    pub port: Option<usize>,
    /// Detail.
    pub detail: Option<usize>,
}

/// One observation of a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// When.
    pub at: Timestamp,
    /// The address.
    pub addr: IpAddr,
    /// The port, when the report has one.
    pub port: Option<u16>,
    /// What was seen.
    pub detail: Option<String>,
}

/// Parses a report time: RFC 3339 with an offset; `YYYY-MM-DD HH:MM:SS` (or with `T`, or `/`
/// between the date parts, optionally followed by `Z` or ` UTC`) in `naive` when it carries no
/// offset; or Unix seconds.
pub fn parse_time(s: &str, naive: Offset) -> Option<Timestamp> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<i64>().ok().and_then(|n| Timestamp::from_second(n).ok());
    }
    if let Ok(t) = s.parse::<Timestamp>() {
        return Some(t);
    }
    let (body, offset) = match s.strip_suffix(" UTC").or_else(|| s.strip_suffix('Z')) {
        Some(b) => (b.trim_end(), Offset::UTC),
        None => (s, naive),
    };
    let body =
        if body.len() >= 10 && body.as_bytes()[4] == b'/' { body.replacen('/', "-", 2) } else { body.to_owned() };
    let dt: DateTime = body.parse().ok()?;
    offset.to_timestamp(dt).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn read(kind: Kind, csv_text: &str) -> Vec<Result<Row, String>> {
        let f = Format::builtin(&kind).unwrap();
        let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(csv_text.as_bytes());
        let pos = f.resolve(rdr.headers().unwrap()).unwrap();
        rdr.records().map(|r| f.row(&pos, &r.unwrap())).collect()
    }

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn shadowserver_botnet_drone_sinkhole() {
        // The published header of the sinkhole/botnet drone report.
        let h = "\"timestamp\",\"ip\",\"port\",\"asn\",\"geo\",\"region\",\"city\",\"hostname\",\"type\",\"infection\",\"url\",\"agent\",\"cc\",\"cc_port\",\"cc_asn\",\"cc_geo\",\"cc_dns\",\"count\",\"proxy\",\"application\",\"p0f_genre\",\"p0f_detail\",\"machine_name\",\"id\",\"naics\",\"sic\",\"cc_naics\",\"cc_sic\",\"sector\",\"cc_sector\",\"ssl_cipher\",\"family\",\"tag\",\"public_source\"";
        let row = "\"2026-11-20 03:14:15\",\"198.51.100.7\",\"49152\",\"64500\",\"JP\",\"TOKYO\",\"CHIYODA\",\"\",\"tcp\",\"mirai\",\"\",\"\",\"192.0.2.9\",\"23\",\"\",\"\",\"\",\"1\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"mirai\",\"mirai\",\"\"";
        let rows = read(Kind::ShadowserverSinkhole, &format!("{h}\n{row}\n"));
        assert_eq!(
            rows[0].clone().unwrap(),
            Row {
                at: t("2026-11-20T03:14:15Z"),
                addr: "198.51.100.7".parse().unwrap(),
                port: Some(49152),
                detail: Some("mirai".into())
            }
        );
    }

    #[test]
    fn shadowserver_event4_sinkhole_uses_src_columns() {
        let h = "timestamp,protocol,src_ip,src_port,src_asn,src_geo,src_region,src_city,src_hostname,src_naics,src_sector,device_vendor,device_type,device_model,dst_ip,dst_port,dst_asn,dst_geo,dst_region,dst_city,dst_hostname,dst_naics,dst_sector,public_source,infection,family,tag,application,version,event_id";
        let row = "2026-11-20 03:14:15,tcp,2001:db8::42,55000,64500,JP,TOKYO,TOKYO,,,,,,,192.0.2.1,80,,,,,,,,,andromeda,andromeda,,http,,1";
        let r = read(Kind::ShadowserverSinkhole, &format!("{h}\n{row}\n"))[0].clone().unwrap();
        assert_eq!(r.addr, "2001:db8::42".parse::<IpAddr>().unwrap());
        assert_eq!(r.port, Some(55000));
        assert_eq!(r.detail.as_deref(), Some("andromeda"));
    }

    #[test]
    fn shadowserver_open_resolver() {
        let h = "\"timestamp\",\"ip\",\"protocol\",\"port\",\"hostname\",\"tag\",\"asn\",\"geo\",\"region\",\"city\",\"naics\",\"sic\",\"min_amplification\",\"dns_version\",\"p0f_genre\",\"p0f_detail\",\"sector\"";
        let row = "\"2026-11-20 01:02:03\",\"203.0.113.53\",\"udp\",\"53\",\"\",\"openresolver\",\"64500\",\"JP\",\"OSAKA\",\"OSAKA\",\"0\",\"0\",\"2.5\",\"\",\"\",\"\",\"\"";
        let r = read(Kind::ShadowserverDns, &format!("{h}\n{row}\n"))[0].clone().unwrap();
        assert_eq!(r.at, t("2026-11-20T01:02:03Z"));
        assert_eq!(r.port, Some(53));
        assert_eq!(r.detail.as_deref(), Some("openresolver"));
        assert_eq!(Format::builtin(&Kind::ShadowserverDns).unwrap().measure, MeasureId::RouterAlertVulnerable);
    }

    #[test]
    fn shadowserver_vulnerable_device_scan() {
        // e.g. scan_ssdp / scan_telnet: the common scan_* columns, `tag` says what is open.
        let h = "\"timestamp\",\"ip\",\"protocol\",\"port\",\"hostname\",\"tag\",\"asn\",\"geo\",\"region\",\"city\",\"naics\",\"sic\",\"header\",\"systime\",\"cache_control\",\"location\",\"server\",\"search_target\",\"unique_service_name\",\"host\",\"nts\",\"nt\",\"content_type\",\"sector\"";
        let row = "\"2026-11-20 04:00:00\",\"198.51.100.9\",\"udp\",\"1900\",\"\",\"ssdp\",\"64500\",\"JP\",\"\",\"\",\"0\",\"0\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\"";
        let r = read(Kind::ShadowserverVuln, &format!("{h}\n{row}\n"))[0].clone().unwrap();
        assert_eq!((r.port, r.detail.as_deref()), (Some(1900), Some("ssdp")));
    }

    #[test]
    fn notice_iot_list_is_in_japan_time_with_japanese_headers_too() {
        let r = read(
            Kind::NoticeIot,
            "ip_address,port,detected_at,device_type\n198.51.100.5,23,2026-11-20 10:00:00,webcam\n",
        )[0]
        .clone()
        .unwrap();
        assert_eq!(r.at, t("2026-11-20T01:00:00Z"));
        assert_eq!(r.detail.as_deref(), Some("webcam"));
        let r = read(
            Kind::NoticeIot,
            "IPアドレス,ポート番号,検知日時,機器種別\n198.51.100.5,2323,2026/11/20 10:00:00,ルータ\n",
        )[0]
        .clone()
        .unwrap();
        assert_eq!((r.at, r.port, r.detail.as_deref()), (t("2026-11-20T01:00:00Z"), Some(2323), Some("ルータ")));
    }

    #[test]
    fn takedown_and_blacklist() {
        let r = read(Kind::Takedown, "ip,port,timestamp,malware\n192.0.2.77,0,2026-11-20T05:00:00+09:00,emotet\n")[0]
            .clone()
            .unwrap();
        assert_eq!((r.at, r.port, r.detail.as_deref()), (t("2026-11-19T20:00:00Z"), None, Some("emotet")));
        let rows =
            read(Kind::Blacklist, "ip,list,listed_at\n192.0.2.8,zen.spamhaus.org,1795526314\n192.0.2.9,,1795526314\n");
        let r = rows[0].clone().unwrap();
        assert_eq!((r.at, r.detail.as_deref()), (t("2026-11-24T13:18:34Z"), Some("zen.spamhaus.org")));
        assert_eq!(rows[1].clone().unwrap_err(), "empty list");
    }

    #[test]
    fn missing_columns_are_named() {
        let f = Format::builtin(&Kind::Blacklist).unwrap();
        let h = csv::StringRecord::from(vec!["address", "when"]);
        let missing = f.resolve(&h).unwrap_err();
        assert_eq!(missing.len(), 2);
        assert!(missing[0].contains("`listed_at`") && missing[1].contains("`list`"), "{missing:?}");
    }

    #[test]
    fn bad_rows_say_why() {
        let rows = read(
            Kind::Takedown,
            "ip,port,timestamp\n300.1.1.1,1,2026-11-20 00:00:00\n192.0.2.1,99999,2026-11-20 00:00:00\n192.0.2.1,1,soon\n192.0.2.1\n",
        );
        let errs: Vec<String> = rows.into_iter().map(|r| r.unwrap_err()).collect();
        assert!(errs[0].contains("bad address"), "{errs:?}");
        assert!(errs[1].contains("bad port"), "{errs:?}");
        assert!(errs[2].contains("bad timestamp"), "{errs:?}");
        assert!(errs[3].contains("bad timestamp") || errs[3].contains("fields"), "{errs:?}");
    }

    #[test]
    fn kinds_parse() {
        assert_eq!("custom:isac".parse::<Kind>().unwrap(), Kind::Custom("isac".into()));
        assert!("custom:".parse::<Kind>().is_err());
        assert!("shadowserver".parse::<Kind>().is_err());
    }

    #[test]
    fn custom_mapping() {
        let m = ReportMappingConfig {
            name: "isac".into(),
            measure: "mail.blacklist-alert".into(),
            timestamp: "first_seen".into(),
            address: "src".into(),
            port: None,
            detail: Some("rbl".into()),
            naive_times: NaiveTimes::Japan,
        };
        let f = Format::custom(&m).unwrap();
        let mut rdr =
            csv::ReaderBuilder::new().from_reader("SRC,First_Seen,rbl\n192.0.2.3,2026-11-20 09:00:00,x\n".as_bytes());
        let pos = f.resolve(rdr.headers().unwrap()).unwrap();
        let r = f.row(&pos, &rdr.records().next().unwrap().unwrap()).unwrap();
        assert_eq!(r.at, t("2026-11-20T00:00:00Z"));
        let bad = ReportMappingConfig { measure: "phone.restrict-country".into(), ..m };
        assert!(Format::custom(&bad).is_err());
    }
}
