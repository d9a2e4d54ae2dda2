//! Hash maps keyed by what traffic chooses (query bytes and names, client addresses): hashed with
//! a per-process random seed, and a per-map one, so that nobody who knows the hash function can
//! craft many keys that collide and turn each lookup into a long probe sequence (hash flooding).
//! The maps built from the operator's own lists ([`crate::names::SuffixMap`]) keep a fixed
//! hash: their keys are trusted, and a lookup of a name that isn't there stops at the first empty
//! slot of a table the attacker cannot fill.
//!
//! Nothing built from these maps may depend on their iteration order, which now differs from run
//! to run: what a detector reports is decided by the data alone.

use std::collections::{HashMap, HashSet};

/// The seeded hasher: foldhash's, hashbrown's default (a random seed per process, from address
/// space layout randomisation and the clock, and one per map). It defeats keys crafted offline,
/// not an attacker who can watch hash outputs (foldhash claims no more); these maps' order is
/// never shown. std's SipHash-1-3 would resist more, but on the filter's cached path (callgrind on
/// `examples/filter_path.rs`) the answer cache's probe then costs ~540 instructions per query,
/// against ~330 with foldhash and ~305 with the fixed hash it replaces (of 1,250–1,800 per query
/// in all, depending on batching).
pub(crate) type Seeded = foldhash::fast::RandomState;

/// A hash map with the [`Seeded`] hasher.
pub(crate) type SeededMap<K, V> = HashMap<K, V, Seeded>;

/// A hash set with the [`Seeded`] hasher.
pub(crate) type SeededSet<K> = HashSet<K, Seeded>;
