//! NTP timestamps (RFC 3550 §4): the 64-bit form of sender reports, the middle 32 bits of
//! LSR, and the 1/65536 s unit of DLSR.

use std::time::{Duration, Instant};

/// Seconds from 1900 (NTP era 0) to 1970 (the Unix epoch).
pub const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// 64-bit NTP timestamp for a wall-clock time given as a duration since the Unix epoch.
pub fn from_unix(d: Duration) -> u64 {
    let secs = d.as_secs() + NTP_UNIX_OFFSET;
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// The middle 32 bits of an NTP timestamp (the LSR format; unit 1/65536 s).
pub fn mid(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// A duration in 1/65536 s (the DLSR format), saturating.
pub fn to_q16(d: Duration) -> u32 {
    (d.as_micros().saturating_mul(65_536) / 1_000_000).min(u128::from(u32::MAX)) as u32
}

/// A 1/65536 s count as a duration.
pub fn from_q16(q: u32) -> Duration {
    Duration::from_micros(u64::from(q) * 1_000_000 / 65_536)
}

/// Maps `Instant`s to NTP time: the I/O shell reads the wall clock once, with the `Instant`
/// it calls the start; afterwards wall time comes from `now` alone (sans-IO cores never read
/// a clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NtpClock {
    start: Instant,
    unix_at_start: Duration,
}

impl NtpClock {
    /// A clock whose `start` instant was read at Unix time `unix_at_start`.
    pub fn new(start: Instant, unix_at_start: Duration) -> Self {
        Self {
            start,
            unix_at_start,
        }
    }

    /// The start instant.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// Unix time at `now`.
    pub fn unix(&self, now: Instant) -> Duration {
        self.unix_at_start + now.saturating_duration_since(self.start)
    }

    /// 64-bit NTP timestamp at `now`.
    pub fn ntp(&self, now: Instant) -> u64 {
        from_unix(self.unix(now))
    }

    /// The middle 32 bits of the NTP time at `now`.
    pub fn ntp_mid(&self, now: Instant) -> u32 {
        mid(self.ntp(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntp_conversions() {
        let ntp = from_unix(Duration::from_millis(1_500));
        assert_eq!(ntp >> 32, NTP_UNIX_OFFSET + 1);
        assert_eq!((ntp & 0xffff_ffff) >> 31, 1, "half a second");
        assert_eq!(to_q16(Duration::from_millis(500)), 32_768);
        assert_eq!(from_q16(32_768), Duration::from_millis(500));
        assert_eq!(to_q16(Duration::from_secs(1 << 20)), u32::MAX, "saturates");
        assert_eq!(mid(0x0001_0002_0003_0004), 0x0002_0003);
    }

    #[test]
    fn clock_follows_now() {
        let t0 = Instant::now();
        let c = NtpClock::new(t0, Duration::from_secs(1_700_000_000));
        assert_eq!(c.ntp(t0) >> 32, 1_700_000_000 + NTP_UNIX_OFFSET);
        let half = c
            .ntp_mid(t0 + Duration::from_millis(500))
            .wrapping_sub(c.ntp_mid(t0));
        assert_eq!(half, 32_768);
        assert_eq!(
            c.unix(t0 + Duration::from_secs(2)),
            Duration::from_secs(1_700_000_002)
        );
    }
}
