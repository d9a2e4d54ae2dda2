//! The fast path against the crate path: the same datagrams through a [`Decoder`] with the fast
//! path and one without must give the same [`Decoded`] values, datagram by datagram.

use std::net::SocketAddr;

use super::super::decode::{Decoded, Decoder};
use super::super::wire::{self, Sets, WireFlow};

/// A template field: id, length, enterprise number (IPFIX only).
type Field = (u16, u16, Option<u32>);

enum Set<'a> {
    /// A data template (v9 set 0, IPFIX set 2).
    Template(u16, &'a [Field]),
    /// A data set: template id and the body (records and any padding).
    Data(u16, Vec<u8>),
}

fn v9(secs: u32, source: u32, sets: &[Set<'_>]) -> Vec<u8> {
    let mut b = Vec::new();
    for x in [9u16, sets.len() as u16] {
        b.extend_from_slice(&x.to_be_bytes());
    }
    for x in [1000u32, secs, 0, source] {
        b.extend_from_slice(&x.to_be_bytes());
    }
    put_sets(&mut b, sets, 0);
    b
}

fn ipfix(secs: u32, domain: u32, sets: &[Set<'_>]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&10u16.to_be_bytes());
    b.extend_from_slice(&0u16.to_be_bytes());
    for x in [secs, 0, domain] {
        b.extend_from_slice(&x.to_be_bytes());
    }
    put_sets(&mut b, sets, 2);
    let len = b.len() as u16;
    b[2..4].copy_from_slice(&len.to_be_bytes());
    b
}

fn put_sets(b: &mut Vec<u8>, sets: &[Set<'_>], template_set: u16) {
    for s in sets {
        let start = b.len();
        match s {
            Set::Template(id, fields) => {
                b.extend_from_slice(&template_set.to_be_bytes());
                b.extend_from_slice(&[0, 0]);
                b.extend_from_slice(&id.to_be_bytes());
                b.extend_from_slice(&(fields.len() as u16).to_be_bytes());
                for (fid, len, pen) in *fields {
                    let fid = if pen.is_some() { fid | 0x8000 } else { *fid };
                    b.extend_from_slice(&fid.to_be_bytes());
                    b.extend_from_slice(&len.to_be_bytes());
                    if let Some(pen) = pen {
                        b.extend_from_slice(&pen.to_be_bytes());
                    }
                }
            }
            Set::Data(id, body) => {
                b.extend_from_slice(&id.to_be_bytes());
                b.extend_from_slice(&[0, 0]);
                b.extend_from_slice(body);
            }
        }
        let len = (b.len() - start) as u16;
        b[start + 2..start + 4].copy_from_slice(&len.to_be_bytes());
    }
}

/// Feeds `datagrams` to both decoders; asserts equal outputs and returns them and how many
/// datagrams the fast path decoded.
fn both(datagrams: &[(SocketAddr, Vec<u8>)]) -> (Vec<Decoded>, u64) {
    let mut fast = Decoder::new(16, 1);
    let mut slow = Decoder::new(16, 1).with_fast_path(false);
    let mut outs = Vec::new();
    for (i, (ex, dg)) in datagrams.iter().enumerate() {
        let a = fast.decode(*ex, dg);
        let b = slow.decode(*ex, dg);
        assert_eq!(a, b, "datagram {i}: {dg:02x?}");
        outs.push(a);
    }
    assert_eq!(slow.fast_decoded(), 0);
    (outs, fast.fast_decoded())
}

fn ex() -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 1], 2055))
}

fn wire_flows(n: u8) -> Vec<WireFlow> {
    (0..n)
        .map(|i| WireFlow {
            src: [198, 51, 100, i].into(),
            dst: [203, 0, 113, i.wrapping_mul(7)].into(),
            protocol: if i % 2 == 0 { 6 } else { 17 },
            src_port: 1000 + u16::from(i),
            dst_port: 53,
            tcp_flags: i,
            input_if: u16::from(i) * 3,
            packets: u32::from(i) + 1,
            bytes: 100 * (u32::from(i) + 1),
        })
        .collect()
}

#[test]
fn wire_stream_v9_and_ipfix_take_the_fast_path() {
    let flows = wire_flows(30);
    let mut dgs = vec![(ex(), wire::v9(1, 1, &Sets { template: true, sampling: Some(100), flows: &flows[..3] }))];
    for chunk in flows.chunks(7) {
        dgs.push((ex(), wire::v9(2, 1, &Sets { template: false, sampling: None, flows: chunk })));
    }
    dgs.push((ex(), wire::ipfix(3, 9, &Sets { template: true, sampling: Some(10), flows: &flows[..2] })));
    for chunk in flows.chunks(11) {
        dgs.push((ex(), wire::ipfix(4, 9, &Sets { template: false, sampling: None, flows: chunk })));
    }
    let (outs, hits) = both(&dgs);
    assert_eq!(hits, 5 + 3, "every data-only datagram");
    // Sampling from the options data scales the fast path's records too.
    assert_eq!(outs[1].flows[0].packets, 100);
    assert_eq!(outs[1].flows[0].bytes, 10_000);
    assert_eq!(outs.last().map(|o| o.flows.len()), Some(8));
    assert_eq!(outs.iter().map(|o| o.flows.len()).sum::<usize>(), 3 + 30 + 2 + 30);
}

