//! Reconciliation: desired flows against what a switch reports.

// Helpers outside #[test] functions panic on failure too, as tests should.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::Ipv4Addr;
use std::time::{Duration, UNIX_EPOCH};

use augur::inventory::Inventory;
use augur::policy::reconcile::{FlowChange, reconcile};
use augur::policy::{
    CompileSettings, Cookie, FlowEntry, Origin, Policy, Stage, compile, diff, to_flow_mods,
};
use augur_openflow::multipart::FlowStats;
use augur_openflow::oxm::Oxm;
use augur_openflow::{
    Action, Field, FlowModCommand, FlowModFlags, Instruction, Match, MatchField, PortNo,
};

/// What the switch would report for `flow` after installing it: the match
/// and instructions as decoded from the wire.
fn installed(flow: &FlowEntry) -> FlowStats {
    let fm = flow.to_flow_mod();
    let match_ = Match::parse(&fm.match_.to_bytes().unwrap()).unwrap();
    FlowStats {
        table_id: fm.table_id,
        duration_sec: 10,
        duration_nsec: 0,
        priority: fm.priority,
        idle_timeout: fm.idle_timeout,
        hard_timeout: fm.hard_timeout,
        flags: FlowModFlags::empty(),
        importance: 0,
        cookie: fm.cookie,
        packet_count: 3,
        byte_count: 300,
        match_,
        instructions: fm.instructions,
    }
}

/// `n` distinct ACL-like flows of policy version `version`.
fn synthetic(n: u32, version: u16) -> Vec<FlowEntry> {
    (0..n)
        .map(|i| FlowEntry {
            stage: Stage::Acl,
            table_id: 5,
            priority: 1000 + (i % 7) as u16,
            match_: Match::new()
                .eth_type(0x0800)
                .ipv4_src(Ipv4Addr::from(0x0a00_0000 | i))
                .ip_proto(6)
                .tcp_dst(80),
            instructions: vec![
                Instruction::ApplyActions(vec![Action::set_field(MatchField::exact(
                    Field::Reg3,
                    i,
                ))]),
                Instruction::GotoTable(6),
            ],
            cookie: Cookie::new(version, Origin::Rule(i % 100)),
            hard_timeout: 0,
            idle_timeout: 0,
        })
        .collect()
}

fn foreign(cookie: u64, m: Match) -> FlowStats {
    FlowStats {
        cookie,
        ..installed(&FlowEntry {
            stage: Stage::Acl,
            table_id: 5,
            priority: 7,
            match_: m,
            instructions: vec![Instruction::ApplyActions(vec![Action::output(PortNo(1))])],
            cookie: Cookie(cookie),
            hard_timeout: 0,
            idle_timeout: 0,
        })
    }
}

#[test]
fn one_percent_different_out_of_ten_thousand_yields_exactly_those_changes() {
    let desired = synthetic(10_000, 3);
    let mut switch: Vec<FlowStats> = desired.iter().map(installed).collect();
    // 40 flows with other instructions (replaced by an add), 30 missing
    // (added), 30 with a match nobody wants any more (deleted; the desired
    // ones they stood for are added).
    let mut expected_adds = Vec::new();
    let mut expected_deletes = Vec::new();
    for i in 0..40 {
        let n = i * 97;
        switch[n].instructions = vec![Instruction::GotoTable(7)];
        expected_adds.push(desired[n].clone());
    }
    let mut missing = Vec::new();
    for i in 0..30 {
        let n = 5000 + i * 13;
        missing.push(n);
        expected_adds.push(desired[n].clone());
    }
    for i in 0..30 {
        let n = 7000 + i * 11;
        switch[n].match_ = Match::new()
            .eth_type(0x0800)
            .ipv4_src(Ipv4Addr::new(192, 0, 2, i as u8));
        expected_deletes.push((
            switch[n].priority,
            switch[n].match_.clone(),
            switch[n].cookie,
        ));
        expected_adds.push(desired[n].clone());
    }
    missing.sort_unstable();
    for n in missing.into_iter().rev() {
        switch.remove(n);
    }
    // Flows that are not augur's, one of them exactly where augur wants one.
    switch.push(foreign(0x1234, Match::new().in_port(9u32)));
    switch.push(foreign(0, Match::new()));
    let clash = &desired[9_999];
    let mut in_the_way = installed(clash);
    in_the_way.cookie = 0xdead_beef;
    let position = switch
        .iter()
        .position(|f| f.match_ == in_the_way.match_ && f.priority == in_the_way.priority)
        .unwrap();
    switch[position] = in_the_way;

    let report = reconcile(&desired, &switch);
    assert_eq!(report.blocked.len(), 1);
    assert_eq!(report.blocked[0].foreign_cookie, 0xdead_beef);
    assert_eq!(report.unchanged, 10_000 - 100 - 1);
    let deletes: Vec<_> = report
        .changes
        .iter()
        .filter_map(|c| match c {
            FlowChange::Delete {
                priority,
                match_,
                cookie,
                ..
            } => Some((*priority, match_.clone(), *cookie)),
            FlowChange::Add(_) => None,
        })
        .collect();
    let adds: Vec<&FlowEntry> = report
        .changes
        .iter()
        .filter_map(|c| match c {
            FlowChange::Add(f) => Some(f),
            FlowChange::Delete { .. } => None,
        })
        .collect();
    assert_eq!(deletes.len(), 30);
    assert_eq!(adds.len(), 100);
    for d in &expected_deletes {
        assert!(deletes.contains(d), "{d:?}");
    }
    for a in &expected_adds {
        assert!(adds.contains(&a), "{a}");
    }
    // Deletes first, then adds.
    let first_add = report
        .changes
        .iter()
        .position(|c| matches!(c, FlowChange::Add(_)))
        .unwrap();
    assert!(
        report.changes[first_add..]
            .iter()
            .all(|c| matches!(c, FlowChange::Add(_)))
    );
    assert_eq!(diff(&desired, &switch), report.changes);
}

