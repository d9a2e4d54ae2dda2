//! Detectors of the DNS family. Each takes a view, never a record, keeps a bounded state that is
//! a deterministic function of the views it saw (so a shard can be rebuilt by replay), and returns
//! detections; the engine turns them into findings and proposals through governance.

pub mod amplification;
pub mod cnc;
pub mod water_torture;

/// Second-level public suffixes under which a registrable domain has three labels (a short list:
/// Japanese and common ones; anything else is treated as `label.tld`).
const TWO_LABEL_SUFFIXES: &[&str] = &[
    "co.jp", "ne.jp", "or.jp", "ac.jp", "ad.jp", "ed.jp", "go.jp", "gr.jp", "lg.jp", "co.uk", "org.uk", "ac.uk",
    "com.au", "net.au", "org.au", "com.cn", "com.tw", "co.kr", "com.br", "co.nz",
];

/// The parent domain a random-subdomain attack aims at: the registrable domain of `qname` (the
/// label below its public suffix), or `None` for a bare suffix.
pub fn parent_domain(qname: &str) -> Option<&str> {
    let dots: Vec<usize> = qname.match_indices('.').map(|(i, _)| i).collect();
    let n = dots.len() + 1;
    let suffix_labels = if n >= 2 {
        let last2 = &qname[if n > 2 { dots[n - 3] + 1 } else { 0 }..];
        if TWO_LABEL_SUFFIXES.contains(&last2) { 2 } else { 1 }
    } else {
        1
    };
    if n <= suffix_labels {
        return None;
    }
    let keep = suffix_labels + 1;
    Some(if n == keep { qname } else { &qname[dots[n - keep - 1] + 1..] })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents() {
        assert_eq!(parent_domain("abc123.example.com"), Some("example.com"));
        assert_eq!(parent_domain("x.y.example.co.jp"), Some("example.co.jp"));
        assert_eq!(parent_domain("example.co.jp"), Some("example.co.jp"));
        assert_eq!(parent_domain("co.jp"), None);
        assert_eq!(parent_domain("com"), None);
        assert_eq!(parent_domain("example.com"), Some("example.com"));
    }
}
