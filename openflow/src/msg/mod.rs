//! Bodies of the non-multipart messages.

use crate::stub::opaque_stub;

opaque_stub!(
    Hello,
    ErrorMsg,
    Experimenter,
    SwitchFeatures,
    SwitchConfig,
    PacketIn,
    PacketOut,
    FlowMod,
    FlowRemoved,
    TableMod,
    RoleMessage,
    AsyncConfig,
    BundleControl,
    BundleAdd,
);
