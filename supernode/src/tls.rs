//! HTTPS and WSS on the host's own listener: with `tls_cert` and `tls_key` set (PEM files:
//! the certificate chain, leaf first, and its PKCS#8, PKCS#1 or SEC1 private key), every
//! connection is TLS (rustls over `ring`, TLS 1.2 and 1.3, ALPN `http/1.1`) and the REST API,
//! the WebSocket (`wss://…/v1/ws`) and the web client are served over it. Browsers grant the
//! camera and microphone only in a secure context, which off `localhost` means HTTPS.
//!
//! Drive it: [`acceptor`] once at start (a bad file is an error that names it), and hand the
//! acceptor to [`crate::http_server::serve`]. A client that speaks plain HTTP to a TLS port
//! gets a plain-HTTP `400` `https_required` answer ([`PLAIN_HTTP_ANSWER`]) rather than a TLS
//! alert it cannot read.
//!
//! The alternative is a reverse proxy (nginx, Caddy) that terminates TLS and forwards to a
//! plain listener on loopback (`docs/host.md`, "HTTPS").

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The answer to a plain-HTTP request on a TLS port (then the connection is closed).
pub const PLAIN_HTTP_ANSWER: &str = "HTTP/1.1 400 Bad Request\r\n\
    content-type: application/json\r\n\
    content-length: 108\r\n\
    connection: close\r\n\r\n\
    {\"error\":{\"code\":\"https_required\",\"message\":\"this port speaks HTTPS: use https:// (and wss:// for /v1/ws)\"}}";

/// The first byte of a TLS connection (a handshake record).
pub const TLS_HANDSHAKE: u8 = 0x16;

/// rustls over `ring` (in the tree already; aws-lc would need cmake and nasm). rustls 0.23.48
/// deprecated ring's provider for its lack of post-quantum key exchange; X25519 and the NIST
/// curves remain, which is what browsers fall back to.
#[allow(deprecated)]
fn provider() -> tokio_rustls::rustls::crypto::CryptoProvider {
    ring::default_provider()
}

/// The TLS acceptor for the certificate chain in `cert` and the key in `key` (PEM).
pub fn acceptor(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading tls_cert {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing tls_cert {}", cert.display()))?;
    if chain.is_empty() {
        bail!("tls_cert {} holds no certificate", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading tls_key {}", key.display()))?;
    let mut cfg = ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("tls_cert and tls_key do not make a usable pair")?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(cfg)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_http_answer_is_whole() {
        let (head, body) = PLAIN_HTTP_ANSWER.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["code"], "https_required");
    }

    #[test]
    fn missing_or_bad_files_are_named() {
        let dir = std::env::temp_dir().join(format!("supernode-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        let e = acceptor(&cert, &key).err().expect("no files");
        assert!(format!("{e:#}").contains("cert.pem"), "{e:#}");
        std::fs::write(&cert, "not a certificate").unwrap();
        std::fs::write(&key, "not a key").unwrap();
        let e = acceptor(&cert, &key).err().expect("bad files");
        assert!(format!("{e:#}").contains("cert.pem"), "{e:#}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
