//! A histogram with exponential forgetting and a quantile query, O(1) per insert.
//!
//! Instead of multiplying every bucket by the forget factor `f` on each insert, the weight
//! of new samples grows by `1/f` each time (older samples are relatively worth `f^age`),
//! and everything is rescaled when the weight gets large. Allocation happens once, in `new`.

/// Forgetting histogram over `[0, buckets × bucket_ms)` milliseconds.
#[derive(Debug, Clone)]
pub(crate) struct ForgetfulHistogram {
    buckets: Box<[f64]>,
    bucket_ms: f64,
    total: f64,
    weight: f64,
    inv_forget: f64,
    /// Highest bucket ever touched: quantile scans start there.
    top: usize,
}

impl ForgetfulHistogram {
    /// `buckets` buckets of `bucket_ms` each; `forget` in (0, 1] per insert.
    pub(crate) fn new(buckets: usize, bucket_ms: f64, forget: f64) -> Self {
        let forget = if forget > 0.0 && forget <= 1.0 {
            forget
        } else {
            1.0
        };
        Self {
            buckets: vec![0.0; buckets.max(1)].into_boxed_slice(),
            bucket_ms,
            total: 0.0,
            weight: 1.0,
            inv_forget: 1.0 / forget,
            top: 0,
        }
    }

    /// Adds one observation of `ms` (clamped into range).
    pub(crate) fn add(&mut self, ms: f64) {
        let last = self.buckets.len() - 1;
        let i = if ms.is_finite() && ms > 0.0 {
            ((ms / self.bucket_ms) as usize).min(last)
        } else {
            0
        };
        self.buckets[i] += self.weight;
        self.total += self.weight;
        self.top = self.top.max(i);
        self.weight *= self.inv_forget;
        if self.weight > 1e200 {
            let k = 1.0 / self.weight;
            for b in self.buckets.iter_mut() {
                *b *= k;
            }
            self.total *= k;
            self.weight = 1.0;
        }
    }

    /// Whether nothing was added yet.
    pub(crate) fn is_empty(&self) -> bool {
        self.total == 0.0
    }

    /// The upper edge (ms) of the smallest bucket at or below which a share `q` of the
    /// (weighted) mass lies. 0 when empty.
    pub(crate) fn quantile(&self, q: f64) -> f64 {
        if self.total <= 0.0 {
            return 0.0;
        }
        let tail_allowed = (1.0 - q).clamp(0.0, 1.0) * self.total;
        let mut tail = 0.0;
        let mut i = self.top;
        loop {
            tail += self.buckets[i];
            if tail > tail_allowed || i == 0 {
                return (i + 1) as f64 * self.bucket_ms;
            }
            i -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_of_uniform_data() {
        let mut h = ForgetfulHistogram::new(200, 1.0, 1.0);
        for i in 0..100 {
            h.add(i as f64 + 0.5);
        }
        assert_eq!(h.quantile(0.95), 95.0);
        assert_eq!(h.quantile(0.5), 50.0);
    }

    #[test]
    fn forgetting_lets_recent_data_win() {
        let mut h = ForgetfulHistogram::new(200, 1.0, 0.99);
        for _ in 0..1000 {
            h.add(100.0);
        }
        for _ in 0..1000 {
            h.add(5.0);
        }
        assert_eq!(h.quantile(0.95), 6.0);
        // Without forgetting, the old mass dominates the tail.
        let mut h = ForgetfulHistogram::new(200, 1.0, 1.0);
        for _ in 0..1000 {
            h.add(100.0);
        }
        for _ in 0..1000 {
            h.add(5.0);
        }
        assert_eq!(h.quantile(0.95), 101.0);
    }

    #[test]
    fn survives_rescaling_and_odd_values() {
        let mut h = ForgetfulHistogram::new(10, 2.0, 0.5);
        for _ in 0..5000 {
            h.add(f64::NAN);
            h.add(-3.0);
            h.add(1e30);
        }
        assert!(!h.is_empty());
        assert_eq!(h.quantile(0.99), 20.0);
    }
}
