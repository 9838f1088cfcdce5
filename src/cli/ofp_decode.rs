//! `augur ofp decode`: decodes binary OpenFlow messages, given as hex on the
//! command line or as a binary file (a capture of a connection, concatenated
//! messages), and prints each one.
//!
//! The output is for people (the messages' `Display`, in the style of
//! `ovs-ofctl ofp-print`) or for programs (`--json`, one object per line).
//! Malformed input is reported, with the absolute offset of the fault, after
//! everything before it has been printed.

use std::fmt;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use augur_openflow::{DecodeError, Deframer, Message};
use clap::ArgGroup;
use serde::Serialize;

/// Arguments of `augur ofp decode`.
#[derive(Debug, clap::Args)]
#[command(group(ArgGroup::new("input").required(true).args(["hex", "file"])))]
pub struct DecodeArgs {
    /// One or more OpenFlow messages in hex, read as one text: spaces,
    /// newlines and colons between digits are ignored.
    #[arg(value_name = "HEX")]
    pub hex: Vec<String>,
    /// Read the messages, in binary, from FILE ("-" for standard input).
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Print one JSON object per line: {"offset": N, "message": {...}}.
    #[arg(long)]
    pub json: bool,
}

/// Runs `augur ofp decode`.
pub fn run(args: &DecodeArgs) -> anyhow::Result<()> {
    let input = match &args.file {
        Some(path) => read_file(path)?,
        None => parse_hex(&args.hex)?,
    };
    if input.is_empty() {
        bail!("no bytes to decode");
    }
    let mut out = BufWriter::new(io::stdout().lock());
    let mut failure = None;
    for item in messages(&input) {
        match item {
            Ok((offset, message)) => print_message(&mut out, offset, &message, args.json)?,
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    // Everything that decoded is on stdout before the error reaches stderr.
    out.flush()?;
    match failure {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

fn read_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut buf = Vec::new();
        io::stdin()
            .lock()
            .read_to_end(&mut buf)
            .context("cannot read standard input")?;
        Ok(buf)
    } else {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    }
}

/// One line of `--json` output.
#[derive(Serialize)]
struct JsonLine<'a> {
    offset: usize,
    message: &'a Message,
}

fn print_message(
    out: &mut impl Write,
    offset: usize,
    message: &Message,
    json: bool,
) -> io::Result<()> {
    if json {
        serde_json::to_writer(&mut *out, &JsonLine { offset, message }).map_err(io::Error::from)?;
        out.write_all(b"\n")
    } else {
        writeln!(out, "{message}")
    }
}

/// Why decoding a sequence of messages stopped, located in the whole input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamError {
    /// Which message (counting from 1) was malformed.
    pub number: usize,
    /// Offset of that message's first byte in the input.
    pub start: usize,
    /// The fault, with its offset counted from the start of the input.
    pub error: DecodeError,
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "at offset {} (message {}, which starts at offset {}): {}",
            self.error.offset, self.number, self.start, self.error.kind
        )
    }
}

impl std::error::Error for StreamError {}

/// The messages of `input` with their offsets, up to and including the first
/// fault.
pub fn messages(input: &[u8]) -> impl Iterator<Item = Result<(usize, Message), StreamError>> + '_ {
    let mut next_start = 0usize;
    let mut failed = false;
    Deframer::default()
        .frames(input)
        .enumerate()
        .map_while(move |(index, frame)| {
            if failed {
                return None;
            }
            let number = index.saturating_add(1);
            let result = match frame {
                Ok((start, bytes)) => {
                    next_start = start.saturating_add(bytes.len());
                    Message::decode(bytes)
                        .map(|message| (start, message))
                        .map_err(|e| StreamError {
                            number,
                            start,
                            error: DecodeError {
                                offset: start.saturating_add(e.offset),
                                kind: e.kind,
                            },
                        })
                }
                // The deframer's offsets are already absolute.
                Err(error) => Err(StreamError {
                    number,
                    start: next_start,
                    error,
                }),
            };
            failed = result.is_err();
            Some(result)
        })
}

/// Hex input that is not an even number of hex digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HexError {
    /// A character that is neither a hex digit nor an allowed separator.
    BadCharacter {
        /// The offending character.
        found: char,
        /// Which argument (from 1).
        argument: usize,
        /// Its position in the argument, in characters (from 1).
        position: usize,
    },
    /// The digits do not pair up into bytes.
    OddDigitCount(usize),
}

impl fmt::Display for HexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HexError::BadCharacter {
                found,
                argument,
                position,
            } => write!(
                f,
                "{found:?} (argument {argument}, character {position}) is not a hex digit"
            ),
            HexError::OddDigitCount(n) => write!(
                f,
                "the hex input has an odd number of digits ({n}): its last byte is incomplete"
            ),
        }
    }
}

impl std::error::Error for HexError {}

