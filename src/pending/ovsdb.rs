//! The pending table in a live switch database: a monitor of the root
//! row's `external_ids` (that one column, all rows: the table has one) and
//! the writes that publish entries and record outcomes.
//!
//! Every write is a `mutate` with map `delete`/`insert`, never an `update`
//! of the whole column, so keys of other writers (`system-id`, OVN's
//! `ovn-remote`, ...) are never clobbered, whatever they do meanwhile.
//! Writes that act on what augur read (expiring an undecided entry,
//! answering a malformed decision, retiring a status) are guarded by a
//! `wait` with timeout 0 for the column to be exactly as read: if an
//! `ovs-vsctl` changed it in between, the transaction fails as a whole, the
//! monitor brings the new contents, and augur decides again from them. So a
//! decision written at the instant an entry expires is either seen or makes
//! the expiry fail; it is never lost under an `expired` status.
//!
//! ```no_run
//! # async fn example() -> Result<(), augur::pending::ovsdb::PendingError> {
//! use augur::pending::ovsdb::{PendingEvent, PendingTable};
//! use augur::pending::{Outcome, PendingSettings, Status, Timestamp, Verdict};
//!
//! let mut table =
//!     PendingTable::open("unix:/var/run/openvswitch/db.sock", PendingSettings::default()).await?;
//! loop {
//!     if let PendingEvent::Decided { entry, decision } = table.next_event().await? {
//!         let outcome = match decision.verdict {
//!             Verdict::Approve => Outcome::Applied { change: 1, by: decision.by },
//!             Verdict::Reject => Outcome::Rejected { by: decision.by, reason: decision.reason },
//!         };
//!         table.report(&entry.id, &Status::new(Timestamp::now(), outcome)).await?;
//!     }
//! }
//! # }
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use augur_ovsdb::client::{self, Client, ClientConfig, Monitor};
use augur_ovsdb::schema::ConstraintError;
use augur_ovsdb::vswitch;
use augur_ovsdb::{
    Atom, Condition, Datum, Function, MonitorEvent, MonitorSpec, Mutation, Mutator, Operation,
    RequestError, Row, TableMonitor, WaitUntil,
};
use thiserror::Error;

use super::{
    DECISION_PREFIX, Decision, EntryId, KeyChanges, Outcome, PendingAction, PendingEntry,
    PendingSettings, Status, Timestamp, next_deadline, plan,
};

/// The root table.
const TABLE: &str = "Open_vSwitch";
/// Its column holding the pending table.
const COLUMN: &str = "external_ids";
/// How soon to try again after a write failed for want of a connection.
const RETRY: Duration = Duration::from_secs(1);

/// Why the pending table cannot be used.
#[derive(Debug, Error)]
pub enum PendingError {
    /// Connecting or a request failed.
    #[error("OVSDB at {target}: {error}")]
    Client {
        /// The database target.
        target: String,
        /// The client's error.
        error: client::Error,
    },
    /// The database is not an `Open_vSwitch` database.
    #[error("OVSDB at {target} is not a usable Open_vSwitch database: {error}")]
    Schema {
        /// The database target.
        target: String,
        /// What is missing.
        error: ConstraintError,
    },
    /// The server refused a transaction.
    #[error("OVSDB at {target} refused a write to external_ids: {error}")]
    Transact {
        /// The database target.
        target: String,
        /// The server's error.
        error: String,
    },
    /// There is no root row to hold the table.
    #[error("OVSDB at {target} has no Open_vSwitch row (run `ovs-vsctl init`)")]
    NoRoot {
        /// The database target.
        target: String,
    },
    /// The server ended the monitor.
    #[error("OVSDB at {target} ended the monitor: {error}")]
    MonitorStopped {
        /// The database target.
        target: String,
        /// The server's reason.
        error: RequestError,
    },
    /// The client's connection task has stopped.
    #[error("OVSDB at {target}: the client has shut down")]
    Closed {
        /// The database target.
        target: String,
    },
}

