//! `R` ↔ MOS: the E-model's mapping from the transmission rating to the mean opinion score
//! it predicts (ITU-T G.107 Annex B, equation B-4), and its numeric inverse for turning a
//! measured listening-quality MOS (e.g. PESQ MOS-LQO) back into a rating.

/// Predicted MOS (conversational quality, 1–4.5) of a transmission rating `r`
/// (G.107 Annex B, B-4):
///
/// - `R < 0`: MOS = 1
/// - `0 ≤ R ≤ 100`: MOS = 1 + 0.035·R + R·(R − 60)·(100 − R)·7·10⁻⁶
/// - `R > 100`: MOS = 4.5
///
/// The cubic dips a hair below 1 for small `R` (minimum ≈ 0.99 near R = 6.5); the result is
/// clamped to [1, 4.5].
pub fn r_to_mos(r: f64) -> f64 {
    if r.is_nan() || r <= 0.0 {
        1.0
    } else if r >= 100.0 {
        4.5
    } else {
        (1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6).clamp(1.0, 4.5)
    }
}

/// The rating `R` whose MOS (by [`r_to_mos`]) is `mos`: the inverse of G.107 Annex B, found
/// by bisection (the cubic has no convenient closed-form inverse).
///
/// MOS ≤ 1 gives 0 and MOS ≥ 4.5 gives 100: the curve is flat there. For a wideband PESQ
/// score (ITU-T P.862.2 MOS-LQO, which ranges 1.04–4.64 after the P.862.2 mapping from the
/// raw score) this means scores above 4.5 all map to R = 100; the narrowband G.107 scale has
/// no room above it.
pub fn mos_to_r(mos: f64) -> f64 {
    if mos.is_nan() || mos <= 1.0 {
        return 0.0;
    }
    if mos >= 4.5 {
        return 100.0;
    }
    // For 1 < mos < 4.5 the curve crosses `mos` exactly once on (0, 100): it is below 1 on
    // (0, ~13) and increasing from its minimum near 6.5 on.
    let (mut lo, mut hi) = (0.0f64, 100.0f64);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if r_to_mos(mid) < mos {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_points_of_annex_b() {
        // R = 93.2: 1 + 3.262 + 93.2·33.2·6.8·7e-6 = 4.262 + 0.14728 = 4.409.
        assert!((r_to_mos(93.2) - 4.409).abs() < 0.001, "{}", r_to_mos(93.2));
        // R = 50: 1 + 1.75 + 50·(−10)·50·7e-6 = 2.75 − 0.175 = 2.575.
        assert!((r_to_mos(50.0) - 2.575).abs() < 1e-9);
        // R = 80: 1 + 2.8 + 80·20·20·7e-6 = 3.8 + 0.224 = 4.024.
        assert!((r_to_mos(80.0) - 4.024).abs() < 1e-9);
        assert_eq!(r_to_mos(-5.0), 1.0);
        assert_eq!(r_to_mos(120.0), 4.5);
        assert_eq!(r_to_mos(5.0), 1.0, "the dip below 1 is clamped");
    }

    #[test]
    fn inverse_hits_known_points_and_saturates() {
        assert!((mos_to_r(2.575) - 50.0).abs() < 1e-6);
        assert!((mos_to_r(4.024) - 80.0).abs() < 1e-6);
        assert_eq!(
            mos_to_r(4.64),
            100.0,
            "P.862.2's top score is above the NB scale"
        );
        assert_eq!(mos_to_r(1.0), 0.0);
        assert_eq!(mos_to_r(f64::NAN), 0.0);
    }

    proptest! {
        #[test]
        fn inverse_round_trips_and_is_monotone(r in 13.0f64..100.0, d in 0.0f64..20.0) {
            let m = r_to_mos(r);
            prop_assert!((mos_to_r(m) - r).abs() < 1e-6);
            prop_assert!(r_to_mos((r + d).min(100.0)) >= m);
        }
    }
}
