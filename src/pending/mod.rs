//! The pending-changes table: high-risk recommendations wait in the switch's
//! own OVSDB until an operator approves or rejects them with plain
//! `ovs-vsctl`.
//!
//! The `Open_vSwitch` schema cannot get a new table, and rows of non-root
//! tables are garbage-collected, so an entry is a few keys of the root row's
//! `external_ids` (where CMSes such as OVN keep their settings), all under
//! the `augur-` prefix. They live in the database file, so they survive
//! restarts of augur and of `ovsdb-server`.
//!
//! | key | written by | value |
//! |-----|------------|-------|
//! | `augur-pending-<id>` | augur | `<change> \| risk <score> <level>: <factors> \| p=<p> \| <explanation> \| queued <time>, expires <time>` |
//! | `augur-decision-<id>` | the operator | `approve` or `reject`, optionally ` by NAME`, optionally `: reason` |
//! | `augur-status-<id>` | augur | `applied as change N at <time>`, `rejected by NAME at <time>: reason`, `expired at <time>`, `error: <why> at <time>` |
//!
//! `<id>` is the recommendation's id in lowercase hex; times are RFC 3339 in
//! UTC to the second. The decision keyword is case-insensitive; anything
//! else in a decision key is malformed, reported in the status key and
//! never applied.
//!
//! The life of an entry:
//! 1. augur publishes `augur-pending-<id>` (only if the id has no keys yet,
//!    so a decided or expired entry is not queued again while its status is
//!    kept).
//! 2. The operator writes `augur-decision-<id>`. A well-formed decision is
//!    handed to the daemon even if the entry's expiry has passed since:
//!    augur may have been down when the operator decided in time. A
//!    malformed one gets an `error:` status and its decision key is removed,
//!    so the entry waits for a corrected decision. A decision with no
//!    pending entry (a typo in the id, or an entry already retired) gets an
//!    `error:` status too.
//! 3. Once the daemon has applied or dropped the change, augur writes the
//!    status and removes the pending and decision keys in one transaction.
//!    An undecided entry past its expiry is retired the same way with an
//!    `expired` status.
//! 4. A status with no pending entry is removed once it is older than the
//!    retention period, so the operator has time to read the outcome.
//!
//! This module is the pure core: key naming, the value formats, and
//! [`plan`], which from the current `external_ids` and the time says what
//! to do. [`ovsdb`] is the adapter that watches the database and writes.
//!
//! Operator commands (the README has them with example output):
//!
//! ```text
//! ovs-vsctl get Open_vSwitch . external_ids | grep -oE 'augur-[a-z]+-[0-9a-f]+=("([^"\\]|\\.)*"|[^,}]*)'
//! ovs-vsctl set Open_vSwitch . external_ids:augur-decision-<id>=approve
//! ovs-vsctl set Open_vSwitch . 'external_ids:augur-decision-<id>="reject by alice: too broad"'
//! ```

pub mod ovsdb;

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Bound;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The prefix of every key augur owns in `external_ids`.
pub const KEY_PREFIX: &str = "augur-";
/// The prefix of the keys holding pending entries.
pub const PENDING_PREFIX: &str = "augur-pending-";
/// The prefix of the keys operators write their decisions to.
pub const DECISION_PREFIX: &str = "augur-decision-";
/// The prefix of the keys augur reports outcomes in.
pub const STATUS_PREFIX: &str = "augur-status-";

/// Longest id accepted: a SHA-256 in hex.
const MAX_ID_LEN: usize = 64;
/// Longest decision text accepted; longer is malformed (and is not echoed
/// back whole).
const MAX_DECISION_LEN: usize = 1024;
/// Longest approver name.
const MAX_NAME_LEN: usize = 64;
/// How much of a malformed decision the error status quotes.
const QUOTE_LEN: usize = 60;

