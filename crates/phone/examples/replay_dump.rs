//! The replay with everything it reports, for diffing two builds on the same input:
//! `replay_dump FILE SUBS` prints the events (as `mamori replay cdr` does) on stdout and every
//! malformed row (the CLI shows only the first 20) and the summary on stderr.
//!
//! The CLI's own scratch-database settings are used (default config, `durable: false`).

use std::io::{BufWriter, Write};
use std::sync::Arc;

use mamori_core::config::Config;
use mamori_phone::cdr::reader::{BadRow, CdrFileError};
use mamori_phone::engine::{PhoneEvent, Subscribers};
use mamori_phone::replay::{Database, ReplaySink, replay};
use mamori_store::{SqliteStore, StoreOptions};

struct Dump<W: Write> {
    out: BufWriter<W>,
}

impl<W: Write> ReplaySink for Dump<W> {
    fn event(&mut self, e: &PhoneEvent) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, e)?;
        self.out.write_all(b"\n")
    }
    fn bad_row(&mut self, b: &BadRow) {
        eprintln!("{b}");
    }
    fn stopped(&mut self, e: &CdrFileError) {
        eprintln!("stopped: {e}");
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(file), Some(subs)) = (args.get(1), args.get(2)) else {
        return Err("usage: replay_dump FILE SUBSCRIBERS".into());
    };
    let config = Config::default();
    let dir = tempfile::tempdir()?;
    let store = Arc::new(SqliteStore::open(
        &dir.path().join("mamori.sqlite"),
        StoreOptions {
            checkpoint_every: config.ledger.checkpoint_every,
            group_commit_max: config.ledger.group_commit_max,
            durable: false,
            single_thread: true,
        },
    )?);
    let subscribers = Subscribers::load(std::path::Path::new(subs))?;
    let input = std::fs::File::open(file)?;
    let mut sink = Dump { out: BufWriter::new(std::io::stdout().lock()) };
    let summary = replay(config, input, subscribers, Database::Fresh(store), &mut sink)?;
    sink.out.flush()?;
    eprintln!("summary: {}", serde_json::to_string(&summary)?);
    Ok(())
}