#[test]
fn v9_reduced_sizes_ignored_fields_ipv6_and_padding() {
    // Bytes in 8 bytes, packets in 2, input ifIndex in 4, the protocol, a MAC, times, ToS.
    let t: &[Field] = &[
        (21, 4, None),
        (8, 4, None),
        (12, 4, None),
        (56, 6, None),
        (4, 1, None),
        (5, 1, None),
        (7, 2, None),
        (11, 2, None),
        (6, 1, None),
        (10, 4, None),
        (2, 2, None),
        (1, 8, None),
        (22, 4, None),
    ];
    let rec = |i: u8, proto: u8| {
        let mut r = vec![0, 0, 1, i];
        r.extend_from_slice(&[10, 0, 0, i, 203, 0, 113, i]);
        r.extend_from_slice(&[2, 0, 0, 0, 0, i]);
        r.extend_from_slice(&[proto, 0]);
        r.extend_from_slice(&[0x13, 0x88, 0, 53, 0x12]);
        r.extend_from_slice(&[0, 0, 0, i]);
        r.extend_from_slice(&[0, i]);
        r.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0, i]);
        r.extend_from_slice(&[0, 0, 2, i]);
        r
    };
    let t6: &[Field] = &[(27, 16, None), (28, 16, None), (4, 1, None), (2, 4, None), (1, 4, None)];
    let rec6 = |i: u8| {
        let mut r = vec![0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, i];
        r.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, i]);
        r.extend_from_slice(&[58, 0, 0, 0, 9, 0, 0, 4, 0]);
        r
    };
    let mut body: Vec<u8> = (0..5).flat_map(|i| rec(i, 17)).collect();
    let padded = {
        let mut b = body.clone();
        b.extend_from_slice(&[0, 0, 0]);
        b
    };
    body.extend(rec(9, 6));
    let dgs = vec![
        (ex(), v9(1, 0, &[Set::Template(300, t), Set::Template(301, t6)])),
        (ex(), v9(2, 0, &[Set::Data(300, body.clone())])),
        (ex(), v9(3, 0, &[Set::Data(300, padded), Set::Data(301, (0..3).flat_map(rec6).collect())])),
        // Protocols the crate's enum doesn't parse back to themselves: the crate path decides.
        (ex(), v9(4, 0, &[Set::Data(300, [rec(1, 200), rec(2, 255), rec(3, 145)].concat())])),
        (ex(), v9(5, 0, &[Set::Data(300, [rec(1, 255), rec(2, 144)].concat())])),
    ];
    let (outs, hits) = both(&dgs);
    assert_eq!(hits, 3);
    assert_eq!(outs[1].flows.len(), 6);
    let f = &outs[1].flows[5];
    assert_eq!((f.protocol, f.src_port, f.dst_port, f.tcp_flags, f.input_if), (6, 5000, 53, 0x12, 9));
    assert_eq!((f.packets, f.bytes), (9, (1 << 16) + 9));
    assert_eq!(outs[2].flows.len(), 5 + 3);
    assert_eq!(outs[2].flows[5].dst.to_string(), "2001:db8::100");
    assert_eq!(outs[2].flows[5].protocol, 58);
}

