//! The inline filter's per-packet parsing: a query's question (name key, question end) and an
//! upstream answer walked by the answer cache (its TTL layout), then served back with its TTLs
//! aged, with and without the memo of unlisted names. Never panics; a served answer is as long as
//! the stored one.
#![no_main]
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use mamori_dns::dnstap::decode::dns_question_into;
use mamori_dns::filter::cache::{AnswerCache, Probe};

fuzz_target!(|data: &[u8]| {
    let mut key = String::new();
    if let Ok((_, _, Some(end))) = dns_question_into(data, &mut key) {
        assert!(end <= data.len());
        assert!(!key.is_empty());
    }
    // The packet as its own query's answer (the key is its bytes after the id, so the question
    // matches and the TTL walk runs).
    let key = data.get(2..).unwrap_or_default();
    let mut c = AnswerCache::new(4);
    let now = Instant::now();
    c.insert(key, data, now, Some(7));
    let mut out = vec![0u8; 65535];
    let later = now + Duration::from_secs(1);
    // Served before a decision under the memo's generation, and after one: the same bytes.
    if let Probe::Served(n) = c.probe_into(key, [1, 2], later, 7, &mut out) {
        assert_eq!(n, data.len());
        let mut again = vec![0u8; 65535];
        assert_eq!(c.answer_into(key, [1, 2], later, None, &mut again), Some(n));
        assert_eq!(out[..n], again[..n]);
    }
    if let Some(n) = c.answer_into(key, [1, 2], later, None, &mut out) {
        assert_eq!(n, data.len());
    }
});
