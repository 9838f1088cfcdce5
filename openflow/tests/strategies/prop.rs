//! Proptest strategies for the property-list types several messages share
//! (TABLE_MOD, asynchronous configuration, bundles, ports): included by the
//! strategies of each part that uses them.
#![allow(dead_code)]

use augur_openflow::{ExperimenterId, ExperimenterProperty, UnknownProperty};
use bytes::Bytes;
use proptest::prelude::*;

fn bytes_up_to(max: usize) -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..=max).prop_map(Bytes::from)
}

/// Nicira, the ONF, or any other id.
pub fn arb_experimenter_id() -> impl Strategy<Value = ExperimenterId> {
    prop_oneof![
        Just(ExperimenterId::NICIRA),
        Just(ExperimenterId::ONF),
        any::<u32>().prop_map(ExperimenterId),
    ]
}

/// An experimenter property with up to 20 bytes of data.
pub fn arb_experimenter_property() -> impl Strategy<Value = ExperimenterProperty> {
    (arb_experimenter_id(), any::<u32>(), bytes_up_to(20)).prop_map(
        |(experimenter, exp_type, data)| ExperimenterProperty {
            experimenter,
            exp_type,
            data,
        },
    )
}

/// A property of a type not among `known` (the types its list defines).
pub fn arb_unknown_property(known: &'static [u16]) -> impl Strategy<Value = UnknownProperty> {
    (
        any::<u16>().prop_filter("a type the list does not define", move |t| {
            !known.contains(t)
        }),
        bytes_up_to(20),
    )
        .prop_map(|(prop_type, data)| UnknownProperty { prop_type, data })
}