/// How long entries wait and statuses stay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PendingSettings {
    /// Seconds an entry waits for a decision before it expires.
    pub expire_after_secs: u64,
    /// Seconds a status stays after its entry was retired.
    pub keep_status_secs: u64,
}

impl Default for PendingSettings {
    fn default() -> Self {
        Self {
            // A working day and a night: long enough for a review by the
            // next shift, short enough that stale evidence does not linger.
            expire_after_secs: 24 * 3600,
            keep_status_secs: 7 * 24 * 3600,
        }
    }
}

impl PendingSettings {
    /// How long an entry waits for a decision.
    pub fn expire_after(&self) -> Duration {
        Duration::from_secs(self.expire_after_secs)
    }

    /// How long a status stays after its entry was retired.
    pub fn keep_status(&self) -> Duration {
        Duration::from_secs(self.keep_status_secs)
    }
}

/// A time to the second, written as RFC 3339 in UTC (`2026-11-30T03:40:00Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// Seconds since 1970-01-01T00:00:00Z.
    pub const fn from_unix_secs(secs: i64) -> Self {
        Self(secs)
    }

    /// Seconds since 1970-01-01T00:00:00Z.
    pub const fn unix_secs(self) -> i64 {
        self.0
    }

    /// The current time of the system clock.
    pub fn now() -> Self {
        Self::from(SystemTime::now())
    }

    /// `self + d`, saturating.
    pub fn saturating_add(self, d: Duration) -> Self {
        Self(
            self.0
                .saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
        )
    }

    /// The time from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_secs(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }
}

impl Serialize for Timestamp {
    /// As the RFC 3339 text.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Self(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
            Err(e) => Self(i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s)),
        }
    }
}

// Years outside 0..=9999 would not print as four digits, so they are
// clamped when printed and never parsed.
const MIN_SECS: i64 = -62_167_219_200; // 0000-01-01T00:00:00Z
const MAX_SECS: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z

/// The moment `Timestamp` counts from, as a civil time in UTC. (Civil
/// rather than jiff's own timestamps, whose range stops a day short of
/// 9999-12-31 to leave room for offsets.)
const EPOCH: jiff::civil::DateTime = jiff::civil::datetime(1970, 1, 1, 0, 0, 0, 0);

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.clamp(MIN_SECS, MAX_SECS);
        match jiff::Span::new()
            .try_seconds(secs)
            .and_then(|span| EPOCH.checked_add(span))
        {
            Ok(time) => write!(f, "{}", time.strftime("%Y-%m-%dT%H:%M:%SZ")),
            // Unreachable: every clamped value is a time jiff knows.
            Err(_) => write!(f, "{secs}"),
        }
    }
}

/// A text that is not a time as augur writes them.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0:?} is not a UTC time such as 2026-11-30T03:40:00Z")]
pub struct TimestampError(String);

impl FromStr for Timestamp {
    type Err = TimestampError;

    /// Exactly `YYYY-MM-DDTHH:MM:SSZ`, the form augur writes. RFC 3339 also
    /// allows offsets, fractions and lowercase letters, and jiff reads a
    /// leap second as :59; augur writes none of these, so an operator's
    /// typing them is more likely a mistake than a time.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || TimestampError(s.chars().take(QUOTE_LEN).collect());
        let b = s.as_bytes();
        let shaped = b.len() == 20
            && b.iter().enumerate().all(|(i, &c)| match i {
                4 | 7 => c == b'-',
                10 => c == b'T',
                13 | 16 => c == b':',
                19 => c == b'Z',
                _ => c.is_ascii_digit(),
            });
        if !shaped || b.get(17..19) == Some(b"60".as_slice()) {
            return Err(bad());
        }
        let time: jiff::civil::DateTime = s
            .get(..19)
            .and_then(|text| text.parse().ok())
            .ok_or_else(bad)?;
        let since = time.since((jiff::Unit::Second, EPOCH)).map_err(|_| bad())?;
        Ok(Self(since.get_seconds()))
    }
}

