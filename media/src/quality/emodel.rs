//! [`EModel`]: the ITU-T G.107 (06/2015) transmission rating
//! `R = Ro − Is − Id − Ie,eff + A` (§7, equation 7-1) for a call described by its one-way
//! mouth-to-ear delay, its packet loss and its codec.
//!
//! Every parameter the caller does not set keeps its G.107 default (Table 1): SLR 8 dB,
//! RLR 2 dB, STMR 15 dB, LSTR 18 dB, Ds = Dr = 3, TELR 65 dB, WEPL 110 dB, qdu 1, Nc −70
//! dBm0p, Nfor −64 dBmp, Ps = Pr = 35 dB(A), A 0. With them `Ro − Is` ≈ 93.36 and a call with
//! no delay and no loss rates `R` ≈ 93.2 (MOS ≈ 4.41; the listener-echo term `Idle` is 0.15
//! even at zero delay).
//!
//! Delay: the caller gives the absolute delay `Ta` (mouth to ear). There is no separate echo
//! path here, so the talker-echo delay is taken as `T = Ta` and the listener-echo round trip
//! as `Tr = 2·Ta` (the usual planning assumption when echo paths are the speech path); the
//! echo losses keep their defaults (TELR 65 dB, WEPL 110 dB, i.e. echo well controlled).

use std::time::Duration;

use super::codec::CodecImpairment;
use super::mos::{mos_to_r, r_to_mos};

// G.107 Table 1 defaults.
const SLR: f64 = 8.0;
const RLR: f64 = 2.0;
const STMR: f64 = 15.0;
const LSTR: f64 = 18.0;
const DS: f64 = 3.0;
const TELR: f64 = 65.0;
const WEPL: f64 = 110.0;
const QDU: f64 = 1.0;
const NC: f64 = -70.0;
const NFOR: f64 = -64.0;
const PS: f64 = 35.0;
const PR: f64 = 35.0;
const A: f64 = 0.0;

fn lg(x: f64) -> f64 {
    x.log10()
}

/// The E-model inputs of one call. Build with [`EModel::new`] and the `with_` methods.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EModel {
    codec: CodecImpairment,
    /// Absolute one-way delay `Ta`, ms.
    ta_ms: f64,
    /// Packet-loss probability `Ppl`, percent.
    ppl_pct: f64,
    /// Burst ratio `BurstR` (1 = random loss).
    burst_r: f64,
    /// An equipment impairment measured by listening (loss included), replacing the codec's.
    measured_ie: Option<f64>,
}

impl EModel {
    /// A call with `codec`, no delay and no loss.
    pub fn new(codec: CodecImpairment) -> Self {
        Self {
            codec,
            ta_ms: 0.0,
            ppl_pct: 0.0,
            burst_r: 1.0,
            measured_ie: None,
        }
    }

    /// With one-way mouth-to-ear delay `ta`.
    pub fn with_delay(self, ta: Duration) -> Self {
        self.with_delay_ms(ta.as_secs_f64() * 1000.0)
    }

    /// With one-way mouth-to-ear delay `ta_ms` milliseconds (negative or NaN: 0).
    pub fn with_delay_ms(mut self, ta_ms: f64) -> Self {
        self.ta_ms = if ta_ms.is_finite() {
            ta_ms.max(0.0)
        } else {
            0.0
        };
        self
    }

    /// With packet loss `pct` percent (clamped to 0–100; NaN: 0).
    pub fn with_loss_pct(mut self, pct: f64) -> Self {
        self.ppl_pct = if pct.is_nan() {
            0.0
        } else {
            pct.clamp(0.0, 100.0)
        };
        self
    }

    /// With burst ratio `burst_r` (G.107 §7.4: mean observed burst length over the mean for
    /// random loss at the same rate; 1 for random loss; below 1 is clamped to 1).
    pub fn with_burst_ratio(mut self, burst_r: f64) -> Self {
        self.burst_r = if burst_r.is_finite() {
            burst_r.max(1.0)
        } else {
            1.0
        };
        self
    }

    /// With an effective equipment impairment measured by listening (it replaces the
    /// codec's `Ie,eff`, loss included). See [`EModel::ie_from_listening`].
    pub fn with_measured_impairment(mut self, ie_eff: f64) -> Self {
        self.measured_ie = Some(if ie_eff.is_finite() {
            ie_eff.max(0.0)
        } else {
            0.0
        });
        self
    }

