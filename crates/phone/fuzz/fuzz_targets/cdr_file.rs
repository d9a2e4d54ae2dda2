//! Any bytes as a CDR file: the reader never panics, every row is a CDR or a bad row with a line
//! number, and the reorder buffer releases every good row exactly once.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mamori_phone::cdr::order::Reorder;
use mamori_phone::cdr::reader::CdrReader;
use mamori_phone::numbering::NumberingPlan;

const HEADER: &[u8] = b"call_id,start_time,end_time,line_id,calling_number,called_number,source_ip,charge_jpy\n";

fuzz_target!(|data: &[u8]| {
    let mut file = HEADER.to_vec();
    file.extend_from_slice(data);
    let Ok(mut r) = CdrReader::new(file.as_slice(), NumberingPlan::new()) else { return };
    let mut reorder = Reorder::new(jiff::SignedDuration::from_mins(5));
    let (mut good, mut released) = (0u64, 0u64);
    while let Ok(Some(row)) = r.next_row() {
        match row {
            Ok(c) => {
                assert!(c.end >= c.start);
                good += 1;
                reorder.push(c, &mut |_| released += 1);
            }
            Err(bad) => assert!(bad.line >= 2),
        }
    }
    reorder.finish(&mut |_| released += 1);
    assert_eq!(good, released + reorder.duplicates);
});
