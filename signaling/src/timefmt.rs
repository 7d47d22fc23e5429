//! RFC 3339 rendering of the Unix-second timestamps that storage keeps.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Formats Unix seconds as RFC 3339 in UTC (`2026-11-25T00:00:00Z`). Out-of-range values
/// (which storage never holds) clamp to the epoch.
pub fn rfc3339(unix_seconds: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix_seconds)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

/// Parses RFC 3339 into Unix seconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// The wall clock in Unix seconds. Only I/O shells call this; cores take time as input.
pub fn unix_now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trips() {
        let s = super::rfc3339(1_790_000_000);
        assert!(s.ends_with('Z'));
        assert_eq!(super::parse_rfc3339(&s), Some(1_790_000_000));
    }
}
