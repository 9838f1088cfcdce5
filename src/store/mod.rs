//! The communication history on disk: window rows that survive restarts, and
//! the signatures rebuilt from them.
//!
//! # Why SQLite (in WAL mode) and not redb
//!
//! Both are embedded, transactional and crash-safe. SQLite wins here on what
//! the history is used for:
//!
//! - **Retention is a query.** Rolling 35-day-old windows into hourly rows is
//!   one `INSERT … SELECT … GROUP BY` and one `DELETE` in a transaction; with
//!   a key-value store it is a hand-written scan, merge and delete.
//! - **Operators can look.** `sqlite3 history.sqlite3 'select …'` answers an
//!   ad-hoc question about a pair without augur; a redb file needs augur.
//! - **Adding into a window is an upsert** (`ON CONFLICT DO UPDATE SET
//!   bytes = bytes + excluded.bytes`), which is what imports of unordered logs
//!   and resumed imports need.
//! - **WAL mode** lets `augur signatures` read while the daemon writes, and
//!   a commit costs one append to the log.
//!
//! The price is a C library compiled in (`rusqlite` with `bundled`, so the
//! version is pinned and nothing is needed on the host) and a build that
//! needs a C compiler, which every Debian host that builds augur has.
//!
//! # Layout
//!
//! - `endpoints(id, kind, name, labels)`: VM ids and external addresses,
//!   with the VM's labels as JSON.
//! - `flow_keys(id, src, dst, proto, port)`: flow keys, by endpoint id.
//! - `windows(start, key, bytes, packets, conns, denied, active, first_off,
//!   last_off)`: one row per key and window with traffic, clustered by time
//!   (`WITHOUT ROWID`, primary key `(start, key)`), so a rebuild reads in
//!   time order and retention deletes a prefix.
//! - `rollups`: the same columns per key and hour, for windows older than
//!   the raw retention.
//! - `imports(source, fingerprint, lines, records)`: how far each imported
//!   file got (and a hash of those lines), committed with its rows, so an
//!   interrupted import resumes.
//! - `observed(start, until)`: the spans augur watched the network, one per
//!   daemon run (and per stretch of it with a switch connected), extended
//!   at every window close, and the span each import's records cover
//!   (first to last record), committed with its rows. Between two spans the
//!   history is silent because nobody looked, which learning must not take
//!   for "nothing was used" (history before the first span counts as
//!   watched).
//! - `meta(name, value)`: schema version and window length.
//!
//! # Durability
//!
//! Every closed window (live) and every import batch is one transaction. A
//! crash of augur loses only what was not yet committed: the open window,
//! or the current import batch (which a re-run of the import reads again).
//! With `synchronous = NORMAL` (the default) a committed transaction also
//! survives the machine losing power except for the last few commits;
//! [`Durability::Full`] syncs every commit for those who want that too.

pub mod learn;
mod live;
pub mod versions;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use augur_flows::{
    Aggregator, Endpoint, EndpointId, Endpoints, FlowKey, Protocol, WindowConfig, WindowRow,
};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

pub use live::SignatureStore;

/// The file inside the store directory.
pub const DATABASE_FILE: &str = "history.sqlite3";

const SCHEMA_VERSION: i64 = 1;

const SECS_PER_DAY: i64 = 86_400;

/// How hard a commit tries to reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous = NORMAL`: committed windows survive a crash of augur;
    /// a power loss may lose the last commits, never the database.
    #[default]
    Normal,
    /// `synchronous = FULL`: every commit is synced.
    Full,
}

/// Settings of the history store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreSettings {
    /// Windowing of new stores (an existing store keeps the window length it
    /// was created with).
    pub window: WindowConfig,
    /// Days raw windows are kept before they are rolled up (default 35).
    pub raw_retention_days: u32,
    /// Length of a rollup span in seconds (default 3,600).
    pub rollup_span_s: u32,
    /// Days rollups are kept (default 400, so a year-on-year look works).
    pub rollup_retention_days: u32,
    /// Commit durability.
    pub durability: Durability,
}

impl Default for StoreSettings {
    fn default() -> StoreSettings {
        StoreSettings {
            window: WindowConfig::default(),
            raw_retention_days: 35,
            rollup_span_s: 3600,
            rollup_retention_days: 400,
            durability: Durability::Normal,
        }
    }
}

