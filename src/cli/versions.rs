//! `augur history` and `augur rollback`: the policy versions augur made, and
//! undoing them.
//!
//! `history` reads the version history in the store directory (SQLite in
//! WAL mode, so it works while the daemon writes). `rollback` does not touch
//! the switches: the running daemon owns them, so the request goes through
//! the switch's database (`external_ids:augur-rollback-request`, see
//! [`augur::orchestrate::requests`]) and this waits for the daemon's answer.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use augur::orchestrate::requests::{self, RequestStatus};
use augur::orchestrate::versions::{Decider, PolicyVersion, RollbackTarget, Status};
use augur::store::versions::VersionStore;
use augur_ovsdb::client::{ClientConfig, TlsConfig};

use super::history::StoreArg;
use super::pending::DbArgs;

/// Arguments of `augur history`.
#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// The store directory of `augur run` (`observer.store`).
    #[command(flatten)]
    pub store: StoreArg,
    /// Print the versions as a JSON array, with every field.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `augur rollback`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["change", "to"])))]
pub struct RollbackArgs {
    /// Undo exactly this change (its number in `augur history`).
    #[arg(long, value_name = "ID")]
    pub change: Option<u64>,
    /// Undo every change after this version (0 or `base`: the policy file).
    #[arg(long, value_name = "VERSION", value_parser = parse_version)]
    pub to: Option<u64>,
    /// Why (recorded in the history).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Seconds to wait for the daemon's answer.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..=3600)
    )]
    pub wait: u64,
    /// The database the daemon watches (its `ovsdb.target`).
    #[command(flatten)]
    pub db: DbArgs,
}

fn parse_version(text: &str) -> Result<u64, String> {
    match text {
        "base" | "file" => Ok(0),
        n => n
            .parse()
            .map_err(|_| format!("`{n}` is not a version number (or `base`)")),
    }
}

/// Runs `augur history`.
pub fn run_history(args: &HistoryArgs) -> anyhow::Result<()> {
    let dir = args.store.path();
    let history = match VersionStore::open_existing(&dir)? {
        Some(store) => store.list()?,
        None => Vec::new(),
    };
    let mut out = io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &history)?;
        writeln!(out)?;
    } else if history.is_empty() {
        writeln!(
            out,
            "no policy versions in {}: the policy file alone is in force",
            dir.display()
        )?;
    } else {
        out.write_all(render(&history).as_bytes())?;
    }
    out.flush()?;
    Ok(())
}

/// The history for people: one block per version, newest last.
fn render(history: &[PolicyVersion]) -> String {
    let mut out = String::new();
    for v in history {
        let decider = match &v.decider {
            Decider::Automatic => "automatic".to_owned(),
            Decider::Operator(name) => format!("approved by {name}"),
            Decider::Rollback { of } => format!(
                "rollback of {}",
                of.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
            ),
            Decider::AutoRollback { of, .. } => format!("automatic rollback of {of}"),
        };
        let status = match &v.status {
            Status::Applied if v.decider.is_rollback() => "done".to_owned(),
            Status::Applied => "in force".to_owned(),
            Status::RolledBack { by, why, .. } => format!("rolled back by {by}: {why}"),
        };
        let _ = writeln!(
            out,
            "version {} (cookie v{:#06x}) {} — {} — {} — parent {}",
            v.seq,
            v.number,
            utc(v.created_ms),
            decider,
            status,
            v.parent
        );
        if let Some(id) = &v.recommendation {
            let _ = writeln!(out, "  recommendation {id}");
        }
        let _ = writeln!(out, "  {}", v.explanation);
        if !v.risk_factors.is_empty() {
            let _ = writeln!(out, "  risk: {}", v.risk_factors.join(", "));
        }
        for (sign, records) in [("+", &v.added), ("-", &v.removed)] {
            for r in records {
                let rule = r.toml.trim_end().replace('\n', "\n    ");
                let _ = writeln!(out, "  {sign} (v{:#06x}) {rule}", r.version);
            }
        }
    }
    out
}

/// `YYYY-MM-DD hh:mm:ss UTC`, from Unix milliseconds.
fn utc(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map_or_else(
            || format!("{ms} ms"),
            |t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
        )
}

/// Runs `augur rollback`.
pub fn run_rollback(args: &RollbackArgs) -> anyhow::Result<()> {
    let target = match (args.change, args.to) {
        (Some(seq), None) => RollbackTarget::Change(seq),
        (None, Some(seq)) => RollbackTarget::To(seq),
        _ => bail!("give one of --change ID and --to VERSION"),
    };
    let request = requests::request_text(target, args.reason.as_deref().unwrap_or_default());
    let config = client_config(&args.db)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let status: RequestStatus = runtime
        .block_on(requests::submit(
            config,
            &request,
            Duration::from_secs(args.wait),
        ))
        .map_err(|e| anyhow!("{e}"))?;
    if status.ok {
        println!("{}", status.detail);
        Ok(())
    } else {
        bail!("augur refused `{}`: {}", status.request, status.detail)
    }
}

fn client_config(db: &DbArgs) -> anyhow::Result<ClientConfig> {
    let mut config = ClientConfig::new(&db.db).map_err(|e| anyhow!("--db {}: {e}", db.db))?;
    if let (Some(private_key), Some(certificate), Some(ca_cert)) =
        (&db.private_key, &db.certificate, &db.ca_cert)
    {
        config = config.with_tls(TlsConfig {
            private_key: private_key.clone(),
            certificate: certificate.clone(),
            ca_cert: ca_cert.clone(),
        });
    } else if config.targets.iter().any(|t| t.is_ssl()) {
        bail!("{} needs --private-key, --certificate and --ca-cert", db.db);
    }
    config.connect_timeout = config.connect_timeout.min(Duration::from_secs(10));
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_reads_as_one_block_per_version() {
        use augur::orchestrate::versions::{Place, RuleData, RuleRecord};
        let rule = RuleData {
            name: None,
            from: vec!["web".into()],
            to: vec!["db".into()],
            proto: "tcp".into(),
            ports: Some((22, 22)),
            rate: None,
            expires_at: None,
        };
        let version = PolicyVersion {
            seq: 1,
            number: 1,
            parent: 0,
            created_ms: 1_700_000_000_000,
            decider: Decider::Operator("alice".into()),
            recommendation: Some("00ff".into()),
            change: None,
            explanation: "seen 40 times".into(),
            risk_factors: vec!["new_pair: 0.30".into()],
            added: vec![RuleRecord {
                place: Place::Overlay(0),
                version: 1,
                toml: rule.to_toml(),
                rule,
            }],
            removed: vec![],
            groups: vec![],
            endpoints: vec![],
            status: Status::RolledBack {
                at_ms: 0,
                by: 2,
                why: "broke backups".into(),
            },
        };
        assert_eq!(
            render(&[version]),
            "version 1 (cookie v0x0001) 2023-11-14 22:13:20 UTC — approved by alice — \
             rolled back by 2: broke backups — parent 0\n  recommendation 00ff\n  seen 40 times\n  \
             risk: new_pair: 0.30\n  + (v0x0001) [[allow]]\n    from = [\"web\"]\n    to = [\"db\"]\n    \
             proto = \"tcp\"\n    port = 22\n"
        );
    }

    #[test]
    fn dates_are_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000_000), "2023-11-14 22:13:20 UTC");
    }
}
