//! The emulator itself: packets in with a send time, packets out when their time has come.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::profile::NetProfile;
use super::sample;

/// Counters of what the emulator did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Packets given to [`NetEmulator::send`].
    pub sent: u64,
    /// Packets returned by [`NetEmulator::poll`] (duplicates included).
    pub delivered: u64,
    /// Packets dropped for any reason (the sum of the three below).
    pub lost: u64,
    /// Of `lost`: dropped by the Gilbert–Elliott loss model.
    pub lost_random: u64,
    /// Of `lost`: dropped because they were sent during a blackout.
    pub lost_blackout: u64,
    /// Of `lost`: dropped because the bottleneck queue was full.
    pub lost_queue: u64,
    /// Extra copies created.
    pub duplicated: u64,
    /// Delivered packets that came out after a packet sent later than them.
    pub reordered: u64,
}

/// One packet in flight. Ordered by delivery time, then by the order it entered the heap so
/// that equal delivery times keep sending order.
#[derive(Debug)]
struct InFlight {
    deliver_at: Instant,
    order: u64,
    send_index: u64,
    duplicate: bool,
    packet: Bytes,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        (self.deliver_at, self.order) == (other.deliver_at, other.order)
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.deliver_at, self.order).cmp(&(other.deliver_at, other.order))
    }
}

/// A seeded one-way network path. See the [module docs](super) for how to drive it.
#[derive(Debug)]
pub struct NetEmulator {
    profile: NetProfile,
    rng: ChaCha8Rng,
    /// Send time of the first packet: the reference for clock drift.
    origin: Option<Instant>,
    in_flight: BinaryHeap<Reverse<InFlight>>,
    order: u64,
    /// Latest delivery time of a non-reordered packet (FIFO clamp).
    fifo_tail: Option<Instant>,
    /// Current or next stall of the link: `(start, end)`.
    spike: Option<(Instant, Instant)>,
    /// When the bottleneck finishes serialising what it has queued.
    link_free: Option<Instant>,
    ge_bad: bool,
    blackouts: Vec<(Instant, Instant)>,
    highest_delivered: Option<u64>,
    stats: NetStats,
}

impl NetEmulator {
    /// A path with the given profile whose every random choice comes from `seed`.
    pub fn new(profile: NetProfile, seed: u64) -> Self {
        Self {
            profile,
            rng: ChaCha8Rng::seed_from_u64(seed),
            origin: None,
            in_flight: BinaryHeap::new(),
            order: 0,
            fifo_tail: None,
            spike: None,
            link_free: None,
            ge_bad: false,
            blackouts: Vec::new(),
            highest_delivered: None,
            stats: NetStats::default(),
        }
    }

    /// The profile this path was built with.
    pub fn profile(&self) -> &NetProfile {
        &self.profile
    }

    /// What happened so far.
    pub fn stats(&self) -> NetStats {
        self.stats
    }

    /// Packets sent and not yet delivered or dropped.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Drops every packet sent at a time in `[from, until)`. Several windows may be set.
    pub fn set_blackout(&mut self, from: Instant, until: Instant) {
        if until > from {
            self.blackouts.push((from, until));
        }
    }

