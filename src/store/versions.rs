//! The policy version history on disk: one SQLite database
//! (`versions.sqlite3`) beside the communication history in the store
//! directory, in WAL mode with `synchronous = FULL`, so that a version
//! reported applied survives a SIGKILL or a power cut, and `augur history`
//! reads it while the daemon writes.
//!
//! A separate file rather than tables in the communication history: that
//! database is written by the observer's thread with its own durability
//! setting, and a policy version must not wait behind a window of flow rows.
//!
//! Each version is one row: its sequence number, its status for queries by
//! hand (`sqlite3 versions.sqlite3 'select seq, status from versions'`),
//! and the whole [`PolicyVersion`] as JSON.
//!
//! Beside it, in table `watches`, a change augur applied has what the
//! decision loop needs to watch it on after a restart ([`WatchRecord`]),
//! written in the same transaction as the version. It is the loop's, not
//! the policy's: kept out of the version's record, which stays what
//! `augur history` shows and older readers decode, and a history without
//! the table (written by an older augur) simply has no watches to resume.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use rusqlite::{Connection, OptionalExtension, params};

use crate::orchestrate::engine::WatchRecord;
use crate::orchestrate::versions::{PlannedRollback, PolicyVersion, Seq, Status};

/// The file name of the version history in the store directory.
pub const VERSIONS_FILE: &str = "versions.sqlite3";

/// The version history.
#[derive(Debug)]
pub struct VersionStore {
    conn: Connection,
    path: PathBuf,
}

