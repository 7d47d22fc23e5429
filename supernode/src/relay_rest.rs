//! Relay REST for trusted tools: bridge standard RTP tools (GStreamer, SIP gateways) through
//! the relay.
//!
//! * `POST /v1/relay/sessions` `{ "legs": [ { "remote"?: "IPv4:PORT", "srtp"?: { "profile"?:
//!   "AES_CM_128_HMAC_SHA1_80", "key": "<base64 key‖salt>" } }, … ] }` → `201`
//!   `{ "id": "rs_…", "legs": [ { "id": n, "local": "IP:PORT" } … ] }`; every leg hears every
//!   other (two legs: both directions). A leg without `remote` latches to the first peer that
//!   sends to its `local` address; one with `remote` sends there and accepts only from there.
//! * `GET /v1/relay/sessions/{id}`: statistics per leg. `DELETE`: releases it (`204`).
//!
//! `remote` is IPv4 (written as Rust prints it, first octet 1–255, port 1–65535; a relay
//! bound to IPv6 gets only latching legs through this API, which is not done yet); the
//! key is standard base64 with padding. The OpenAPI schema states exactly these rules
//! (patterns, and `oneOf` for the profile/key-length pair), so a schema-valid body is only
//! refused for want of ports (`503`).
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
use supernode_proto::relay_ops::RelayOpError;
use supernode_relay::core::{LegSrtpKeys, LegStats, SrtpKey, SrtpProfile};
use supernode_relay::{LegRequest, SessionId};
use supernode_signaling::Store;
use supernode_signaling::http::error::{ApiError, ErrorBody};
use supernode_signaling::http::extract::{self, ApiJson};
use supernode_signaling::ratelimit::RateLimiter;
use supernode_signaling::storage::Partner;
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
        relay_partner(parts, &st.store, &st.limiter).await.map(Self)
    }
}

/// The partner behind the request's API key if it is a relay key (`--relay`), after its
/// rate-limit check: else `401` (no or a wrong key), `403` `relay_forbidden`, `429`.
pub(crate) async fn relay_partner(
    parts: &Parts,
    store: &Store,
    limiter: &RateLimiter,
) -> Result<Partner, ApiError> {
    let partner = extract::authenticate(parts, store).await?;
    if !partner.relay {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "relay_forbidden",
            "this API key may not use the relay API (create it with --relay)",
        ));
    }
    extract::rate_limit(limiter, &partner, Instant::now())?;
    Ok(partner)
}

/// The SRTP profile names the relay REST API takes.
pub const PROFILE_AES_CM: &str = "AES_CM_128_HMAC_SHA1_80";
/// See [`PROFILE_AES_CM`].
pub const PROFILE_AEAD_GCM: &str = "AEAD_AES_128_GCM";
/// Standard base64 (with padding) of 30 bytes: AES-CM's 16-byte key and 14-byte salt.
pub const KEY_30_PATTERN: &str = "^[A-Za-z0-9+/]{40}$";
/// Standard base64 of 28 bytes (GCM's 16-byte key and 12-byte salt): the last byte leaves
/// four zero bits in the 38th character, then `==`.
pub const KEY_28_PATTERN: &str = "^[A-Za-z0-9+/]{37}[AQgw]==$";

/// SRTP keying of one leg (the same key in both directions).
///
/// Its OpenAPI schema is written by hand (`oneOf` two objects) because the key's length
/// depends on the profile: absent, `null` or `AES_CM_128_HMAC_SHA1_80` with a 30-byte key,
/// or `AEAD_AES_128_GCM` with a 28-byte key.
#[derive(Debug, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct SrtpSpec {
    /// `AES_CM_128_HMAC_SHA1_80` (default) or `AEAD_AES_128_GCM`.
    pub profile: Option<String>,
    /// Master key followed by master salt, standard base64 with padding (30 bytes for
    /// AES-CM, 28 for GCM).
    pub key: String,
}

