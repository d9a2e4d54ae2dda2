//! Reads and parses a CDR file and does nothing else: the share of a replay's time that is
//! reading and parsing (BENCHMARKS.md, "Telephone replay").
//!
//! `cargo build --release -p mamori-phone --example cdr_parse_only`, then `cdr_parse_only FILE`:
//! prints the good rows, the bad rows and a checksum of the charges (so that nothing is optimised
//! away).

use mamori_phone::cdr::reader::CdrReader;
use mamori_phone::numbering::NumberingPlan;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: cdr_parse_only FILE")?;
    let mut reader = CdrReader::new(std::fs::File::open(path)?, NumberingPlan::new())?;
    let (mut good, mut checksum) = (0u64, 0u64);
    while reader
        .next_with(|row| {
            if let Ok(c) = row {
                good += 1;
                checksum = checksum.wrapping_add(c.charge_jpy ^ c.call_id.len() as u64);
            }
        })?
        .is_some()
    {}
    println!("{good} good rows, {} bad, checksum {checksum}", reader.bad_rows);
    Ok(())
}