/// The id of an entry: the recommendation's stable id, lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct EntryId(String);

/// A text that cannot be an entry id.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0:?} is not an entry id (1 to 64 lowercase hex digits)")]
pub struct IdError(String);

impl EntryId {
    /// Checks that `id` is 1 to 64 lowercase hex digits: ids become parts of
    /// keys that operators type, so they stay short and unambiguous.
    pub fn new(id: &str) -> Result<Self, IdError> {
        if !id.is_empty()
            && id.len() <= MAX_ID_LEN
            && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            Ok(Self(id.to_owned()))
        } else {
            Err(IdError(id.chars().take(QUOTE_LEN).collect()))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `augur-pending-<id>`.
    pub fn pending_key(&self) -> String {
        format!("{PENDING_PREFIX}{}", self.0)
    }

    /// `augur-decision-<id>`.
    pub fn decision_key(&self) -> String {
        format!("{DECISION_PREFIX}{}", self.0)
    }

    /// `augur-status-<id>`.
    pub fn status_key(&self) -> String {
        format!("{STATUS_PREFIX}{}", self.0)
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for EntryId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// Which of augur's keys a key of `external_ids` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeyKind {
    /// `augur-pending-<id>`.
    Pending,
    /// `augur-decision-<id>`.
    Decision,
    /// `augur-status-<id>`.
    Status,
}

/// Splits one of augur's keys into its kind and the text after the prefix
/// (not necessarily a valid id: operators may mistype). `None` for keys
/// that are not augur's pending-table keys.
pub fn parse_key(key: &str) -> Option<(KeyKind, &str)> {
    [
        (PENDING_PREFIX, KeyKind::Pending),
        (DECISION_PREFIX, KeyKind::Decision),
        (STATUS_PREFIX, KeyKind::Status),
    ]
    .into_iter()
    .find_map(|(prefix, kind)| key.strip_prefix(prefix).map(|rest| (kind, rest)))
}

/// Makes `s` fit one field of a one-line value: control characters become
/// spaces, `|` (the field separator) becomes `/`, `"` becomes `'` (so
/// `ovs-vsctl` output needs no escapes), and the ends are trimmed.
fn one_field(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            c if c.is_control() => ' ',
            '|' => '/',
            '"' => '\'',
            c => c,
        })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// What an entry says about its change, as shown to the operator.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// The change in one line (`allow web -> db tcp/5432`).
    pub change: String,
    /// The risk score.
    pub risk_score: f64,
    /// The risk level (`high`).
    pub risk_level: String,
    /// The factors that decided the level.
    pub factors: Vec<String>,
    /// The predicted probability of use.
    pub probability: f64,
    /// The evidence in one line.
    pub explanation: String,
}

impl Summary {
    /// The summary as it will read back: texts made to fit their fields
    /// (see the module docs), the level one word, factors free of commas,
    /// numbers to two decimals.
    pub fn normalized(&self) -> Summary {
        let round = |x: f64| (x * 100.0).round() / 100.0;
        let level = one_field(&self.risk_level).replace([' ', ':'], "-");
        Summary {
            change: one_field(&self.change),
            risk_score: round(self.risk_score),
            risk_level: if level.is_empty() {
                "unknown".to_owned()
            } else {
                level
            },
            factors: self
                .factors
                .iter()
                .map(|f| one_field(&f.replace(',', ";")))
                .filter(|f| !f.is_empty())
                .collect(),
            probability: round(self.probability),
            explanation: one_field(&self.explanation),
        }
    }
}

/// One entry of the pending table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PendingEntry {
    /// The recommendation's id.
    pub id: EntryId,
    /// What the change is and why.
    pub summary: Summary,
    /// When it was queued.
    pub created: Timestamp,
    /// When it expires if undecided.
    pub expires: Timestamp,
}

/// Why a pending value could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unreadable pending entry: {0}")]
pub struct SummaryError(String);

