//! Makes the managed bridges fail closed, through OVSDB: `fail_mode=secure`
//! on each (without a controller, a `standalone` bridge turns into a
//! learning switch and forwards everything) and `connection_mode=out-of-band`
//! on its controllers (in-band control adds hidden flows that pass traffic
//! to and from the controller around the ACL). Optionally it also sets the
//! controllers' packet-in rate limits.
//!
//! Checked at start, whenever the inventory changes, and every audit
//! interval (someone may change them back). Where augur may not change them
//! (no OVSDB target, `configure_bridges = false`, a read-only server) it
//! says so, once per bridge and problem.

use std::collections::HashMap;
use std::time::Duration;

use augur_ovsdb::client::{Client, ClientConfig};
use augur_ovsdb::{Atom, Condition, Datum, Operation, Row, Uuid};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::config::OvsdbConfig;
use crate::inventory::Inventory;

const DB: &str = "Open_vSwitch";

/// What one bridge needs changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needed {
    /// `fail_mode` is not `secure`: what it is.
    pub fail_mode: Option<Option<String>>,
    /// Controllers (uuid, target) whose `connection_mode` is not
    /// `out-of-band`, with what it is.
    pub in_band: Vec<(Uuid, String, Option<String>)>,
    /// Controllers whose rate limits differ from the wanted ones.
    pub rate_limits: Vec<(Uuid, String)>,
}

impl Needed {
    /// Whether nothing needs changing.
    pub fn is_empty(&self) -> bool {
        self.fail_mode.is_none() && self.in_band.is_empty() && self.rate_limits.is_empty()
    }

    /// What is wrong, for people.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(mode) = &self.fail_mode {
            parts.push(format!(
                "fail_mode is {} (not secure): without a controller the bridge forwards everything",
                mode.as_deref().unwrap_or("unset, which means standalone")
            ));
        }
        for (_, target, mode) in &self.in_band {
            parts.push(format!(
                "controller {target} has connection_mode {} (not out-of-band): in-band control \
                 adds flows that bypass the policy",
                mode.as_deref().unwrap_or("unset, which means in-band")
            ));
        }
        for (_, target) in &self.rate_limits {
            parts.push(format!(
                "controller {target} does not have the configured packet-in rate limits"
            ));
        }
        parts.join("; ")
    }
}