/// What retention did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Raw window rows rolled up and removed.
    pub windows_rolled_up: usize,
    /// Rollup rows removed for age.
    pub rollups_removed: usize,
}

/// An import's progress, as committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportProgress {
    /// A hash of the lines done, so a re-run can tell whether they are still
    /// the same lines.
    pub fingerprint: String,
    /// Lines of the file read up to the last commit.
    pub lines: u64,
    /// Records stored from them.
    pub records: u64,
}

/// Adds a watched span, or extends the one with the same start.
const OBSERVED_UPSERT: &str = "INSERT INTO observed (start, until) VALUES (?1, ?2)
     ON CONFLICT (start) DO UPDATE SET until = max(until, excluded.until)";

/// What an import commits with a batch of its rows.
#[derive(Debug, Clone, Copy)]
pub struct ImportCommit<'a> {
    /// The imported file's identity.
    pub source: &'a str,
    /// How far the import got.
    pub progress: &'a ImportProgress,
    /// The time its records cover so far, first to last (Unix seconds):
    /// whatever wrote the log watched the network then.
    pub recorded: Option<(i64, i64)>,
}

/// A window row with its endpoints spelt out, as exports and reports read
/// it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRow {
    /// The initiator.
    pub src: Endpoint,
    /// The responder.
    pub dst: Endpoint,
    /// The row (its key's endpoint ids are those of the store's table given
    /// to [`Store::rows`]).
    pub row: WindowRow,
}

/// The SQLite history store.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
    settings: StoreSettings,
    endpoint_ids: HashMap<Endpoint, i64>,
    key_ids: HashMap<(i64, i64, u8, u16), i64>,
}

