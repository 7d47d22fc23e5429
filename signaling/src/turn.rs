//! TURN-REST credentials (draft-uberti-behave-turn-rest, as coturn's `use-auth-secret`
//! checks them) for the `ice_servers` handed out with every login credential.
//!
//! A browser behind a firewall that blocks UDP reaches the relay through a TURN server
//! (coturn). The supernode and coturn share one secret (coturn's `static-auth-secret`); for
//! each credential the supernode makes `username = "<expiry unix seconds>:<account id>"` and
//! `credential = base64(HMAC-SHA1(secret, username))`, which coturn recomputes and accepts
//! until the expiry. Nothing is stored.
//!
//! ```
//! use supernode_signaling::turn::TurnConfig;
//! let turn = TurnConfig {
//!     urls: vec!["turn:turn.example.net:3478?transport=udp".into()],
//!     secret: "s3cret".into(),
//! };
//! let ice = turn.ice_server("acc_1", 1_700_000_000);
//! assert_eq!(ice.username, "1700000000:acc_1");
//! ```

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha1::Sha1;
use utoipa::ToSchema;

/// Where the TURN servers are and the secret shared with them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TurnConfig {
    /// `turn:`/`turns:` URLs (RFC 7065), e.g. `turn:203.0.113.5:3478?transport=udp`.
    pub urls: Vec<String>,
    /// coturn's `static-auth-secret`.
    pub secret: String,
}

/// One entry of `ice_servers`: what a browser gives `RTCPeerConnection` as an
/// `RTCIceServer` (the field names are the WebRTC API's).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IceServer {
    /// TURN URLs.
    pub urls: Vec<String>,
    /// `"<expiry unix seconds>:<account id>"`.
    pub username: String,
    /// base64(HMAC-SHA1(secret, username)).
    pub credential: String,
}

impl TurnConfig {
    /// The TURN entry for `account`, valid until `expires_at` (unix seconds; the login
    /// credential's own expiry).
    pub fn ice_server(&self, account: &str, expires_at: i64) -> IceServer {
        let username = format!("{expires_at}:{account}");
        let credential = turn_password(&self.secret, &username);
        IceServer {
            urls: self.urls.clone(),
            username,
            credential,
        }
    }
}

/// base64(HMAC-SHA1(`secret`, `username`)): the TURN-REST password coturn expects.
pub fn turn_password(secret: &str, username: &str) -> String {
    let mut mac =
        Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_base64_hmac_sha1_of_the_username() {
        // RFC 2202 test case 2: HMAC-SHA1("Jefe", "what do ya want for nothing?").
        assert_eq!(
            turn_password("Jefe", "what do ya want for nothing?"),
            base64::engine::general_purpose::STANDARD
                .encode(hex("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"))
        );
    }

    #[test]
    fn the_username_carries_expiry_and_account() {
        let t = TurnConfig {
            urls: vec!["turn:127.0.0.1:3478".into()],
            secret: "k".into(),
        };
        let s = t.ice_server("acc_x", 42);
        assert_eq!(s.username, "42:acc_x");
        assert_eq!(s.credential, turn_password("k", "42:acc_x"));
        assert_eq!(s.urls, t.urls);
        assert_ne!(s.credential, t.ice_server("acc_x", 43).credential);
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