#[test]
fn ipfix_enterprise_fields_variable_length_and_refresh() {
    // Enterprise fields (a known and an unknown enterprise) between the fields mamori reads.
    let t: &[Field] = &[
        (8, 4, None),
        (100, 4, Some(9)),
        (12, 4, None),
        (1, 4, Some(4_242)),
        (4, 1, None),
        (7, 2, None),
        (11, 2, None),
        (152, 8, None),
        (2, 4, None),
        (1, 2, None),
    ];
    let rec = |i: u8| {
        let mut r = vec![192, 0, 2, i, 0xde, 0xad, 0xbe, 0xef, 203, 0, 113, i, 0xff, 0xff, 0xff, 0xff, 17];
        r.extend_from_slice(&[0, 123, 0x9c, 0x40, 0, 0, 1, 0x80, 0, 0, 0, 0, 0, 0, 0, 7, 0x01, 0xd4]);
        r
    };
    // A variable-length interfaceName: the crate path decodes these. netflow_parser 0.9 counts
    // the variable-length marker as 65 535 bytes against its template size limit (65 535), so
    // it refuses 401 (its data is then "no template", and the sets after it in the message go
    // unread) and learns 402, a lone such field.
    let tv: &[Field] = &[(8, 4, None), (12, 4, None), (82, u16::MAX, None), (2, 4, None)];
    let lone: &[Field] = &[(82, u16::MAX, None)];
    let recv = |i: u8, name: &[u8]| {
        let mut r = vec![192, 0, 2, i, 203, 0, 113, i, name.len() as u8];
        r.extend_from_slice(name);
        r.extend_from_slice(&[0, 0, 0, i]);
        r
    };
    let refreshed: &[Field] = &[(12, 4, None), (8, 4, None), (2, 8, None)];
    let dgs = vec![
        (ex(), ipfix(1, 5, &[Set::Template(402, lone), Set::Template(400, t), Set::Template(401, tv)])),
        (ex(), ipfix(2, 5, &[Set::Data(400, (0..4).flat_map(rec).collect())])),
        (ex(), ipfix(3, 5, &[Set::Data(400, [rec(7), vec![0; 3]].concat())])),
        (ex(), ipfix(4, 5, &[Set::Data(401, [recv(1, b"ge-0/0/1"), recv(2, b"")].concat())])),
        (ex(), ipfix(4, 5, &[Set::Data(402, b"\x08ge-0/0/1\x00\xff\x00\x03xyz".to_vec())])),
        // The same id, redefined: the compiled form follows the crate's new template.
        (ex(), ipfix(5, 5, &[Set::Template(400, refreshed)])),
        (ex(), ipfix(6, 5, &[Set::Data(400, [[203, 0, 113, 1, 192, 0, 2, 1, 0, 0, 0, 0, 0, 0, 0, 5]].concat())])),
        // A data set for a template this domain never sent.
        (ex(), ipfix(7, 5, &[Set::Data(999, vec![0; 8])])),
    ];
    let (outs, hits) = both(&dgs);
    assert_eq!(hits, 3, "the variable-length templates and the unknown one took the crate path");
    assert_eq!(outs[1].flows.len(), 4);
    let f = &outs[1].flows[3];
    assert_eq!((f.protocol, f.src_port, f.dst_port, f.packets, f.bytes), (17, 123, 40_000, 7, 468));
    assert_eq!(outs[2].flows.len(), 1);
    assert_eq!((outs[3].flows.len(), outs[3].no_template), (0, 1));
    assert_eq!((outs[4].flows.len(), outs[4].no_template, outs[4].malformed), (0, 0, false));
    assert_eq!(outs[6].flows[0].src.to_string(), "192.0.2.1");
    assert_eq!(outs[6].flows[0].packets, 5);
    assert_eq!(outs[7].no_template, 1);
}

/// xorshift64*, for reproducible mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn mutated_datagrams_decode_alike() {
    // Valid streams, then the same with bytes flipped, lengths changed and tails cut: whatever
    // the fast path accepts it must decode as the crate does, and hand the rest to the crate.
    let flows = wire_flows(20);
    let base = [
        wire::v9(1, 1, &Sets { template: true, sampling: Some(4), flows: &flows[..2] }),
        wire::v9(2, 1, &Sets { template: false, sampling: None, flows: &flows }),
        wire::ipfix(1, 2, &Sets { template: true, sampling: Some(4), flows: &flows[..2] }),
        wire::ipfix(2, 2, &Sets { template: false, sampling: None, flows: &flows }),
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut dgs = Vec::new();
    for _ in 0..3000 {
        let mut dg = base[(rng.next() % 4) as usize].clone();
        match rng.next() % 6 {
            0 => {}
            1 | 2 => {
                for _ in 0..1 + rng.next() % 3 {
                    let at = (rng.next() as usize) % dg.len();
                    dg[at] = rng.next() as u8;
                }
            }
            3 => {
                let at = 2 + (rng.next() as usize) % 40;
                if at + 1 < dg.len() {
                    dg[at] = 0;
                    dg[at + 1] = rng.next() as u8;
                }
            }
            4 => dg.truncate((rng.next() as usize) % dg.len()),
            _ => dg.extend((0..rng.next() % 8).map(|_| rng.next() as u8)),
        }
        // Re-sent templates now and then, so later data finds them.
        if rng.next() % 10 == 0 {
            dgs.push((ex(), base[(rng.next() % 2 * 2) as usize].clone()));
        }
        dgs.push((ex(), dg));
    }
    let (_, hits) = both(&dgs);
    assert!(hits > 500, "the fast path decoded {hits}");
}

/// The fast path reads a protocol byte as itself where `protocol_identity` says the crate's
/// `ProtocolTypes` parses it back to itself; anything else takes the crate path.
#[test]
fn protocol_identity_is_the_crates_round_trip() {
    use netflow_parser::protocol::ProtocolTypes;
    for b in 0..=255u8 {
        assert_eq!(super::protocol_identity(b), u8::from(ProtocolTypes::from(b)) == b, "{b}");
    }
}
