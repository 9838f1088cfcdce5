//! Byte tables and malformed inputs for multipart messages.
