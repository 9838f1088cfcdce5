//! Flow records and communication signatures: pure aggregation, no I/O.
#![forbid(unsafe_code)]
