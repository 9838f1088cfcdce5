//! Scenario generator (in progress).
