//! Orchestration: policy versions and their history ([`versions`]), and the
//! operator's rollback requests through OVSDB ([`requests`]).
//!
//! The decision loop (which recommendations to apply, which wait for an
//! operator, when to roll back by itself) builds on these: it records each
//! change with [`versions::record_change`], has the daemon apply it, and
//! undoes one with [`versions::plan_rollback`].

pub mod requests;
pub mod versions;
