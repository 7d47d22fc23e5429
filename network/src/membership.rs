//! Membership: who is in the network, how loaded, and who is alive (sans-IO).
//!
//! Every node puts a [`Heartbeat`] into the registry bucket each second. [`Members`] is the
//! table a node builds from what it hears: feed it each heartbeat with the local `now`
//! when it arrives ([`Members::observe`]); a node not heard for `dead_after` (3 s) is dead
//! for placement ([`Members::is_live`], [`Members::live`]) and its directory records are
//! ignored. Liveness is judged by the *receiver's* clock, never by a timestamp inside the
//! heartbeat, so clock skew between hosts does not matter. [`Members::place`] picks the
//! least-loaded live node of a region that takes new endpoints.
//!
//! Silence proves a death only while this node can hear at all. Two ways it cannot: its NATS
//! connection is lost ([`Members::deaf`]), or the registry stream itself stalls (a JetStream
//! leader election after a NATS server dies takes seconds, and every node's watch goes quiet
//! at once). The second is caught by the node's own heartbeat, which comes back through the
//! same watch ([`Members::hearing_self`]): while it does not, liveness is judged as of the
//! last echo, so a stalled registry never makes the whole network dead.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::Role;

/// What a node reports of its load.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Load {
    /// Logged-in endpoints (WebSockets).
    pub endpoints: u64,
    /// Relay transports (legs) open.
    pub transports: u64,
    /// Packets per second the relay forwarded over the last interval.
    pub packets_per_second: u64,
    /// CPU use of the process over the last interval, percent of one core.
    pub cpu_percent: f32,
}

impl Load {
    /// A single figure to compare nodes by: endpoints, transports weighted 2 (they carry
    /// media), and CPU (1 % = 10 endpoints).
    pub fn score(&self) -> f64 {
        self.endpoints as f64 + 2.0 * self.transports as f64 + 10.0 * f64::from(self.cpu_percent)
    }
}

/// One node's heartbeat (the registry bucket's value under the node id).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The node.
    pub node: String,
    /// Its region.
    pub region: String,
    /// Standard or mega.
    pub role: Role,
    /// The WebSocket URL its clients use.
    pub ws_url: String,
    /// Its load.
    pub load: Load,
    /// Whether it drains (out of placement; running calls go on).
    pub draining: bool,
    /// Whether it takes no new endpoints (at capacity).
    pub full: bool,
    /// Counts up with every heartbeat of one process.
    pub seq: u64,
}

#[derive(Clone, Debug)]
struct Seen {
    beat: Heartbeat,
    at: Instant,
    /// The registry revision the heartbeat came with (0 if unknown).
    revision: u64,
}

/// The membership table of one node (sans-IO).
#[derive(Clone, Debug)]
pub struct Members {
    dead_after: Duration,
    nodes: HashMap<String, Seen>,
    /// Since when this node itself cannot hear anyone (its NATS connection is lost).
    deaf_since: Option<Instant>,
    /// This node's id and how long after its own last echo liveness is still judged at
    /// `now` ([`Self::hearing_self`]).
    echo: Option<(String, Duration)>,
    /// When this node last heard its own heartbeat.
    heard_self: Option<Instant>,
}

impl Members {
    /// An empty table; nodes silent for `dead_after` are dead.
    pub fn new(dead_after: Duration) -> Self {
        Self {
            dead_after,
            nodes: HashMap::new(),
            deaf_since: None,
            echo: None,
            heard_self: None,
        }
    }

    /// Judges liveness against this node's own heartbeat, `node`, put every `every`: a node
    /// is dead only if silent for `dead_after` while this node kept hearing itself. Once
    /// its own echo is more than `every + (dead_after - every) / 4` old (1.5 s with the
    /// defaults), the watch is taken as stalled and the clock of liveness stops there until
    /// the echo comes back (a peer heard up to one interval before the last echo stays
    /// live). Before the first echo, liveness is judged at `now`.
    pub fn hearing_self(mut self, node: impl Into<String>, every: Duration) -> Self {
        let grace = every + self.dead_after.saturating_sub(every) / 4;
        self.echo = Some((node.into(), grace));
        self
    }

