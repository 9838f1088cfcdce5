//! The live observer, the pure part: what augur's own flows and the deny
//! stage's samples say about who talks to whom.
//!
//! - [`counters`]: successive FLOW multipart replies → per-flow deltas,
//!   coping with counters that restart and flows that vanish;
//! - [`allowed`]: deltas of rule flows → allowed [`FlowRecord`](augur_flows::FlowRecord)s;
//! - [`denied`]: sampled packet-ins of the deny stage → denied records;
//! - [`learned`]: learn mode's sampled new connections → allowed records.
//!
//! The daemon polls, receives and feeds the records into the
//! [`SignatureStore`](crate::store::SignatureStore); nothing here does I/O
//! or reads a clock.

pub mod allowed;
pub mod counters;
pub mod denied;
pub mod learned;

pub use allowed::{AllowedSummary, RuleTarget, RuleTargets, allowed_records};
pub use counters::{CounterDelta, CounterTracker, FlowIdentity, PollSummary};
pub use denied::{PacketHeaders, Skipped, denied_record, deny_reason, endpoint_of, parse_headers};
pub use learned::{
    COUNTING_PRIORITY, counted_record, counting_flow, is_learn_sample, learned_record,
    original_tuple,
};
