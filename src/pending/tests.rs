use super::*;
use proptest::prelude::*;

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn id(s: &str) -> EntryId {
    EntryId::new(s).unwrap()
}

fn summary() -> Summary {
    Summary {
        change: "allow web -> db tcp/5432".into(),
        risk_score: 0.72,
        risk_level: "high".into(),
        factors: vec!["sensitive port".into(), "crosses tier".into()],
        probability: 0.93,
        explanation: "seen 42 times in 6 days, daily at 02:00 +-3 min".into(),
    }
}

fn entry(hex: &str, created: &str) -> PendingEntry {
    PendingEntry::new(id(hex), summary(), t(created), &PendingSettings::default())
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn timestamps_print_and_parse_as_rfc3339_utc() {
    let table: &[(i64, &str)] = &[
        (0, "1970-01-01T00:00:00Z"),
        (951_782_400, "2000-02-29T00:00:00Z"),
        (1_796_010_000, "2026-11-30T03:40:00Z"),
        (-1, "1969-12-31T23:59:59Z"),
        (MAX_SECS, "9999-12-31T23:59:59Z"),
        (MIN_SECS, "0000-01-01T00:00:00Z"),
    ];
    for (secs, text) in table {
        assert_eq!(Timestamp::from_unix_secs(*secs).to_string(), *text);
        assert_eq!(t(text).unix_secs(), *secs, "{text}");
    }
    for bad in [
        "",
        "2026-11-30 03:40:00Z",
        "2026-11-30T03:40:00",
        "2026-11-30T03:40:00+00:00",
        "2026-02-29T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-00-01T00:00:00Z",
        "2026-11-31T00:00:00Z",
        "2026-11-30T24:00:00Z",
        "2026-11-30T23:60:00Z",
        "2026-11-30T23:59:60Z",
        "+026-11-30T23:59:59Z",
        "2026-11-30T23:59:5\u{e9}",
    ] {
        assert!(bad.parse::<Timestamp>().is_err(), "{bad:?}");
    }
    // Out of range times print clamped rather than as garbage.
    assert_eq!(
        Timestamp::from_unix_secs(i64::MAX).to_string(),
        "9999-12-31T23:59:59Z"
    );
}

#[test]
fn ids_are_short_lowercase_hex() {
    for good in ["0", "0a1b2c3d", &"f".repeat(64)] {
        assert_eq!(EntryId::new(good).unwrap().as_str(), good);
    }
    for bad in ["", "0A1B", "xyz", "0a 1b", &"f".repeat(65), "0a-1"] {
        assert!(EntryId::new(bad).is_err(), "{bad:?}");
    }
    let id = id("0a1b");
    assert_eq!(id.pending_key(), "augur-pending-0a1b");
    assert_eq!(id.decision_key(), "augur-decision-0a1b");
    assert_eq!(id.status_key(), "augur-status-0a1b");
    assert_eq!(
        parse_key("augur-decision-0a1b"),
        Some((KeyKind::Decision, "0a1b"))
    );
    assert_eq!(parse_key("augur-status-"), Some((KeyKind::Status, "")));
    assert_eq!(parse_key("augur-other"), None);
    assert_eq!(parse_key("system-id"), None);
}

#[test]
fn decisions_parse_from_what_operators_write() {
    let ok = |verdict, by: Option<&str>, reason: Option<&str>| Decision {
        verdict,
        by: by.map(str::to_owned),
        reason: reason.map(str::to_owned),
    };
    use Verdict::{Approve, Reject};
    let table = [
        ("approve", ok(Approve, None, None)),
        ("APPROVE", ok(Approve, None, None)),
        ("  Reject  ", ok(Reject, None, None)),
        ("approve by alice", ok(Approve, Some("alice"), None)),
        ("approve BY alice", ok(Approve, Some("alice"), None)),
        ("reject by Jane Doe", ok(Reject, Some("Jane Doe"), None)),
        (
            "reject by bob: too broad, ask alice",
            ok(Reject, Some("bob"), Some("too broad, ask alice")),
        ),
        ("reject: too broad", ok(Reject, None, Some("too broad"))),
        ("reject:too broad", ok(Reject, None, Some("too broad"))),
        ("approve:", ok(Approve, None, None)),
        (
            "approve by ops: ticket 42: ok",
            ok(Approve, Some("ops"), Some("ticket 42: ok")),
        ),
        ("reject\tby\tbob", ok(Reject, Some("bob"), None)),
    ];
    for (text, expected) in table {
        assert_eq!(Decision::parse(text), Ok(expected.clone()), "{text:?}");
        // The canonical text reads back the same.
        assert_eq!(Decision::parse(&expected.to_string()), Ok(expected));
    }
    let bad = [
        ("", DecisionError::Empty),
        ("   ", DecisionError::Empty),
        ("yes", DecisionError::Keyword("yes".into())),
        ("approved", DecisionError::Keyword("approved".into())),
        (
            "approveby alice",
            DecisionError::Keyword("approveby".into()),
        ),
        ("ok: fine", DecisionError::Keyword("ok".into())),
        ("approve by", DecisionError::Name),
        ("approve by :x", DecisionError::Name),
        ("approve now", DecisionError::Trailing("now".into())),
        ("reject bob", DecisionError::Trailing("bob".into())),
    ];
    for (text, expected) in bad {
        assert_eq!(Decision::parse(text), Err(expected), "{text:?}");
    }
    let long = "approve ".repeat(200);
    assert_eq!(
        Decision::parse(&long),
        Err(DecisionError::TooLong(long.len()))
    );
    assert_eq!(
        Decision::parse(&format!("approve by {}", "x".repeat(65))),
        Err(DecisionError::Name)
    );
    assert_eq!(
        DecisionError::Keyword("yes".into()).to_string(),
        "'yes' is not a decision"
    );
}

#[test]
fn pending_values_read_back() {
    let e = entry("0a1b2c3d", "2026-11-30T03:40:00Z");
    let value = e.value();
    assert_eq!(
        value,
        "allow web -> db tcp/5432 | risk 0.72 high: sensitive port, crosses tier | p=0.93 \
         | seen 42 times in 6 days, daily at 02:00 +-3 min \
         | queued 2026-11-30T03:40:00Z, expires 2026-12-01T03:40:00Z"
    );
    assert_eq!(PendingEntry::parse(e.id.clone(), &value), Ok(e.clone()));

    // Texts are made to fit the one-line format.
    let awkward = PendingEntry::new(
        id("1"),
        Summary {
            change: " allow a|b \"x\"\n".into(),
            risk_score: 0.666,
            risk_level: "very high".into(),
            factors: vec!["a, b".into(), "  ".into()],
            probability: 1.0,
            explanation: String::new(),
        },
        t("2026-11-30T03:40:00Z"),
        &PendingSettings::default(),
    );
    let value = awkward.value();
    assert_eq!(
        value,
        "allow a/b 'x' | risk 0.67 very-high: a; b | p=1.00 |  \
         | queued 2026-11-30T03:40:00Z, expires 2026-12-01T03:40:00Z"
    );
    assert_eq!(PendingEntry::parse(id("1"), &value), Ok(awkward));

    for bad in [
        "",
        "hand edited",
        "a | b | c | d | e",
        "a | risk x high | p=0.5 | e | queued 2026-11-30T03:40:00Z, expires 2026-12-01T03:40:00Z",
        "a | risk 0.5 high | p=0.5 | e | queued 2026-11-30T03:40:00Z",
        "a | risk 0.5 high | p=0.5 | e | queued 2026-11-30T03:40:00Z, expires tomorrow",
    ] {
        assert!(PendingEntry::parse(id("1"), bad).is_err(), "{bad:?}");
    }
}

#[test]
fn statuses_read_back() {
    let at = t("2026-11-30T03:40:00Z");
    let table = [
        (
            Outcome::Applied {
                change: 17,
                by: Some("alice".into()),
            },
            "applied as change 17 at 2026-11-30T03:40:00Z (approved by alice)",
        ),
        (
            Outcome::Applied {
                change: 3,
                by: None,
            },
            "applied as change 3 at 2026-11-30T03:40:00Z",
        ),
        (
            Outcome::Rejected {
                by: Some("bob".into()),
                reason: Some("too broad at 2026-01-01T00:00:00Z".into()),
            },
            "rejected by bob at 2026-11-30T03:40:00Z: too broad at 2026-01-01T00:00:00Z",
        ),
        (
            Outcome::Rejected {
                by: None,
                reason: None,
            },
            "rejected at 2026-11-30T03:40:00Z",
        ),
        (Outcome::Expired, "expired at 2026-11-30T03:40:00Z"),
        (
            Outcome::Error {
                why: "no longer pending (it was expired at 2026-11-29T00:00:00Z)".into(),
            },
            "error: no longer pending (it was expired at 2026-11-29T00:00:00Z) at 2026-11-30T03:40:00Z",
        ),
    ];
    for (outcome, text) in table {
        let status = Status::new(at, outcome);
        assert_eq!(status.to_string(), text);
        assert_eq!(Status::parse(text), Some(status), "{text}");
    }
    for bad in [
        "",
        "applied",
        "applied as change x at 2026-11-30T03:40:00Z",
        "expired",
        "error: no time",
        "rejected by bob",
        "done at 2026-11-30T03:40:00Z",
    ] {
        assert_eq!(Status::parse(bad), None, "{bad:?}");
    }
}

const SETTINGS: PendingSettings = PendingSettings {
    expire_after_secs: 3600,
    keep_status_secs: 600,
};

#[test]
fn plan_hands_over_well_formed_decisions_only() {
    let e = PendingEntry::new(id("aa"), summary(), t("2026-11-30T03:00:00Z"), &SETTINGS);
    let now = t("2026-11-30T03:10:00Z");
    let pending = e.value();
    let ids = map(&[
        ("system-id", "abc"),
        ("ovn-remote", "tcp:1.2.3.4:6642"),
        ("augur-pending-aa", &pending),
        ("augur-decision-aa", "Approve by alice"),
    ]);
    assert_eq!(
        plan(&ids, &[], now, &SETTINGS),
        vec![PendingAction::Decide {
            entry: e.clone(),
            decision: Decision {
                verdict: Verdict::Approve,
                by: Some("alice".into()),
                reason: None
            },
            text: "Approve by alice".into(),
        }]
    );

    // Malformed: an error status, the decision key removed, nothing decided.
    let ids = map(&[("augur-pending-aa", &pending), ("augur-decision-aa", "yes")]);
    let actions = plan(&ids, &[], now, &SETTINGS);
    assert_eq!(
        actions,
        vec![PendingAction::Ignore {
            id: "aa".into(),
            why: "'yes' is not a decision (write approve or reject)".into()
        }]
    );
    assert_eq!(
        actions[0].changes(now),
        KeyChanges {
            delete: vec!["augur-decision-aa".into()],
            insert: vec![(
                "augur-status-aa".into(),
                "error: 'yes' is not a decision (write approve or reject) at 2026-11-30T03:10:00Z"
                    .into()
            )],
        }
    );

    // Unknown ids, with and without an earlier outcome.
    let ids = map(&[
        ("augur-decision-bb", "approve"),
        ("augur-decision-cc", "approve"),
        ("augur-status-cc", "expired at 2026-11-30T03:05:00Z"),
        ("augur-decision-XY", "approve"),
        ("augur-decision-dd", "approve"),
        (
            "augur-status-dd",
            "error: 'yes' is not a decision at 2026-11-30T03:05:00Z",
        ),
    ]);
    let actions = plan(&ids, &[], now, &SETTINGS);
    assert_eq!(
        actions,
        vec![
            PendingAction::Ignore {
                id: "XY".into(),
                why: "'XY' is not the id of a pending change (see augur-pending-* keys)".into()
            },
            PendingAction::Ignore {
                id: "bb".into(),
                why: "no pending change has this id (see augur-pending-* keys)".into()
            },
            PendingAction::Ignore {
                id: "cc".into(),
                why: "no longer pending (it was expired at 2026-11-30T03:05:00Z)".into()
            },
            PendingAction::Ignore {
                id: "dd".into(),
                why: "no pending change has this id (see augur-pending-* keys)".into()
            },
        ]
    );
    assert!(
        actions
            .iter()
            .all(|a| !matches!(a, PendingAction::Decide { .. }))
    );
}

#[test]
fn plan_expires_retires_and_publishes() {
    let e = PendingEntry::new(id("aa"), summary(), t("2026-11-30T03:00:00Z"), &SETTINGS);
    let pending = e.value();
    let ids = map(&[("augur-pending-aa", &pending)]);
    let before = t("2026-11-30T03:59:59Z");
    let at = t("2026-11-30T04:00:00Z");
    assert_eq!(plan(&ids, &[], before, &SETTINGS), vec![]);
    assert_eq!(next_deadline(&ids, before, &SETTINGS), Some(at));
    let actions = plan(&ids, &[], at, &SETTINGS);
    assert_eq!(actions, vec![PendingAction::Expire { id: id("aa") }]);
    assert_eq!(
        actions[0].changes(at),
        KeyChanges {
            delete: vec!["augur-decision-aa".into(), "augur-pending-aa".into()],
            insert: vec![(
                "augur-status-aa".into(),
                "expired at 2026-11-30T04:00:00Z".into()
            )],
        }
    );

    // A decision that arrived, even after the expiry time, wins.
    let ids = map(&[
        ("augur-pending-aa", &pending),
        ("augur-decision-aa", "reject"),
    ]);
    assert!(matches!(
        plan(&ids, &[], at, &SETTINGS).as_slice(),
        [PendingAction::Decide { .. }]
    ));
    assert_eq!(next_deadline(&ids, before, &SETTINGS), None);

    // Statuses stay for the retention period; unreadable ones go at once.
    let ids = map(&[
        ("augur-status-aa", "expired at 2026-11-30T04:00:00Z"),
        ("augur-status-bb", "hand written"),
    ]);
    let now = t("2026-11-30T04:09:59Z");
    assert_eq!(
        plan(&ids, &[], now, &SETTINGS),
        vec![PendingAction::RetireStatus { id: "bb".into() }]
    );
    assert_eq!(
        next_deadline(&ids, now, &SETTINGS),
        Some(t("2026-11-30T04:10:00Z"))
    );
    assert_eq!(
        plan(&ids, &[], t("2026-11-30T04:10:00Z"), &SETTINGS),
        vec![
            PendingAction::RetireStatus { id: "aa".into() },
            PendingAction::RetireStatus { id: "bb".into() }
        ]
    );

    // Only ids without keys are published, so a decided entry is not queued
    // again while its status is kept.
    let f = PendingEntry::new(id("bb"), summary(), now, &SETTINGS);
    let g = PendingEntry::new(id("cc"), summary(), now, &SETTINGS);
    let ids = map(&[
        ("augur-status-aa", "expired at 2026-11-30T04:00:00Z"),
        ("augur-pending-cc", &g.value()),
    ]);
    assert_eq!(
        plan(&ids, &[e.clone(), f.clone(), g], now, &SETTINGS),
        vec![PendingAction::Publish { entry: f.clone() }]
    );
    assert_eq!(
        PendingAction::Publish { entry: f.clone() }.changes(now),
        KeyChanges {
            delete: vec![],
            insert: vec![("augur-pending-bb".into(), f.value())]
        }
    );
}

#[test]
fn plan_discards_entries_it_cannot_read() {
    let now = t("2026-11-30T04:00:00Z");
    let ids = map(&[
        ("augur-pending-aa", "edited by hand"),
        ("augur-decision-aa", "approve"),
        ("augur-pending-ZZ", "whatever"),
    ]);
    let actions = plan(&ids, &[], now, &SETTINGS);
    assert!(
        actions
            .iter()
            .all(|a| matches!(a, PendingAction::Discard { .. })),
        "{actions:?}"
    );
    assert_eq!(actions.len(), 2);
}

proptest! {
    #[test]
    fn time_like_texts_parse_without_panic(text in "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z") {
        if let Ok(t) = text.parse::<Timestamp>() {
            prop_assert_eq!(t.to_string(), text);
        }
    }

    #[test]
    fn any_decision_text_parses_without_panic(text in any::<String>()) {
        if let Ok(decision) = Decision::parse(&text) {
            prop_assert_eq!(Decision::parse(&decision.to_string()), Ok(decision));
        }
    }

    #[test]
    fn decision_like_texts_parse_without_panic(
        text in "(?i)(approve|reject|yes)?[ \t]*(by)?[ :a-z\u{e9}\u{1f600}]{0,20}"
    ) {
        if let Ok(decision) = Decision::parse(&text) {
            prop_assert_eq!(Decision::parse(&decision.to_string()), Ok(decision));
        }
    }

    #[test]
    fn entries_round_trip(
        change in any::<String>(),
        level in any::<String>(),
        factors in proptest::collection::vec(any::<String>(), 0..4),
        explanation in any::<String>(),
        score in 0.0f64..100.0,
        p in 0.0f64..=1.0,
        created in 0i64..MAX_SECS / 2,
        hex in "[0-9a-f]{1,64}",
    ) {
        let entry = PendingEntry::new(
            id(&hex),
            Summary { change, risk_score: score, risk_level: level, factors, probability: p, explanation },
            Timestamp::from_unix_secs(created),
            &PendingSettings::default(),
        );
        let value = entry.value();
        prop_assert!(!value.contains('\n') && !value.contains('"'));
        let back = PendingEntry::parse(entry.id.clone(), &value).unwrap();
        prop_assert_eq!(back.value(), value);
        prop_assert_eq!(&back.summary.change, &entry.summary.change);
        prop_assert_eq!(&back.summary.factors, &entry.summary.factors);
        prop_assert_eq!(&back.summary.explanation, &entry.summary.explanation);
        prop_assert_eq!(back.expires, entry.expires);
    }

    #[test]
    fn any_value_is_safe_to_read(value in any::<String>(), status in any::<String>()) {
        let _ = PendingEntry::parse(id("1"), &value);
        let _ = Status::parse(&status);
        let _ = status.parse::<Timestamp>();
        let ids = map(&[
            ("augur-pending-1", &value),
            ("augur-decision-1", &status),
            ("augur-status-2", &status),
            ("augur-decision-3", &value),
        ]);
        let now = Timestamp::from_unix_secs(1_795_923_600);
        let actions = plan(&ids, &[], now, &SETTINGS);
        let _ = next_deadline(&ids, now, &SETTINGS);
        for action in &actions {
            if let PendingAction::Decide { decision, .. } = action {
                prop_assert_eq!(Decision::parse(&status), Ok(decision.clone()));
            }
            let _ = action.changes(now);
        }
    }

    #[test]
    fn times_round_trip(secs in MIN_SECS..=MAX_SECS) {
        let ts = Timestamp::from_unix_secs(secs);
        prop_assert_eq!(ts.to_string().parse::<Timestamp>(), Ok(ts));
    }

    #[test]
    fn statuses_round_trip(
        by in proptest::option::of("[a-zA-Z][a-zA-Z ._-]{0,20}[a-zA-Z]"),
        reason in proptest::option::of("[a-z][a-z :0-9TZ-]{0,40}[a-z]"),
        change in any::<u64>(),
        secs in 0..MAX_SECS,
    ) {
        let at = Timestamp::from_unix_secs(secs);
        for outcome in [
            Outcome::Applied { change, by: by.clone() },
            Outcome::Rejected { by: by.clone(), reason: reason.clone() },
            Outcome::Expired,
            Outcome::Error { why: reason.clone().unwrap_or_else(|| "x".into()) },
        ] {
            let status = Status::new(at, outcome);
            prop_assert_eq!(Status::parse(&status.to_string()), Some(status));
        }
    }
}

/// Found by the `operator_text` fuzz target: a decision of the longest
/// length whose canonical text adds the space after the colon.
#[test]
fn a_decision_is_as_long_as_its_canonical_text() {
    let longest = format!("approve:{}", "x".repeat(MAX_DECISION_LEN - 8));
    assert_eq!(
        Decision::parse(&longest),
        Err(DecisionError::TooLong(MAX_DECISION_LEN + 1))
    );
    let fits = format!("approve: {}", "x".repeat(MAX_DECISION_LEN - 9));
    let decision = Decision::parse(&fits).unwrap();
    assert_eq!(decision.to_string(), fits);
}

/// Found by `statuses_round_trip`: a reason ending in " at" overlaps the
/// separator before the time.
#[test]
fn a_reason_ending_in_at_round_trips() {
    let status = Status::new(
        Timestamp::from_unix_secs(0),
        Outcome::Error { why: "a at".into() },
    );
    assert_eq!(Status::parse(&status.to_string()), Some(status));
}
