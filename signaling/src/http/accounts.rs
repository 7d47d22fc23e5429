//! `POST /v1/accounts`, `GET` and `DELETE /v1/accounts/{id}`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, AuthPartner};
use crate::ids::AccountId;
use crate::state::AppState;
use crate::storage::Account;
use crate::timefmt::{rfc3339, unix_now};

/// Longest `display_name` / `external_id`, characters.
pub const MAX_TEXT: usize = 200;

/// Body of `POST /v1/accounts`: a JSON object; unknown fields are `422`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct CreateAccount {
    /// Name shown to the people this account calls.
    #[schema(max_length = 200, pattern = r"^[^\x00]*$")]
    pub display_name: Option<String>,
    /// The partner's own id for this user: the same value again returns the same account.
    #[schema(min_length = 1, max_length = 200, pattern = r"^[^\x00]*$")]
    pub external_id: Option<String>,
}

crate::deserialize_object_only!(CreateAccount, "an account object");

/// An anonymous account.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AccountBody {
    /// Account id (`acc_` and 32 hex digits).
    pub id: String,
    /// Name shown to callees.
    pub display_name: Option<String>,
    /// The partner's id for this user.
    pub external_id: Option<String>,
    /// Creation time, RFC 3339.
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<Account> for AccountBody {
    fn from(a: Account) -> Self {
        Self {
            id: a.id.0,
            display_name: a.display_name,
            external_id: a.external_id,
            created_at: rfc3339(a.created_at),
        }
    }
}

fn check_text(field: &str, v: Option<&str>, min: usize) -> Result<(), ApiError> {
    if let Some(v) = v {
        let n = v.chars().count();
        if n < min || n > MAX_TEXT {
            return Err(ApiError::invalid(format!(
                "{field} must be {min}-{MAX_TEXT} characters"
            )));
        }
        if v.contains('\0') {
            return Err(ApiError::invalid(format!("{field} must not contain NUL")));
        }
    }
    Ok(())
}

/// Creates an anonymous account (or returns the one with the same `external_id`).
#[utoipa::path(
    post,
    path = "/v1/accounts",
    tag = "accounts",
    request_body = CreateAccount,
    security(("api_key" = [])),
    responses(
        (status = 201, description = "Created", body = AccountBody),
        (status = 200, description = "An account with this external_id already existed", body = AccountBody),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 422, description = "Invalid fields", body = ErrorBody),
        (status = 429, description = "Rate limit of the API key exceeded", body = ErrorBody),
    )
)]
pub async fn create_account(
    State(state): State<AppState>,
    AuthPartner(partner): AuthPartner,
    ApiJson(req): ApiJson<CreateAccount>,
) -> Result<(StatusCode, Json<AccountBody>), ApiError> {
    check_text("display_name", req.display_name.as_deref(), 0)?;
    check_text("external_id", req.external_id.as_deref(), 1)?;
    let (account, created) = state
        .0
        .store
        .create_account(
            &partner.id,
            req.display_name.as_deref(),
            req.external_id.as_deref(),
            unix_now(),
        )
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(account.into())))
}

/// Reads one of this partner's accounts.
#[utoipa::path(
    get,
    path = "/v1/accounts/{id}",
    tag = "accounts",
    params(("id" = String, Path, description = "Account id")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The account", body = AccountBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such account for this partner", body = ErrorBody),
        (status = 429, description = "Rate limit of the API key exceeded", body = ErrorBody),
    )
)]
pub async fn get_account(
    State(state): State<AppState>,
    AuthPartner(partner): AuthPartner,
    Path(id): Path<String>,
) -> Result<Json<AccountBody>, ApiError> {
    let id = AccountId::parse(&id).ok_or_else(ApiError::not_found)?;
    let account = state
        .0
        .store
        .get_account(&partner.id, &id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(account.into()))
}

/// Deletes one of this partner's accounts; its credentials stop working.
#[utoipa::path(
    delete,
    path = "/v1/accounts/{id}",
    tag = "accounts",
    params(("id" = String, Path, description = "Account id")),
    security(("api_key" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such account for this partner", body = ErrorBody),
        (status = 429, description = "Rate limit of the API key exceeded", body = ErrorBody),
    )
)]
pub async fn delete_account(
    State(state): State<AppState>,
    AuthPartner(partner): AuthPartner,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = AccountId::parse(&id).ok_or_else(ApiError::not_found)?;
    if state.0.store.delete_account(&partner.id, &id).await? {
        state.0.hub.kick_account(&id);
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}
