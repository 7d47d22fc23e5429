//! `GET /v1/ws`: one WebSocket per endpoint.
//!
//! The first frame must be `login` (within the login timeout); a bad, expired, forged or
//! revoked-account token gets a typed `error` and the socket is closed (code 1008). After
//! login every text frame is decoded ([`crate::protocol::decode_client`]); a bad frame gets a
//! typed `error` and the socket stays. The server pings every keep-alive interval and closes a
//! socket silent for two intervals. On close, the endpoint is detached from the hub, which
//! ends the calls it took part in.

pub use crate::calls::hub;

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;

use crate::protocol::{ClientMsg, ErrorCode, ServerMsg, decode_client, encode_server};
use crate::state::AppState;
use crate::token::TokenError;

/// Upgrades to the signaling WebSocket.
pub async fn ws_handler(ws: WebSocketUpgrade, State(state): State<AppState>) -> Response {
    let max = state.0.cfg.ws_max_message_bytes;
    ws.max_message_size(max)
        .max_frame_size(max)
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
    let _ = socket.send(text(&msg)).await;
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: 1008,
            reason: Utf8Bytes::from_static("login failed"),
        })))
        .await;
}

/// Waits for the login frame; `None` if the socket was closed or refused.
async fn login(
    socket: &mut WebSocket,
    state: &AppState,
) -> Option<(crate::ids::AccountId, crate::ids::PartnerId)> {
    let deadline = tokio::time::Instant::now() + state.0.cfg.login_timeout;
    loop {
        let frame = match tokio::time::timeout_at(deadline, socket.recv()).await {
            Err(_) => {
                close_with(
                    socket,
                    error(ErrorCode::LoginTimeout, "no login in time", None),
                )
                .await;
                return None;
            }
            Ok(None | Some(Err(_))) => return None,
            Ok(Some(Ok(f))) => f,
        };
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
        let token = match decode_client(t.as_str()) {
            Ok(ClientMsg::Login { token }) => token,
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
            Ok(Some(partner)) => Some((claims.account, partner)),
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
    let Some((account, partner)) = login(&mut socket, &state).await else {
        return;
    };
    let hub = state.0.hub.clone();
    let (tx, mut rx) = mpsc::channel(hub::QUEUE);
    let keepalive = state
        .0
        .cfg
        .keepalive_interval
        .max(Duration::from_millis(50));
    let ep = hub.attach(account.clone(), partner, tx);
    let (mut sink, mut stream) = socket.split();
    let ok = ServerMsg::LoginOk {
        endpoint_id: ep.clone(),
        account_id: account,
        keepalive_seconds: keepalive.as_secs().max(1),
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
                let Some(Ok(frame)) = frame else { break };
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
