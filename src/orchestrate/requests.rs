//! Rollback requests from operators, through the switch's own database.
//!
//! The running daemon owns the switches, so `augur rollback` (or an operator
//! with `ovs-vsctl`) does not touch flows: it writes a request into the
//! `external_ids` of the root `Open_vSwitch` row, beside the pending table
//! ([`crate::pending`]), and the daemon, which monitors that column, carries
//! it out and writes the outcome back:
//!
//! ```text
//! ovs-vsctl set Open_vSwitch . external_ids:augur-rollback-request="change:3 broke the backups"
//! ovs-vsctl set Open_vSwitch . external_ids:augur-rollback-request="to:0"
//! ovs-vsctl get Open_vSwitch . external_ids:augur-rollback-status
//! ```
//!
//! The request is `change:SEQ` (undo exactly that change) or `to:SEQ`
//! (undo every change after it; `to:0` or `to:base` returns to the policy
//! file), then optionally a space and the reason. The status is one line:
//! `ok|<request>|version N: <what was done>` or `failed|<request>|<why>`.
//! The daemon deletes the request in the same transaction that writes the
//! status, on condition that the request is still the one it carried out,
//! so a new request written meanwhile is not lost, and the same request
//! written again later is carried out again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use augur_ovsdb::client::{Client, ClientConfig};
use augur_ovsdb::{Atom, Condition, Datum, Function, Mutation, Mutator, Operation, vswitch};
use tokio_util::sync::CancellationToken;

use super::VersionControl;
use super::versions::{PolicyVersion, RollbackBy, RollbackTarget};
use crate::pending::PendingSettings;
use crate::pending::ovsdb::{PendingError, PendingTable};

/// The key of a rollback request.
pub const REQUEST_KEY: &str = "augur-rollback-request";
/// The key of the outcome of the last request.
pub const STATUS_KEY: &str = "augur-rollback-status";
/// The longest request read (a reason is one line, not a document).
const MAX_REQUEST: usize = 1024;

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// What to roll back.
    pub target: RollbackTarget,
    /// Why (may be empty).
    pub reason: String,
}

/// Parses `change:SEQ [reason]` or `to:SEQ|base [reason]`.
pub fn parse_request(text: &str) -> Result<Request, String> {
    if text.len() > MAX_REQUEST {
        return Err(format!("a request is at most {MAX_REQUEST} bytes"));
    }
    let text = text.trim();
    let (target, reason) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    let number = |s: &str| {
        s.parse::<u64>()
            .map_err(|_| format!("`{s}` is not a version number"))
    };
    let target = if let Some(seq) = target.strip_prefix("change:") {
        RollbackTarget::Change(number(seq)?)
    } else if let Some(seq) = target.strip_prefix("to:") {
        match seq {
            "base" | "file" => RollbackTarget::To(0),
            seq => RollbackTarget::To(number(seq)?),
        }
    } else {
        return Err(format!(
            "`{target}` is not a rollback request: write change:SEQ or to:SEQ (to:0 for the policy file)"
        ));
    };
    Ok(Request {
        target,
        reason: one_line(reason),
    })
}

/// The request text for `target` and `reason`.
pub fn request_text(target: RollbackTarget, reason: &str) -> String {
    let target = match target {
        RollbackTarget::Change(seq) => format!("change:{seq}"),
        RollbackTarget::To(seq) => format!("to:{seq}"),
    };
    let reason = one_line(reason);
    if reason.is_empty() {
        target
    } else {
        format!("{target} {reason}")
    }
}

/// The outcome of a request, as written to [`STATUS_KEY`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestStatus {
    /// Whether the rollback was made.
    pub ok: bool,
    /// The request it answers, verbatim.
    pub request: String,
    /// The new version and what it did, or why nothing was done.
    pub detail: String,
}

impl RequestStatus {
    /// The status of a request carried out as `version`.
    pub fn done(request: &str, version: &PolicyVersion) -> RequestStatus {
        RequestStatus {
            ok: true,
            request: one_field(request),
            detail: one_field(&format!(
                "version {}: {} (+{} -{} rules)",
                version.seq,
                version.explanation,
                version.added.len(),
                version.removed.len()
            )),
        }
    }

