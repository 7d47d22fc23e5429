//! The signaling client: a WebSocket to `GET /v1/ws` of a supernode, speaking the typed
//! messages of `supernode_proto::protocol` (no wire type is redefined here).
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use supernode_edge::signaling::SignalingClient;
//! use supernode_proto::ids::AccountId;
//! use supernode_proto::protocol::MediaKind;
//!
//! let mut sig = SignalingClient::connect("http://127.0.0.1:8080", "TOKEN").await?;
//! let to = AccountId::parse("acc_…").unwrap();
//! let call = sig.invite(to, MediaKind::AudioVideo, Duration::from_secs(30)).await?;
//! // … run media toward call.leg.address with call.leg.srtp …
//! sig.hangup(call.call_id).await?;
//! # Ok(()) }
//! ```
//!
//! [`SignalingClient::invite`] places a call and returns once it is answered *and* the relay
//! leg (address and SRTP keying, from the `media` message) is known; `busy`, `unavailable`,
//! `reject` and the other endings come back as a [`CallError`]. [`SignalingClient::answer`]
//! waits for an `incoming_call`, accepts it and returns the leg; `answered_elsewhere` (another
//! endpoint of the account won) and `cancel` are [`CallError`]s. During the call,
//! [`SignalingClient::wait_end`] keeps the socket alive (application pings) and returns when
//! the other side ends the call or the time is up.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use supernode_proto::ids::{AccountId, CallId, EndpointId};
use supernode_proto::protocol::{
    ClientKind, ClientMsg, EndReason, ErrorCode, LegInfo, MediaKind, ServerMsg, decode_server,
    encode_client,
};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::EdgeError;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Why a call could not be set up, or how it ended early.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The callee is in another call.
    #[error("busy")]
    Busy,
    /// The callee has no endpoint online.
    #[error("unavailable")]
    Unavailable,
    /// Another endpoint of this account answered.
    #[error("answered elsewhere")]
    AnsweredElsewhere,
    /// The call ended before media started.
    #[error("call ended: {0:?}")]
    Ended(EndReason),
    /// The call was answered but no relay leg came.
    #[error("no media leg from the server")]
    NoMedia,
    /// Nothing happened in time.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The server answered with a typed error.
    #[error("server error {0:?}: {1}")]
    Server(ErrorCode, String),
    /// The WebSocket failed or closed.
    #[error("transport: {0}")]
    Transport(String),
}

impl From<CallError> for EdgeError {
    fn from(e: CallError) -> Self {
        EdgeError::Signaling(e.to_string())
    }
}

/// An answered call with its relay leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSetup {
    /// The call.
    pub call_id: CallId,
    /// The other party.
    pub peer: Option<AccountId>,
    /// This endpoint's relay leg (address and SRTP keying).
    pub leg: LegInfo,
    /// What the call carries.
    pub media: MediaKind,
}

/// How a call ended (see [`SignalingClient::wait_end`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallEnd {
    /// The time was up; the caller of `wait_end` should hang up.
    TimeUp,
    /// The server ended the call (the other side hung up, disconnected, …).
    Remote(EndReason),
}

/// The WebSocket URL of a supernode given as `http://host:port`, `ws://host:port` or a
/// full `…/v1/ws` URL.
pub fn ws_url(server: &str) -> String {
    let s = server.trim_end_matches('/');
    let s = if let Some(rest) = s.strip_prefix("http://") {
        format!("ws://{rest}")
    } else if let Some(rest) = s.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if s.starts_with("ws://") || s.starts_with("wss://") {
        s.to_owned()
    } else {
        format!("ws://{s}")
    };
    if s.ends_with("/v1/ws") {
        s
    } else {
        format!("{s}/v1/ws")
    }
}

/// A logged-in signaling connection.
pub struct SignalingClient {
    ws: Ws,
    /// This connection's endpoint id.
    pub endpoint_id: EndpointId,
    /// The account logged in.
    pub account_id: AccountId,
    /// The WebSocket URL of this connection.
    pub url: String,
    /// In a network: the nodes to reconnect to if this one dies, preferred first
    /// (`login_ok.nodes`; see [`crate::failover`]).
    pub nodes: Vec<String>,
    keepalive: Duration,
    last_sent: Instant,
    ping_nonce: u64,
}

impl std::fmt::Debug for SignalingClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalingClient")
            .field("endpoint_id", &self.endpoint_id)
            .field("account_id", &self.account_id)
            .finish_non_exhaustive()
    }
}

