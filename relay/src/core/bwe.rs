//! The relay's estimate of what it may send to one browser: the send side of
//! transport-wide congestion control (draft-holmer-rmcat-transport-wide-cc-extensions),
//! with the loss-based controller of GCC (draft-ietf-rmcat-gcc-02 §6).
//!
//! - **Stamping.** Media toward a browser that negotiated transport-cc carries the
//!   transport-wide sequence number element the [`super::mid::MidRewrite`] reserves; the
//!   relay numbers it per transport and remembers each packet's send time and size in a
//!   fixed ring of [`HISTORY`] entries indexed by sequence number (no allocation per packet).
//! - **Feedback.** The browser's transport feedback says which numbers arrived. Over windows
//!   of [`WINDOW`] the relay counts packets reported lost and received, and the bytes
//!   received per second (the receive rate). A window closes early (after at least
//!   [`EARLY_MIN`]) once [`EARLY_PACKETS`] were reported with more than 10 % lost: a link
//!   that just fell is acted on at once.
//! - **Estimate.** At each window: loss above 10 % → the estimate drops to
//!   `receive rate × (1 − 0.5 × loss)`; below 2 % → it grows by
//!   [`BweConfig::increase_per_sec`] (8 %/s as GCC) per second elapsed; in between it holds.
//!   It stays within [`BweConfig::min_bps`]..[`BweConfig::max_bps`]. There is no probing and
//!   no delay-gradient detector: the relay forwards what publishers send, so an estimate
//!   grows while the receiver gets a lower layer and is checked by loss once it moves up.

use std::time::{Duration, Instant};

use supernode_media::packet::rtcp::{TransportFeedback, TwccStatus};

/// Entries of the send history (a power of two): several seconds of video at 1000 pps.
pub const HISTORY: usize = 4096;

/// Window over which feedback is summed before the estimate moves.
pub const WINDOW: Duration = Duration::from_millis(500);

/// A window closes early when at least this many packets were reported in it, over at
/// least [`EARLY_MIN`], with more than 10 % of them lost (see [`Bwe::on_feedback`]).
pub const EARLY_PACKETS: u32 = 40;

/// The shortest window that may close early.
pub const EARLY_MIN: Duration = Duration::from_millis(100);

/// Tunables of the estimator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BweConfig {
    /// The estimate a transport starts with, bits/s.
    pub initial_bps: u64,
    /// Floor, bits/s.
    pub min_bps: u64,
    /// Ceiling, bits/s.
    pub max_bps: u64,
    /// Growth factor per second while loss is under 2 % (GCC: 1.08).
    pub increase_per_sec: f64,
}