impl Store {
    /// Opens the store in `dir` (creating the directory and the database if
    /// needed).
    pub fn open(dir: &Path, settings: StoreSettings) -> anyhow::Result<Store> {
        let (conn, path) = open_database(dir, DATABASE_FILE, settings.durability)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS meta (
                 name TEXT PRIMARY KEY,
                 value INTEGER NOT NULL
             );
             CREATE TABLE IF NOT EXISTS endpoints (
                 id INTEGER PRIMARY KEY,
                 kind INTEGER NOT NULL,
                 name TEXT NOT NULL,
                 labels TEXT NOT NULL DEFAULT '{}',
                 UNIQUE (kind, name)
             );
             CREATE TABLE IF NOT EXISTS flow_keys (
                 id INTEGER PRIMARY KEY,
                 src INTEGER NOT NULL REFERENCES endpoints(id),
                 dst INTEGER NOT NULL REFERENCES endpoints(id),
                 proto INTEGER NOT NULL,
                 port INTEGER NOT NULL,
                 UNIQUE (src, dst, proto, port)
             );
             CREATE TABLE IF NOT EXISTS windows (
                 start INTEGER NOT NULL,
                 key INTEGER NOT NULL,
                 bytes INTEGER NOT NULL,
                 packets INTEGER NOT NULL,
                 conns INTEGER NOT NULL,
                 denied INTEGER NOT NULL,
                 active INTEGER NOT NULL,
                 first_off INTEGER NOT NULL,
                 last_off INTEGER NOT NULL,
                 PRIMARY KEY (start, key)
             ) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS rollups (
                 start INTEGER NOT NULL,
                 key INTEGER NOT NULL,
                 bytes INTEGER NOT NULL,
                 packets INTEGER NOT NULL,
                 conns INTEGER NOT NULL,
                 denied INTEGER NOT NULL,
                 active INTEGER NOT NULL,
                 first_off INTEGER NOT NULL,
                 last_off INTEGER NOT NULL,
                 PRIMARY KEY (start, key)
             ) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS observed (
                 start INTEGER PRIMARY KEY,
                 until INTEGER NOT NULL
             );
             CREATE TABLE IF NOT EXISTS imports (
                 source TEXT PRIMARY KEY,
                 fingerprint TEXT NOT NULL,
                 lines INTEGER NOT NULL,
                 records INTEGER NOT NULL
             );",
        )?;
        let version: Option<i64> = conn
            .query_row("SELECT value FROM meta WHERE name = 'schema'", [], |r| {
                r.get(0)
            })
            .optional()?;
        let mut settings = settings;
        match version {
            None => {
                conn.execute(
                    "INSERT INTO meta (name, value) VALUES ('schema', ?1), ('window_s', ?2)",
                    params![SCHEMA_VERSION, settings.window.length_s],
                )?;
            }
            Some(SCHEMA_VERSION) => {
                let window_s: i64 =
                    conn.query_row("SELECT value FROM meta WHERE name = 'window_s'", [], |r| {
                        r.get(0)
                    })?;
                let length = u16::try_from(window_s)
                    .ok()
                    .and_then(WindowConfig::with_length)
                    .with_context(|| {
                        format!("{}: invalid window length {window_s}", path.display())
                    })?;
                if length.length_s != settings.window.length_s {
                    // Rows of different lengths cannot be mixed: the store's
                    // own length wins.
                    settings.window = length;
                }
            }
            Some(other) => bail!(
                "{}: schema version {other}, this augur reads version {SCHEMA_VERSION}",
                path.display()
            ),
        }
        Ok(Store {
            conn,
            path,
            settings,
            endpoint_ids: HashMap::new(),
            key_ids: HashMap::new(),
        })
    }

    /// The settings in force (the window length is the store's own).
    pub fn settings(&self) -> StoreSettings {
        self.settings
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes rows in one transaction, adding to rows already stored for the
    /// same key and window. `endpoints` is the table the rows' keys refer to.
    pub fn write_rows(&mut self, endpoints: &Endpoints, rows: &[WindowRow]) -> anyhow::Result<()> {
        self.write_batch(endpoints, rows, None)
    }

    /// Writes rows and an import's progress and recorded span in one
    /// transaction, so that the progress never claims rows that are not
    /// there.
    pub fn write_batch(
        &mut self,
        endpoints: &Endpoints,
        rows: &[WindowRow],
        import: Option<ImportCommit<'_>>,
    ) -> anyhow::Result<()> {
        let tx = self.conn.transaction()?;
        // Ids assigned in a transaction that fails must not stay cached.
        let mut new_endpoints: Vec<Endpoint> = Vec::new();
        let mut new_keys: Vec<(i64, i64, u8, u16)> = Vec::new();
        let result = write_rows_in(
            &tx,
            endpoints,
            rows,
            &mut self.endpoint_ids,
            &mut self.key_ids,
            &mut new_endpoints,
            &mut new_keys,
        )
        .and_then(|()| {
            if let Some(ImportCommit {
                source,
                progress,
                recorded,
            }) = import
            {
                if let Some((start, until)) = recorded {
                    tx.execute(OBSERVED_UPSERT, params![start, until.max(start)])?;
                }
                tx.execute(
                    "INSERT INTO imports (source, fingerprint, lines, records)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (source) DO UPDATE SET
                         fingerprint = excluded.fingerprint,
                         lines = excluded.lines,
                         records = excluded.records",
                    params![
                        source,
                        progress.fingerprint,
                        i64::try_from(progress.lines).unwrap_or(i64::MAX),
                        i64::try_from(progress.records).unwrap_or(i64::MAX)
                    ],
                )?;
            }
            Ok(())
        })
        .and_then(|()| tx.commit().map_err(anyhow::Error::from));
        if result.is_err() {
            for endpoint in new_endpoints {
                self.endpoint_ids.remove(&endpoint);
            }
            for key in new_keys {
                self.key_ids.remove(&key);
            }
        }
        result.with_context(|| format!("cannot write to {}", self.path.display()))
    }

    /// Records that augur watched the network from `start` (a daemon run's
    /// start) until `until`.
    pub fn observed(&mut self, start: i64, until: i64) -> anyhow::Result<()> {
        self.conn
            .execute(OBSERVED_UPSERT, params![start, until.max(start)])
            .with_context(|| format!("cannot write to {}", self.path.display()))?;
        Ok(())
    }

    /// The gaps longer than `min_gap_s` between the spans augur watched, in
    /// time order: `(end of one span, start of the next)`.
    pub fn unobserved(&self, min_gap_s: i64) -> anyhow::Result<Vec<(i64, i64)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT start, until FROM observed ORDER BY start")?;
        let spans = stmt
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        let mut gaps = Vec::new();
        let mut watched_until: Option<i64> = None;
        for (start, until) in spans {
            if let Some(end) = watched_until
                && start.saturating_sub(end) > min_gap_s
            {
                gaps.push((end, start));
            }
            watched_until = Some(watched_until.map_or(until, |end| end.max(until)));
        }
        Ok(gaps)
    }

    /// The committed progress of an import of `source`.
    pub fn import_progress(&self, source: &str) -> anyhow::Result<Option<ImportProgress>> {
        let row: Option<(String, i64, i64)> = self
            .conn
            .query_row(
                "SELECT fingerprint, lines, records FROM imports WHERE source = ?1",
                params![source],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        Ok(row.map(|(fingerprint, lines, records)| ImportProgress {
            fingerprint,
            lines: u64::try_from(lines).unwrap_or(0),
            records: u64::try_from(records).unwrap_or(0),
        }))
    }

    /// Stores the labels of a VM (as JSON) so that later rebuilds see them.
    pub fn set_labels(
        &mut self,
        endpoint: &Endpoint,
        labels: &BTreeMap<String, String>,
    ) -> anyhow::Result<()> {
        let json = serde_json::to_string(labels)?;
        let (kind, name) = endpoint_columns(endpoint);
        self.conn.execute(
            "INSERT INTO endpoints (kind, name, labels) VALUES (?1, ?2, ?3)
             ON CONFLICT (kind, name) DO UPDATE SET labels = excluded.labels",
            params![kind, name, json],
        )?;
        Ok(())
    }

    /// Reads every stored row, rollups first, then raw windows, each in time
    /// order, interning endpoints and labels into `endpoints`. Rows are
    /// handed to `each` in chunks so that a large history is never held at
    /// once.
    pub fn rows(
        &self,
        endpoints: &mut Endpoints,
        mut each: impl FnMut(&Endpoints, &[WindowRow]),
    ) -> anyhow::Result<()> {
        let keys = self.load_keys(endpoints)?;
        let endpoints = &*endpoints;
        self.scan(&keys, |rows| each(endpoints, rows))
    }

    /// Rebuilds signatures: folds every stored row into `aggregator`, whose
    /// endpoint table learns the stored endpoints and labels.
    pub fn replay(&self, aggregator: &mut Aggregator) -> anyhow::Result<()> {
        let keys = self.load_keys(aggregator.endpoints_mut())?;
        self.scan(&keys, |rows| aggregator.apply_rows(rows))
    }

    /// Like [`Store::replay`], but hands each chunk of rows (in time order)
    /// to `each` together with the aggregator, which has learned the stored
    /// endpoints but not yet the chunk: the caller folds the rows in itself,
    /// so that it can stop at instants in between (to train a predictor on
    /// the history as it unfolded).
    pub fn replay_chunks(
        &self,
        aggregator: &mut Aggregator,
        mut each: impl FnMut(&mut Aggregator, &[WindowRow]),
    ) -> anyhow::Result<()> {
        let keys = self.load_keys(aggregator.endpoints_mut())?;
        self.scan(&keys, |rows| each(aggregator, rows))
    }

    fn scan(
        &self,
        keys: &HashMap<i64, FlowKey>,
        mut each: impl FnMut(&[WindowRow]),
    ) -> anyhow::Result<()> {
        let window_s = u32::from(self.settings.window.length_s);
        for (table, span) in [
            ("rollups", self.settings.rollup_span_s),
            ("windows", window_s),
        ] {
            let mut stmt = self.conn.prepare(&format!(
                "SELECT start, key, bytes, packets, conns, denied, active, first_off, last_off
                 FROM {table} ORDER BY start, key"
            ))?;
            let mut rows = stmt.query([])?;
            let mut chunk: Vec<WindowRow> = Vec::with_capacity(4096);
            while let Some(r) = rows.next()? {
                let key_id: i64 = r.get(1)?;
                let Some(&key) = keys.get(&key_id) else {
                    bail!(
                        "{}: window of unknown flow key {key_id}",
                        self.path.display()
                    );
                };
                chunk.push(WindowRow {
                    key,
                    start_s: r.get(0)?,
                    span_s: span,
                    bytes: column_u64(r, 2)?,
                    packets: column_u64(r, 3)?,
                    connections: column_u32(r, 4)?,
                    denied: column_u32(r, 5)?,
                    active_windows: column_u32(r, 6)?,
                    first_offset_s: column_u32(r, 7)?,
                    last_offset_s: column_u32(r, 8)?,
                });
                if chunk.len() == chunk.capacity() {
                    each(&chunk);
                    chunk.clear();
                }
            }
            if !chunk.is_empty() {
                each(&chunk);
            }
        }
        Ok(())
    }

    /// Loads endpoints (with labels) and flow keys, interning them into
    /// `endpoints`; returns the flow keys by database id.
    fn load_keys(&self, endpoints: &mut Endpoints) -> anyhow::Result<HashMap<i64, FlowKey>> {
        let mut by_db_id: HashMap<i64, EndpointId> = HashMap::new();
        let mut stmt = self
            .conn
            .prepare("SELECT id, kind, name, labels FROM endpoints ORDER BY id")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            let kind: i64 = r.get(1)?;
            let name: String = r.get(2)?;
            let labels: String = r.get(3)?;
            let endpoint = endpoint_from_columns(kind, &name)
                .with_context(|| format!("{}: endpoint {id}", self.path.display()))?;
            let labels: BTreeMap<String, String> = serde_json::from_str(&labels)
                .with_context(|| format!("{}: labels of endpoint {id}", self.path.display()))?;
            let local = endpoints.set_labels(
                &endpoint,
                labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            );
            by_db_id.insert(id, local);
        }
        let mut keys = HashMap::new();
        let mut stmt = self
            .conn
            .prepare("SELECT id, src, dst, proto, port FROM flow_keys")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            let src: i64 = r.get(1)?;
            let dst: i64 = r.get(2)?;
            let proto = u8::try_from(r.get::<_, i64>(3)?).ok();
            let port = u16::try_from(r.get::<_, i64>(4)?).ok();
            let (Some(&src), Some(&dst), Some(proto), Some(port)) =
                (by_db_id.get(&src), by_db_id.get(&dst), proto, port)
            else {
                bail!("{}: flow key {id} is inconsistent", self.path.display());
            };
            keys.insert(
                id,
                FlowKey {
                    src,
                    dst,
                    protocol: Protocol(proto),
                    service_port: port,
                },
            );
        }
        Ok(keys)
    }

    /// Rolls raw windows older than the raw retention into rollup spans and
    /// drops rollups older than theirs, in one transaction. `now_s` is Unix
    /// seconds.
    pub fn apply_retention(&mut self, now_s: i64) -> anyhow::Result<RetentionReport> {
        let span = i64::from(self.settings.rollup_span_s.max(1));
        let raw_cutoff = now_s
            .saturating_sub(i64::from(self.settings.raw_retention_days) * SECS_PER_DAY)
            .div_euclid(span)
            * span;
        let rollup_cutoff =
            now_s.saturating_sub(i64::from(self.settings.rollup_retention_days) * SECS_PER_DAY);
        let tx = self.conn.transaction()?;
        // Offsets move from the window to the span; those of inactive rows
        // are meaningless and left out of min/max.
        tx.execute(
            "INSERT INTO rollups (start, key, bytes, packets, conns, denied, active,
                                  first_off, last_off)
             SELECT start - (start % ?1) AS span_start, key,
                    sum(bytes), sum(packets), sum(conns), sum(denied), sum(active),
                    coalesce(min(CASE WHEN active > 0 THEN start % ?1 + first_off END), 0),
                    coalesce(max(CASE WHEN active > 0 THEN start % ?1 + last_off END), 0)
             FROM windows WHERE start < ?2
             GROUP BY span_start, key
             ON CONFLICT (start, key) DO UPDATE SET
                 bytes = bytes + excluded.bytes,
                 packets = packets + excluded.packets,
                 conns = conns + excluded.conns,
                 denied = denied + excluded.denied,
                 first_off = CASE WHEN active = 0 THEN excluded.first_off
                                  WHEN excluded.active = 0 THEN first_off
                                  ELSE min(first_off, excluded.first_off) END,
                 last_off = CASE WHEN active = 0 THEN excluded.last_off
                                 WHEN excluded.active = 0 THEN last_off
                                 ELSE max(last_off, excluded.last_off) END,
                 active = active + excluded.active",
            params![span, raw_cutoff],
        )?;
        let windows_rolled_up =
            tx.execute("DELETE FROM windows WHERE start < ?1", params![raw_cutoff])?;
        let rollups_removed = tx.execute(
            "DELETE FROM rollups WHERE start < ?1",
            params![rollup_cutoff],
        )?;
        tx.commit()?;
        Ok(RetentionReport {
            windows_rolled_up,
            rollups_removed,
        })
    }

    /// Row counts of the raw and rollup tables.
    pub fn row_counts(&self) -> anyhow::Result<(u64, u64)> {
        let windows: i64 = self
            .conn
            .query_row("SELECT count(*) FROM windows", [], |r| r.get(0))?;
        let rollups: i64 = self
            .conn
            .query_row("SELECT count(*) FROM rollups", [], |r| r.get(0))?;
        Ok((
            u64::try_from(windows).unwrap_or(0),
            u64::try_from(rollups).unwrap_or(0),
        ))
    }

    /// Moves the write-ahead log into the database file (what `checkpoint`
    /// does on close anyway); disk-use measurements call it first.
    pub fn checkpoint(&self) -> anyhow::Result<()> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Bytes the database occupies (pages in use, without the free list).
    pub fn database_bytes(&self) -> anyhow::Result<u64> {
        let pages: i64 = self.conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let free: i64 = self
            .conn
            .query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
        let size: i64 = self.conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        Ok(u64::try_from((pages - free).max(0) * size).unwrap_or(0))
    }
}