    /// The equipment impairment shown by a listening-quality measurement against a clean
    /// reference, after ITU-T P.834 §§6–7 (Ie from instrumental models): both MOS values go
    /// through the inverse of the G.107 Annex B curve ([`mos_to_r`]) and
    /// `Ie = R(reference) − R(degraded)`, never below 0. `reference_mos` is the score the
    /// instrument gives the reference against itself (PESQ wideband: 4.64, P.862.2), so the
    /// codec's own impairment is not in it: add the codec's `Ie` for an absolute figure.
    pub fn ie_from_listening(reference_mos: f64, degraded_mos: f64) -> f64 {
        (mos_to_r(reference_mos) - mos_to_r(degraded_mos)).max(0.0)
    }

    /// One-way delay `Ta`, ms.
    pub fn delay_ms(&self) -> f64 {
        self.ta_ms
    }

    /// Circuit noise `No`, dBm0p (G.107 §7.1, equations 7-3 to 7-6).
    fn no() -> f64 {
        let olr = SLR + RLR;
        let nfo = NFOR + RLR;
        let pre = PR + 10.0 * lg(1.0 + 10f64.powf((10.0 - LSTR) / 10.0));
        let nor = RLR - 121.0 + pre + 0.008 * (pre - 35.0).powi(2);
        let nos = PS - SLR - DS - 100.0 + 0.004 * (PS - olr - DS - 14.0).powi(2);
        10.0 * lg(10f64.powf(NC / 10.0)
            + 10f64.powf(nos / 10.0)
            + 10f64.powf(nor / 10.0)
            + 10f64.powf(nfo / 10.0))
    }

    /// Basic signal-to-noise ratio `Ro = 15 − 1.5·(SLR + No)` (G.107 §7.1, 7-2): 94.77 at
    /// the defaults.
    pub fn ro(&self) -> f64 {
        15.0 - 1.5 * (SLR + Self::no())
    }

    /// Simultaneous impairment `Is = Iolr + Ist + Iq` (G.107 §7.2, 7-8 to 7-17): ≈ 1.41 at
    /// the defaults. `Ist` depends on the talker-echo delay `T` through `STMRo` (7-11).
    pub fn is(&self) -> f64 {
        let no = Self::no();
        let olr = SLR + RLR;
        let xolr = olr + 0.2 * (64.0 + no - RLR);
        let iolr = 20.0 * ((1.0 + (xolr / 8.0).powi(8)).powf(1.0 / 8.0) - xolr / 8.0);
        let t = self.ta_ms;
        let stmro =
            -10.0 * lg(10f64.powf(-STMR / 10.0) + (-t / 4.0).exp() * 10f64.powf(-TELR / 10.0));
        let ist = 12.0 * (1.0 + ((stmro - 13.0) / 6.0).powi(8)).powf(1.0 / 8.0)
            - 28.0 * (1.0 + ((stmro + 1.0) / 19.4).powi(35)).powf(1.0 / 35.0)
            - 13.0 * (1.0 + ((stmro - 3.0) / 33.0).powi(13)).powf(1.0 / 13.0)
            + 29.0;
        let q = 37.0 - 15.0 * lg(QDU);
        let g = 1.07 + 0.258 * q + 0.0602 * q * q;
        let y = (self.ro() - 100.0) / 15.0 + 46.0 / 8.4 - g / 9.0;
        let z = 46.0 / 30.0 - g / 40.0;
        let iq = 15.0 * lg(1.0 + 10f64.powf(y) + 10f64.powf(z));
        iolr + ist + iq
    }

    /// Talker-echo impairment `Idte` (G.107 §7.3, 7-19 to 7-22) at `T = Ta`; 0 for
    /// `T < 1 ms` (echo that close is sidetone). Clamped at 0: with the default TELR the
    /// formula dips to −0.11 for T of 1–4 ms, which would make a little delay *raise* `R`.
    pub fn idte(&self) -> f64 {
        let t = self.ta_ms;
        if t < 1.0 {
            return 0.0;
        }
        let roe = -1.5 * (Self::no() - RLR);
        let terv =
            TELR - 40.0 * lg((1.0 + t / 10.0) / (1.0 + t / 150.0)) + 6.0 * (-0.3 * t * t).exp();
        let re = 80.0 + 2.5 * (terv - 14.0);
        let d = roe - re;
        ((d / 2.0 + (d * d / 4.0 + 100.0).sqrt() - 1.0) * (1.0 - (-t).exp())).max(0.0)
    }

