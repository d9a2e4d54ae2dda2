//! Suffix matching of query names against large lists (a million entries and more).
//!
//! Names are kept as normalized keys ([`crate::dnstap::decode::name_key`]) in a hash map; a lookup
//! tries the name and each of its parent suffixes, a hash probe on a borrowed slice per label, so
//! it costs a few probes whatever the list's size and allocates nothing.

use rustc_hash::FxHashMap;

/// How an entry matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Match {
    /// The name itself only.
    Exact,
    /// The name and every name below it.
    Subtree,
}

/// A set of names, each matching exactly or with its subtree, with a value per entry.
#[derive(Debug, Clone)]
pub struct SuffixMap<V> {
    map: FxHashMap<Box<str>, (Match, V)>,
}

impl<V> Default for SuffixMap<V> {
    fn default() -> Self {
        SuffixMap { map: FxHashMap::default() }
    }
}

impl<V> SuffixMap<V> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty map with room for `n` entries.
    pub fn with_capacity(n: usize) -> Self {
        SuffixMap { map: FxHashMap::with_capacity_and_hasher(n, Default::default()) }
    }

    /// Adds or replaces an entry; `name` must be a normalized key.
    pub fn insert(&mut self, name: &str, m: Match, v: V) {
        self.map.insert(normalize(name).into_boxed_str(), (m, v));
    }

    /// Removes an entry.
    pub fn remove(&mut self, name: &str) -> Option<(Match, V)> {
        self.map.remove(normalize(name).as_str())
    }

    /// Entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The entry that matches `qname` (a normalized key), the most specific first, with the listed name.
    pub fn lookup<'a>(&'a self, qname: &'a str) -> Option<(&'a str, &'a V)> {
        let mut s = qname;
        let mut exact = true;
        loop {
            if let Some((m, v)) = self.map.get(s) {
                if exact || *m == Match::Subtree {
                    return Some((s, v));
                }
            }
            exact = false;
            match s.find('.') {
                Some(i) => s = &s[i + 1..],
                None => return None,
            }
        }
    }

    /// Whether `qname` matches an entry.
    pub fn matches(&self, qname: &str) -> bool {
        self.lookup(qname).is_some()
    }

    /// All entries.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Match, &V)> {
        self.map.iter().map(|(k, (m, v))| (&**k, *m, v))
    }
}

/// Lowercases and strips a trailing dot (keys from files and operators).
pub fn normalize(name: &str) -> String {
    let t = name.trim().trim_end_matches('.');
    if t.is_empty() { ".".to_owned() } else { t.to_ascii_lowercase() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtree_and_exact_entries() {
        let mut m = SuffixMap::new();
        m.insert("Example.COM.", Match::Subtree, 1);
        m.insert("only.test", Match::Exact, 2);
        assert_eq!(m.lookup("example.com"), Some(("example.com", &1)));
        assert_eq!(m.lookup("a.b.example.com"), Some(("example.com", &1)));
        assert_eq!(m.lookup("notexample.com"), None);
        assert_eq!(m.lookup("only.test"), Some(("only.test", &2)));
        assert_eq!(m.lookup("x.only.test"), None);
        assert_eq!(m.lookup("com"), None);
        assert!(m.remove("example.com").is_some());
        assert!(!m.matches("a.example.com"));
    }
}
