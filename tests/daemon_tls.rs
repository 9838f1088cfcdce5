//! The `ssl` listener: certificates made by `ovs-pki` in a temporary
//! directory; a client without a certificate, or with one the switch CA did
//! not sign, is refused; a switch with the right one gets OpenFlow; and a
//! real Open vSwitch bridge connecting over `ssl:` is brought to the policy.
//!
//! Skips without `ovs-pki` (and the OVS part without OVS, or when the
//! switch's global SSL settings are already in use) unless
//! `AUGUR_REQUIRE_OVS=1`.

// Helpers outside #[test] functions panic on failure too, as tests should.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use augur::daemon::{self, Daemon};
use augur::policy::Cookie;
use rustls::ClientConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use support::example::{POLICY, inventory_on};
use support::ovs::{TestBridge, ovs_usable, skip_without_ovs, vsctl};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(60);

/// A PKI as `ovs-pki` makes it: two CAs, a controller and a switch
/// certificate, and a switch certificate from a stranger's PKI.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Option<Pki> {
        let dir = tempfile::tempdir().unwrap();
        for (pki, args) in [
            ("pki", &["init", "--force"][..]),
            ("pki", &["req+sign", "ctl", "controller"][..]),
            ("pki", &["req+sign", "sc", "switch"][..]),
            ("stranger", &["init", "--force"][..]),
            ("stranger", &["req+sign", "rogue", "switch"][..]),
        ] {
            let out = Command::new("ovs-pki")
                .arg(format!("--dir={}", dir.path().join(pki).display()))
                .args(args)
                .current_dir(dir.path())
                .output();
            match out {
                Ok(out) if out.status.success() => {}
                other => {
                    skip_without_ovs(&format!("`ovs-pki {}` failed: {other:?}", args.join(" ")));
                    return None;
                }
            }
        }
        Some(Pki { dir })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn certs(path: &Path) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(path)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// A TLS client trusting the controller CA, presenting `identity` (cert,
/// key) if given.
fn client(pki: &Pki, identity: Option<(&str, &str)>) -> tokio_rustls::TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for ca in certs(&pki.path("pki/controllerca/cacert.pem")) {
        roots.add(ca).unwrap();
    }
    // Like OVS: the daemon's certificate must chain to the controller CA;
    // its name is not checked (`ovs-pki` names are not DNS names).
    let verifier = Arc::new(augur_ovsdb::client::CaVerifier::new(
        roots,
        provider.clone(),
    ));
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                certs(&pki.path(cert)),
                PrivateKeyDer::from_pem_file(pki.path(key)).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// Connects over TLS and reads the first 8 bytes the daemon sends (the
