//! Relay REST for trusted tools: bridge standard RTP tools (GStreamer, SIP gateways) through
//! the relay.
//!
//! * `POST /v1/relay/sessions` `{ "legs": [ { "remote"?: "IP:PORT", "srtp"?: { "profile"?:
//!   "AES_CM_128_HMAC_SHA1_80", "key": "<base64 key‖salt>" } }, … ] }` → `201`
//!   `{ "id": "rs_…", "legs": [ { "id": n, "local": "IP:PORT" } … ] }`; every leg hears every
//!   other (two legs: both directions). A leg without `remote` latches to the first peer that
//!   sends to its `local` address; one with `remote` sends there and accepts only from there.
//! * `GET /v1/relay/sessions/{id}`: statistics per leg. `DELETE`: releases it (`204`).
//!
//! Every request object is an object: an array where an object belongs (`[[null, null]]` as
//! `legs`), or an unknown field, is `422` `invalid_body` (see
//! [`supernode_signaling::http::object_only`]).
//!
//! Only API keys made with `supernode admin partner create NAME --relay` may use it (others
//! get `403` `relay_forbidden`); a session of another partner is `404`. Errors are the
//! signaling API's `{ "error": { "code", "message" } }`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::{get, post};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use supernode_relay::core::{LegSrtpKeys, LegStats, SrtpKey, SrtpProfile};
use supernode_relay::{LegRequest, SessionId};
use supernode_signaling::http::error::{ApiError, ErrorBody};
use supernode_signaling::http::extract::{self, ApiJson};
use supernode_signaling::ratelimit::RateLimiter;
use supernode_signaling::storage::Partner;
use supernode_signaling::{RelayAccessError, Store};
use utoipa::{OpenApi, ToSchema};

use crate::relay_host::{HostRelay, Owner};

/// Most legs in one session.
pub const MAX_LEGS: usize = 16;

/// State of the relay REST handlers.
#[derive(Clone)]
pub struct RelayRest {
    /// Where API keys are checked.
    pub store: Store,
    /// The relay.
    pub relay: Arc<HostRelay>,
    /// Per-key rate limit.
    pub limiter: Arc<RateLimiter>,
}

/// The routes.
pub fn router(state: RelayRest) -> Router {
    Router::new()
        .route("/v1/relay/sessions", post(create_session))
        .route(
            "/v1/relay/sessions/{id}",
            get(get_session).delete(delete_session),
        )
        .with_state(state)
}

/// The OpenAPI part of these routes (merged into `/v1/openapi.json`).
#[derive(OpenApi)]
#[openapi(
    paths(create_session, get_session, delete_session),
    tags((name = "relay", description = "Relay sessions for trusted RTP tools (keys made with --relay)"))
)]
pub struct RelayApiDoc;

/// A partner whose key may use the relay REST API.
struct RelayPartner(Partner);

impl FromRequestParts<RelayRest> for RelayPartner {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &RelayRest) -> Result<Self, ApiError> {
        let partner = extract::authenticate(parts, &st.store).await?;
        if !partner.relay {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "relay_forbidden",
                "this API key may not use the relay API (create it with --relay)",
            ));
        }
        extract::rate_limit(&st.limiter, &partner, Instant::now())?;
        Ok(Self(partner))
    }
}

/// SRTP keying of one leg (the same key in both directions).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct SrtpSpec {
    /// `AES_CM_128_HMAC_SHA1_80` (default) or `AEAD_AES_128_GCM`.
    pub profile: Option<String>,
    /// Master key followed by master salt, base64 (30 bytes for AES-CM, 28 for GCM).
    pub key: String,
}

supernode_signaling::deserialize_object_only!(SrtpSpec, "an srtp object");

/// One leg asked for.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct LegSpecBody {
    /// Where the relay sends this leg's media (`IP:PORT`); absent: latch to the first sender.
    pub remote: Option<String>,
    /// SRTP keying; absent: plain RTP.
    pub srtp: Option<SrtpSpec>,
}

supernode_signaling::deserialize_object_only!(LegSpecBody, "a leg object");

/// Body of `POST /v1/relay/sessions`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct CreateSession {
    /// The legs (1 to 16); every leg hears every other.
    #[schema(min_items = 1, max_items = 16)]
    pub legs: Vec<LegSpecBody>,
}

supernode_signaling::deserialize_object_only!(CreateSession, "a session object");

