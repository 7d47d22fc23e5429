//! WHIP (RFC 9725) and WHEP for tools: OBS, GStreamer, ffmpeg publish a stream, browsers and
//! players watch it, through the relay's browser transports (ICE-lite, DTLS-SRTP), SFU style
//! (forwarded, never transcoded).
//!
//! * `POST /v1/whip/{stream}`, `Authorization: Bearer KEY` (a key made with `--relay`),
//!   `Content-Type: application/sdp`, body = the publisher's offer → `201`, `Location:
//!   /v1/whip/{stream}/{resource}`, `Content-Type: application/sdp`, body = the answer
//!   (ICE-lite, `a=setup:passive`, the relay's host candidate, `a=end-of-candidates`: no
//!   trickle needed, `PATCH` is `405`). A stream has one publisher: a second is `409`.
//! * `POST /v1/whep/{stream}` likewise with a recvonly offer: the viewer is subscribed to the
//!   stream's publisher (now, or when one comes); once the viewer's DTLS-SRTP is keyed the
//!   relay asks the publisher for a keyframe (PLI), so every new viewer starts decoding at
//!   once. A viewer may come before the publisher.
//! * `DELETE` on a `Location` ends that publisher or viewer (`200`); a second `DELETE` is
//!   `404`. A stream whose last publisher and viewer are gone is released.
//!
//! No key or a wrong key: `401`; a key without `--relay`: `403`; not `application/sdp`:
//! `415`; an offer that is malformed or has nothing the supernode serves (Opus, H.264
//! packetization-mode 1 in the delivered profile): `400` `invalid_sdp` naming the line or the
//! m-lines. Errors are the API's JSON `{ "error": { "code", "message" } }`.
//!
//! Streams are per partner (two partners' `cam1` are two streams). One stream is one relay
//! session ([`Owner::Whip`]) on one worker: every leg of it is on that worker's shared port.
//! The offer is checked and answered by signaling's answerer
//! ([`supernode_signaling::calls::browser::CheckedOffer`], the same steps as a browser's call).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use supernode_proto::ids::TransportId;
use supernode_proto::relay_ops::{RelayOpError, TransportGrant};
use supernode_relay::{LegId, SessionId};
use supernode_signaling::Store;
use supernode_signaling::calls::browser::CheckedOffer;
use supernode_signaling::http::error::{ApiError, ErrorBody};
use supernode_signaling::ratelimit::RateLimiter;
use supernode_signaling::sdp::MediaPolicy;
use utoipa::OpenApi;

use crate::relay_host::{HostRelay, Owner};

/// Longest stream name.
pub const MAX_STREAM_NAME: usize = 64;

/// State of the WHIP/WHEP handlers.
#[derive(Clone)]
pub struct Whip {
    /// Where API keys are checked.
    pub store: Store,
    /// The relay.
    pub relay: Arc<HostRelay>,
    /// Per-key rate limit.
    pub limiter: Arc<RateLimiter>,
    /// What the answers offer (codecs, H.264 profile, transport-cc).
    pub policy: MediaPolicy,
    /// `relay_public_ip`, announced first in the answers' candidates.
    pub public_ip: Option<IpAddr>,
    streams: Arc<Mutex<Streams>>,
}

impl Whip {
    /// Handlers over `relay`, checking keys in `store`.
    pub fn new(store: Store, relay: Arc<HostRelay>, limiter: Arc<RateLimiter>) -> Self {
        Self {
            store,
            relay,
            limiter,
            policy: MediaPolicy::default(),
            public_ip: None,
            streams: Arc::default(),
        }
    }
}

/// Which side of a stream a resource is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Publisher,
    Viewer,
}

impl Role {
    fn path(self) -> &'static str {
        match self {
            Role::Publisher => "whip",
            Role::Viewer => "whep",
        }
    }
}

/// One stream: its relay session, publisher and viewers (resource id, leg).
#[derive(Debug)]
struct StreamEntry {
    session: SessionId,
    publisher: Option<(String, LegId)>,
    viewers: Vec<(String, LegId)>,
}

/// A publisher or viewer, by its resource id.
#[derive(Debug)]
struct Resource {
    partner: String,
    stream: String,
    role: Role,
    leg: LegId,
}