#[test]
fn foreign_flows_are_never_touched() {
    let desired = synthetic(10, 1);
    let switch = vec![
        foreign(0x1234, Match::new().in_port(9u32)),
        foreign(0x6174_0000_0000_0000, Match::new().in_port(8u32)), // one bit off the prefix
        foreign(0xffff_ffff_ffff_ffff, Match::new()),
    ];
    let changes = diff(&desired, &switch);
    assert_eq!(changes.len(), 10);
    assert!(changes.iter().all(|c| matches!(c, FlowChange::Add(_))));
    // Nothing wanted: augur's flows go, the others stay.
    let mut mixed = switch.clone();
    mixed.extend(desired.iter().map(installed));
    let changes = diff(&[], &mixed);
    assert_eq!(changes.len(), 10);
    for change in &changes {
        match change {
            FlowChange::Delete { cookie, .. } => assert!(Cookie::is_augur(*cookie)),
            FlowChange::Add(_) => panic!("nothing to add"),
        }
    }
}

#[test]
fn reordered_fields_full_masks_and_added_prerequisites_are_equal() {
    let flow = FlowEntry {
        stage: Stage::Classify,
        table_id: 0,
        priority: 100,
        match_: Match::new()
            .in_port(3u32)
            .eth_type(0x0800)
            .ipv4_src(Ipv4Addr::new(10, 0, 0, 1))
            .ip_proto(17)
            .udp_dst(53),
        instructions: vec![Instruction::GotoTable(1)],
        cookie: Cookie::new(1, Origin::Pipeline(Stage::Classify)),
        hard_timeout: 0,
        idle_timeout: 0,
    };
    let reported_as = |oxms: Vec<Oxm>| {
        let mut stats = installed(&flow);
        stats.match_ = Match::from(oxms);
        stats
    };
    let f = |m: MatchField| Oxm::Field(m);
    // Reversed order, a full mask on the address.
    let reordered = reported_as(vec![
        f(MatchField::exact(Field::UdpDst, 53u16)),
        f(MatchField::exact(Field::IpProto, 17u8)),
        f(MatchField::masked(
            Field::Ipv4Src,
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::BROADCAST,
        )),
        f(MatchField::exact(Field::EthType, 0x0800u16)),
        f(MatchField::exact(Field::InPort, 3u32)),
    ]);
    assert!(diff(std::slice::from_ref(&flow), &[reordered]).is_empty());
    // A desired match that leaves prerequisites implicit equals the
    // switch's report with them spelt out, and the other way round.
    let mut implicit = flow.clone();
    implicit.match_ = Match::from(vec![
        f(MatchField::exact(Field::InPort, 3u32)),
        f(MatchField::exact(
            Field::Ipv4Src,
            Ipv4Addr::new(10, 0, 0, 1),
        )),
        f(MatchField::exact(Field::UdpDst, 53u16)),
        f(MatchField::exact(Field::EthType, 0x0800u16)),
    ]);
    assert!(diff(std::slice::from_ref(&implicit), &[installed(&flow)]).is_empty());
    let report = reported_as(implicit.match_.oxms().to_vec());
    assert!(diff(std::slice::from_ref(&flow), &[report]).is_empty());
    // A zero mask is no match at all.
    let mut wildcard = installed(&flow);
    wildcard
        .match_
        .push(MatchField::masked(Field::Reg5, 0u32, 0u32));
    assert!(diff(std::slice::from_ref(&flow), &[wildcard]).is_empty());
    // Instructions in another order are the same instructions.
    let mut metered = flow.clone();
    metered.instructions = vec![Instruction::Meter(4), Instruction::GotoTable(1)];
    let mut report = installed(&metered);
    report.instructions.reverse();
    assert!(diff(std::slice::from_ref(&metered), &[report]).is_empty());
    // But another value is another flow.
    let other = reported_as(vec![
        f(MatchField::exact(Field::InPort, 3u32)),
        f(MatchField::exact(Field::EthType, 0x0800u16)),
        f(MatchField::exact(
            Field::Ipv4Src,
            Ipv4Addr::new(10, 0, 0, 2),
        )),
        f(MatchField::exact(Field::IpProto, 17u8)),
        f(MatchField::exact(Field::UdpDst, 53u16)),
    ]);
    assert_eq!(diff(std::slice::from_ref(&flow), &[other]).len(), 2);
}

