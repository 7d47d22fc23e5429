//! The partner REST API over real HTTP on loopback.

mod common;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use supernode_signaling::SignalingConfig;

fn http() -> Client {
    Client::new()
}

/// `POST path` with a partner key and a JSON body.
async fn post(s: &common::Server, key: &str, path: &str, body: &Value) -> reqwest::Response {
    http()
        .post(s.url(path))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// `GET path` with a partner key.
async fn get(s: &common::Server, key: &str, path: &str) -> reqwest::Response {
    http()
        .get(s.url(path))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
}

async fn error_code(r: reqwest::Response) -> String {
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert!(
        ct.starts_with("application/json"),
        "error is JSON, got {ct}"
    );
    let v: Value = r.json().await.unwrap();
    assert!(v["error"]["message"].is_string(), "{v}");
    v["error"]["code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn accounts_create_get_delete() {
    let s = common::start(common::test_config()).await;
    let (_, key) = common::partner(&s, "acme").await;
    let r = post(
        &s,
        &key,
        "/v1/accounts",
        &json!({"display_name": "Ann", "external_id": "user-17"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let a: Value = r.json().await.unwrap();
    let id = a["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("acc_"));
    assert_eq!(a["display_name"], "Ann");
    assert_eq!(a["external_id"], "user-17");
    assert!(
        supernode_signaling::timefmt::parse_rfc3339(a["created_at"].as_str().unwrap()).is_some()
    );

    // Same external id: same account, 200.
    let r = post(&s, &key, "/v1/accounts", &json!({"external_id": "user-17"})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let again: Value = r.json().await.unwrap();
    assert_eq!(again, a);

    // No external id: always a new account.
    let r = post(&s, &key, "/v1/accounts", &json!({})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let b: Value = r.json().await.unwrap();
    assert_ne!(b["id"], a["id"]);
    assert!(b["display_name"].is_null());

    let r = get(&s, &key, &format!("/v1/accounts/{id}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap(), a);

    let r = http()
        .delete(s.url(&format!("/v1/accounts/{id}")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    for _ in 0..2 {
        let r = get(&s, &key, &format!("/v1/accounts/{id}")).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(error_code(r).await, "not_found");
    }
    let r = http()
        .delete(s.url(&format!("/v1/accounts/{id}")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Credentials of a deleted account are refused.
    let r = post(
        &s,
        &key,
        &format!("/v1/accounts/{id}/credentials"),
        &json!({}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Junk ids are just not found.
    for junk in ["x", "acc_zz", "%00", "acc_0123456789abcdef0123456789abcdef"] {
        let r = get(&s, &key, &format!("/v1/accounts/{junk}")).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{junk}");
    }
}

#[tokio::test]
async fn nothing_leaks_across_partners() {
    let s = common::start(common::test_config()).await;
    let (_, key_a) = common::partner(&s, "a").await;
    let (_, key_b) = common::partner(&s, "b").await;
    let r = post(
        &s,
        &key_a,
        "/v1/accounts",
        &json!({"display_name": "secret-name", "external_id": "shared"}),
    )
    .await;
    let a: Value = r.json().await.unwrap();
    let id = a["id"].as_str().unwrap();

    for (method, path) in [
        ("GET", format!("/v1/accounts/{id}")),
        ("DELETE", format!("/v1/accounts/{id}")),
        ("POST", format!("/v1/accounts/{id}/credentials")),
    ] {
        let req = match method {
            "GET" => http().get(s.url(&path)),
            "DELETE" => http().delete(s.url(&path)),
            _ => http().post(s.url(&path)).json(&json!({})),
        };
        let r = req.bearer_auth(&key_b).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{method} {path}");
        let body = r.text().await.unwrap();
        assert!(
            !body.contains("secret-name") && !body.contains("shared"),
            "{body}"
        );
    }
    // B's own account with the same external id is a different account.
    let r = post(
        &s,
        &key_b,
        "/v1/accounts",
        &json!({"external_id": "shared"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let b: Value = r.json().await.unwrap();
    assert_ne!(b["id"], a["id"]);
    // A still has its account.
    let r = get(&s, &key_a, &format!("/v1/accounts/{id}")).await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn missing_wrong_and_revoked_api_keys() {
    let s = common::start(common::test_config()).await;
    let (pid, key) = common::partner(&s, "acme").await;
    let body = json!({});

    let r = http()
        .post(s.url("/v1/accounts"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    assert_eq!(error_code(r).await, "unauthorized");

    for header in ["Basic abc", "Bearer", "Bearer snk_nope", "token"] {
        let r = http()
            .post(s.url("/v1/accounts"))
            .header("authorization", header)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{header}");
    }
    let wrong = supernode_signaling::apikey::generate();
    let r = post(&s, &wrong, "/v1/accounts", &body).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(r).await, "invalid_api_key");

    let r = post(&s, &key, "/v1/accounts", &body).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    supernode_signaling::admin::revoke_partner(&s.store, &pid, 2)
        .await
        .unwrap();
    let r = post(&s, &key, "/v1/accounts", &body).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(r).await, "invalid_api_key");
}

#[tokio::test]
async fn bad_bodies_get_typed_errors() {
    let s = common::start(SignalingConfig {
        body_limit_bytes: 1024,
        ..common::test_config()
    })
    .await;
    let (_, key) = common::partner(&s, "acme").await;
    let raw = |body: &'static str, ct: &'static str| {
        http()
            .post(s.url("/v1/accounts"))
            .bearer_auth(&key)
            .header("content-type", ct)
            .body(body)
    };
    let r = raw("{not json", "application/json").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(r).await, "malformed_json");

    let r = raw("{}", "text/plain").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(error_code(r).await, "unsupported_media_type");

    let r = raw(r#"{"display_name": 5}"#, "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(r).await, "invalid_body");

    for not_object in ["[1,2]", "[null, null]", "null", "7", "\"x\""] {
        let r = raw(not_object, "application/json").send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{not_object}");
    }

    // Unknown fields are refused, not silently dropped (the schema says
    // `additionalProperties: false`).
    let r = raw(
        r#"{"display_name": "Ann", "nmae": "x"}"#,
        "application/json",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(r).await, "invalid_body");

    let r = raw(r#"{"external_id": ""}"#, "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(r).await, "invalid_field");

    let r = raw(r#"{"display_name": "a\u0000b"}"#, "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let long = json!({ "display_name": "x".repeat(201) });
    let r = post(&s, &key, "/v1/accounts", &long).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let huge = json!({ "display_name": "x".repeat(5000) });
    let r = post(&s, &key, "/v1/accounts", &huge).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(r).await, "payload_too_large");
}

#[tokio::test]
async fn credentials_are_issued_with_bounded_ttl() {
    let s = common::start(common::test_config()).await;
    let (_, key) = common::partner(&s, "acme").await;
    let acc = common::account(&s, &key).await;
    let path = format!("/v1/accounts/{acc}/credentials");
    let now = supernode_signaling::timefmt::unix_now();

    let r = post(&s, &key, &path, &json!({"ttl_seconds": 120})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let c: Value = r.json().await.unwrap();
    let exp =
        supernode_signaling::timefmt::parse_rfc3339(c["expires_at"].as_str().unwrap()).unwrap();
    assert!((now + 119..=now + 125).contains(&exp), "{exp} vs {now}");
    assert_eq!(c["ws_url"], s.ws_url());
    let token = c["token"].as_str().unwrap();
    assert!(token.starts_with("v1.") && token.contains(&acc));

    let r = post(&s, &key, &path, &json!({})).await;
    let c: Value = r.json().await.unwrap();
    let exp =
        supernode_signaling::timefmt::parse_rfc3339(c["expires_at"].as_str().unwrap()).unwrap();
    assert!(
        (now + 3599..=now + 3605).contains(&exp),
        "default TTL is an hour"
    );

    // JSON Schema integers include 60.0.
    let r = post(&s, &key, &path, &json!({"ttl_seconds": 60.0})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    for bad in [
        json!({"ttl_seconds": 0}),
        json!({"ttl_seconds": -5}),
        json!({"ttl_seconds": 86401}),
        json!({"ttl_seconds": "60"}),
        json!({"ttl_seconds": 1.5}),
        json!({"ttl_seconds": 1e300}),
        json!({"ttl_seconds": 18446744073709551615u64}),
        json!({"ttl_seconds": 60, "ttl": 60}),
        json!({"ttl": 60}),
    ] {
        let r = post(&s, &key, &path, &bad).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
}

#[tokio::test]
async fn rate_limit_per_api_key() {
    let s = common::start(SignalingConfig {
        rate_limit_per_second: 0.01,
        rate_limit_burst: 3,
        ..common::test_config()
    })
    .await;
    let (_, key_a) = common::partner(&s, "a").await;
    let (_, key_b) = common::partner(&s, "b").await;
    for _ in 0..3 {
        let r = post(&s, &key_a, "/v1/accounts", &json!({})).await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let r = post(&s, &key_a, "/v1/accounts", &json!({})).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    assert_eq!(error_code(r).await, "rate_limited");
    // Another key is not affected.
    let r = post(&s, &key_b, "/v1/accounts", &json!({})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn unknown_routes_and_methods_are_json() {
    let s = common::start(common::test_config()).await;
    let r = http().get(s.url("/nope")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(r).await, "not_found");
    let r = http().put(s.url("/v1/accounts")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(r.headers().get("allow").is_some());
    assert_eq!(error_code(r).await, "method_not_allowed");
    // A plain GET of the WebSocket route without upgrade is a JSON 4xx too.
    let r = http().get(s.url("/v1/ws")).send().await.unwrap();
    assert!(r.status().is_client_error());
    error_code(r).await;
}

#[tokio::test]
async fn openapi_document_is_generated_and_complete() {
    let s = common::start(common::test_config()).await;
    let r = http().get(s.url("/v1/openapi.json")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let doc: Value = r.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/v1/accounts",
        "/v1/accounts/{id}",
        "/v1/accounts/{id}/credentials",
    ] {
        assert!(paths.contains_key(p), "{p}");
    }
    assert!(paths["/v1/accounts/{id}"]["delete"].is_object());
    assert!(paths["/v1/accounts"]["post"]["responses"]["429"].is_object());
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"]["scheme"],
        "bearer"
    );
    for body in ["CreateAccount", "CreateCredential"] {
        let schema = &doc["components"]["schemas"][body];
        assert_eq!(schema["type"], "object", "{body}");
        assert_eq!(schema["additionalProperties"], false, "{body}");
    }
    // Same document as the in-process generator.
    let direct = serde_json::to_value(supernode_signaling::Signaling::openapi()).unwrap();
    assert_eq!(direct, doc);
}
