//! `augur scenario`: writes a generated, labelled trace and its inventory
//! for replay evaluation.

use std::path::PathBuf;
use std::time::Instant;

use augur::replay::scenario::{ScenarioParams, generate, write_trace};
use augur::replay::trace::Truth;

/// Arguments of `augur scenario`.
#[derive(Debug, clap::Args)]
pub struct ScenarioArgs {
    /// Seeds the generator: the same seed and days give the same files,
    /// byte for byte.
    #[arg(long, value_name = "N")]
    pub seed: u64,
    /// Days of traffic (the stories fall on days 4, 7, 9 and 11; the weekly
    /// batch on Sundays, days 6 and 13).
    #[arg(long, value_name = "D", default_value_t = 14,
          value_parser = clap::value_parser!(u32).range(1..=366))]
    pub days: u32,
    /// The trace: flat CSV with a `label` column (benign / attack).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// The inventory: VMs, their addresses and `tier` labels (JSON).
    #[arg(long, value_name = "FILE")]
    pub inventory: PathBuf,
}

/// Generates the scenario and writes both files.
pub fn run(args: &ScenarioArgs) -> anyhow::Result<()> {
    let params = ScenarioParams {
        seed: args.seed,
        days: args.days,
        ..ScenarioParams::default()
    };
    let started = Instant::now();
    let trace = generate(&params);
    let generated = started.elapsed();
    write_trace(&trace, &args.out, &args.inventory)?;
    println!(
        "{}: {} flows ({} attack) over {} days, {} VMs; generated in {:.2} s, written to {} and {}",
        trace.name,
        trace.events.len(),
        trace.count(Truth::Attack),
        args.days,
        trace.inventory.labels().len(),
        generated.as_secs_f64(),
        args.out.display(),
        args.inventory.display(),
    );
    Ok(())
}