/// Every live stream (by partner and name) and resource.
#[derive(Debug, Default)]
struct Streams {
    streams: HashMap<(String, String), StreamEntry>,
    resources: HashMap<String, Resource>,
}

/// The routes.
pub fn router(state: Whip) -> Router {
    Router::new()
        .route("/v1/whip/{stream}", post(publish))
        .route("/v1/whip/{stream}/{resource}", delete(end_publish))
        .route("/v1/whep/{stream}", post(view))
        .route("/v1/whep/{stream}/{resource}", delete(end_view))
        .with_state(state)
}

/// The OpenAPI part of these routes (merged into `/v1/openapi.json`).
#[derive(OpenApi)]
#[openapi(
    paths(publish, end_publish, view, end_view),
    tags((name = "whip", description = "WHIP publishing and WHEP playback (keys made with --relay)"))
)]
pub struct WhipApiDoc;

/// A partner whose key may use WHIP/WHEP (the relay keys).
struct WhipPartner(String);

impl FromRequestParts<Whip> for WhipPartner {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &Whip) -> Result<Self, ApiError> {
        let p = crate::relay_rest::relay_partner(parts, &st.store, &st.limiter).await?;
        Ok(Self(p.id.as_str().to_owned()))
    }
}

fn invalid_sdp(m: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_sdp", m)
}

fn unavailable(e: RelayOpError) -> ApiError {
    match e {
        RelayOpError::Exhausted => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "relay_exhausted",
            "the relay has no room left",
        ),
        RelayOpError::Draining => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "relay_draining",
            "the relay is draining",
        ),
        other => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "relay_unavailable",
            other.to_string(),
        ),
    }
}

/// A stream name: 1 to 64 of `A-Z a-z 0-9 _ . ~ -` (the OpenAPI pattern).
fn check_stream(stream: &str) -> Result<(), ApiError> {
    let ok = !stream.is_empty()
        && stream.len() <= MAX_STREAM_NAME
        && stream
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'~' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_stream",
            format!("a stream name is 1 to {MAX_STREAM_NAME} of A-Z a-z 0-9 _ . ~ -"),
        ))
    }
}

/// The offer's text, if the request is `application/sdp`.
fn offer_text<'a>(headers: &HeaderMap, body: &'a Bytes) -> Result<&'a str, ApiError> {
    let sdp = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/sdp"));
    if !sdp {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected Content-Type: application/sdp",
        ));
    }
    std::str::from_utf8(body).map_err(|_| invalid_sdp("the offer is not UTF-8"))
}

