//! `mamori phone …`: the telephone family's operator commands.

use std::process::ExitCode;

use anyhow::Context;
use mamori_core::catalog::MeasureId;
use mamori_core::governance::{Governance, Proposal};
use mamori_core::store::ActionFilter;
use mamori_core::subject::{Actor, SubscriberId, Target};
use mamori_phone::publish::{self, Lang};
use serde_json::json;

use crate::cli::PhoneCommand;
use crate::commands::instant;

/// Runs one `phone` subcommand.
pub fn phone_cmd(gov: &Governance, c: PhoneCommand) -> anyhow::Result<ExitCode> {
    match c {
        PhoneCommand::RequestSuspension { line, subscriber, method, by } => {
            let subscriber = SubscriberId(subscriber.unwrap_or_else(|| line.clone()));
            let proposal = Proposal {
                subscriber: Some(subscriber),
                subscriber_request: Some(method.clone()),
                ..Proposal::new(
                    MeasureId::PhoneSuspendOnRequest,
                    Target::Line(line.clone()),
                    Actor(by.by),
                    json!({"request": method}),
                )
            };
            let d = gov.propose(proposal)?;
            if d.existing {
                println!("line {line} already has {} ({})", d.action.id, d.action.state.as_str());
            } else {
                println!(
                    "{} {}: international calls of line {line} suspended on the subscriber's request; lift with `mamori actions lift {} --reason …`",
                    d.action.id,
                    d.action.state.as_str(),
                    d.action.id
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        PhoneCommand::Publish { from, to, out, by } => {
            let (from, to) = (instant(&from)?, instant(&to)?);
            anyhow::ensure!(from < to, "--from must be before --to");
            let actions = gov.store().actions(&ActionFilter::default())?;
            let d = publish::fraud_destinations(&actions, from, to);
            std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
            let write = |name: &str, body: String| {
                let path = out.join(name);
                std::fs::write(&path, body).with_context(|| format!("cannot write {}", path.display()))
            };
            write("fraud-destinations.json", serde_json::to_string_pretty(&d)?)?;
            write("fraud-destinations.ja.html", publish::fraud_destinations_html(&d, Lang::Ja))?;
            write("fraud-destinations.en.html", publish::fraud_destinations_html(&d, Lang::En))?;
            // The publication is itself an action of its measure, with the aggregate as evidence.
            let codes: Vec<u16> = d.countries.iter().map(|c| c.calling_code).collect();
            let decision = gov.propose(Proposal::new(
                MeasureId::PhonePublishFraudDestinations,
                Target::Network,
                Actor(by.by),
                json!({"from": d.from, "to": d.to, "countries": codes}),
            ))?;
            println!(
                "{} countries published to {} ({}, {})",
                d.countries.len(),
                out.display(),
                decision.action.id,
                decision.action.state.as_str()
            );
            Ok(ExitCode::SUCCESS)
        }
        PhoneCommand::Advice { lang } => {
            print!("{}", publish::advice_html(Lang::parse(&lang)));
            Ok(ExitCode::SUCCESS)
        }
    }
}
