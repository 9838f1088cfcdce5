//! Shared by the Ryu conformance tests: where the fixtures are, how to read
//! them, and how to compare our decoding with Ryu's.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_json::Value;

/// The fixture directory, or `None` (with a note) on a clone without `shared/`.
pub fn fixtures() -> Option<PathBuf> {
    let dir = std::env::var_os("AUGUR_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
        .join("fixtures/openflow/ryu");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "skipping: Ryu fixtures not found at {} (set AUGUR_SHARED to the shared/ directory)",
            dir.display()
        );
        None
    }
}

/// `(name, bytes, Ryu's JSON)` for every `.packet` fixture of OF1.3 and OF1.4.
pub fn packets(dir: &Path) -> Vec<(String, Vec<u8>, Option<Value>)> {
    let mut out = Vec::new();
    for version in ["of13", "of14"] {
        let mut entries: Vec<_> = std::fs::read_dir(dir.join(version).join("packets"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "packet"))
            .collect();
        entries.sort();
        for path in entries {
            let name = format!("{version}/{}", path.file_name().unwrap().to_string_lossy());
            let bytes = std::fs::read(&path).unwrap();
            let json_path = dir.join(version).join("json").join(format!(
                "{}.json",
                path.file_name().unwrap().to_string_lossy()
            ));
            let json = std::fs::read(&json_path)
                .ok()
                .map(|b| serde_json::from_slice(&b).unwrap());
            out.push((name, bytes, json));
        }
    }
    out
}

/// The first difference between our JSON and Ryu's, as a path and both
/// sides: every key of Ryu's must be equal in ours, and ours must have no
/// other key.
pub fn first_difference(path: &str, ours: &Value, theirs: &Value) -> Option<String> {
    match (ours, theirs) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, vb) in b {
                let sub = format!("{path}.{k}");
                match a.get(k) {
                    None => return Some(format!("{sub}: missing in ours (Ryu: {vb})")),
                    Some(va) => {
                        if let Some(d) = first_difference(&sub, va, vb) {
                            return Some(d);
                        }
                    }
                }
            }
            a.keys()
                .find(|k| !b.contains_key(*k))
                .map(|k| format!("{path}.{k}: not in Ryu's decoding"))
        }
        (Value::Array(a), Value::Array(b)) => {
            if a.len() != b.len() {
                return Some(format!("{path}: {} elements, Ryu has {}", a.len(), b.len()));
            }
            a.iter()
                .zip(b)
                .enumerate()
                .find_map(|(n, (x, y))| first_difference(&format!("{path}[{n}]"), x, y))
        }
        (Value::Number(a), Value::Number(b)) if a.as_f64() == b.as_f64() => None,
        (a, b) if a == b => None,
        (a, b) => Some(format!("{path}: ours {a}, Ryu {b}")),
    }
}
