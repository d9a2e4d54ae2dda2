//! The filter's answer cache (off unless `[dns.filter] cache_entries` is set), the counterpart of
//! dnsdist's packet cache.
//!
//! - Only the resolver's answers to forwarded queries are stored; the filter decides every query
//!   (FQDN list, C&C, warning page, each subscriber's opt-out and "continue anyway") *before* an
//!   answer from here is served, or knows the decision already (the memo below), so a blocked or
//!   warned answer is never stored, and an answer stored for one subscriber's forwarded query is
//!   only ever served to queries the filter would forward anyway, where the resolver would give
//!   the same answer.
//! - The key is the whole query after its id (flags, question with the name's case, EDNS record),
//!   as dnsdist keys its cache, so clients with different EDNS sizes, DO or CD bits never share.
//! - An answer lives for its smallest TTL (a negative answer: its SOA's TTL, capped by the SOA
//!   minimum, RFC 2308), at most `MAX_TTL`; when served, every TTL (except the OPT record's,
//!   which holds flags) is lowered by the time it has spent here, as a resolver ages its cache.
//!   Answers that are truncated, not NOERROR/NXDOMAIN, or carry no TTL (NODATA without SOA) are
//!   not stored.
//! - The memo of unlisted names: an answer to a query whose name was on no list (FQDN list, policy
//!   zone, C&C, malware) is kept with the lists' generation at that decision
//!   ([`crate::filter::Filter::lists_generation`]). That verdict is the same for every subscriber
//!   (opt-outs and "continue anyway" only matter for listed names), so while the generation is
//!   unchanged [`AnswerCache::probe_into`] serves the answer before the filter decodes the query or
//!   probes a list. Any other entry (a listed name forwarded under a subscriber's exception, or a
//!   generation since replaced) is only served after the filter has decided the query again, as
//!   before ([`AnswerCache::answer_into`]), which renews the memo when the name is still unlisted.
//!   (dnsdist's rules, like its block rule, also run before its packet cache is looked up; there
//!   every query pays them.)
//! - The walk over an answer's records uses hickory's decoder (names, and its `read_u16`/`read_u32`
//!   for the fixed record fields) only to find where each TTL sits.

use std::time::Instant;

use hickory_proto::op::{Header, Query, ResponseCode};
use hickory_proto::rr::Name;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use crate::seeded::SeededMap;

/// The longest an answer is kept, whatever its TTLs (dnsdist's default `maxTTL`).
pub const MAX_TTL: u32 = 86_400;

const OPT: u16 = 41;
const SOA: u16 = 6;

/// One held answer: the query's bytes after its id (the key), then the answer, then the offsets
/// in the answer of the TTLs to age (2 bytes each, native order), in one allocation, so a lookup
/// compares the key and copies the answer from one place in memory (the answer holds each TTL as
/// received).
#[derive(Debug)]
struct Held {
    bytes: Box<[u8]>,
    key_len: u16,
    answer_len: u16,
}

impl Held {
    /// `None` if a length does not fit (a query or answer over 65,535 bytes, not seen over UDP).
    fn new(key: &[u8], answer: &[u8], ttl_offsets: &[u32]) -> Option<Self> {
        let key_len = u16::try_from(key.len()).ok()?;
        let answer_len = u16::try_from(answer.len()).ok()?;
        let mut bytes = Vec::with_capacity(key.len() + answer.len() + 2 * ttl_offsets.len());
        bytes.extend_from_slice(key);
        bytes.extend_from_slice(answer);
        for &at in ttl_offsets {
            bytes.extend_from_slice(&u16::try_from(at).ok()?.to_ne_bytes());
        }
        Some(Held { bytes: bytes.into_boxed_slice(), key_len, answer_len })
    }

    fn key(&self) -> &[u8] {
        &self.bytes[..usize::from(self.key_len)]
    }

    fn answer(&self) -> &[u8] {
        let k = usize::from(self.key_len);
        &self.bytes[k..k + usize::from(self.answer_len)]
    }

