//! `mamori subscribers`: the directory notifications are addressed from.

use std::io::Read;
use std::process::ExitCode;

use anyhow::Context;
use mamori_core::governance::Governance;
use mamori_core::subject::Actor;

use crate::cli::SubscribersCommand;

pub(crate) fn subscribers_cmd(gov: &Governance, c: SubscribersCommand) -> anyhow::Result<ExitCode> {
    match c {
        SubscribersCommand::Import { file, by } => {
            let origin = file.display().to_string();
            let input: Box<dyn Read> = if origin == "-" {
                Box::new(std::io::stdin().lock())
            } else {
                Box::new(std::fs::File::open(&file).with_context(|| format!("opening {origin}"))?)
            };
            let report = mamori_notify::contacts::import(gov, std::io::BufReader::new(input), &origin, &Actor(by.by))?;
            for r in &report.rejected {
                eprintln!("{origin}:{}: skipped: {}", r.line, r.reason);
            }
            println!("imported {} subscriber(s); {} row(s) skipped", report.imported, report.rejected.len());
            Ok(ExitCode::SUCCESS)
        }
    }
}
