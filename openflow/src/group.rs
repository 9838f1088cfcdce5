//! Groups: GROUP_MOD, buckets, and the group statistics, description and
//! features of MULTIPART replies. The layouts are the same in OpenFlow 1.3 and 1.4.

use std::fmt;

use bytes::{BufMut, BytesMut};
use serde::Serialize;

use crate::action::{self, Action};
use crate::error::EncodeError;
use crate::header::Version;
use crate::message::BodyCodec;
use crate::message::Layout;
use crate::types::{GROUP_ANY, GroupName, PortNo};
use crate::wire::{self, PResult};

/// Length of the fixed part of a bucket.
const BUCKET_HEAD_LEN: usize = 16;
/// Length of the fixed part of a group statistics entry.
const GROUP_STATS_HEAD_LEN: usize = 40;
/// Length of the fixed part of a group description entry.
const GROUP_DESC_HEAD_LEN: usize = 8;

wire_enum! {
    /// What a GROUP_MOD does (`OFPGC_*`).
    pub struct GroupCommand(u16) {
        /// Add a new group.
        ADD = 0 => "add",
        /// Replace an existing group.
        MODIFY = 1 => "modify",
        /// Delete a group (or all, with [`GROUP_ALL`](crate::GROUP_ALL)).
        DELETE = 2 => "delete",
    }
}

wire_enum! {
    /// How a group uses its buckets (`OFPGT_*`).
    pub struct GroupType(u8) {
        /// Execute every bucket (multicast, flooding).
        ALL = 0 => "all",
        /// Execute one bucket, chosen by the switch (multipath).
        SELECT = 1 => "select",
        /// Execute the one bucket.
        INDIRECT = 2 => "indirect",
        /// Execute the first live bucket.
        FAST_FAILOVER = 3 => "ff",
    }
}

flag_set! {
    /// Group types supported by a switch: bit `1 << t` for each [`GroupType`] `t`.
    pub struct GroupTypes(u32) {
        /// [`GroupType::ALL`].
        ALL = 1 << 0 => "all",
        /// [`GroupType::SELECT`].
        SELECT = 1 << 1 => "select",
        /// [`GroupType::INDIRECT`].
        INDIRECT = 1 << 2 => "indirect",
        /// [`GroupType::FAST_FAILOVER`].
        FAST_FAILOVER = 1 << 3 => "ff",
    }
}

flag_set! {
    /// Group capabilities of a switch (`OFPGFC_*`).
    pub struct GroupCapabilities(u32) {
        /// Bucket weights in select groups.
        SELECT_WEIGHT = 1 << 0 => "select_weight",
        /// Liveness checks in select groups.
        SELECT_LIVENESS = 1 << 1 => "select_liveness",
        /// Groups that forward to groups.
        CHAINING = 1 << 2 => "chaining",
        /// Loop and deletion checks on chained groups.
        CHAINING_CHECKS = 1 << 3 => "chaining_checks",
    }
}

/// A bucket of a group (`ofp_bucket`): actions and what decides its use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bucket {
    /// Relative weight in a select group; 0 elsewhere.
    pub weight: u16,
    /// Port whose liveness gates the bucket in a fast-failover group, or [`PortNo::ANY`].
    pub watch_port: PortNo,
    /// Group whose liveness gates the bucket in a fast-failover group, or
    /// [`GROUP_ANY`].
    pub watch_group: u32,
    /// The actions applied to the packet.
    pub actions: Vec<Action>,
}

impl Bucket {
    /// A bucket that applies `actions` unconditionally (all and indirect groups).
    pub fn new(actions: Vec<Action>) -> Bucket {
        Bucket {
            weight: 0,
            watch_port: PortNo::ANY,
            watch_group: GROUP_ANY,
            actions,
        }
    }

