//! Async client.
