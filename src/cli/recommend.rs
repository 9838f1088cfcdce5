//! `augur recommend`: the current recommendations of a controller, from its
//! history store, its policy (the file and the versions applied on top) and
//! its settings.
//!
//! It reads what the running daemon writes (the store is SQLite in WAL mode,
//! readable while the daemon writes), trains a predictor on the history as
//! it unfolded (each cycle sees only what came before it, as the daemon's
//! own would have), and recommends at the time of the last observation.

use std::path::PathBuf;

use anyhow::{Context, anyhow};
use augur::daemon::config::load;
use augur::orchestrate::versions::effective_policy;
use augur::policy::Policy;
use augur::policy::coverage::Coverage;
use augur::recommend::{RecommendInput, recommend};
use augur::store::learn::learn_history;
use augur::store::versions::VersionStore;
use augur::store::{Store, StoreSettings};

/// Arguments of `augur recommend`.
#[derive(Debug, clap::Args)]
pub struct RecommendArgs {
    /// The daemon's configuration (its policy, history store, and
    /// [predictor], [scan], [risk] and [recommend] settings).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Seconds between the prediction cycles the history is learned with.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub cycle: i64,
    /// Print JSON (one object per recommendation, with its factors).
    #[arg(long)]
    pub json: bool,
}

/// Prints the recommendations.
pub fn run(args: &RecommendArgs) -> anyhow::Result<()> {
    let loaded = load(Some(&args.config), std::env::vars()).map_err(|e| anyhow!("{e}"))?;
    let config = loaded.config;
    let store_dir = config.observer.store.clone().ok_or_else(|| {
        anyhow!(
            "{}: [observer] store is not set: there is no history to learn from",
            args.config.display()
        )
    })?;
    let policy_path = config
        .policy
        .clone()
        .ok_or_else(|| anyhow!("{}: policy is not set", args.config.display()))?;
    let text = std::fs::read_to_string(&policy_path)
        .with_context(|| format!("cannot read the policy {}", policy_path.display()))?;
    let base = Policy::parse(
        &text,
        &policy_path.display().to_string(),
        std::time::SystemTime::now(),
    )
    .map_err(|e| anyhow!("{e}"))?;
    let history = match VersionStore::open_existing(&store_dir)? {
        Some(versions) => versions.list()?,
        None => Vec::new(),
    };
    let policy = effective_policy(&base, &history);
    let store = Store::open(&store_dir, StoreSettings::default())?;
    let params = config.predictor.check()?;
    let mut learned = learn_history(&store, params, config.scan, args.cycle)?;
    let now = learned.aggregator.closed_until();
    learned.scans.expire(now);
    let set = learned
        .predictor
        .predict(&learned.aggregator, &learned.scans, now);
    if !set.trained {
        println!(
            "not enough history to predict yet ({} cycles learned; a model needs both used and unused keys a horizon apart)",
            learned.cycles
        );
        return Ok(());
    }
    let scanning = learned.scans.scanning(now);
    let coverage = Coverage::new(&policy, learned.aggregator.endpoints());
    let input = RecommendInput {
        predictions: &set.predictions,
        aggregator: &learned.aggregator,
        policy: &policy,
        coverage: &coverage,
        scanning: &scanning,
    };
    let recommendations = recommend(&input, &config.recommend, &config.risk, now);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&recommendations)?);
        return Ok(());
    }
    let quality = learned.predictor.quality();
    println!(
        "{} candidate keys, {} recommendations (model: {} predictions scored, ROC AUC {:.3}, Brier {:.4})",
        set.predictions.len(),
        recommendations.len(),
        quality.examples,
        quality.roc_auc,
        quality.brier
    );
    for r in &recommendations {
        println!("{}", r.one_line());
        let factors: Vec<String> = r
            .risk
            .factors
            .iter()
            .map(|(f, c)| format!("{f} ({c:.2})"))
            .collect();
        if !factors.is_empty() {
            println!("    factors: {}", factors.join(", "));
        }
    }
    Ok(())
}