/// OpenFlow HELLO header), or the error that ends the attempt.
async fn first_bytes(
    address: std::net::SocketAddr,
    connector: &tokio_rustls::TlsConnector,
) -> std::io::Result<[u8; 8]> {
    let tcp = TcpStream::connect(address).await?;
    let name = ServerName::try_from("augur").unwrap();
    let mut tls = connector.connect(name, tcp).await?;
    let mut header = [0u8; 8];
    tokio::time::timeout(Duration::from_secs(10), tls.read_exact(&mut header))
        .await
        .map_err(|_| std::io::Error::other("no answer"))??;
    Ok(header)
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

fn config(pki: &Pki, ssl_port: u16, inventory: &Path, policy: &Path) -> String {
    format!(
        r#"
policy = "{}"
inventory = {{ file = "{}" }}
reload_interval = "200ms"
[listen]
tcp = []
ssl = {{ address = "127.0.0.1:{ssl_port}", private_key = "{}", certificate = "{}", ca_cert = "{}" }}
[ovsdb]
target = ""
[metrics]
enabled = false
"#,
        policy.display(),
        inventory.display(),
        pki.path("ctl-privkey.pem").display(),
        pki.path("ctl-cert.pem").display(),
        pki.path("pki/switchca/cacert.pem").display(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_switches_with_a_certificate_of_the_switch_ca_get_in() {
    let Some(pki) = Pki::new() else {
        return;
    };
    let policy = pki.path("policy.toml");
    let inventory = pki.path("inventory.toml");
    write(&policy, POLICY);
    write(&inventory, "");
    let loaded =
        daemon::config::load_text(&config(&pki, 0, &inventory, &policy), None, Vec::new()).unwrap();
    let daemon = Daemon::start(loaded).await.unwrap();
    let address = daemon.ssl_address().unwrap();

    let hello = first_bytes(
        address,
        &client(&pki, Some(("sc-cert.pem", "sc-privkey.pem"))),
    )
    .await
    .expect("a switch with a certificate of the switch CA is accepted");
    assert_eq!(hello[0], 0x05, "OpenFlow 1.4 HELLO");
    assert_eq!(hello[1], 0, "HELLO");

    for (what, identity) in [
        ("no certificate", None),
        (
            "a certificate of another PKI",
            Some(("rogue-cert.pem", "rogue-privkey.pem")),
        ),
        (
            "the controller's own certificate (controller CA, not switch CA)",
            Some(("ctl-cert.pem", "ctl-privkey.pem")),
        ),
    ] {
        let result = first_bytes(address, &client(&pki, identity)).await;
        assert!(result.is_err(), "a client with {what} got {result:?}");
    }
    let text = daemon.metrics().encode();
    assert!(
        text.contains("augur_errors_total{type=\"tls_handshake\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("augur_switch_connections_total{transport=\"ssl\"} 1"),
        "{text}"
    );
    daemon.shutdown().await;
}

#[test]
fn unusable_tls_files_are_named_at_start() {
    let Some(pki) = Pki::new() else {
        return;
    };
    let policy = pki.path("policy.toml");
    let inventory = pki.path("inventory.toml");
    write(&policy, POLICY);
    write(&inventory, "");
    let text = config(&pki, 0, &inventory, &policy).replace("ctl-privkey.pem", "nope.pem");
    let path = pki.path("augur.toml");
    write(&path, &text);
    let loaded = daemon::load(Some(&path), Vec::new()).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let error = runtime
        .block_on(Daemon::start(loaded))
        .unwrap_err()
        .to_string();
    let expected = format!("{}:7:", path.display());
    assert!(error.starts_with(&expected), "{error}");
    assert!(error.contains("listen.ssl.private_key: "), "{error}");
    assert!(error.contains("nope.pem"), "{error}");
}

/// Clears OVS's global SSL settings when dropped.
struct SslSettings;

impl Drop for SslSettings {
    fn drop(&mut self) {
        let _ = Command::new("ovs-vsctl")
            .args(["--timeout=20", "del-ssl"])
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_vswitch_connects_over_ssl_and_gets_the_policy() {
    if let Err(why) = ovs_usable() {
        skip_without_ovs(&why);
        return;
    }
    let Some(pki) = Pki::new() else {
        return;
    };
    // OVS has one SSL configuration for all of its connections: borrow it
    // only when nobody uses it.
    if !vsctl(&["get-ssl"]).trim().is_empty() {
        eprintln!("skipping: Open vSwitch's SSL settings are in use (`ovs-vsctl get-ssl`)");
        return;
    }
    vsctl(&[
        "set-ssl",
        &pki.path("sc-privkey.pem").display().to_string(),
        &pki.path("sc-cert.pem").display().to_string(),
        &pki.path("pki/controllerca/cacert.pem")
            .display()
            .to_string(),
    ]);
    let _ssl = SslSettings;

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // TestBridge makes a tcp: controller; point it at the ssl listener.
    let bridge = TestBridge::new(port).unwrap();
    let controller = vsctl(&["get", "bridge", bridge.name(), "controller"])
        .trim()
        .trim_matches(|c| c == '[' || c == ']')
        .to_owned();
    vsctl(&[
        "set",
        "controller",
        &controller,
        &format!("target=\"ssl:127.0.0.1:{port}\""),
    ]);

    let inventory = inventory_on(Some(&bridge), None);
    let policy = pki.path("policy.toml");
    let inventory_file = pki.path("inventory.toml");
    write(&policy, POLICY);
    write(&inventory_file, &toml::to_string(&inventory).unwrap());
    let loaded = daemon::config::load_text(
        &config(&pki, port, &inventory_file, &policy),
        None,
        Vec::new(),
    )
    .unwrap();
    let daemon = Daemon::start(loaded).await.unwrap();
    let want = daemon
        .desired()
        .borrow()
        .clone()
        .unwrap()
        .compiled
        .bridge(bridge.name())
        .unwrap()
        .flows
        .len();
    let (cookie, mask) = Cookie::augur_filter();
    let filter = format!("cookie={cookie:#x}/{mask:#x}");
    let deadline = Instant::now() + WAIT;
    loop {
        let flows = bridge.dump_flows(&["--no-stats", &filter]);
        let count = flows.lines().filter(|l| l.contains("actions=")).count();
        if count == want {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{count} of {want} flows over ssl; controller status: {}",
            vsctl(&["get", "controller", &controller, "status"])
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let text = daemon.metrics().encode();
    assert!(
        text.contains("augur_switch_connections_total{transport=\"ssl\"}"),
        "{text}"
    );
    daemon.shutdown().await;
}