/// Keeps the bridges of the inventory fail-closed until shutdown.
pub async fn run(
    config: OvsdbConfig,
    mut inventory: watch::Receiver<Inventory>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    if config.target.trim().is_empty() {
        tracing::warn!(
            "ovsdb.target is not set: augur cannot check that the managed bridges have \
             fail_mode=secure and out-of-band controllers; a bridge without them may forward \
             traffic the policy denies while augur is away"
        );
        return;
    }
    let client = match ClientConfig::new(&config.target) {
        Ok(client_config) => Client::spawn(client_config).await,
        Err(e) => Err(e),
    };
    let client = match client {
        Ok(client) => client,
        Err(e) => {
            tracing::warn!(
                "cannot use OVSDB at {}: {e}; the managed bridges' fail_mode and \
                 connection_mode are not checked",
                config.target
            );
            return;
        }
    };
    let mut reported: HashMap<String, String> = HashMap::new();
    let mut have_schema = false;
    // Until the first pass succeeds, look again soon: the server may still
    // be starting.
    let retry = Duration::from_secs(5);
    loop {
        let mut ok = true;
        if !have_schema {
            match client.get_schema(DB).await {
                Ok(_) => have_schema = true,
                Err(e) => {
                    report(
                        &mut reported,
                        "",
                        format!(
                            "cannot read the {DB} schema from OVSDB at {}: {e}; the managed \
                             bridges' fail_mode and connection_mode are not checked yet",
                            config.target
                        ),
                    );
                    ok = false;
                }
            }
        }
        if have_schema {
            reported.remove("");
            let bridges: Vec<String> = inventory
                .borrow_and_update()
                .bridges
                .iter()
                .map(|b| b.name.clone())
                .collect();
            for bridge in bridges {
                match ensure(&client, &config, &bridge).await {
                    Ok(done) => {
                        if let Some(done) = done {
                            tracing::info!(bridge = %bridge, "bridge settings fixed: {done}");
                        }
                        reported.remove(&bridge);
                    }
                    Err(e) => {
                        ok = false;
                        report(&mut reported, &bridge, e);
                    }
                }
            }
        }
        let wait = if ok { interval } else { retry.min(interval) };
        let timer = async {
            if wait.is_zero() {
                std::future::pending().await
            } else {
                tokio::time::sleep(wait).await
            }
        };
        tokio::select! {
            changed = inventory.changed() => if changed.is_err() { return },
            () = timer => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// Warns about `problem` for `key` unless it was the last thing said.
fn report(reported: &mut HashMap<String, String>, key: &str, problem: String) {
    if reported.get(key) != Some(&problem) {
        tracing::warn!("{problem}");
        reported.insert(key.to_owned(), problem);
    }
}

/// Checks one bridge and fixes it if allowed; `Ok(Some(what))` when
/// something was changed.
async fn ensure(
    client: &Client,
    config: &OvsdbConfig,
    bridge: &str,
) -> Result<Option<String>, String> {
    let needed = check(client, config, bridge).await?;
    if needed.is_empty() {
        return Ok(None);
    }
    let what = needed.describe();
    if !config.configure_bridges {
        return Err(format!(
            "bridge {bridge}: {what} (ovsdb.configure_bridges is false: augur leaves it)"
        ));
    }
    let mut ops = Vec::new();
    if needed.fail_mode.is_some() {
        ops.push(Operation::Update {
            table: "Bridge".into(),
            conditions: vec![Condition::eq("name", Datum::scalar(bridge))],
            row: Row::new().with("fail_mode", Datum::scalar("secure")),
        });
    }
    for (uuid, _, _) in &needed.in_band {
        ops.push(Operation::Update {
            table: "Controller".into(),
            conditions: vec![Condition::eq("_uuid", Datum::scalar(Atom::Uuid(*uuid)))],
            row: Row::new().with("connection_mode", Datum::scalar("out-of-band")),
        });
    }
    for (uuid, _) in &needed.rate_limits {
        let mut row = Row::new();
        if let Some(rate) = config.controller_rate_limit {
            row.insert("controller_rate_limit", Datum::scalar(i64::from(rate)));
        }
        if let Some(burst) = config.controller_burst_limit {
            row.insert("controller_burst_limit", Datum::scalar(i64::from(burst)));
        }
        ops.push(Operation::Update {
            table: "Controller".into(),
            conditions: vec![Condition::eq("_uuid", Datum::scalar(Atom::Uuid(*uuid)))],
            row,
        });
    }
    ops.push(Operation::Comment(format!(
        "augur: make bridge {bridge} fail closed"
    )));
    let reply = client.transact(DB, ops).await.map_err(|e| {
        format!("bridge {bridge}: {what}; augur cannot change it through OVSDB: {e}")
    })?;
    if let Some((_, error)) = reply.error() {
        return Err(format!(
            "bridge {bridge}: {what}; OVSDB refused the change: {error}"
        ));
    }
    Ok(Some(what))
}

/// What `bridge` needs changed.
async fn check(client: &Client, config: &OvsdbConfig, bridge: &str) -> Result<Needed, String> {
    let select_bridge = Operation::Select {
        table: "Bridge".into(),
        conditions: vec![Condition::eq("name", Datum::scalar(bridge))],
        columns: Some(vec!["fail_mode".into(), "controller".into()]),
    };
    let reply = client
        .transact(DB, vec![select_bridge])
        .await
        .map_err(|e| format!("bridge {bridge}: cannot read its settings from OVSDB: {e}"))?;
    let Some(row) = reply.rows(0).and_then(|rows| rows.first()) else {
        return Err(format!(
            "bridge {bridge} of the inventory is not in OVSDB: its fail_mode cannot be checked"
        ));
    };
    let mut needed = Needed::default();
    let fail_mode = row
        .get("fail_mode")
        .and_then(Datum::as_str)
        .map(str::to_owned);
    if fail_mode.as_deref() != Some("secure") {
        needed.fail_mode = Some(fail_mode);
    }
    let controllers: Vec<Uuid> = row
        .get("controller")
        .map(|d| d.as_set().iter().filter_map(Atom::as_uuid).collect())
        .unwrap_or_default();
    if controllers.is_empty() {
        return Ok(needed);
    }
    let selects = controllers
        .iter()
        .map(|uuid| Operation::Select {
            table: "Controller".into(),
            conditions: vec![Condition::eq("_uuid", Datum::scalar(Atom::Uuid(*uuid)))],
            columns: Some(vec![
                "target".into(),
                "connection_mode".into(),
                "controller_rate_limit".into(),
                "controller_burst_limit".into(),
            ]),
        })
        .collect();
    let reply = client
        .transact(DB, selects)
        .await
        .map_err(|e| format!("bridge {bridge}: cannot read its controllers from OVSDB: {e}"))?;
    for (i, uuid) in controllers.iter().enumerate() {
        let Some(row) = reply.rows(i).and_then(|rows| rows.first()) else {
            continue;
        };
        let target = row
            .get("target")
            .and_then(Datum::as_str)
            .unwrap_or("?")
            .to_owned();
        let mode = row
            .get("connection_mode")
            .and_then(Datum::as_str)
            .map(str::to_owned);
        if mode.as_deref() != Some("out-of-band") {
            needed.in_band.push((*uuid, target.clone(), mode));
        }
        let differs = |column: &str, wanted: Option<u32>| {
            wanted.is_some_and(|w| row.get(column).and_then(Datum::as_i64) != Some(i64::from(w)))
        };
        if differs("controller_rate_limit", config.controller_rate_limit)
            || differs("controller_burst_limit", config.controller_burst_limit)
        {
            needed.rate_limits.push((*uuid, target));
        }
    }
    Ok(needed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_are_described_for_people() {
        let needed = Needed {
            fail_mode: Some(None),
            in_band: vec![(Uuid::nil(), "tcp:127.0.0.1:6653".into(), None)],
            rate_limits: Vec::new(),
        };
        let text = needed.describe();
        assert!(
            text.contains("fail_mode is unset, which means standalone"),
            "{text}"
        );
        assert!(
            text.contains("tcp:127.0.0.1:6653 has connection_mode unset"),
            "{text}"
        );
        assert!(Needed::default().is_empty());
    }
}
