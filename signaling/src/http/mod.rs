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

use crate::calls::hub::Hub;
use crate::config::SignalingConfig;
use crate::directory::Directory;
use crate::error::SignalingError;
use crate::ratelimit::RateLimiter;
use crate::relay_access::RelayAccess;
pub use crate::state::AppState;
use crate::state::Inner;
use crate::storage::Store;
use crate::timefmt::unix_now;
use crate::token::Keyring;

/// The signaling service.
#[derive(Clone)]
pub struct Signaling {
    state: AppState,
    /// Documents of the host's own routes, merged into `/v1/openapi.json`.
    extra_docs: Vec<utoipa::openapi::OpenApi>,
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
            placement: Default::default(),
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
            extra_docs: Vec::new(),
        })
    }

    /// The OpenAPI document of the REST API.
    pub fn openapi() -> utoipa::openapi::OpenApi {
        Self::api_router().split_for_parts().1
    }

    /// Adds the document of routes the host serves beside signaling's (e.g. relay REST):
    /// `/v1/openapi.json` then describes both.
    pub fn with_openapi(mut self, doc: utoipa::openapi::OpenApi) -> Self {
        self.extra_docs.push(doc);
        self
    }

    /// The document `/v1/openapi.json` serves: the REST API and every added document.
    pub fn openapi_document(&self) -> utoipa::openapi::OpenApi {
        let mut doc = Self::openapi();
        for extra in &self.extra_docs {
            doc.merge(extra.clone());
        }
        doc
    }

    fn api_router() -> OpenApiRouter<AppState> {
        OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
            .routes(routes!(accounts::create_account))
            .routes(routes!(accounts::get_account, accounts::delete_account))
            .routes(routes!(credentials::create_credential))
    }

    /// The router: REST, `/v1/openapi.json`, `/v1/ws`, JSON errors for everything else.
    pub fn router(&self) -> Router {
        let (api, _) = Self::api_router().split_for_parts();
        let doc = self.openapi_document();
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

    /// Sets where new clients go (a network's placement): credentials then carry that
    /// node's WebSocket URL. Once; later calls are ignored.
    pub fn set_placement(&self, placement: Arc<dyn crate::placement::Placement>) {
        let _ = self.state.0.placement.set(placement);
    }

    /// The call hub (to make it part of a network: [`Hub::attach_network`],
    /// [`Hub::handle_node_msg`]).
    pub fn hub(&self) -> Arc<Hub> {
        self.state.0.hub.clone()
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
