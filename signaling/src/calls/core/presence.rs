//! Presence: whether an account reads online to the endpoints that watch it.
//!
//! An account is online to a watcher of partner P when it has an endpoint of partner P
//! attached here or, in a network, on another live node (the directory's records carry the
//! partner). Every change is told once: the core keeps, per watched account and watchers'
//! partner, what it told last ([`CallCore::refresh_presence`]), and re-reads the directory
//! when an endpoint attaches or detaches here, when the directory says an account's records
//! changed on another node ([`CallCore::presence_changed`]), and when a node dies or is heard
//! again (its endpoints leave or re-enter the lookups).

use std::collections::{BTreeMap, BTreeSet};

use super::CallCore;
use crate::ids::{AccountId, EndpointId, PartnerId};
use crate::protocol::ServerMsg;

impl CallCore {
    /// Whether `account` reads online to endpoints of `partner`.
    pub(super) fn online_for(&self, account: &AccountId, partner: &PartnerId) -> bool {
        self.directory.endpoints_of(account).iter().any(|r| {
            if r.supernode == self.cfg.node_id {
                self.endpoints
                    .get(&r.endpoint)
                    .is_some_and(|e| &e.partner == partner)
            } else {
                self.cfg.network && r.partner.as_ref() == Some(partner)
            }
        })
    }

    /// The directory says the records of `account` changed (an endpoint attached to or
    /// detached from another node): its watchers here hear of a change of its presence.
    pub fn presence_changed(&mut self, account: &AccountId) {
        self.refresh_presence(account);
    }

    /// Re-reads the presence of every watched account (a node died or is heard again, or
    /// changes were missed).
    pub fn presence_resync(&mut self) {
        let watched: Vec<AccountId> = self.watchers.keys().cloned().collect();
        for account in watched {
            self.refresh_presence(&account);
        }
    }

    /// Tells the watchers of `account` its presence where it changed since last told.
    pub(super) fn refresh_presence(&mut self, account: &AccountId) {
        let Some(watchers) = self.watchers.get(account) else {
            return;
        };
        let mut by_partner: BTreeMap<PartnerId, BTreeSet<EndpointId>> = BTreeMap::new();
        for w in watchers {
            if let Some(e) = self.endpoints.get(w) {
                by_partner
                    .entry(e.partner.clone())
                    .or_default()
                    .insert(w.clone());
            }
        }
        for (partner, targets) in by_partner {
            let online = self.online_for(account, &partner);
            let told = self
                .presence_told
                .entry(account.clone())
                .or_default()
                .insert(partner, online);
            if told == Some(online) {
                continue;
            }
            for w in targets {
                self.push(
                    w,
                    ServerMsg::Presence {
                        account_id: account.clone(),
                        online,
                    },
                );
            }
        }
    }
}
