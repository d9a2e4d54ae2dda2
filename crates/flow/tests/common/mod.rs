//! Packets for the real exporters' tests: Ethernet/IPv4 frames and a pcap file of them, written
//! by hand (a few lines; no pcap crate needed for writing).
#![allow(clippy::unwrap_used, dead_code)]

use std::io::Write;
use std::path::Path;

fn checksum(b: &[u8]) -> u16 {
    let mut s: u32 = b.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))).sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// An Ethernet/IPv4/UDP or TCP frame.
pub fn frame(src: [u8; 4], dst: [u8; 4], proto: u8, sport: u16, dport: u16, flags: u8, payload: usize) -> Vec<u8> {
    let l4_len = if proto == 6 { 20 } else { 8 } + payload;
    let mut ip = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, proto, 0, 0];
    ip[2..4].copy_from_slice(&((20 + l4_len) as u16).to_be_bytes());
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut l4 = Vec::new();
    l4.extend_from_slice(&sport.to_be_bytes());
    l4.extend_from_slice(&dport.to_be_bytes());
    if proto == 6 {
        l4.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    } else {
        l4.extend_from_slice(&(l4_len as u16).to_be_bytes());
        l4.extend_from_slice(&[0, 0]);
    }
    l4.resize(l4_len, 0x61);
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    f.extend_from_slice(&ip);
    f.extend_from_slice(&l4);
    f
}

pub fn write_pcap(path: &Path, packets: &[(u32, Vec<u8>)]) {
    let mut f = std::fs::File::create(path).unwrap();
    f.write_all(&0xa1b2_c3d4u32.to_le_bytes()).unwrap();
    f.write_all(&2u16.to_le_bytes()).unwrap();
    f.write_all(&4u16.to_le_bytes()).unwrap();
    f.write_all(&[0; 8]).unwrap();
    f.write_all(&65535u32.to_le_bytes()).unwrap();
    f.write_all(&1u32.to_le_bytes()).unwrap(); // Ethernet
    for (i, (secs, p)) in packets.iter().enumerate() {
        f.write_all(&secs.to_le_bytes()).unwrap();
        f.write_all(&((i % 1000) as u32 * 1000).to_le_bytes()).unwrap();
        f.write_all(&(p.len() as u32).to_le_bytes()).unwrap();
        f.write_all(&(p.len() as u32).to_le_bytes()).unwrap();
        f.write_all(p).unwrap();
    }
}