impl SignalingClient {
    /// Connects to `server` and logs in with `token`.
    pub async fn connect(server: &str, token: &str) -> Result<Self, CallError> {
        let url = ws_url(server);
        let (mut ws, _) = tokio::time::timeout(
            Duration::from_secs(10),
            tokio_tungstenite::connect_async(url.as_str()),
        )
        .await
        .map_err(|_| CallError::Timeout("the WebSocket connection"))?
        .map_err(|e| CallError::Transport(format!("{url}: {e}")))?;
        let login = encode_client(&ClientMsg::Login {
            token: token.to_owned(),
            client: ClientKind::Edge,
        });
        ws.send(Message::text(login))
            .await
            .map_err(|e| CallError::Transport(e.to_string()))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let msg = recv_raw(&mut ws, deadline)
                .await?
                .ok_or(CallError::Timeout("login_ok"))?;
            match msg {
                ServerMsg::LoginOk {
                    endpoint_id,
                    account_id,
                    keepalive_seconds,
                    nodes,
                } => {
                    return Ok(Self {
                        ws,
                        endpoint_id,
                        account_id,
                        url,
                        nodes,
                        keepalive: Duration::from_secs(keepalive_seconds.max(1)),
                        last_sent: Instant::now(),
                        ping_nonce: 0,
                    });
                }
                ServerMsg::Error { code, message, .. } => {
                    return Err(CallError::Server(code, message));
                }
                _ => {}
            }
        }
    }

    /// Sends one message.
    pub async fn send(&mut self, msg: &ClientMsg) -> Result<(), CallError> {
        self.last_sent = Instant::now();
        self.ws
            .send(Message::text(encode_client(msg)))
            .await
            .map_err(|e| CallError::Transport(e.to_string()))
    }

    /// The next server message before `deadline` (`None` at the deadline), keeping the
    /// connection alive with application pings meanwhile. `pong` is swallowed.
    pub async fn next(&mut self, deadline: Instant) -> Result<Option<ServerMsg>, CallError> {
        loop {
            let ping_at = self.last_sent + self.keepalive / 2;
            let wake = deadline.min(ping_at);
            match recv_raw(&mut self.ws, wake).await? {
                Some(ServerMsg::Pong { .. }) => continue,
                Some(m) => return Ok(Some(m)),
                None => {
                    if Instant::now() >= deadline {
                        return Ok(None);
                    }
                    self.ping_nonce += 1;
                    let nonce = Some(self.ping_nonce);
                    self.send(&ClientMsg::Ping { nonce }).await?;
                }
            }
        }
    }

    /// Calls `to` and waits (up to `ring_timeout`) until it is answered and the relay leg
    /// is known.
    pub async fn invite(
        &mut self,
        to: AccountId,
        media: MediaKind,
        ring_timeout: Duration,
    ) -> Result<CallSetup, CallError> {
        let client_ref = format!("edge-{}", self.endpoint_id.0);
        self.send(&ClientMsg::Invite {
            to: to.clone(),
            media,
            client_ref: Some(client_ref),
            sdp: None,
        })
        .await?;
        let deadline = Instant::now() + ring_timeout;
        let mut call: Option<CallId> = None;
        let mut answered = false;
        loop {
            let Some(msg) = self.next(deadline).await? else {
                if let Some(c) = call.take() {
                    let _ = self.send(&ClientMsg::Cancel { call_id: c }).await;
                }
                return Err(if answered {
                    CallError::NoMedia
                } else {
                    CallError::Timeout("an answer")
                });
            };
            match msg {
                ServerMsg::Ringing { call_id, .. } => call = Some(call_id),
                ServerMsg::Busy { .. } => return Err(CallError::Busy),
                ServerMsg::Unavailable { .. } => return Err(CallError::Unavailable),
                ServerMsg::Accepted { call_id, .. }
                    if call.as_ref().is_none_or(|c| *c == call_id) =>
                {
                    call = Some(call_id);
                    answered = true;
                }
                ServerMsg::Media { call_id, leg }
                    if call.as_ref().is_none_or(|c| *c == call_id) =>
                {
                    return Ok(CallSetup {
                        call_id,
                        peer: Some(to),
                        leg,
                        media,
                    });
                }
                ServerMsg::CallEnded { call_id, reason }
                    if call.as_ref().is_none_or(|c| *c == call_id) =>
                {
                    return Err(CallError::Ended(reason));
                }
                ServerMsg::Error {
                    code,
                    message,
                    in_reply_to,
                } if in_reply_to.as_deref() == Some("invite") => {
                    return Err(CallError::Server(code, message));
                }
                _ => {}
            }
        }
    }

    /// Waits (up to `timeout`) for an incoming call, asks `decide(caller, media)` whether to
    /// accept it (a call it declines is rejected, and the wait goes on), and returns once
    /// the relay leg is known.
    pub async fn answer(
        &mut self,
        mut decide: impl FnMut(&AccountId, MediaKind) -> bool,
        timeout: Duration,
    ) -> Result<CallSetup, CallError> {
        let deadline = Instant::now() + timeout;
        let mut call: Option<(CallId, AccountId, MediaKind)> = None;
        loop {
            let Some(msg) = self.next(deadline).await? else {
                return Err(if call.is_some() {
                    CallError::NoMedia
                } else {
                    CallError::Timeout("an incoming call")
                });
            };
            match msg {
                ServerMsg::IncomingCall {
                    call_id,
                    from,
                    media,
                    ..
                } if call.is_none() => {
                    if decide(&from, media) {
                        self.send(&ClientMsg::Accept {
                            call_id: call_id.clone(),
                            sdp: None,
                        })
                        .await?;
                        call = Some((call_id, from, media));
                    } else {
                        self.send(&ClientMsg::Reject { call_id }).await?;
                    }
                }
                ServerMsg::AnsweredElsewhere { call_id }
                    if call.as_ref().is_none_or(|c| c.0 == call_id) =>
                {
                    return Err(CallError::AnsweredElsewhere);
                }
                ServerMsg::Media { call_id, leg } => {
                    if let Some((c, from, media)) = &call
                        && *c == call_id
                    {
                        return Ok(CallSetup {
                            call_id,
                            peer: Some(from.clone()),
                            leg,
                            media: *media,
                        });
                    }
                }
                ServerMsg::CallEnded { call_id, reason }
                    if call.as_ref().is_some_and(|c| c.0 == call_id) =>
                {
                    return Err(CallError::Ended(reason));
                }
                ServerMsg::Error {
                    code,
                    message,
                    in_reply_to,
                } if in_reply_to.as_deref() == Some("accept") => {
                    // Lost the race (accept after another endpoint won) or the call is gone.
                    return Err(CallError::Server(code, message));
                }
                _ => {}
            }
        }
    }

    /// Keeps the call up until `deadline` or until the server ends it.
    pub async fn wait_end(
        &mut self,
        call_id: CallId,
        deadline: Instant,
    ) -> Result<CallEnd, CallError> {
        loop {
            match self.next(deadline).await? {
                None => return Ok(CallEnd::TimeUp),
                Some(ServerMsg::CallEnded { call_id: c, reason }) if c == call_id => {
                    return Ok(CallEnd::Remote(reason));
                }
                Some(_) => {}
            }
        }
    }

    /// Hangs up `call_id` and waits briefly for the server's `call_ended`.
    pub async fn hangup(&mut self, call_id: CallId) -> Result<(), CallError> {
        self.send(&ClientMsg::Hangup {
            call_id: call_id.clone(),
        })
        .await?;
        let deadline = Instant::now() + Duration::from_secs(2);
        while let Some(m) = self.next(deadline).await? {
            if matches!(m, ServerMsg::CallEnded { call_id: c, .. } if c == call_id) {
                break;
            }
        }
        Ok(())
    }

    /// Closes the WebSocket.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// Receives the next parseable server message before `deadline`; `None` at the deadline.
