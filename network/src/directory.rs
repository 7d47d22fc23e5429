//! The shared directory in a JetStream KV bucket, behind signaling's
//! [`Directory`] trait.
//!
//! Keys are `<account>.<node>.<endpoint>` (ids are `[a-z0-9_]`, node ids `[A-Za-z0-9_-]`),
//! the value is the account's partner id (presence is shown only within a partner; a value
//! that is not a partner id, as an older node wrote, leaves the record's partner unknown). Every node keeps a full local replica, fed by a watch of the
//! bucket (current values first, then every change), so a lookup in a call set-up never
//! waits on the network. Its own endpoints enter the replica at once on
//! [`Directory::attach`] and are written to the bucket by a background writer; writes that
//! fail while NATS is away are kept and written again when it is back (the node
//! re-registers its endpoints from its own state). Records of nodes that are not live
//! (no heartbeat for 3 s) are left out of [`Directory::endpoints_of`], so a dead node's
//! endpoints vanish from lookups without anyone deleting them; a node that starts deletes
//! the records an earlier run of it left behind.
//!
//! [`NatsDirectory::changes`] gives the accounts whose records changed (presence watches).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use futures_util::StreamExt;
use supernode_proto::ids::{AccountId, EndpointId, PartnerId};
use supernode_signaling::directory::{Directory, EndpointRecord};
use tokio::sync::{broadcast, mpsc};

use crate::counters::{Counters, bump};
use crate::membership::Members;

/// A write for the background writer.
#[derive(Debug)]
pub(crate) enum DirWrite {
    /// The key and its value (the partner id, or `1`).
    Put(String, bytes::Bytes),
    Delete(String),
    /// Write every own record again (NATS came back).
    Resync,
}

fn key_of(account: &AccountId, node: &str, endpoint: &EndpointId) -> String {
    format!("{}.{node}.{}", account.as_str(), endpoint.as_str())
}

/// The value of a record: its partner id (`1` when it has none).
fn value_of(partner: Option<&PartnerId>) -> bytes::Bytes {
    match partner {
        Some(p) => bytes::Bytes::from(p.as_str().to_owned()),
        None => bytes::Bytes::from_static(b"1"),
    }
}

/// `(account, node, endpoint)` of a key (partner unknown), `None` if it is not one of ours.
fn parse_key(key: &str) -> Option<EndpointRecord> {
    let mut parts = key.splitn(3, '.');
    let account = AccountId::parse(parts.next()?)?;
    let node = parts.next()?.to_owned();
    let endpoint = EndpointId::parse(parts.next()?)?;
    Some(EndpointRecord {
        account,
        endpoint,
        supernode: node,
        partner: None,
    })
}

/// The replica: account → its records.
type Replica = HashMap<AccountId, Vec<EndpointRecord>>;

fn insert(replica: &mut Replica, r: EndpointRecord) {
    let list = replica.entry(r.account.clone()).or_default();
    list.retain(|x| !(x.endpoint == r.endpoint && x.supernode == r.supernode));
    list.push(r);
}

fn remove(replica: &mut Replica, r: &EndpointRecord) {
    if let Some(list) = replica.get_mut(&r.account) {
        list.retain(|x| !(x.endpoint == r.endpoint && x.supernode == r.supernode));
        if list.is_empty() {
            replica.remove(&r.account);
        }
    }
}

/// The network's directory as one node sees it.
#[derive(Debug)]
pub struct NatsDirectory {
    node: String,
    replica: RwLock<Replica>,
    members: Arc<RwLock<Members>>,
    writes: mpsc::UnboundedSender<DirWrite>,
    changes: broadcast::Sender<AccountId>,
}

impl NatsDirectory {
    pub(crate) fn new(
        node: String,
        members: Arc<RwLock<Members>>,
        writes: mpsc::UnboundedSender<DirWrite>,
    ) -> Self {
        Self {
            node,
            replica: RwLock::new(HashMap::new()),
            members,
            writes,
            changes: broadcast::channel(1024).0,
        }
    }

    /// Accounts whose records change (from any node), as they change.
    pub fn changes(&self) -> broadcast::Receiver<AccountId> {
        self.changes.subscribe()
    }

    /// Every record of the replica, live nodes or not (for tests and diagnostics).
    pub fn all_records(&self) -> Vec<EndpointRecord> {
        let r = self.replica.read().unwrap_or_else(|e| e.into_inner());
        r.values().flatten().cloned().collect()
    }

    /// Applies one watched entry to the replica.
    fn apply(&self, entry: &kv::Entry) {
        let Some(mut record) = parse_key(&entry.key) else {
            return;
        };
        record.partner = std::str::from_utf8(&entry.value)
            .ok()
            .and_then(PartnerId::parse);
        let account = record.account.clone();
        {
            let mut r = self.replica.write().unwrap_or_else(|e| e.into_inner());
            match entry.operation {
                kv::Operation::Put => insert(&mut r, record),
                kv::Operation::Delete | kv::Operation::Purge => remove(&mut r, &record),
            }
        }
        let _ = self.changes.send(account);
    }

    pub(crate) fn resync(&self) {
        let _ = self.writes.send(DirWrite::Resync);
    }
}