impl VersionStore {
    /// Opens (creating if needed) the history in store directory `dir`.
    pub fn open(dir: &Path) -> anyhow::Result<VersionStore> {
        // Every version is a promise of what the switches hold: FULL, so a
        // power cut cannot lose one the daemon reported applied.
        let (conn, path) = super::open_database(dir, VERSIONS_FILE, super::Durability::Full)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS versions (
                 seq INTEGER PRIMARY KEY,
                 created_ms INTEGER NOT NULL,
                 status TEXT NOT NULL,
                 record TEXT NOT NULL
             );
             CREATE TABLE IF NOT EXISTS watches (
                 seq INTEGER PRIMARY KEY,
                 record TEXT NOT NULL
             );",
        )
        .with_context(|| format!("cannot create the versions table in {}", path.display()))?;
        Ok(VersionStore { conn, path })
    }

    /// Opens an existing history to read it (`augur history`); `None` if
    /// the directory has none.
    pub fn open_existing(dir: &Path) -> anyhow::Result<Option<VersionStore>> {
        if !dir.join(VERSIONS_FILE).exists() {
            return Ok(None);
        }
        VersionStore::open(dir).map(Some)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends a new version; refuses a sequence number already used.
    pub fn append(&mut self, version: &PolicyVersion) -> anyhow::Result<()> {
        self.append_watched(version, None)
    }

    /// Appends a new version with what the decision loop watches it for,
    /// in one transaction; refuses a sequence number already used.
    pub fn append_watched(
        &mut self,
        version: &PolicyVersion,
        watch: Option<&WatchRecord>,
    ) -> anyhow::Result<()> {
        let record = serde_json::to_string(version)?;
        let watch = watch.map(serde_json::to_string).transpose()?;
        let seq = seq_sql(version.seq)?;
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO versions (seq, created_ms, status, record) VALUES (?1, ?2, ?3, ?4)",
            params![
                seq,
                i64::try_from(version.created_ms).unwrap_or(i64::MAX),
                status_name(&version.status),
                record
            ],
        )
        .with_context(|| format!("cannot append version {}", version.seq))?;
        // A row left behind by versions deleted by hand must not stand for
        // this one.
        tx.execute("DELETE FROM watches WHERE seq = ?1", params![seq])?;
        if let Some(watch) = watch {
            tx.execute(
                "INSERT INTO watches (seq, record) VALUES (?1, ?2)",
                params![seq, watch],
            )
            .with_context(|| format!("cannot record the watch of version {}", version.seq))?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The watch records, by version. One that does not decode (written
    /// by a newer augur, or damaged) is left out with a warning: without
    /// it the change is merely not watched again.
    pub fn watches(&self) -> anyhow::Result<BTreeMap<Seq, WatchRecord>> {
        let mut statement = self
            .conn
            .prepare("SELECT seq, record FROM watches ORDER BY seq")?;
        let rows =
            statement.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (seq, record) = row?;
            let Ok(seq) = Seq::try_from(seq) else {
                continue;
            };
            match serde_json::from_str::<WatchRecord>(&record) {
                Ok(watch) => {
                    out.insert(seq, watch);
                }
                Err(e) => tracing::warn!(
                    version = seq,
                    "{}: the watch record of version {seq} does not decode ({e}); it is not \
                     watched again",
                    self.path.display()
                ),
            }
        }
        Ok(out)
    }

    /// Records a rollback in one transaction: its version, and the versions
    /// it undid marked rolled back.
    pub fn record_rollback(&mut self, rollback: &PlannedRollback) -> anyhow::Result<()> {
        let tx = self.conn.transaction()?;
        let mut undone = Vec::with_capacity(rollback.undone.len());
        for seq in &rollback.undone {
            let Some(mut version) = get_in(&tx, *seq)? else {
                bail!("version {seq} is not in the history");
            };
            version.status = Status::RolledBack {
                at_ms: rollback.version.created_ms,
                by: rollback.version.seq,
                why: rollback.version.explanation.clone(),
            };
            undone.push(version);
        }
        for version in &undone {
            tx.execute(
                "UPDATE versions SET status = ?2, record = ?3 WHERE seq = ?1",
                params![
                    seq_sql(version.seq)?,
                    status_name(&version.status),
                    serde_json::to_string(version)?
                ],
            )?;
        }
        tx.execute(
            "INSERT INTO versions (seq, created_ms, status, record) VALUES (?1, ?2, ?3, ?4)",
            params![
                seq_sql(rollback.version.seq)?,
                i64::try_from(rollback.version.created_ms).unwrap_or(i64::MAX),
                status_name(&rollback.version.status),
                serde_json::to_string(&rollback.version)?
            ],
        )
        .with_context(|| format!("cannot append version {}", rollback.version.seq))?;
        tx.commit()?;
        Ok(())
    }

    /// Every version, in order. A row that does not decode (written by a
    /// newer augur, or damaged) is an error rather than skipped: the policy
    /// in force could not be rebuilt without it.
    pub fn list(&self) -> anyhow::Result<Vec<PolicyVersion>> {
        let mut statement = self
            .conn
            .prepare("SELECT seq, record FROM versions ORDER BY seq")?;
        let rows =
            statement.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, record) = row?;
            out.push(decode(seq, &record)?);
        }
        Ok(out)
    }

    /// One version.
    pub fn get(&self, seq: Seq) -> anyhow::Result<Option<PolicyVersion>> {
        get_in(&self.conn, seq)
    }
}

fn get_in(conn: &Connection, seq: Seq) -> anyhow::Result<Option<PolicyVersion>> {
    let record: Option<String> = conn
        .query_row(
            "SELECT record FROM versions WHERE seq = ?1",
            params![seq_sql(seq)?],
            |r| r.get(0),
        )
        .optional()?;
    record
        .map(|r| decode(i64::try_from(seq).unwrap_or(i64::MAX), &r))
        .transpose()
}

fn decode(seq: i64, record: &str) -> anyhow::Result<PolicyVersion> {
    let version: PolicyVersion = serde_json::from_str(record)
        .with_context(|| format!("version {seq} of the history does not decode"))?;
    if i64::try_from(version.seq).ok() != Some(seq) {
        bail!("version {seq} of the history says it is {}", version.seq);
    }
    Ok(version)
}

fn seq_sql(seq: Seq) -> anyhow::Result<i64> {
    i64::try_from(seq).with_context(|| format!("sequence number {seq} is too large"))
}

