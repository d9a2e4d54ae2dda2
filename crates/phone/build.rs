//! Writes the assigned country calling codes (1–999) from libphonenumber's metadata, as the
//! `phonenumber` crate has it, into a table compiled into the crate.
//!
//! Loading that metadata at run time compiles every number-format regular expression in it
//! (about a billion instructions, 0.2–0.3 s, at every start of a replay), although the numbering
//! plan only needs to know which calling codes exist. The crate stays the source of truth: the
//! same crate and version (one `Cargo.lock`) answer here, and a test checks the table against
//! the crate at run time.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo::rerun-if-changed=build.rs");
    let db = &*phonenumber::metadata::DATABASE;
    let mut out = String::from(
        "/// Country calling codes with at least one region in libphonenumber's metadata (generated).\n\
         pub(crate) const ASSIGNED_CODES: &[u16] = &[",
    );
    for code in 1u16..1000 {
        if db.region(&code).is_some_and(|r| !r.is_empty()) {
            write!(out, "{code},")?;
        }
    }
    out.push_str("];\n");
    let dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(dir.join("assigned_codes.rs"), out)?;
    Ok(())
}