/// Something that happened in the pending table.
#[derive(Debug, Clone, PartialEq)]
pub enum PendingEvent {
    /// The operator decided on an entry. The daemon applies or drops the
    /// change and then calls [`PendingTable::report`]. Until then the
    /// decision is not handed over again on this connection; a restarted
    /// augur hands it over again, so applying must be idempotent per id. If
    /// the operator changes the decision before the outcome is recorded,
    /// the new one is handed over too.
    Decided {
        /// The entry.
        entry: PendingEntry,
        /// The decision.
        decision: Decision,
    },
    /// A decision was ignored (malformed, or for no pending entry), or an
    /// unreadable entry discarded; the status says why.
    Ignored {
        /// The text after the key prefix.
        id: String,
        /// The status written.
        status: Status,
    },
    /// An undecided entry expired.
    Expired {
        /// The entry.
        id: EntryId,
    },
    /// A status reached the end of its retention and was removed.
    StatusRetired {
        /// The text after the key prefix.
        id: String,
    },
}

/// The pending table of one switch database.
#[derive(Debug)]
pub struct PendingTable {
    target: String,
    client: Client,
    monitor: Monitor,
    settings: PendingSettings,
    /// The root row's `external_ids` as last reported by the monitor.
    external_ids: BTreeMap<String, String>,
    /// Bumped on every monitor change, to know when to plan again.
    version: u64,
    planned_version: Option<u64>,
    /// When planning is due again without a change: an expiry or the end
    /// of a retention.
    wake_at: Option<Timestamp>,
    /// When to plan again after a write failed for want of a connection.
    retry_at: Option<tokio::time::Instant>,
    /// Decisions handed to the daemon and not yet reported, by id, with
    /// the decision text they were read from.
    handed_over: BTreeMap<String, String>,
    events: VecDeque<PendingEvent>,
}

impl PendingTable {
    /// Connects to `target` (`unix:PATH`, `tcp:HOST:PORT`, `ssl:HOST:PORT`,
    /// as `ovs-vsctl --db` takes them) and waits for the first contents.
    pub async fn open(target: &str, settings: PendingSettings) -> Result<Self, PendingError> {
        let config = ClientConfig::new(target).map_err(|error| PendingError::Client {
            target: target.to_owned(),
            error,
        })?;
        Self::open_with(config, settings).await
    }

    /// [`open`](Self::open) with explicit client settings (TLS files,
    /// timeouts, backoff).
    pub async fn open_with(
        config: ClientConfig,
        settings: PendingSettings,
    ) -> Result<Self, PendingError> {
        let target = config.target_list();
        let client = Client::connect_with(config)
            .await
            .map_err(|error| PendingError::Client {
                target: target.clone(),
                error,
            })?;
        Self::with_client(client, target, settings).await
    }

    /// Uses an existing connection (the daemon shares one per switch);
    /// `target` names it in errors.
    pub async fn with_client(
        client: Client,
        target: String,
        settings: PendingSettings,
    ) -> Result<Self, PendingError> {
        let failed = |error| PendingError::Client {
            target: target.clone(),
            error,
        };
        let schema = client.get_schema(vswitch::DB).await.map_err(failed)?;
        vswitch::check_schema(&schema).map_err(|error| PendingError::Schema {
            target: target.clone(),
            error,
        })?;
        let spec = MonitorSpec::monitor_cond(vswitch::DB)
            .table(TableMonitor::new(TABLE).columns([COLUMN]));
        let monitor = client.monitor(spec).await.map_err(failed)?;
        let mut table = Self {
            target,
            client,
            monitor,
            settings,
            external_ids: BTreeMap::new(),
            version: 0,
            planned_version: None,
            wake_at: None,
            retry_at: None,
            handed_over: BTreeMap::new(),
            events: VecDeque::new(),
        };
        while table.version == 0 {
            let event = table.monitor.next().await;
            table.apply(event)?;
        }
        Ok(table)
    }

    /// The root row's `external_ids` as last seen (all keys, augur's and
    /// others').
    pub fn external_ids(&self) -> &BTreeMap<String, String> {
        &self.external_ids
    }

    /// The settings.
    pub fn settings(&self) -> &PendingSettings {
        &self.settings
    }

