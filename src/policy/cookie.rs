//! Flow cookies: which flows are augur's, which change installed them and
//! what they came from.
//!
//! # Layout
//!
//! ```text
//!  63            48 47            32 31      24 23                      0
//! +----------------+----------------+----------+-------------------------+
//! | prefix 0x6175  |    version     |   kind   |         detail          |
//! +----------------+----------------+----------+-------------------------+
//! ```
//!
//! - **prefix** (`0x6175`, ASCII `au`): marks the flow as augur's. augur
//!   dumps, modifies and deletes only flows whose cookie carries it
//!   ([`Cookie::AUGUR_MASK`]); anything else on the switch is left alone.
//! - **version**, 16 bits, wrapping. Its meaning depends on the kind, so that
//!   a change to the policy replaces only the flows it concerns (the daemon
//!   compiles with [`VersionTags::per_change`](super::compile::VersionTags)):
//!   - rule flows (kind `0x00`) carry the version of the change that
//!     *introduced the rule*: the policy file's version for the file's rules
//!     (the file is versioned as a whole), the change's number for a rule a
//!     recommendation added (see [`crate::orchestrate::versions`]). Applying a
//!     change adds exactly its rules' flows, and rolling it back deletes
//!     exactly those; `cookie=0x6175000700000000/0xffffffffff000000` selects
//!     the rule flows change 7 installed.
//!   - pipeline, deny and learn flows (kinds `0x01`–`0x03`) carry a content
//!     tag ([`Cookie::content_tag`] of their table, priority, match and
//!     instructions): it changes exactly when the flow does, so a change
//!     that only adds a rule leaves them all in place.
//!   - counting flows (kind `0x04`) carry the version in force when the
//!     connection was sampled.
//!
//!   Compiled with the default tags ([`super::compile::compile`]), every flow
//!   carries the one policy version given, as before per-change versions.
//! - **kind** and **detail**, the flow's [`Origin`]: `0x00` an allow rule of
//!   the policy file (detail: its index in the file, from 0); `0x01` the fixed
//!   pipeline (detail: the [`Stage`] number); `0x02` a deny flow (detail: the
//!   [`DenyReason`]); `0x03` the learn-mode flow that admits and samples new
//!   connections (detail: 0); `0x04` a per-connection counting flow the
//!   daemon installs for a sampled connection (detail: 0).

use std::fmt;

use serde::Serialize;

use super::compile::{DenyReason, Stage};

/// A flow cookie in augur's layout (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Cookie(pub u64);

/// What a flow was compiled from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The allow rule at this index of the policy file (from 0).
    Rule(u32),
    /// The fixed part of a pipeline stage (classification, conntrack,
    /// established traffic, forwarding).
    Pipeline(Stage),
    /// A flow of the deny stage, for one reason.
    Deny(DenyReason),
    /// The learn-mode flow that admits every new connection and samples it
    /// to the controller; its packet-ins are observed, not denied.
    Learn,
    /// A counting flow of one connection, installed by the daemon rather
    /// than compiled from the policy; reconciliation leaves it alone and it
    /// expires on its idle timeout.
    Counting,
}

const KIND_RULE: u64 = 0x00;
const KIND_PIPELINE: u64 = 0x01;
const KIND_DENY: u64 = 0x02;
const KIND_LEARN: u64 = 0x03;
const KIND_COUNTING: u64 = 0x04;

impl Cookie {
    /// The prefix that marks a flow as augur's (`au`).
    pub const PREFIX: u16 = 0x6175;
    /// The cookie mask that selects augur's flows, whatever their version.
    pub const AUGUR_MASK: u64 = 0xffff_0000_0000_0000;
    /// The cookie mask that selects one policy version's flows.
    pub const VERSION_MASK: u64 = 0xffff_ffff_0000_0000;
    /// The largest rule index the detail field holds.
    pub const MAX_RULE: u32 = 0x00ff_ffff;

    /// The cookie of a flow of policy `version` compiled from `origin`.
    /// Rule indexes above [`Cookie::MAX_RULE`] are refused by the compiler
    /// before they get here; this keeps the low 24 bits only.
    pub fn new(version: u16, origin: Origin) -> Cookie {
        let (kind, detail) = match origin {
            Origin::Rule(index) => (KIND_RULE, u64::from(index)),
            Origin::Pipeline(stage) => (KIND_PIPELINE, u64::from(stage.number())),
            Origin::Deny(reason) => (KIND_DENY, u64::from(reason.number())),
            Origin::Learn => (KIND_LEARN, 0),
            Origin::Counting => (KIND_COUNTING, 0),
        };
        Cookie(
            u64::from(Cookie::PREFIX) << 48
                | u64::from(version) << 32
                | kind << 24
                | (detail & u64::from(Cookie::MAX_RULE)),
        )
    }

    /// The cookie and mask that select every flow of `version`.
    pub fn version_filter(version: u16) -> (u64, u64) {
        (
            u64::from(Cookie::PREFIX) << 48 | u64::from(version) << 32,
            Cookie::VERSION_MASK,
        )
    }

