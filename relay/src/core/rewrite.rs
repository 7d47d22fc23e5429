//! The rewriter of one send stream (one source stream toward one transport), so that the
//! receiver sees one continuous stream even when the source behind it changes (a caller
//! switches device, a trunk fails over, the control plane reconnects).
//!
//! The send stream's SSRC is fixed when it is created (see [`super::stream`]: the source's
//! own SSRC unless that would collide at the receiver). While one source feeds it, sequence
//! numbers and timestamps pass unchanged (or with the fixed offsets of an earlier switch).
//! On a switch, sequence numbers continue from the last one sent plus one, and the timestamp
//! continues from the last one sent plus the wall-clock time elapsed, in the stream's clock
//! rate. Between switches the mapping is a fixed offset, applied in place with two adds.

use std::time::Instant;

use supernode_media::ids::Ssrc;

use super::ids::LegId;

/// Identity of a source stream as a send stream sees it: the sending transport and its SSRC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceKey {
    /// The sending transport.
    pub leg: LegId,
    /// SSRC of the source stream.
    pub ssrc: Ssrc,
}

/// One send stream's output mapping.
#[derive(Debug, Clone)]
pub struct Rewriter {
    current: Option<SourceKey>,
    out_ssrc: Ssrc,
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
    /// A rewriter that sends as `out_ssrc`, for a media clock of `clock_rate` Hz.
    pub fn new(out_ssrc: Ssrc, clock_rate: u32) -> Self {
        Self {
            current: None,
            out_ssrc,
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
                ssrc: self.out_ssrc,
                seq: out_seq,
                ts: out_ts,
                identity,
            },
            switched,
        )
    }

    /// Sends as `out_ssrc` instead, if nothing was mapped yet (whether it changed).
    pub fn reassign(&mut self, out_ssrc: Ssrc) -> bool {
        if self.started() {
            return false;
        }
        self.out_ssrc = out_ssrc;
        true
    }

    /// The SSRC the receiver sees.
    pub fn out_ssrc(&self) -> Ssrc {
        self.out_ssrc
    }

    /// Whether a packet has been mapped.
    pub fn started(&self) -> bool {
        self.current.is_some()
    }

    /// Maps a source RTP timestamp of the current source to the receiver's (for the sender
    /// reports that carry the source's NTP↔RTP mapping through the rewrite).
    pub fn map_ts(&self, ts: u32) -> u32 {
        ts.wrapping_add(self.ts_offset)
    }

    /// The source currently mapped (transport and SSRC), for reverse mapping of feedback.
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
        let mut r = Rewriter::new(Ssrc(0xAAAA), 48_000);
        let a = SourceKey {
            leg: LegId(1),
            ssrc: Ssrc(0xAAAA),
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
        let mut r = Rewriter::new(Ssrc(0xAAAA), 48_000);
        let a = SourceKey {
            leg: LegId(1),
            ssrc: Ssrc(0xAAAA),
        };
        let b = SourceKey {
            leg: LegId(2),
            ssrc: Ssrc(0xBBBB),
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
        assert_eq!(r.map_ts(777_777 + 960), 4_840 + 1_920);
    }

    #[test]
    fn a_chosen_ssrc_is_written_without_offsets() {
        let t = Instant::now();
        let mut r = Rewriter::new(Ssrc(0x1234), 90_000);
        let a = SourceKey {
            leg: LegId(1),
            ssrc: Ssrc(0xAAAA),
        };
        let (m, sw) = r.map(t, a, 7, 700);
        assert!(!sw && !m.identity);
        assert_eq!((m.ssrc, m.seq, m.ts), (Ssrc(0x1234), 7, 700));
    }
}
