//! Accounting events and the sessions they build, as pure functions.
//!
//! A session is identified by its NAS, its Acct-Session-Id and its User-Name (as FreeRADIUS's
//! `Acct-Unique-Session-Id` is), hashed into a [`SessionKey`]. Its row holds what attribution
//! needs: who, from when, until when, and which addresses. Events may arrive twice (the NAS
//! retransmits when an answer is lost), out of order (UDP), or never (a lost Stop): merging is
//! idempotent and order-independent for the times (earliest start, latest update, earliest stop),
//! and a session without a Stop ends at its last update plus twice its interim interval.

use std::net::{IpAddr, Ipv4Addr};

use crate::radius::{AccountingRequest, Ipv6Prefix, PortBlock, StatusType};

/// At most this many port blocks and IPv6 prefixes are kept per session (a bound against a
/// misbehaving NAS; real sessions have one or two).
pub const MAX_ADDRESSES: usize = 32;

/// Hash of (NAS, Acct-Session-Id, User-Name): the session's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey(pub [u8; 16]);

impl SessionKey {
    /// The key of a session.
    pub fn new(nas: &str, session_id: &[u8], user_name: &str) -> SessionKey {
        let mut h = blake3::Hasher::new();
        for part in [nas.as_bytes(), session_id, user_name.as_bytes()] {
            h.update(&(part.len() as u64).to_le_bytes());
            h.update(part);
        }
        let mut k = [0u8; 16];
        k.copy_from_slice(&h.finalize().as_bytes()[..16]);
        SessionKey(k)
    }
}

/// One accounting event, from a RADIUS packet or a detail file, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcctEvent {
    /// Start, Stop, Interim-Update, Accounting-On/Off, other.
    pub status: StatusType,
    /// User-Name.
    pub user_name: Option<String>,
    /// Acct-Session-Id.
    pub session_id: Option<Vec<u8>>,
    /// The NAS: NAS-Identifier, else NAS-IPv6-Address, else NAS-IP-Address, else the packet's
    /// source address. (In this order because FreeRADIUS adds a NAS-IP-Address of the source to
    /// requests without one before writing its detail file: a session keeps its key either way.)
    pub nas: String,
    /// When it happened, Unix seconds: Event-Timestamp, else reception minus Acct-Delay-Time.
    pub time: u32,
    /// Acct-Interim-Interval, seconds (0 is taken as absent).
    pub interim: Option<u32>,
    /// Acct-Session-Time, seconds.
    pub session_time: Option<u32>,
    /// Framed-IP-Address.
    pub framed_ipv4: Option<Ipv4Addr>,
    /// CGNAT port blocks.
    pub port_blocks: Vec<PortBlock>,
    /// IPv6 prefixes (framed, delegated, framed addresses as /128).
    pub ipv6: Vec<Ipv6Prefix>,
}

impl AcctEvent {
    /// From a decoded Accounting-Request received at `received` (Unix seconds) from `source`.
    pub fn from_request(r: &AccountingRequest, source: IpAddr, received: u32) -> AcctEvent {
        let nas = if let Some(id) = &r.nas_identifier {
            id.clone()
        } else if let Some(ip) = r.nas_ipv6 {
            ip.to_string()
        } else if let Some(ip) = r.nas_ip {
            ip.to_string()
        } else {
            source.to_string()
        };
        let time = r.event_timestamp.unwrap_or_else(|| received.saturating_sub(r.delay_time.unwrap_or(0)));
        AcctEvent {
            status: r.status.unwrap_or(StatusType::Other(0)),
            user_name: r.user_name.clone(),
            session_id: r.session_id.clone(),
            nas,
            time,
            interim: r.interim_interval.filter(|i| *i > 0),
            session_time: r.session_time,
            framed_ipv4: r.framed_ip,
            port_blocks: r.port_blocks.clone(),
            ipv6: r.ipv6.clone(),
        }
    }

    /// The session this event belongs to; `None` without Acct-Session-Id or User-Name.
    pub fn key(&self) -> Option<SessionKey> {
        Some(SessionKey::new(&self.nas, self.session_id.as_deref()?, self.user_name.as_deref()?))
    }
}

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// Identity.
    pub key: SessionKey,
    /// The subscriber (the User-Name, or what the subscriber map makes of it).
    pub subscriber: String,
    /// The NAS.
    pub nas: String,
    /// Start, Unix seconds.
    pub start: u32,
    /// Last Start or Interim-Update, Unix seconds.
    pub last: u32,
    /// Interim interval, seconds.
    pub interim: u32,
    /// Stop, Unix seconds; `None` while no Stop arrived.
    pub stop: Option<u32>,
    /// Framed-IP-Address.
    pub framed_ipv4: Option<Ipv4Addr>,
    /// CGNAT port blocks.
    pub port_blocks: Vec<PortBlock>,
    /// IPv6 prefixes.
    pub ipv6: Vec<Ipv6Prefix>,
}

