//! `augur ofp decode`, run as a program: on the Ryu fixtures (skipped when
//! `shared/` is absent) and on hand-made bad input.

// Helpers outside #[test] functions panic on failure too, as tests should.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

/// What one run of the binary produced.
struct Run {
    success: bool,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn augur(args: &[&str], stdin: &[u8]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_augur"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drop stdin after writing so that reading it ends.
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    Run {
        success: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn decode_hex(args: &[&str]) -> Run {
    let mut all = vec!["ofp", "decode"];
    all.extend_from_slice(args);
    augur(&all, b"")
}

fn decode_file(path: &std::path::Path, json: bool) -> Run {
    let path = path.to_str().unwrap();
    let mut args = vec!["ofp", "decode", "--file", path];
    if json {
        args.push("--json");
    }
    augur(&args, b"")
}

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Asserts a failed run with exactly one line on stderr naming `offset`.
fn assert_fails_at(run: &Run, offset: usize) {
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "stderr: {:?}", run.stderr);
    assert!(
        run.stderr.contains(&format!("at offset {offset} ")),
        "expected offset {offset} in {:?}",
        run.stderr
    );
}

const BARRIER_REQUEST: &str = "04 14 00 08 00 00 00 07";
const ECHO_REQUEST: &str = "05:02:00:0b:00:00:00:08:61:62:63";

#[test]
fn hex_messages_print_one_per_line() {
    let run = decode_hex(&[BARRIER_REQUEST, ECHO_REQUEST]);
    assert!(run.success, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "BARRIER_REQUEST (OF1.3) (xid=0x7):\nECHO_REQUEST (OF1.4) (xid=0x8): 3 bytes of payload\n"
    );
    assert_eq!(run.stderr, "");
}

#[test]
fn json_lines_carry_offsets_and_messages() {
    let run = decode_hex(&["--json", BARRIER_REQUEST, ECHO_REQUEST]);
    assert!(run.success, "{}", run.stderr);
    let lines = json_lines(&run.stdout);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["offset"], 0);
    assert_eq!(lines[0]["message"]["version"], 4);
    assert_eq!(lines[0]["message"]["xid"], 7);
    assert_eq!(lines[0]["message"]["body"]["type"], "BARRIER_REQUEST");
    assert_eq!(lines[1]["offset"], 8);
    assert_eq!(lines[1]["message"]["body"]["type"], "ECHO_REQUEST");
    assert_eq!(lines[1]["message"]["body"]["body"], "616263");
}

#[test]
fn malformed_input_prints_what_decoded_then_one_located_error() {
    // (input, offset of the fault, messages decoded before it)
    let table: &[(&str, usize, usize)] = &[
        // Cut inside the second message's header.
        ("04140008 00000007 0402", 10, 1),
        // Second message claims 16 bytes, 12 are there.
        ("04140008 00000007 04020010 00000001 aabbccdd", 20, 1),
        // A length below the header size, reported at the length field.
        ("04140008 00000007 04020004 00000001", 10, 1),
        // A body where there must be none (BARRIER_REQUEST with one byte).
        ("04140009 00000007 00", 8, 0),
        // A version this codec does not decode, after two good messages.
        (
            "04140008 00000007 04140008 00000008 01140008 00000009",
            16,
            2,
        ),
        // Only part of a header.
        ("0414", 2, 0),
    ];
    for &(hex, offset, decoded) in table {
        let run = decode_hex(&[hex]);
        assert_eq!(run.stdout.lines().count(), decoded, "{hex}: {}", run.stdout);
        if hex.starts_with("04140009") {
            // The codec may place a body error anywhere inside the body.
            assert_eq!(run.code, Some(1), "{hex}");
            assert_eq!(run.stderr.lines().count(), 1, "{hex}: {}", run.stderr);
            assert!(run.stderr.contains("at offset "), "{}", run.stderr);
            assert!(run.stderr.contains("message 1, which starts at offset 0"));
        } else {
            assert_fails_at(&run, offset);
        }
    }
}

#[test]
fn json_output_also_stops_at_the_fault() {
    let run = decode_hex(&["--json", BARRIER_REQUEST, "04"]);
    assert_eq!(json_lines(&run.stdout).len(), 1);
    assert_fails_at(&run, 9);
}

#[test]
fn bad_hex_is_rejected_with_its_place() {
    let run = decode_hex(&["0414", "00zz"]);
    assert_eq!(run.code, Some(1));
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr.contains("argument 2, character 3"),
        "{}",
        run.stderr
    );
    let run = decode_hex(&["041"]);
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("odd number of digits"),
        "{}",
        run.stderr
    );
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(decode_hex(&[]).code, Some(2));
    assert_eq!(decode_hex(&["--file", "x", "0414"]).code, Some(2));
}

#[test]
fn empty_and_missing_files_are_errors() {
    let dir = std::env::temp_dir().join(format!("augur-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty.bin");
    std::fs::write(&empty, b"").unwrap();
    let run = decode_file(&empty, false);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("no bytes"), "{}", run.stderr);

    let run = decode_file(&dir.join("absent.bin"), false);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("cannot read"), "{}", run.stderr);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn standard_input_is_read_with_file_dash() {
    let run = augur(
        &["ofp", "decode", "--file", "-"],
        &[4, 20, 0, 8, 0, 0, 0, 7],
    );
    assert!(run.success, "{}", run.stderr);
    assert_eq!(run.stdout, "BARRIER_REQUEST (OF1.3) (xid=0x7):\n");
}

#[test]
fn every_ryu_fixture_decodes_from_file_and_from_hex() {
    let Some(shared) = support::shared_dir() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("augur-fixtures-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for version in ["of13", "of14"] {
        let packets = support::ryu_packets(&shared, version);
        assert!(!packets.is_empty(), "no {version} fixtures");
        let mut capture = Vec::new();
        let mut offsets = Vec::new();
        for (name, bytes) in &packets {
            offsets.push(capture.len());
            capture.extend_from_slice(bytes);

            // Text from hex (with separators) equals text from the bytes.
            let spaced: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
            let from_hex = decode_hex(&[&spaced.join(":")]);
            assert!(from_hex.success, "{name}: {}", from_hex.stderr);
            let file = dir.join("one.bin");
            std::fs::write(&file, bytes).unwrap();
            let from_file = decode_file(&file, false);
            assert!(from_file.success, "{name}: {}", from_file.stderr);
            assert_eq!(from_hex.stdout, from_file.stdout, "{name}");
            assert!(!from_file.stdout.is_empty(), "{name}");
        }

        // All of them as one capture: one JSON line per message, in order.
        let file = dir.join("capture.bin");
        std::fs::write(&file, &capture).unwrap();
        let run = decode_file(&file, true);
        assert!(run.success, "{version} capture: {}", run.stderr);
        let lines = json_lines(&run.stdout);
        assert_eq!(lines.len(), packets.len());
        for ((line, offset), (name, bytes)) in lines.iter().zip(&offsets).zip(&packets) {
            assert_eq!(line["offset"], *offset, "{name}");
            assert_eq!(line["message"]["version"], bytes[0], "{name}");
        }

        // Cut the capture inside its last message: everything before it still
        // prints, and the error names the end of the input.
        let cut = capture.len() - 1;
        std::fs::write(&file, &capture[..cut]).unwrap();
        let run = decode_file(&file, true);
        assert_eq!(json_lines(&run.stdout).len(), packets.len() - 1);
        assert_fails_at(&run, cut);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
