//! Identifier newtypes of the signaling layer.
//!
//! Accounts and partners have random, prefixed text ids (`acc_…`, `prt_…`: 32 lowercase hex
//! digits after the prefix) that are stored and shown to partners. Endpoints and calls live
//! only inside one supernode's call core and are plain counters.

use std::fmt;

use rand::RngCore;
use serde::{Deserialize, Serialize};

fn random_hex(prefix: &str) -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let mut s = String::with_capacity(prefix.len() + 32);
    s.push_str(prefix);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn well_formed(s: &str, prefix: &str) -> bool {
    s.len() == prefix.len() + 32
        && s.starts_with(prefix)
        && s[prefix.len()..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// The prefix every id of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            /// A new random id.
            pub fn random() -> Self {
                Self(random_hex($prefix))
            }

            /// Parses an id, `None` unless it has the exact shape of this kind of id.
            pub fn parse(s: &str) -> Option<Self> {
                well_formed(s, $prefix).then(|| Self(s.to_owned()))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

text_id!(
    /// An anonymous account (one caller or callee of a partner).
    AccountId,
    "acc_"
);
text_id!(
    /// A partner (the owner of an API key).
    PartnerId,
    "prt_"
);

/// One logged-in client instance (a browser tab, an edge process) of an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EndpointId(pub u64);

/// One call, unique within one supernode's call core.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CallId(pub u64);

impl fmt::Display for EndpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ep{}", self.0)
    }
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_parse_back_and_junk_does_not() {
        let a = AccountId::random();
        assert_eq!(AccountId::parse(a.as_str()), Some(a.clone()));
        assert!(PartnerId::parse(a.as_str()).is_none());
        assert!(AccountId::parse("acc_").is_none());
        assert!(AccountId::parse("acc_0123456789abcdef0123456789ABCDEF").is_none());
        assert!(AccountId::parse("acc_0123456789abcdef0123456789abcde\0").is_none());
        assert_ne!(AccountId::random(), AccountId::random());
    }
}