/// A created leg.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LegBody {
    /// Leg id.
    pub id: u64,
    /// The relay's address for this leg: the peer sends here.
    pub local: String,
}

/// A created session.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionBody {
    /// Session id (`rs_…`).
    pub id: String,
    /// Its legs, in the order asked.
    pub legs: Vec<LegBody>,
}

/// Statistics of one leg.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LegStatsBody {
    /// Leg id.
    pub id: u64,
    /// The peer address the leg sends to, once known.
    pub peer: Option<String>,
    /// RTP packets accepted from the peer.
    pub rtp_in: u64,
    /// RTCP packets accepted from the peer.
    pub rtcp_in: u64,
    /// Bytes accepted from the peer.
    pub bytes_in: u64,
    /// Datagrams sent toward the peer.
    pub packets_out: u64,
    /// Bytes sent toward the peer.
    pub bytes_out: u64,
    /// Loss from the peer, percent.
    pub loss_pct: f64,
    /// Jitter from the peer, ms.
    pub jitter_ms: f64,
    /// Round-trip time to the peer, ms, once known.
    pub rtt_ms: Option<f64>,
    /// Drops by reason (only reasons with drops).
    pub drops: std::collections::BTreeMap<String, u64>,
}

/// A session's statistics.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionStatsBody {
    /// Session id.
    pub id: String,
    /// Its live legs (legs freed by the idle timeout are gone).
    pub legs: Vec<LegStatsBody>,
}

fn session_id(id: &str) -> Option<SessionId> {
    id.strip_prefix("rs_")?.parse().ok().map(SessionId)
}

fn bad(m: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", m)
}

fn leg_request(i: usize, spec: LegSpecBody) -> Result<LegRequest, ApiError> {
    let mut req = match spec.remote {
        Some(r) => {
            let addr: SocketAddr = r
                .parse()
                .map_err(|_| bad(format!("legs[{i}].remote is not IP:PORT")))?;
            if addr.port() == 0 || addr.ip().is_unspecified() {
                return Err(bad(format!("legs[{i}].remote must be a concrete address")));
            }
            LegRequest::fixed(addr)
        }
        None => LegRequest::latching(),
    };
    if let Some(s) = spec.srtp {
        let (profile, len) = match s.profile.as_deref().unwrap_or("AES_CM_128_HMAC_SHA1_80") {
            "AES_CM_128_HMAC_SHA1_80" => (SrtpProfile::Aes128CmHmacSha1_80, 30),
            "AEAD_AES_128_GCM" => (SrtpProfile::AeadAes128Gcm, 28),
            other => return Err(bad(format!("legs[{i}].srtp.profile {other:?} unsupported"))),
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(s.key.trim())
            .map_err(|_| bad(format!("legs[{i}].srtp.key is not base64")))?;
        if raw.len() != len {
            return Err(bad(format!(
                "legs[{i}].srtp.key must be {len} bytes (key then salt)"
            )));
        }
        let key = SrtpKey {
            profile,
            master_key: raw[..16].to_vec(),
            master_salt: raw[16..].to_vec(),
        };
        req.srtp = Some(LegSrtpKeys {
            inbound: key.clone(),
            outbound: key,
        });
    }
    Ok(req)
}

fn unavailable(e: RelayAccessError) -> ApiError {
    match e {
        RelayAccessError::Exhausted => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "relay_exhausted",
            "the relay has no ports left",
        ),
        other => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "relay_unavailable",
            other.to_string(),
        ),
    }
}