#[test]
fn flow_mods_delete_exactly_and_add_with_cookie_and_timeouts() {
    let mut flow = synthetic(1, 2).remove(0);
    flow.hard_timeout = 60;
    let stale = installed(&synthetic(2, 2)[1]);
    let changes = diff(std::slice::from_ref(&flow), std::slice::from_ref(&stale));
    let mods = to_flow_mods(&changes);
    assert_eq!(mods.len(), 2);
    assert_eq!(mods[0].command, FlowModCommand::DELETE_STRICT);
    assert_eq!(
        (mods[0].cookie, mods[0].cookie_mask),
        (stale.cookie, Cookie::AUGUR_MASK)
    );
    assert_eq!(mods[0].match_, stale.match_);
    assert_eq!(mods[0].priority, stale.priority);
    assert_eq!(mods[1].command, FlowModCommand::ADD);
    assert_eq!(mods[1].cookie, flow.cookie.0);
    assert_eq!(mods[1].hard_timeout, 60);
}

#[test]
fn a_new_policy_version_replaces_every_flow_and_reconnecting_changes_nothing() {
    let policy = Policy::parse(
        include_str!("../examples/policy/three-tier.toml"),
        "three-tier.toml",
        UNIX_EPOCH,
    )
    .unwrap();
    let inventory: Inventory =
        toml::from_str(include_str!("../examples/policy/three-tier-inventory.toml")).unwrap();
    let now = UNIX_EPOCH + Duration::from_secs(1_735_689_600);
    let at = |version| {
        let settings = CompileSettings {
            version,
            ..CompileSettings::default()
        };
        compile(&policy, &inventory, &settings, now).unwrap()
    };
    let v1 = at(1);
    let v2 = at(2);
    let s1_v1 = &v1.bridge("s1").unwrap().flows;
    let s1_v2 = &v2.bridge("s1").unwrap().flows;
    let switch: Vec<FlowStats> = s1_v1.iter().map(installed).collect();
    // Reconnecting to a switch that holds the same version: nothing to do.
    assert!(diff(s1_v1, &switch).is_empty());
    // A new version: every flow is re-added under its new cookie (an add
    // replaces the flow at the same place), nothing needs deleting.
    let changes = diff(s1_v2, &switch);
    assert_eq!(changes.len(), s1_v2.len());
    assert!(
        changes
            .iter()
            .all(|c| matches!(c, FlowChange::Add(f) if f.cookie.version() == 2))
    );
    // Adds go from the last stage to the first.
    let tables: Vec<u8> = changes
        .iter()
        .filter_map(|c| match c {
            FlowChange::Add(f) => Some(f.table_id),
            FlowChange::Delete { .. } => None,
        })
        .collect();
    assert!(tables.windows(2).all(|w| w[0] >= w[1]));
}

#[test]
fn meters_are_added_changed_and_deleted_only_within_augurs_ids() {
    use augur::policy::{MeterSpec, RateUnit, diff_meters};
    use augur_openflow::meter::{MeterBand, MeterCommand, MeterConfig};
    let settings = CompileSettings::default();
    let spec = |id, rate| MeterSpec {
        id,
        rate,
        burst: 0,
        unit: RateUnit::Kbps,
    };
    let reported = |s: MeterSpec, burst_size| {
        let m = s.to_meter_mod();
        MeterConfig {
            flags: m.flags,
            meter_id: m.meter_id,
            bands: vec![MeterBand::Drop {
                rate: s.rate,
                burst_size,
            }],
        }
    };
    let desired = [spec(2, 10_000), spec(3, 500), spec(5, 100)];
    let installed = [
        // As OVS reports a meter added without a burst: burst = rate.
        reported(spec(2, 10_000), 10_000),
        reported(spec(3, 400), 400),
        reported(spec(4, 1), 1),
        // Not augur's: below first_rule_meter_id and not the sampling meter.
        MeterConfig {
            meter_id: 0,
            ..reported(spec(0, 1), 1)
        },
    ];
    let changes = diff_meters(&desired, &installed, &settings);
    let before: Vec<(MeterCommand, u32)> = changes
        .before_flows
        .iter()
        .map(|m| (m.command, m.meter_id))
        .collect();
    assert_eq!(before, [(MeterCommand::MODIFY, 3), (MeterCommand::ADD, 5)]);
    let after: Vec<(MeterCommand, u32)> = changes
        .after_flows
        .iter()
        .map(|m| (m.command, m.meter_id))
        .collect();
    assert_eq!(after, [(MeterCommand::DELETE, 4)]);
}