/// Frames that do not parse as a server message are skipped (a newer server may send types
/// this client does not know).
async fn recv_raw(ws: &mut Ws, deadline: Instant) -> Result<Option<ServerMsg>, CallError> {
    loop {
        let frame = match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return Ok(None),
            Ok(None) => {
                return Err(CallError::Transport(
                    "the server closed the connection".into(),
                ));
            }
            Ok(Some(Err(e))) => return Err(CallError::Transport(e.to_string())),
            Ok(Some(Ok(f))) => f,
        };
        match frame {
            Message::Text(t) => {
                if let Ok(m) = decode_server(t.as_str()) {
                    return Ok(Some(m));
                }
            }
            Message::Close(_) => {
                return Err(CallError::Transport(
                    "the server closed the connection".into(),
                ));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ws_urls() {
        assert_eq!(ws_url("http://127.0.0.1:8080"), "ws://127.0.0.1:8080/v1/ws");
        assert_eq!(
            ws_url("http://127.0.0.1:8080/"),
            "ws://127.0.0.1:8080/v1/ws"
        );
        assert_eq!(ws_url("https://sn.example"), "wss://sn.example/v1/ws");
        assert_eq!(ws_url("ws://h:1/v1/ws"), "ws://h:1/v1/ws");
        assert_eq!(ws_url("h:1"), "ws://h:1/v1/ws");
    }
}