    /// Sends `packet` at `now`. It is delivered later by [`poll`](Self::poll), or dropped.
    /// Calls should come with non-decreasing `now`.
    pub fn send(&mut self, now: Instant, packet: Bytes) {
        let send_index = self.stats.sent;
        self.stats.sent += 1;
        let origin = *self.origin.get_or_insert(now);

        // Draw every variate for this packet up front, so that the random stream advances
        // the same way whatever happens to the packet.
        let ge_move = sample::unit(&mut self.rng);
        let ge_loss = sample::unit(&mut self.rng);
        let jitter = sample::jitter_secs(&mut self.rng, &self.profile.jitter);
        let reorder = sample::chance(&mut self.rng, self.profile.reorder_prob);
        let duplicate = sample::chance(&mut self.rng, self.profile.duplicate_prob);
        let dup_extra = Duration::from_micros((sample::unit(&mut self.rng) * 5_000.0) as u64);

        // Gilbert–Elliott: move, then lose with the state's probability.
        let ge = self.profile.loss;
        self.ge_bad = if self.ge_bad {
            ge_move >= ge.r
        } else {
            ge_move < ge.p
        };
        let loss_p = if self.ge_bad {
            ge.loss_bad
        } else {
            ge.loss_good
        };

        if self
            .blackouts
            .iter()
            .any(|&(from, until)| now >= from && now < until)
        {
            self.stats.lost += 1;
            self.stats.lost_blackout += 1;
            return;
        }
        if ge_loss < loss_p {
            self.stats.lost += 1;
            self.stats.lost_random += 1;
            return;
        }

        // Bottleneck: serialise behind what is queued; tail-drop past the queue size.
        let mut depart = now;
        if let Some(bw) = self.profile.bandwidth {
            let free = self.link_free.unwrap_or(now).max(now);
            let backlog_secs = (free - now).as_secs_f64();
            let backlog_bytes = backlog_secs * bw.bits_per_sec as f64 / 8.0;
            if backlog_bytes > bw.queue_bytes as f64 {
                self.stats.lost += 1;
                self.stats.lost_queue += 1;
                return;
            }
            let tx =
                Duration::from_secs_f64(packet.len() as f64 * 8.0 / bw.bits_per_sec.max(1) as f64);
            depart = free + tx;
            self.link_free = Some(depart);
        }

        // Delay: base + jitter (never negative in total) + stall + drift.
        let base = self.profile.base_delay.as_secs_f64();
        let mut delay = (base + jitter).max(0.0);
        delay += self.stall_extra(now).as_secs_f64();
        let drift = (now - origin).as_secs_f64() * self.profile.drift_ppm * 1e-6;
        delay = (delay + drift).max(0.0);
        let mut deliver_at = depart + Duration::from_secs_f64(delay);

        if reorder {
            deliver_at += self.profile.reorder_delay;
        } else if self.profile.fifo {
            if let Some(tail) = self.fifo_tail {
                deliver_at = deliver_at.max(tail);
            }
            self.fifo_tail = Some(deliver_at);
        }

        if duplicate {
            self.stats.duplicated += 1;
            self.push(deliver_at + dup_extra, send_index, true, packet.clone());
        }
        self.push(deliver_at, send_index, false, packet);
    }

    /// The next packet whose delivery time is at or before `now`, in delivery order.
    pub fn poll(&mut self, now: Instant) -> Option<Bytes> {
        if self.in_flight.peek()?.0.deliver_at > now {
            return None;
        }
        let Reverse(p) = self.in_flight.pop()?;
        self.stats.delivered += 1;
        if !p.duplicate {
            match self.highest_delivered {
                Some(h) if p.send_index < h => self.stats.reordered += 1,
                _ => self.highest_delivered = Some(p.send_index),
            }
        }
        Some(p.packet)
    }

    /// When the next packet is due, if any is in flight.
    pub fn next_delivery(&self) -> Option<Instant> {
        self.in_flight.peek().map(|p| p.0.deliver_at)
    }

    fn push(&mut self, deliver_at: Instant, send_index: u64, duplicate: bool, packet: Bytes) {
        self.order += 1;
        self.in_flight.push(Reverse(InFlight {
            deliver_at,
            order: self.order,
            send_index,
            duplicate,
            packet,
        }));
    }