    /// This node lost its NATS connection at `now`: it can no longer hear heartbeats, so
    /// silence proves nothing. Liveness is judged as of `now` until [`Self::hear_again`]
    /// (a NATS outage does not make every other node dead, end their calls here or hide
    /// their directory records: cross-node work fails with `network_unavailable` instead).
    pub fn deaf(&mut self, now: Instant) {
        self.deaf_since.get_or_insert(now);
    }

    /// The connection is back at `now`: every node keeps the age it had when this node
    /// went deaf (the outage does not count), and heartbeats take over again.
    pub fn hear_again(&mut self, now: Instant) {
        if let Some(since) = self.deaf_since.take() {
            let outage = now.saturating_duration_since(since);
            for s in self.nodes.values_mut() {
                s.at += outage;
            }
        }
    }

    /// The instant liveness is judged at: `now`, or when this node went deaf, or a grace
    /// after it last heard its own heartbeat, whichever is first.
    fn judged(&self, now: Instant) -> Instant {
        let mut at = self.deaf_since.map_or(now, |d| d.min(now));
        if let (Some((_, grace)), Some(heard)) = (&self.echo, self.heard_self) {
            at = at.min(heard + *grace);
        }
        at
    }

    /// A heartbeat arrived at `now` from the registry at `revision`. A revision already
    /// seen is a replay (a watch made again delivers every node's latest entry): it says
    /// nothing about liveness and is ignored, so a dead node is not revived by it. (Only the
    /// same revision: a bucket made anew after a JetStream wipe counts from 1 again.)
    pub fn observe_put(&mut self, beat: Heartbeat, revision: u64, now: Instant) {
        if self
            .nodes
            .get(&beat.node)
            .is_some_and(|s| s.revision == revision)
        {
            return;
        }
        if let Some((me, grace)) = &self.echo
            && *me == beat.node
        {
            // Back from a stall: like `hear_again`, the time this node could not hear does
            // not count against anyone (capped at `now`: a node's age never goes below zero).
            if let Some(stalled) = self.heard_self.map(|h| h + *grace).filter(|t| *t < now) {
                let outage = now - stalled;
                for s in self.nodes.values_mut() {
                    s.at = (s.at + outage).min(now);
                }
            }
            self.heard_self = Some(now);
        }
        self.record(beat, revision, now);
    }

    /// A heartbeat arrived at `now` other than through the registry (this node's own, as
    /// it puts it; a test's): recorded, no revision checked, no echo.
    pub fn observe(&mut self, beat: Heartbeat, now: Instant) {
        self.record(beat, 0, now);
    }

    fn record(&mut self, beat: Heartbeat, revision: u64, now: Instant) {
        self.nodes.insert(
            beat.node.clone(),
            Seen {
                beat,
                at: now,
                revision,
            },
        );
    }

    /// A node left on purpose (its registry entry was deleted).
    pub fn remove(&mut self, node: &str) {
        self.nodes.remove(node);
    }

    /// Whether `node` was heard within `dead_after` of `now`.
    pub fn is_live(&self, node: &str, now: Instant) -> bool {
        let now = self.judged(now);
        self.nodes
            .get(node)
            .is_some_and(|s| now.saturating_duration_since(s.at) < self.dead_after)
    }

    /// The last heartbeat of `node`, live or not.
    pub fn get(&self, node: &str) -> Option<&Heartbeat> {
        self.nodes.get(node).map(|s| &s.beat)
    }

    /// Live nodes, by node id.
    pub fn live(&self, now: Instant) -> Vec<&Heartbeat> {
        let now = self.judged(now);
        let mut v: Vec<&Heartbeat> = self
            .nodes
            .values()
            .filter(|s| now.saturating_duration_since(s.at) < self.dead_after)
            .map(|s| &s.beat)
            .collect();
        v.sort_by(|a, b| a.node.cmp(&b.node));
        v
    }

    /// When the next live node turns dead (for a caller that wants to act on deaths).
    pub fn next_death(&self, now: Instant) -> Option<Instant> {
        if self.judged(now) < now {
            return None;
        }
        self.nodes
            .values()
            .map(|s| s.at + self.dead_after)
            .filter(|t| *t > now)
            .min()
    }

