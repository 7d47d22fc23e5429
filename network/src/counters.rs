//! What a node sent and stored through NATS (for metrics and the scaling model).

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one node's NATS traffic. Read with [`Counters::snapshot`].
#[derive(Debug, Default)]
pub struct Counters {
    /// Cross-node requests sent (first attempts).
    pub requests: AtomicU64,
    /// Repeated attempts of a request (same message id).
    pub retries: AtomicU64,
    /// Requests that failed after every attempt (or fast, with NATS down).
    pub request_failures: AtomicU64,
    /// Cross-node messages handled (first time).
    pub handled: AtomicU64,
    /// Repeats answered from the dedupe memory without acting.
    pub repeats: AtomicU64,
    /// Undecodable messages dropped.
    pub undecodable: AtomicU64,
    /// Heartbeats put into the registry.
    pub heartbeats: AtomicU64,
    /// Directory records written (puts).
    pub directory_puts: AtomicU64,
    /// Directory records deleted.
    pub directory_deletes: AtomicU64,
    /// Directory writes that failed (retried when NATS is back).
    pub directory_write_failures: AtomicU64,
    /// Answer claims attempted.
    pub claims: AtomicU64,
    /// Times the node re-registered after NATS came back.
    pub reregistrations: AtomicU64,
}

/// A copy of [`Counters`] at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CountersSnapshot {
    /// See [`Counters::requests`].
    pub requests: u64,
    /// See [`Counters::retries`].
    pub retries: u64,
    /// See [`Counters::request_failures`].
    pub request_failures: u64,
    /// See [`Counters::handled`].
    pub handled: u64,
    /// See [`Counters::repeats`].
    pub repeats: u64,
    /// See [`Counters::undecodable`].
    pub undecodable: u64,
    /// See [`Counters::heartbeats`].
    pub heartbeats: u64,
    /// See [`Counters::directory_puts`].
    pub directory_puts: u64,
    /// See [`Counters::directory_deletes`].
    pub directory_deletes: u64,
    /// See [`Counters::directory_write_failures`].
    pub directory_write_failures: u64,
    /// See [`Counters::claims`].
    pub claims: u64,
    /// See [`Counters::reregistrations`].
    pub reregistrations: u64,
}

impl CountersSnapshot {
    /// NATS messages this node published: requests and retries, replies, heartbeats and
    /// every KV write (a KV write is one JetStream publish).
    pub fn messages(&self) -> u64 {
        self.requests + self.retries + self.handled + self.repeats + self.kv_writes()
    }

    /// KV writes: heartbeats, directory puts and deletes, claims.
    pub fn kv_writes(&self) -> u64 {
        self.heartbeats + self.directory_puts + self.directory_deletes + self.claims
    }
}

pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    /// The counters now.
    pub fn snapshot(&self) -> CountersSnapshot {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CountersSnapshot {
            requests: g(&self.requests),
            retries: g(&self.retries),
            request_failures: g(&self.request_failures),
            handled: g(&self.handled),
            repeats: g(&self.repeats),
            undecodable: g(&self.undecodable),
            heartbeats: g(&self.heartbeats),
            directory_puts: g(&self.directory_puts),
            directory_deletes: g(&self.directory_deletes),
            directory_write_failures: g(&self.directory_write_failures),
            claims: g(&self.claims),
            reregistrations: g(&self.reregistrations),
        }
    }
}