    /// How long a packet sent at `now` waits for the current stall of the link to end.
    fn stall_extra(&mut self, now: Instant) -> Duration {
        let Some(spikes) = self.profile.spikes else {
            return Duration::ZERO;
        };
        loop {
            match self.spike {
                Some((start, end)) if now < end => {
                    return if now >= start {
                        end - now
                    } else {
                        Duration::ZERO
                    };
                }
                _ => {
                    let after = self.spike.map_or(now, |(_, end)| end);
                    let start = after + sample::exponential(&mut self.rng, spikes.mean_interval);
                    let len =
                        sample::between(&mut self.rng, spikes.min_duration, spikes.max_duration);
                    self.spike = Some((start, start + len));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::profile::{Bandwidth, GilbertElliott, Jitter};

    const TICK: Duration = Duration::from_millis(20);

    /// Sends `n` numbered packets every 20 ms and collects `(index, delivery time)`.
    fn run(profile: NetProfile, seed: u64, n: u32) -> (Vec<(u32, Instant, Instant)>, NetStats) {
        let t0 = Instant::now();
        let mut net = NetEmulator::new(profile, seed);
        for i in 0..n {
            net.send(t0 + TICK * i, Bytes::copy_from_slice(&i.to_be_bytes()));
        }
        let mut out = Vec::new();
        while let Some(at) = net.next_delivery() {
            let p = net.poll(at).expect("due packet");
            let i = u32::from_be_bytes(p[..4].try_into().unwrap());
            out.push((i, t0 + TICK * i, at));
        }
        (out, net.stats())
    }

    #[test]
    fn perfect_delivers_everything_in_order_at_once() {
        let (out, st) = run(NetProfile::perfect(), 1, 100);
        assert_eq!(out.len(), 100);
        for (k, (i, sent, at)) in out.iter().enumerate() {
            assert_eq!(*i as usize, k);
            assert_eq!(sent, at);
        }
        assert_eq!(
            (st.sent, st.delivered, st.lost, st.reordered),
            (100, 100, 0, 0)
        );
    }

    #[test]
    fn poll_holds_packets_until_due() {
        let t0 = Instant::now();
        let mut net = NetEmulator::new(NetProfile::wired(), 3);
        net.send(t0, Bytes::from_static(b"a"));
        assert_eq!(net.poll(t0 + Duration::from_millis(17)), None);
        assert_eq!(net.in_flight(), 1);
        assert!(net.poll(t0 + Duration::from_millis(23)).is_some());
        assert_eq!(net.next_delivery(), None);
    }

    #[test]
    fn wired_delay_stays_within_20_ms_plus_minus_2() {
        let (out, st) = run(NetProfile::wired(), 9, 2000);
        assert_eq!(st.lost, 0);
        for (_, sent, at) in &out {
            let d = *at - *sent;
            assert!(
                d >= Duration::from_millis(18) && d <= Duration::from_millis(22),
                "{d:?}"
            );
        }
    }

    #[test]
    fn same_seed_same_run_other_seed_other_run() {
        let rel = |(out, st): (Vec<(u32, Instant, Instant)>, NetStats)| {
            (
                out.iter()
                    .map(|(i, s, a)| (*i, *a - *s))
                    .collect::<Vec<_>>(),
                st,
            )
        };
        let a = rel(run(NetProfile::mobile(), 42, 3000));
        let b = rel(run(NetProfile::mobile(), 42, 3000));
        let c = rel(run(NetProfile::mobile(), 43, 3000));
        assert!(a == b, "same seed must give the same run");
        assert!(a.0 != c.0, "another seed must give another run");
    }

    #[test]
    fn gilbert_elliott_loss_is_bursty_and_near_its_mean() {
        let (out, st) = run(NetProfile::mobile(), 5, 50_000);
        let rate = st.lost_random as f64 / st.sent as f64;
        assert!((rate - 0.03).abs() < 0.008, "loss {rate}");
        // Bursty: the mean run of consecutive losses is well above the 1.03 of random loss.
        let mut got: Vec<u32> = out.iter().map(|p| p.0).collect();
        got.sort_unstable();
        got.dedup();
        let (mut runs, mut lost, mut prev) = (0u32, 0u32, None::<u32>);
        for &i in &got {
            if let Some(p) = prev
                && i > p + 1
            {
                runs += 1;
                lost += i - p - 1;
            }
            prev = Some(i);
        }
        let mean_burst = lost as f64 / runs as f64;
        assert!(mean_burst > 2.0, "mean burst {mean_burst}");
    }

    #[test]
    fn heavy_tail_has_far_outliers_and_fifo_keeps_order_apart_from_reorders() {
        let (out, st) = run(NetProfile::mobile(), 11, 20_000);
        let mut delays: Vec<f64> = out
            .iter()
            .map(|(_, s, a)| (*a - *s).as_secs_f64())
            .collect();
        delays.sort_by(f64::total_cmp);
        let p50 = delays[delays.len() / 2];
        let p999 = delays[delays.len() * 999 / 1000];
        assert!(
            p999 - 0.040 > 10.0 * (p50 - 0.040),
            "p50 {p50} p99.9 {p999}"
        );
        assert!(st.reordered > 0);
        // Reordering only comes from the explicit reorder choice (plus duplicates).
        assert!(st.reordered < st.sent / 50, "{st:?}");
    }

    #[test]
    fn independent_jitter_reorders_without_fifo() {
        let profile = NetProfile {
            jitter: Jitter::Uniform {
                max: Duration::from_millis(30),
            },
            fifo: false,
            ..NetProfile::wired()
        };
        let (_, st) = run(profile, 2, 1000);
        assert!(st.reordered > 50, "{st:?}");
    }

    #[test]
    fn duplicates_are_delivered_twice_and_counted() {
        let profile = NetProfile {
            duplicate_prob: 0.1,
            ..NetProfile::wired()
        };
        let (out, st) = run(profile, 8, 5000);
        assert!(st.duplicated > 350 && st.duplicated < 650, "{st:?}");
        assert_eq!(out.len() as u64, 5000 + st.duplicated);
        assert_eq!(st.delivered, out.len() as u64);
    }

    #[test]
    fn blackout_drops_what_is_sent_inside_the_window() {
        let t0 = Instant::now();
        let mut net = NetEmulator::new(NetProfile::wired(), 1);
        net.set_blackout(
            t0 + Duration::from_millis(100),
            t0 + Duration::from_millis(600),
        );
        let mut got = Vec::new();
        for i in 0..50u32 {
            let now = t0 + TICK * i;
            net.send(now, Bytes::copy_from_slice(&i.to_be_bytes()));
            while let Some(p) = net.poll(now) {
                got.push(u32::from_be_bytes(p[..4].try_into().unwrap()));
            }
        }
        while let Some(at) = net.next_delivery() {
            let p = net.poll(at).unwrap();
            got.push(u32::from_be_bytes(p[..4].try_into().unwrap()));
        }
        let expected: Vec<u32> = (0..50).filter(|i| !(5..30).contains(i)).collect();
        assert_eq!(got, expected);
        assert_eq!(net.stats().lost_blackout, 25);
    }

    #[test]
    fn wifi_spikes_bunch_packets_after_a_stall() {
        let (out, _) = run(NetProfile::wifi(), 4, 3000); // 60 s
        let max = out.iter().map(|(_, s, a)| *a - *s).max().unwrap();
        assert!(max >= Duration::from_millis(60), "{max:?}");
        // After a stall, several packets arrive within a millisecond of each other.
        let mut arrivals: Vec<Instant> = out.iter().map(|p| p.2).collect();
        arrivals.sort();
        let bunched = arrivals
            .windows(3)
            .filter(|w| w[2] - w[0] < Duration::from_millis(1))
            .count();
        assert!(bunched > 5, "{bunched}");
    }

    #[test]
    fn drift_makes_delay_grow_or_shrink_linearly() {
        for ppm in [100.0, -100.0] {
            let profile = NetProfile::wired().with_drift_ppm(ppm);
            let (out, _) = run(profile, 6, 7_501); // 150 s
            let first = out[..100]
                .iter()
                .map(|(_, s, a)| (*a - *s).as_secs_f64())
                .sum::<f64>()
                / 100.0;
            let last = out[out.len() - 100..]
                .iter()
                .map(|(_, s, a)| (*a - *s).as_secs_f64())
                .sum::<f64>()
                / 100.0;
            let change = last - first;
            // 150 s at 100 ppm = 15 ms.
            assert!((change - ppm * 150e-6).abs() < 0.002, "ppm {ppm}: {change}");
        }
    }

    #[test]
    fn bandwidth_cap_queues_then_tail_drops() {
        // 200 bytes every 20 ms is 80 kbit/s; a 40 kbit/s link must drop about half.
        let profile = NetProfile::perfect()
            .with_bandwidth(Bandwidth {
                bits_per_sec: 40_000,
                queue_bytes: 2_000,
            })
            .with_loss(GilbertElliott::NONE);
        let t0 = Instant::now();
        let mut net = NetEmulator::new(profile, 1);
        for i in 0..1000u32 {
            net.send(t0 + TICK * i, Bytes::from(vec![0u8; 200]));
        }
        let st = net.stats();
        let share = st.lost_queue as f64 / st.sent as f64;
        assert!((share - 0.5).abs() < 0.05, "{st:?}");
        // Each packet takes 40 ms to serialise.
        let mut last = None;
        while let Some(at) = net.next_delivery() {
            net.poll(at).unwrap();
            if let Some(l) = last {
                assert!(at - l >= Duration::from_millis(40) - Duration::from_micros(1));
            }
            last = Some(at);
        }
    }
}