impl utoipa::PartialSchema for SrtpSpec {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, Object, OneOf, SchemaType, Type};
        let variant = |profiles: &[Option<&str>], nullable: bool, key_pattern: &str| {
            let profile = Object::builder()
                .schema_type(if nullable {
                    [Type::String, Type::Null]
                        .into_iter()
                        .collect::<SchemaType>()
                } else {
                    SchemaType::new(Type::String)
                })
                .enum_values(Some(profiles.iter().map(|p| match p {
                    Some(p) => serde_json::Value::from(*p),
                    None => serde_json::Value::Null,
                })))
                .description(Some(if nullable {
                    "SRTP protection profile (absent or null: AES_CM_128_HMAC_SHA1_80)"
                } else {
                    "SRTP protection profile"
                }));
            let key = Object::builder()
                .schema_type(Type::String)
                .pattern(Some(key_pattern))
                .description(Some(
                    "Master key followed by master salt, standard base64 with padding",
                ));
            let mut o = Object::builder()
                .schema_type(Type::Object)
                .property("profile", profile)
                .property("key", key)
                .required("key")
                .additional_properties(Some(AdditionalProperties::FreeForm(false)));
            if !nullable {
                o = o.required("profile");
            }
            o.build()
        };
        OneOf::builder()
            .item(variant(&[Some(PROFILE_AES_CM), None], true, KEY_30_PATTERN))
            .item(variant(&[Some(PROFILE_AEAD_GCM)], false, KEY_28_PATTERN))
            .description(Some(
                "SRTP keying of one leg (the same key in both directions)",
            ))
            .into()
    }
}

impl ToSchema for SrtpSpec {}

supernode_signaling::deserialize_object_only!(SrtpSpec, "an srtp object");