    /// The connection, for other requests to the same database.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Takes one monitor event into the contents; `true` if they changed.
    fn apply(&mut self, event: Option<MonitorEvent>) -> Result<bool, PendingError> {
        let changes = match event {
            None => {
                return Err(PendingError::Closed {
                    target: self.target.clone(),
                });
            }
            Some(MonitorEvent::Stopped { reason }) => {
                return match reason {
                    Err(error) => Err(PendingError::MonitorStopped {
                        target: self.target.clone(),
                        error,
                    }),
                    Ok(()) => Err(PendingError::Closed {
                        target: self.target.clone(),
                    }),
                };
            }
            Some(MonitorEvent::ConditionChanged { .. }) => return Ok(false),
            Some(MonitorEvent::Snapshot { changes, .. }) => {
                // The first snapshot counts even when the table is empty.
                self.version = self.version.wrapping_add(1);
                changes
            }
            Some(MonitorEvent::Update { changes }) => changes,
        };
        let mut changed = false;
        for change in changes.iter().filter(|c| c.table() == TABLE) {
            self.external_ids = match change.new_row() {
                Some(row) => string_map(row.get(COLUMN)),
                None => BTreeMap::new(),
            };
            changed = true;
        }
        if changed {
            self.version = self.version.wrapping_add(1);
        }
        Ok(changed)
    }

    /// Waits until the contents change (any key of `external_ids`), without
    /// acting on them: for tools that watch the table while augur runs.
    pub async fn changed(&mut self) -> Result<(), PendingError> {
        loop {
            let event = self.monitor.next().await;
            if self.apply(event)? {
                return Ok(());
            }
        }
    }

    /// Publishes the entries whose ids have no keys yet (a decided or
    /// expired entry is not queued again while its status is kept); returns
    /// how many. The map `insert` mutator never replaces a key, so an entry
    /// that appeared meanwhile is left as it is.
    pub async fn publish(&mut self, entries: &[PendingEntry]) -> Result<usize, PendingError> {
        let now = Timestamp::now();
        let mut changes = KeyChanges::default();
        let mut count = 0;
        for action in plan(&self.external_ids, entries, now, &self.settings) {
            if let PendingAction::Publish { entry } = action {
                changes.insert.push((entry.id.pending_key(), entry.value()));
                count += 1;
            }
        }
        if count > 0 {
            self.write(&changes, Guard::KeepExisting).await?;
            tracing::info!(target = %self.target, count, "published pending changes");
        }
        Ok(count)
    }

    /// Records `status` for an entry: the status key is written and, when
    /// the status is final (applied, rejected, expired), the pending and
    /// decision keys are removed in the same transaction. An error status
    /// removes only the decision key, so the entry waits for another.
    pub async fn report(&mut self, id: &EntryId, status: &Status) -> Result<(), PendingError> {
        let changes = super::status_changes(id.as_str(), status, status.is_final());
        self.write(&changes, Guard::None).await?;
        self.handed_over.remove(id.as_str());
        tracing::info!(target = %self.target, %id, %status, "recorded pending change outcome");
        Ok(())
    }

    /// Removes an entry's pending and decision keys (a recommendation that
    /// no longer holds), leaving any status.
    pub async fn retire(&mut self, id: &EntryId) -> Result<(), PendingError> {
        let changes = KeyChanges {
            delete: vec![id.pending_key(), id.decision_key()],
            insert: Vec::new(),
        };
        self.write(&changes, Guard::None).await?;
        self.handed_over.remove(id.as_str());
        Ok(())
    }

    /// Expires the undecided entries whose time has come by `now`; returns
    /// their ids, or none if the table changed under the check (the next
    /// [`next_event`](Self::next_event) decides again from the new
    /// contents).
    pub async fn expire(&mut self, now: Timestamp) -> Result<Vec<EntryId>, PendingError> {
        let mut changes = KeyChanges::default();
        let mut ids = Vec::new();
        for action in plan(&self.external_ids, &[], now, &self.settings) {
            if let PendingAction::Expire { id } = &action {
                changes.extend(action.changes(now));
                ids.push(id.clone());
            }
        }
        if ids.is_empty() {
            return Ok(ids);
        }
        let guard = Guard::Column(self.external_ids.clone());
        if self.write(&changes, guard).await? {
            Ok(ids)
        } else {
            Ok(Vec::new())
        }
    }

