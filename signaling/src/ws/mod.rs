//! `GET /v1/ws`: one WebSocket per endpoint.
//!
//! The first frame must be `login` (within the login timeout); a bad, expired, forged or
//! revoked-account token gets a typed `error` and the socket is closed (code 1008). After
//! login every text frame is decoded ([`crate::protocol::decode_client`]); a bad frame gets a
//! typed `error` and the socket stays. The server pings every keep-alive interval and closes a
//! socket silent for two intervals. On close, the endpoint is detached from the hub, which
//! ends the calls it took part in.
//!
//! Limits ([`limits`]): every frame a socket sends takes one message from its budget
//! (`ws_rate_limit_burst` at `ws_rate_limit_per_second`); past it the socket gets `error
//! rate_limited` and is closed (code 1008). A message or frame above `ws_max_message_bytes`
//! gets `error message_too_big` and the socket is closed (code 1009). Both are counted.

pub use crate::calls::hub;
pub mod limits;

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;

use crate::protocol::{ClientMsg, ErrorCode, ServerMsg, decode_client, encode_server};
use crate::state::AppState;
use crate::token::TokenError;
use limits::FrameBudget;

/// Read buffer of a socket. Signaling messages are small: a socket that reads 4 KiB at a time
/// costs little while idle (the default, 128 KiB, made 1,000 silent sockets cost 125 MiB);
/// a larger message still arrives whole, in several reads.
const READ_BUFFER_BYTES: usize = 4096;

/// Upgrades to the signaling WebSocket.
pub async fn ws_handler(ws: WebSocketUpgrade, State(state): State<AppState>) -> Response {
    let max = state.0.cfg.ws_max_message_bytes;
    ws.max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(READ_BUFFER_BYTES)
        .on_upgrade(move |socket| run(socket, state))
}

fn text(msg: &ServerMsg) -> Message {
    Message::Text(Utf8Bytes::from(encode_server(msg)))
}

fn error(code: ErrorCode, message: &str, in_reply_to: Option<&str>) -> ServerMsg {
    ServerMsg::Error {
        code,
        message: message.to_owned(),
        in_reply_to: in_reply_to.map(str::to_owned),
    }
}

async fn close_with(socket: &mut WebSocket, msg: ServerMsg) {
    close_as(socket, msg, 1008, "login failed").await;
}

/// Sends `msg`, then a close frame with `code` and `reason`.
async fn close_as<S>(sink: &mut S, msg: ServerMsg, code: u16, reason: &'static str)
where
    S: futures_util::Sink<Message> + Unpin,
{
    let _ = sink.send(text(&msg)).await;
    let _ = sink
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        })))
        .await;
}

/// Whether a read error is a message or frame above `ws_max_message_bytes`.
fn too_big(e: axum::Error) -> bool {
    matches!(
        e.into_inner().downcast_ref::<tungstenite::Error>(),
        Some(tungstenite::Error::Capacity(_))
    )
}

/// Closes a socket whose read failed: a message above the size limit hears why.
async fn read_failed<S>(sink: &mut S, state: &AppState, e: axum::Error)
where
    S: futures_util::Sink<Message> + Unpin,
{
    if too_big(e) {
        state.0.ws_counters.too_big();
        let max = state.0.cfg.ws_max_message_bytes;
        close_as(
            sink,
            error(
                ErrorCode::MessageTooBig,
                &format!("messages are limited to {max} bytes"),
                None,
            ),
            1009,
            "message too big",
        )
        .await;
    }
}

/// How long a socket closed for flooding is still read (and what it sends thrown away) so
/// that it hears the close instead of a reset.
const LINGER: Duration = Duration::from_secs(1);

