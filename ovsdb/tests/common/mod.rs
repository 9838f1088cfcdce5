//! A private `ovsdb-server` for tests: its own temporary directory, database
//! files, Unix socket and loopback TCP port, killed on drop.

// Test support code: a failure to set up the server should fail the test
// loudly, which is what unwrap does.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The test schema for the generic operations.
pub const TEST_SCHEMA: &str = r#"{
  "name": "Test",
  "version": "1.0.0",
  "tables": {
    "Item": {
      "columns": {
        "name": {"type": "string"},
        "count": {"type": {"key": {"type": "integer", "minInteger": 0, "maxInteger": 1000}}},
        "score": {"type": "real"},
        "flag": {"type": "boolean"},
        "tags": {"type": {"key": "string", "min": 0, "max": "unlimited"}},
        "attrs": {"type": {"key": "string", "value": "string", "min": 0, "max": "unlimited"}},
        "color": {"type": {"key": {"type": "string", "enum": ["set", ["red", "green", "blue"]]}, "min": 0, "max": 1}},
        "parent": {"type": {"key": {"type": "uuid", "refTable": "Item"}, "min": 0, "max": 1}},
        "fixed": {"type": "string", "mutable": false}
      },
      "indexes": [["name"]],
      "isRoot": true
    },
    "Limited": {
      "columns": {"n": {"type": "integer"}},
      "maxRows": 2,
      "isRoot": true
    }
  }
}"#;

fn find_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([
            PathBuf::from("/usr/sbin"),
            PathBuf::from("/usr/bin"),
            PathBuf::from("/usr/local/sbin"),
        ])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Whether a missing OVS must fail the test instead of skipping it.
fn required() -> bool {
    std::env::var("AUGUR_REQUIRE_OVS").is_ok_and(|v| v == "1")
}

/// Skips (returns `None`) or fails when a prerequisite is missing.
pub fn skip<T>(what: &str) -> Option<T> {
    if required() {
        panic!("{what} missing and AUGUR_REQUIRE_OVS=1");
    }
    eprintln!("note: {what} not available; skipping");
    None
}

/// The installed `vswitch.ovsschema`.
pub fn vswitch_schema() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("OVS_SCHEMA").map(PathBuf::from),
        Some(PathBuf::from("/usr/share/openvswitch/vswitch.ovsschema")),
        Some(PathBuf::from(
            "/usr/local/share/openvswitch/vswitch.ovsschema",
        )),
    ];
    candidates.into_iter().flatten().find(|p| p.is_file())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `ovsdb-server` with the vswitch database and the test database.
pub struct Server {
    pub dir: tempfile::TempDir,
    pub sock: PathBuf,
    pub tcp_port: u16,
    pub ssl_port: Option<u16>,
    pub dbs: Vec<PathBuf>,
    child: Option<Child>,
    server_bin: PathBuf,
    tool_bin: PathBuf,
    ssl: Option<Pki>,
}

/// Keys and certificates made with `ovs-pki`.
#[derive(Clone)]
pub struct Pki {
    pub server_key: PathBuf,
    pub server_cert: PathBuf,
    pub client_key: PathBuf,
    pub client_cert: PathBuf,
    /// The CA that signed the server certificate (the client trusts it).
    pub switch_ca: PathBuf,
    /// The CA that signed the client certificate (the server trusts it).
    pub controller_ca: PathBuf,
}

impl Server {
    /// Starts a server, or returns `None` (after a note) when OVS is absent.
    pub fn start() -> Option<Self> {
        Self::start_with(false)
    }

    /// Also listens on `pssl:` with certificates made by `ovs-pki`.
    pub fn start_with_ssl() -> Option<Self> {
        Self::start_with(true)
    }

