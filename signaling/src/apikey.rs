//! Partner API keys: high-entropy random keys, stored only as their SHA-256.
//!
//! A key is `snk_` followed by 43 base64url characters (32 random bytes). Because a key has
//! 256 bits of entropy, an unsalted SHA-256 is enough to make the stored hash useless to an
//! attacker, and lets the server find the partner by hash with one indexed lookup. The
//! hash found is compared again in constant time.

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The prefix of every API key.
pub const PREFIX: &str = "snk_";

/// A new random API key (shown once to the operator, never stored).
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// Whether `key` has the shape of an API key (checked before hashing and looking it up).
pub fn well_formed(key: &str) -> bool {
    key.len() == PREFIX.len() + 43
        && key.starts_with(PREFIX)
        && key[PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The stored form of a key: lowercase hex SHA-256.
pub fn hash(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let mut s = String::with_capacity(64);
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Constant-time equality of two stored hashes.
pub fn hashes_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_well_formed_distinct_and_hash_stably() {
        let k = generate();
        assert!(well_formed(&k), "{k}");
        assert_ne!(k, generate());
        assert_eq!(hash(&k), hash(&k));
        assert_eq!(hash(&k).len(), 64);
        assert!(!hash(&k).contains(&k[4..]));
        assert!(hashes_equal(&hash(&k), &hash(&k)));
        assert!(!hashes_equal(&hash(&k), &hash(&generate())));
        assert!(!well_formed("snk_short"));
        assert!(!well_formed(&format!("xxx_{}", &k[4..])));
        // SHA-256("abc"), FIPS 180-2.
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
