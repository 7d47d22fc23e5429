//! The directory: which endpoints of which account are attached to which supernode.
//!
//! The conference core records every endpoint of its node on login and removes it on
//! disconnect, and reads through the directory which endpoints an account has (an input of
//! the core: in memory on one node, a replicated store in a network).
//! [`InMemoryDirectory`] serves one supernode. A network of supernodes shares the directory
//! (a later issue implements [`Directory`] on Redis); the trait is synchronous because such an
//! implementation answers from a local replica kept up to date in the background, so a
//! lookup never waits on the network inside a call set-up.

use std::collections::HashMap;
use std::sync::RwLock;

use crate::ids::{AccountId, EndpointId, PartnerId};

/// One attached endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointRecord {
    /// The account.
    pub account: AccountId,
    /// The endpoint (unique per supernode).
    pub endpoint: EndpointId,
    /// The supernode it is attached to.
    pub supernode: String,
    /// The account's partner, when the record says (presence is shown only within a
    /// partner; a record without one reads offline to everyone).
    pub partner: Option<PartnerId>,
}

/// Where the endpoints of accounts are.
pub trait Directory: Send + Sync {
    /// Records an attached endpoint (replacing an older record of the same endpoint).
    fn attach(&self, record: EndpointRecord);
    /// Removes an endpoint; unknown endpoints are ignored.
    fn detach(&self, supernode: &str, account: &AccountId, endpoint: &EndpointId);
    /// Every endpoint of an account, on any supernode.
    fn endpoints_of(&self, account: &AccountId) -> Vec<EndpointRecord>;
    /// How many endpoints are attached in total.
    fn len(&self) -> usize;
    /// Whether no endpoint is attached.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The directory of a single supernode.
#[derive(Debug, Default)]
pub struct InMemoryDirectory {
    map: RwLock<HashMap<AccountId, Vec<EndpointRecord>>>,
}

impl InMemoryDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Directory for InMemoryDirectory {
    fn attach(&self, record: EndpointRecord) {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        let list = map.entry(record.account.clone()).or_default();
        list.retain(|r| !(r.endpoint == record.endpoint && r.supernode == record.supernode));
        list.push(record);
    }

    fn detach(&self, supernode: &str, account: &AccountId, endpoint: &EndpointId) {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        if let Some(list) = map.get_mut(account) {
            list.retain(|r| !(r.endpoint == *endpoint && r.supernode == supernode));
            if list.is_empty() {
                map.remove(account);
            }
        }
    }

    fn endpoints_of(&self, account: &AccountId) -> Vec<EndpointRecord> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        map.get(account).cloned().unwrap_or_default()
    }

    fn len(&self) -> usize {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        map.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attach_detach_and_lookup() {
        let d = InMemoryDirectory::new();
        let a = AccountId::random();
        let b = AccountId::random();
        let e: Vec<EndpointId> = (0..5).map(|_| EndpointId::random()).collect();
        for (acc, ep, node) in [(&a, 1, "n1"), (&a, 2, "n1"), (&a, 1, "n2"), (&b, 3, "n1")] {
            d.attach(EndpointRecord {
                account: acc.clone(),
                endpoint: e[ep].clone(),
                supernode: node.into(),
                partner: None,
            });
        }
        // Re-attaching the same endpoint does not duplicate it.
        d.attach(EndpointRecord {
            account: a.clone(),
            endpoint: e[2].clone(),
            supernode: "n1".into(),
            partner: None,
        });
        assert_eq!(d.endpoints_of(&a).len(), 3);
        assert_eq!(d.len(), 4);
        d.detach("n1", &a, &e[1]);
        let left: Vec<_> = d
            .endpoints_of(&a)
            .into_iter()
            .map(|r| (r.endpoint, r.supernode))
            .collect();
        assert_eq!(left.len(), 2);
        assert!(left.contains(&(e[1].clone(), "n2".to_owned())));
        d.detach("n1", &b, &e[3]);
        assert!(d.endpoints_of(&b).is_empty());
        d.detach("n1", &b, &e[4]);
        assert_eq!(d.len(), 2);
        assert!(!d.is_empty());
    }
}
