//! Parameters of an emulated network path and the named presets.

use std::time::Duration;

/// The random part of the one-way delay, added to [`NetProfile::base_delay`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Jitter {
    /// No jitter: every packet takes exactly the base delay.
    None,
    /// Uniform in `[-max, +max]` around the base delay.
    Uniform {
        /// Half-width of the interval.
        max: Duration,
    },
    /// Gaussian around the base delay, truncated at ±4 standard deviations.
    Normal {
        /// Standard deviation.
        std_dev: Duration,
    },
    /// Heavy-tailed: `scale · (U^(-1/shape) − 1)`, a Pareto variable shifted to start at
    /// zero, capped at `cap`. Always adds delay (never subtracts).
    Pareto {
        /// Scale `x_m` of the Pareto distribution.
        scale: Duration,
        /// Shape `α` (smaller is heavier; 1.5–2 is typical of cellular links).
        shape: f64,
        /// Largest jitter ever drawn.
        cap: Duration,
    },
}

/// Delay spikes: the link stalls now and then (Wi-Fi retries, a scan, a handover) and then
/// releases everything that queued up in one burst. A packet sent during a stall is held
/// until the stall ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DelaySpikes {
    /// Mean time between the starts of two stalls (exponentially distributed).
    pub mean_interval: Duration,
    /// Shortest stall.
    pub min_duration: Duration,
    /// Longest stall (durations are uniform between min and max).
    pub max_duration: Duration,
}

/// Gilbert–Elliott two-state bursty loss. Per packet, the chain first moves (good → bad
/// with probability `p`, bad → good with probability `r`), then the packet is lost with the
/// loss probability of the state it is in. Mean loss is
/// `(r·loss_good + p·loss_bad) / (p + r)`; mean burst length in the bad state is `1/r`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GilbertElliott {
    /// Probability of moving from the good to the bad state.
    pub p: f64,
    /// Probability of moving from the bad to the good state.
    pub r: f64,
    /// Loss probability while in the good state.
    pub loss_good: f64,
    /// Loss probability while in the bad state.
    pub loss_bad: f64,
}

impl GilbertElliott {
    /// No loss at all.
    pub const NONE: Self = Self {
        p: 0.0,
        r: 1.0,
        loss_good: 0.0,
        loss_bad: 0.0,
    };

    /// The long-run mean loss probability of this chain.
    pub fn mean_loss(&self) -> f64 {
        if self.p + self.r == 0.0 {
            return self.loss_good;
        }
        (self.r * self.loss_good + self.p * self.loss_bad) / (self.p + self.r)
    }
}

/// A bottleneck link: packets are serialised at `bits_per_sec`; when more than
/// `queue_bytes` are waiting, a newly sent packet is dropped (tail drop).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bandwidth {
    /// Link rate in bits per second.
    pub bits_per_sec: u64,
    /// Queue size in bytes beyond which packets are dropped.
    pub queue_bytes: usize,
}

/// Everything that describes one direction of an emulated path.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetProfile {
    /// Fixed one-way delay.
    pub base_delay: Duration,
    /// Random delay on top of the base delay.
    pub jitter: Jitter,
    /// Occasional stalls of the link, if any.
    pub spikes: Option<DelaySpikes>,
    /// Bursty loss.
    pub loss: GilbertElliott,
    /// When true the path is FIFO: jitter delays a packet but never lets it overtake an
    /// earlier one (a queue, as most real paths are); reordering then only comes from
    /// `reorder_prob`. When false each packet's delay is independent (netem-style).
    pub fifo: bool,
    /// Probability that a packet is held back by `reorder_delay` and overtaken.
    pub reorder_prob: f64,
    /// Extra delay of a packet chosen for reordering.
    pub reorder_delay: Duration,
    /// Probability that a packet is delivered twice.
    pub duplicate_prob: f64,
    /// Receiver clock rate relative to the sender, in parts per million. Positive: the
    /// sender's clock is slow as seen by the receiver, so packets arrive ever later (the
    /// extra delay grows by `ppm` µs per second since the first packet); negative: ever
    /// earlier (never before they were sent).
    pub drift_ppm: f64,
    /// A bottleneck, if any.
    pub bandwidth: Option<Bandwidth>,
}

