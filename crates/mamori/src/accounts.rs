//! `mamori accounts`: people who use the console and the API.

use std::io::BufRead;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use mamori_core::account::{Role, UiLanguage};
use mamori_core::governance::Governance;
use mamori_core::subject::Actor;
use mamori_server::auth::Accounts;

use crate::cli::AccountsCommand;

fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("reading the password from standard input")?;
    let pw = line.trim_end_matches(['\r', '\n']).to_owned();
    if pw.is_empty() {
        bail!("no password on standard input (pipe it in, e.g. `printf '%s\\n' \"$PW\" | mamori accounts add …`)");
    }
    Ok(pw)
}

fn role(s: &str) -> anyhow::Result<Role> {
    s.parse::<Role>().map_err(anyhow::Error::msg)
}

/// Runs an `accounts` subcommand.
pub(crate) fn accounts_cmd(gov: Governance, c: AccountsCommand) -> anyhow::Result<ExitCode> {
    let gov = Arc::new(gov);
    let ttl = gov.config().server.session_ttl;
    let accounts = Accounts::new(gov, ttl);
    match c {
        AccountsCommand::List => {
            for a in accounts.list()? {
                println!(
                    "{:<24} {:<9} {} {}",
                    a.name,
                    a.role,
                    a.language.as_str(),
                    if a.disabled { "disabled" } else { "" }
                );
            }
        }
        AccountsCommand::Add { name, role: r, language, password_stdin: _, by } => {
            let language = language.parse::<UiLanguage>().map_err(anyhow::Error::msg)?;
            let a = accounts.create(&name, role(&r)?, &read_password()?, language, &Actor(by))?;
            println!("account {} created with role {}", a.name, a.role);
        }
        AccountsCommand::SetRole { name, role: r, by } => {
            let a = accounts.set_role(&name, role(&r)?, &Actor(by))?;
            println!("{} is now {}", a.name, a.role);
        }
        AccountsCommand::Passwd { name, by } => {
            accounts.set_password(&name, &read_password()?, &Actor(by))?;
            println!("password of {name} changed");
        }
        AccountsCommand::Disable { name, by } => {
            accounts.set_disabled(&name, true, &Actor(by))?;
            println!("{name} disabled; their sessions ended");
        }
        AccountsCommand::Enable { name, by } => {
            accounts.set_disabled(&name, false, &Actor(by))?;
            println!("{name} enabled");
        }
    }
    Ok(ExitCode::SUCCESS)
}
