//! `bloodraven rules`: the catalog as JSON or as the Markdown of `docs/rules.md`.

use std::process::ExitCode;

use clap::{Args, ValueEnum};

use crate::policy::rules::Catalog;
use crate::policy::rules::docs::{markdown, rule_infos};

#[derive(Debug, Args)]
pub struct RulesArgs {
    #[arg(short, long, value_enum, default_value_t = RulesFormat::Json)]
    pub format: RulesFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RulesFormat {
    Json,
    Markdown,
}

pub fn run(args: &RulesArgs) -> ExitCode {
    let catalog = match Catalog::builtin() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bloodraven rules: {e}");
            return ExitCode::from(2);
        }
    };
    match args.format {
        RulesFormat::Markdown => print!("{}", markdown(&catalog)),
        RulesFormat::Json => match serde_json::to_string_pretty(&rule_infos(&catalog)) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("bloodraven rules: {e}");
                return ExitCode::from(2);
            }
        },
    }
    ExitCode::SUCCESS
}