    /// Listener-echo impairment `Idle` (G.107 §7.3, 7-25 and 7-26) at `Tr = 2·Ta`.
    pub fn idle(&self) -> f64 {
        let tr = 2.0 * self.ta_ms;
        let rle = 10.5 * (WEPL + 7.0) * (tr + 1.0).powf(-0.25);
        let d = self.ro() - rle;
        d / 2.0 + (d * d / 4.0 + 169.0).sqrt()
    }

    /// Pure-delay impairment `Idd` (G.107 §7.3, 7-27 and 7-28, default mT = 100 ms,
    /// sT = 1): 0 up to `Ta` = 100 ms, else with `X = log(Ta/100)/log 2`,
    /// `Idd = 25·{(1 + X⁶)^(1/6) − 3·(1 + (X/3)⁶)^(1/6) + 2}`.
    pub fn idd(&self) -> f64 {
        let ta = self.ta_ms;
        if ta <= 100.0 {
            return 0.0;
        }
        let x = lg(ta / 100.0) / lg(2.0);
        25.0 * ((1.0 + x.powi(6)).powf(1.0 / 6.0) - 3.0 * (1.0 + (x / 3.0).powi(6)).powf(1.0 / 6.0)
            + 2.0)
    }

    /// Delay impairment `Id = Idte + Idle + Idd` (G.107 §7.3, 7-18).
    pub fn id(&self) -> f64 {
        self.idte() + self.idle() + self.idd()
    }

    /// Effective equipment impairment (G.107 §7.4, 7-29):
    /// `Ie,eff = Ie + (95 − Ie)·Ppl / (Ppl/BurstR + Bpl)`, or the measured one.
    pub fn ie_eff(&self) -> f64 {
        if let Some(ie) = self.measured_ie {
            return ie;
        }
        let CodecImpairment { ie, bpl } = self.codec;
        let ppl = self.ppl_pct;
        ie + (95.0 - ie) * ppl / (ppl / self.burst_r + bpl)
    }

    /// The rating `R = Ro − Is − Id − Ie,eff + A` (G.107 §7, 7-1).
    pub fn r(&self) -> f64 {
        self.ro() - self.is() - self.id() - self.ie_eff() + A
    }