    fn start_with(ssl: bool) -> Option<Self> {
        let (Some(server_bin), Some(tool_bin)) =
            (find_binary("ovsdb-server"), find_binary("ovsdb-tool"))
        else {
            return skip("ovsdb-server/ovsdb-tool");
        };
        let Some(vswitch) = vswitch_schema() else {
            return skip("vswitch.ovsschema");
        };
        let dir = tempfile::Builder::new()
            .prefix("augur-ovsdb-")
            .tempdir()
            .unwrap();
        let test_schema = dir.path().join("test.ovsschema");
        std::fs::write(&test_schema, TEST_SCHEMA).unwrap();
        let mut dbs = Vec::new();
        for (name, schema) in [
            ("conf.db", vswitch.as_path()),
            ("test.db", test_schema.as_path()),
        ] {
            let db = dir.path().join(name);
            let status = Command::new(&tool_bin)
                .arg("create")
                .arg(&db)
                .arg(schema)
                .status()
                .unwrap();
            assert!(status.success(), "ovsdb-tool create failed");
            dbs.push(db);
        }
        let pki = if ssl {
            match make_pki(dir.path()) {
                Some(p) => Some(p),
                None => return skip("ovs-pki"),
            }
        } else {
            None
        };
        let mut server = Server {
            sock: dir.path().join("db.sock"),
            tcp_port: free_port(),
            ssl_port: pki.as_ref().map(|_| free_port()),
            dir,
            dbs,
            child: None,
            server_bin,
            tool_bin,
            ssl: pki,
        };
        server.spawn();
        Some(server)
    }

    pub fn pki(&self) -> Option<&Pki> {
        self.ssl.as_ref()
    }

    pub fn unix_target(&self) -> String {
        format!("unix:{}", self.sock.display())
    }

    pub fn tcp_target(&self) -> String {
        format!("tcp:127.0.0.1:{}", self.tcp_port)
    }

    pub fn ssl_target(&self) -> Option<String> {
        self.ssl_port.map(|p| format!("ssl:127.0.0.1:{p}"))
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(&self.server_bin);
        cmd.args(&self.dbs)
            .arg(format!("--remote=punix:{}", self.sock.display()))
            .arg(format!("--remote=ptcp:{}:127.0.0.1", self.tcp_port))
            .arg(format!(
                "--unixctl={}",
                self.dir.path().join("ctl").display()
            ))
            .arg(format!(
                "--log-file={}",
                self.dir.path().join("ovsdb-server.log").display()
            ))
            .arg("--no-chdir")
            .arg("-vconsole:off")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let (Some(pki), Some(port)) = (&self.ssl, self.ssl_port) {
            cmd.arg(format!("--remote=pssl:{port}:127.0.0.1"))
                .arg(format!("--private-key={}", pki.server_key.display()))
                .arg(format!("--certificate={}", pki.server_cert.display()))
                .arg(format!("--ca-cert={}", pki.controller_ca.display()));
        }
        self.child = Some(cmd.spawn().expect("start ovsdb-server"));
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let unix_ok = std::os::unix::net::UnixStream::connect(&self.sock).is_ok();
            let tcp_ok = std::net::TcpStream::connect(("127.0.0.1", self.tcp_port)).is_ok();
            if unix_ok && tcp_ok {
                return;
            }
            assert!(Instant::now() < deadline, "ovsdb-server did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server abruptly (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same files, socket and ports.
    pub fn restart(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.sock);
        self.spawn();
    }

    /// Runs a transaction directly on a database file (server stopped).
    pub fn offline_transact(&self, db: &Path, ops: &serde_json::Value) -> serde_json::Value {
        assert!(
            self.child.is_none(),
            "offline_transact needs the server stopped"
        );
        let out = Command::new(&self.tool_bin)
            .arg("transact")
            .arg(db)
            .arg(ops.to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ovsdb-tool transact: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn make_pki(dir: &Path) -> Option<Pki> {
    let ovs_pki = find_binary("ovs-pki")?;
    let pki_dir = dir.join("pki");
    let log = dir.join("pki.log");
    let run = |args: &[&str]| {
        Command::new(&ovs_pki)
            .arg(format!("--dir={}", pki_dir.display()))
            .arg(format!("--log={}", log.display()))
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !(run(&["init"])
        && run(&["req+sign", "server", "switch"])
        && run(&["req+sign", "client", "controller"]))
    {
        return None;
    }
    Some(Pki {
        server_key: dir.join("server-privkey.pem"),
        server_cert: dir.join("server-cert.pem"),
        client_key: dir.join("client-privkey.pem"),
        client_cert: dir.join("client-cert.pem"),
        switch_ca: pki_dir.join("switchca/cacert.pem"),
        controller_ca: pki_dir.join("controllerca/cacert.pem"),
    })
}
