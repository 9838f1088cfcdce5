//! augur: an SDN controller for Open vSwitch that learns how VMs talk and
//! adjusts their access policy ahead of need.
//!
//! The library holds the controller's parts so that integration tests and the
//! `augur` binary share them: [`switch`] drives OpenFlow connections. Protocol
//! codecs and pure decision logic live in the workspace crates
//! (`augur-openflow`, `augur-ovsdb`, `augur-flows`).
#![forbid(unsafe_code)]

pub mod daemon;
pub mod import;
pub mod inventory;
pub mod observer;
pub mod orchestrate;
pub mod pending;
pub mod policy;
pub mod predict;
pub mod recommend;
pub mod replay;
pub mod risk;
pub mod store;
pub mod switch;