fn status_name(status: &Status) -> &'static str {
    match status {
        Status::Applied => "applied",
        Status::RolledBack { .. } => "rolled_back",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orchestrate::versions::{Decider, RollbackBy, RollbackTarget, plan_rollback};
    use crate::policy::Policy;
    use std::time::UNIX_EPOCH;

    fn version(seq: Seq) -> PolicyVersion {
        PolicyVersion {
            seq,
            number: seq as u16,
            parent: seq - 1,
            created_ms: 1000 * seq,
            decider: Decider::Operator("alice".into()),
            recommendation: Some(format!("rec{seq}")),
            change: None,
            explanation: "because".into(),
            risk_factors: vec!["new_pair: 0.2".into()],
            added: vec![],
            removed: vec![],
            groups: vec![],
            endpoints: vec![],
            status: Status::Applied,
        }
    }

    #[test]
    fn watches_are_stored_with_their_version_and_a_bad_one_is_left_out() {
        use crate::orchestrate::engine::EndpointRecord;
        let dir = tempfile::tempdir().unwrap();
        // A history written before watches were stored.
        {
            let conn = Connection::open(dir.path().join(VERSIONS_FILE)).unwrap();
            conn.execute_batch(
                "CREATE TABLE versions (seq INTEGER PRIMARY KEY, created_ms INTEGER NOT NULL,
                 status TEXT NOT NULL, record TEXT NOT NULL);",
            )
            .unwrap();
            conn.execute(
                "INSERT INTO versions (seq, created_ms, status, record) VALUES (1, 1000, \
                 'applied', ?1)",
                params![serde_json::to_string(&version(1)).unwrap()],
            )
            .unwrap();
        }
        let mut store = VersionStore::open(dir.path()).unwrap();
        assert!(store.watches().unwrap().is_empty());
        let watch = WatchRecord {
            pairs: vec![(
                EndpointRecord::Vm("web-1".into()),
                EndpointRecord::External("192.0.2.7".parse().unwrap()),
            )],
            limits: true,
            denied_rate_before: 0.25,
        };
        store.append_watched(&version(2), Some(&watch)).unwrap();
        store.append_watched(&version(3), None).unwrap();
        // The version's number is taken: neither it nor its watch is
        // written.
        assert!(
            store
                .append_watched(&version(2), Some(&WatchRecord::default()))
                .is_err()
        );
        store
            .conn
            .execute(
                "INSERT INTO watches (seq, record) VALUES (4, '{\"pairs\": 7}')",
                [],
            )
            .unwrap();
        drop(store);
        let store = VersionStore::open(dir.path()).unwrap();
        assert_eq!(store.list().unwrap().len(), 3);
        assert_eq!(store.watches().unwrap(), BTreeMap::from([(2, watch)]));
    }

    #[test]
    fn append_rollback_list_get_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        assert!(VersionStore::open_existing(dir.path()).unwrap().is_none());
        let mut store = VersionStore::open(dir.path()).unwrap();
        store.append(&version(1)).unwrap();
        store.append(&version(2)).unwrap();
        assert!(
            store.append(&version(2)).is_err(),
            "sequence numbers are unique"
        );
        let history = store.list().unwrap();
        let planned = plan_rollback(
            &Policy::default(),
            0,
            &history,
            RollbackTarget::Change(1),
            RollbackBy::Operator("test".into()),
            UNIX_EPOCH,
        )
        .unwrap();
        store.record_rollback(&planned).unwrap();
        drop(store);
        let store = VersionStore::open_existing(dir.path()).unwrap().unwrap();
        let history = store.list().unwrap();
        assert_eq!(history.len(), 3);
        assert!(matches!(
            history[0].status,
            Status::RolledBack { by: 3, .. }
        ));
        assert_eq!(history[1].status, Status::Applied);
        assert_eq!(history[2].decider, Decider::Rollback { of: vec![1] });
        assert_eq!(store.get(2).unwrap().unwrap(), version(2));
        assert!(store.get(9).unwrap().is_none());
    }
}
