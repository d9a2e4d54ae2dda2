//! mamori's kernel.
//!
//! Every measure family (telephone fraud, DNS, flows, notifications) plugs into these types:
//!
//! - [`catalog`]: what mamori may do, on what legal ground, reading which fields;
//! - [`governance`]: the only code that decides, and the only code that can construct an
//!   [`authorization::Authorization`], the value every actuator requires;
//! - [`view`]: the only way records reach a detector, narrowed to the catalog's fields, with
//!   opted-out subscribers removed and wider stages unlocked per subject;
//! - [`ledger`]: the hash-chained audit trail's format and verification;
//! - [`store`]: the storage seam (SQLite in `mamori-store`);
//! - [`calendar`], [`clock`]: Japan time and the two clocks (wall, data);
//! - [`persist`]: small state files beside the database, replaced atomically.
#![deny(missing_docs)]

pub mod account;
pub mod action;
pub mod actuator;
pub mod authorization;
pub mod calendar;
pub mod catalog;
pub mod clock;
pub mod config;
pub mod consent;
pub mod governance;
pub mod ledger;
pub mod persist;
pub mod store;
pub mod subject;
pub mod view;
