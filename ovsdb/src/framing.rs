//! Splitting a byte stream into JSON texts.
//!
//! `ovsdb-server` sends JSON-RPC messages back to back with no length prefix
//! or delimiter, so the only way to find where one ends is to track JSON
//! structure. The splitter only counts brackets outside strings; whether the
//! bytes are valid JSON is left to the parser that gets each frame. That keeps
//! the scan a single pass, resumable at any byte boundary, with the size and
//! nesting limits checked before a full parser ever sees the bytes.

use thiserror::Error;

/// Limits on a single incoming message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimits {
    /// Largest message accepted, in bytes, including leading whitespace.
    pub max_message_bytes: usize,
    /// Deepest nesting of objects and arrays accepted.
    pub max_depth: usize,
}

impl FrameLimits {
    /// Default message size limit. A full `Open_vSwitch` snapshot of 10,000
    /// interfaces is around 20 MB, so this leaves room for large hypervisors
    /// while still bounding what a broken peer can make us buffer.
    pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;
    /// Default nesting limit. The deepest OVSDB message (a monitor update of a
    /// map column, or a transact with conditions on one) nests about ten
    /// levels; serde_json itself stops at 128.
    pub const DEFAULT_MAX_DEPTH: usize = 64;
}

impl Default for FrameLimits {
    fn default() -> Self {
        Self {
            max_message_bytes: Self::DEFAULT_MAX_MESSAGE_BYTES,
            max_depth: Self::DEFAULT_MAX_DEPTH,
        }
    }
}

/// Why a byte stream cannot be split into messages. Each is fatal for the connection.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FramingError {
    /// A message grew past [`FrameLimits::max_message_bytes`] before it ended.
    #[error("message exceeds the {limit}-byte limit")]
    TooLarge {
        /// The limit in force.
        limit: usize,
    },
    /// Objects or arrays nested deeper than [`FrameLimits::max_depth`].
    #[error("message nests deeper than {limit} levels")]
    TooDeep {
        /// The limit in force.
        limit: usize,
    },
    /// A message must start with `{` or `[`; anything else between messages is garbage.
    #[error("unexpected byte 0x{byte:02x} between messages")]
    UnexpectedByte {
        /// The offending byte.
        byte: u8,
    },
}

/// Incremental scanner for one JSON text at a time.
///
/// The caller owns the buffer; the splitter remembers how far it has scanned
/// so that feeding a large message in small reads costs linear time.
#[derive(Debug, Clone)]
pub struct JsonSplitter {
    limits: FrameLimits,
    scanned: usize,
    depth: usize,
    started: bool,
    in_string: bool,
    escaped: bool,
}

impl JsonSplitter {
    /// A splitter enforcing `limits`.
    pub fn new(limits: FrameLimits) -> Self {
        Self {
            limits,
            scanned: 0,
            depth: 0,
            started: false,
            in_string: false,
            escaped: false,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> FrameLimits {
        self.limits
    }

    /// Forgets any partially scanned message, as after a reconnect.
    pub fn reset(&mut self) {
        *self = Self::new(self.limits);
    }

    /// Scans `buf`, which must hold the bytes of the current message from its
    /// start (the same prefix as in earlier calls, possibly extended).
    ///
    /// Returns the length of the first complete JSON text including any
    /// whitespace before it, or `None` when more bytes are needed. After a
    /// `Some`, the caller removes that many bytes and the splitter is ready
    /// for the next message.
    pub fn scan(&mut self, buf: &[u8]) -> Result<Option<usize>, FramingError> {
        let limit = self.limits.max_message_bytes;
        let mut pos = self.scanned;
        while let Some(&byte) = buf.get(pos) {
            pos += 1;
            if pos > limit {
                return Err(FramingError::TooLarge { limit });
            }
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if byte == b'\\' {
                    self.escaped = true;
                } else if byte == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            if !self.started {
                match byte {
                    b' ' | b'\t' | b'\r' | b'\n' => continue,
                    b'{' | b'[' => self.started = true,
                    _ => return Err(FramingError::UnexpectedByte { byte }),
                }
            }
            match byte {
                b'"' => self.in_string = true,
                b'{' | b'[' => {
                    self.depth += 1;
                    if self.depth > self.limits.max_depth {
                        return Err(FramingError::TooDeep {
                            limit: self.limits.max_depth,
                        });
                    }
                }
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        self.reset();
                        return Ok(Some(pos));
                    }
                }
                _ => {}
            }
        }
        self.scanned = pos;
        Ok(None)
    }
}

/// A receive buffer plus splitter, for drivers that read into plain byte slices.
#[derive(Debug, Clone)]
pub struct FrameBuffer {
    buf: Vec<u8>,
    start: usize,
    splitter: JsonSplitter,
}

