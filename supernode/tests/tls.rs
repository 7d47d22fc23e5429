//! HTTPS and WSS on the host's own listener: a `supernode run` with `tls_cert`/`tls_key` (a
//! self-signed certificate made with rcgen) serves REST and the WebSocket over TLS to a
//! client that trusts that certificate, and a plain-HTTP client gets a readable `400
//! https_required` instead of a TLS alert.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Node, data_dir, pem};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_tungstenite::tungstenite::Message;

/// rustls over ring, as the host uses it (see `supernode/src/tls.rs`).
#[allow(deprecated)]
fn provider() -> tokio_rustls::rustls::crypto::CryptoProvider {
    ring::default_provider()
}

/// A TLS connection to the node that trusts only `cert`.
async fn connect(
    node: &Node,
    cert: &CertificateDer<'static>,
) -> impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static {
    let mut roots = RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let cfg = ClientConfig::builder_with_provider(Arc::new(provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(node.addr).await.unwrap();
    TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake with the supernode")
}

/// `GET path` over TLS: the whole answer.
async fn get(node: &Node, cert: &CertificateDer<'static>, path: &str) -> String {
    let mut s = connect(node, cert).await;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("an answer in time")
        .ok();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn rest_and_websocket_are_served_over_tls_and_plain_http_is_told_so() {
    let dir = data_dir("tls");
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert = CertificateDer::from(made.cert.der().to_vec());
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, pem("CERTIFICATE", &cert)).unwrap();
    std::fs::write(
        &key_path,
        pem("PRIVATE KEY", &made.signing_key.serialize_der()),
    )
    .unwrap();
    let node = Node::start(
        &dir,
        &[
            ("SUPERNODE_TLS_CERT", cert_path.to_str().unwrap()),
            ("SUPERNODE_TLS_KEY", key_path.to_str().unwrap()),
        ],
    );
    assert!(node.https, "it announces https://");
    assert!(node.base().starts_with("https://"));

    // REST over TLS.
    let health = get(&node, &cert, "/healthz").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let api = get(&node, &cert, "/v1/openapi.json").await;
    assert!(
        api.starts_with("HTTP/1.1 200"),
        "{}",
        &api[..api.len().min(200)]
    );
    assert!(api.contains("\"/v1/whip/{stream}\""), "the API document");
    let unauthorized = get(&node, &cert, "/v1/accounts/acc_x").await;
    assert!(unauthorized.starts_with("HTTP/1.1 401"), "{unauthorized}");

    // The WebSocket over TLS: the upgrade, then a typed error for a frame before login.
    let tls = connect(&node, &cert).await;
    let (mut ws, resp) = tokio_tungstenite::client_async("wss://localhost/v1/ws", tls)
        .await
        .expect("WSS upgrade");
    assert_eq!(resp.status(), 101);
    ws.send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("a reply in time")
        .expect("a frame")
        .expect("a readable frame");
    let text = reply.into_text().expect("a text frame");
    assert!(text.contains("binary_not_supported"), "{text}");

    // A plain-HTTP client: a readable 400, not a TLS alert.
    let r = reqwest::get(format!("http://{}/healthz", node.addr))
        .await
        .expect("an HTTP answer");
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "https_required");

    // A TLS client that does not trust the certificate fails its handshake.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(other.cert.der().to_vec()))
        .unwrap();
    let cfg = ClientConfig::builder_with_provider(Arc::new(provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(node.addr).await.unwrap();
    let refused = TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await;
    assert!(refused.is_err(), "an untrusted certificate is refused");
}
