//! Operator actions behind `supernode admin`: partners and signing secrets.

use serde::Serialize;

use crate::error::SignalingError;
use crate::ids::PartnerId;
use crate::storage::{Partner, Store};
use crate::timefmt::rfc3339;
use crate::token::{Keyring, SigningKey};

/// What `supernode admin partner create` prints (the key appears here once, never again).
#[derive(Debug, Clone, Serialize)]
pub struct CreatedPartner {
    /// Partner id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Whether it may use the relay REST API.
    pub relay: bool,
    /// The API key (only its hash is stored).
    pub api_key: String,
    /// RFC 3339.
    pub created_at: String,
}

/// Creates a partner with a fresh API key.
pub async fn create_partner(
    store: &Store,
    name: &str,
    relay: bool,
    now: i64,
) -> Result<CreatedPartner, SignalingError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 200 || name.contains('\0') {
        return Err(SignalingError::Invalid(
            "partner name must be 1-200 characters".into(),
        ));
    }
    let key = crate::apikey::generate();
    let p = Partner {
        id: PartnerId::random(),
        name: name.to_owned(),
        relay,
        created_at: now,
    };
    store.insert_partner(&p, &crate::apikey::hash(&key)).await?;
    Ok(CreatedPartner {
        id: p.id.0,
        name: p.name,
        relay,
        api_key: key,
        created_at: rfc3339(now),
    })
}

/// Revokes a partner: its key stops working and its accounts can no longer log in.
pub async fn revoke_partner(store: &Store, id: &str, now: i64) -> Result<(), SignalingError> {
    let pid = PartnerId::parse(id).ok_or_else(|| SignalingError::NoSuchPartner(id.into()))?;
    if store.revoke_partner(&pid, now).await? {
        Ok(())
    } else {
        Err(SignalingError::NoSuchPartner(id.into()))
    }
}

/// What `supernode admin secret rotate` prints.
#[derive(Debug, Clone, Serialize)]
pub struct RotatedSecret {
    /// The new key id (new tokens carry it).
    pub key_id: String,
    /// Key ids still verifying (the new one last).
    pub verifying: Vec<String>,
    /// Key ids dropped because no token signed by them can still be live.
    pub retired: Vec<String>,
}

/// Adds a new signing key; drops keys superseded more than `max_ttl_seconds` ago.
pub async fn rotate_secret(
    store: &Store,
    now: i64,
    max_ttl_seconds: i64,
) -> Result<RotatedSecret, SignalingError> {
    // Keys are ordered by creation second: a rotation within the same second as the last
    // one still comes strictly after it.
    let newest = load_keys(store).await?.iter().map(|k| k.created_at).max();
    let created = newest.map_or(now, |n| now.max(n + 1));
    let key = SigningKey::generate(created);
    store.insert_signing_key(&key.to_row()).await?;
    let keys = load_keys(store).await?;
    let mut sorted = keys.clone();
    sorted.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.kid.cmp(&b.kid)));
    let retired = Keyring::retired_kids(&sorted, now, max_ttl_seconds);
    for kid in &retired {
        store.delete_signing_key(kid).await?;
    }
    let ring = Keyring::new(keys, now, max_ttl_seconds);
    Ok(RotatedSecret {
        key_id: key.kid,
        verifying: ring.kids().into_iter().map(str::to_owned).collect(),
        retired,
    })
}

/// Makes sure at least one signing key exists (first start).
pub async fn ensure_signing_key(store: &Store, now: i64) -> Result<(), SignalingError> {
    if store.signing_keys().await?.is_empty() {
        store
            .insert_signing_key(&SigningKey::generate(now).to_row())
            .await?;
    }
    Ok(())
}

/// Every stored signing key.
pub async fn load_keys(store: &Store) -> Result<Vec<SigningKey>, SignalingError> {
    store
        .signing_keys()
        .await?
        .iter()
        .map(|r| SigningKey::from_row(r).ok_or_else(|| SignalingError::CorruptKey(r.kid.clone())))
        .collect()
}

/// The keyring as storage holds it now.
pub async fn load_keyring(
    store: &Store,
    now: i64,
    max_ttl_seconds: i64,
) -> Result<Keyring, SignalingError> {
    Ok(Keyring::new(load_keys(store).await?, now, max_ttl_seconds))
}
