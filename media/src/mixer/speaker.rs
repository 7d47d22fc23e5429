//! Active-speaker detection with hysteresis: the speaker changes only when someone else has
//! been clearly louder (by a margin) for a while (a hold time), so a cough or a short "mm"
//! does not steal the floor.

/// Tuning of [`SpeakerDetector`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpeakerConfig {
    /// How much louder (dB, smoothed) a challenger must be.
    pub margin_db: f64,
    /// For how many consecutive 10 ms frames.
    pub hold_frames: u32,
    /// Frames a challenger needs when the current speaker has gone quiet.
    pub quiet_hold_frames: u32,
    /// Smoothing of each participant's level per frame (0..1, larger is faster).
    pub smoothing: f64,
    /// Smoothed level (dBov) under which a participant counts as quiet.
    pub quiet_dbov: f64,
}

impl Default for SpeakerConfig {
    fn default() -> Self {
        Self {
            margin_db: 6.0,
            hold_frames: 30,
            quiet_hold_frames: 10,
            smoothing: 0.1,
            quiet_dbov: -55.0,
        }
    }
}

/// Tracks who speaks among participants numbered by their index.
#[derive(Debug, Clone)]
pub struct SpeakerDetector {
    config: SpeakerConfig,
    smoothed: Vec<f64>,
    current: Option<usize>,
    challenger: Option<(usize, u32)>,
}

impl SpeakerDetector {
    /// A detector with no participants.
    pub fn new(config: SpeakerConfig) -> Self {
        Self {
            config,
            smoothed: Vec::new(),
            current: None,
            challenger: None,
        }
    }

    /// Adds a participant at the end (index = previous count).
    pub fn push(&mut self) {
        self.smoothed.push(-127.0);
    }

    /// Removes participant `index` (later indices shift down, as in a `Vec`).
    pub fn remove(&mut self, index: usize) {
        if index >= self.smoothed.len() {
            return;
        }
        self.smoothed.remove(index);
        let shift = |i: usize| {
            if i > index {
                Some(i - 1)
            } else if i == index {
                None
            } else {
                Some(i)
            }
        };
        self.current = self.current.and_then(shift);
        self.challenger = self.challenger.and_then(|(i, n)| shift(i).map(|i| (i, n)));
    }

    /// Feeds one frame of levels (dBov, one per participant) and returns the speaker.
    pub fn update(&mut self, dbov: impl IntoIterator<Item = f64>) -> Option<usize> {
        let a = self.config.smoothing;
        for (s, d) in self.smoothed.iter_mut().zip(dbov) {
            *s += a * (d - *s);
        }
        let loudest = self
            .smoothed
            .iter()
            .enumerate()
            .filter(|(_, s)| **s > self.config.quiet_dbov)
            .max_by(|x, y| x.1.total_cmp(y.1))
            .map(|(i, _)| i);
        let Some(cand) = loudest.filter(|&c| Some(c) != self.current) else {
            self.challenger = None;
            return self.current;
        };
        let (needed, beats) = match self.current {
            None => (0, true),
            Some(c) if self.smoothed[c] <= self.config.quiet_dbov => {
                (self.config.quiet_hold_frames, true)
            }
            Some(c) => (
                self.config.hold_frames,
                self.smoothed[cand] > self.smoothed[c] + self.config.margin_db,
            ),
        };
        if !beats {
            self.challenger = None;
            return self.current;
        }
        let frames = match self.challenger {
            Some((i, n)) if i == cand => n + 1,
            _ => 1,
        };
        if frames > needed {
            self.current = Some(cand);
            self.challenger = None;
        } else {
            self.challenger = Some((cand, frames));
        }
        self.current
    }

    /// The current speaker.
    pub fn current(&self) -> Option<usize> {
        self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_only_after_margin_and_hold() {
        let mut d = SpeakerDetector::new(SpeakerConfig::default());
        d.push();
        d.push();
        // 0 talks.
        for _ in 0..50 {
            d.update([-20.0, -127.0]);
        }
        assert_eq!(d.current(), Some(0));
        // 1 says something short and loud: no switch.
        for _ in 0..5 {
            d.update([-20.0, -5.0]);
        }
        for _ in 0..20 {
            d.update([-20.0, -127.0]);
        }
        assert_eq!(d.current(), Some(0));
        // 1 talks clearly louder for long: switch, but not before the hold time.
        let mut switched_at = None;
        for i in 0..100 {
            if d.update([-30.0, -10.0]) == Some(1) && switched_at.is_none() {
                switched_at = Some(i);
            }
        }
        let at = switched_at.expect("switched");
        assert!(at >= 30, "{at}");
        // Removing the speaker clears it; the other takes over.
        d.remove(1);
        assert_eq!(d.current(), None);
        d.update([-30.0]);
        assert_eq!(d.current(), Some(0));
    }

    #[test]
    fn nobody_speaks_in_silence() {
        let mut d = SpeakerDetector::new(SpeakerConfig::default());
        d.push();
        d.push();
        for _ in 0..100 {
            assert_eq!(d.update([-127.0, -90.0]), None);
        }
    }
}