    /// The status of a request that failed.
    pub fn failed(request: &str, why: &str) -> RequestStatus {
        RequestStatus {
            ok: false,
            request: one_field(request),
            detail: one_field(why),
        }
    }

    /// Its text.
    pub fn value(&self) -> String {
        format!(
            "{}|{}|{}",
            if self.ok { "ok" } else { "failed" },
            self.request,
            self.detail
        )
    }

    /// Parses a status value.
    pub fn parse(value: &str) -> Option<RequestStatus> {
        let mut parts = value.splitn(3, '|');
        let ok = match parts.next()? {
            "ok" => true,
            "failed" => false,
            _ => return None,
        };
        Some(RequestStatus {
            ok,
            request: parts.next()?.to_owned(),
            detail: parts.next().unwrap_or_default().to_owned(),
        })
    }
}

fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

fn one_field(text: &str) -> String {
    one_line(text).replace('|', "/")
}

/// The daemon's side: watches [`REQUEST_KEY`] in the database at `target`
/// and carries requests out until `shutdown`, reconnecting with backoff.
pub async fn serve(target: String, control: Arc<VersionControl>, shutdown: CancellationToken) {
    let mut delay = Duration::from_millis(500);
    loop {
        let opened = tokio::select! {
            opened = PendingTable::open(&target, PendingSettings::default()) => opened,
            () = shutdown.cancelled() => return,
        };
        let result = match opened {
            Ok(mut table) => {
                delay = Duration::from_millis(500);
                tokio::select! {
                    result = watch_requests(&mut table, &control) => result,
                    () = shutdown.cancelled() => return,
                }
            }
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::warn!(
                "rollback requests: {e}; watching {target} again in {} s",
                delay.as_secs_f64()
            );
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shutdown.cancelled() => return,
        }
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}

async fn watch_requests(
    table: &mut PendingTable,
    control: &VersionControl,
) -> Result<(), PendingError> {
    loop {
        if let Some(request) = table.external_ids().get(REQUEST_KEY).cloned() {
            let status = match parse_request(&request) {
                Err(why) => RequestStatus::failed(&request, &why),
                Ok(parsed) => {
                    tracing::info!(request = %request, "rollback requested through OVSDB");
                    let by = RollbackBy::Operator(parsed.reason.clone());
                    match control.rollback(parsed.target, by).await {
                        Ok(version) => RequestStatus::done(&request, &version),
                        Err(e) => {
                            tracing::warn!(request = %request, "rollback refused: {e}");
                            RequestStatus::failed(&request, &e.to_string())
                        }
                    }
                }
            };
            if let Err(e) = answer(table.client(), &request, &status).await {
                tracing::warn!("rollback requests: writing the status failed: {e}");
            }
        }
        table.changed().await?;
    }
}

/// Writes the status and removes the request, if the request is still the
/// one answered.
async fn answer(client: &Client, request: &str, status: &RequestStatus) -> Result<(), String> {
    let ops = vec![
        Operation::Mutate {
            table: "Open_vSwitch".to_owned(),
            conditions: vec![Condition::new(
                "external_ids",
                Function::Includes,
                Datum::map([(REQUEST_KEY.to_owned(), request.to_owned())]),
            )],
            mutations: vec![
                Mutation::new(
                    "external_ids",
                    Mutator::Delete,
                    Datum::set([Atom::string(REQUEST_KEY), Atom::string(STATUS_KEY)]),
                ),
                Mutation::new(
                    "external_ids",
                    Mutator::Insert,
                    Datum::map([(STATUS_KEY.to_owned(), status.value())]),
                ),
            ],
        },
        Operation::Comment("augur: rollback status".to_owned()),
    ];
    let reply = client
        .transact(vswitch::DB, ops)
        .await
        .map_err(|e| e.to_string())?;
    if let Some((_, error)) = reply.error() {
        return Err(error.to_string());
    }
    Ok(())
}

/// Why a request could not be handed over.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The database could not be used.
    #[error("{0}")]
    Ovsdb(String),
    /// Another request waits.
    #[error("another rollback request is waiting: {0}")]
    Busy(String),
    /// No status came back in time (is `augur run` running?).
    #[error(
        "no answer within {0} s: is `augur run` running and watching this database? (the request is withdrawn)"
    )]
    NoAnswer(u64),
}

