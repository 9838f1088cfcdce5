//! TLS for `ssl:` targets, with the trust model OVS uses: the peer must
//! present a certificate chaining to the configured CA, and its name is not
//! checked (`ovs-pki` certificates name a switch or controller id, not a
//! host). We always present our own certificate, which `ovsdb-server`
//! requires.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{RootCertStore, SignatureScheme};
use tokio_rustls::TlsConnector;

use super::Error;

/// The files `ovs-pki` produces, as passed to `ovs-vsctl` with
/// `--private-key`, `--certificate` and `--ca-cert`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// Our private key (PEM, PKCS#8, PKCS#1 or SEC1).
    pub private_key: PathBuf,
    /// Our certificate (PEM), with any intermediates after it.
    pub certificate: PathBuf,
    /// The CA certificate(s) the server's certificate must chain to (PEM).
    pub ca_cert: PathBuf,
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| Error::Tls(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(Error::Tls(format!(
            "{}: no certificate found",
            path.display()
        )));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, Error> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            Error::Tls(format!("{}: no private key found", path.display()))
        }
        e => Error::Tls(format!("{}: {e}", path.display())),
    })
}

/// Builds a connector from the configured files.
pub(crate) fn connector(config: &TlsConfig) -> Result<TlsConnector, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for ca in read_certs(&config.ca_cert)? {
        roots
            .add(ca)
            .map_err(|e| Error::Tls(format!("{}: {e}", config.ca_cert.display())))?;
    }
    let verifier = Arc::new(CaVerifier::new(roots, provider.clone()));
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(
            read_certs(&config.certificate)?,
            read_key(&config.private_key)?,
        )
        .map_err(|e| Error::Tls(format!("{}: {e}", config.private_key.display())))?;
    Ok(TlsConnector::from(Arc::new(tls)))
}

/// Verifies a server the way OVS does: the certificate must chain to one of
/// `roots` and the handshake signatures must check out, but its name is not
/// compared (`ovs-pki` names a switch or controller id, not a host).
#[derive(Debug)]
pub struct CaVerifier {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
}

impl CaVerifier {
    /// A verifier trusting `roots`, checking signatures with `provider`.
    pub fn new(roots: RootCertStore, provider: Arc<CryptoProvider>) -> CaVerifier {
        CaVerifier {
            roots: Arc::new(roots),
            provider,
        }
    }
}

impl ServerCertVerifier for CaVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
