//! `/healthz` (the process answers) and `/readyz` (the database answers and the supernode is
//! not draining).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::json;
use supernode_signaling::Store;

use crate::relay_host::HostRelay;

#[derive(Clone)]
struct Probe {
    store: Store,
    relay: Arc<HostRelay>,
}

/// The probe routes.
pub fn router(store: Store, relay: Arc<HostRelay>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(Probe { store, relay })
}

async fn healthz() -> impl IntoResponse {
    axum::Json(json!({ "status": "ok" }))
}

async fn readyz(State(p): State<Probe>) -> impl IntoResponse {
    if p.relay.is_draining() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({
                "error": { "code": "draining", "message": "the supernode is shutting down" }
            })),
        );
    }
    match p.store.ping().await {
        Ok(()) => (StatusCode::OK, axum::Json(json!({ "status": "ready" }))),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({
                "error": { "code": "not_ready", "message": "database unavailable" }
            })),
        ),
    }
}