/// Reads and drops what a closed socket still sends, until its close, its end, or
/// [`LINGER`].
async fn linger<R>(stream: &mut R)
where
    R: futures_util::Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    let _ = tokio::time::timeout(LINGER, async {
        while let Some(Ok(m)) = stream.next().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// Takes one message from the socket's budget; past it, the socket hears why and is closed
/// (`false`; the caller then [`linger`]s).
async fn within_budget<S>(sink: &mut S, state: &AppState, budget: &mut FrameBudget) -> bool
where
    S: futures_util::Sink<Message> + Unpin,
{
    if budget.take(Instant::now()) {
        return true;
    }
    state.0.ws_counters.rate_limited();
    close_as(
        sink,
        error(
            ErrorCode::RateLimited,
            "too many messages on this socket",
            None,
        ),
        1008,
        "rate limit exceeded",
    )
    .await;
    false
}

/// Waits for the login frame; `None` if the socket was closed or refused.
async fn login(
    socket: &mut WebSocket,
    state: &AppState,
    budget: &mut FrameBudget,
) -> Option<(
    crate::ids::AccountId,
    crate::ids::PartnerId,
    crate::protocol::ClientKind,
)> {
    let deadline = tokio::time::Instant::now() + state.0.cfg.login_timeout;
    loop {
        let frame = match tokio::time::timeout_at(deadline, socket.recv()).await {
            Err(_) => {
                state.0.ws_counters.login_timeout();
                close_with(
                    socket,
                    error(ErrorCode::LoginTimeout, "no login in time", None),
                )
                .await;
                return None;
            }
            Ok(None) => return None,
            Ok(Some(Err(e))) => {
                read_failed(socket, state, e).await;
                return None;
            }
            Ok(Some(Ok(f))) => f,
        };
        if !within_budget(socket, state, budget).await {
            linger(socket).await;
            return None;
        }
        let t = match frame {
            Message::Text(t) => t,
            Message::Ping(_) | Message::Pong(_) => continue,
            Message::Close(_) => return None,
            Message::Binary(_) => {
                close_with(
                    socket,
                    error(ErrorCode::BinaryNotSupported, "send text frames", None),
                )
                .await;
                return None;
            }
        };
        let (token, client) = match decode_client(t.as_str()) {
            Ok(ClientMsg::Login { token, client }) => (token, client),
            Ok(_) => {
                close_with(
                    socket,
                    error(
                        ErrorCode::NotLoggedIn,
                        "the first message must be login",
                        None,
                    ),
                )
                .await;
                return None;
            }
            Err(e) => {
                close_with(socket, e.to_msg()).await;
                return None;
            }
        };
        let claims = match state.0.verify_token(&token).await {
            Ok(c) => c,
            Err(e) => {
                let code = match e {
                    TokenError::Expired => ErrorCode::TokenExpired,
                    _ => ErrorCode::InvalidToken,
                };
                close_with(socket, error(code, &e.to_string(), Some("login"))).await;
                return None;
            }
        };
        return match state.0.store.live_account_partner(&claims.account).await {
            Ok(Some(partner)) => Some((claims.account, partner, client)),
            Ok(None) => {
                close_with(
                    socket,
                    error(
                        ErrorCode::AccountUnavailable,
                        "the account was deleted or its partner revoked",
                        Some("login"),
                    ),
                )
                .await;
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "login lookup failed");
                close_with(
                    socket,
                    error(ErrorCode::Overloaded, "try again later", Some("login")),
                )
                .await;
                None
            }
        };
    }
}

async fn run(mut socket: WebSocket, state: AppState) {
    let mut budget = FrameBudget::new(
        state.0.cfg.ws_rate_limit_per_second,
        state.0.cfg.ws_rate_limit_burst,
        Instant::now(),
    );
    let Some((account, partner, client)) = login(&mut socket, &state, &mut budget).await else {
        return;
    };
    let hub = state.0.hub.clone();
    let (tx, mut rx) = mpsc::channel(hub::QUEUE);
    let keepalive = state
        .0
        .cfg
        .keepalive_interval
        .max(Duration::from_millis(50));
    let ep = hub.attach_as(account.clone(), partner, client, tx);
    let (mut sink, mut stream) = socket.split();
    let ok = ServerMsg::LoginOk {
        endpoint_id: ep.clone(),
        account_id: account,
        keepalive_seconds: keepalive.as_secs().max(1),
        nodes: state
            .0
            .placement
            .get()
            .map(|p| p.ws_urls())
            .unwrap_or_default(),
    };
    if sink.send(text(&ok)).await.is_err() {
        hub.detach(&ep);
        return;
    }
    let mut last_seen = Instant::now();
    let mut ping = tokio::time::interval(keepalive);
    ping.tick().await;
    loop {
        tokio::select! {
            frame = stream.next() => {
                let frame = match frame {
                    None => break,
                    Some(Err(e)) => {
                        read_failed(&mut sink, &state, e).await;
                        break;
                    }
                    Some(Ok(f)) => f,
                };
                if !within_budget(&mut sink, &state, &mut budget).await {
                    linger(&mut stream).await;
                    break;
                }
                last_seen = Instant::now();
                let reply = match frame {
                    Message::Text(t) => match decode_client(t.as_str()) {
                        Err(e) => Some(e.to_msg()),
                        Ok(ClientMsg::Login { .. }) => Some(error(
                            ErrorCode::AlreadyLoggedIn,
                            "already logged in",
                            Some("login"),
                        )),
                        Ok(ClientMsg::Ping { nonce }) => Some(ServerMsg::Pong { nonce }),
                        Ok(msg) => {
                            let ty = msg.type_name();
                            hub.handle(&ep, msg, Instant::now())
                                .err()
                                .map(|e| error(e.code, &e.message, Some(ty)))
                        }
                    },
                    Message::Binary(_) => Some(error(
                        ErrorCode::BinaryNotSupported,
                        "send text frames",
                        None,
                    )),
                    Message::Ping(_) | Message::Pong(_) => None,
                    Message::Close(_) => break,
                };
                if let Some(reply) = reply
                    && sink.send(text(&reply)).await.is_err()
                {
                    break;
                }
            }
            out = rx.recv() => {
                match out {
                    Some(msg) => {
                        if sink.send(text(&msg)).await.is_err() {
                            break;
                        }
                    }
                    None => {
                        // The hub shed this endpoint (queue full, or its account deleted).
                        let _ = sink
                            .send(Message::Close(Some(CloseFrame {
                                code: 1008,
                                reason: Utf8Bytes::from_static("closed by the server"),
                            })))
                            .await;
                        break;
                    }
                }
            }
            _ = ping.tick() => {
                if last_seen.elapsed() > keepalive * 2 {
                    break;
                }
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
            }
        }
    }
    hub.detach(&ep);
}
