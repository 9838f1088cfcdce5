//! Helpers shared by the integration tests of the `augur` package
//! (`mod support;` in each test file).

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

pub mod example;
pub mod observed;
pub mod ovs;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The project's `shared/` directory (fixtures and data sets), found at
/// `$AUGUR_SHARED` or beside the project root. `None`, with a note on stderr,
/// when it is absent (a clone without it): tests that need it skip.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("AUGUR_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "skipping: shared/ not found at {} (set AUGUR_SHARED to the shared/ directory)",
            dir.display()
        );
        None
    }
}

/// The `.packet` files of a Ryu fixture version directory (`of13`, `of14`),
/// sorted by name, as `(name, bytes)`; the name is `of13/4-10-ofp_hello.packet`.
pub fn ryu_packets(shared: &Path, version: &str) -> Vec<(String, Vec<u8>)> {
    let dir = shared
        .join("fixtures/openflow/ryu")
        .join(version)
        .join("packets");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "packet"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let name = format!("{version}/{}", path.file_name().unwrap().to_string_lossy());
            let bytes = std::fs::read(&path).unwrap();
            (name, bytes)
        })
        .collect()
}

/// Writes `text` to `path` whole (a temporary file renamed over it), so a
/// watcher never reads half a file.
pub fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Polls `check` every `every` until it succeeds, panicking with `what` and
/// its last complaint after `within`.
pub async fn eventually<T, F: FnMut() -> Result<T, String>>(
    what: &str,
    within: Duration,
    every: Duration,
    mut check: F,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        match check() {
            Ok(v) => return v,
            Err(why) if Instant::now() >= deadline => panic!("{what}: {why}"),
            Err(_) => tokio::time::sleep(every).await,
        }
    }
}