    /// The least-loaded live node of `region` that takes endpoints (not draining, not
    /// full); with `prefer_mega` (a failover) live mega nodes come first. Ties go to the
    /// smaller node id, so every node picks alike.
    pub fn place(&self, region: &str, prefer_mega: bool, now: Instant) -> Option<&Heartbeat> {
        self.ranked(region, prefer_mega, now).into_iter().next()
    }

    /// Every node [`Self::place`] could choose, the one it chooses first (the list a client
    /// reconnects along when its node dies).
    pub fn ranked(&self, region: &str, prefer_mega: bool, now: Instant) -> Vec<&Heartbeat> {
        let mut v: Vec<&Heartbeat> = self
            .live(now)
            .into_iter()
            .filter(|b| b.region == region && !b.draining && !b.full)
            .collect();
        v.sort_by(|a, b| {
            let rank = |h: &Heartbeat| u8::from(!(prefer_mega && h.role == Role::Mega));
            rank(a)
                .cmp(&rank(b))
                .then(a.load.score().total_cmp(&b.load.score()))
                .then(a.node.cmp(&b.node))
        });
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat(node: &str, region: &str, endpoints: u64) -> Heartbeat {
        Heartbeat {
            node: node.into(),
            region: region.into(),
            role: Role::Standard,
            ws_url: format!("ws://{node}/v1/ws"),
            load: Load {
                endpoints,
                ..Load::default()
            },
            draining: false,
            full: false,
            seq: 1,
        }
    }

    #[test]
    fn nobody_dies_while_this_node_is_deaf() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut m = Members::new(s(3));
        m.observe(beat("a", "eu", 0), t0);
        m.observe(beat("b", "eu", 0), t0 + s(2));
        m.deaf(t0 + s(1));
        assert!(m.is_live("a", t0 + s(60)));
        assert_eq!(m.live(t0 + s(60)).len(), 2);
        assert_eq!(m.next_death(t0 + s(60)), None);
        // Back after 59 s: each node has the age it had then (a: 1 s, b: heard after).
        m.hear_again(t0 + s(60));
        assert!(m.is_live("a", t0 + s(61)));
        assert!(!m.is_live("a", t0 + s(62)));
        assert!(m.is_live("b", t0 + s(62)));
    }

