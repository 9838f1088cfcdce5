//! The live observer, the pure part: what augur's own flows and the deny
//! stage's samples say about who talks to whom.
//!
//! - [`counters`]: successive FLOW multipart replies → per-flow deltas,
//!   coping with counters that restart and flows that vanish;
//! - [`allowed`]: deltas of rule flows → allowed [`FlowRecord`](augur_flows::FlowRecord)s;
//! - [`denied`]: sampled packet-ins of the deny stage → denied records;
//! - [`learned`]: sampled new connections (rule flows in both modes, the
//!   learn flow in learn mode) and their counting flows → allowed records;
//! - [`connections`]: what keeps a connection from being counted twice
//!   (resent openings, openings both sampled and counted by their rule).
//!
//! The daemon polls, receives and feeds the records into the
//! [`SignatureStore`](crate::store::SignatureStore); nothing here does I/O
//! or reads a clock.

pub mod allowed;
pub mod connections;
pub mod counters;
pub mod denied;
pub mod learned;

pub use allowed::{AllowedSummary, RuleTarget, RuleTargets, allowed_records, opens_connections};
pub use connections::{ConnectionTuple, OpeningsLedger, RecentConnections};
pub use counters::{CounterDelta, CounterTracker, FlowIdentity, PollSummary};
pub use denied::{PacketHeaders, Skipped, denied_record, deny_reason, endpoint_of, parse_headers};
pub use learned::{
    COUNTING_PRIORITY, connection_tuple, counted_connection, counted_record, counting_flow,
    is_admission_sample, is_learn_sample, learned_record, original_tuple,
};