/// Checks the offer, adds its leg to the stream and answers it.
async fn join(
    st: Whip,
    partner: String,
    stream: String,
    role: Role,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_stream(&stream)?;
    let sdp = offer_text(&headers, &body)?;
    let checked = CheckedOffer::check(sdp, &st.policy).map_err(|e| invalid_sdp(e.message))?;
    let transport = TransportId::random();
    let offer = checked.relay_offer(&transport, &st.policy);
    let resource = transport.as_str().to_owned();
    let (relay, streams) = (st.relay.clone(), st.streams.clone());
    let (p, s, r) = (partner.clone(), stream.clone(), resource.clone());
    let (leg, grant) = tokio::task::spawn_blocking(move || {
        let mut all = streams.lock().unwrap_or_else(|e| e.into_inner());
        add(&relay, &mut all, p, s, r, role, &offer)
    })
    .await
    .map_err(|_| unavailable(RelayOpError::Unavailable("relay task failed".into())))??;
    let grant = TransportGrant {
        transport,
        address: grant.candidates[0].address.clone(),
        srtp: None,
        browser: Some(grant),
    };
    let answer = match checked.answer(&grant, st.public_ip, &st.policy) {
        Ok(a) => a,
        Err(e) => {
            remove(&st, &partner, &stream, &resource, role).await;
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                e,
            ));
        }
    };
    tracing::info!(partner = %partner, stream = %stream, leg = leg.0, role = role.path(), "WHIP/WHEP resource created");
    let location = format!("/v1/{}/{stream}/{resource}", role.path());
    let mut resp = (StatusCode::CREATED, answer).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/sdp"),
    );
    if let Ok(v) = HeaderValue::from_str(&location) {
        h.insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// Adds a publisher or viewer leg to the stream (made when missing) and routes it. Blocking.
fn add(
    relay: &HostRelay,
    all: &mut Streams,
    partner: String,
    stream: String,
    resource: String,
    role: Role,
    offer: &supernode_proto::relay_ops::BrowserOffer,
) -> Result<(LegId, supernode_proto::relay_ops::BrowserGrant), ApiError> {
    let key = (partner.clone(), stream.clone());
    // A stream whose session the idle timeout freed starts over.
    if let Some(e) = all.streams.get(&key)
        && relay.owner(e.session).is_none()
    {
        let gone = all.streams.remove(&key);
        all.resources
            .retain(|_, r| !(r.partner == partner && r.stream == stream));
        drop(gone);
    }
    let entry = match all.streams.get_mut(&key) {
        Some(e) => e,
        None => {
            let (session, _) = relay
                .create(Owner::Whip(partner.clone()), Vec::new())
                .map_err(unavailable)?;
            all.streams.entry(key.clone()).or_insert(StreamEntry {
                session,
                publisher: None,
                viewers: Vec::new(),
            })
        }
    };
    if role == Role::Publisher && entry.publisher.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "stream_busy",
            "this stream has a publisher (DELETE its resource first)",
        ));
    }
    let (leg, grant) = match relay.add_browser_leg(entry.session, offer) {
        Ok(x) => x,
        Err(e) => {
            if entry.publisher.is_none() && entry.viewers.is_empty() {
                relay.release_session(entry.session);
                all.streams.remove(&key);
            }
            return Err(match e {
                RelayOpError::BadRequest(m) => invalid_sdp(m),
                other => unavailable(other),
            });
        }
    };
    let routed = match role {
        Role::Publisher => {
            let mut r = Ok(());
            for (_, v) in &entry.viewers {
                r = r.and(relay.relay().connect(leg.id, *v));
            }
            entry.publisher = Some((resource.clone(), leg.id));
            r
        }
        Role::Viewer => {
            let r = match entry.publisher {
                // The relay asks the publisher for a keyframe once this viewer is keyed.
                Some((_, p)) => relay.relay().connect(p, leg.id),
                None => Ok(()),
            };
            entry.viewers.push((resource.clone(), leg.id));
            r
        }
    };
    all.resources.insert(
        resource,
        Resource {
            partner,
            stream,
            role,
            leg: leg.id,
        },
    );
    if let Err(e) = routed {
        tracing::warn!(error = %e, "WHIP/WHEP routing failed");
    }
    Ok((leg.id, grant))
}

/// Removes a resource; releases the stream when it was the last. Whether it existed.
async fn remove(st: &Whip, partner: &str, stream: &str, resource: &str, role: Role) -> bool {
    let (relay, streams) = (st.relay.clone(), st.streams.clone());
    let (partner, stream, resource) = (partner.to_owned(), stream.to_owned(), resource.to_owned());
    tokio::task::spawn_blocking(move || {
        let mut all = streams.lock().unwrap_or_else(|e| e.into_inner());
        let ok = all
            .resources
            .get(&resource)
            .is_some_and(|r| r.partner == partner && r.stream == stream && r.role == role);
        if !ok {
            return false;
        }
        let Some(r) = all.resources.remove(&resource) else {
            return false;
        };
        relay.release_leg(r.leg);
        let key = (partner, stream);
        if let Some(e) = all.streams.get_mut(&key) {
            match role {
                Role::Publisher => e.publisher = None,
                Role::Viewer => e.viewers.retain(|(id, _)| *id != resource),
            }
            if e.publisher.is_none() && e.viewers.is_empty() {
                let session = e.session;
                all.streams.remove(&key);
                relay.release_session(session);
            }
        }
        true
    })
    .await
    .unwrap_or(false)
}

async fn end(
    st: Whip,
    partner: String,
    stream: String,
    resource: String,
    role: Role,
) -> Result<StatusCode, ApiError> {
    if remove(&st, &partner, &stream, &resource, role).await {
        tracing::info!(partner = %partner, stream = %stream, role = role.path(), "WHIP/WHEP resource ended");
        Ok(StatusCode::OK)
    } else {
        Err(ApiError::not_found())
    }
}