impl Directory for NatsDirectory {
    fn attach(&self, record: EndpointRecord) {
        let key = key_of(&record.account, &record.supernode, &record.endpoint);
        let value = value_of(record.partner.as_ref());
        let account = record.account.clone();
        insert(
            &mut self.replica.write().unwrap_or_else(|e| e.into_inner()),
            record,
        );
        let _ = self.writes.send(DirWrite::Put(key, value));
        let _ = self.changes.send(account);
    }

    fn detach(&self, supernode: &str, account: &AccountId, endpoint: &EndpointId) {
        let record = EndpointRecord {
            account: account.clone(),
            endpoint: endpoint.clone(),
            supernode: supernode.to_owned(),
            partner: None,
        };
        remove(
            &mut self.replica.write().unwrap_or_else(|e| e.into_inner()),
            &record,
        );
        let _ = self
            .writes
            .send(DirWrite::Delete(key_of(account, supernode, endpoint)));
        let _ = self.changes.send(account.clone());
    }

    fn endpoints_of(&self, account: &AccountId) -> Vec<EndpointRecord> {
        let now = Instant::now();
        let list = self
            .replica
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(account)
            .cloned()
            .unwrap_or_default();
        let members = self.members.read().unwrap_or_else(|e| e.into_inner());
        list.into_iter()
            .filter(|r| r.supernode == self.node || members.is_live(&r.supernode, now))
            .collect()
    }

    fn len(&self) -> usize {
        self.replica
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(Vec::len)
            .sum()
    }
}

/// Deletes the records an earlier run of `node` left in the bucket.
pub(crate) async fn purge_own(kv: &kv::Store, node: &str, counters: &Counters) {
    let Ok(mut keys) = kv.keys().await else {
        return;
    };
    let mut stale = Vec::new();
    while let Some(Ok(key)) = keys.next().await {
        if parse_key(&key).is_some_and(|r| r.supernode == node) {
            stale.push(key);
        }
    }
    for key in stale {
        if kv.delete(&key).await.is_ok() {
            bump(&counters.directory_deletes);
        }
    }
}

/// Writes this node's records; keeps what failed and writes it again on `Resync` or every
/// second while something is pending.
pub(crate) async fn run_writer(
    kv: kv::Store,
    mut rx: mpsc::UnboundedReceiver<DirWrite>,
    counters: Arc<Counters>,
) {
    // Own records: key → value.
    let mut mine: HashMap<String, bytes::Bytes> = HashMap::new();
    let mut pending_puts: HashSet<String> = HashSet::new();
    let mut pending_deletes: HashSet<String> = HashSet::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let write = tokio::select! {
            w = rx.recv() => match w {
                Some(w) => Some(w),
                None => return,
            },
            _ = tick.tick() => None,
        };
        match write {
            Some(DirWrite::Put(key, value)) => {
                mine.insert(key.clone(), value);
                pending_deletes.remove(&key);
                pending_puts.insert(key);
            }
            Some(DirWrite::Delete(key)) => {
                mine.remove(&key);
                pending_puts.remove(&key);
                pending_deletes.insert(key);
            }
            Some(DirWrite::Resync) => {
                bump(&counters.reregistrations);
                pending_puts.extend(mine.keys().cloned());
            }
            None => {}
        }
        // Write what is pending, oldest intent first is not needed: keys are independent.
        let puts: Vec<String> = pending_puts.iter().cloned().collect();
        for key in puts {
            let Some(value) = mine.get(&key).cloned() else {
                pending_puts.remove(&key);
                continue;
            };
            match kv.put(&key, value).await {
                Ok(_) => {
                    bump(&counters.directory_puts);
                    pending_puts.remove(&key);
                }
                Err(_) => {
                    bump(&counters.directory_write_failures);
                    break;
                }
            }
        }
        let deletes: Vec<String> = pending_deletes.iter().cloned().collect();
        for key in deletes {
            match kv.delete(&key).await {
                Ok(()) => {
                    bump(&counters.directory_deletes);
                    pending_deletes.remove(&key);
                }
                Err(_) => {
                    bump(&counters.directory_write_failures);
                    break;
                }
            }
        }
    }
}

/// Keeps the replica in step with the bucket (re-watching when the watch ends).
pub(crate) async fn run_watcher(kv: kv::Store, dir: Arc<NatsDirectory>) {
    loop {
        match kv.watch_with_history(">").await {
            Ok(mut watch) => {
                while let Some(entry) = watch.next().await {
                    match entry {
                        Ok(entry) => dir.apply(&entry),
                        Err(e) => {
                            tracing::debug!(error = %e, "directory watch error");
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "directory watch failed"),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        let a = AccountId::from_bytes([1; 16]);
        let e = EndpointId::from_bytes([2; 16]);
        let k = key_of(&a, "node-1", &e);
        let r = parse_key(&k).unwrap();
        assert_eq!(
            (r.account, r.supernode, r.endpoint),
            (a, "node-1".into(), e)
        );
        assert!(parse_key("junk").is_none());
        assert!(parse_key("acc_x.n.ep_y").is_none());
    }
}
