//! `[report_import]`: column mappings for third-party reports that have no built-in format
//! (`mamori reports import FILE --kind custom:NAME`).

use serde::{Deserialize, Serialize};

/// `[report_import]`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportImportConfig {
    /// One entry per source format.
    pub mappings: Vec<ReportMappingConfig>,
}

/// `[[report_import.mappings]]`: which header names hold what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportMappingConfig {
    /// The name given as `--kind custom:NAME`.
    pub name: String,
    /// The measure the rows are findings of: `bots.alert-from-third-party`,
    /// `iot.alert-weak-credentials`, `router.alert-vulnerable` or `mail.blacklist-alert`.
    pub measure: String,
    /// Header of the observation time.
    pub timestamp: String,
    /// Header of the IP address.
    pub address: String,
    /// Header of the source port (for carrier-grade NAT), if the source gives one.
    #[serde(default)]
    pub port: Option<String>,
    /// Header of what was seen (infection, device type, list name), if any.
    #[serde(default)]
    pub detail: Option<String>,
    /// The zone of times written without an offset.
    #[serde(default)]
    pub naive_times: NaiveTimes,
}

/// How to read a time without an offset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NaiveTimes {
    /// UTC (what most international feeds use).
    #[default]
    Utc,
    /// Japan Standard Time (+09:00).
    Japan,
}

impl ReportImportConfig {
    /// Problems as (key, detail).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut names = std::collections::BTreeSet::new();
        for (i, m) in self.mappings.iter().enumerate() {
            let key = |k: &str| format!("mappings[{i}].{k}");
            if m.name.trim().is_empty() {
                out.push((key("name"), "must not be empty".into()));
            } else if !names.insert(m.name.as_str()) {
                out.push((key("name"), format!("`{}` is defined twice", m.name)));
            }
            const MEASURES: [&str; 4] = [
                "bots.alert-from-third-party",
                "iot.alert-weak-credentials",
                "router.alert-vulnerable",
                "mail.blacklist-alert",
            ];
            if !MEASURES.contains(&m.measure.as_str()) {
                out.push((key("measure"), format!("must be one of {}", MEASURES.join(", "))));
            }
            for (k, v) in [
                ("timestamp", Some(&m.timestamp)),
                ("address", Some(&m.address)),
                ("port", m.port.as_ref()),
                ("detail", m.detail.as_ref()),
            ] {
                if v.is_some_and(|v| v.trim().is_empty()) {
                    out.push((key(k), "must not be empty".into()));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn mappings_are_checked() {
        let c: ReportImportConfig = toml::from_str(
            "[[mappings]]\nname = \"a\"\nmeasure = \"phone.restrict-country\"\ntimestamp = \"t\"\naddress = \"\"\n\
             [[mappings]]\nname = \"a\"\nmeasure = \"mail.blacklist-alert\"\ntimestamp = \"t\"\naddress = \"ip\"\nnaive_times = \"japan\"\n",
        )
        .unwrap();
        let p = c.problems();
        assert!(p.iter().any(|(k, _)| k == "mappings[0].measure"), "{p:?}");
        assert!(p.iter().any(|(k, _)| k == "mappings[0].address"), "{p:?}");
        assert!(p.iter().any(|(k, d)| k == "mappings[1].name" && d.contains("twice")), "{p:?}");
        assert_eq!(c.mappings[1].naive_times, NaiveTimes::Japan);
    }
}
