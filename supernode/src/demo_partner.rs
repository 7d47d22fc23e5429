//! The demo partner: what a partner's server does for its users, built in so that the web
//! client works out of the box in `supernode demo` and dev set-ups. **Off by default**
//! (`demo_partner = true` turns it on; `supernode demo` does).
//!
//! At start it creates a partner named `demo-partner` in the database and keeps its API key
//! in memory. Then, over plain HTTP to this same supernode's REST API (exactly the calls a
//! partner's server makes, `docs/protocol.md` §1):
//!
//! * `POST /demo/login` `{ "name"?: str }` creates an anonymous account (`POST
//!   /v1/accounts`) and a login credential for it (`POST /v1/accounts/{id}/credentials`);
//!   `{ "account_id": "acc_…" }` makes a new credential for a demo account made earlier (a
//!   second tab or device of the same user). Answer: `{ "account": { "id", "display_name" },
//!   "token", "expires_at", "ws_url", "ice_servers" }` (`ice_servers` as the credential has
//!   them: TURN with TURN-REST credentials when configured, else `[]`).
//! * `GET /demo/contacts` lists the demo accounts (the newest [`MAX_CONTACTS`]) as
//!   `{ "contacts": [{ "id", "display_name" }] }`: everyone who logged in to the demo can
//!   call everyone else.
//!
//! Anyone who reaches the port can make accounts with it: never turn it on for a supernode
//! that partners use.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use supernode_signaling::{Store, admin};

/// Demo accounts remembered (oldest forgotten first).
pub const MAX_CONTACTS: usize = 500;

/// One demo account.
#[derive(Debug, Clone, Serialize)]
pub struct Contact {
    /// `acc_…`.
    pub id: String,
    /// The name given at login.
    pub display_name: String,
}

/// The demo partner's state.
#[derive(Clone)]
pub struct DemoPartner {
    inner: Arc<Inner>,
}

struct Inner {
    api_key: String,
    rest_base: String,
    http: reqwest::Client,
    contacts: Mutex<VecDeque<Contact>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    account_id: Option<String>,
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({ "error": { "code": code, "message": message } })),
    )
        .into_response()
}

impl DemoPartner {
    /// Creates the `demo-partner` partner; its REST calls go to `rest_base` (this
    /// supernode's own `http://IP:PORT`).
    pub async fn start(store: &Store, rest_base: String) -> anyhow::Result<Self> {
        let now = supernode_signaling::timefmt::unix_now();
        let partner = admin::create_partner(store, "demo-partner", false, now).await?;
        tracing::warn!(
            partner = %partner.id,
            "demo partner on: anyone reaching this port can create accounts (POST /demo/login)"
        );
        Ok(Self {
            inner: Arc::new(Inner {
                api_key: partner.api_key,
                rest_base,
                http: reqwest::Client::builder()
                    .timeout(std::time::Duration::from_secs(10))
                    .build()?,
                contacts: Mutex::new(VecDeque::new()),
            }),
        })
    }

    fn contacts(&self) -> std::sync::MutexGuard<'_, VecDeque<Contact>> {
        self.inner
            .contacts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// One REST call as the partner; the JSON answer, or the REST error passed on.
    async fn rest(&self, path: &str, body: Value) -> Result<Value, Response> {
        let r = self
            .inner
            .http
            .post(format!("{}{path}", self.inner.rest_base))
            .bearer_auth(&self.inner.api_key)
            .json(&body)
            .send()
            .await
            .map_err(|e| {
                error(
                    StatusCode::BAD_GATEWAY,
                    "rest_unreachable",
                    &format!("the REST API did not answer: {e}"),
                )
            })?;
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            Ok(v)
        } else {
            let code = StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            Err((code, Json(v)).into_response())
        }
    }

    async fn login(&self, body: LoginBody) -> Result<Value, Response> {
        let account = match body.account_id {
            Some(id) => self
                .contacts()
                .iter()
                .find(|c| c.id == id)
                .cloned()
                .ok_or_else(|| {
                    error(
                        StatusCode::NOT_FOUND,
                        "not_found",
                        "no such demo account (log in with a name to make one)",
                    )
                })?,
            None => {
                let name = body
                    .name
                    .map(|n| n.trim().to_owned())
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| format!("guest-{:04}", rand::random::<u16>() % 10_000));
                let v = self
                    .rest("/v1/accounts", json!({ "display_name": name }))
                    .await?;
                let contact = Contact {
                    id: v["id"].as_str().unwrap_or_default().to_owned(),
                    display_name: v["display_name"].as_str().unwrap_or(&name).to_owned(),
                };
                let mut contacts = self.contacts();
                contacts.push_back(contact.clone());
                while contacts.len() > MAX_CONTACTS {
                    contacts.pop_front();
                }
                contact
            }
        };
        let cred = self
            .rest(
                &format!("/v1/accounts/{}/credentials", account.id),
                json!({}),
            )
            .await?;
        Ok(json!({
            "account": account,
            "token": cred["token"],
            "expires_at": cred["expires_at"],
            "ws_url": cred["ws_url"],
            // TURN servers with TURN-REST credentials (`turn_urls`/`turn_secret`), as the
            // credential came: a partner's server passes them on the same way.
            "ice_servers": cred.get("ice_servers").cloned().unwrap_or_else(|| json!([])),
        }))
    }
}

async fn login(State(p): State<DemoPartner>, body: Option<Json<LoginBody>>) -> Response {
    let Some(Json(body)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "expected a JSON object { \"name\"?: str, \"account_id\"?: str }",
        );
    };
    if body.name.as_ref().is_some_and(|n| n.len() > 200) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "name: at most 200 bytes",
        );
    }
    match p.login(body).await {
        Ok(v) => (StatusCode::CREATED, Json(v)).into_response(),
        Err(r) => r,
    }
}

async fn contacts(State(p): State<DemoPartner>) -> Response {
    let list: Vec<Contact> = p.contacts().iter().rev().cloned().collect();
    Json(json!({ "contacts": list })).into_response()
}

/// `POST /demo/login` and `GET /demo/contacts`.
pub fn router(partner: DemoPartner) -> Router {
    Router::new()
        .route("/demo/login", post(login))
        .route("/demo/contacts", get(contacts))
        .with_state(partner)
}
