//! The HTTP face of signaling: REST under `/v1`, the OpenAPI document, and the WebSocket.
//!
//! [`Signaling::new`] loads the keyring and starts two small background tasks on the current
//! tokio runtime (keyring refresh, ring timeouts); [`Signaling::router`] gives the
//! [`axum::Router`] to serve (the host binary merges its own routes such as `/healthz`).

pub mod accounts;
pub mod credentials;
pub mod error;
pub mod extract;
pub mod object_only;
pub mod openapi;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::config::SignalingConfig;
use crate::directory::Directory;
use crate::error::SignalingError;
use crate::ids::AccountId;
use crate::ratelimit::RateLimiter;
use crate::relay_access::RelayAccess;
use crate::storage::Store;
use crate::timefmt::unix_now;
use crate::token::{Claims, Keyring, TokenError};
use crate::ws::hub::Hub;

/// Shared state of all handlers.
#[derive(Clone)]
pub struct AppState(pub(crate) Arc<Inner>);

pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) cfg: SignalingConfig,
    pub(crate) keyring: RwLock<Keyring>,
    pub(crate) limiter: RateLimiter,
    pub(crate) hub: Arc<Hub>,
    pub(crate) ws_counters: crate::ws::limits::WsCounters,
}

impl Inner {
    pub(crate) fn keyring_sign(&self, account: &AccountId, expires_at: i64) -> Option<String> {
        self.keyring
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .sign(account, expires_at)
    }

    fn max_ttl(&self) -> i64 {
        self.cfg.max_credential_ttl.as_secs() as i64
    }

    pub(crate) async fn reload_keyring(&self) -> Result<(), SignalingError> {
        let ring = crate::admin::load_keyring(&self.store, unix_now(), self.max_ttl()).await?;
        *self.keyring.write().unwrap_or_else(|e| e.into_inner()) = ring;
        Ok(())
    }

    /// Verifies a login token; an unknown key id triggers one reload (a rotation by another
    /// process) before giving up.
    pub(crate) async fn verify_token(&self, token: &str) -> Result<Claims, TokenError> {
        let first = self
            .keyring
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .verify(token, unix_now());
        match first {
            Err(TokenError::UnknownKey) => {
                if self.reload_keyring().await.is_err() {
                    return Err(TokenError::UnknownKey);
                }
                self.keyring
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .verify(token, unix_now())
            }
            other => other,
        }
    }
}

/// The signaling service.
#[derive(Clone)]
pub struct Signaling {
    state: AppState,
}

impl Signaling {
    /// Builds the service over an open store. Makes a first signing key if there is none.
    /// `relay` is `None` when no relay is wired (calls then carry no `media` legs; browsers
    /// still negotiate through `negotiate` messages).
    pub async fn new(
        store: Store,
        cfg: SignalingConfig,
        relay: Option<Arc<dyn RelayAccess>>,
        directory: Arc<dyn Directory>,
    ) -> Result<Self, SignalingError> {
        crate::admin::ensure_signing_key(&store, unix_now()).await?;
        let hub = Hub::new(&cfg, relay, directory);
        let inner = Arc::new(Inner {
            limiter: RateLimiter::new(cfg.rate_limit_per_second, cfg.rate_limit_burst),
            keyring: RwLock::new(Keyring::default()),
            store,
            cfg,
            hub,
            ws_counters: Default::default(),
        });
        inner.reload_keyring().await?;
        // Keyring refresh: picks up `supernode admin secret rotate` from other processes.
        let weak = Arc::downgrade(&inner);
        let every = inner.cfg.keyring_refresh.max(Duration::from_millis(100));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                if let Err(e) = inner.reload_keyring().await {
                    tracing::warn!(error = %e, "keyring refresh failed");
                }
            }
        });
        Hub::start_timer(&inner.hub);
        Ok(Self {
            state: AppState(inner),
        })
    }

    /// The OpenAPI document of the REST API.
    pub fn openapi() -> utoipa::openapi::OpenApi {
        Self::api_router().split_for_parts().1
    }

    fn api_router() -> OpenApiRouter<AppState> {
        OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
            .routes(routes!(accounts::create_account))
            .routes(routes!(accounts::get_account, accounts::delete_account))
            .routes(routes!(credentials::create_credential))
    }

    /// The router: REST, `/v1/openapi.json`, `/v1/ws`, JSON errors for everything else.
    pub fn router(&self) -> Router {
        let (api, doc) = Self::api_router().split_for_parts();
        let doc_json = Arc::new(doc.to_pretty_json().unwrap_or_else(|_| "{}".into()));
        api.route(
            "/v1/openapi.json",
            get(move || {
                let doc = doc_json.clone();
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        doc.as_str().to_owned(),
                    )
                }
            }),
        )
        .route("/v1/ws", get(crate::ws::ws_handler))
        .fallback(error::not_found)
        .layer(DefaultBodyLimit::max(self.state.0.cfg.body_limit_bytes))
        .layer(axum::middleware::map_response(error::json_errors))
        .with_state(self.state.clone())
    }

    /// The store behind the service.
    pub fn store(&self) -> &Store {
        &self.state.0.store
    }

    /// Endpoints attached to this supernode right now.
    pub fn endpoint_count(&self) -> usize {
        self.state.0.hub.endpoint_count()
    }

    /// Calls live on this supernode right now.
    pub fn call_count(&self) -> usize {
        self.state.0.hub.call_count()
    }

    /// WebSockets closed for going past a limit (flood, size, login timeout), since start.
    pub fn ws_limit_counts(&self) -> crate::ws::limits::WsLimitCounts {
        self.state.0.ws_counters.snapshot()
    }
}