    /// The cookie and mask that select all of augur's flows.
    pub fn augur_filter() -> (u64, u64) {
        (u64::from(Cookie::PREFIX) << 48, Cookie::AUGUR_MASK)
    }

    /// Whether a flow with this cookie is augur's.
    pub fn is_augur(raw: u64) -> bool {
        raw & Cookie::AUGUR_MASK == u64::from(Cookie::PREFIX) << 48
    }

    /// The cookie if it is augur's.
    pub fn from_raw(raw: u64) -> Option<Cookie> {
        Cookie::is_augur(raw).then_some(Cookie(raw))
    }

    /// A content tag: 16 bits of a hash of `bytes` (FNV-1a, folded), the same
    /// in every build so that a restarted daemon computes the tags the
    /// switch already holds.
    pub fn content_tag(bytes: &[u8]) -> u16 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        (h ^ (h >> 16) ^ (h >> 32) ^ (h >> 48)) as u16
    }

    /// The cookie and mask that select the rule flows of rules introduced
    /// by change `version`.
    pub fn rule_version_filter(version: u16) -> (u64, u64) {
        (
            u64::from(Cookie::PREFIX) << 48 | u64::from(version) << 32 | KIND_RULE << 24,
            0xffff_ffff_ff00_0000,
        )
    }

    /// The version field: for rule flows, the change that introduced the
    /// rule; for pipeline, deny and learn flows, their content tag.
    pub fn version(self) -> u16 {
        (self.0 >> 32) as u16
    }

    /// What the flow came from, if the kind is one this build knows.
    pub fn origin(self) -> Option<Origin> {
        let detail = (self.0 & u64::from(Cookie::MAX_RULE)) as u32;
        match (self.0 >> 24) & 0xff {
            KIND_RULE => Some(Origin::Rule(detail)),
            KIND_PIPELINE => Stage::from_number(u8::try_from(detail).ok()?).map(Origin::Pipeline),
            KIND_DENY => DenyReason::from_number(u8::try_from(detail).ok()?).map(Origin::Deny),
            KIND_LEARN => (detail == 0).then_some(Origin::Learn),
            KIND_COUNTING => (detail == 0).then_some(Origin::Counting),
            _ => None,
        }
    }
}

impl fmt::Display for Cookie {
    /// `0x6175000300000002 (v3 rule #2)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#018x}", self.0)?;
        if !Cookie::is_augur(self.0) {
            return Ok(());
        }
        write!(f, " (v{} ", self.version())?;
        match self.origin() {
            Some(Origin::Rule(n)) => write!(f, "rule #{n})"),
            Some(Origin::Pipeline(stage)) => write!(f, "{stage})"),
            Some(Origin::Deny(reason)) => write!(f, "deny: {reason})"),
            Some(Origin::Learn) => write!(f, "learn)"),
            Some(Origin::Counting) => write!(f, "counting)"),
            None => write!(f, "unknown origin)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_as_documented() {
        let c = Cookie::new(3, Origin::Rule(2));
        assert_eq!(c.0, 0x6175_0003_0000_0002);
        assert_eq!(c.version(), 3);
        assert_eq!(c.origin(), Some(Origin::Rule(2)));
        assert!(Cookie::is_augur(c.0));
        assert!(!Cookie::is_augur(0x1234));
        let d = Cookie::new(0xffff, Origin::Deny(DenyReason::NoRule));
        assert_eq!(d.0 >> 24, 0x0061_75ff_ff02);
        assert_eq!(d.origin(), Some(Origin::Deny(DenyReason::NoRule)));
        let p = Cookie::new(1, Origin::Pipeline(Stage::Conntrack));
        assert_eq!(p.origin(), Some(Origin::Pipeline(Stage::Conntrack)));
        let (cookie, mask) = Cookie::version_filter(3);
        assert_eq!(c.0 & mask, cookie);
        assert_ne!(Cookie::new(4, Origin::Rule(2)).0 & mask, cookie);
        assert_eq!(c.to_string(), "0x6175000300000002 (v3 rule #2)");
        assert_eq!(Cookie(0x1).to_string(), "0x0000000000000001");
        let l = Cookie::new(2, Origin::Learn);
        assert_eq!(l.0, 0x6175_0002_0300_0000);
        assert_eq!(l.origin(), Some(Origin::Learn));
        assert_eq!(l.to_string(), "0x6175000203000000 (v2 learn)");
        let (cookie, mask) = Cookie::rule_version_filter(3);
        assert_eq!(c.0 & mask, cookie);
        assert_ne!(p.0 & mask, Cookie::rule_version_filter(1).0);
    }

    #[test]
    fn content_tags_are_stable_across_builds() {
        // FNV-1a of "" and of "a", folded to 16 bits: fixed values, so
        // that a toolchain upgrade does not re-add every pipeline flow.
        assert_eq!(Cookie::content_tag(b""), 0x2325 ^ 0x8422 ^ 0x9ce4 ^ 0xcbf2);
        assert_ne!(Cookie::content_tag(b"a"), Cookie::content_tag(b"b"));
    }
}