impl PendingEntry {
    /// An entry queued at `created` that expires after the settings' wait.
    pub fn new(
        id: EntryId,
        summary: Summary,
        created: Timestamp,
        settings: &PendingSettings,
    ) -> Self {
        Self {
            id,
            summary: summary.normalized(),
            created,
            expires: created.saturating_add(settings.expire_after()),
        }
    }

    /// The value of the `augur-pending-<id>` key.
    pub fn value(&self) -> String {
        let s = self.summary.normalized();
        let mut risk = format!("risk {:.2} {}", s.risk_score, s.risk_level);
        if !s.factors.is_empty() {
            risk.push_str(": ");
            risk.push_str(&s.factors.join(", "));
        }
        format!(
            "{} | {risk} | p={:.2} | {} | queued {}, expires {}",
            s.change, s.probability, s.explanation, self.created, self.expires
        )
    }

    /// Reads an `augur-pending-<id>` value back.
    pub fn parse(id: EntryId, value: &str) -> Result<Self, SummaryError> {
        let bad = |what: &str| SummaryError(what.to_owned());
        let fields: Vec<&str> = value.split(" | ").collect();
        let [change, risk, p, explanation, times] = fields.as_slice() else {
            return Err(bad("expected 5 fields separated by \" | \""));
        };
        let risk = risk
            .strip_prefix("risk ")
            .ok_or_else(|| bad("the second field does not start with \"risk \""))?;
        let (score, rest) = risk
            .split_once(' ')
            .ok_or_else(|| bad("no risk level after the score"))?;
        let risk_score: f64 = score
            .parse()
            .map_err(|_| bad("the risk score is not a number"))?;
        let (risk_level, factors) = match rest.split_once(": ") {
            Some((level, factors)) => (
                level,
                factors
                    .split(", ")
                    .map(str::to_owned)
                    .filter(|f| !f.is_empty())
                    .collect(),
            ),
            None => (rest, Vec::new()),
        };
        let probability: f64 = p
            .strip_prefix("p=")
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| bad("the third field is not p=<probability>"))?;
        let times = times
            .strip_prefix("queued ")
            .ok_or_else(|| bad("the last field does not start with \"queued \""))?;
        let (created, expires) = times
            .split_once(", expires ")
            .ok_or_else(|| bad("no expiry time"))?;
        let created: Timestamp = created.parse().map_err(|e: TimestampError| bad(&e.0))?;
        let expires: Timestamp = expires.parse().map_err(|e: TimestampError| bad(&e.0))?;
        Ok(Self {
            id,
            summary: Summary {
                change: (*change).to_owned(),
                risk_score,
                risk_level: risk_level.to_owned(),
                factors,
                probability,
                explanation: (*explanation).to_owned(),
            },
            created,
            expires,
        })
    }
}

/// What the operator decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Apply the change.
    Approve,
    /// Drop it.
    Reject,
}

impl Verdict {
    /// The keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Approve => "approve",
            Verdict::Reject => "reject",
        }
    }
}

/// An operator's decision, as written in `augur-decision-<id>`:
/// `approve|reject [by NAME][: reason]`, keyword case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Approve or reject.
    pub verdict: Verdict,
    /// Who decided, if they said.
    pub by: Option<String>,
    /// Why, if they said.
    pub reason: Option<String>,
}

/// Why a decision text is malformed. The messages are written back to the
/// operator, so they quote what was written and say what would be right.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecisionError {
    /// Nothing was written.
    #[error("the decision is empty")]
    Empty,
    /// Far longer than any decision.
    #[error("the decision is {0} bytes long, more than {MAX_DECISION_LEN}")]
    TooLong(usize),
    /// The first word is not a decision.
    #[error("'{0}' is not a decision")]
    Keyword(String),
    /// `by` without a name, or a name too long.
    #[error("'by' needs a name of 1 to {MAX_NAME_LEN} characters")]
    Name,
    /// Text after the keyword that is neither `by NAME` nor `: reason`.
    #[error("unexpected '{0}' after the keyword (use 'by NAME' and ': reason')")]
    Trailing(String),
}