impl FrameBuffer {
    /// An empty buffer enforcing `limits`.
    pub fn new(limits: FrameLimits) -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            splitter: JsonSplitter::new(limits),
        }
    }

    /// Appends received bytes.
    pub fn extend(&mut self, data: &[u8]) {
        // Drop consumed bytes before growing, so the buffer holds at most one
        // partial message plus what was just read.
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// The next complete JSON text, if one has arrived.
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, FramingError> {
        let pending = self.buf.get(self.start..).unwrap_or_default();
        match self.splitter.scan(pending)? {
            Some(len) => {
                let begin = self.start;
                self.start += len;
                Ok(self.buf.get(begin..self.start))
            }
            None => Ok(None),
        }
    }

    /// Bytes received but not yet returned as a frame, excluding whitespace
    /// only when nothing else is pending.
    pub fn has_partial_message(&self) -> bool {
        self.buf
            .get(self.start..)
            .unwrap_or_default()
            .iter()
            .any(|b| !b.is_ascii_whitespace())
    }

    /// Discards everything buffered, as after a reconnect.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.start = 0;
        self.splitter.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_all(input: &[u8], limits: FrameLimits) -> Result<Vec<String>, FramingError> {
        let mut fb = FrameBuffer::new(limits);
        fb.extend(input);
        let mut out = Vec::new();
        while let Some(frame) = fb.next_frame()? {
            out.push(String::from_utf8(frame.to_vec()).unwrap().trim().to_owned());
        }
        Ok(out)
    }

    #[test]
    fn splits_concatenated_values_table() {
        let cases: &[(&str, &[&str])] = &[
            ("{}", &["{}"]),
            ("{}{}", &["{}", "{}"]),
            (" \n{\"a\":1}\r\n\t[1,2]", &["{\"a\":1}", "[1,2]"]),
            (
                r#"{"s":"}{"}{"t":"\"}"}"#,
                &[r#"{"s":"}{"}"#, r#"{"t":"\"}"}"#],
            ),
            (r#"{"s":"\\"}{}"#, &[r#"{"s":"\\"}"#, "{}"]),
            (r#"{"a":[{"b":[]}]}"#, &[r#"{"a":[{"b":[]}]}"#]),
            ("{\"a\":1", &[]),
            ("", &[]),
            ("   ", &[]),
        ];
        for (input, expected) in cases {
            let got = split_all(input.as_bytes(), FrameLimits::default()).unwrap();
            assert_eq!(&got, expected, "input {input:?}");
        }
    }

    #[test]
    fn every_split_point_gives_the_same_frames() {
        let input = br#"{"id":1,"result":["a\"}",{"x":[1,{"y":"]"}]}],"error":null} {"method":"echo","params":[],"id":"echo"}"#;
        let whole = split_all(input, FrameLimits::default()).unwrap();
        assert_eq!(whole.len(), 2);
        for cut in 0..=input.len() {
            let mut fb = FrameBuffer::new(FrameLimits::default());
            let mut got = Vec::new();
            for part in [&input[..cut], &input[cut..]] {
                fb.extend(part);
                while let Some(frame) = fb.next_frame().unwrap() {
                    got.push(String::from_utf8(frame.to_vec()).unwrap().trim().to_owned());
                }
            }
            assert_eq!(got, whole, "cut at {cut}");
        }
    }

    #[test]
    fn byte_at_a_time() {
        let input = br#"{"a":"\\\"{"} [[]] {}"#;
        let mut fb = FrameBuffer::new(FrameLimits::default());
        let mut n = 0;
        for b in input {
            fb.extend(std::slice::from_ref(b));
            while fb.next_frame().unwrap().is_some() {
                n += 1;
            }
        }
        assert_eq!(n, 3);
        assert!(!fb.has_partial_message());
    }

    #[test]
    fn rejects_garbage_between_messages() {
        for (input, byte) in [("x", b'x'), ("{} 1", b'1'), ("\"str\"", b'"'), ("}", b'}')] {
            assert_eq!(
                split_all(input.as_bytes(), FrameLimits::default()),
                Err(FramingError::UnexpectedByte { byte }),
                "input {input:?}"
            );
        }
    }

    #[test]
    fn enforces_depth_limit() {
        let limits = FrameLimits {
            max_depth: 3,
            ..FrameLimits::default()
        };
        assert!(split_all(b"[[[]]]", limits).is_ok());
        assert_eq!(
            split_all(b"[[[[]]]]", limits),
            Err(FramingError::TooDeep { limit: 3 })
        );
        // Brackets inside strings do not count.
        assert!(split_all(br#"[[["[[[["]]]"#, limits).is_ok());
        // A million opening brackets stop at the limit, not at the end of input.
        let deep = vec![b'['; 1_000_000];
        assert_eq!(
            split_all(&deep, FrameLimits::default()),
            Err(FramingError::TooDeep {
                limit: FrameLimits::DEFAULT_MAX_DEPTH
            })
        );
    }

    #[test]
    fn enforces_size_limit_before_message_ends() {
        let limits = FrameLimits {
            max_message_bytes: 16,
            ..FrameLimits::default()
        };
        assert!(split_all(br#"{"a":"0123456"}"#, limits).is_ok());
        let mut fb = FrameBuffer::new(limits);
        fb.extend(br#"{"a":"0123456789abc"#);
        assert_eq!(fb.next_frame(), Err(FramingError::TooLarge { limit: 16 }));
        // Leading whitespace counts too, so a peer cannot stream it forever.
        let mut fb = FrameBuffer::new(limits);
        fb.extend(&[b' '; 17]);
        assert_eq!(fb.next_frame(), Err(FramingError::TooLarge { limit: 16 }));
    }
}
