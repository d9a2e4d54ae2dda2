//! The `mamori` binary: the command line over the kernel, the store and the service.

mod accounts;
mod attribution;
mod cli;
mod commands;
mod dns;
mod flow;
mod live;
mod phone;
mod replay;
mod reports_import;
mod subscribers;

use std::process::ExitCode;

use clap::Parser;

/// Exit code of errors (bad input, broken config, unusable database).
const EXIT_ERROR: u8 = 2;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            // A closed pipe (`mamori audit export | head`) is not an error.
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}
