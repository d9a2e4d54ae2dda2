//! What each DNS measure may read, as view types (DESIGN.md invariant 2).
//!
//! - `dns.block-fqdn-list`: query names, types, answer codes and sizes; never who asked
//!   ([`FqdnTraffic`]). The random-subdomain and amplification detectors take this view.
//! - `bots.detect-cnc-queries`: only queries for listed C&C names reach the gate (the engine
//!   matches the list mechanically first); the view carries the name, the client address and the
//!   subscriber when attribution knows it ([`CncQueryView`]). Opted-out subscribers are dropped.
//! - `reputation.block-cnc` and `reputation.warn-malware-site`: the inline filter's per-query
//!   decision sees the query name only ([`FilterName`]), after the gate dropped opted-out
//!   subscribers.

use std::net::IpAddr;

use jiff::Timestamp;
use mamori_core::catalog::{Field, MeasureId};
use mamori_core::subject::{SubscriberId, Target};
use mamori_core::view::{MeasureView, ViewToken};

use crate::dnstap::DnsEvent;

/// `dns.block-fqdn-list` stage 1: a query or response without its client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FqdnTraffic {
    /// The question's name (normalized).
    pub qname: String,
    /// The question's type.
    pub qtype: u16,
    /// The answer code (responses).
    pub rcode: Option<u16>,
    /// The answer size (responses).
    pub response_size: Option<u32>,
    /// Whether this is a response.
    pub is_response: bool,
    /// When.
    pub time: Option<Timestamp>,
}

impl MeasureView for FqdnTraffic {
    type Record = DnsEvent;
    const MEASURE: MeasureId = MeasureId::DnsBlockFqdnList;
    const STAGE: u8 = 1;
    const FIELDS: &'static [Field] = &[Field::QueryName, Field::QueryType, Field::ResponseCode, Field::ResponseSize];
    fn subscriber(_: &DnsEvent) -> Option<&SubscriberId> {
        None
    }
    fn subject(r: &DnsEvent) -> Target {
        Target::Fqdn(r.qname.clone())
    }
    fn project(r: &DnsEvent, _token: ViewToken) -> Self {
        FqdnTraffic {
            qname: r.qname.clone(),
            qtype: r.qtype,
            rcode: r.rcode,
            response_size: r.response_size,
            is_response: r.role.is_response(),
            time: r.time,
        }
    }
}

/// A client query for a name on a C&C list (the engine's record for `bots.detect-cnc-queries`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CncQuery {
    /// The name queried.
    pub qname: String,
    /// The listed name it matched.
    pub listed: String,
    /// The list it came from.
    pub list_source: String,
    /// The resolver's client.
    pub client: IpAddr,
    /// Who held the address, when attribution knows.
    pub subscriber: Option<SubscriberId>,
    /// When.
    pub time: Option<Timestamp>,
}

/// `bots.detect-cnc-queries` stage 1: the listed name, the client address, its subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CncQueryView {
    /// The name queried.
    pub qname: String,
    /// The listed name it matched.
    pub listed: String,
    /// The list it came from.
    pub list_source: String,
    /// The resolver's client.
    pub client: IpAddr,
    /// Who held the address, when attribution knows.
    pub subscriber: Option<SubscriberId>,
    /// When.
    pub time: Option<Timestamp>,
}

impl MeasureView for CncQueryView {
    type Record = CncQuery;
    const MEASURE: MeasureId = MeasureId::BotsDetectCncQueries;
    const STAGE: u8 = 1;
    const FIELDS: &'static [Field] = &[Field::QueryName, Field::ResolverClientAddress, Field::SessionAttribution];
    fn subscriber(r: &CncQuery) -> Option<&SubscriberId> {
        r.subscriber.as_ref()
    }
    fn subject(r: &CncQuery) -> Target {
        Target::Ip(r.client.to_string())
    }
    fn project(r: &CncQuery, _token: ViewToken) -> Self {
        CncQueryView {
            qname: r.qname.clone(),
            listed: r.listed.clone(),
            list_source: r.list_source.clone(),
            client: r.client,
            subscriber: r.subscriber.clone(),
            time: r.time,
        }
    }
}

/// A query reaching the inline filter, with its subscriber when attribution knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterQuery {
    /// The question's name (normalized).
    pub qname: String,
    /// Who holds the client address, if known.
    pub subscriber: Option<SubscriberId>,
}

/// `reputation.block-cnc` / `reputation.warn-malware-site` stage 1 in the filter: the query
/// name only. `M` is the measure (a marker type), so one gate per measure drops the subscribers
/// who opted out of that measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterName<M> {
    /// The question's name.
    pub qname: String,
    _m: std::marker::PhantomData<M>,
}

/// Marker: `reputation.block-cnc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockCnc;
/// Marker: `reputation.warn-malware-site`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarnSite;

/// The measure a filter marker stands for.
pub trait FilterMeasure {
    /// The measure.
    const MEASURE: MeasureId;
}
impl FilterMeasure for BlockCnc {
    const MEASURE: MeasureId = MeasureId::ReputationBlockCnc;
}
impl FilterMeasure for WarnSite {
    const MEASURE: MeasureId = MeasureId::ReputationWarnMalwareSite;
}

impl<M: FilterMeasure> MeasureView for FilterName<M> {
    type Record = FilterQuery;
    const MEASURE: MeasureId = M::MEASURE;
    const STAGE: u8 = 1;
    const FIELDS: &'static [Field] = &[Field::QueryName];
    fn subscriber(r: &FilterQuery) -> Option<&SubscriberId> {
        r.subscriber.as_ref()
    }
    fn subject(r: &FilterQuery) -> Target {
        Target::Fqdn(r.qname.clone())
    }
    fn project(r: &FilterQuery, _token: ViewToken) -> Self {
        FilterName { qname: r.qname.clone(), _m: std::marker::PhantomData }
    }
}