    fn decode(i: &[u8]) -> PResult<'_, Bucket> {
        let (rest, whole) = wire::split_by_length(i, 0, BUCKET_HEAD_LEN, "bucket")?;
        let (b, _length) = wire::u16(whole)?;
        let (b, weight) = wire::u16(b)?;
        let (b, watch_port) = wire::u32(b)?;
        let (b, watch_group) = wire::u32(b)?;
        let (b, ()) = wire::pad(b, 4)?;
        let (_, actions) = action::decode_actions(b)?;
        Ok((
            rest,
            Bucket {
                weight,
                watch_port: PortNo(watch_port),
                watch_group,
                actions,
            },
        ))
    }

    fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        let start = out.len();
        let len_at = wire::reserve_u16(out);
        out.put_u16(self.weight);
        out.put_u32(self.watch_port.0);
        out.put_u32(self.watch_group);
        wire::put_zeros(out, 4);
        action::encode_actions(&self.actions, out)?;
        wire::patch_len_u16(out, len_at, start, "bucket")?;
        Ok(())
    }
}

/// Decodes the buckets filling all of `i`.
fn decode_buckets(i: &[u8]) -> PResult<'_, Vec<Bucket>> {
    wire::list_by_length(i, 0, BUCKET_HEAD_LEN, Bucket::decode)
}

fn encode_buckets(buckets: &[Bucket], out: &mut BytesMut) -> Result<(), EncodeError> {
    buckets.iter().try_for_each(|b| b.encode(out))
}

impl fmt::Display for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bucket=")?;
        if self.weight != 0 {
            write!(f, "weight:{},", self.weight)?;
        }
        if self.watch_port != PortNo::ANY {
            write!(f, "watch_port:{},", self.watch_port)?;
        }
        if self.watch_group != GROUP_ANY {
            write!(f, "watch_group:{},", self.watch_group)?;
        }
        write!(f, "actions={}", action::display_list(&self.actions))
    }
}

/// GROUP_MOD: adds, replaces or deletes a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupMod {
    /// What to do.
    pub command: GroupCommand,
    /// How the group uses its buckets.
    pub group_type: GroupType,
    /// The group.
    pub group_id: u32,
    /// The buckets (none for DELETE).
    pub buckets: Vec<Bucket>,
}

impl GroupMod {
    /// Adds group `group_id`.
    pub fn add(group_type: GroupType, group_id: u32, buckets: Vec<Bucket>) -> GroupMod {
        GroupMod {
            command: GroupCommand::ADD,
            group_type,
            group_id,
            buckets,
        }
    }

    /// Replaces the type and buckets of group `group_id`.
    pub fn modify(group_type: GroupType, group_id: u32, buckets: Vec<Bucket>) -> GroupMod {
        GroupMod {
            command: GroupCommand::MODIFY,
            ..GroupMod::add(group_type, group_id, buckets)
        }
    }

    /// Deletes group `group_id` ([`GROUP_ALL`](crate::GROUP_ALL) for every group).
    pub fn delete(group_id: u32) -> GroupMod {
        GroupMod {
            command: GroupCommand::DELETE,
            ..GroupMod::add(GroupType::ALL, group_id, Vec::new())
        }
    }
}

impl BodyCodec for GroupMod {
    fn decode_body(version: Version, i: &[u8]) -> PResult<'_, Self> {
        Layout::decoding(version, i)?;
        let (i, command) = wire::u16(i)?;
        let (i, group_type) = wire::u8(i)?;
        let (i, ()) = wire::pad(i, 1)?;
        let (i, group_id) = wire::u32(i)?;
        let (i, buckets) = decode_buckets(i)?;
        Ok((
            i,
            GroupMod {
                command: GroupCommand(command),
                group_type: GroupType(group_type),
                group_id,
                buckets,
            },
        ))
    }

    fn encode_body(&self, version: Version, out: &mut BytesMut) -> Result<(), EncodeError> {
        Layout::encoding(version, "group mod")?;
        out.put_u16(self.command.0);
        out.put_u8(self.group_type.0);
        wire::put_zeros(out, 1);
        out.put_u32(self.group_id);
        encode_buckets(&self.buckets, out)
    }
}

impl fmt::Display for GroupMod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} group_id={},type={}",
            self.command,
            GroupName(self.group_id),
            self.group_type
        )?;
        for bucket in &self.buckets {
            write!(f, ",{bucket}")?;
        }
        Ok(())
    }
}

/// Counters of one bucket (`ofp_bucket_counter`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BucketCounter {
    /// Packets processed by the bucket.
    pub packet_count: u64,
    /// Bytes processed by the bucket.
    pub byte_count: u64,
}