/// Publishes a stream (WHIP): the body is the publisher's SDP offer.
#[utoipa::path(
    post,
    path = "/v1/whip/{stream}",
    tag = "whip",
    params(("stream" = String, Path, description = "Stream name", pattern = "^[A-Za-z0-9_.~-]{1,64}$")),
    request_body(content = String, content_type = "application/sdp", description = "SDP offer (sendonly or sendrecv)"),
    security(("api_key" = [])),
    responses(
        (status = 201, description = "Publishing: the SDP answer (ICE-lite, candidates included)", body = String, content_type = "application/sdp",
            headers(("Location" = String, description = "The resource: DELETE it to stop"))),
        (status = 400, description = "Malformed SDP, nothing the supernode serves, or a bad stream name", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "This key may not use the relay API", body = ErrorBody),
        (status = 409, description = "The stream has a publisher", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not application/sdp", body = ErrorBody),
        (status = 429, description = "Rate limit of the API key exceeded", body = ErrorBody),
        (status = 503, description = "Relay draining or out of room", body = ErrorBody),
    )
)]
async fn publish(
    State(st): State<Whip>,
    WhipPartner(partner): WhipPartner,
    Path(stream): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    join(st, partner, stream, Role::Publisher, headers, body).await
}

/// Stops publishing (WHIP resource).
#[utoipa::path(
    delete,
    path = "/v1/whip/{stream}/{resource}",
    tag = "whip",
    params(
        ("stream" = String, Path, description = "Stream name"),
        ("resource" = String, Path, description = "Resource id from the Location"),
    ),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Ended"),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "This key may not use the relay API", body = ErrorBody),
        (status = 404, description = "No such resource for this partner", body = ErrorBody),
        (status = 429, description = "Rate limit of the API key exceeded", body = ErrorBody),
    )
)]
async fn end_publish(
    State(st): State<Whip>,
    WhipPartner(partner): WhipPartner,
    Path((stream, resource)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    end(st, partner, stream, resource, Role::Publisher).await
}

/// Watches a stream (WHEP): the body is the viewer's recvonly SDP offer.
#[utoipa::path(
    post,
    path = "/v1/whep/{stream}",
    tag = "whip",
    params(("stream" = String, Path, description = "Stream name", pattern = "^[A-Za-z0-9_.~-]{1,64}$")),
    request_body(content = String, content_type = "application/sdp", description = "SDP offer (recvonly)"),
    security(("api_key" = [])),
    responses(
        (status = 201, description = "Watching: the SDP answer (ICE-lite, candidates included)", body = String, content_type = "application/sdp",
            headers(("Location" = String, description = "The resource: DELETE it to stop"))),
        (status = 400, description = "Malformed SDP, nothing the supernode serves, or a bad stream name", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "This key may not use the relay API", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not application/sdp", body = ErrorBody),
        (status = 429, description = "Rate limit of the API key exceeded", body = ErrorBody),
        (status = 503, description = "Relay draining or out of room", body = ErrorBody),
    )
)]
async fn view(
    State(st): State<Whip>,
    WhipPartner(partner): WhipPartner,
    Path(stream): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    join(st, partner, stream, Role::Viewer, headers, body).await
}

/// Stops watching (WHEP resource).
#[utoipa::path(
    delete,
    path = "/v1/whep/{stream}/{resource}",
    tag = "whip",
    params(
        ("stream" = String, Path, description = "Stream name"),
        ("resource" = String, Path, description = "Resource id from the Location"),
    ),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Ended"),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "This key may not use the relay API", body = ErrorBody),
        (status = 404, description = "No such resource for this partner", body = ErrorBody),
        (status = 429, description = "Rate limit of the API key exceeded", body = ErrorBody),
    )
)]
async fn end_view(
    State(st): State<Whip>,
    WhipPartner(partner): WhipPartner,
    Path((stream, resource)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    end(st, partner, stream, resource, Role::Viewer).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_are_what_the_schema_says() {
        let re = regex::Regex::new("^[A-Za-z0-9_.~-]{1,64}$").unwrap();
        let long = "a".repeat(65);
        for s in [
            "cam1",
            "a",
            "A.b~c-d_e",
            "",
            " ",
            "a/b",
            "é",
            "a b",
            &long,
            "%20",
            "x\n",
        ] {
            assert_eq!(check_stream(s).is_ok(), re.is_match(s), "{s:?}");
        }
    }
}