    #[test]
    fn a_stalled_registry_watch_kills_nobody_until_this_node_hears_itself_again() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut m = Members::new(ms(3000)).hearing_self("me", ms(1000));
        // Everyone beats each second until t0 + 2 s; then the watch stalls (no echo).
        let mut rev = 0;
        let mut echo = |m: &mut Members, at| {
            rev += 1;
            m.observe_put(beat("me", "eu", 0), rev, at);
        };
        for i in 0..3 {
            // Its own heartbeat as it puts it (not an echo), then the echo.
            m.observe(beat("me", "eu", 0), t0 + ms(1000 * i));
            echo(&mut m, t0 + ms(1000 * i));
            m.observe(beat("a", "eu", 0), t0 + ms(1000 * i + 10));
            m.observe(beat("b", "eu", 0), t0 + ms(1000 * i - 10 * (i > 0) as u64));
        }
        // 10 s of silence (the node keeps putting its own heartbeat; no echo): nobody is
        // judged dead, and no death is due.
        for i in 3..12 {
            m.observe(beat("me", "eu", 0), t0 + ms(1000 * i));
        }
        assert!(m.is_live("a", t0 + ms(12_000)));
        assert!(m.is_live("b", t0 + ms(12_000)));
        assert_eq!(m.live(t0 + ms(12_000)).len(), 3);
        assert_eq!(m.next_death(t0 + ms(12_000)), None);
        // The watch comes back: the backlog arrives, b's included; a is still silent.
        echo(&mut m, t0 + ms(12_000));
        m.observe(beat("b", "eu", 0), t0 + ms(12_001));
        // Silence counts again, but the stall does not: a had 1.5 s of age at the stall
        // (t0 + 3.5 s) and dies 1.5 s after the echo came back.
        assert!(m.is_live("a", t0 + ms(13_400)));
        echo(&mut m, t0 + ms(13_000));
        assert!(!m.is_live("a", t0 + ms(13_600)));
        assert!(m.is_live("b", t0 + ms(13_600)));
    }

    #[test]
    fn a_replayed_registry_entry_does_not_revive_a_dead_node() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut m = Members::new(ms(3000));
        m.observe_put(beat("a", "eu", 0), 7, t0);
        assert!(!m.is_live("a", t0 + ms(5000)));
        // The watch is made again and delivers a's latest entry once more.
        m.observe_put(beat("a", "eu", 0), 7, t0 + ms(5000));
        assert!(!m.is_live("a", t0 + ms(5001)));
        // A new entry (a restarted a) does.
        m.observe_put(beat("a", "eu", 0), 9, t0 + ms(6000));
        assert!(m.is_live("a", t0 + ms(6001)));
    }

    #[test]
    fn a_peer_that_stops_dies_on_time_while_this_node_hears_itself() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut m = Members::new(ms(3000)).hearing_self("me", ms(1000));
        m.observe(beat("a", "eu", 0), t0);
        for i in 0..=4 {
            m.observe_put(beat("me", "eu", 0), i + 1, t0 + ms(1000 * i));
        }
        assert!(m.is_live("a", t0 + ms(2999)));
        assert!(!m.is_live("a", t0 + ms(3000)));
        assert_eq!(m.next_death(t0 + ms(4000)), Some(t0 + ms(7000)));
    }

    #[test]
    fn a_node_is_dead_three_seconds_after_its_last_heartbeat() {
        let t0 = Instant::now();
        let mut m = Members::new(Duration::from_secs(3));
        m.observe(beat("a", "eu", 0), t0);
        m.observe(beat("b", "eu", 0), t0 + Duration::from_secs(1));
        assert!(m.is_live("a", t0 + Duration::from_millis(2999)));
        assert!(!m.is_live("a", t0 + Duration::from_secs(3)));
        assert!(m.is_live("b", t0 + Duration::from_secs(3)));
        assert_eq!(m.next_death(t0), Some(t0 + Duration::from_secs(3)));
        // A heartbeat revives it.
        m.observe(beat("a", "eu", 0), t0 + Duration::from_secs(5));
        assert!(m.is_live("a", t0 + Duration::from_secs(5)));
        assert_eq!(
            m.live(t0 + Duration::from_secs(5))
                .iter()
                .map(|b| b.node.as_str())
                .collect::<Vec<_>>(),
            vec!["a"]
        );
        m.remove("a");
        assert!(m.get("a").is_none());
        assert!(!m.is_live("unknown", t0));
    }

    #[test]
    fn placement_takes_the_least_loaded_live_node_of_the_region() {
        let t0 = Instant::now();
        let mut m = Members::new(Duration::from_secs(3));
        m.observe(beat("a", "eu", 50), t0);
        m.observe(beat("b", "eu", 10), t0);
        m.observe(beat("c", "us", 0), t0);
        let mut d = beat("d", "eu", 0);
        d.draining = true;
        m.observe(d, t0);
        let mut f = beat("f", "eu", 1);
        f.full = true;
        m.observe(f, t0);
        assert_eq!(m.place("eu", false, t0).unwrap().node, "b");
        assert_eq!(m.place("us", false, t0).unwrap().node, "c");
        assert!(m.place("asia", false, t0).is_none());
        // b goes silent: a is the only live one left in eu.
        m.observe(beat("a", "eu", 50), t0 + Duration::from_secs(2));
        assert_eq!(
            m.place("eu", false, t0 + Duration::from_secs(4))
                .unwrap()
                .node,
            "a"
        );
        // A failover prefers a mega node even when it is busier.
        let mut g = beat("g", "eu", 500);
        g.role = Role::Mega;
        m.observe(g, t0);
        assert_eq!(m.place("eu", true, t0).unwrap().node, "g");
        assert_eq!(m.place("eu", false, t0).unwrap().node, "b");
        // Ties go to the smaller id.
        m.observe(beat("0", "eu", 10), t0);
        assert_eq!(m.place("eu", false, t0).unwrap().node, "0");
    }
}