/// Bytes from hex arguments, read as one text; whitespace and colons are
/// separators.
pub fn parse_hex(args: &[String]) -> Result<Vec<u8>, HexError> {
    let mut bytes = Vec::with_capacity(args.iter().map(|a| a.len() / 2).sum());
    let mut high: Option<u8> = None;
    let mut digits = 0usize;
    for (arg_index, arg) in args.iter().enumerate() {
        for (char_index, c) in arg.chars().enumerate() {
            if c.is_whitespace() || c == ':' {
                continue;
            }
            let Some(nibble) = c.to_digit(16).and_then(|d| u8::try_from(d).ok()) else {
                return Err(HexError::BadCharacter {
                    found: c,
                    argument: arg_index.saturating_add(1),
                    position: char_index.saturating_add(1),
                });
            };
            digits = digits.saturating_add(1);
            match high.take() {
                Some(h) => bytes.push(h << 4 | nibble),
                None => high = Some(nibble),
            }
        }
    }
    if high.is_some() {
        return Err(HexError::OddDigitCount(digits));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use augur_openflow::DecodeErrorKind;
    use proptest::prelude::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn hex_accepts_separators_and_splits_across_arguments() {
        let table: &[(&[&str], &[u8])] = &[
            (&["0400000800000001"], &[4, 0, 0, 8, 0, 0, 0, 1]),
            (&["04:00:00:08", "00 00 00 01"], &[4, 0, 0, 8, 0, 0, 0, 1]),
            (&["0A0b\n\tFf"], &[0x0a, 0x0b, 0xff]),
            (&["0", "4"], &[4]),
            (&[""], &[]),
            (&[], &[]),
        ];
        for (args, expected) in table {
            assert_eq!(parse_hex(&strings(args)).unwrap(), *expected, "{args:?}");
        }
    }

    #[test]
    fn hex_errors_name_the_place() {
        assert_eq!(
            parse_hex(&strings(&["0400", "00g8"])),
            Err(HexError::BadCharacter {
                found: 'g',
                argument: 2,
                position: 3
            })
        );
        assert_eq!(
            parse_hex(&strings(&["0x04"])),
            Err(HexError::BadCharacter {
                found: 'x',
                argument: 1,
                position: 2
            })
        );
        assert_eq!(
            parse_hex(&strings(&["040", "00"])),
            Err(HexError::OddDigitCount(5))
        );
        // A non-ASCII digit must not be mistaken for one (char::to_digit is ASCII-only).
        assert!(parse_hex(&strings(&["٤"])).is_err());
    }

    const BARRIER_REQUEST: [u8; 8] = [4, 20, 0, 8, 0, 0, 0, 7];

    #[test]
    fn messages_carry_their_offsets() {
        let mut input = BARRIER_REQUEST.to_vec();
        input.extend_from_slice(&[5, 2, 0, 10, 0, 0, 0, 8, 0xab, 0xcd]);
        let got: Vec<_> = messages(&input).map(|r| r.unwrap().0).collect();
        assert_eq!(got, [0, 8]);
    }

    #[test]
    fn errors_are_located_in_the_whole_input() {
        // Second message claims 12 bytes but only 10 are there.
        let mut input = BARRIER_REQUEST.to_vec();
        input.extend_from_slice(&[4, 2, 0, 12, 0, 0, 0, 8, 0xab, 0xcd]);
        let got: Vec<_> = messages(&input).collect();
        assert_eq!(got.len(), 2);
        assert!(got[0].is_ok());
        assert_eq!(
            got[1],
            Err(StreamError {
                number: 2,
                start: 8,
                error: DecodeError {
                    offset: 18,
                    kind: DecodeErrorKind::Truncated
                }
            })
        );

        // A length below the header size is located at the length field.
        let mut input = BARRIER_REQUEST.to_vec();
        input.extend_from_slice(&[4, 2, 0, 4, 0, 0, 0, 8]);
        let err = messages(&input).find_map(Result::err).unwrap();
        assert_eq!((err.number, err.start, err.error.offset), (2, 8, 10));

        // A body error inside a well-framed message: BARRIER_REQUEST has no body.
        let mut input = BARRIER_REQUEST.to_vec();
        input.extend_from_slice(&[4, 20, 0, 9, 0, 0, 0, 1, 0]);
        let err = messages(&input).find_map(Result::err).unwrap();
        assert_eq!((err.number, err.start), (2, 8));
        assert!(err.error.offset >= 16, "{err}");
        assert!(err.to_string().starts_with("at offset "), "{err}");
    }

    #[test]
    fn decoding_stops_at_the_first_fault() {
        // An unsupported version in a well-framed message, then a good one.
        let mut input = vec![1, 20, 0, 8, 0, 0, 0, 1];
        input.extend_from_slice(&BARRIER_REQUEST);
        let got: Vec<_> = messages(&input).collect();
        assert_eq!(got.len(), 1);
        assert!(got[0].is_err());
    }

    proptest! {
        #[test]
        fn hex_round_trips_whatever_the_separators(
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
            separators in proptest::collection::vec(prop::sample::select(vec!["", " ", ":", "\n"]), 64),
        ) {
            let text: String = bytes
                .iter()
                .zip(separators.iter().cycle())
                .map(|(b, sep)| format!("{b:02X}{sep}"))
                .collect();
            prop_assert_eq!(parse_hex(&[text]).unwrap(), bytes);
        }

        #[test]
        fn any_input_decodes_or_fails_inside_its_bounds(
            input in proptest::collection::vec(any::<u8>(), 0..256),
        ) {
            let mut end = 0;
            for item in messages(&input) {
                match item {
                    Ok((offset, _)) => {
                        prop_assert_eq!(offset, end);
                        end = input.len().min(end + usize::from(u16::from_be_bytes([input[offset + 2], input[offset + 3]])));
                    }
                    Err(e) => {
                        prop_assert_eq!(e.start, end);
                        prop_assert!(e.error.offset >= e.start && e.error.offset <= input.len(), "{}", e);
                    }
                }
            }
        }
    }
}