    /// Writes the answer with `id` and its TTLs lowered by `age` into `out` (long enough).
    fn write(&self, id: [u8; 2], age: u32, out: &mut [u8]) -> usize {
        let answer = self.answer();
        let n = answer.len();
        out[..n].copy_from_slice(answer);
        out[..2].copy_from_slice(&id);
        let offsets = &self.bytes[usize::from(self.key_len) + n..];
        for at in offsets.chunks_exact(2) {
            let at = usize::from(u16::from_ne_bytes([at[0], at[1]]));
            let ttl = u32::from_be_bytes([answer[at], answer[at + 1], answer[at + 2], answer[at + 3]]);
            out[at..at + 4].copy_from_slice(&ttl.saturating_sub(age).to_be_bytes());
        }
        n
    }
}

// Keyed by the query's bytes: looked up with a `&[u8]`.
impl std::borrow::Borrow<[u8]> for Held {
    fn borrow(&self) -> &[u8] {
        self.key()
    }
}

impl std::hash::Hash for Held {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Held {}

/// When an answer was stored, how long it lives, and the memo of its name.
#[derive(Debug)]
struct Life {
    stored: Instant,
    ttl: u32,
    /// The lists' generation under which this query's name was on no list, if it was.
    unlisted: Option<u64>,
}

impl Life {
    /// Seconds since stored, if still fresh.
    fn fresh(&self, now: Instant) -> Option<u32> {
        let age = u32::try_from(now.saturating_duration_since(self.stored).as_secs()).unwrap_or(u32::MAX);
        (age < self.ttl).then_some(age)
    }
}

/// What [`AnswerCache::probe_into`] found for a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// Answered (this many bytes written): a fresh answer whose name was on no list under the
    /// current generation of the lists.
    Served(usize),
    /// A fresh answer is held, but the filter must decide the query first (then
    /// [`AnswerCache::answer_into`]).
    Decide,
    /// Nothing fresh held (counted as a miss).
    Miss,
}

/// Answers by query (without its id).
#[derive(Debug)]
pub struct AnswerCache {
    /// Seeded: keyed by the query's bytes, which any client chooses.
    map: SeededMap<Held, Life>,
    capacity: usize,
    /// Answers served from here.
    pub hits: u64,
    /// Forwarded queries not found here.
    pub misses: u64,
}

/// Where the TTLs of an answer are (offsets), and how long it may be kept; `None` if it must not be.
fn ttl_layout(answer: &[u8]) -> Option<(Vec<u32>, u32)> {
    let mut d = BinDecoder::new(answer);
    let h = Header::read(&mut d).ok()?;
    if h.truncated() || !matches!(h.response_code(), ResponseCode::NoError | ResponseCode::NXDomain) {
        return None;
    }
    for _ in 0..h.query_count() {
        Query::read(&mut d).ok()?;
    }
    let (an, ns) = (usize::from(h.answer_count()), usize::from(h.name_server_count()));
    let total = an + ns + usize::from(h.additional_count());
    let mut ttls = Vec::new();
    let mut keep = u32::MAX;
    for i in 0..total {
        Name::read(&mut d).ok()?;
        let rtype = d.read_u16().ok()?.unverified();
        let _class = d.read_u16().ok()?.unverified();
        let at = u32::try_from(d.index()).ok()?;
        let ttl = d.read_u32().ok()?.unverified();
        let rdlen = usize::from(d.read_u16().ok()?.unverified());
        let rdata_end = d.index() + rdlen;
        if rtype == OPT {
            d.read_slice(rdlen).ok()?;
            continue;
        }
        ttls.push(at);
        let mut lives = ttl;
        if rtype == SOA && (an..an + ns).contains(&i) {
            // RFC 2308 §5: a negative answer lives min(SOA TTL, SOA minimum).
            Name::read(&mut d).ok()?;
            Name::read(&mut d).ok()?;
            for _ in 0..4 {
                d.read_u32().ok()?;
            }
            lives = lives.min(d.read_u32().ok()?.unverified());
        }
        keep = keep.min(lives);
        let rest = rdata_end.checked_sub(d.index())?;
        d.read_slice(rest).ok()?;
    }
    (!ttls.is_empty() && keep > 0).then_some((ttls, keep.min(MAX_TTL)))
}

