//! A fake server that misbehaves: every kind of bad input must end that
//! connection with an error (failing the pending request) and never panic;
//! the client then reconnects and works with a well-behaved peer.
// Test helpers outside #[test] functions unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use augur_ovsdb::client::{Client, ClientConfig, Error};
use augur_ovsdb::framing::{FrameBuffer, FrameLimits};
use augur_ovsdb::jsonrpc::Message;
use augur_ovsdb::session::RequestError;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Reads one request, returns its id.
async fn read_request(stream: &mut TcpStream, frames: &mut FrameBuffer) -> Option<(String, Value)> {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(frame) = frames.next_frame().unwrap() {
            if let Message::Request { method, id, .. } = Message::decode(frame).unwrap() {
                return Some((method, id));
            }
            continue;
        }
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        frames.extend(&buf[..n]);
    }
}

/// Serves the first connection with `bad` (where `ID` stands for the
/// request id) and later ones correctly.
async fn fake_server(bad: Vec<u8>) -> u16 {
    fake_server_closing(bad, false).await
}

/// As [`fake_server`]; with `close`, the bad connection is closed right
/// after the bad bytes.
async fn fake_server_closing(bad: Vec<u8>, close: bool) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut first = true;
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let bad = bad.clone();
            let misbehave = std::mem::replace(&mut first, false);
            tokio::spawn(async move {
                let mut frames = FrameBuffer::new(FrameLimits::default());
                while let Some((method, id)) = read_request(&mut stream, &mut frames).await {
                    let reply = if misbehave {
                        let text = String::from_utf8_lossy(&bad).replace("ID", &id.to_string());
                        let mut bytes = text.into_bytes();
                        if bad.contains(&0xff) {
                            bytes = bad.clone();
                        }
                        bytes
                    } else {
                        let result = match method.as_str() {
                            "list_dbs" => json!(["Good"]),
                            _ => json!({}),
                        };
                        json!({"id": id, "result": result, "error": null})
                            .to_string()
                            .into_bytes()
                    };
                    if stream.write_all(&reply).await.is_err() || (misbehave && close) {
                        return;
                    }
                }
            });
        }
    });
    port
}

async fn check_bad_input(bad: Vec<u8>, limits: FrameLimits) -> RequestError {
    let port = fake_server(bad).await;
    let mut config = ClientConfig::new(&format!("tcp:127.0.0.1:{port}")).unwrap();
    config.min_backoff = Duration::from_millis(20);
    config.session.limits = limits;
    let client = Client::connect_with(config).await.unwrap();
    let err = match tokio::time::timeout(Duration::from_secs(10), client.list_dbs())
        .await
        .unwrap()
    {
        Err(Error::Request(e)) => e,
        other => panic!("bad input accepted: {other:?}"),
    };
    // The client reconnects and the well-behaved second connection works.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match client.list_dbs().await {
            Ok(dbs) => {
                assert_eq!(dbs, ["Good"]);
                break;
            }
            Err(_) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "client never recovered"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    assert_eq!(client.stats().await.unwrap().connections, 2);
    err
}

#[tokio::test]
async fn garbage_ends_the_connection() {
    let e = check_bad_input(
        b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec(),
        FrameLimits::default(),
    )
    .await;
    assert_eq!(e, RequestError::Disconnected);
}

#[tokio::test]
async fn invalid_json_inside_an_object_ends_the_connection() {
    let e = check_bad_input(
        br#"{"id":ID,"result":[tru],"error":null}"#.to_vec(),
        FrameLimits::default(),
    )
    .await;
    assert_eq!(e, RequestError::Disconnected);
}

#[tokio::test]
async fn invalid_utf8_ends_the_connection() {
    let e = check_bad_input(
        b"{\"id\":0,\"result\":[\"\xff\xfe\"],\"error\":null}".to_vec(),
        FrameLimits::default(),
    )
    .await;
    assert_eq!(e, RequestError::Disconnected);
}

#[tokio::test]
async fn truncated_message_then_close_ends_the_connection() {
    let port = fake_server_closing(br#"{"id":ID,"result":["a"#.to_vec(), true).await;
    let mut config = ClientConfig::new(&format!("tcp:127.0.0.1:{port}")).unwrap();
    config.min_backoff = Duration::from_millis(20);
    let client = Client::connect_with(config).await.unwrap();
    let r = client.list_dbs().await;
    assert!(
        matches!(r, Err(Error::Request(RequestError::Disconnected))),
        "{r:?}"
    );
}

#[tokio::test]
async fn truncated_message_then_silence_is_found_by_the_probe() {
    let port = fake_server(br#"{"id":ID,"result":["a"#.to_vec()).await;
    let mut config = ClientConfig::new(&format!("tcp:127.0.0.1:{port}")).unwrap();
    config.min_backoff = Duration::from_millis(20);
    config.session.probe_interval = Some(Duration::from_millis(100));
    let client = Client::connect_with(config).await.unwrap();
    let r = tokio::time::timeout(Duration::from_secs(10), client.list_dbs())
        .await
        .unwrap();
    assert!(
        matches!(r, Err(Error::Request(RequestError::Disconnected))),
        "{r:?}"
    );
}

#[tokio::test]
async fn enormous_message_ends_the_connection() {
    let limits = FrameLimits {
        max_message_bytes: 1 << 20,
        ..FrameLimits::default()
    };
    let mut big = br#"{"id":ID,"result":[""#.to_vec();
    big.extend(std::iter::repeat_n(b'x', 2 << 20));
    big.extend(br#""],"error":null}"#);
    let e = check_bad_input(big, limits).await;
    assert_eq!(e, RequestError::Disconnected);
}

#[tokio::test]
async fn deep_nesting_ends_the_connection() {
    let mut deep = br#"{"id":ID,"result":"#.to_vec();
    deep.extend(std::iter::repeat_n(b'[', 100_000));
    let e = check_bad_input(deep, FrameLimits::default()).await;
    assert_eq!(e, RequestError::Disconnected);
}

#[tokio::test]
async fn wrong_types_end_the_connection() {
    let e = check_bad_input(
        br#"{"id":ID,"result":{"not":"a list"},"error":null}"#.to_vec(),
        FrameLimits::default(),
    )
    .await;
    assert!(matches!(e, RequestError::Decode(_)), "{e:?}");
    let e = check_bad_input(
        br#"{"id":ID,"result":[1,2],"error":null}"#.to_vec(),
        FrameLimits::default(),
    )
    .await;
    assert!(matches!(e, RequestError::Decode(_)), "{e:?}");
}

#[tokio::test]
async fn jsonrpc_violations_end_the_connection() {
    for bad in [
        &br#"{"jsonrpc":"2.0","id":ID,"result":["x"]}"#[..],
        br#"{"id":ID,"result":["x"],"error":"also"}"#,
        br#"["not", "an", "object"]"#,
        br#"{"method":"update","params":"nope"}"#,
    ] {
        let e = check_bad_input(bad.to_vec(), FrameLimits::default()).await;
        assert_eq!(
            e,
            RequestError::Disconnected,
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}
