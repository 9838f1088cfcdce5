//! `augur replay`: augur's decisions over a recorded trace in simulated
//! time, scored against three baselines.

use std::path::PathBuf;

use anyhow::Context;
use augur::daemon::config::{Interval, load};
use augur::policy::Policy;
use augur::replay::score::Scorecard;
use augur::replay::trace::{Trace, load_trace, vm_from_internal, vm_from_local};
use augur::replay::{ReplayReport, ReplaySettings, replay};
use ipnet::IpNet;

use super::history::ImportFormat;
use augur::predict::ModelFamily;

/// Arguments of `augur replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The trace: Zeek conn.log, or flat CSV / JSON-lines flows (`.xz`
    /// files are read as they are). Labels (benign/attack) only score.
    #[arg(long, value_name = "FILE")]
    pub trace: PathBuf,
    /// The trace's format.
    #[arg(long, value_enum, default_value = "csv")]
    pub format: ImportFormat,
    /// Inventory mapping addresses to VM ids and labels.
    #[arg(long, value_name = "FILE")]
    pub inventory: Option<PathBuf>,
    /// Addresses inside these networks are VMs (named `vm-ADDRESS`,
    /// labelled by their /24) when no inventory lists them. Repeatable.
    /// Without it, a Zeek log's local marks (`local_orig`, `local_resp`)
    /// say which addresses are VMs, and without those or an inventory, the
    /// private ranges.
    #[arg(long, value_name = "CIDR")]
    pub internal: Vec<IpNet>,
    /// The operator's static policy (empty if none): where every strategy
    /// starts after learning.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// augur's configuration, for its [predictor], [scan], [risk] and
    /// [recommend] settings.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The learning period from the first record (`24h`, `90m`).
    #[arg(long, value_name = "DURATION", default_value = "24h")]
    pub learning: Interval,
    /// Time between decision cycles.
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    pub cycle: Interval,
    /// The prediction horizon (overrides the configuration's).
    #[arg(long, value_name = "DURATION")]
    pub horizon: Option<Interval>,
    /// A connection is a new flow if its key had none for this long.
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    pub episode_gap: Interval,
    /// Observation windows (short traces want short windows).
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub window: Interval,
    /// A silence of the whole trace longer than this is a gap between
    /// captures: nothing is decided, learned or scored across it.
    #[arg(long, value_name = "DURATION")]
    pub recording_gap: Option<Interval>,
    /// How long the simulated operator takes to decide a review.
    #[arg(long, value_name = "DURATION", default_value = "30m")]
    pub review_delay: Interval,
    /// The predictor's learner (overrides the configuration's): naive
    /// Bayes reproduces the comparison in the README.
    #[arg(long, value_enum)]
    pub model: Option<ModelArg>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Learners `--model` selects (see [`ModelFamily`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModelArg {
    /// Bayesian logistic regression (the default).
    Logistic,
    /// Gaussian naive Bayes (`linfa-bayes`).
    NaiveBayes,
}

fn seconds(interval: Interval) -> i64 {
    i64::try_from(interval.get().as_secs()).unwrap_or(i64::MAX)
}

/// Loads the trace, replays it and prints the report.
pub fn run(args: &ReplayArgs) -> anyhow::Result<()> {
    let mut settings = ReplaySettings::default();
    if let Some(path) = &args.config {
        let loaded = load(Some(path), std::iter::empty()).map_err(|e| anyhow::anyhow!("{e}"))?;
        settings.predictor = loaded.config.predictor;
        settings.scan = loaded.config.scan;
        settings.risk = loaded.config.risk;
        settings.recommend = loaded.config.recommend;
    }
    match args.model {
        Some(ModelArg::Logistic) => settings.predictor.model = ModelFamily::Logistic,
        Some(ModelArg::NaiveBayes) => settings.predictor.model = ModelFamily::NaiveBayes,
        None => {}
    }
    settings.learning_s = seconds(args.learning);
    settings.cycle_s = seconds(args.cycle).max(1);
    settings.episode_gap_s = seconds(args.episode_gap);
    settings.review_delay_s = seconds(args.review_delay);
    settings.window_s = u16::try_from(seconds(args.window).max(1)).unwrap_or(u16::MAX);
    settings.recording_gap_s = args.recording_gap.map_or(0, seconds);
    if let Some(horizon) = args.horizon {
        settings.predictor.horizon_s = seconds(horizon);
        settings.predictor.snapshot_every_s = settings
            .predictor
            .snapshot_every_s
            .min(settings.predictor.horizon_s);
    }
    let policy = match &args.policy {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Some(
                Policy::parse(
                    &text,
                    &path.display().to_string(),
                    std::time::SystemTime::now(),
                )
                .map_err(|e| anyhow::anyhow!("{e}"))?,
            )
        }
        None => None,
    };
    let format = match args.format {
        ImportFormat::Zeek => augur::import::Format::Zeek,
        ImportFormat::Csv => augur::import::Format::Flat,
    };
    let (mut trace, errors) = load_trace(&args.trace, format, args.inventory.as_deref())?;
    if !errors.is_empty() {
        eprintln!(
            "{}: {} malformed lines skipped (first: {})",
            args.trace.display(),
            errors.len(),
            errors.first().map(ToString::to_string).unwrap_or_default()
        );
    }
    // Which addresses are VMs: as the operator says; else as the log
    // says (Zeek marks its site's own addresses); else, without an
    // inventory, the private ranges, where clouds number their VMs.
    if !args.internal.is_empty() {
        vm_from_internal(&mut trace, &args.internal);
    } else if !trace.local.is_empty() {
        let vms = vm_from_local(&mut trace);
        eprintln!(
            "{}: {vms} VMs: the addresses the log marks local (local_orig, local_resp); \
             --internal overrides",
            args.trace.display()
        );
    } else if args.inventory.is_none() {
        let vms = vm_from_internal(&mut trace, &private_networks());
        eprintln!(
            "{}: {vms} VMs: the addresses in private ranges (10/8, 172.16/12, 192.168/16, \
             fc00::/7), as neither --internal nor an inventory says which are",
            args.trace.display()
        );
    }
    let report = replay(&trace, &settings, policy)?;
    if report.learning_end >= report.end {
        eprintln!(
            "{}: the trace ends {:.1} h in, before the learning period does ({:.1} h): nothing \
             was enforced or scored. For a short trace, pass a shorter --learning, and --cycle, \
             --horizon and --window on the trace's own time scale (README, \"Replay\").",
            args.trace.display(),
            (report.end - report.start) as f64 / 3600.0,
            (report.learning_end - report.start) as f64 / 3600.0,
        );
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&trace, &report);
    }
    Ok(())
}