impl Default for BweConfig {
    fn default() -> Self {
        Self {
            initial_bps: 2_000_000,
            min_bps: 100_000,
            max_bps: 20_000_000,
            increase_per_sec: 1.08,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Sent {
    seq: u16,
    size: u16,
    /// Not yet reported (received or lost) by any feedback.
    pending: bool,
}

/// The estimator of one browser transport. See the module docs.
#[derive(Debug)]
pub struct Bwe {
    config: BweConfig,
    next_seq: u16,
    history: Box<[Sent]>,
    estimate: f64,
    window_start: Option<Instant>,
    lost: u32,
    received: u32,
    received_bytes: u64,
    last_update: Option<Instant>,
    last_loss: f64,
    last_receive_bps: u64,
    decreases: u64,
}

impl Bwe {
    /// A fresh estimator.
    pub fn new(config: BweConfig) -> Self {
        Self {
            config,
            next_seq: 0,
            history: vec![
                Sent {
                    seq: 0,
                    size: 0,
                    pending: false
                };
                HISTORY
            ]
            .into_boxed_slice(),
            estimate: config.initial_bps as f64,
            window_start: None,
            lost: 0,
            received: 0,
            received_bytes: 0,
            last_update: None,
            last_loss: 0.0,
            last_receive_bps: 0,
            decreases: 0,
        }
    }

    /// Numbers a packet of `size` bytes: returns the transport-wide sequence number to write.
    #[inline]
    pub fn stamp(&mut self, size: usize) -> u16 {
        let seq = self.next_seq;
        self.next_seq = seq.wrapping_add(1);
        self.history[seq as usize % HISTORY] = Sent {
            seq,
            size: size.min(u16::MAX as usize) as u16,
            pending: true,
        };
        seq
    }

    /// A transport feedback packet from the browser, at `now`. Returns whether the estimate
    /// moved (a window closed).
    pub fn on_feedback(&mut self, now: Instant, fb: &TransportFeedback<'_>) -> bool {
        self.window_start.get_or_insert(now);
        for (seq, status) in fb.statuses() {
            let e = &mut self.history[seq as usize % HISTORY];
            if e.seq != seq || !e.pending {
                continue; // not sent by us, too old, or already counted
            }
            match status {
                TwccStatus::Received(_) => {
                    e.pending = false;
                    self.received += 1;
                    self.received_bytes += u64::from(e.size);
                }
                // A later feedback may still report it received (reordering): counted lost
                // now, as GCC does per report.
                TwccStatus::NotReceived => {
                    e.pending = false;
                    self.lost += 1;
                }
            }
        }
        let start = self.window_start.unwrap_or(now);
        let span = now.saturating_duration_since(start);
        let total = self.lost + self.received;
        let loss = if total == 0 {
            0.0
        } else {
            f64::from(self.lost) / f64::from(total)
        };
        // Heavy loss over enough packets closes the window early: a link that just fell
        // is acted on within a feedback or two, not half a second later.
        let congested = span >= EARLY_MIN && total >= EARLY_PACKETS && loss > 0.10;
        if span < WINDOW && !congested {
            return false;
        }
        let receive_bps = self.received_bytes * 8 * 1_000_000 / span.as_micros().max(1) as u64;
        let dt = self
            .last_update
            .map_or(span, |t| now.saturating_duration_since(t))
            .as_secs_f64();
        if total > 0 {
            if loss > 0.10 {
                let to = receive_bps as f64 * (1.0 - 0.5 * loss);
                if to < self.estimate {
                    self.estimate = to;
                    self.decreases += 1;
                }
            } else if loss < 0.02 {
                self.estimate *= self.config.increase_per_sec.powf(dt);
            }
        }
        self.estimate = self
            .estimate
            .clamp(self.config.min_bps as f64, self.config.max_bps as f64);
        self.last_loss = loss;
        self.last_receive_bps = receive_bps;
        self.last_update = Some(now);
        self.window_start = Some(now);
        self.lost = 0;
        self.received = 0;
        self.received_bytes = 0;
        true
    }

    /// The estimate, bits/s.
    pub fn estimate_bps(&self) -> u64 {
        self.estimate as u64
    }

    /// Loss fraction of the last window.
    pub fn last_loss(&self) -> f64 {
        self.last_loss
    }

    /// Receive rate of the last window, bits/s.
    pub fn last_receive_bps(&self) -> u64 {
        self.last_receive_bps
    }

    /// How many times loss brought the estimate down.
    pub fn decreases(&self) -> u64 {
        self.decreases
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use supernode_media::ids::Ssrc;
    use supernode_media::packet::rtcp::TwccPackets;

    fn feedback(base: u16, statuses: &[TwccStatus]) -> TransportFeedback<'_> {
        TransportFeedback {
            sender_ssrc: Ssrc(1),
            media_ssrc: Ssrc(0),
            base_seq: base,
            reference_time: 0,
            fb_pkt_count: 0,
            packets: TwccPackets::Items(statuses),
        }
    }

    /// Sends `n` packets of 1250 bytes over 100 ms and reports them with one in `lose_every`
    /// lost (0: none), at `now`.
    fn round(b: &mut Bwe, now: Instant, n: usize, lose_every: usize) -> bool {
        let first = b.stamp(1250);
        for _ in 1..n {
            b.stamp(1250);
        }
        let st: Vec<TwccStatus> = (0..n)
            .map(|i| {
                if lose_every > 0 && i % lose_every == 0 {
                    TwccStatus::NotReceived
                } else {
                    TwccStatus::Received(4)
                }
            })
            .collect();
        b.on_feedback(now, &feedback(first, &st))
    }

    #[test]
    fn heavy_loss_brings_it_down_to_the_receive_rate_and_no_loss_grows_it() {
        let t0 = Instant::now();
        let mut b = Bwe::new(BweConfig::default());
        let mut now = t0;
        // 100 packets of 1250 B per 100 ms = 10 Mbit/s sent, a quarter lost.
        for _ in 0..6 {
            now += Duration::from_millis(100);
            round(&mut b, now, 100, 4);
        }
        assert!((b.last_loss() - 0.25).abs() < 0.01, "{}", b.last_loss());
        // 7.5 Mbit/s received: 7.5 × (1 − 0.125) is above the 2 Mbit/s estimate, which loss
        // only ever lowers.
        assert_eq!(b.estimate_bps(), 2_000_000);
        // Now a bottleneck: 20 packets (2 Mbit/s) per 100 ms, half lost.
        for _ in 0..6 {
            now += Duration::from_millis(100);
            round(&mut b, now, 20, 2);
        }
        let e = b.estimate_bps();
        assert!(
            (700_000..=800_000).contains(&e),
            "1 Mbit/s received × 0.75: {e}"
        );
        assert!(b.decreases() >= 1);
        // Loss gone: 8 %/s growth.
        let before = b.estimate_bps() as f64;
        for _ in 0..50 {
            now += Duration::from_millis(100);
            round(&mut b, now, 10, 0);
        }
        let grown = b.estimate_bps() as f64 / before;
        assert!((1.4..1.5).contains(&grown), "about 1.08^5: {grown}");
    }

    #[test]
    fn a_link_that_falls_is_acted_on_before_the_window_ends_light_loss_is_not() {
        let t0 = Instant::now();
        let mut b = Bwe::new(BweConfig::default());
        // The window opens.
        assert!(!round(&mut b, t0, 10, 0));
        // 300 ms later (within the 500 ms window): 50 packets reported, half lost: 1.2 Mbit/s
        // received; the window closes early and the estimate falls below 2 Mbit/s.
        let at = t0 + 3 * EARLY_MIN;
        assert!(at < t0 + WINDOW);
        assert!(round(&mut b, at, 50, 2));
        assert_eq!(b.decreases(), 1);
        assert!(b.estimate_bps() < 1_000_000, "{}", b.estimate_bps());
        // Light loss (1 in 20) over as many packets does not close a window early...
        assert!(!round(&mut b, at + EARLY_MIN, 60, 20));
        // ... nor does heavy loss over too few packets (a burst of a quiet stream).
        let mut c = Bwe::new(BweConfig::default());
        assert!(!round(&mut c, t0, 5, 0));
        assert!(!round(&mut c, t0 + 2 * EARLY_MIN, 20, 2));
        assert_eq!(c.decreases(), 0);
    }

    #[test]
    fn feedback_for_unknown_or_repeated_numbers_is_ignored() {
        let t0 = Instant::now();
        let mut b = Bwe::new(BweConfig::default());
        let s = b.stamp(1000);
        let lost = [TwccStatus::NotReceived; 3];
        // Numbers never sent: nothing counted (and the window only opens).
        assert!(!b.on_feedback(t0, &feedback(s.wrapping_add(100), &lost)));
        assert!(b.on_feedback(t0 + WINDOW, &feedback(s, &[TwccStatus::Received(0)])));
        assert_eq!(b.last_loss(), 0.0);
        assert_eq!(b.last_receive_bps(), 16_000, "1000 B in 0.5 s");
        // Reported again (as lost): already counted, ignored.
        assert!(b.on_feedback(t0 + 2 * WINDOW, &feedback(s, &[TwccStatus::NotReceived])));
        assert_eq!(b.last_loss(), 0.0);
        assert_eq!(b.last_receive_bps(), 0);
        assert_eq!(b.decreases(), 0);
    }
}