impl Decision {
    /// Parses a decision text. Never panics, whatever the text.
    pub fn parse(text: &str) -> Result<Decision, DecisionError> {
        if text.len() > MAX_DECISION_LEN {
            return Err(DecisionError::TooLong(text.len()));
        }
        let text = text.trim();
        if text.is_empty() {
            return Err(DecisionError::Empty);
        }
        let end = text
            .find(|c: char| c.is_whitespace() || c == ':')
            .unwrap_or(text.len());
        let (keyword, rest) = text.split_at_checked(end).unwrap_or((text, ""));
        let verdict = if keyword.eq_ignore_ascii_case("approve") {
            Verdict::Approve
        } else if keyword.eq_ignore_ascii_case("reject") {
            Verdict::Reject
        } else {
            return Err(DecisionError::Keyword(quote(keyword)));
        };
        let rest = rest.trim_start();
        let (by_part, reason) = match rest.split_once(':') {
            Some((before, after)) => (before.trim(), Some(after)),
            None => (rest.trim(), None),
        };
        let by = if by_part.is_empty() {
            None
        } else {
            let mut words = by_part.splitn(2, char::is_whitespace);
            let first = words.next().unwrap_or_default();
            if !first.eq_ignore_ascii_case("by") {
                return Err(DecisionError::Trailing(quote(by_part)));
            }
            let name = one_field(words.next().unwrap_or_default());
            if name.is_empty() || name.chars().count() > MAX_NAME_LEN {
                return Err(DecisionError::Name);
            }
            Some(name)
        };
        let reason = reason.map(one_field).filter(|r| !r.is_empty());
        let decision = Decision {
            verdict,
            by,
            reason,
        };
        // The canonical text (what `Display` writes back) can be a byte
        // longer than what was written ("approve:x" is "approve: x"), and it
        // too must parse.
        let canonical = decision.to_string().len();
        if canonical > MAX_DECISION_LEN {
            return Err(DecisionError::TooLong(canonical));
        }
        Ok(decision)
    }
}

impl fmt::Display for Decision {
    /// The canonical text, which parses back to the same decision.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.verdict.as_str())?;
        if let Some(by) = &self.by {
            write!(f, " by {by}")?;
        }
        if let Some(reason) = &self.reason {
            write!(f, ": {reason}")?;
        }
        Ok(())
    }
}

/// At most [`QUOTE_LEN`] characters of `s`, fit for a one-line message.
fn quote(s: &str) -> String {
    let mut q: String = one_field(s).replace('\'', "`");
    if q.chars().count() > QUOTE_LEN {
        q = q.chars().take(QUOTE_LEN).collect();
        q.push_str("...");
    }
    q
}

/// What became of an entry, as written in `augur-status-<id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// When augur recorded it.
    pub at: Timestamp,
    /// What happened.
    pub outcome: Outcome,
}

/// The outcome part of a [`Status`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum Outcome {
    /// Approved and applied as a policy version.
    Applied {
        /// The change (version) number in augur's history.
        change: u64,
        /// Who approved, if they said.
        by: Option<String>,
    },
    /// Rejected by the operator.
    Rejected {
        /// Who rejected, if they said.
        by: Option<String>,
        /// Why, if they said.
        reason: Option<String>,
    },
    /// Nobody decided in time.
    Expired,
    /// A decision was ignored, or could not be carried out.
    Error {
        /// Why, for the operator.
        why: String,
    },
}

impl Status {
    /// A status recorded now.
    pub fn new(at: Timestamp, outcome: Outcome) -> Self {
        Self { at, outcome }
    }

