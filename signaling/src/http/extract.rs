//! Extractors: the authenticated, rate-limited partner and JSON bodies with typed errors.

use std::time::Instant;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::apikey;
use crate::ratelimit::RateLimiter;
use crate::state::AppState;
use crate::storage::{Partner, Store};

/// The partner behind `Authorization: Bearer <api key>`, after its rate-limit check.
#[derive(Debug, Clone)]
pub struct AuthPartner(pub Partner);

impl FromRequestParts<AppState> for AuthPartner {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let partner = authenticate(parts, &state.0.store).await?;
        rate_limit(&state.0.limiter, &partner, Instant::now())?;
        Ok(Self(partner))
    }
}

/// Checks `Authorization: Bearer <api key>` against the stored key hashes: the partner, or
/// `401` (`unauthorized` for a missing or malformed header, `invalid_api_key` otherwise).
/// Every extractor of a partner-authenticated route (this crate's and the host's) goes
/// through here, so there is one place that reads API keys.
pub async fn authenticate(parts: &Parts, store: &Store) -> Result<Partner, ApiError> {
    let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m);
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| unauthorized("missing Authorization: Bearer <api key>"))?
        .to_str()
        .map_err(|_| unauthorized("malformed Authorization header"))?;
    let key = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .ok_or_else(|| unauthorized("expected Authorization: Bearer <api key>"))?;
    let invalid = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            "invalid API key",
        )
    };
    if !apikey::well_formed(key) {
        return Err(invalid());
    }
    let hash = apikey::hash(key);
    let (partner, stored) = store
        .partner_by_key_hash(&hash)
        .await?
        .ok_or_else(invalid)?;
    if !apikey::hashes_equal(&hash, &stored) {
        return Err(invalid());
    }
    Ok(partner)
}

/// Takes one request from `partner`'s rate-limit budget: `429` `rate_limited` with
/// `Retry-After` (whole seconds, at least 1) past it.
pub fn rate_limit(limiter: &RateLimiter, partner: &Partner, now: Instant) -> Result<(), ApiError> {
    limiter.check(partner.id.as_str(), now).map_err(|wait| {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "rate limit of this API key exceeded",
        );
        e.retry_after = Some(wait.as_secs_f64().ceil().max(1.0) as u64);
        e
    })
}

/// A JSON object body whose rejections are [`ApiError`]s (`400`, `413`, `415`, `422`).
/// Every request body of the API is an object: arrays and scalars are `422` even where
/// serde could read a struct from an array.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(v) = axum::Json::<serde_json::Value>::from_request(req, state).await?;
        if !v.is_object() {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                "the request body must be a JSON object",
            ));
        }
        serde_json::from_value(v).map(Self).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                e.to_string(),
            )
        })
    }
}