    /// The MOS `R` predicts ([`r_to_mos`], G.107 Annex B).
    pub fn mos(&self) -> f64 {
        r_to_mos(self.r())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const OPUS: CodecImpairment = CodecImpairment::OPUS;

    #[test]
    fn defaults_rate_93_2() {
        let e = EModel::new(CodecImpairment::G711_PLC);
        // By hand: No = 10·lg(10^-7 + 10^-7.574 + 10^-8.336 + 10^-6.2) = −61.18 dBm0p,
        // Ro = 15 − 1.5·(8 − 61.18) = 94.77.
        assert!((e.ro() - 94.77).abs() < 0.01, "Ro {}", e.ro());
        // Iolr = 20·((1 + (10.164/8)^8)^(1/8) − 10.164/8) = 0.44, Ist ≈ 0, Iq = 0.98.
        assert!((e.is() - 1.41).abs() < 0.02, "Is {}", e.is());
        // So Ro − Is = 93.36. Idle at Tr = 0: Rle = 10.5·117 = 1228.5, d = 94.77 − 1228.5;
        // d/2 + √(d²/4 + 169) = 169/(2·566.87) = 0.149.
        assert!((e.id() - 0.149).abs() < 0.001, "Id {}", e.id());
        assert!((e.r() - 93.2).abs() < 0.05, "R {}", e.r());
        assert!((e.mos() - 4.41).abs() < 0.005, "MOS {}", e.mos());
    }

    #[test]
    fn delay_impairment_at_150_and_300_ms() {
        let e150 = EModel::new(OPUS).with_delay_ms(150.0);
        // Idd: X = log2(1.5) = 0.585; 25·((1 + 0.0401)^(1/6) − 3·(1 + 5.5e-5)^(1/6) + 2)
        // = 25·(1.00657 − 3.0000275 + 2) = 0.164.
        assert!((e150.idd() - 0.164).abs() < 0.002, "Idd {}", e150.idd());
        // Idte: TERV = 65 − 40·lg(16/2) = 28.876, Re = 80 + 2.5·14.876 = 117.19,
        // Roe = −1.5·(−61.18 − 2) = 94.77, Roe − Re = −22.42:
        // −11.21 + √(125.7 + 100) − 1 = 2.81.
        assert!((e150.idte() - 2.81).abs() < 0.02, "Idte {}", e150.idte());
        // Idle: Rle = 1228.5·301^-0.25 = 294.5; (94.77 − 294.5)/2 + √(99.87² + 169) = 0.84.
        assert!((e150.idle() - 0.84).abs() < 0.01, "Idle {}", e150.idle());
        let e300 = EModel::new(OPUS).with_delay_ms(300.0);
        // Idd: X = log2(3) = 1.585; 25·(16.83^(1/6) − 3·1.02167^(1/6) + 2)
        // = 25·(1.6008 − 3.0107 + 2) = 14.75.
        assert!((e300.idd() - 14.75).abs() < 0.05, "Idd {}", e300.idd());
        assert_eq!(EModel::new(OPUS).with_delay_ms(100.0).idd(), 0.0);
        assert!(e300.r() < e150.r() && e150.r() < EModel::new(OPUS).r());
        // Is barely moves with T (STMRo), so R(150) = 93.36 − 2.81 − 0.84 − 0.16 = 89.54.
        assert!((e150.r() - 89.54).abs() < 0.02, "R {}", e150.r());
        assert!(
            (e300.r() - (93.36 - 4.83 - 1.09 - 14.76)).abs() < 0.05,
            "R {}",
            e300.r()
        );
    }

    #[test]
    fn loss_impairment_by_hand() {
        // Opus assumption: Ie 0, Bpl 25.1. 2 % random loss: 95·2/(2 + 25.1) = 7.011.
        let e = EModel::new(OPUS).with_loss_pct(2.0);
        assert!((e.ie_eff() - 7.011).abs() < 0.001, "Ie,eff {}", e.ie_eff());
        assert!((e.r() - (93.2 - 7.011)).abs() < 0.05);
        // G.729A, 1 % loss, BurstR 2: 11 + 84·1/(0.5 + 19) = 15.308.
        let g = EModel::new(CodecImpairment::G729A)
            .with_loss_pct(1.0)
            .with_burst_ratio(2.0);
        assert!((g.ie_eff() - 15.308).abs() < 0.001, "{}", g.ie_eff());
    }

    #[test]
    fn a_listening_measurement_replaces_the_codec_impairment() {
        // A degraded PESQ MOS of 4.024 is R 80 against a reference above the NB scale (100).
        let ie = EModel::ie_from_listening(4.64, 4.024);
        assert!((ie - 20.0).abs() < 1e-6);
        let e = EModel::new(OPUS)
            .with_loss_pct(50.0)
            .with_measured_impairment(ie);
        assert_eq!(e.ie_eff(), ie);
        assert_eq!(EModel::ie_from_listening(4.0, 4.3), 0.0);
    }

    #[test]
    fn bad_inputs_are_clamped() {
        let e = EModel::new(OPUS)
            .with_delay_ms(f64::NAN)
            .with_loss_pct(-3.0)
            .with_burst_ratio(0.0);
        assert_eq!(e, EModel::new(OPUS));
        assert!(EModel::new(OPUS).with_loss_pct(1e9).r().is_finite());
    }

    proptest! {
        #[test]
        fn more_loss_or_delay_never_raises_r(
            ta in 0.0f64..1000.0, dta in 0.0f64..500.0,
            ppl in 0.0f64..60.0, dppl in 0.0f64..40.0,
            burst in 1.0f64..4.0,
        ) {
            let base = EModel::new(OPUS).with_delay_ms(ta).with_loss_pct(ppl).with_burst_ratio(burst);
            let r = base.r();
            prop_assert!(base.with_delay_ms(ta + dta).r() <= r + 1e-9);
            prop_assert!(base.with_loss_pct(ppl + dppl).r() <= r + 1e-9);
            prop_assert!(base.with_delay_ms(ta + dta).with_loss_pct(ppl + dppl).mos() <= base.mos() + 1e-12);
        }
    }
}
