//! `POST /v1/accounts/{id}/credentials`: a short-lived login token for an account.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, AuthPartner};
use crate::ids::AccountId;
use crate::state::AppState;
use crate::timefmt::{rfc3339, unix_now};
use crate::turn::IceServer;

/// The largest TTL the API accepts at all (a server may be configured lower).
pub const MAX_TTL_SECONDS: i64 = 86_400;

/// Body of `POST /v1/accounts/{id}/credentials`: a JSON object; unknown fields are `422`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct CreateCredential {
    /// Lifetime of the token in seconds (default 3600).
    #[schema(minimum = 1, maximum = 86400)]
    #[serde(default, deserialize_with = "integer")]
    pub ttl_seconds: Option<i64>,
}

crate::deserialize_object_only!(CreateCredential, "a credential request object");

/// JSON Schema's `integer` is a mathematical integer: `36.0` is one, `36.5` is not.
fn integer<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let n = Option::<serde_json::Number>::deserialize(d)?;
    let Some(n) = n else { return Ok(None) };
    if let Some(i) = n.as_i64() {
        return Ok(Some(i));
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(f as i64)),
        // Integral but outside i64: out of any allowed range, report it as such.
        Some(f) if f.fract() == 0.0 => Ok(Some(if f > 0.0 { i64::MAX } else { i64::MIN })),
        _ => Err(serde::de::Error::custom("ttl_seconds must be an integer")),
    }
}

/// A login credential for the WebSocket.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CredentialBody {
    /// The signed token (send it in the WebSocket `login` message).
    pub token: String,
    /// When it stops working, RFC 3339.
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// Where to connect.
    pub ws_url: String,
    /// TURN servers for a browser's `RTCPeerConnection` (`iceServers`), with TURN-REST
    /// credentials valid as long as the token; empty when the supernode has none configured.
    /// Always sent (required in the OpenAPI document).
    pub ice_servers: Vec<IceServer>,
}

/// Issues a login credential for one of this partner's accounts.
#[utoipa::path(
    post,
    path = "/v1/accounts/{id}/credentials",
    tag = "credentials",
    params(("id" = String, Path, description = "Account id")),
    request_body = CreateCredential,
    security(("api_key" = [])),
    responses(
        (status = 201, description = "Issued", body = CredentialBody),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such account for this partner", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 422, description = "Invalid fields", body = ErrorBody),
        (status = 429, description = "Rate limit of the API key exceeded", body = ErrorBody),
    )
)]
pub async fn create_credential(
    State(state): State<AppState>,
    AuthPartner(partner): AuthPartner,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<CreateCredential>,
) -> Result<(StatusCode, Json<CredentialBody>), ApiError> {
    let s = &state.0;
    let max = (s.cfg.max_credential_ttl.as_secs() as i64).clamp(1, MAX_TTL_SECONDS);
    let ttl = req
        .ttl_seconds
        .unwrap_or(s.cfg.default_credential_ttl.as_secs() as i64);
    if !(1..=max).contains(&ttl) {
        return Err(ApiError::invalid(format!("ttl_seconds must be 1-{max}")));
    }
    let id = AccountId::parse(&id).ok_or_else(ApiError::not_found)?;
    s.store
        .get_account(&partner.id, &id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let expires_at = unix_now() + ttl;
    let token = s.keyring_sign(&id, expires_at).ok_or_else(|| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "no signing key configured",
        )
    })?;
    Ok((
        StatusCode::CREATED,
        Json(CredentialBody {
            token,
            expires_at: rfc3339(expires_at),
            ws_url: s
                .placement
                .get()
                .and_then(|p| p.ws_url())
                .unwrap_or_else(|| s.cfg.public_ws_url.clone()),
            ice_servers: s
                .cfg
                .turn
                .iter()
                .map(|t| t.ice_server(id.as_str(), expires_at))
                .collect(),
        }),
    ))
}