/// Whether `answer` carries the question of the query whose bytes after the id are `key` (byte for
/// byte, as resolvers echo it). An answer arriving after its id was given to another query (the
/// filter reuses an id after 5 s) must not be stored under that other query.
pub fn same_question(key: &[u8], answer: &[u8]) -> bool {
    let mut d = BinDecoder::new(answer);
    match Header::read(&mut d) {
        Ok(h) if h.query_count() == 1 => {}
        _ => return false,
    }
    if Query::read(&mut d).is_err() {
        return false;
    }
    let end = d.index();
    answer.get(12..end).is_some_and(|q| key.get(10..end - 2) == Some(q))
}

impl AnswerCache {
    /// A cache of at most `capacity` answers.
    pub fn new(capacity: usize) -> Self {
        AnswerCache { map: SeededMap::default(), capacity, hits: 0, misses: 0 }
    }

    /// Answers held (expired ones included until they are found or swept).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Nothing held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Writes the answer to `query` (its bytes after the id: `key`) into `out` with `id` and its
    /// TTLs aged, if one is held and still fresh; returns its length. For a query the filter has
    /// just decided to forward; `unlisted`: the lists' generation under which it found the name on
    /// no list, if it did (renews the entry's memo).
    pub fn answer_into(
        &mut self,
        key: &[u8],
        id: [u8; 2],
        now: Instant,
        unlisted: Option<u64>,
        out: &mut [u8],
    ) -> Option<usize> {
        let Some((held, life)) = self.map.get_key_value(key) else {
            self.misses += 1;
            return None;
        };
        let Some(age) = life.fresh(now).filter(|_| held.answer().len() <= out.len()) else {
            self.map.remove(key);
            self.misses += 1;
            return None;
        };
        let n = held.write(id, age, out);
        if unlisted.is_some()
            && let Some(life) = self.map.get_mut(key)
        {
            life.unlisted = unlisted;
        }
        self.hits += 1;
        Some(n)
    }

    /// Looks `key` (a query's bytes after its id) up before the filter has decided the query:
    /// serves the answer into `out` with `id` only if the name was found on no list under
    /// `generation`, the lists' current one ([`Probe`]).
    pub fn probe_into(&mut self, key: &[u8], id: [u8; 2], now: Instant, generation: u64, out: &mut [u8]) -> Probe {
        let Some((held, life)) = self.map.get_key_value(key) else {
            self.misses += 1;
            return Probe::Miss;
        };
        let Some(age) = life.fresh(now).filter(|_| held.answer().len() <= out.len()) else {
            self.map.remove(key);
            self.misses += 1;
            return Probe::Miss;
        };
        if life.unlisted != Some(generation) {
            return Probe::Decide;
        }
        self.hits += 1;
        Probe::Served(held.write(id, age, out))
    }

    /// Stores the resolver's `answer` to the query whose bytes after the id are `key`, if it may be;
    /// `unlisted`: the lists' generation under which the filter found the query's name on no list
    /// when it forwarded it, if it did.
    pub fn insert(&mut self, key: &[u8], answer: &[u8], now: Instant, unlisted: Option<u64>) {
        if self.capacity == 0 || answer.len() < 12 {
            return;
        }
        if self.map.len() >= self.capacity {
            // Full: sweep what has expired; if nothing has, the new answer is not stored
            // (dnsdist's packet cache does the same rather than evict live entries).
            self.map.retain(|_, life| life.fresh(now).is_some());
            if self.map.len() >= self.capacity {
                return;
            }
        }
        if !same_question(key, answer) {
            return;
        }
        let Some((ttls, ttl)) = ttl_layout(answer) else { return };
        let Some(held) = Held::new(key, answer, &ttls) else { return };
        // Removed first: `insert` would keep the old key, which holds the old answer.
        self.map.remove(key);
        self.map.insert(held, Life { stored: now, ttl, unlisted });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Edns, Message, MessageType};
    use hickory_proto::rr::rdata::{A, SOA as Soa};
    use hickory_proto::rr::{RData, Record, RecordType};
    use std::time::Duration;