/// The private address ranges (RFC 1918, RFC 4193).
fn private_networks() -> Vec<IpNet> {
    ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"]
        .iter()
        .filter_map(|net| net.parse().ok())
        .collect()
}

fn print_report(trace: &Trace, report: &ReplayReport) {
    let hours = |s: i64| s as f64 / 3600.0;
    println!(
        "{}: {} records ({} benign, {} attack, {} unlabelled) over {:.1} h; learning {:.1} h; replayed in {:.1} s",
        trace.name,
        report.records,
        report.benign,
        report.attack,
        report.unknown,
        hours(report.end - report.start),
        hours(report.learning_end - report.start),
        report.elapsed_s
    );
    if !report.unobserved.is_empty() {
        let gap_s: i64 = report.unobserved.iter().map(|(a, b)| b - a).sum();
        println!(
            "{} gaps between captures, {:.1} h in all: nothing decided, learned, scored or counted in them",
            report.unobserved.len(),
            hours(gap_s)
        );
    }
    let cards = &report.scorecards;
    let mut header = format!("{:<38}", "");
    for card in cards {
        header.push_str(&format!("{:>24}", card.strategy));
    }
    println!("{header}");
    let row = |name: &str, value: &dyn Fn(&Scorecard) -> String| {
        let mut line = format!("{name:<38}");
        for card in cards {
            line.push_str(&format!("{:>24}", value(card)));
        }
        println!("{line}");
    };
    row("benign new flows", &|c| c.benign_new_flows.to_string());
    row("coverage at first packet", &|c| percent(c.coverage));
    row(
        "median time to allowance",
        &|c| match c.median_time_to_allow_s {
            Some(s) => format!("{s:.0} s"),
            None => "never".to_owned(),
        },
    );
    row("never allowed", &|c| c.never_allowed.to_string());
    row("exposure (rule-hours unused)", &|c| {
        format!("{:.0}", c.exposure_rule_hours)
    });
    row("openings", &|c| c.openings.to_string());
    row("attack flows opened automatically", &|c| {
        c.attack_flows_opened_automatically.to_string()
    });
    row("attack keys opened automatically", &|c| {
        c.attack_keys_opened_automatically.to_string()
    });
    row("attack keys reaching review", &|c| {
        c.attack_keys_reached_review.to_string()
    });
    row("reviews per day", &|c| format!("{:.1}", c.reviews_per_day));
    if let Some(q) = cards.first().and_then(|c| c.predictor.as_ref()) {
        println!(
            "predictor (augur, enforced period): {} predictions scored, {} used; ROC AUC {:.3}; Brier {:.4} (base rate {:.4}); at p>={:.2}: precision {}, recall {}",
            q.examples,
            q.positives,
            q.roc_auc,
            q.brier,
            q.brier_base_rate,
            q.threshold,
            percent(q.precision),
            percent(q.recall)
        );
        if !q.by_kind.is_empty() {
            let kinds: Vec<String> = q
                .by_kind
                .iter()
                .map(|k| {
                    format!(
                        "{} {} scored, {} used, AUC {:.3}",
                        k.kind, k.examples, k.positives, k.roc_auc
                    )
                })
                .collect();
            println!("by kind of key: {}", kinds.join("; "));
        }
        if let Some(h) = q.hindsight {
            println!(
                "in hindsight, knowing the whole trace: keys ranked by their use rate AUC {:.3}; \
                 right after any activity within the horizon and by key rate in quiet \
                 ({} predictions, {} used) AUC {:.3}",
                h.key_rate_auc, h.quiet_examples, h.quiet_positives, h.quiet_bound_auc
            );
        }
        let curve: Vec<String> = q
            .reliability
            .iter()
            .map(|b| {
                format!(
                    "{:.1}:{:.2}/{:.2}(n={})",
                    b.from, b.predicted, b.observed, b.count
                )
            })
            .collect();
        println!("reliability (bin: predicted/observed): {}", curve.join(" "));
    }
    if !report.augur_changes.is_empty() {
        let changes: Vec<String> = report
            .augur_changes
            .iter()
            .map(|(kind, decider, n)| format!("{kind} {decider:?} {n}"))
            .collect();
        println!("augur's changes: {}", changes.join(", "));
    }
    if !report.augur_missed.is_empty() {
        let missed: Vec<String> = report
            .augur_missed
            .iter()
            .take(8)
            .map(|(key, n)| format!("{key} ({n})"))
            .collect();
        println!(
            "augur denied first packets most often: {}",
            missed.join(", ")
        );
    }
}

fn percent(x: f64) -> String {
    if x.is_nan() {
        "-".to_owned()
    } else {
        format!("{:.1} %", 100.0 * x)
    }
}
