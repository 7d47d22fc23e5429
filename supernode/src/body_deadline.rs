//! The request-body deadline: a body must arrive whole within `body_timeout_seconds` of the
//! request's headers, whatever pace it comes at (a client dribbling a byte a second is cut
//! off like a silent one).
//!
//! [`body_deadline`] is an axum middleware over the whole app: it reads the body (at most
//! `body_limit_bytes`) under the deadline and hands the handlers a complete one. Past the
//! deadline the answer is `408 body_timeout` with `Connection: close`; a body above the limit
//! is `413 payload_too_large`; a body that breaks off is `400 bad_request` — all in the JSON
//! error shape.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::LengthLimitError;
use supernode_signaling::http::error::ApiError;

/// What [`body_deadline`] enforces.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Time a body has to arrive whole.
    pub timeout: Duration,
    /// Largest body.
    pub max_bytes: usize,
}

/// Reads the request body under the deadline and the size limit (see the module docs).
pub async fn body_deadline(State(limits): State<BodyLimits>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let read = axum::body::to_bytes(body, limits.max_bytes);
    let bytes = match tokio::time::timeout(limits.timeout, read).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.downcast_ref::<LengthLimitError>().is_some())
                || e.into_inner().downcast_ref::<LengthLimitError>().is_some();
            return if too_large {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "request body is too large",
                )
                .into_response()
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "the request body broke off",
                )
                .into_response()
            };
        }
        Err(_) => {
            tracing::debug!(path = %parts.uri.path(), "request body too slow");
            let mut resp = ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!(
                    "the request body did not arrive within {} s",
                    limits.timeout.as_secs()
                ),
            )
            .into_response();
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return resp;
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}
