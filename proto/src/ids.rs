//! Identifier newtypes that cross process and node boundaries.
//!
//! Every id is 128 random bits written as 32 lowercase hex digits after a prefix that names
//! its kind (`acc_…`, `prt_…`, `ep_…`, `call_…`, `rs_…`, `tr_…`, `op_…`). On the wire an id is
//! that string. Ids are never per-process counters: an endpoint id or call id made on one
//! supernode cannot collide with one made on another, so both may travel between nodes.
//!
//! Making ids needs randomness, which is the crate feature `rand` ([`AccountId::random`] and
//! friends); parsing and printing them does not (the edge client only parses).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// Number of hex digits after the prefix (128 bits).
pub const ID_HEX_DIGITS: usize = 32;

fn hex_id(prefix: &str, bytes: [u8; 16]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(prefix.len() + ID_HEX_DIGITS);
    s.push_str(prefix);
    for b in bytes {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 0xf)] as char);
    }
    s
}

fn well_formed(s: &str, prefix: &str) -> bool {
    s.len() == prefix.len() + ID_HEX_DIGITS
        && s.starts_with(prefix)
        && s[prefix.len()..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A string that is not an id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a well-formed {kind} id: {value:?}")]
pub struct BadId {
    /// The kind of id expected (its prefix).
    pub kind: &'static str,
    /// What was given.
    pub value: String,
}

macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(
            /// The id as text; build one with `random`, `from_bytes` or `parse`.
            pub String,
        );

        impl $name {
            /// The prefix every id of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            /// The id made of these 128 bits.
            pub fn from_bytes(bytes: [u8; 16]) -> Self {
                Self(hex_id($prefix, bytes))
            }

            /// A new random id.
            #[cfg(feature = "rand")]
            pub fn random() -> Self {
                Self::from_bytes(rand::random())
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

        impl std::str::FromStr for $name {
            type Err = BadId;
            fn from_str(s: &str) -> Result<Self, BadId> {
                Self::parse(s).ok_or_else(|| BadId {
                    kind: $prefix,
                    value: s.to_owned(),
                })
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
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
text_id!(
    /// One logged-in client instance (a browser tab, an edge process) of an account.
    EndpointId,
    "ep_"
);
text_id!(
    /// One call or conference (a 1:1 call is a conference of two).
    CallId,
    "call_"
);
text_id!(
    /// A session at a relay: the transports of one call or conference.
    RelaySessionId,
    "rs_"
);
text_id!(
    /// One transport at a relay (one endpoint's 5-tuple, a trunk, a processor).
    TransportId,
    "tr_"
);
text_id!(
    /// One relay operation; its result carries the same id.
    OperationId,
    "op_"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_back_and_junk_does_not() {
        let a = AccountId::from_bytes([0xab; 16]);
        assert_eq!(a.as_str(), "acc_abababababababababababababababab");
        assert_eq!(AccountId::parse(a.as_str()), Some(a.clone()));
        assert!(PartnerId::parse(a.as_str()).is_none());
        assert!(AccountId::parse("acc_").is_none());
        assert!(AccountId::parse("acc_0123456789abcdef0123456789ABCDEF").is_none());
        assert!(AccountId::parse("acc_0123456789abcdef0123456789abcde\0").is_none());
        assert!("call_7".parse::<CallId>().is_err());
    }

    #[test]
    fn ids_are_strings_on_the_wire_and_checked_when_read() {
        let c = CallId::from_bytes([1; 16]);
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, "\"call_01010101010101010101010101010101\"");
        assert_eq!(serde_json::from_str::<CallId>(&json).unwrap(), c);
        assert!(serde_json::from_str::<CallId>("7").is_err());
        assert!(serde_json::from_str::<CallId>("\"call_1\"").is_err());
        assert!(serde_json::from_str::<EndpointId>(&json).is_err());
    }

    #[cfg(feature = "rand")]
    #[test]
    fn random_ids_differ() {
        assert_ne!(EndpointId::random(), EndpointId::random());
        assert!(TransportId::parse(TransportId::random().as_str()).is_some());
    }
}