/// Opens (creating the directory and the file if needed) the SQLite
/// database `file` in store directory `dir`, in WAL mode so that readers
/// (`augur history`, `augur signatures`) never block the daemon's writes,
/// and waiting up to 10 s for a lock another process holds.
pub(crate) fn open_database(
    dir: &Path,
    file: &str,
    durability: Durability,
) -> anyhow::Result<(Connection, PathBuf)> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create store directory {}", dir.display()))?;
    let path = dir.join(file);
    let conn =
        Connection::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        bail!("{} cannot use WAL mode (got {mode})", path.display());
    }
    let synchronous = match durability {
        Durability::Normal => "NORMAL",
        Durability::Full => "FULL",
    };
    conn.pragma_update(None, "synchronous", synchronous)?;
    Ok((conn, path))
}

/// The `endpoints.kind` and `name` columns of an endpoint.
fn endpoint_columns(endpoint: &Endpoint) -> (i64, String) {
    match endpoint {
        Endpoint::Vm(id) => (0, id.to_string()),
        Endpoint::External(ip) => (1, ip.to_string()),
    }
}

fn endpoint_from_columns(kind: i64, name: &str) -> anyhow::Result<Endpoint> {
    match kind {
        0 => Ok(Endpoint::vm(name)),
        1 => Ok(Endpoint::External(
            name.parse()
                .with_context(|| format!("bad address {name:?}"))?,
        )),
        other => bail!("unknown endpoint kind {other}"),
    }
}

