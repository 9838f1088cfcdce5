//! Can jsonrpsee talk to `ovsdb-server` as it is? Run with
//! `cargo run -p augur-ovsdb --example jsonrpsee_probe --features jsonrpsee-probe [tcp:HOST:PORT]`.
//! Without a target it starts its own `ovsdb-server` in a temporary directory.
//!
//! It checks the four things the OVS dialect of JSON-RPC needs: replies
//! without a `jsonrpc` member, `"error": null` beside `result`, notifications
//! with `"id": null`, and requests from the server (`echo`) that the client
//! must answer. The outcome is recorded in the crate README.

use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use augur_ovsdb::framing::{FrameBuffer, FrameLimits};
use jsonrpsee::core::client::{
    ClientBuilder, ClientT, ReceivedMessage, TransportReceiverT, TransportSenderT,
};
use jsonrpsee::rpc_params;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

type Log = Arc<Mutex<Vec<String>>>;

fn log(log: &Log, line: String) {
    if let Ok(mut l) = log.lock() {
        l.push(line);
    }
}

struct Sender {
    half: OwnedWriteHalf,
    log: Log,
}

impl TransportSenderT for Sender {
    type Error = std::io::Error;

    async fn send(&mut self, msg: String) -> Result<(), Self::Error> {
        log(&self.log, format!("jsonrpsee sent:     {msg}"));
        self.half.write_all(msg.as_bytes()).await
    }
}

struct Receiver {
    half: OwnedReadHalf,
    frames: FrameBuffer,
    log: Log,
}

impl TransportReceiverT for Receiver {
    type Error = std::io::Error;

    async fn receive(&mut self) -> Result<ReceivedMessage, Self::Error> {
        let mut buf = [0u8; 65536];
        loop {
            if let Some(frame) = self.frames.next_frame().map_err(std::io::Error::other)? {
                let text = String::from_utf8_lossy(frame).trim().to_owned();
                log(&self.log, format!("server sent:        {text}"));
                return Ok(ReceivedMessage::Text(text));
            }
            let n = self.half.read(&mut buf).await?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "server closed",
                ));
            }
            self.frames.extend(buf.get(..n).unwrap_or_default());
        }
    }
}

/// A private ovsdb-server, killed on drop.
struct OwnServer {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server() -> Result<(OwnServer, String), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("conf.db");
    let schema = std::env::var("OVS_SCHEMA")
        .unwrap_or_else(|_| "/usr/share/openvswitch/vswitch.ovsschema".into());
    let ok = Command::new("ovsdb-tool")
        .arg("create")
        .arg(&db)
        .arg(&schema)
        .status()?
        .success();
    if !ok {
        return Err("ovsdb-tool create failed".into());
    }
    let port = StdListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = Command::new("ovsdb-server")
        .arg(&db)
        .arg(format!("--remote=ptcp:{port}:127.0.0.1"))
        .arg(format!("--unixctl={}", dir.path().join("ctl").display()))
        .arg("--no-chdir")
        .arg("-vconsole:off")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err("ovsdb-server did not start".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((OwnServer { child, _dir: dir }, format!("127.0.0.1:{port}")))
}

async fn raw_exchange(addr: &str) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    // What ovsdb-server itself sends: a reply, an error reply, and, after
    // five idle seconds, its own echo request.
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(br#"{"method":"list_dbs","params":[],"id":0}{"method":"get_schema","params":["Nope"],"id":1}"#)
        .await?;
    let mut frames = FrameBuffer::new(FrameLimits::default());
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(12);
    while out.len() < 3 {
        let n = tokio::time::timeout_at(deadline, s.read(&mut buf)).await??;
        if n == 0 {
            break;
        }
        frames.extend(buf.get(..n).unwrap_or_default());
        while let Some(f) = frames.next_frame()? {
            out.push(String::from_utf8_lossy(f).trim().to_owned());
        }
    }
    Ok(out)
}

fn try_parse(label: &str, text: &str) {
    use jsonrpsee::types::{Notification, Request, Response};
    let as_response = serde_json::from_str::<Response<serde_json::Value>>(text)
        .map(|r| format!("{:?}", r.payload));
    let as_request = serde_json::from_str::<Request>(text).map(|r| r.method.to_string());
    let as_notification =
        serde_json::from_str::<Notification<serde_json::Value>>(text).map(|n| n.method.to_string());
    println!("{label}: {text}");
    println!("  as jsonrpsee Response:     {as_response:?}");
    println!("  as jsonrpsee Request:      {as_request:?}");
    println!("  as jsonrpsee Notification: {as_notification:?}");
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (_server, addr) = match std::env::args().nth(1) {
        Some(t) => (None, t.trim_start_matches("tcp:").to_owned()),
        None => {
            let (s, a) = start_server()?;
            (Some(s), a)
        }
    };
    println!("== 1. What ovsdb-server sends ({addr})");
    let raw = raw_exchange(&addr).await?;
    for (label, text) in ["reply", "error reply", "server request"].iter().zip(&raw) {
        try_parse(label, text);
    }
    try_parse(
        "notification (format from ovsdb/jsonrpc-server.c)",
        r#"{"id":null,"method":"update2","params":[0,{}]}"#,
    );

    println!("\n== 2. A jsonrpsee client calling list_dbs on ovsdb-server");
    let log_lines: Log = Arc::new(Mutex::new(Vec::new()));
    let stream = TcpStream::connect(&addr).await?;
    let (r, w) = stream.into_split();
    let client = ClientBuilder::default()
        .request_timeout(Duration::from_secs(3))
        .build_with_tokio(
            Sender {
                half: w,
                log: log_lines.clone(),
            },
            Receiver {
                half: r,
                frames: FrameBuffer::new(FrameLimits::default()),
                log: log_lines.clone(),
            },
        );
    let result: Result<Vec<String>, _> = client.request("list_dbs", rpc_params![]).await;
    for line in log_lines.lock().map(|l| l.clone()).unwrap_or_default() {
        println!("  {line}");
    }
    println!("  outcome: {result:?}");
    Ok(())
}
