//! Rewriting toward one destination, so that it sees one continuous stream when its source
//! changes (a caller switches device, a trunk fails over, the control plane reconnects).
//!
//! The destination keeps the SSRC of the first source it heard. On a switch, sequence numbers
//! continue from the last one sent plus one, and the timestamp continues from the last one
//! sent plus the wall-clock time elapsed, in the leg's clock rate. Between switches the
//! mapping is a fixed offset, applied in place with two adds.

use std::time::Instant;

use supernode_media::ids::Ssrc;

/// Identity of a source as the destination sees it: the sending leg's index and its SSRC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceKey {
    /// Index of the sending leg in the core.
    pub leg: u32,
    /// SSRC of the sending stream.
    pub ssrc: u32,
}

/// One destination's output mapping.
#[derive(Debug, Clone)]
pub struct Rewriter {
    current: Option<SourceKey>,
    out_ssrc: u32,
    seq_offset: u16,
    ts_offset: u32,
    last_out_seq: u16,
    last_out_ts: u32,
    last_out_at: Option<Instant>,
    clock_rate: u32,
}

/// The rewritten header fields of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapped {
    /// SSRC toward the destination.
    pub ssrc: Ssrc,
    /// Sequence number toward the destination.
    pub seq: u16,
    /// Timestamp toward the destination.
    pub ts: u32,
    /// Whether the mapping is the identity (nothing to write).
    pub identity: bool,
}

impl Rewriter {
    /// A rewriter for a destination whose media clock runs at `clock_rate` Hz.
    pub fn new(clock_rate: u32) -> Self {
        Self {
            current: None,
            out_ssrc: 0,
            seq_offset: 0,
            ts_offset: 0,
            last_out_seq: 0,
            last_out_ts: 0,
            last_out_at: None,
            clock_rate: clock_rate.max(1),
        }
    }

    /// Maps one packet from `src` with (`seq`, `ts`) at `now`. Returns the mapped fields and
    /// whether this packet started a switch to a new source.
    #[inline]
    pub fn map(&mut self, now: Instant, src: SourceKey, seq: u16, ts: u32) -> (Mapped, bool) {
        let mut switched = false;
        match self.current {
            Some(cur) if cur == src => {}
            None => {
                self.current = Some(src);
                self.out_ssrc = src.ssrc;
                self.seq_offset = 0;
                self.ts_offset = 0;
            }
            Some(_) => {
                // Continue the stream: next sequence number, and a timestamp advanced by the
                // wall time since the last packet sent (at least one tick).
                let elapsed = self
                    .last_out_at
                    .map(|t| now.saturating_duration_since(t))
                    .unwrap_or_default();
                let ticks = (elapsed.as_micros() as u64 * u64::from(self.clock_rate) / 1_000_000)
                    .max(1) as u32;
                self.seq_offset = self.last_out_seq.wrapping_add(1).wrapping_sub(seq);
                self.ts_offset = self.last_out_ts.wrapping_add(ticks).wrapping_sub(ts);
                self.current = Some(src);
                switched = true;
            }
        }
        let out_seq = seq.wrapping_add(self.seq_offset);
        let out_ts = ts.wrapping_add(self.ts_offset);
        // Only advance "last" for packets that move the stream forward.
        if (out_seq.wrapping_sub(self.last_out_seq) as i16) > 0
            || self.last_out_at.is_none()
            || switched
        {
            self.last_out_seq = out_seq;
            self.last_out_ts = out_ts;
            self.last_out_at = Some(now);
        }
        let identity = self.out_ssrc == src.ssrc && self.seq_offset == 0 && self.ts_offset == 0;
        (
            Mapped {
                ssrc: Ssrc(self.out_ssrc),
                seq: out_seq,
                ts: out_ts,
                identity,
            },
            switched,
        )
    }

    /// The SSRC the destination sees, once a packet has been mapped.
    pub fn out_ssrc(&self) -> Option<Ssrc> {
        self.current.map(|_| Ssrc(self.out_ssrc))
    }

    /// The source currently mapped (leg index and SSRC), for reverse mapping of feedback.
    pub fn current(&self) -> Option<SourceKey> {
        self.current
    }

    /// Maps a destination-side sequence number back to the current source's.
    pub fn unmap_seq(&self, out_seq: u16) -> u16 {
        out_seq.wrapping_sub(self.seq_offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn first_source_is_identity() {
        let t = Instant::now();
        let mut r = Rewriter::new(48_000);
        let a = SourceKey {
            leg: 1,
            ssrc: 0xAAAA,
        };
        for i in 0..10u16 {
            let (m, sw) = r.map(t, a, 100 + i, 1000 + u32::from(i) * 960);
            assert!(!sw);
            assert!(m.identity);
            assert_eq!(m.seq, 100 + i);
        }
    }

    #[test]
    fn switch_continues_the_stream() {
        let t = Instant::now();
        let mut r = Rewriter::new(48_000);
        let a = SourceKey {
            leg: 1,
            ssrc: 0xAAAA,
        };
        let b = SourceKey {
            leg: 2,
            ssrc: 0xBBBB,
        };
        let mut now = t;
        for i in 0..5u16 {
            r.map(
                now,
                a,
                65_533u16.wrapping_add(i),
                1_000 + u32::from(i) * 960,
            );
            now += Duration::from_millis(20);
        }
        // Last out: seq 65_537 -> 1 (wrapped), ts 1000 + 4*960 = 4840, at t+80ms.
        let (m, sw) = r.map(now, b, 9_000, 777_777);
        assert!(sw);
        assert!(!m.identity);
        assert_eq!(m.ssrc, Ssrc(0xAAAA));
        assert_eq!(m.seq, 2);
        assert_eq!(m.ts, 4_840 + 960); // 20 ms at 48 kHz
        let (m2, sw2) = r.map(now + Duration::from_millis(20), b, 9_001, 777_777 + 960);
        assert!(!sw2);
        assert_eq!((m2.seq, m2.ts), (3, 4_840 + 1_920));
        assert_eq!(r.unmap_seq(3), 9_001);
    }
}
