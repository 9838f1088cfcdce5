//! `augur pending`, `augur approve ID`, `augur reject ID`: the pending-changes
//! table in the switch's OVSDB, with friendlier output than `ovs-vsctl`.
//!
//! `approve` and `reject` write the same `augur-decision-<id>` key an
//! operator would write with `ovs-vsctl`, but only while the entry is
//! pending (a condition in the same transaction), then wait for the running
//! augur to record the outcome and print it.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use augur::inventory::ovsdb::DEFAULT_TARGET;
use augur::pending::ovsdb::PendingTable;
use augur::pending::{
    Decision, EntryId, PendingEntry, PendingSettings, Status, Timestamp, Verdict, slots,
};
use augur_ovsdb::client::{ClientConfig, TlsConfig};
use serde::Serialize;

/// How to reach the switch's database (as `augur inventory` takes it).
#[derive(Debug, clap::Args)]
pub struct DbArgs {
    /// The switch's database, as `ovs-vsctl --db` takes it: unix:PATH,
    /// tcp:HOST:PORT, ssl:HOST:PORT.
    #[arg(long, value_name = "TARGET", default_value = DEFAULT_TARGET)]
    pub db: String,
    /// Private key for ssl: targets (PEM, as `ovs-pki` makes it).
    #[arg(long, value_name = "FILE", requires_all = ["certificate", "ca_cert"])]
    pub private_key: Option<PathBuf>,
    /// Certificate for ssl: targets.
    #[arg(long, value_name = "FILE", requires_all = ["private_key", "ca_cert"])]
    pub certificate: Option<PathBuf>,
    /// CA certificate the server's certificate must chain to, for ssl: targets.
    #[arg(long, value_name = "FILE", requires_all = ["private_key", "certificate"])]
    pub ca_cert: Option<PathBuf>,
}

/// Arguments of `augur pending`.
#[derive(Debug, clap::Args)]
pub struct PendingArgs {
    /// The database.
    #[command(flatten)]
    pub db: DbArgs,
    /// Print JSON: one object per id.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `augur approve`.
#[derive(Debug, clap::Args)]
pub struct ApproveArgs {
    /// The pending change's id (as `augur pending` lists it).
    pub id: String,
    /// Who approves; defaults to $SUDO_USER or $USER.
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
    /// Why (recorded with the decision).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Seconds to wait for augur to record the outcome (0: do not wait).
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 5,
        value_parser = clap::value_parser!(u64).range(0..=3600)
    )]
    pub wait: u64,
    /// The database.
    #[command(flatten)]
    pub db: DbArgs,
}

/// Arguments of `augur reject` (the same as `approve`).
pub type RejectArgs = ApproveArgs;

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
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

async fn open(db: &DbArgs) -> anyhow::Result<PendingTable> {
    let config = client_config(db)?;
    // The settings only matter to the daemon's housekeeping, which the
    // command line never runs.
    PendingTable::open_with(config, PendingSettings::default())
        .await
        .map_err(|e| anyhow!("{e}"))
}

/// One id of the table, as listed.
#[derive(Debug, Serialize)]
struct Listed<'a> {
    id: &'a str,
    /// The entry, when pending and readable.
    entry: Option<PendingEntry>,
    /// The pending value when it is not readable.
    #[serde(skip_serializing_if = "Option::is_none")]
    unreadable: Option<&'a str>,
    decision: Option<&'a str>,
    status: Option<&'a str>,
}

/// Runs `augur pending`.
pub fn run_list(args: &PendingArgs) -> anyhow::Result<()> {
    let external_ids = runtime()?.block_on(async {
        let table = open(&args.db).await?;
        anyhow::Ok(table.external_ids().clone())
    })?;
    let listed: Vec<Listed<'_>> = slots(&external_ids)
        .into_iter()
        .map(|(id, slot)| {
            let entry = slot.pending.and_then(|value| {
                let id = EntryId::new(id).ok()?;
                PendingEntry::parse(id, value).ok()
            });
            Listed {
                id,
                unreadable: if entry.is_none() { slot.pending } else { None },
                entry,
                decision: slot.decision,
                status: slot.status,
            }
        })
        .collect();
    let mut out = io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &listed)?;
        writeln!(out)?;
    } else {
        out.write_all(render(&listed, Timestamp::now()).as_bytes())?;
    }
    out.flush()?;
    Ok(())
}

