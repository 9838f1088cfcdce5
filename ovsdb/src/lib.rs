//! OVSDB (RFC 7047) client for augur: protocol core without I/O, and a thin async driver.
#![forbid(unsafe_code)]
