//! Enforcement, the pure part: the policy file, its compilation into flow
//! tables, the cookies that tag augur's flows, a flow-table evaluator, and
//! reconciliation of desired with installed flows.
//!
//! Nothing here does I/O or reads a clock: the daemon passes `now` in and
//! sends what comes out.
pub mod compile;
pub mod cookie;
pub mod eval;
pub mod file;
pub mod reconcile;

pub use compile::{
    BridgeFlows, CompileError, CompileSettings, CompiledPolicy, DenyReason, FlowEntry, MeterSpec,
    Stage, compile,
};
pub use cookie::{Cookie, Origin};
pub use file::{Endpoint, Group, Policy, PolicyError, PortRange, Proto, Rate, RateUnit, Rule};
