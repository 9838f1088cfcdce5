//! Bodies of the non-multipart messages.
//!
//! Each body implements the crate's `BodyCodec` for wire versions 4 (OpenFlow
//! 1.3) and 5 (OpenFlow 1.4). Where the two versions differ (FLOW_MOD
//! importance, TABLE_MOD properties, the asynchronous configuration) the type
//! says so instead of hiding it: values that one version cannot carry are an
//! [`crate::EncodeError::WrongVersion`], never silently dropped.

mod async_config;
mod bundle;
mod config;
mod error;
mod experimenter;
mod features;
mod flow;
mod hello;
mod packet;
mod role;
mod table;

pub use async_config::{AsyncConfig, AsyncConfigProp, AsyncMasks, AsyncPropType};
pub use bundle::{BundleAdd, BundleControl, BundleCtrlType, BundleFlags, BundleProp};
pub use config::{ConfigFlags, SwitchConfig};
pub use error::{ErrorCode, ErrorMsg, ErrorType, codes};
pub use experimenter::Experimenter;
pub use features::{Capabilities, SwitchFeatures};
pub use flow::{FlowMod, FlowModCommand, FlowModFlags, FlowRemoved, FlowRemovedReason};
pub use hello::{Hello, HelloElemType, HelloElement, negotiate};
pub use packet::{PacketIn, PacketInReason, PacketOut};
pub use role::{ControllerRole, RoleMessage};
pub use table::{EvictionFlags, TableConfig, TableMod, TableModProp};
