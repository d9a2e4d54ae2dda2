//! Any string as a dialled number: classified or refused, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mamori_phone::numbering::{Destination, NumberingPlan};

fuzz_target!(|data: &str| {
    let plan = NumberingPlan::new();
    if let Ok(Destination::International(cc)) = plan.classify(data) {
        assert!(plan.is_assigned(cc.0));
    }
});
