//! [`CallFigures`]: an E-model estimate of one call's quality from what an endpoint or a
//! relay measures — packet loss, jitter-buffer delay (or the interarrival jitter it would
//! need), round-trip time — and the codec.
//!
//! The mouth-to-ear delay is assembled as `Ta = network one-way + jitter buffer + codec`,
//! with the network one-way delay taken as half the RTCP round-trip time (RFC 3550 §6.4.1
//! LSR/DLSR) of the hop that measured it. Loss is random (BurstR = 1). The figures are an
//! estimate for monitoring (G.107 is a planning tool), not a listening test.

use super::codec::CodecImpairment;
use super::emodel::EModel;

/// Opus's algorithmic delay with 20 ms frames, ms (RFC 6716 §2: 26.5 ms at the default
/// frame size: the frame plus look-ahead and resampling delay).
pub const OPUS_DELAY_MS: f64 = 26.5;

/// Jitter-buffer delay assumed for a receiver seeing `jitter_ms` of RFC 3550 interarrival
/// jitter, ms: one 20 ms packet plus twice the jitter. Used where the buffer itself is not
/// visible (at the relay); an endpoint reports its buffer's real delay instead.
pub fn jitter_buffer_for_jitter_ms(jitter_ms: f64) -> f64 {
    20.0 + 2.0 * jitter_ms.max(0.0)
}

/// What is known of a call (or of one leg of it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallFigures {
    /// Packets lost before playout, percent (network loss plus packets the jitter buffer
    /// dropped as late).
    pub loss_pct: f64,
    /// Jitter-buffer delay, ms.
    pub jitter_buffer_ms: f64,
    /// Round-trip time of the measured hop, ms (`None`: not known yet; counted as 0).
    pub rtt_ms: Option<f64>,
    /// The codec's E-model figures.
    pub codec: CodecImpairment,
    /// The codec's algorithmic delay, ms.
    pub codec_delay_ms: f64,
}

impl CallFigures {
    /// An Opus call (20 ms frames) with these measurements.
    pub fn opus(loss_pct: f64, jitter_buffer_ms: f64, rtt_ms: Option<f64>) -> Self {
        Self {
            loss_pct,
            jitter_buffer_ms,
            rtt_ms,
            codec: CodecImpairment::OPUS,
            codec_delay_ms: OPUS_DELAY_MS,
        }
    }

    /// The estimated mouth-to-ear delay `Ta`, ms: RTT/2 + jitter buffer + codec delay.
    pub fn mouth_to_ear_ms(&self) -> f64 {
        let net = self
            .rtt_ms
            .filter(|r| r.is_finite())
            .map_or(0.0, |r| r.max(0.0) / 2.0);
        net + self.jitter_buffer_ms.max(0.0) + self.codec_delay_ms
    }

    /// The E-model of these figures.
    pub fn emodel(&self) -> EModel {
        EModel::new(self.codec)
            .with_delay_ms(self.mouth_to_ear_ms())
            .with_loss_pct(self.loss_pct)
    }

    /// The rating `R`.
    pub fn r(&self) -> f64 {
        self.emodel().r()
    }

    /// The MOS estimate (G.107 Annex B of `R`).
    pub fn mos(&self) -> f64 {
        self.emodel().mos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_loss_delay_and_rtt_give_the_hand_computed_e_model() {
        // 1 % loss, 40 ms buffer, 60 ms RTT: Ta = 30 + 40 + 26.5 = 96.5 ms (below 100: no
        // Idd). By hand (G.107 §7.3): TERV = 65 − 40·lg(10.65/1.643) + 0 = 32.53,
        // Re = 126.35, Roe − Re = −31.6, Idte = −15.8 + √(249.3 + 100) − 1 = 1.90;
        // Rle = 1228.5·194^-0.25 = 329.2, Idle = −117.2 + √(117.2² + 169) = 0.72;
        // Ie,eff = 95·1/(1 + 25.1) = 3.64. R = 93.36 − 1.90 − 0.72 − 3.64 = 87.10,
        // MOS = 1 + 3.0485 + 87.10·27.10·12.90·7e-6 = 4.262.
        let f = CallFigures::opus(1.0, 40.0, Some(60.0));
        assert!((f.mouth_to_ear_ms() - 96.5).abs() < 1e-9);
        assert!((f.emodel().idte() - 1.90).abs() < 0.01);
        assert!((f.emodel().idle() - 0.72).abs() < 0.01);
        assert!((f.emodel().ie_eff() - 3.640).abs() < 0.001);
        assert!((f.r() - 87.10).abs() < 0.02, "R {}", f.r());
        assert!((f.mos() - 4.262).abs() < 0.002, "MOS {}", f.mos());
    }

    #[test]
    fn a_relay_leg_estimate_from_jitter() {
        // 3 % loss, 10 ms jitter → 40 ms buffer, 80 ms RTT: Ta = 40 + 40 + 26.5 = 106.5 ms;
        // Ie,eff = 95·3/28.1 = 10.14; Idte 2.08, Idle 0.74, Idd ≈ 0: R = 80.39, MOS 4.039.
        let f = CallFigures::opus(3.0, jitter_buffer_for_jitter_ms(10.0), Some(80.0));
        assert!((f.mouth_to_ear_ms() - 106.5).abs() < 1e-9);
        assert!((f.r() - 80.39).abs() < 0.02, "R {}", f.r());
        assert!((f.mos() - 4.039).abs() < 0.002, "MOS {}", f.mos());
        // No RTT yet: the network part counts as 0.
        assert_eq!(CallFigures::opus(0.0, 20.0, None).mouth_to_ear_ms(), 46.5);
        assert_eq!(
            CallFigures::opus(0.0, 20.0, Some(f64::NAN)).mouth_to_ear_ms(),
            46.5
        );
    }
}