    fn query(name: &str, rt: RecordType, edns: bool) -> Message {
        let mut m = Message::new();
        m.set_id(7).set_recursion_desired(true);
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), rt));
        if edns {
            m.set_edns(Edns::new());
        }
        m
    }

    fn answer_to(q: &Message, rcode: ResponseCode, answers: Vec<Record>, authority: Vec<Record>) -> Vec<u8> {
        let mut r = q.clone();
        r.set_message_type(MessageType::Response).set_response_code(rcode);
        r.add_answers(answers);
        r.add_name_servers(authority);
        r.to_vec().unwrap()
    }

    fn a(name: &str, ttl: u32) -> Record {
        Record::from_rdata(Name::from_ascii(name).unwrap(), ttl, RData::A(A::new(192, 0, 2, 1)))
    }

    fn soa(ttl: u32, minimum: u32) -> Record {
        let n = Name::from_ascii("test.").unwrap();
        Record::from_rdata(n.clone(), ttl, RData::SOA(Soa::new(n.clone(), n, 1, 60, 60, 60, minimum)))
    }

    #[test]
    fn ttls_are_aged_and_honoured() {
        let q = query("www.example.test.", RecordType::A, true);
        let qb = q.to_vec().unwrap();
        let ans =
            answer_to(&q, ResponseCode::NoError, vec![a("www.example.test.", 300), a("www.example.test.", 30)], vec![]);
        let mut c = AnswerCache::new(10);
        let t0 = Instant::now();
        c.insert(&qb[2..], &ans, t0, None);
        let mut out = vec![0u8; 4096];
        let n = c.answer_into(&qb[2..], [0xab, 0xcd], t0 + Duration::from_secs(10), None, &mut out).unwrap();
        let m = Message::from_vec(&out[..n]).unwrap();
        assert_eq!(m.id(), 0xabcd);
        let ttls: Vec<u32> = m.answers().iter().map(Record::ttl).collect();
        assert_eq!(ttls, [290, 20]);
        assert!(m.extensions().is_some(), "the OPT record is kept");
        assert_eq!(m.extensions().as_ref().unwrap().rcode_high(), 0, "the OPT record's TTL field is not aged");
        // The smallest TTL bounds the life.
        assert!(c.answer_into(&qb[2..], [0, 1], t0 + Duration::from_secs(30), None, &mut out).is_none());
        assert!(c.is_empty());
        // Another EDNS setting is another key.
        let q2 = query("www.example.test.", RecordType::A, false).to_vec().unwrap();
        c.insert(&qb[2..], &ans, t0, None);
        assert!(c.answer_into(&q2[2..], [0, 1], t0, None, &mut out).is_none());
        assert!(c.answer_into(&qb[2..], [0, 1], t0, None, &mut out).is_some());
    }

    #[test]
    fn negative_answers_live_by_the_soa_and_others_are_not_kept() {
        let q = query("nope.test.", RecordType::A, false);
        let qb = q.to_vec().unwrap();
        let mut c = AnswerCache::new(10);
        let t0 = Instant::now();
        c.insert(&qb[2..], &answer_to(&q, ResponseCode::NXDomain, vec![], vec![soa(3600, 5)]), t0, None);
        let mut out = vec![0u8; 4096];
        assert!(c.answer_into(&qb[2..], [0, 1], t0 + Duration::from_secs(4), None, &mut out).is_some());
        assert!(c.answer_into(&qb[2..], [0, 1], t0 + Duration::from_secs(5), None, &mut out).is_none());
        // SERVFAIL, NODATA without SOA, zero TTL, truncated: not kept.
        c.insert(&qb[2..], &answer_to(&q, ResponseCode::ServFail, vec![], vec![]), t0, None);
        c.insert(&qb[2..], &answer_to(&q, ResponseCode::NoError, vec![], vec![]), t0, None);
        c.insert(&qb[2..], &answer_to(&q, ResponseCode::NoError, vec![a("nope.test.", 0)], vec![]), t0, None);
        let mut tc =
            Message::from_vec(&answer_to(&q, ResponseCode::NoError, vec![a("nope.test.", 60)], vec![])).unwrap();
        tc.set_truncated(true);
        c.insert(&qb[2..], &tc.to_vec().unwrap(), t0, None);
        assert!(c.is_empty());
    }

    #[test]
    fn an_answer_to_another_question_is_not_kept() {
        let mut c = AnswerCache::new(10);
        let t0 = Instant::now();
        let q1 = query("a.test.", RecordType::A, false);
        let q2 = query("b.test.", RecordType::A, false);
        let k1 = q1.to_vec().unwrap();
        let late = answer_to(&q2, ResponseCode::NoError, vec![a("b.test.", 60)], vec![]);
        assert!(!same_question(&k1[2..], &late));
        c.insert(&k1[2..], &late, t0, None);
        assert!(c.is_empty());
        let right = answer_to(&q1, ResponseCode::NoError, vec![a("a.test.", 60)], vec![]);
        assert!(same_question(&k1[2..], &right));
        assert!(!same_question(&k1[2..], &right[..20]));
    }

    #[test]
    fn full_cache_sweeps_expired_answers_first() {
        let mut c = AnswerCache::new(1);
        let t0 = Instant::now();
        let q1 = query("a.test.", RecordType::A, false);
        let q2 = query("b.test.", RecordType::A, false);
        let (k1, k2) = (q1.to_vec().unwrap(), q2.to_vec().unwrap());
        c.insert(&k1[2..], &answer_to(&q1, ResponseCode::NoError, vec![a("a.test.", 2)], vec![]), t0, None);
        c.insert(&k2[2..], &answer_to(&q2, ResponseCode::NoError, vec![a("b.test.", 60)], vec![]), t0, None);
        assert_eq!(c.len(), 1, "full of a live answer: not stored");
        c.insert(
            &k2[2..],
            &answer_to(&q2, ResponseCode::NoError, vec![a("b.test.", 60)], vec![]),
            t0 + Duration::from_secs(3),
            None,
        );
        let mut out = vec![0u8; 512];
        assert!(c.answer_into(&k2[2..], [0, 1], t0 + Duration::from_secs(3), None, &mut out).is_some());
    }

    #[test]
    fn the_unlisted_memo_serves_only_under_its_generation() {
        let q = query("www.example.test.", RecordType::A, false);
        let k = q.to_vec().unwrap();
        let ans = answer_to(&q, ResponseCode::NoError, vec![a("www.example.test.", 60)], vec![]);
        let mut c = AnswerCache::new(10);
        let t0 = Instant::now();
        let mut out = vec![0u8; 512];
        assert_eq!(c.probe_into(&k[2..], [0, 1], t0, 1, &mut out), Probe::Miss);
        c.insert(&k[2..], &ans, t0, Some(1));
        let Probe::Served(n) = c.probe_into(&k[2..], [0xab, 0xcd], t0 + Duration::from_secs(2), 1, &mut out) else {
            panic!("not served under its generation")
        };
        let mut expect = vec![0u8; 512];
        let m = c.answer_into(&k[2..], [0xab, 0xcd], t0 + Duration::from_secs(2), None, &mut expect).unwrap();
        assert_eq!(out[..n], expect[..m], "the same bytes as after a decision");
        // The lists changed: decided again first; a decision that finds the name unlisted renews it.
        assert_eq!(c.probe_into(&k[2..], [0, 1], t0, 2, &mut out), Probe::Decide);
        assert!(c.answer_into(&k[2..], [0, 1], t0, None, &mut out).is_some());
        assert_eq!(c.probe_into(&k[2..], [0, 1], t0, 2, &mut out), Probe::Decide, "None keeps the old memo");
        assert!(c.answer_into(&k[2..], [0, 1], t0, Some(2), &mut out).is_some());
        assert!(matches!(c.probe_into(&k[2..], [0, 1], t0, 2, &mut out), Probe::Served(_)));
        // A listed name forwarded under an exception: never served before a decision.
        c.insert(&k[2..], &ans, t0, None);
        assert_eq!(c.probe_into(&k[2..], [0, 1], t0, 2, &mut out), Probe::Decide);
        // Expired: a miss, and dropped.
        c.insert(&k[2..], &ans, t0, Some(2));
        assert_eq!(c.probe_into(&k[2..], [0, 1], t0 + Duration::from_secs(60), 2, &mut out), Probe::Miss);
        assert!(c.is_empty());
    }

    #[test]
    fn each_cache_hashes_queries_with_its_own_seed() {
        use std::hash::BuildHasher;
        // Keyed by bytes any client sends: a fixed hash would let them be chosen to collide.
        let k = query("www.example.test.", RecordType::A, false).to_vec().unwrap();
        let (a, b) = (AnswerCache::new(10), AnswerCache::new(10));
        assert_ne!(a.map.hasher().hash_one(&k[2..]), b.map.hasher().hash_one(&k[2..]));
    }
}
