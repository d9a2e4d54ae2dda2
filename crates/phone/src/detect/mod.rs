//! The detectors: pure functions from a measure's view to a judgement, so each is tested on its
//! own, with no state and nothing it may not read.

pub mod country;
pub mod dormant;
pub mod source;
pub mod surge;