impl SessionRow {
    /// Until when the session held its addresses (exclusive): the Stop, or the last update plus
    /// twice the interim interval.
    pub fn end(&self) -> u32 {
        match self.stop {
            Some(s) => s.max(self.start),
            None => self.last.saturating_add(self.interim.saturating_mul(2)).max(self.start),
        }
    }

    /// The row after `ev`. `prev` is the stored row, if any; `subscriber` is the event's
    /// subscriber id (used only for a new row: a session keeps its subscriber).
    pub fn merge(
        prev: Option<&SessionRow>,
        key: SessionKey,
        ev: &AcctEvent,
        subscriber: &str,
        default_interim: u32,
    ) -> SessionRow {
        let t = ev.time;
        let began = match (ev.status, ev.session_time) {
            (StatusType::Start, _) | (_, None) => t,
            (_, Some(d)) => t.saturating_sub(d),
        };
        let mut row = match prev {
            Some(p) => p.clone(),
            None => SessionRow {
                key,
                subscriber: subscriber.to_owned(),
                nas: ev.nas.clone(),
                start: began,
                last: began,
                interim: default_interim,
                stop: None,
                framed_ipv4: None,
                port_blocks: Vec::new(),
                ipv6: Vec::new(),
            },
        };
        row.start = row.start.min(began);
        if let Some(i) = ev.interim {
            row.interim = i;
        }
        match ev.status {
            StatusType::Stop => row.stop = Some(row.stop.map_or(t, |s| s.min(t)).max(row.start)),
            _ => row.last = row.last.max(t),
        }
        if row.framed_ipv4.is_none() {
            row.framed_ipv4 = ev.framed_ipv4;
        }
        for b in &ev.port_blocks {
            if !row.port_blocks.contains(b) && row.port_blocks.len() < MAX_ADDRESSES {
                row.port_blocks.push(*b);
            }
        }
        for p in &ev.ipv6 {
            if !row.ipv6.contains(p) && row.ipv6.len() < MAX_ADDRESSES {
                row.ipv6.push(*p);
            }
        }
        row.port_blocks.sort_unstable();
        row.ipv6.sort_unstable();
        row
    }

    /// The row closed at `at` (Accounting-On/Off of its NAS); unchanged if already stopped.
    pub fn closed_at(&self, at: u32) -> SessionRow {
        let mut row = self.clone();
        if row.stop.is_none() {
            row.stop = Some(at.min(self.end()).max(row.start));
        }
        row
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(status: StatusType, time: u32) -> AcctEvent {
        AcctEvent {
            status,
            user_name: Some("alice".into()),
            session_id: Some(b"s1".to_vec()),
            nas: "192.0.2.1".into(),
            time,
            interim: None,
            session_time: None,
            framed_ipv4: Some(Ipv4Addr::new(198, 51, 100, 7)),
            port_blocks: Vec::new(),
            ipv6: Vec::new(),
        }
    }

    fn apply(prev: Option<SessionRow>, e: &AcctEvent) -> SessionRow {
        SessionRow::merge(prev.as_ref(), e.key().unwrap(), e, "alice", 600)
    }

    #[test]
    fn start_interim_stop() {
        let r = apply(None, &ev(StatusType::Start, 1000));
        assert_eq!((r.start, r.end()), (1000, 2200));
        let r = apply(Some(r), &AcctEvent { interim: Some(300), ..ev(StatusType::InterimUpdate, 1300) });
        assert_eq!(r.end(), 1900);
        let r = apply(Some(r), &ev(StatusType::Stop, 1500));
        assert_eq!(r.end(), 1500);
        // A retransmitted Stop changes nothing; a late interim does not reopen it.
        assert_eq!(apply(Some(r.clone()), &ev(StatusType::Stop, 1500)), r);
        assert_eq!(apply(Some(r.clone()), &ev(StatusType::InterimUpdate, 1400)).end(), 1500);
    }

    #[test]
    fn order_does_not_matter_for_times() {
        let events = [
            ev(StatusType::Start, 1000),
            AcctEvent { session_time: Some(300), ..ev(StatusType::InterimUpdate, 1300) },
            AcctEvent { session_time: Some(500), ..ev(StatusType::Stop, 1500) },
        ];
        let forward = events.iter().fold(None, |r, e| Some(apply(r, e))).unwrap();
        let backward = events.iter().rev().fold(None, |r, e| Some(apply(r, e))).unwrap();
        assert_eq!(forward, backward);
        assert_eq!((forward.start, forward.end()), (1000, 1500));
    }

    #[test]
    fn stop_without_start_uses_session_time() {
        let r = apply(None, &AcctEvent { session_time: Some(3600), ..ev(StatusType::Stop, 10_000) });
        assert_eq!((r.start, r.end()), (6400, 10_000));
    }

    #[test]
    fn keys_separate_their_parts() {
        assert_ne!(SessionKey::new("a", b"bc", "d"), SessionKey::new("ab", b"c", "d"));
    }
}