    /// Writes an operator's decision as `ovs-vsctl set ...
    /// external_ids:augur-decision-<id>=...` would, but only while the
    /// entry is pending (a condition on its pending key); `false` if it is
    /// not.
    pub async fn decide(
        &mut self,
        id: &EntryId,
        decision: &Decision,
    ) -> Result<bool, PendingError> {
        let Some(pending) = self.external_ids.get(&id.pending_key()).cloned() else {
            return Ok(false);
        };
        let changes = KeyChanges {
            delete: Vec::new(),
            insert: vec![(id.decision_key(), decision.to_string())],
        };
        self.write(&changes, Guard::Includes(id.pending_key(), pending))
            .await
    }

    /// The next event: a decision to act on, or what augur did on its own
    /// (ignored a decision, expired an entry, retired a status). Runs the
    /// table's housekeeping as changes arrive and times pass. Cancel-safe:
    /// it can be a branch of `tokio::select!`.
    pub async fn next_event(&mut self) -> Result<PendingEvent, PendingError> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Ok(event);
            }
            let now = Timestamp::now();
            let due = self.planned_version != Some(self.version)
                || self.wake_at.is_some_and(|t| now >= t)
                || self
                    .retry_at
                    .is_some_and(|t| tokio::time::Instant::now() >= t);
            if due {
                self.housekeep(now).await?;
                continue;
            }
            let retry = self
                .retry_at
                .map(|t| t.saturating_duration_since(tokio::time::Instant::now()));
            let sleep = match (self.wake_at.map(|t| t.since(now)), retry) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            tokio::select! {
                event = self.monitor.next() => {
                    self.apply(event)?;
                }
                () = sleep_or_forever(sleep) => {}
            }
        }
    }

    async fn housekeep(&mut self, now: Timestamp) -> Result<(), PendingError> {
        self.planned_version = Some(self.version);
        self.retry_at = None;
        let external_ids = &self.external_ids;
        self.handed_over
            .retain(|id, text| external_ids.get(&format!("{DECISION_PREFIX}{id}")) == Some(text));
        let mut changes = KeyChanges::default();
        let mut outcomes = Vec::new();
        for action in plan(&self.external_ids, &[], now, &self.settings) {
            match action {
                PendingAction::Decide {
                    entry,
                    decision,
                    text,
                } => {
                    let id = entry.id.as_str().to_owned();
                    if self.handed_over.get(&id) != Some(&text) {
                        tracing::info!(target = %self.target, %id, %decision, "operator decided");
                        self.handed_over.insert(id, text);
                        self.events
                            .push_back(PendingEvent::Decided { entry, decision });
                    }
                }
                action => {
                    changes.extend(action.changes(now));
                    outcomes.push(outcome_event(action, now));
                }
            }
        }
        self.wake_at = next_deadline(&self.external_ids, now, &self.settings);
        if changes.is_empty() {
            return Ok(());
        }
        let guard = Guard::Column(self.external_ids.clone());
        match self.write(&changes, guard).await {
            Ok(true) => {
                for event in outcomes.into_iter().flatten() {
                    match &event {
                        PendingEvent::Ignored { id, status } => {
                            tracing::warn!(target = %self.target, %id, %status, "ignored a pending-change decision");
                        }
                        PendingEvent::Expired { id } => {
                            tracing::info!(target = %self.target, %id, "pending change expired");
                        }
                        _ => {}
                    }
                    self.events.push_back(event);
                }
            }
            // Changed under us: the monitor brings the new contents and
            // planning runs again on them.
            Ok(false) => {}
            Err(PendingError::Client { error, .. }) if !matches!(error, client::Error::Closed) => {
                tracing::warn!(target = %self.target, %error, "pending table write failed; retrying");
                self.retry_at = Some(tokio::time::Instant::now() + RETRY);
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// One transaction: the guard's check, then a `mutate` deleting the
    /// changed keys and inserting the new pairs. `Ok(false)` when the guard
    /// failed.
    async fn write(&self, changes: &KeyChanges, guard: Guard) -> Result<bool, PendingError> {
        let mut ops = Vec::with_capacity(3);
        let mut conditions = Vec::new();
        let waits = matches!(guard, Guard::Column(_));
        let replace = !matches!(guard, Guard::KeepExisting);
        match guard {
            Guard::None | Guard::KeepExisting => {}
            Guard::Column(expected) => ops.push(Operation::Wait {
                table: TABLE.to_owned(),
                conditions: Vec::new(),
                columns: vec![COLUMN.to_owned()],
                until: WaitUntil::Equal,
                rows: vec![Row::new().with(COLUMN, Datum::map(expected))],
                timeout_ms: Some(0),
            }),
            Guard::Includes(key, value) => conditions.push(Condition::new(
                COLUMN,
                Function::Includes,
                Datum::map([(key, value)]),
            )),
        }
        let conditional = !conditions.is_empty();
        let mutate_index = ops.len();
        ops.push(mutate(changes, conditions, replace));
        ops.push(Operation::Comment("augur: pending changes".to_owned()));
        let reply = self
            .client
            .transact(vswitch::DB, ops)
            .await
            .map_err(|error| PendingError::Client {
                target: self.target.clone(),
                error,
            })?;
        if let Some((index, error)) = reply.error() {
            if waits && index == 0 && error.error == "timed out" {
                return Ok(false);
            }
            return Err(PendingError::Transact {
                target: self.target.clone(),
                error: error.to_string(),
            });
        }
        if reply.count(mutate_index) == Some(0) {
            if conditional {
                return Ok(false);
            }
            return Err(PendingError::NoRoot {
                target: self.target.clone(),
            });
        }
        Ok(true)
    }
}

/// What must hold for a write to happen.
enum Guard {
    /// Nothing: the write stands on its own.
    None,
    /// Nothing, and keys that exist already keep their values (the map
    /// `insert` mutator alone).
    KeepExisting,
    /// `external_ids` is exactly this (checked by a `wait` with timeout 0).
    Column(BTreeMap<String, String>),
    /// `external_ids` holds this pair (a condition of the `mutate`).
    Includes(String, String),
}

/// A `mutate` of the root row: the keys to change are deleted first (the
/// map `insert` mutator keeps existing keys), then the new pairs inserted.
fn mutate(changes: &KeyChanges, conditions: Vec<Condition>, replace: bool) -> Operation {
    let replaced = changes.insert.iter().map(|(k, _)| k).filter(|_| replace);
    let deleted: Vec<Atom> = changes
        .delete
        .iter()
        .chain(replaced)
        .map(|k| Atom::string(k.as_str()))
        .collect();
    let mut mutations = Vec::with_capacity(2);
    if !deleted.is_empty() {
        mutations.push(Mutation::new(COLUMN, Mutator::Delete, Datum::set(deleted)));
    }
    if !changes.insert.is_empty() {
        mutations.push(Mutation::new(
            COLUMN,
            Mutator::Insert,
            Datum::map(changes.insert.iter().cloned()),
        ));
    }
    Operation::Mutate {
        table: TABLE.to_owned(),
        conditions,
        mutations,
    }
}

/// The event a housekeeping action produces once written.
fn outcome_event(action: PendingAction, now: Timestamp) -> Option<PendingEvent> {
    match action {
        PendingAction::Ignore { id, why } | PendingAction::Discard { id, why } => {
            Some(PendingEvent::Ignored {
                id,
                status: Status::new(now, Outcome::Error { why }),
            })
        }
        PendingAction::Expire { id } => Some(PendingEvent::Expired { id }),
        PendingAction::RetireStatus { id } => Some(PendingEvent::StatusRetired { id }),
        PendingAction::Decide { .. } | PendingAction::Publish { .. } => None,
    }
}

async fn sleep_or_forever(duration: Option<Duration>) {
    match duration {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// A string-to-string map column; pairs of other types (not in this
/// schema) are skipped.
fn string_map(datum: Option<&Datum>) -> BTreeMap<String, String> {
    datum
        .map(Datum::as_map)
        .unwrap_or_default()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.as_str()?.to_owned())))
        .collect()
}