impl NetProfile {
    /// No delay, no jitter, no loss: the packet comes out when it goes in.
    pub fn perfect() -> Self {
        Self {
            base_delay: Duration::ZERO,
            jitter: Jitter::None,
            spikes: None,
            loss: GilbertElliott::NONE,
            fifo: true,
            reorder_prob: 0.0,
            reorder_delay: Duration::ZERO,
            duplicate_prob: 0.0,
            drift_ppm: 0.0,
            bandwidth: None,
        }
    }

    /// A good wired path: 20 ms ± 2 ms (uniform), no loss.
    pub fn wired() -> Self {
        Self {
            base_delay: Duration::from_millis(20),
            jitter: Jitter::Uniform {
                max: Duration::from_millis(2),
            },
            ..Self::perfect()
        }
    }

    /// Wi-Fi: 10 ms with 3 ms normal jitter, a stall of 50–250 ms every 4 s on average,
    /// 0.5 % mostly-random loss, a little reordering and duplication.
    pub fn wifi() -> Self {
        Self {
            base_delay: Duration::from_millis(10),
            jitter: Jitter::Normal {
                std_dev: Duration::from_millis(3),
            },
            spikes: Some(DelaySpikes {
                mean_interval: Duration::from_secs(4),
                min_duration: Duration::from_millis(50),
                max_duration: Duration::from_millis(250),
            }),
            loss: GilbertElliott {
                p: 0.002,
                r: 0.5,
                loss_good: 0.003,
                loss_bad: 0.5,
            },
            reorder_prob: 0.002,
            reorder_delay: Duration::from_millis(30),
            duplicate_prob: 0.001,
            ..Self::perfect()
        }
    }

    /// Mobile: 40 ms with heavy-tailed (Pareto, α = 1.7) jitter and 3 % bursty loss
    /// (Gilbert–Elliott, mean burst of 3.3 packets).
    pub fn mobile() -> Self {
        Self {
            base_delay: Duration::from_millis(40),
            jitter: Jitter::Pareto {
                scale: Duration::from_millis(4),
                shape: 1.7,
                cap: Duration::from_millis(400),
            },
            loss: GilbertElliott {
                p: 0.0125,
                r: 0.3,
                loss_good: 0.0,
                loss_bad: 0.75,
            },
            reorder_prob: 0.005,
            reorder_delay: Duration::from_millis(40),
            duplicate_prob: 0.002,
            ..Self::perfect()
        }
    }

    /// The wired path with the receiver's clock 100 ppm fast relative to the sender's.
    /// Use [`NetProfile::with_drift_ppm`] for the other sign (−100 ppm).
    pub fn drift() -> Self {
        Self {
            drift_ppm: 100.0,
            ..Self::wired()
        }
    }

    /// This profile with another clock drift.
    pub fn with_drift_ppm(self, drift_ppm: f64) -> Self {
        Self { drift_ppm, ..self }
    }

    /// This profile with another loss model.
    pub fn with_loss(self, loss: GilbertElliott) -> Self {
        Self { loss, ..self }
    }

    /// This profile behind a bandwidth bottleneck.
    pub fn with_bandwidth(self, bandwidth: Bandwidth) -> Self {
        Self {
            bandwidth: Some(bandwidth),
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mobile_preset_loses_three_percent_on_average() {
        let m = NetProfile::mobile().loss.mean_loss();
        assert!((m - 0.03).abs() < 0.001, "{m}");
        assert_eq!(GilbertElliott::NONE.mean_loss(), 0.0);
    }
}