/// Statistics of one group (`ofp_group_stats`), from a GROUP reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupStats {
    /// The group.
    pub group_id: u32,
    /// Flows and groups forwarding to this group.
    pub ref_count: u32,
    /// Packets processed by the group.
    pub packet_count: u64,
    /// Bytes processed by the group.
    pub byte_count: u64,
    /// Seconds the group has been alive.
    pub duration_sec: u32,
    /// Nanoseconds beyond `duration_sec`.
    pub duration_nsec: u32,
    /// One counter per bucket, in bucket order.
    pub bucket_stats: Vec<BucketCounter>,
}

impl GroupStats {
    /// Decodes one entry.
    pub(crate) fn decode(i: &[u8]) -> PResult<'_, GroupStats> {
        let (rest, whole) = wire::split_by_length(i, 0, GROUP_STATS_HEAD_LEN, "group stats")?;
        let (g, _length) = wire::u16(whole)?;
        let (g, ()) = wire::pad(g, 2)?;
        let (g, group_id) = wire::u32(g)?;
        let (g, ref_count) = wire::u32(g)?;
        let (g, ()) = wire::pad(g, 4)?;
        let (g, packet_count) = wire::u64(g)?;
        let (g, byte_count) = wire::u64(g)?;
        let (g, duration_sec) = wire::u32(g)?;
        let (g, duration_nsec) = wire::u32(g)?;
        let (_, bucket_stats) = wire::many(g, |c| {
            let (c, packet_count) = wire::u64(c)?;
            let (c, byte_count) = wire::u64(c)?;
            Ok((
                c,
                BucketCounter {
                    packet_count,
                    byte_count,
                },
            ))
        })?;
        Ok((
            rest,
            GroupStats {
                group_id,
                ref_count,
                packet_count,
                byte_count,
                duration_sec,
                duration_nsec,
                bucket_stats,
            },
        ))
    }

    /// Appends the entry.
    pub(crate) fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        let start = out.len();
        let len_at = wire::reserve_u16(out);
        wire::put_zeros(out, 2);
        out.put_u32(self.group_id);
        out.put_u32(self.ref_count);
        wire::put_zeros(out, 4);
        out.put_u64(self.packet_count);
        out.put_u64(self.byte_count);
        out.put_u32(self.duration_sec);
        out.put_u32(self.duration_nsec);
        for counter in &self.bucket_stats {
            out.put_u64(counter.packet_count);
            out.put_u64(counter.byte_count);
        }
        wire::patch_len_u16(out, len_at, start, "group stats")?;
        Ok(())
    }

    /// Decodes the entries filling all of `i`.
    pub(crate) fn decode_list(i: &[u8]) -> PResult<'_, Vec<GroupStats>> {
        wire::list_by_length(i, 0, GROUP_STATS_HEAD_LEN, GroupStats::decode)
    }
}

impl fmt::Display for GroupStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "group_id={},duration={}.{:03}s,ref_count={},packet_count={},byte_count={}",
            GroupName(self.group_id),
            self.duration_sec,
            self.duration_nsec / 1_000_000,
            self.ref_count,
            self.packet_count,
            self.byte_count
        )?;
        for (n, c) in self.bucket_stats.iter().enumerate() {
            write!(
                f,
                ",bucket{n}:packet_count={},byte_count={}",
                c.packet_count, c.byte_count
            )?;
        }
        Ok(())
    }
}

/// Description of one group (`ofp_group_desc`), from a GROUP_DESC reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupDesc {
    /// How the group uses its buckets.
    pub group_type: GroupType,
    /// The group.
    pub group_id: u32,
    /// The buckets.
    pub buckets: Vec<Bucket>,
}

