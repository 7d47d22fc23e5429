//! The host's HTTP server: accepts TCP connections and serves each with hyper (HTTP/1.1, with
//! upgrades for the WebSocket) under the connection limits of `docs/host.md` ("Limits").
//!
//! * At most `max_connections` open connections, and at most `max_connections_per_ip` from
//!   one client address (one IPv6 /64 counts as one address). A connection counts from
//!   accept until its socket closes: the count rides with the socket, so an upgraded
//!   WebSocket counts as long as it lives.
//! * A connection past a cap is answered as soon as its request head is in — `503
//!   server_full` (global cap) or
//!   `429 too_many_connections` (per-address cap), the JSON error body, `Retry-After: 1`,
//!   `Connection: close` — and closed. At most [`MAX_REFUSING`] such answers are in flight;
//!   past that a connection is closed without one.
//! * A request's headers must arrive within `header_read_timeout` of the connection's start
//!   (or, on a kept-alive connection, of the previous answer); else the connection is closed
//!   without an answer. This is what closes connections that connect and never send, and
//!   clients that dribble headers.
//!
//! * With a TLS acceptor ([`crate::tls`]) every connection is TLS: the handshake must also
//!   end within `header_read_timeout`, and a plain-HTTP request gets a readable `400`
//!   `https_required`.
//!
//! Drive it with [`serve`]: it runs until `shutdown` completes, then stops accepting, asks
//! every connection to finish the request in flight, and returns once all have closed
//! (upgraded WebSockets are not waited for). [`ConnStats`] is read by `/metrics`.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Refusal answers (`503`/`429`) in flight at most; past this a refused connection is closed
/// without an answer (a flood of connections must not buy a task each).
pub const MAX_REFUSING: usize = 1024;

/// How long a refused connection may take to send its request head, read the answer and
/// close.
const REFUSAL_LINGER: Duration = Duration::from_secs(2);

/// The connection limits.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Open connections at most.
    pub max_connections: usize,
    /// Open connections from one client address at most.
    pub max_connections_per_ip: usize,
    /// Time a request's headers have to arrive.
    pub header_read_timeout: Duration,
}

/// Connection counts since start, for `/metrics`.
#[derive(Debug, Default)]
pub struct ConnStats {
    table: Mutex<Table>,
    refusing: AtomicUsize,
    accepted: AtomicU64,
    refused_global: AtomicU64,
    refused_per_ip: AtomicU64,
    header_timeouts: AtomicU64,
}

#[derive(Debug, Default)]
struct Table {
    open: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// A copy of [`ConnStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnCounts {
    /// Connections open now (WebSockets included).
    pub open: usize,
    /// Client addresses with an open connection now.
    pub addresses: usize,
    /// Connections accepted and served since start.
    pub accepted: u64,
    /// Refused past `max_connections`.
    pub refused_global: u64,
    /// Refused past `max_connections_per_ip`.
    pub refused_per_ip: u64,
    /// Closed because the request headers did not arrive in time.
    pub header_timeouts: u64,
}

impl ConnStats {
    /// The counts now.
    pub fn snapshot(&self) -> ConnCounts {
        let t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        ConnCounts {
            open: t.open,
            addresses: t.per_ip.len(),
            accepted: self.accepted.load(Ordering::Relaxed),
            refused_global: self.refused_global.load(Ordering::Relaxed),
            refused_per_ip: self.refused_per_ip.load(Ordering::Relaxed),
            header_timeouts: self.header_timeouts.load(Ordering::Relaxed),
        }
    }
}

/// The address a per-address cap counts under: an IPv6 client owns a whole /64.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
        },
        v4 => v4,
    }
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Global,
    PerIp,
}

/// One open connection's place in the counts; given back on drop.
struct Slot {
    stats: Arc<ConnStats>,
    key: IpAddr,
}

