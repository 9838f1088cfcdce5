//! Flow records and communication signatures: pure aggregation, no I/O.
//!
//! augur observes who talks to whom and summarises it so that the predictor
//! can learn what is normal. This crate is the summarising part, with no I/O,
//! no clock and no async: callers hand it records and the current time.
//!
//! - [`FlowRecord`]: one observation (a connection from a log, a counter
//!   delta of one of augur's flows, a denied attempt), oriented so that the
//!   service side is the destination ([`FlowRecord::oriented`],
//!   [`guess_initiator`]).
//! - [`WindowConfig`], [`WindowRow`]: records are summed per flow key
//!   ([`FlowKey`]: source, destination, protocol, service port) into windows
//!   of 60 s by default. Rows are what the store keeps.
//! - [`Aggregator`]: the live state. Records go into the open window in O(1);
//!   closing a window folds each active key's row into its key state and its
//!   pair and label-pair [`Signature`]s. [`Aggregator::apply_rows`] rebuilds
//!   the same state from stored rows.
//! - [`periodicity`]: recurring jobs found from onsets (inter-arrival
//!   histogram for candidates, integer-cycle least-squares fit for period and
//!   phase, a score for confidence).
//! - [`VolumeSketch`]: volume quantiles, exact on short series.
//!
//! ```
//! use augur_flows::{Aggregator, Endpoint, FlowRecord, Protocol, Timestamp, Verdict, WindowConfig};
//!
//! let mut agg = Aggregator::new(WindowConfig::default());
//! agg.set_keep_closed(false);
//! for k in 0..20 {
//!     agg.ingest(&[FlowRecord::tcp_connection(
//!         Timestamp::from_secs(1_700_000_000 + 300 * k),
//!         Endpoint::vm("web-1"),
//!         Endpoint::vm("db-1"),
//!         5432,
//!         1200,
//!         10,
//!     )]);
//! }
//! agg.close_window(1_700_000_000 + 300 * 20);
//! let web = agg.endpoints().get(&Endpoint::vm("web-1")).unwrap();
//! let db = agg.endpoints().get(&Endpoint::vm("db-1")).unwrap();
//! let signature = agg.pair_signature(web, db).unwrap();
//! assert_eq!(signature.services[0].port, 5432);
//! let period = signature.periodicity.unwrap().period_s;
//! assert!((period - 300.0).abs() < 1.0);
//! ```
#![forbid(unsafe_code)]

mod aggregate;
mod endpoints;
pub mod periodicity;
mod record;
mod signature;
pub mod sketch;
mod window;

pub use aggregate::{Aggregator, KeyActivity, MemoryReport};
pub use endpoints::{EXTERNAL_LABEL, Endpoints, LabelId, OUTSIDE};
pub use record::{
    EPHEMERAL_PORT_MIN, Endpoint, FlowRecord, Protocol, Side, Timestamp, Verdict, guess_initiator,
};
pub use signature::{
    DeniedSummary, Periodicity, ServiceSummary, Signature, SignatureKind, TopPair, TopService,
    Trend, VolumeSummary,
};
pub use sketch::VolumeSketch;
pub use window::{EndpointId, FlowKey, Observation, WindowBatch, WindowConfig, WindowRow};