impl GroupDesc {
    /// Decodes one entry.
    pub(crate) fn decode(i: &[u8]) -> PResult<'_, GroupDesc> {
        let (rest, whole) = wire::split_by_length(i, 0, GROUP_DESC_HEAD_LEN, "group desc")?;
        let (g, _length) = wire::u16(whole)?;
        let (g, group_type) = wire::u8(g)?;
        let (g, ()) = wire::pad(g, 1)?;
        let (g, group_id) = wire::u32(g)?;
        let (_, buckets) = decode_buckets(g)?;
        Ok((
            rest,
            GroupDesc {
                group_type: GroupType(group_type),
                group_id,
                buckets,
            },
        ))
    }

    /// Appends the entry.
    pub(crate) fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        let start = out.len();
        let len_at = wire::reserve_u16(out);
        out.put_u8(self.group_type.0);
        wire::put_zeros(out, 1);
        out.put_u32(self.group_id);
        encode_buckets(&self.buckets, out)?;
        wire::patch_len_u16(out, len_at, start, "group desc")?;
        Ok(())
    }

    /// Decodes the entries filling all of `i`.
    pub(crate) fn decode_list(i: &[u8]) -> PResult<'_, Vec<GroupDesc>> {
        wire::list_by_length(i, 0, GROUP_DESC_HEAD_LEN, GroupDesc::decode)
    }
}

impl fmt::Display for GroupDesc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "group_id={},type={}",
            GroupName(self.group_id),
            self.group_type
        )?;
        for bucket in &self.buckets {
            write!(f, ",{bucket}")?;
        }
        Ok(())
    }
}

/// Group capabilities of a switch (`ofp_group_features`), from a GROUP_FEATURES reply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct GroupFeatures {
    /// Supported group types.
    pub types: GroupTypes,
    /// Supported capabilities.
    pub capabilities: GroupCapabilities,
    /// Maximum number of groups, indexed by [`GroupType`].
    pub max_groups: [u32; 4],
    /// Supported actions, indexed by [`GroupType`]: bit `1 << t` for action type `t` below 32.
    pub actions: [u32; 4],
}

impl GroupFeatures {
    /// Size on the wire.
    const LEN: usize = 40;

    /// Decodes the body of a GROUP_FEATURES reply.
    pub(crate) fn decode(i: &[u8]) -> PResult<'_, GroupFeatures> {
        let (i, types) = wire::u32(i)?;
        let (i, capabilities) = wire::u32(i)?;
        let mut max_groups = [0u32; 4];
        let mut actions = [0u32; 4];
        let mut i = i;
        for slot in max_groups.iter_mut().chain(actions.iter_mut()) {
            let (rest, value) = wire::u32(i)?;
            *slot = value;
            i = rest;
        }
        Ok((
            i,
            GroupFeatures {
                types: GroupTypes(types),
                capabilities: GroupCapabilities(capabilities),
                max_groups,
                actions,
            },
        ))
    }

    /// Appends the body of a GROUP_FEATURES reply.
    pub(crate) fn encode(&self, out: &mut BytesMut) {
        let start = out.len();
        out.put_u32(self.types.0);
        out.put_u32(self.capabilities.0);
        for value in self.max_groups.iter().chain(self.actions.iter()) {
            out.put_u32(*value);
        }
        debug_assert_eq!(out.len() - start, GroupFeatures::LEN);
    }
}

