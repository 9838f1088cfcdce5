//! OVSDB (RFC 7047) client for augur.
//!
//! The core does no I/O and knows nothing of tokio, in the style of
//! quinn-proto: [`framing`] splits a byte stream into JSON texts under size
//! and depth limits, [`jsonrpc`] reads and writes the JSON-RPC 1.0 dialect
//! `ovsdb-server` speaks, [`data`] and [`schema`] are the RFC 7047 data
//! model, [`ops`] the `transact` operations, [`monitor`] and [`replica`] the
//! monitored copy of tables, [`session`] the state machine tying requests,
//! replies, notifications, locks and probes together, and [`vswitch`] typed
//! access to the `Open_vSwitch` tables augur uses.
//!
//! With the `tokio` feature (on by default), [`client`] drives a session
//! over `unix:`, `tcp:` and `ssl:` connections with reconnect and backoff.
#![forbid(unsafe_code)]

pub mod data;
pub mod framing;
pub mod jsonrpc;
pub mod monitor;
pub mod ops;
pub mod replica;
pub mod schema;
pub mod session;
pub mod target;
pub mod vswitch;

#[cfg(feature = "tokio")]
pub mod client;

pub use data::{Atom, Datum, DecodeError, Row};
pub use monitor::{MonitorProtocol, MonitorSelect, MonitorSpec, TableMonitor};
pub use ops::{
    Condition, Function, Mutation, Mutator, Operation, OperationError, OperationResult,
    TransactReply, WaitUntil,
};
pub use replica::{Replica, RowChange};
pub use schema::DatabaseSchema;
pub use session::{LockEvent, MonitorEvent, MonitorId, RequestError};
pub use target::Target;
pub use uuid::Uuid;