/// Creates a relay session whose legs all hear each other.
#[utoipa::path(
    post,
    path = "/v1/relay/sessions",
    tag = "relay",
    request_body = CreateSession,
    security(("api_key" = [])),
    responses(
        (status = 201, description = "Created", body = SessionBody),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "This key may not use the relay API", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 422, description = "Invalid fields", body = ErrorBody),
        (status = 429, description = "Rate limit of the API key exceeded", body = ErrorBody),
        (status = 503, description = "Relay draining or out of ports", body = ErrorBody),
    )
)]
async fn create_session(
    State(st): State<RelayRest>,
    RelayPartner(partner): RelayPartner,
    ApiJson(body): ApiJson<CreateSession>,
) -> Result<(StatusCode, Json<SessionBody>), ApiError> {
    if body.legs.is_empty() || body.legs.len() > MAX_LEGS {
        return Err(bad(format!("legs must hold 1 to {MAX_LEGS} legs")));
    }
    let reqs = body
        .legs
        .into_iter()
        .enumerate()
        .map(|(i, l)| leg_request(i, l))
        .collect::<Result<Vec<_>, _>>()?;
    let relay = st.relay.clone();
    let owner = partner.id.as_str().to_owned();
    let r = tokio::task::spawn_blocking(move || {
        let (session, legs) = relay.create(Owner::Rest(owner), reqs)?;
        let ids: Vec<_> = legs.iter().map(|l| l.id).collect();
        if let Err(e) = relay.relay().connect_all(&ids) {
            relay.release_session(session);
            return Err(RelayAccessError::Unavailable(e.to_string()));
        }
        Ok((session, legs))
    })
    .await
    .map_err(|_| unavailable(RelayAccessError::Unavailable("relay task failed".into())))?;
    let (session, legs) = r.map_err(unavailable)?;
    tracing::info!(session = session.0, partner = %partner.id.as_str(), legs = legs.len(), "relay session created");
    Ok((
        StatusCode::CREATED,
        Json(SessionBody {
            id: format!("rs_{}", session.0),
            legs: legs
                .iter()
                .map(|l| LegBody {
                    id: l.id.0,
                    local: l.local.to_string(),
                })
                .collect(),
        }),
    ))
}

fn owned(st: &RelayRest, partner: &Partner, id: &str) -> Result<SessionId, ApiError> {
    let session = session_id(id).ok_or_else(ApiError::not_found)?;
    match st.relay.owner(session) {
        Some(Owner::Rest(p)) if p == partner.id.as_str() => Ok(session),
        _ => Err(ApiError::not_found()),
    }
}

fn leg_body(id: u64, s: &LegStats) -> LegStatsBody {
    let c = &s.counters;
    LegStatsBody {
        id,
        peer: s.peer.map(|p| p.to_string()),
        rtp_in: c.rtp_in,
        rtcp_in: c.rtcp_in,
        bytes_in: c.bytes_in,
        packets_out: c.packets_out,
        bytes_out: c.bytes_out,
        loss_pct: s.loss_pct,
        jitter_ms: s.jitter_ms,
        rtt_ms: s.rtt.map(|d| d.as_secs_f64() * 1000.0),
        drops: supernode_relay::core::DropReason::ALL
            .iter()
            .filter(|r| c.drops_for(**r) > 0)
            .map(|r| (r.name().to_owned(), c.drops_for(*r)))
            .collect(),
    }
}

/// Statistics of each leg of a session.
#[utoipa::path(
    get,
    path = "/v1/relay/sessions/{id}",
    tag = "relay",
    params(("id" = String, Path, description = "Session id (rs_…)")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Statistics per leg", body = SessionStatsBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "This key may not use the relay API", body = ErrorBody),
        (status = 404, description = "No such session for this partner", body = ErrorBody),
        (status = 429, description = "Rate limit of the API key exceeded", body = ErrorBody),
    )
)]
async fn get_session(
    State(st): State<RelayRest>,
    RelayPartner(partner): RelayPartner,
    Path(id): Path<String>,
) -> Result<Json<SessionStatsBody>, ApiError> {
    let session = owned(&st, &partner, &id)?;
    let relay = st.relay.clone();
    let stats = tokio::task::spawn_blocking(move || relay.session_stats(session))
        .await
        .ok()
        .flatten()
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(SessionStatsBody {
        id,
        legs: stats
            .iter()
            .filter_map(|(l, s)| s.as_ref().map(|s| leg_body(l.0, s)))
            .collect(),
    }))
}

/// Releases a session and all its legs.
#[utoipa::path(
    delete,
    path = "/v1/relay/sessions/{id}",
    tag = "relay",
    params(("id" = String, Path, description = "Session id (rs_…)")),
    security(("api_key" = [])),
    responses(
        (status = 204, description = "Released"),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "This key may not use the relay API", body = ErrorBody),
        (status = 404, description = "No such session for this partner", body = ErrorBody),
        (status = 429, description = "Rate limit of the API key exceeded", body = ErrorBody),
    )
)]
async fn delete_session(
    State(st): State<RelayRest>,
    RelayPartner(partner): RelayPartner,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let session = owned(&st, &partner, &id)?;
    let relay = st.relay.clone();
    let released = tokio::task::spawn_blocking(move || relay.release_session(session))
        .await
        .unwrap_or(false);
    if released {
        tracing::info!(session = session.0, "relay session released");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}
