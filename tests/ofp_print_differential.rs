//! Differential test against Open vSwitch's own OpenFlow parser.
//!
//! Every Ryu fixture of OpenFlow 1.3 and 1.4 is decoded and re-encoded by our
//! codec, and `ovs-ofctl ofp-print` must parse our bytes without a decode
//! error. Where our bytes differ from the original, OVS must print both the
//! same way. Messages built by our code ([`constructed_messages`]) go through
//! the same check.
//!
//! Some fixtures carry values OVS refuses in their original bytes (Ryu's
//! encoder tests use arbitrary numbers); those are listed in [`OVS_REJECTS`]
//! with the reason, and the test checks that OVS still rejects the original,
//! so the list cannot go stale. Needs `ovs-ofctl` (skips without it unless
//! `AUGUR_REQUIRE_OVS=1`) and `shared/` (skips without it).

// Helpers outside #[test] functions panic on failure too, as tests should.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use augur_openflow::{Body, Message, Version};
use bytes::Bytes;

/// Fixtures whose original bytes `ovs-ofctl ofp-print` (OVS 3.1) rejects, and why.
const OVS_REJECTS: &[(&str, &str)] = &[
    (
        "of13/4-12-ofp_flow_stats_reply.packet",
        "its third flow entry has two instructions of one type (OFPBIC_DUP_INST)",
    ),
    (
        "of14/5-12-ofp_flow_stats_reply.packet",
        "its third flow entry has two instructions of one type (OFPBIC_DUP_INST)",
    ),
    (
        "of13/4-15-ofp_error_msg.packet",
        "OVS prints the error, then parses its data (\"fugafuga\") as the failed \
         OpenFlow message and reports it truncated",
    ),
    (
        "of14/5-15-ofp_error_msg.packet",
        "OVS prints the error, then parses its data (\"fugafuga\") as the failed \
         OpenFlow message and reports it truncated",
    ),
    (
        "of13/4-41-ofp_error_msg_experimenter.packet",
        "experimenter error 999999/60000 is not an error OVS knows; ofp-print \
         reports unknown errors as OFPBRC_BAD_LEN",
    ),
    (
        "of14/5-39-ofp_error_msg_experimenter.packet",
        "experimenter error 999999/60000 is not an error OVS knows; ofp-print \
         reports unknown errors as OFPBRC_BAD_LEN",
    ),
    (
        "of13/libofproto-OFP13-error_msg.packet",
        "its data is an 8-byte FLOW_MOD header, which OVS parses as the failed \
         message and rejects as too short (OFPBRC_BAD_LEN)",
    ),
    (
        "of13/4-16-ofp_experimenter.packet",
        "experimenter id 0x05e30a78 is unknown to OVS (OFPBRC_BAD_VENDOR)",
    ),
    (
        "of14/5-16-ofp_experimenter.packet",
        "experimenter id 0x05e30a78 is unknown to OVS (OFPBRC_BAD_VENDOR)",
    ),
    (
        "of13/4-61-ofp_experimenter_request.packet",
        "experimenter multipart 0xdeadbeaf is unknown to OVS (OFPBRC_BAD_VENDOR)",
    ),
    (
        "of14/5-59-ofp_experimenter_request.packet",
        "experimenter multipart 0xdeadbeaf is unknown to OVS (OFPBRC_BAD_VENDOR)",
    ),
    (
        "of13/4-62-ofp_experimenter_reply.packet",
        "experimenter multipart 0xdeadbeaf is unknown to OVS (OFPBRC_BAD_VENDOR)",
    ),
    (
        "of14/5-60-ofp_experimenter_reply.packet",
        "experimenter multipart 0xdeadbeaf is unknown to OVS (OFPBRC_BAD_VENDOR)",
    ),
    (
        "of13/4-2-ofp_flow_mod.packet",
        "set_field on pbb_uca, a field OVS does not implement (OFPBAC_BAD_SET_LEN)",
    ),
    (
        "of14/5-2-ofp_flow_mod.packet",
        "set_field on pbb_uca, a field OVS does not implement (OFPBAC_BAD_SET_LEN)",
    ),
    (
        "of13/4-21-ofp_group_mod.packet",
        "a bucket weight in an ALL group; OVS allows weights only in SELECT \
         groups (OFPGMFC_INVALID_GROUP)",
    ),
    (
        "of14/5-21-ofp_group_mod.packet",
        "a bucket weight in an ALL group; OVS allows weights only in SELECT \
         groups (OFPGMFC_INVALID_GROUP)",
    ),
    (
        "of14/5-71-ofp_requestforward.packet",
        "the forwarded GROUP_MOD has a bucket weight in an ALL group \
         (OFPGMFC_INVALID_GROUP)",
    ),
    (
        "of13/4-36-ofp_queue_get_config_reply.packet",
        "length 211 is not a multiple of 8 (OFPBRC_BAD_LEN)",
    ),
    (
        "of13/4-45-ofp_meter_mod.packet",
        "an experimenter meter band; OVS supports only drop and dscp_remark \
         (OFPMMFC_BAD_BAND)",
    ),
    (
        "of14/5-43-ofp_meter_mod.packet",
        "an experimenter meter band; OVS supports only drop and dscp_remark \
         (OFPMMFC_BAD_BAND)",
    ),
    (
        "of13/4-59-ofp_packet_in.packet",
        "in_port 84281096 is outside the port range OVS accepts (OFPBMC_BAD_VALUE)",
    ),
    (
        "of14/5-57-ofp_packet_in.packet",
        "in_port 84281096 is outside the port range OVS accepts (OFPBMC_BAD_VALUE)",
    ),
    (
        "of13/4-60-ofp_flow_mod.packet",
        "in_port 84281096 is outside the port range OVS accepts (OFPBMC_BAD_VALUE)",
    ),
    (
        "of14/5-58-ofp_flow_mod.packet",
        "in_port 84281096 is outside the port range OVS accepts (OFPBMC_BAD_VALUE)",
    ),
    (
        "of13/4-63-onf_flow_monitor_request.packet",
        "Ryu writes match_len=0 but appends an 8-byte ofp_match, which OVS \
         then reads as the next request (OFPBMC_BAD_LEN)",
    ),
    (
        "of13/libofproto-OFP13-flow_mod_match_conj.packet",
        "set_field ip_dst without an IPv4 prerequisite in the match \
         (OFPBAC_MATCH_INCONSISTENT)",
    ),
    (
        "of13/ovs-ofctl-of13-action_ct.packet",
        "written by an older ovs-ofctl: its ct zone is loaded from a 28-bit \
         field, OVS 3.1 accepts only 16 bits (OFPBAC_BAD_SET_LEN)",
    ),
    (
        "of14/5-23-ofp_table_mod.packet",
        "experimenter table-mod properties, which OVS does not accept (OFPBRC_BAD_TYPE)",
    ),
    (
        "of14/5-42-ofp_set_async.packet",
        "an experimenter async-config property (exp_id 0x65) unknown to OVS \
         (OFPBPC_BAD_EXP_TYPE)",
    ),
    (
        "of14/5-70-ofp_bundle_add_msg.packet",
        "it bundles an ECHO_REQUEST, which OVS does not allow in a bundle \
         (OFPBFC_MSG_UNSUP)",
    ),
];