    /// Whether the status ends the entry (everything but an error, after
    /// which the entry still waits for a good decision).
    pub fn is_final(&self) -> bool {
        !matches!(self.outcome, Outcome::Error { .. })
    }

    /// Reads a status value back. Only the time is needed to retire it; the
    /// rest is parsed for `augur pending`.
    pub fn parse(value: &str) -> Option<Status> {
        if let Some(rest) = value.strip_prefix("applied as change ") {
            let (change, rest) = rest.split_once(" at ")?;
            let change = change.parse().ok()?;
            let (at, by) = match rest.split_once(" (approved by ") {
                Some((at, by)) => (at, Some(by.strip_suffix(')')?.to_owned())),
                None => (rest, None),
            };
            return Some(Status::new(
                at.parse().ok()?,
                Outcome::Applied { change, by },
            ));
        }
        if let Some(rest) = value.strip_prefix("rejected") {
            // The name cannot hold a time, so the first " at <time>" is ours.
            let (by, at, after) = split_at_time(rest, false)?;
            let by = match by {
                "" => None,
                by => Some(by.strip_prefix(" by ")?.to_owned()),
            };
            let reason = match after {
                "" => None,
                after => Some(after.strip_prefix(": ")?.to_owned()),
            };
            return Some(Status::new(at, Outcome::Rejected { by, reason }));
        }
        if let Some(rest) = value.strip_prefix("expired at ") {
            return Some(Status::new(rest.parse().ok()?, Outcome::Expired));
        }
        if let Some(rest) = value.strip_prefix("error: ") {
            // The reason may quote a time; ours is last.
            let (why, at, after) = split_at_time(rest, true)?;
            if !after.is_empty() {
                return None;
            }
            return Some(Status::new(
                at,
                Outcome::Error {
                    why: why.to_owned(),
                },
            ));
        }
        None
    }
}

/// Finds ` at <time>` in `s` (the first or the last occurrence) and returns
/// the text before, the time, and the text after.
fn split_at_time(s: &str, last: bool) -> Option<(&str, Timestamp, &str)> {
    let mut found = None;
    // Every occurrence, overlapping ones too: in "why at at <time>" the
    // separator overlaps the reason's own " at".
    let starts = s
        .char_indices()
        .map(|(i, _)| i)
        .filter(|&i| s.get(i..).is_some_and(|t| t.starts_with(" at ")));
    for i in starts {
        let after = s.get(i + 4..)?;
        let Some(time) = after.get(..20) else {
            continue;
        };
        if let Ok(t) = time.parse::<Timestamp>() {
            found = Some((s.get(..i)?, t, after.get(20..)?));
            if !last {
                break;
            }
        }
    }
    found
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.at;
        match &self.outcome {
            Outcome::Applied { change, by } => {
                write!(f, "applied as change {change} at {at}")?;
                if let Some(by) = by {
                    write!(f, " (approved by {})", one_field(by).replace(')', "]"))?;
                }
                Ok(())
            }
            Outcome::Rejected { by, reason } => {
                f.write_str("rejected")?;
                if let Some(by) = by {
                    write!(f, " by {}", one_field(by))?;
                }
                write!(f, " at {at}")?;
                if let Some(reason) = reason {
                    write!(f, ": {}", one_field(reason))?;
                }
                Ok(())
            }
            Outcome::Expired => write!(f, "expired at {at}"),
            Outcome::Error { why } => write!(f, "error: {} at {at}", one_field(why)),
        }
    }
}

/// The keys one id has in `external_ids`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Slot<'a> {
    /// The `augur-pending-` value.
    pub pending: Option<&'a str>,
    /// The `augur-decision-` value.
    pub decision: Option<&'a str>,
    /// The `augur-status-` value.
    pub status: Option<&'a str>,
}

