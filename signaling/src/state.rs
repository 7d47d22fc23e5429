//! The state every HTTP and WebSocket handler shares ([`AppState`]): storage, configuration,
//! the signing keyring, the REST rate limiter and the call hub. Its own module, so that the
//! REST handlers (`http`) and the WebSocket (`ws`) both depend on it and not on each other.

use std::sync::{Arc, OnceLock, RwLock};

use crate::calls::hub::Hub;
use crate::config::SignalingConfig;
use crate::error::SignalingError;
use crate::ids::AccountId;
use crate::ratelimit::RateLimiter;
use crate::storage::Store;
use crate::timefmt::unix_now;
use crate::token::{Claims, Keyring, TokenError};

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
    /// Where new clients go, in a network (`None`: here).
    pub(crate) placement: OnceLock<Arc<dyn crate::placement::Placement>>,
}

impl Inner {
    pub(crate) fn keyring_sign(&self, account: &AccountId, expires_at: i64) -> Option<String> {
        self.keyring
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .sign(account, expires_at)
    }

    pub(crate) fn max_ttl(&self) -> i64 {
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
