//! Listeners for switch connections: plain TCP, and TLS that requires and
//! verifies the switch's certificate. Every accepted connection runs in a
//! task of its own.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;

use super::bridge::{Context, Transport, serve};
use super::config::{ConfigError, Loaded, SslConfig};

/// Builds the TLS acceptor of an `ssl` listener: the controller's key and
/// certificate, and the CA the switches' certificates must chain to.
pub fn tls_acceptor(ssl: &SslConfig, loaded: &Loaded) -> Result<TlsAcceptor, ConfigError> {
    let setting = |name: &str| format!("listen.ssl.{name}");
    let certs =
        read_certs(&ssl.certificate).map_err(|e| loaded.error(&setting("certificate"), e))?;
    let key = PrivateKeyDer::from_pem_file(&ssl.private_key).map_err(|e| {
        loaded.error(
            &setting("private_key"),
            format!(
                "cannot read a PEM private key from {}: {e}",
                ssl.private_key.display()
            ),
        )
    })?;
    let cas = read_certs(&ssl.ca_cert).map_err(|e| loaded.error(&setting("ca_cert"), e))?;
    let mut roots = RootCertStore::empty();
    for ca in cas {
        roots.add(ca).map_err(|e| {
            loaded.error(
                &setting("ca_cert"),
                format!(
                    "{}: not a usable CA certificate: {e}",
                    ssl.ca_cert.display()
                ),
            )
        })?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| loaded.error(&setting("ca_cert"), format!("{e}")))?;
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| loaded.error("listen.ssl", format!("{e}")))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| {
            loaded.error(
                &setting("private_key"),
                format!(
                    "the key {} does not go with the certificate {}: {e}",
                    ssl.private_key.display(),
                    ssl.certificate.display()
                ),
            )
        })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read PEM certificates from {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

/// Accepts plain TCP switch connections until shutdown.
pub async fn serve_tcp(listener: TcpListener, ctx: Arc<Context>, tasks: TaskTracker) {
    accept_loop(listener, ctx, tasks, None).await;
}

/// Accepts TLS switch connections until shutdown.
pub async fn serve_ssl(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    ctx: Arc<Context>,
    tasks: TaskTracker,
) {
    accept_loop(listener, ctx, tasks, Some(acceptor)).await;
}

async fn accept_loop(
    listener: TcpListener,
    ctx: Arc<Context>,
    tasks: TaskTracker,
    tls: Option<TlsAcceptor>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = ctx.shutdown.cancelled() => return,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of descriptors and the like: wait rather than spin.
                tracing::warn!("accepting a switch connection failed: {e}");
                ctx.metrics.error("accept");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(%peer, "cannot set TCP_NODELAY: {e}");
        }
        let ctx = ctx.clone();
        match tls.clone() {
            None => {
                tasks.spawn(serve(stream, peer, Transport::Tcp, ctx));
            }
            Some(acceptor) => {
                tasks.spawn(serve_tls(acceptor, stream, peer, ctx));
            }
        }
    }
}

async fn serve_tls(acceptor: TlsAcceptor, stream: TcpStream, peer: SocketAddr, ctx: Arc<Context>) {
    let limit = ctx.session.handshake_timeout;
    let handshake = tokio::time::timeout(limit, acceptor.accept(stream));
    let stream = tokio::select! {
        result = handshake => match result {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                tracing::warn!(%peer, "TLS handshake with a switch failed: {e}");
                ctx.metrics.error("tls_handshake");
                return;
            }
            Err(_) => {
                tracing::warn!(%peer, "TLS handshake with a switch timed out");
                ctx.metrics.error("tls_handshake");
                return;
            }
        },
        () = ctx.shutdown.cancelled() => return,
    };
    serve(stream, peer, Transport::Ssl, ctx).await;
}