/// The CLI's side: writes the request (clearing the previous status), waits
/// for its status, and returns it. Withdraws the request if no answer comes
/// within `wait`.
pub async fn submit(
    config: ClientConfig,
    request: &str,
    wait: Duration,
) -> Result<RequestStatus, SubmitError> {
    let target = config.target_list();
    let client = Client::connect_with(config)
        .await
        .map_err(|e| SubmitError::Ovsdb(format!("OVSDB at {target}: {e}")))?;
    let mut table =
        PendingTable::with_client(client.clone(), target.clone(), PendingSettings::default())
            .await
            .map_err(|e| SubmitError::Ovsdb(e.to_string()))?;
    if let Some(waiting) = table.external_ids().get(REQUEST_KEY) {
        return Err(SubmitError::Busy(waiting.clone()));
    }
    let request = one_line(request);
    let ops = vec![
        Operation::Mutate {
            table: "Open_vSwitch".to_owned(),
            conditions: Vec::new(),
            mutations: vec![
                Mutation::new(
                    "external_ids",
                    Mutator::Delete,
                    Datum::set([Atom::string(STATUS_KEY)]),
                ),
                Mutation::new(
                    "external_ids",
                    Mutator::Insert,
                    Datum::map([(REQUEST_KEY.to_owned(), request.clone())]),
                ),
            ],
        },
        Operation::Comment("augur: rollback request".to_owned()),
    ];
    let reply = client
        .transact(vswitch::DB, ops)
        .await
        .map_err(|e| SubmitError::Ovsdb(e.to_string()))?;
    if let Some((_, error)) = reply.error() {
        return Err(SubmitError::Ovsdb(format!(
            "the request was not written: {error}"
        )));
    }
    // The map `insert` mutator keeps a key that exists: a request written
    // by someone else meanwhile stays, and is reported as busy below.
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let ids: &BTreeMap<String, String> = table.external_ids();
        if let Some(other) = ids.get(REQUEST_KEY).filter(|r| **r != request) {
            return Err(SubmitError::Busy(other.clone()));
        }
        if let Some(status) = ids.get(STATUS_KEY).and_then(|v| RequestStatus::parse(v)) {
            if status.request == one_field(&request) && !ids.contains_key(REQUEST_KEY) {
                return Ok(status);
            }
        }
        match tokio::time::timeout_at(deadline, table.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(SubmitError::Ovsdb(e.to_string())),
            Err(_) => {
                withdraw(&client, &request).await;
                return Err(SubmitError::NoAnswer(wait.as_secs()));
            }
        }
    }
}

async fn withdraw(client: &Client, request: &str) {
    let ops = vec![Operation::Mutate {
        table: "Open_vSwitch".to_owned(),
        conditions: Vec::new(),
        mutations: vec![Mutation::new(
            "external_ids",
            Mutator::Delete,
            Datum::map([(REQUEST_KEY.to_owned(), request.to_owned())]),
        )],
    }];
    let _ = client.transact(vswitch::DB, ops).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_render() {
        assert_eq!(
            parse_request("change:3 broke the backups"),
            Ok(Request {
                target: RollbackTarget::Change(3),
                reason: "broke the backups".into()
            })
        );
        assert_eq!(
            parse_request("to:base").unwrap().target,
            RollbackTarget::To(0)
        );
        assert_eq!(
            parse_request(" to:12 ").unwrap().target,
            RollbackTarget::To(12)
        );
        assert!(parse_request("change:x").is_err());
        assert!(parse_request("undo 3").is_err());
        assert!(parse_request(&"a".repeat(2000)).is_err());
        assert_eq!(request_text(RollbackTarget::To(0), "x\ny"), "to:0 x y");
        let status = RequestStatus::failed("change:3 a|b", "no such version");
        assert_eq!(status.value(), "failed|change:3 a/b|no such version");
        assert_eq!(RequestStatus::parse(&status.value()), Some(status));
        assert_eq!(RequestStatus::parse("maybe|x|y"), None);
    }
}
