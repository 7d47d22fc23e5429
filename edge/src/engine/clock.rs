//! [`MediaClock`]: the engine's one link between `now: Instant` and the wall clock.
//!
//! The I/O shell reads the wall clock once, at start, together with the `Instant` it calls
//! the start; afterwards the engine derives wall time from `now` alone, so it never reads a
//! clock itself and tests can place a call anywhere in time.

use std::time::{Duration, Instant};

use supernode_media::rfc3550::ntp;

/// Maps engine instants to wall-clock time, absolute 48 kHz sample indices and NTP time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaClock {
    start: Instant,
    wall_at_start: Duration,
}

impl MediaClock {
    /// A clock whose `start` instant was read at Unix time `wall_at_start`.
    pub fn new(start: Instant, wall_at_start: Duration) -> Self {
        Self {
            start,
            wall_at_start,
        }
    }

    /// The start instant.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// Unix time at `now`.
    pub fn wall(&self, now: Instant) -> Duration {
        self.wall_at_start + now.saturating_duration_since(self.start)
    }

    /// Absolute sample index (48 kHz since the Unix epoch) at `now`.
    pub fn sample_index(&self, now: Instant) -> u64 {
        (self.wall(now).as_nanos() * 48_000 / 1_000_000_000) as u64
    }

    /// Absolute video frame index (30 fps since the Unix epoch) at `now`.
    pub fn frame_index(&self, now: Instant, fps: u32) -> u64 {
        (self.wall(now).as_nanos() * u128::from(fps) / 1_000_000_000) as u64
    }

    /// 64-bit NTP timestamp at `now`.
    pub fn ntp(&self, now: Instant) -> u64 {
        ntp::from_unix(self.wall(now))
    }

    /// The middle 32 bits of the NTP time at `now` (the LSR/DLSR unit: 1/65536 s).
    pub fn ntp_mid(&self, now: Instant) -> u32 {
        ntp::mid(self.ntp(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_follow_the_wall_clock() {
        let t0 = Instant::now();
        let c = MediaClock::new(t0, Duration::from_secs(1_700_000_000));
        assert_eq!(c.sample_index(t0), 1_700_000_000 * 48_000);
        assert_eq!(
            c.sample_index(t0 + Duration::from_millis(20)),
            1_700_000_000 * 48_000 + 960
        );
        assert_eq!(
            c.frame_index(t0 + Duration::from_millis(100), 30),
            1_700_000_000 * 30 + 3
        );
        assert_eq!(c.ntp(t0) >> 32, 1_700_000_000 + ntp::NTP_UNIX_OFFSET);
        let half = c
            .ntp_mid(t0 + Duration::from_millis(500))
            .wrapping_sub(c.ntp_mid(t0));
        assert_eq!(half, 32_768);
    }
}
