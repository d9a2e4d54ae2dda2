//! mamori's Kamailio adapter (issue #4): enforcement and live call events.
//!
//! - [`actuator`]: [`KamailioActuator`] puts the `phone.*` actions in force as htable entries over
//!   JSON-RPC (`htable.sets`, `htable.delete`, `htable.dump`), which
//!   `examples/kamailio/kamailio.cfg` consults on every REGISTER and INVITE;
//! - [`evapi`]: [`EvapiClient`] receives answered and ended calls from Kamailio's `evapi` module
//!   as [`mamori_phone::live::CallEvent`]s;
//! - [`jsonrpc`]: the small JSON-RPC 2.0 over HTTP client both use.

pub mod actuator;
pub mod evapi;
pub mod jsonrpc;

pub use actuator::{KamailioActuator, Tables};
pub use evapi::{EvapiClient, Feed};