/// augur's keys in `external_ids`, grouped by the text after the prefix
/// (the id, or what an operator typed as one).
pub fn slots(external_ids: &BTreeMap<String, String>) -> BTreeMap<&str, Slot<'_>> {
    let mut slots: BTreeMap<&str, Slot<'_>> = BTreeMap::new();
    let from = (Bound::Included(KEY_PREFIX), Bound::Unbounded);
    for (key, value) in external_ids.range::<str, _>(from) {
        if !key.starts_with(KEY_PREFIX) {
            break;
        }
        let Some((kind, id)) = parse_key(key) else {
            continue;
        };
        let slot = slots.entry(id).or_default();
        let value = Some(value.as_str());
        match kind {
            KeyKind::Pending => slot.pending = value,
            KeyKind::Decision => slot.decision = value,
            KeyKind::Status => slot.status = value,
        }
    }
    slots
}

/// Something to do about the pending table.
#[derive(Debug, Clone, PartialEq)]
pub enum PendingAction {
    /// A well-formed decision on a pending entry: hand it to the daemon,
    /// which records the outcome with a final status.
    Decide {
        /// The entry decided on.
        entry: PendingEntry,
        /// The decision.
        decision: Decision,
        /// The decision key's value as read (to tell a changed decision).
        text: String,
    },
    /// A decision that is not one, or that has no pending entry: report an
    /// error status and remove the decision key; nothing is applied.
    Ignore {
        /// The text after `augur-decision-`.
        id: String,
        /// Why, for the status.
        why: String,
    },
    /// An undecided entry past its expiry: status `expired`, pending key
    /// removed.
    Expire {
        /// The entry.
        id: EntryId,
    },
    /// A pending value augur cannot read back (edited by hand): it can never
    /// be approved safely, so it is retired with an error status.
    Discard {
        /// The text after `augur-pending-`.
        id: String,
        /// Why.
        why: String,
    },
    /// A status past its retention, with nothing else left for its id:
    /// remove it.
    RetireStatus {
        /// The text after `augur-status-`.
        id: String,
    },
    /// An entry augur wants pending that has no keys yet: publish it.
    Publish {
        /// The entry.
        entry: PendingEntry,
    },
}

/// The keys an action removes and the pairs it writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyChanges {
    /// Keys to remove.
    pub delete: Vec<String>,
    /// Keys to set (removed first, as the map `insert` mutator keeps
    /// existing keys).
    pub insert: Vec<(String, String)>,
}

impl KeyChanges {
    /// Adds another action's changes.
    pub fn extend(&mut self, other: KeyChanges) {
        self.delete.extend(other.delete);
        self.insert.extend(other.insert);
    }

    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.delete.is_empty() && self.insert.is_empty()
    }
}

/// The changes that record `status` for the text after the prefixes: the
/// status key written and, when `retire` is set, the pending and decision
/// keys removed.
pub fn status_changes(id: &str, status: &Status, retire: bool) -> KeyChanges {
    let mut delete = vec![format!("{DECISION_PREFIX}{id}")];
    if retire {
        delete.push(format!("{PENDING_PREFIX}{id}"));
    }
    KeyChanges {
        delete,
        insert: vec![(format!("{STATUS_PREFIX}{id}"), status.to_string())],
    }
}

impl PendingAction {
    /// The key changes that carry the action out at `now`. `Decide` has
    /// none: the daemon records its outcome.
    pub fn changes(&self, now: Timestamp) -> KeyChanges {
        match self {
            PendingAction::Decide { .. } => KeyChanges::default(),
            PendingAction::Ignore { id, why } => status_changes(
                id,
                &Status::new(now, Outcome::Error { why: why.clone() }),
                false,
            ),
            PendingAction::Expire { id } => {
                status_changes(id.as_str(), &Status::new(now, Outcome::Expired), true)
            }
            PendingAction::Discard { id, why } => status_changes(
                id,
                &Status::new(now, Outcome::Error { why: why.clone() }),
                true,
            ),
            PendingAction::RetireStatus { id } => KeyChanges {
                delete: vec![format!("{STATUS_PREFIX}{id}")],
                insert: Vec::new(),
            },
            PendingAction::Publish { entry } => KeyChanges {
                delete: Vec::new(),
                insert: vec![(entry.id.pending_key(), entry.value())],
            },
        }
    }
}

