//! Random variates drawn from a seeded generator (no `rand_distr`: a handful of formulas).

use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::profile::Jitter;

/// A uniform variate in `[0, 1)`.
pub(crate) fn unit(rng: &mut ChaCha8Rng) -> f64 {
    rng.random::<f64>()
}

/// True with probability `p` (consumes one variate even when `p` is 0 or 1, so that the
/// random stream does not depend on the parameters' values).
pub(crate) fn chance(rng: &mut ChaCha8Rng, p: f64) -> bool {
    unit(rng) < p
}

/// A standard normal variate (Box–Muller, one of the pair).
fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1 = 1.0 - unit(rng); // (0, 1]
    let u2 = unit(rng);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// An exponential variate of the given mean.
pub(crate) fn exponential(rng: &mut ChaCha8Rng, mean: Duration) -> Duration {
    let u = 1.0 - unit(rng); // (0, 1]
    Duration::from_secs_f64(-u.ln() * mean.as_secs_f64())
}

/// A uniform duration in `[lo, hi]`.
pub(crate) fn between(rng: &mut ChaCha8Rng, lo: Duration, hi: Duration) -> Duration {
    if hi <= lo {
        return lo;
    }
    lo + (hi - lo).mul_f64(unit(rng))
}

/// One jitter draw in seconds (may be negative for the symmetric models).
pub(crate) fn jitter_secs(rng: &mut ChaCha8Rng, jitter: &Jitter) -> f64 {
    match *jitter {
        Jitter::None => 0.0,
        Jitter::Uniform { max } => (unit(rng) * 2.0 - 1.0) * max.as_secs_f64(),
        Jitter::Normal { std_dev } => standard_normal(rng).clamp(-4.0, 4.0) * std_dev.as_secs_f64(),
        Jitter::Pareto { scale, shape, cap } => {
            let u = 1.0 - unit(rng); // (0, 1]
            let shape = if shape > 0.0 { shape } else { 1.0 };
            let x = scale.as_secs_f64() * (u.powf(-1.0 / shape) - 1.0);
            x.min(cap.as_secs_f64())
        }
    }
}
