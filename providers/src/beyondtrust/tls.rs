//! TLS for the appliance provider: the one verifying rustls configuration every connection
//! uses, the classification of verification failures, and inspection of the served certificate.
//!
//! Owns: building the [`rustls::ClientConfig`] (only the site CA from `ca_file` when given,
//! else the platform's roots), explaining a rejected certificate in words (untrusted, expired,
//! hostname mismatch), and [`inspect`]: a separate handshake with the very same configuration
//! that reads the peer's leaf certificate (SHA-256 fingerprint, notAfter, SANs).
//!
//! Must not: ever weaken verification — there is no switch to accept invalid certificates,
//! hostnames or chains, and inspection only reports on certificates that verified.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::{CertificateError, ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use rustls_platform_verifier::BuilderVerifierExt;
use sha2::{Digest, Sha256};
use swing_engine::provider::{CertificateInfo, ErrorKind, ProviderError, ProviderResult};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// The crypto provider used for every appliance connection (the one reqwest's rustls uses).
fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Builds the verifying client configuration. With `ca_file`, ONLY the certificates in that
/// PEM file are trusted (the site's own CA); without it, the platform's trust store.
pub fn client_config(ca_file: Option<&Path>) -> ProviderResult<ClientConfig> {
    let builder = ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ProviderError::new(ErrorKind::Invalid, format!("TLS setup failed: {e}")))?;
    let mut config = match ca_file {
        Some(path) => {
            let roots = load_roots(path)?;
            let verifier =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), crypto_provider())
                    .build()
                    .map_err(|e| {
                        ProviderError::new(
                            ErrorKind::Invalid,
                            format!("ca_file {}: cannot build a verifier: {e}", path.display()),
                        )
                    })?;
            builder.with_webpki_verifier(verifier).with_no_client_auth()
        }
        None => builder
            .with_platform_verifier()
            .map_err(|e| {
                ProviderError::new(
                    ErrorKind::Invalid,
                    format!("cannot load the system trust store: {e}"),
                )
            })?
            .with_no_client_auth(),
    };
    // HTTP/1.1 only: one request per connection, closed afterwards (vendor requirement).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn load_roots(path: &Path) -> ProviderResult<RootCertStore> {
    let invalid = |what: String| {
        ProviderError::new(
            ErrorKind::Invalid,
            format!("ca_file {}: {what}", path.display()),
        )
    };
    let file = swing_engine::input_file::read(path)
        .map_err(|e| ProviderError::new(ErrorKind::Invalid, format!("ca_file: {e}")))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&file.bytes) {
        let cert = cert.map_err(|e| invalid(format!("not a PEM certificate file: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| invalid(format!("unusable certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(invalid("contains no certificate".into()));
    }
    Ok(roots)
}

/// Words for a rustls failure, naming what failed. `host` is the name the certificate had to match.
pub fn describe_tls_error(err: &rustls::Error, host: &str) -> String {
    match err {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => format!(
                "TLS certificate of {host} is not trusted: issued by an unknown CA (set ca_file to the site CA)"
            ),
            CertificateError::BadSignature => {
                format!("TLS certificate of {host} is not trusted: bad signature in the chain")
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                format!("TLS certificate of {host} has expired")
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                format!("TLS certificate of {host} is not valid yet (check the clocks)")
            }
            CertificateError::NotValidForName => {
                format!("TLS certificate does not match the hostname {host} (hostname mismatch)")
            }
            CertificateError::NotValidForNameContext { presented, .. } => format!(
                "TLS certificate does not match the hostname {host} (hostname mismatch; it is for {})",
                presented.join(", ")
            ),
            CertificateError::Revoked => format!("TLS certificate of {host} is revoked"),
            other => format!("TLS certificate of {host} rejected: {other:?}"),
        },
        other => format!("TLS handshake with {host} failed: {other}"),
    }
}

/// Finds a rustls error anywhere in an error's source chain (also inside `io::Error`s).
pub fn find_rustls_error<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    // Bounded: error chains are short; this guards against a cycle.
    for _ in 0..32 {
        let e = cur?;
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        // `io::Error::source()` skips the wrapped error itself: step into it explicitly.
        cur = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    None
}

/// Connects to `addrs` (first that answers), verifies the served chain for `host` with
/// `config`, and describes the leaf certificate. Verification failures are `ErrorKind::Tls`.
///
/// Always a full handshake: a resumed TLS session reports the certificate chain cached from
/// the earlier handshake and is not verified again, so after the appliance changed its
/// default certificate (migration `certs.default`) inspection would keep seeing the old one.
pub async fn inspect(
    config: Arc<ClientConfig>,
    addrs: &[SocketAddr],
    host: &str,
    timeout: Duration,
) -> ProviderResult<CertificateInfo> {
    let server_name = ServerName::try_from(host.to_owned()).map_err(|_| {
        ProviderError::new(
            ErrorKind::Invalid,
            format!("not a valid TLS server name: {host}"),
        )
    })?;
    let fut = async {
        let mut last = None;
        let mut tcp = None;
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = Some(format!("{addr}: {e}")),
            }
        }
        let Some(tcp) = tcp else {
            return Err(ProviderError::new(
                ErrorKind::Transient,
                format!(
                    "cannot connect to {host} for TLS inspection: {}",
                    last.unwrap_or_else(|| "no address".into())
                ),
            ));
        };
        let mut full = (*config).clone();
        full.resumption = rustls::client::Resumption::disabled();
        let tls = TlsConnector::from(Arc::new(full))
            .connect(server_name, tcp)
            .await
            .map_err(|e| match find_rustls_error(&e) {
                Some(r) => ProviderError::new(ErrorKind::Tls, describe_tls_error(r, host)),
                None => ProviderError::new(
                    ErrorKind::Transient,
                    format!("TLS handshake with {host} failed: {e}"),
                ),
            })?;
        let (_, conn) = tls.get_ref();
        let leaf = conn
            .peer_certificates()
            .and_then(|c| c.first())
            .ok_or_else(|| {
                ProviderError::new(ErrorKind::Tls, format!("{host} presented no certificate"))
            })?;
        describe_certificate(leaf.as_ref(), true)
    };
    tokio::time::timeout(timeout, fut).await.map_err(|_| {
        ProviderError::new(
            ErrorKind::Transient,
            format!(
                "TLS inspection of {host} timed out after {}s",
                timeout.as_secs()
            ),
        )
    })?
}