fn column_u64(row: &rusqlite::Row<'_>, index: usize) -> anyhow::Result<u64> {
    let value: i64 = row.get(index)?;
    u64::try_from(value).with_context(|| format!("negative count {value} in column {index}"))
}

fn column_u32(row: &rusqlite::Row<'_>, index: usize) -> anyhow::Result<u32> {
    let value: i64 = row.get(index)?;
    u32::try_from(value).with_context(|| format!("count {value} out of range in column {index}"))
}

fn i64_of(value: u64) -> i64 {
    // SQLite integers are signed 64-bit; a counter past 2^63 saturates.
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn endpoint_id(
    tx: &Transaction<'_>,
    endpoint: &Endpoint,
    cache: &mut HashMap<Endpoint, i64>,
    new: &mut Vec<Endpoint>,
) -> anyhow::Result<i64> {
    if let Some(&id) = cache.get(endpoint) {
        return Ok(id);
    }
    let (kind, name) = endpoint_columns(endpoint);
    tx.prepare_cached("INSERT OR IGNORE INTO endpoints (kind, name) VALUES (?1, ?2)")?
        .execute(params![kind, name])?;
    let id: i64 = tx
        .prepare_cached("SELECT id FROM endpoints WHERE kind = ?1 AND name = ?2")?
        .query_row(params![kind, name], |r| r.get(0))?;
    cache.insert(endpoint.clone(), id);
    new.push(endpoint.clone());
    Ok(id)
}

fn write_rows_in(
    tx: &Transaction<'_>,
    endpoints: &Endpoints,
    rows: &[WindowRow],
    endpoint_cache: &mut HashMap<Endpoint, i64>,
    key_cache: &mut HashMap<(i64, i64, u8, u16), i64>,
    new_endpoints: &mut Vec<Endpoint>,
    new_keys: &mut Vec<(i64, i64, u8, u16)>,
) -> anyhow::Result<()> {
    let mut insert_key = tx.prepare_cached(
        "INSERT OR IGNORE INTO flow_keys (src, dst, proto, port) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut select_key = tx.prepare_cached(
        "SELECT id FROM flow_keys WHERE src = ?1 AND dst = ?2 AND proto = ?3 AND port = ?4",
    )?;
    let mut local_ids: HashMap<FlowKey, i64> = HashMap::new();
    let mut key_ids: Vec<i64> = Vec::with_capacity(rows.len());
    for row in rows {
        let key_id = match local_ids.get(&row.key) {
            Some(&id) => id,
            None => {
                let (Some(src), Some(dst)) = (
                    endpoints.endpoint(row.key.src),
                    endpoints.endpoint(row.key.dst),
                ) else {
                    bail!("row of {} refers to an unknown endpoint", row.key);
                };
                let src = endpoint_id(tx, src, endpoint_cache, new_endpoints)?;
                let dst = endpoint_id(tx, dst, endpoint_cache, new_endpoints)?;
                let db_key = (src, dst, row.key.protocol.0, row.key.service_port);
                let id = match key_cache.get(&db_key) {
                    Some(&id) => id,
                    None => {
                        insert_key.execute(params![src, dst, db_key.2, db_key.3])?;
                        let id: i64 = select_key
                            .query_row(params![src, dst, db_key.2, db_key.3], |r| r.get(0))?;
                        key_cache.insert(db_key, id);
                        new_keys.push(db_key);
                        id
                    }
                };
                local_ids.insert(row.key, id);
                id
            }
        };
        key_ids.push(key_id);
    }
    // Many rows per statement: per-statement overhead was a third of an
    // import's time with one row each.
    for (chunk, ids) in rows.chunks(UPSERT_ROWS).zip(key_ids.chunks(UPSERT_ROWS)) {
        let mut upsert = tx.prepare_cached(&upsert_sql(chunk.len()))?;
        let mut index = 1;
        for (row, &key_id) in chunk.iter().zip(ids) {
            let values: [i64; 9] = [
                row.start_s,
                key_id,
                i64_of(row.bytes),
                i64_of(row.packets),
                i64::from(row.connections),
                i64::from(row.denied),
                i64::from(row.active_windows),
                i64::from(row.first_offset_s),
                i64::from(row.last_offset_s),
            ];
            for value in values {
                upsert.raw_bind_parameter(index, value)?;
                index += 1;
            }
        }
        upsert.raw_execute()?;
    }
    Ok(())
}

/// Rows per upsert statement (9 parameters each, far below SQLite's limit).
const UPSERT_ROWS: usize = 64;

/// The upsert of `rows` window rows: a row already stored for the same key
/// and window is added to.
fn upsert_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO windows (start, key, bytes, packets, conns, denied, active, \
         first_off, last_off) VALUES ",
    );
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str("(?,?,?,?,?,?,?,?,?)");
    }
    sql.push_str(
        " ON CONFLICT (start, key) DO UPDATE SET
             bytes = bytes + excluded.bytes,
             packets = packets + excluded.packets,
             conns = conns + excluded.conns,
             denied = denied + excluded.denied,
             first_off = CASE WHEN active = 0 THEN excluded.first_off
                              WHEN excluded.active = 0 THEN first_off
                              ELSE min(first_off, excluded.first_off) END,
             last_off = CASE WHEN active = 0 THEN excluded.last_off
                             WHEN excluded.active = 0 THEN last_off
                             ELSE max(last_off, excluded.last_off) END,
             active = max(active, excluded.active)",
    );
    sql
}
