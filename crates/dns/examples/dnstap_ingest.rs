//! dnstap ingest rate on one core: Frame Streams framing + protobuf + DNS question decoding of a
//! realistic mix of client queries and responses, from memory (no socket).
//!
//! `cargo run --release -p mamori-dns --example dnstap_ingest [messages]`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use mamori_dns::dnstap::Session;
use mamori_dns::dnstap::decode::{Role, decode, encode_client_message};
use mamori_dns::dnstap::framestream::{ControlKind, DNSTAP_CONTENT_TYPE, encode_control, encode_data};

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2_000_000);
    let names = [
        "www.example.com.",
        "mail.google.com.",
        "x1f3a9.victim.example.jp.",
        "api.service.co.jp.",
        "cdn.images.example.net.",
    ];
    let types = [RecordType::A, RecordType::AAAA, RecordType::HTTPS, RecordType::TXT];
    let t = jiff::Timestamp::now();
    let mut payloads = Vec::new();
    for i in 0..64 {
        let mut m = Message::new();
        m.set_id(i as u16)
            .add_query(Query::query(Name::from_ascii(names[i % names.len()]).unwrap(), types[i % types.len()]));
        let role = if i % 2 == 1 {
            m.set_message_type(MessageType::Response).set_response_code(if i % 7 == 0 {
                ResponseCode::NXDomain
            } else {
                ResponseCode::NoError
            });
            Role::ClientResponse
        } else {
            Role::ClientQuery
        };
        let ip = format!("10.{}.{}.{}", i % 3, i % 200, i % 250);
        payloads.push(encode_client_message(
            role,
            ip.parse().unwrap(),
            40000 + i as u16,
            t,
            &m.to_vec().unwrap(),
            b"resolver-1",
        ));
    }
    let mut stream = encode_control(ControlKind::Ready, &[DNSTAP_CONTENT_TYPE]);
    stream.extend(encode_control(ControlKind::Start, &[DNSTAP_CONTENT_TYPE]));
    for i in 0..n {
        encode_data(&mut stream, &payloads[i % payloads.len()]);
    }
    let bytes = stream.len();
    let start = Instant::now();
    let mut s = Session::default();
    let (mut ok, mut bad) = (0u64, 0u64);
    let mut at = 0;
    // Read in 64 KiB chunks as the socket loop does.
    let mut buf: Vec<u8> = Vec::with_capacity(256 * 1024);
    while at < stream.len() {
        let end = (at + 64 * 1024).min(stream.len());
        buf.extend_from_slice(&stream[at..end]);
        at = end;
        let fed = s
            .feed(&buf, |p| match p.map(decode) {
                Some(Ok(e)) => {
                    ok += 1;
                    std::hint::black_box(e);
                }
                _ => bad += 1,
            })
            .unwrap();
        buf.drain(..fed.consumed);
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{ok} messages ({bad} bad), {:.1} MB, {secs:.3} s: {:.0} messages/s, {:.0} MB/s on one core",
        bytes as f64 / 1e6,
        ok as f64 / secs,
        bytes as f64 / 1e6 / secs
    );
}