/// Fingerprint, notAfter and SANs of a DER certificate.
pub fn describe_certificate(der: &[u8], trusted: bool) -> ProviderResult<CertificateInfo> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| {
        ProviderError::new(
            ErrorKind::Tls,
            format!("served certificate cannot be parsed: {e}"),
        )
    })?;
    let not_after_unix = cert.validity().not_after.timestamp();
    let not_after = chrono::DateTime::from_timestamp(not_after_unix, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| not_after_unix.to_string());
    let mut sans = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(d) => sans.push((*d).to_owned()),
                GeneralName::IPAddress(b) => match b.len() {
                    4 => sans.push(std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string()),
                    16 => {
                        let mut a = [0u8; 16];
                        a.copy_from_slice(b);
                        sans.push(std::net::Ipv6Addr::from(a).to_string());
                    }
                    _ => {}
                },
                _ => {}
            }
        }
    }
    Ok(CertificateInfo {
        leaf_sha256: sha256_hex(der),
        not_after,
        sans,
        trusted,
    })
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex_lower(&Sha256::digest(data))
}

pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_file_errors_are_invalid_and_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let e = client_config(Some(&missing)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid);
        assert!(e.message.contains("nope.pem"), "{}", e.message);
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificates here\n").unwrap();
        let e = client_config(Some(&empty)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid);
        assert!(e.message.contains("no certificate"), "{}", e.message);
    }

    #[test]
    fn tls_errors_name_what_failed() {
        let unknown = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        assert!(describe_tls_error(&unknown, "h").contains("not trusted"));
        let expired = rustls::Error::InvalidCertificate(CertificateError::Expired);
        assert!(describe_tls_error(&expired, "h").contains("expired"));
        let name = rustls::Error::InvalidCertificate(CertificateError::NotValidForName);
        assert!(describe_tls_error(&name, "h").contains("hostname mismatch"));
        let io = std::io::Error::other(unknown.clone());
        assert_eq!(find_rustls_error(&io), Some(&unknown));
        let nested = std::io::Error::other(std::io::Error::other(unknown.clone()));
        assert_eq!(find_rustls_error(&nested), Some(&unknown));
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(hex_lower(&[0, 0xab, 0x10]), "00ab10");
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