/// Messages built by our code rather than decoded, checked like the fixtures.
/// The coordinator adds the messages augur sends (flow mods, bundles, ...).
fn constructed_messages() -> Vec<(&'static str, Message)> {
    let mut messages = Vec::new();
    for version in [Version::OF13, Version::OF14] {
        messages.extend([
            (
                "features request",
                Message::new(version, 1, Body::FeaturesRequest),
            ),
            (
                "barrier request",
                Message::new(version, 2, Body::BarrierRequest),
            ),
            (
                "barrier reply",
                Message::new(version, 3, Body::BarrierReply),
            ),
            (
                "get config request",
                Message::new(version, 4, Body::GetConfigRequest),
            ),
            (
                "get async request",
                Message::new(version, 5, Body::GetAsyncRequest),
            ),
            (
                "echo request",
                Message::new(version, 6, Body::EchoRequest(Bytes::from_static(b"augur"))),
            ),
            (
                "echo reply",
                Message::new(version, 7, Body::EchoReply(Bytes::new())),
            ),
        ]);
    }
    messages
}

/// What `ovs-ofctl ofp-print` said about one message.
struct Printed {
    stdout: String,
    stderr: String,
}

impl Printed {
    /// The line in which OVS reports it could not parse the message, if any.
    fn rejection(&self) -> Option<&str> {
        const MARKERS: [&str; 5] = [
            "***decode error:",
            "(***truncated to ",
            "(***only uses ",
            "OpenFlow packet too short",
            "OpenFlow message is empty",
        ];
        self.stdout
            .lines()
            .find(|line| MARKERS.iter().any(|marker| line.contains(marker)))
    }

