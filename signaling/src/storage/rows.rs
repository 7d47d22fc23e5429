//! Row types of the signaling database and their decoding.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::StorageError;
use crate::ids::{AccountId, PartnerId};

/// A partner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partner {
    /// Its id.
    pub id: PartnerId,
    /// Its name.
    pub name: String,
    /// Whether its key may use the relay REST API (trusted tools).
    pub relay: bool,
    /// Unix seconds.
    pub created_at: i64,
}

/// An anonymous account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// Its id.
    pub id: AccountId,
    /// The partner that owns it.
    pub partner: PartnerId,
    /// Shown to callees.
    pub display_name: Option<String>,
    /// The partner's own id for this user.
    pub external_id: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
}

/// A stored credential-signing key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigningKeyRow {
    /// Key id (carried in every token).
    pub kid: String,
    /// The secret, hex. (It must be kept in the clear to sign; API keys, by contrast, are
    /// stored only hashed.)
    pub secret_hex: String,
    /// Unix seconds.
    pub created_at: i64,
}

pub(super) fn partner(r: &AnyRow) -> Result<Partner, StorageError> {
    Ok(Partner {
        id: PartnerId(r.try_get("id")?),
        name: r.try_get("name")?,
        relay: r.try_get::<i64, _>("relay")? != 0,
        created_at: r.try_get("created_at")?,
    })
}

pub(super) fn account(r: &AnyRow) -> Result<Account, StorageError> {
    Ok(Account {
        id: AccountId(r.try_get("id")?),
        partner: PartnerId(r.try_get("partner_id")?),
        display_name: r.try_get("display_name")?,
        external_id: r.try_get("external_id")?,
        created_at: r.try_get("created_at")?,
    })
}

pub(super) fn signing_key(r: &AnyRow) -> Result<SigningKeyRow, StorageError> {
    Ok(SigningKeyRow {
        kid: r.try_get("kid")?,
        secret_hex: r.try_get("secret_hex")?,
        created_at: r.try_get("created_at")?,
    })
}