/// The table for people.
fn render(listed: &[Listed<'_>], now: Timestamp) -> String {
    if listed.is_empty() {
        return "no pending changes\n".to_owned();
    }
    let mut rows: Vec<[String; 6]> = vec![[
        "ID".into(),
        "AGE".into(),
        "EXPIRES".into(),
        "RISK".into(),
        "CHANGE".into(),
        "STATUS".into(),
    ]];
    for item in listed {
        let (age, expires, risk, change) = match (&item.entry, item.unreadable) {
            (Some(e), _) => (
                duration(now.since(e.created)),
                if e.expires > now {
                    format!("in {}", duration(e.expires.since(now)))
                } else {
                    "due".to_owned()
                },
                format!("{:.2} {}", e.summary.risk_score, e.summary.risk_level),
                e.summary.change.clone(),
            ),
            (None, Some(_)) => ("-".into(), "-".into(), "-".into(), "(unreadable)".into()),
            (None, None) => ("-".into(), "-".into(), "-".into(), "-".into()),
        };
        let status = match (item.decision, item.status) {
            (Some(decision), _) => match Decision::parse(decision) {
                Ok(d) => format!("decided: {d} (augur has not recorded it yet)"),
                Err(e) => format!("bad decision: {e}"),
            },
            (None, Some(status)) => status.to_owned(),
            (None, None) => "waiting for a decision".to_owned(),
        };
        rows.push([item.id.to_owned(), age, expires, risk, change, status]);
    }
    let mut widths = [0usize; 6];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `3d4h`, `2h10m`, `5m`, `40s`: the two largest units.
fn duration(d: Duration) -> String {
    let s = d.as_secs();
    let (days, hours, minutes, seconds) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if days > 0 {
        format!("{days}d{hours}h")
    } else if hours > 0 {
        format!("{hours}h{minutes}m")
    } else if minutes > 0 {
        format!("{minutes}m")
    } else {
        format!("{seconds}s")
    }
}

/// Runs `augur approve`.
pub fn run_approve(args: &ApproveArgs) -> anyhow::Result<()> {
    decide(args, Verdict::Approve)
}

/// Runs `augur reject`.
pub fn run_reject(args: &RejectArgs) -> anyhow::Result<()> {
    decide(args, Verdict::Reject)
}

/// The login name of whoever runs the command, if it can be a name.
fn login_name() -> Option<String> {
    ["SUDO_USER", "USER"]
        .into_iter()
        .filter_map(|var| std::env::var(var).ok())
        .find(|name| !name.is_empty() && !name.contains(':') && name.len() <= 64)
}

fn decide(args: &ApproveArgs, verdict: Verdict) -> anyhow::Result<()> {
    let id = EntryId::new(&args.id).map_err(|e| anyhow!("{e}"))?;
    let decision = Decision {
        verdict,
        by: args.by.clone().or_else(login_name),
        reason: args.reason.clone().filter(|r| !r.trim().is_empty()),
    };
    // What is written must read back as the same decision.
    let text = decision.to_string();
    if Decision::parse(&text).as_ref() != Ok(&decision) {
        bail!(
            "--by must be a name of 1 to 64 characters without ':' and --reason one line (got {text:?})"
        );
    }
    let wait = Duration::from_secs(args.wait);
    let status = runtime()?.block_on(async {
        let mut table = open(&args.db).await?;
        if let Some(earlier) = table.external_ids().get(&id.decision_key()) {
            bail!("{id} already has a decision ({earlier:?}) that augur has not recorded yet");
        }
        if !table
            .decide(&id, &decision)
            .await
            .map_err(|e| anyhow!("{e}"))?
        {
            let why = match table.external_ids().get(&id.status_key()) {
                Some(status) => format!("{id} is not pending: it was {status}"),
                None => format!("no pending change {id} (`augur pending` lists them)"),
            };
            bail!(why);
        }
        let deadline = Instant::now() + wait;
        loop {
            let ids = table.external_ids();
            if !ids.contains_key(&id.decision_key()) {
                if let Some(status) = ids.get(&id.status_key()) {
                    return Ok(Some(status.clone()));
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            match tokio::time::timeout(left, table.changed()).await {
                Ok(result) => result.map_err(|e| anyhow!("{e}"))?,
                Err(_) => return Ok(None),
            }
        }
    })?;
    match status {
        Some(status) => {
            if Status::parse(&status).is_some_and(|s| !s.is_final()) {
                bail!("{id}: {status}");
            }
            println!("{id}: {status}");
        }
        None if args.wait == 0 => println!("{id}: decision written: {text}"),
        None => println!(
            "{id}: decision written: {text}; augur has not recorded an outcome within {} s \
             (it acts on the decision when it runs)",
            args.wait
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_show_two_units() {
        for (secs, text) in [
            (0, "0s"),
            (59, "59s"),
            (60, "1m"),
            (3599, "59m"),
            (3600, "1h0m"),
            (7800, "2h10m"),
            (86_400 * 3 + 3600 * 4 + 5, "3d4h"),
        ] {
            assert_eq!(duration(Duration::from_secs(secs)), text);
        }
    }

    #[test]
    fn the_table_lists_every_state() {
        let now: Timestamp = "2026-11-30T04:00:00Z".parse().unwrap();
        let entry = PendingEntry::new(
            EntryId::new("0a1b").unwrap(),
            augur::pending::Summary {
                change: "allow web -> db tcp/5432".into(),
                risk_score: 0.72,
                risk_level: "high".into(),
                factors: vec!["sensitive port".into()],
                probability: 0.9,
                explanation: "seen 42 times".into(),
            },
            "2026-11-30T03:00:00Z".parse().unwrap(),
            &PendingSettings::default(),
        );
        let listed = [
            Listed {
                id: "0a1b",
                entry: Some(entry.clone()),
                unreadable: None,
                decision: None,
                status: None,
            },
            Listed {
                id: "0a1c",
                entry: Some(entry.clone()),
                unreadable: None,
                decision: Some("yes"),
                status: None,
            },
            Listed {
                id: "0a1d",
                entry: None,
                unreadable: None,
                decision: None,
                status: Some("expired at 2026-11-30T03:59:00Z"),
            },
            Listed {
                id: "0a1e",
                entry: None,
                unreadable: Some("hand edited"),
                decision: Some("approve"),
                status: None,
            },
        ];
        assert_eq!(
            render(&listed, now),
            "\
ID    AGE   EXPIRES   RISK       CHANGE                    STATUS
0a1b  1h0m  in 23h0m  0.72 high  allow web -> db tcp/5432  waiting for a decision
0a1c  1h0m  in 23h0m  0.72 high  allow web -> db tcp/5432  bad decision: 'yes' is not a decision
0a1d  -     -         -          -                         expired at 2026-11-30T03:59:00Z
0a1e  -     -         -          (unreadable)              decided: approve (augur has not recorded it yet)
"
        );
        assert_eq!(render(&[], now), "no pending changes\n");
    }
}
