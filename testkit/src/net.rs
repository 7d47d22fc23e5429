//! Loopback UDP ports for tests that start other processes.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

/// A UDP port on 127.0.0.1 that was free a moment ago (bound, then released), for a process
/// the test starts (which binds it itself).
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("bind an ephemeral UDP port on 127.0.0.1")
        .port()
}

/// Whether some process on this host has a UDP socket bound to `port` (IPv4 or IPv6), from
/// Linux's `/proc/net/udp{,6}`; `false` where those files do not exist.
pub fn udp_port_bound(port: u16) -> bool {
    let want = format!(":{port:04X}");
    ["/proc/net/udp", "/proc/net/udp6"].iter().any(|f| {
        std::fs::read_to_string(f).is_ok_and(|table| {
            table.lines().skip(1).any(|l| {
                l.split_whitespace()
                    .nth(1)
                    .is_some_and(|local| local.ends_with(&want))
            })
        })
    })
}

/// Waits up to `limit` until [`udp_port_bound`]`(port)`; whether it became bound.
pub fn wait_udp_bound(port: u16, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    loop {
        if udp_port_bound(port) {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_port_is_seen() {
        if !std::path::Path::new("/proc/net/udp").exists() {
            eprintln!("SKIP: no /proc/net/udp on this system");
            return;
        }
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = s.local_addr().unwrap().port();
        assert!(udp_port_bound(port));
        assert!(wait_udp_bound(port, Duration::from_secs(1)));
        // IPv6 sockets are in the other table.
        if let Ok(s6) = UdpSocket::bind("[::1]:0") {
            assert!(udp_port_bound(s6.local_addr().unwrap().port()));
        }
        assert_ne!(free_udp_port(), 0);
    }
}
