//! Packet index tracking of one SSRC: the rollover-counter estimate (RFC 3711 §3.3.1 and
//! appendix A) and the replay window (§3.3.2), on 48-bit SRTP indices or 31-bit SRTCP ones.

/// Replay window length in packets.
pub(crate) const WINDOW: u64 = 1024;
const WORDS: usize = (WINDOW / 64) as usize;

/// Highest index seen and which of the [`WINDOW`] indices below it were received. A ring
/// bitmap indexed by `index % WINDOW`: sliding forward clears only the slots passed over.
#[derive(Debug, Clone)]
pub(crate) struct ReplayWindow {
    highest: u64,
    bits: [u64; WORDS],
}

impl ReplayWindow {
    /// A window whose first packet is `index` (not yet marked received).
    pub(crate) fn starting_at(index: u64) -> Self {
        Self {
            highest: index,
            bits: [0; WORDS],
        }
    }

    /// The highest index seen.
    pub(crate) fn highest(&self) -> u64 {
        self.highest
    }

    /// RFC 3711 appendix A: the index of a packet with sequence number `seq`, guessing its
    /// rollover counter from the highest index so far (the one of ROC−1, ROC, ROC+1 that
    /// puts it nearest). `None` when the guess would be a negative rollover counter.
    pub(crate) fn estimate_rtp(&self, seq: u16) -> Option<u64> {
        let roc = self.highest >> 16;
        let s_l = (self.highest & 0xffff) as i64;
        let seq_i = i64::from(seq);
        let v = if s_l < 32_768 {
            if seq_i - s_l > 32_768 {
                roc.checked_sub(1)?
            } else {
                roc
            }
        } else if s_l - 32_768 > seq_i {
            roc + 1
        } else {
            roc
        };
        Some((v << 16) | u64::from(seq))
    }

    /// Whether `index` may be accepted (newer than the highest, or in the window and not
    /// yet received).
    pub(crate) fn check(&self, index: u64) -> bool {
        if index > self.highest {
            return true;
        }
        let back = self.highest - index;
        back < WINDOW && !self.is_set(index)
    }

    /// Marks `index` received (after it authenticated), sliding the window if it is new.
    pub(crate) fn accept(&mut self, index: u64) {
        if index > self.highest {
            let step = index - self.highest;
            if step >= WINDOW {
                self.bits = [0; WORDS];
            } else {
                for k in 1..=step {
                    self.clear(self.highest + k);
                }
            }
            self.highest = index;
        }
        let slot = (index % WINDOW) as usize;
        self.bits[slot / 64] |= 1 << (slot % 64);
    }

    /// Advances the highest index without marking anything (the sending side).
    pub(crate) fn advance(&mut self, index: u64) {
        if index > self.highest {
            self.highest = index;
        }
    }

    fn is_set(&self, index: u64) -> bool {
        let slot = (index % WINDOW) as usize;
        self.bits[slot / 64] & (1 << (slot % 64)) != 0
    }

    fn clear(&mut self, index: u64) {
        let slot = (index % WINDOW) as usize;
        self.bits[slot / 64] &= !(1 << (slot % 64));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollover_estimate_follows_appendix_a() {
        // Highest 0x1_FFF0 (ROC 1, seq 65520): seq 5 is the next cycle, 65500 this one.
        let w = ReplayWindow::starting_at(0x1_FFF0);
        assert_eq!(w.estimate_rtp(5), Some(0x2_0005));
        assert_eq!(w.estimate_rtp(65_500), Some(0x1_FFDC));
        // Highest 0x2_0005 (ROC 2, seq 5): seq 65530 is late from the previous cycle.
        let w = ReplayWindow::starting_at(0x2_0005);
        assert_eq!(w.estimate_rtp(65_530), Some(0x1_FFFA));
        assert_eq!(w.estimate_rtp(6), Some(0x2_0006));
        // ROC 0 cannot go back a cycle.
        let w = ReplayWindow::starting_at(10);
        assert_eq!(w.estimate_rtp(60_000), None);
    }

    #[test]
    fn replays_and_too_old_are_refused() {
        let mut w = ReplayWindow::starting_at(100);
        assert!(w.check(100));
        w.accept(100);
        assert!(!w.check(100), "replay");
        assert!(w.check(99), "late but in the window");
        w.accept(99);
        assert!(!w.check(99));
        w.accept(100 + WINDOW);
        assert!(!w.check(100), "now out of the window");
        assert!(w.check(101), "slid over, never received");
        assert!(!w.check(100 + WINDOW));
        // A big jump clears everything.
        w.accept(10 * WINDOW);
        assert!(w.check(10 * WINDOW - 1));
        assert_eq!(w.highest(), 10 * WINDOW);
    }
}
