//! mamori's telephone-fraud family (seed 003, guideline §6(2)): the `phone.*` measures.
//!
//! - [`cdr`]: the generic CDR format: reader, row parser, reorder buffer;
//! - [`live`]: calls as they happen (from Kamailio), priced in progress by a tariff;
//! - [`numbering`]: country calling codes from libphonenumber's metadata;
//! - [`views`]: what each measure and stage may read, as types the detectors take;
//! - `domestic`: domestic rows taken in batches, their lookups made ahead;
//! - [`detect`]: the detectors (surge per line, fraudulent source IPs, countries, dormant lines);
//! - [`learned`]: the engine's learned levels, kept across restarts of the live service;
//! - `line_index`: line id → the engine's slot, the lookup every CDR makes;
//! - [`engine`]: runs sources, views, detectors and governance on one clock (data or wall);
//! - [`publish`]: the public pages (targeted countries, guidance for users).

pub mod cdr;
pub mod detect;
mod domestic;
pub mod engine;
pub mod learn;
pub mod learned;
mod line_index;
pub mod live;
pub mod numbering;
pub mod publish;
mod recent;
pub mod replay;
pub mod views;
