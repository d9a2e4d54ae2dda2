//! mamori's DNS family.
//!
//! - [`dnstap`]: resolver traffic in (Frame Streams over unix sockets and TCP), decoded into
//!   [`dnstap::DnsEvent`]s; framing and decoding are pure functions of bytes, fuzzed.
//! - [`views`]: what `dns.block-fqdn-list`, `bots.detect-cnc-queries` and the `reputation.*`
//!   measures may read.
//! - [`detect`]: random-subdomain (water torture) and amplification detection per parent domain,
//!   and C&C queries; detectors take views and push findings and proposals through governance.
//! - [`rpz`]: the response-policy zone mamori serves to the carrier's resolvers (AXFR/IXFR with
//!   NOTIFY), the enforcing actuator of `dns.block-fqdn-list`.
//! - [`filter`]: the inline filter, a DNS front on UDP and TCP forwarding to the resolver, with the
//!   malware-site warning page.
//! - [`reputation`]: C&C and malware-site lists from plain, hosts and RPZ files.

pub mod detect;
pub mod dnstap;
pub mod engine;
pub mod filter;
pub mod lists;
pub mod names;
pub mod reputation;
pub mod rpz;
mod seeded;
pub mod views;