/// From the current `external_ids` and the time, what to do: decisions to
/// hand over, decisions to ignore with an error, entries to expire or
/// discard, statuses to retire, and which of `wanted` to publish.
pub fn plan(
    external_ids: &BTreeMap<String, String>,
    wanted: &[PendingEntry],
    now: Timestamp,
    settings: &PendingSettings,
) -> Vec<PendingAction> {
    let slots = slots(external_ids);
    let mut actions = Vec::new();
    for (&raw_id, slot) in &slots {
        let id = EntryId::new(raw_id);
        match (slot.pending, slot.decision) {
            (Some(pending), decision) => {
                let entry = match &id {
                    Ok(id) => PendingEntry::parse(id.clone(), pending).map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                let entry = match entry {
                    Ok(entry) => entry,
                    Err(why) => {
                        actions.push(PendingAction::Discard {
                            id: raw_id.to_owned(),
                            why: format!("{why}; it was not applied"),
                        });
                        continue;
                    }
                };
                match decision.map(|text| (text, Decision::parse(text))) {
                    Some((text, Ok(decision))) => actions.push(PendingAction::Decide {
                        entry,
                        decision,
                        text: text.to_owned(),
                    }),
                    Some((_, Err(e))) => actions.push(PendingAction::Ignore {
                        id: raw_id.to_owned(),
                        why: format!("{e} (write approve or reject)"),
                    }),
                    None if now >= entry.expires => {
                        actions.push(PendingAction::Expire { id: entry.id })
                    }
                    None => {}
                }
            }
            (None, Some(_)) => {
                let why = match (&id, slot.status) {
                    (Err(_), _) => format!(
                        "'{}' is not the id of a pending change (see augur-pending-* keys)",
                        quote(raw_id)
                    ),
                    (Ok(_), Some(status))
                        if Status::parse(status).is_some_and(|s| s.is_final()) =>
                    {
                        format!("no longer pending (it was {status})")
                    }
                    (Ok(_), _) => {
                        "no pending change has this id (see augur-pending-* keys)".to_owned()
                    }
                };
                actions.push(PendingAction::Ignore {
                    id: raw_id.to_owned(),
                    why,
                });
            }
            (None, None) => {
                let expired = slot.status.is_none_or(|status| {
                    Status::parse(status)
                        .is_none_or(|s| now >= s.at.saturating_add(settings.keep_status()))
                });
                if expired {
                    actions.push(PendingAction::RetireStatus {
                        id: raw_id.to_owned(),
                    });
                }
            }
        }
    }
    for entry in wanted {
        if !slots.contains_key(entry.id.as_str()) {
            actions.push(PendingAction::Publish {
                entry: entry.clone(),
            });
        }
    }
    actions
}

/// The earliest time after `now` at which [`plan`] would act without any
/// change to `external_ids`: an expiry or the end of a retention.
pub fn next_deadline(
    external_ids: &BTreeMap<String, String>,
    now: Timestamp,
    settings: &PendingSettings,
) -> Option<Timestamp> {
    slots(external_ids)
        .into_iter()
        .filter_map(
            |(raw_id, slot)| match (slot.pending, slot.decision, slot.status) {
                (Some(pending), None, _) => {
                    let id = EntryId::new(raw_id).ok()?;
                    PendingEntry::parse(id, pending).ok().map(|e| e.expires)
                }
                (None, None, Some(status)) => {
                    Status::parse(status).map(|s| s.at.saturating_add(settings.keep_status()))
                }
                _ => None,
            },
        )
        .filter(|t| *t > now)
        .min()
}

#[cfg(test)]
mod tests;
