//! Login credentials: TURN-REST-like signed tokens, and the rotating [`Keyring`].
//!
//! A token is `v1.<kid>.<account id>.<expires unix>.<mac>` where `mac` is the base64url
//! HMAC-SHA256 of everything before the last dot under the signing secret `kid`. Any
//! supernode holding the keyring verifies it without a database round trip (a login then
//! checks once that the account still exists).
//!
//! Rotation (`supernode admin secret rotate`) adds a new key; new tokens are signed with the
//! newest, and an older key keeps verifying until every token it can have signed has expired
//! (it was superseded more than the maximum TTL ago), after which it is dropped.

use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::ids::AccountId;
use crate::storage::SigningKeyRow;

type HmacSha256 = Hmac<Sha256>;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// One signing key.
#[derive(Clone)]
pub struct SigningKey {
    /// Key id.
    pub kid: String,
    secret: Vec<u8>,
    /// Unix seconds.
    pub created_at: i64,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh random key created at `now`.
    pub fn generate(now: i64) -> Self {
        let mut secret = vec![0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        let mut id = [0u8; 6];
        rand::rng().fill_bytes(&mut id);
        Self {
            kid: format!("k{}", B64.encode(id).replace(['-', '_'], "x")),
            secret,
            created_at: now,
        }
    }

    /// Decodes a stored key; `None` if the secret is not hex.
    pub fn from_row(row: &SigningKeyRow) -> Option<Self> {
        let s = row.secret_hex.as_bytes();
        if !s.len().is_multiple_of(2) || s.is_empty() {
            return None;
        }
        let secret = s
            .chunks(2)
            .map(|c| u8::from_str_radix(std::str::from_utf8(c).ok()?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        Some(Self {
            kid: row.kid.clone(),
            secret,
            created_at: row.created_at,
        })
    }

    /// The stored form.
    pub fn to_row(&self) -> SigningKeyRow {
        SigningKeyRow {
            kid: self.kid.clone(),
            secret_hex: self.secret.iter().map(|b| format!("{b:02x}")).collect(),
            created_at: self.created_at,
        }
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes keys of any length.
        HmacSha256::new_from_slice(&self.secret).expect("HMAC accepts any key length")
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not of the token's shape.
    #[error("malformed token")]
    Malformed,
    /// Signed with a key this keyring does not hold (never issued, or long retired).
    #[error("unknown signing key")]
    UnknownKey,
    /// The signature does not match.
    #[error("bad signature")]
    BadSignature,
    /// The expiry has passed.
    #[error("token expired")]
    Expired,
}

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The account it logs in.
    pub account: AccountId,
    /// Expiry, Unix seconds.
    pub expires_at: i64,
    /// The key that signed it.
    pub kid: String,
}

/// The signing keys of the network, oldest first.
#[derive(Clone, Debug, Default)]
pub struct Keyring {
    keys: Vec<SigningKey>,
}

impl Keyring {
    /// A keyring from keys in any order; keys superseded more than `max_ttl_seconds` before
    /// `now` are left out (no live token can carry them).
    pub fn new(mut keys: Vec<SigningKey>, now: i64, max_ttl_seconds: i64) -> Self {
        keys.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.kid.cmp(&b.kid)));
        let retired = Self::retired_kids(&keys, now, max_ttl_seconds);
        keys.retain(|k| !retired.contains(&k.kid));
        Self { keys }
    }

    /// Kids of `keys` (oldest first) that were superseded more than `max_ttl` ago.
    pub fn retired_kids(keys: &[SigningKey], now: i64, max_ttl_seconds: i64) -> Vec<String> {
        keys.windows(2)
            .filter(|w| w[1].created_at.saturating_add(max_ttl_seconds) < now)
            .map(|w| w[0].kid.clone())
            .collect()
    }

    /// The key new tokens are signed with.
    pub fn current(&self) -> Option<&SigningKey> {
        self.keys.last()
    }

    /// Key ids held, oldest first.
    pub fn kids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.kid.as_str()).collect()
    }

    /// Signs a token for `account` expiring at `expires_at`; `None` if the keyring is empty.
    pub fn sign(&self, account: &AccountId, expires_at: i64) -> Option<String> {
        let key = self.current()?;
        let body = format!("v1.{}.{}.{}", key.kid, account, expires_at);
        let mut mac = key.mac();
        mac.update(body.as_bytes());
        let tag = mac.finalize().into_bytes();
        Some(format!("{body}.{}", B64.encode(tag)))
    }

    /// Verifies a token at `now` (Unix seconds).
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        if token.len() > 512 {
            return Err(TokenError::Malformed);
        }
        let (body, tag) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let mut parts = body.split('.');
        let (Some("v1"), Some(kid), Some(account), Some(expires), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(TokenError::Malformed);
        };
        let account = AccountId::parse(account).ok_or(TokenError::Malformed)?;
        let expires_at: i64 = expires.parse().map_err(|_| TokenError::Malformed)?;
        let tag = B64.decode(tag).map_err(|_| TokenError::Malformed)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or(TokenError::UnknownKey)?;
        let mut mac = key.mac();
        mac.update(body.as_bytes());
        mac.verify_slice(&tag)
            .map_err(|_| TokenError::BadSignature)?;
        if expires_at <= now {
            return Err(TokenError::Expired);
        }
        Ok(Claims {
            account,
            expires_at,
            kid: kid.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: i64 = 3600;

    #[test]
    fn sign_verify_expire_and_forge() {
        let ring = Keyring::new(vec![SigningKey::generate(1000)], 1000, TTL);
        let acc = AccountId::random();
        let t = ring.sign(&acc, 1600).unwrap();
        let c = ring.verify(&t, 1500).unwrap();
        assert_eq!(c.account, acc);
        assert_eq!(c.expires_at, 1600);
        assert_eq!(ring.verify(&t, 1600), Err(TokenError::Expired));

        // Forged: change the account or the expiry and keep the tag.
        let other = AccountId::random();
        let forged = t.replace(acc.as_str(), other.as_str());
        assert_eq!(ring.verify(&forged, 1500), Err(TokenError::BadSignature));
        let forged = t.replace(".1600.", ".9999.");
        assert_eq!(ring.verify(&forged, 1500), Err(TokenError::BadSignature));
        // Signed by another network's key.
        let stranger = Keyring::new(vec![SigningKey::generate(1000)], 1000, TTL);
        assert_eq!(stranger.verify(&t, 1500), Err(TokenError::UnknownKey));
        for junk in [
            "",
            "v1",
            "v1.a.b.c.d",
            "v2.k.acc.1.x",
            &format!("{t}.x"),
            &"a".repeat(600),
        ] {
            assert!(ring.verify(junk, 1500).is_err(), "{junk}");
        }
    }

    #[test]
    fn rotation_keeps_old_tokens_until_they_expire() {
        let k1 = SigningKey::generate(1000);
        let ring1 = Keyring::new(vec![k1.clone()], 1000, TTL);
        let acc = AccountId::random();
        let old = ring1.sign(&acc, 1000 + TTL).unwrap();

        let k2 = SigningKey::generate(2000);
        let ring2 = Keyring::new(vec![k2.clone(), k1.clone()], 2000, TTL);
        assert_eq!(ring2.current().unwrap().kid, k2.kid);
        let new = ring2.sign(&acc, 2000 + TTL).unwrap();
        assert!(new.contains(&k2.kid));
        assert!(ring2.verify(&old, 2500).is_ok(), "old key still verifies");
        assert!(ring2.verify(&new, 2500).is_ok());

        // Long after the rotation the old key is retired and the new one still works.
        let later = 2000 + TTL + 1;
        let ring3 = Keyring::new(vec![k1.clone(), k2.clone()], later, TTL);
        assert_eq!(ring3.kids(), vec![k2.kid.as_str()]);
        assert_eq!(ring3.verify(&old, later), Err(TokenError::UnknownKey));
        let fresh = ring3.sign(&acc, later + 10).unwrap();
        assert!(ring3.verify(&fresh, later).is_ok());
    }

    #[test]
    fn stored_form_round_trips_and_hides_the_secret() {
        let k = SigningKey::generate(5);
        let back = SigningKey::from_row(&k.to_row()).unwrap();
        assert_eq!(back.secret, k.secret);
        assert!(!format!("{k:?}").contains(&k.to_row().secret_hex));
        let mut bad = k.to_row();
        bad.secret_hex = "zz".into();
        assert!(SigningKey::from_row(&bad).is_none());
    }
}