impl Slot {
    fn take(stats: &Arc<ConnStats>, limits: &HttpLimits, ip: IpAddr) -> Result<Slot, Refusal> {
        let key = client_key(ip);
        let mut t = stats.table.lock().unwrap_or_else(|e| e.into_inner());
        if t.open >= limits.max_connections {
            return Err(Refusal::Global);
        }
        let n = t.per_ip.entry(key).or_insert(0);
        if *n >= limits.max_connections_per_ip {
            return Err(Refusal::PerIp);
        }
        *n += 1;
        t.open += 1;
        Ok(Slot {
            stats: stats.clone(),
            key,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut t = self.stats.table.lock().unwrap_or_else(|e| e.into_inner());
        t.open = t.open.saturating_sub(1);
        if let Some(n) = t.per_ip.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                t.per_ip.remove(&self.key);
            }
        }
    }
}

/// A TCP stream that holds its connection's [`Slot`] until it is dropped (also after a
/// WebSocket upgrade, where hyper hands the stream to the WebSocket task).
struct CountedStream {
    io: TcpStream,
    _slot: Slot,
}

impl AsyncRead for CountedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, b)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// The whole answer to a refused connection.
fn refusal_answer(r: Refusal) -> Vec<u8> {
    let (status, code, message) = match r {
        Refusal::Global => (
            "503 Service Unavailable",
            "server_full",
            "this supernode has as many connections open as it takes; try again later",
        ),
        Refusal::PerIp => (
            "429 Too Many Requests",
            "too_many_connections",
            "too many connections open from this address",
        ),
    };
    let body = serde_json::json!({ "error": { "code": code, "message": message } }).to_string();
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Answers a refused connection and lets it go: the request head is read (clients do not
/// expect an answer before their request), the answer written, the write side shut, and
/// what the client still sends is read and thrown away (so that closing does not reset the
/// connection before the client has read the answer) until it closes or the linger time is
/// over.
async fn refuse(stats: Arc<ConnStats>, mut tcp: TcpStream, r: Refusal) {
    let n = stats.refusing.fetch_add(1, Ordering::Relaxed);
    if n < MAX_REFUSING {
        let answer = refusal_answer(r);
        let _ = tokio::time::timeout(REFUSAL_LINGER, async {
            let mut head = Vec::with_capacity(1024);
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                let n = tcp.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                head.extend_from_slice(&buf[..n]);
            }
            tcp.write_all(&answer).await?;
            tcp.shutdown().await?;
            while tcp.read(&mut buf).await? > 0 {}
            Ok::<_, io::Error>(())
        })
        .await;
    }
    stats.refusing.fetch_sub(1, Ordering::Relaxed);
}

/// A response that refuses a body (`413` too large, `408` too slow) is sent before the body
/// was read to its end, so the connection cannot carry another request: say so with
/// `Connection: close`, or a client that pools connections sends its next request into a
/// connection the server is about to close (and sees it fail with no answer).
async fn close_after_refused_body(mut r: axum::response::Response) -> axum::response::Response {
    if matches!(
        r.status(),
        axum::http::StatusCode::PAYLOAD_TOO_LARGE | axum::http::StatusCode::REQUEST_TIMEOUT
    ) {
        r.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    r
}

/// Answers a plain-HTTP request on a TLS port with [`crate::tls::PLAIN_HTTP_ANSWER`] once
/// its head is in, and closes (reading what the client still sends for a moment, so it
/// reads the answer instead of a reset).
async fn plain_http_on_tls(mut tcp: CountedStream) {
    let _ = tokio::time::timeout(REFUSAL_LINGER, async {
        let mut head = Vec::with_capacity(1024);
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
            let n = tcp.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        tcp.write_all(crate::tls::PLAIN_HTTP_ANSWER.as_bytes())
            .await?;
        tcp.shutdown().await?;
        while tcp.read(&mut buf).await? > 0 {}
        Ok::<_, io::Error>(())
    })
    .await;
}

/// Serves one connection (plain or TLS) until it ends, or finishes it gracefully once
/// `stop` says so.
async fn serve_conn<I>(
    io: I,
    service: TowerToHyperService<Router>,
    limits: HttpLimits,
    mut stop: tokio::sync::watch::Receiver<bool>,
    stats: Arc<ConnStats>,
    peer: std::net::SocketAddr,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let mut conn = pin!(
        builder
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades()
    );
    let mut stopping = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    if e.is_timeout() {
                        stats.header_timeouts.fetch_add(1, Ordering::Relaxed);
                    }
                    tracing::debug!(%peer, error = %e, "connection ended");
                }
                break;
            }
            _ = stop.changed(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Serves `app` on `listener` under `limits` until `shutdown` completes (see the module
/// docs); with `tls`, every connection is TLS ([`crate::tls`]).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    stats: Arc<ConnStats>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) {
    let app = app.layer(axum::middleware::map_response(close_after_refused_body));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut shutdown = pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors (EMFILE/ENFILE) or a connection gone before accept:
                    // wait a little instead of spinning on the error.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let slot = match Slot::take(&stats, &limits, peer.ip()) {
            Ok(s) => s,
            Err(r) => {
                let counter = match r {
                    Refusal::Global => &stats.refused_global,
                    Refusal::PerIp => &stats.refused_per_ip,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%peer, ?r, "connection refused");
                tokio::spawn(refuse(stats.clone(), tcp, r));
                continue;
            }
        };
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        // Signaling messages are small and latency-bound: no Nagle delay on replies.
        let _ = tcp.set_nodelay(true);
        let io = CountedStream {
            io: tcp,
            _slot: slot,
        };
        let service = TowerToHyperService::new(app.clone());
        let stop = stop_rx.clone();
        let stats = stats.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let Some(acceptor) = tls else {
                return serve_conn(io, service, limits, stop, stats, peer).await;
            };
            // The first byte tells TLS from a plain-HTTP client (which gets a readable `400`).
            let mut first = [0u8; 1];
            let peeked =
                tokio::time::timeout(limits.header_read_timeout, io.io.peek(&mut first)).await;
            match peeked {
                Ok(Ok(1)) if first[0] == crate::tls::TLS_HANDSHAKE => {}
                Ok(Ok(1)) => return plain_http_on_tls(io).await,
                Ok(_) => return,
                Err(_) => {
                    stats.header_timeouts.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
            match tokio::time::timeout(limits.header_read_timeout, acceptor.accept(io)).await {
                Ok(Ok(tls)) => serve_conn(tls, service, limits, stop, stats, peer).await,
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => {
                    stats.header_timeouts.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(stop_rx);
    stop_tx.closed().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_count_per_address_and_in_total_and_give_back_on_drop() {
        let stats = Arc::new(ConnStats::default());
        let limits = HttpLimits {
            max_connections: 3,
            max_connections_per_ip: 2,
            header_read_timeout: Duration::from_secs(1),
        };
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = Slot::take(&stats, &limits, a).unwrap();
        let _a2 = Slot::take(&stats, &limits, a).unwrap();
        assert_eq!(Slot::take(&stats, &limits, a).err(), Some(Refusal::PerIp));
        let _b1 = Slot::take(&stats, &limits, b).unwrap();
        assert_eq!(Slot::take(&stats, &limits, b).err(), Some(Refusal::Global));
        assert_eq!(stats.snapshot().open, 3);
        assert_eq!(stats.snapshot().addresses, 2);
        drop(a1);
        assert_eq!(stats.snapshot().open, 2);
        assert!(Slot::take(&stats, &limits, a).is_ok());
    }

    #[test]
    fn an_ipv6_client_is_its_slash_64() {
        let x: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let y: IpAddr = "2001:db8:1:2:bbbb::7".parse().unwrap();
        let z: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(x), client_key(y));
        assert_ne!(client_key(x), client_key(z));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(client_key(mapped), "10.0.0.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn a_refusal_is_a_whole_json_answer() {
        let a = String::from_utf8(refusal_answer(Refusal::PerIp)).unwrap();
        let (head, body) = a.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 429 "));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["code"], "too_many_connections");
        let a = String::from_utf8(refusal_answer(Refusal::Global)).unwrap();
        assert!(a.starts_with("HTTP/1.1 503 "));
        assert!(a.contains("\"server_full\""));
    }
}
