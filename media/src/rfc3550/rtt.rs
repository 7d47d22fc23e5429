//! Round-trip time from a reception report block (RFC 3550 §6.4.1): arrival − LSR − DLSR,
//! all in 1/65536 s.

use std::time::Duration;

/// Round trips at or above this are refused as nonsense (a report about an older SR, a
/// clock step, or a negative result that wrapped). The one sanity limit of relay and edge.
pub const MAX_RTT: Duration = Duration::from_secs(10);

/// The round-trip time from a report block's `last_sr` and `delay_since_last_sr`, received
/// when the local NTP time's middle 32 bits were `arrival_mid`. `None` when the block has no
/// LSR (0: no SR received yet) or the result is not below [`MAX_RTT`].
pub fn from_report(arrival_mid: u32, last_sr: u32, delay_since_last_sr: u32) -> Option<Duration> {
    if last_sr == 0 {
        return None;
    }
    let q16 = arrival_mid
        .wrapping_sub(last_sr)
        .wrapping_sub(delay_since_last_sr);
    let rtt = super::ntp::from_q16(q16);
    (rtt < MAX_RTT).then_some(rtt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtt_from_lsr_and_dlsr() {
        // SR sent at mid 0x1000_0000, held 0.25 s by the peer, back 0.35 s after sending.
        let lsr = 0x1000_0000;
        let arrival = lsr + 65_536 * 35 / 100;
        let rtt = from_report(arrival, lsr, 65_536 / 4).unwrap();
        assert!((rtt.as_secs_f64() - 0.1).abs() < 0.001, "{rtt:?}");
        assert_eq!(from_report(arrival, 0, 0), None, "no SR yet");
        // A negative round trip wraps to a huge one: refused.
        assert_eq!(from_report(lsr, lsr, 10), None);
        assert_eq!(
            from_report(lsr + 65_536 * 11, lsr, 0),
            None,
            "over the limit"
        );
        assert!(from_report(lsr + 65_536 * 9, lsr, 0).is_some());
    }
}
