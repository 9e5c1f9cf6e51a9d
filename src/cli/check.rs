//! `gatewatch check`: validate the feeds and units files, print what loads.

use super::{EXIT_SKIPPED, IntelArgs};
use crate::run::config::load_inputs;
use anyhow::Result;
use std::process::ExitCode;

pub fn cmd_check(a: IntelArgs) -> Result<ExitCode> {
    let inputs = load_inputs(&a.config()?)?;
    println!("feeds ({}):", a.feeds.display());
    super::feeds::print_feeds(&inputs.snapshot, &inputs.reports, 10, false);
    let units = &inputs.units;
    println!("units ({}): {}", a.units.display(), units.units().len());
    for u in units.units() {
        let nets: Vec<String> = u.nets.iter().map(|n| n.to_string()).collect();
        println!("  {:<10} {:<40} {}", u.code, u.name, nets.join(" "));
    }
    let failed = inputs.reports.iter().any(|r| r.failed.is_some());
    Ok(if failed {
        ExitCode::from(EXIT_SKIPPED)
    } else {
        ExitCode::SUCCESS
    })
}
