//! The partner REST API as tests use it (feature `rest`): accounts and login credentials over
//! real HTTP, with the status checked.
//!
//! `base` is the server's `http://IP:PORT` and `key` a partner API key.

use serde_json::{Value, json};

async fn post(base: &str, key: &str, path: &str, body: &Value) -> Value {
    let r = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(status.as_u16(), 201, "POST {path}: {v}");
    v
}

/// Creates an account (`POST /v1/accounts` with `body`, e.g. `{}` or
/// `{"display_name": "Ann"}`), asserting `201`; its id.
pub async fn account(base: &str, key: &str, body: &Value) -> String {
    let v = post(base, key, "/v1/accounts", body).await;
    v["id"].as_str().expect("account id").to_owned()
}

/// Issues a login credential for `account` with the default TTL, asserting `201`; the token.
pub async fn token(base: &str, key: &str, account: &str) -> String {
    let v = post(
        base,
        key,
        &format!("/v1/accounts/{account}/credentials"),
        &json!({}),
    )
    .await;
    v["token"].as_str().expect("token").to_owned()
}

/// [`account`] then [`token`]: `(account id, login token)`.
pub async fn account_and_token(base: &str, key: &str, body: &Value) -> (String, String) {
    let id = account(base, key, body).await;
    let t = token(base, key, &id).await;
    (id, t)
}