impl fmt::Display for GroupFeatures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "types={} capabilities={}", self.types, self.capabilities)?;
        for (t, (max, actions)) in (0u8..).zip(self.max_groups.into_iter().zip(self.actions)) {
            let group_type = GroupType(t);
            write!(f, " {group_type}:max_groups={max},actions=0x{actions:x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Body, DecodeErrorKind, GROUP_ALL, Message};

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|n| u8::from_str_radix(&s[n..n + 2], 16).unwrap())
            .collect()
    }

    /// Ryu's 4-21-ofp_group_mod: one bucket with output:2.
    const GROUP_MOD: &str = "040f0030 00000000 0000 00 00 00000001
        0020 0001 00000001 00000001 00000000 0000 0010 00000002 ffff 000000000000";

    #[test]
    fn group_mod_round_trips() {
        let bytes = hex(GROUP_MOD);
        let msg = Message::decode(&bytes).unwrap();
        let Body::GroupMod(gm) = &msg.body else {
            panic!()
        };
        assert_eq!(gm.command, GroupCommand::ADD);
        assert_eq!(gm.group_type, GroupType::ALL);
        assert_eq!(gm.group_id, 1);
        assert_eq!(gm.buckets.len(), 1);
        let bucket = &gm.buckets[0];
        assert_eq!(
            (bucket.weight, bucket.watch_port, bucket.watch_group),
            (1, PortNo(1), 1)
        );
        assert_eq!(bucket.actions.len(), 1);
        assert_eq!(&msg.encode().unwrap()[..], &bytes[..]);
        assert!(gm.to_string().starts_with(
            "add group_id=1,type=all,bucket=weight:1,watch_port:1,watch_group:1,actions="
        ));
    }

    #[test]
    fn bucket_lengths_are_checked() {
        let mut bytes = hex(GROUP_MOD);
        bytes[0x10..0x12].copy_from_slice(&[0, 0x0f]);
        let err = Message::decode(&bytes).unwrap_err();
        assert_eq!(err.offset, 0x10);
        assert!(matches!(
            err.kind,
            DecodeErrorKind::LengthTooShort { what: "bucket", .. }
        ));
        bytes[0x10..0x12].copy_from_slice(&[0, 0x28]);
        let err = Message::decode(&bytes).unwrap_err();
        assert_eq!(err.offset, 0x10);
        assert!(matches!(
            err.kind,
            DecodeErrorKind::LengthTooLong { what: "bucket", .. }
        ));
    }

    #[test]
    fn constructors_build_what_they_say() {
        let del = GroupMod::delete(GROUP_ALL);
        assert_eq!(del.to_string(), "delete group_id=all,type=all");
        let mut out = BytesMut::new();
        del.encode_body(Version::OF13, &mut out).unwrap();
        assert_eq!(&out[..], &hex("0002 00 00 fffffffc")[..]);
        let add = GroupMod::add(GroupType::SELECT, 5, vec![Bucket::new(Vec::new())]);
        assert_eq!(
            add.to_string(),
            "add group_id=5,type=select,bucket=actions=drop"
        );
        let mut out = BytesMut::new();
        add.encode_body(Version::OF14, &mut out).unwrap();
        let (_, back) = GroupMod::decode_body(Version::OF14, &out).unwrap();
        assert_eq!(back, add);
    }

    #[test]
    fn group_stats_and_desc_round_trip() {
        let stats = hex(
            "0038 0000 00000001 00000002 00000000 000000000000007b 0000000000003039
             00000009 244d26e0 00000000000000ea 0000000000000929",
        );
        let (rest, list) = GroupStats::decode_list(&stats).unwrap();
        assert!(rest.is_empty());
        assert_eq!(
            list[0].bucket_stats,
            vec![BucketCounter {
                packet_count: 234,
                byte_count: 2345
            }]
        );
        let mut out = BytesMut::new();
        list[0].encode(&mut out).unwrap();
        assert_eq!(&out[..], &stats[..]);
        // A bucket counter cut in half.
        let mut bad = stats.clone();
        bad[1] = 0x30;
        assert!(GroupStats::decode_list(&bad[..0x30]).is_err());

        let desc = hex(
            "0028 00 00 00000001 0020 0001 00000001 00000001 00000000 0000 0010 00000002 ffff 000000000000",
        );
        let (_, list) = GroupDesc::decode_list(&desc).unwrap();
        let mut out = BytesMut::new();
        list[0].encode(&mut out).unwrap();
        assert_eq!(&out[..], &desc[..]);
    }

    #[test]
    fn group_features_round_trip() {
        let bytes = hex(
            "0000000f 00000005 01000000 01000000 01000000 01000000 03ff9801 03ff9801 03ff9801 03ff9801",
        );
        let (rest, features) = GroupFeatures::decode(&bytes).unwrap();
        assert!(rest.is_empty());
        assert_eq!(features.types, GroupTypes(0xf));
        assert_eq!(
            features.capabilities,
            GroupCapabilities::SELECT_WEIGHT | GroupCapabilities::CHAINING
        );
        assert_eq!(
            features.to_string(),
            "types=all|select|indirect|ff capabilities=select_weight|chaining \
             all:max_groups=16777216,actions=0x3ff9801 select:max_groups=16777216,actions=0x3ff9801 \
             indirect:max_groups=16777216,actions=0x3ff9801 ff:max_groups=16777216,actions=0x3ff9801"
        );
        let mut out = BytesMut::new();
        features.encode(&mut out);
        assert_eq!(&out[..], &bytes[..]);
    }
}