/// One leg asked for.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct LegSpecBody {
    /// Where the relay sends this leg's media (`IPv4:PORT`); absent or null: latch to the
    /// first sender.
    // `IPv4:PORT` as Rust prints a socket address (no leading zeros), first octet 1–255,
    // port 1–65535: exactly the values `leg_request` takes (a test checks).
    #[schema(
        pattern = "^(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9][0-9]?)\\.((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\\.){2}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9]):([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$"
    )]
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
    /// The relay's address for this leg: the peer sends here (`relay_public_ip` when set,
    /// at the leg's port).
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
                .map_err(|_| bad(format!("legs[{i}].remote is not IPv4:PORT")))?;
            // Exactly the schema's pattern: canonical IPv4 (the relay's sockets are IPv4),
            // a first octet that is not 0 (0.0.0.0/8 is no destination), a port that is not 0.
            let concrete = match addr {
                SocketAddr::V4(a) => a.ip().octets()[0] != 0 && a.port() != 0,
                SocketAddr::V6(_) => false,
            };
            if !concrete || addr.to_string() != r {
                return Err(bad(format!(
                    "legs[{i}].remote must be a concrete IPv4:PORT written canonically"
                )));
            }
            LegRequest::fixed(addr)
        }
        None => LegRequest::latching(),
    };
    if let Some(s) = spec.srtp {
        let (profile, len) = match s.profile.as_deref().unwrap_or(PROFILE_AES_CM) {
            PROFILE_AES_CM => (SrtpProfile::Aes128CmHmacSha1_80, 30),
            PROFILE_AEAD_GCM => (SrtpProfile::AeadAes128Gcm, 28),
            other => return Err(bad(format!("legs[{i}].srtp.profile {other:?} unsupported"))),
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&s.key)
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

fn unavailable(e: RelayOpError) -> ApiError {
    match e {
        RelayOpError::Exhausted => ApiError::new(
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
            return Err(RelayOpError::Unavailable(e.to_string()));
        }
        Ok((session, legs))
    })
    .await
    .map_err(|_| unavailable(RelayOpError::Unavailable("relay task failed".into())))?;
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
                    local: st.relay.announced(l.local).to_string(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::PartialSchema;

    fn schema_json<T: PartialSchema>() -> serde_json::Value {
        serde_json::to_value(T::schema()).unwrap()
    }

    fn regex(pattern: &serde_json::Value) -> regex::Regex {
        regex::Regex::new(pattern.as_str().unwrap()).unwrap()
    }

    #[test]
    fn the_remote_pattern_is_exactly_what_the_server_takes() {
        let re = regex(&schema_json::<LegSpecBody>()["properties"]["remote"]["pattern"]);
        let ips = [
            "1.2.3.4",
            "127.0.0.1",
            "255.255.255.255",
            "9.99.199.249",
            "0.1.2.3",
            "0.0.0.0",
            "01.2.3.4",
            "1.2.3.04",
            "256.1.1.1",
            "1.2.3.300",
            "10.0.0",
            "::1",
            "[::1]",
            "[::ffff:1.2.3.4]",
            " 1.2.3.4",
            "1.2.3.4 ",
            "a.b.c.d",
        ];
        let ports = [
            "1", "80", "9999", "10000", "65535", "65536", "99999", "09", "0", "", "+5", "-1",
        ];
        let mut accepted = 0;
        for ip in ips {
            for port in ports {
                let r = format!("{ip}:{port}");
                let spec = LegSpecBody {
                    remote: Some(r.clone()),
                    srtp: None,
                };
                let server = leg_request(0, spec).is_ok();
                assert_eq!(re.is_match(&r), server, "{r:?}: schema vs server");
                accepted += usize::from(server);
            }
        }
        assert_eq!(accepted, 4 * 5, "four good addresses times five good ports");
    }

    #[test]
    fn the_srtp_schema_is_exactly_what_the_server_takes() {
        let doc = schema_json::<SrtpSpec>();
        let variants = doc["oneOf"].as_array().unwrap();
        assert_eq!(variants.len(), 2);
        for v in variants {
            assert_eq!(v["additionalProperties"], false);
            assert_eq!(v["type"], "object");
        }
        let (cm, gcm) = (&variants[0], &variants[1]);
        assert_eq!(
            cm["properties"]["profile"]["enum"],
            serde_json::json!([PROFILE_AES_CM, null])
        );
        assert_eq!(
            gcm["properties"]["profile"]["enum"],
            serde_json::json!([PROFILE_AEAD_GCM])
        );
        let (re30, re28) = (
            regex(&cm["properties"]["key"]["pattern"]),
            regex(&gcm["properties"]["key"]["pattern"]),
        );
        let b64 = base64::engine::general_purpose::STANDARD;
        let nopad = base64::engine::general_purpose::STANDARD_NO_PAD;
        let mut keys = Vec::new();
        for len in 26..=32u8 {
            let bytes: Vec<u8> = (0..len)
                .map(|i| i.wrapping_mul(37).wrapping_add(len))
                .collect();
            let k = b64.encode(&bytes);
            keys.push(k.clone());
            keys.push(nopad.encode(&bytes));
            keys.push(format!("{k} "));
            keys.push(format!(" {k}"));
            // Non-canonical trailing bits: the last data character moved off its grid.
            let t = k.trim_end_matches('=');
            if t.len() < k.len() {
                let mut c: Vec<char> = k.chars().collect();
                let last = t.len() - 1;
                c[last] = if c[last] == 'B' { 'C' } else { 'B' };
                keys.push(c.into_iter().collect());
            }
            keys.push(k.replace('A', "-"));
        }
        let mut accepted = 0;
        for profile in [None, Some(PROFILE_AES_CM), Some(PROFILE_AEAD_GCM), Some("")] {
            for key in &keys {
                let schema = match profile {
                    None | Some(PROFILE_AES_CM) => re30.is_match(key),
                    Some(PROFILE_AEAD_GCM) => re28.is_match(key),
                    Some(_) => false,
                };
                let spec = LegSpecBody {
                    remote: None,
                    srtp: Some(SrtpSpec {
                        profile: profile.map(str::to_owned),
                        key: key.clone(),
                    }),
                };
                let server = leg_request(0, spec).is_ok();
                assert_eq!(schema, server, "{profile:?} {key:?}: schema vs server");
                accepted += usize::from(server);
            }
        }
        assert!(accepted >= 3, "some keys are good: {accepted}");
    }
}