    /// OVS's warnings (on stderr), which usually say why it rejected a message.
    fn warnings(&self) -> String {
        self.stderr
            .lines()
            .map(|line| line.rsplit('|').next().unwrap_or(line))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Runs `ovs-ofctl ofp-print -` with the message as a hex line on stdin
/// (stdin avoids the 128 KiB limit on one argument).
fn ofp_print(bytes: &[u8]) -> Printed {
    let mut child = Command::new("ovs-ofctl")
        .args(["ofp-print", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{}", hex::encode(bytes)).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "ovs-ofctl ofp-print failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Printed {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn ovs_parses_our_encoding_of_every_fixture() {
    let Some(shared) = support::shared_dir() else {
        return;
    };
    if !support::ovs::ofctl_available() {
        return;
    }
    let mut fixtures = support::ryu_packets(&shared, "of13");
    fixtures.extend(support::ryu_packets(&shared, "of14"));
    assert!(fixtures.len() > 100, "only {} fixtures", fixtures.len());

    for (name, _) in OVS_REJECTS {
        assert!(
            fixtures.iter().any(|(fixture, _)| fixture == name),
            "OVS_REJECTS names {name}, which is not a fixture"
        );
    }

    let mut failures = Vec::new();
    let mut accepted = 0usize;
    for (name, original) in &fixtures {
        let ours = match Message::decode(original).map(|m| m.encode()) {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(e)) => {
                failures.push(format!("{name}: our codec cannot re-encode it: {e}"));
                continue;
            }
            Err(e) => {
                failures.push(format!("{name}: our codec cannot decode it: {e}"));
                continue;
            }
        };
        let printed = ofp_print(&ours);
        let exception = OVS_REJECTS.iter().find(|(n, _)| n == name);
        match (printed.rejection(), exception) {
            (None, None) => accepted += 1,
            (None, Some(_)) => failures.push(format!(
                "{name}: OVS now accepts our encoding; remove it from OVS_REJECTS"
            )),
            (Some(rejection), Some(_)) => {
                // Excused only while OVS rejects the original just the same.
                let theirs = if ours[..] == original[..] {
                    None
                } else {
                    Some(ofp_print(original))
                };
                match theirs.as_ref().map(Printed::rejection) {
                    None => {}
                    Some(Some(original_rejection)) if original_rejection == rejection => {}
                    Some(original_rejection) => failures.push(format!(
                        "{name}: OVS rejects our encoding with {rejection:?} but the \
                         original with {original_rejection:?}"
                    )),
                }
            }
            (Some(rejection), None) => {
                let original_rejected =
                    ours[..] == original[..] || ofp_print(original).rejection().is_some();
                let hint = if original_rejected {
                    "OVS rejects the original too: list it in OVS_REJECTS with the reason"
                } else {
                    "OVS accepts the original: our re-encoding broke it"
                };
                failures.push(format!(
                    "{name}: {rejection} [{}] ({hint})",
                    printed.warnings()
                ));
            }
        }
        if ours[..] != original[..] && printed.rejection().is_none() {
            let theirs = ofp_print(original);
            if theirs.stdout != printed.stdout {
                failures.push(format!(
                    "{name}: OVS reads our re-encoding differently from the original:\n\
                     ours:\n{}\noriginal:\n{}",
                    printed.stdout, theirs.stdout
                ));
            }
        }
    }
    eprintln!(
        "{accepted} of {} fixtures accepted by ovs-ofctl, {} known rejections",
        fixtures.len(),
        OVS_REJECTS.len()
    );
    assert!(
        failures.is_empty(),
        "{} fixtures fail the differential check:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn ovs_parses_constructed_messages() {
    if !support::ovs::ofctl_available() {
        return;
    }
    let mut failures = Vec::new();
    for (name, message) in constructed_messages() {
        let bytes = match message.encode() {
            Ok(bytes) => bytes,
            Err(e) => {
                failures.push(format!("{name} ({}): cannot encode: {e}", message.version));
                continue;
            }
        };
        let printed = ofp_print(&bytes);
        if let Some(rejection) = printed.rejection() {
            failures.push(format!(
                "{name} ({}): {rejection} [{}]\n{}",
                message.version,
                printed.warnings(),
                hex::encode(&bytes)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
