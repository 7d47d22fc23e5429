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

/// One bound UDP socket, a row of Linux's `/proc/net/udp` or `/proc/net/udp6`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpSocketRow {
    /// Local port.
    pub local_port: u16,
    /// Bytes waiting in its receive queue.
    pub rx_queue: u64,
    /// Datagrams the kernel dropped on it since it was created (receive buffer full).
    pub drops: u64,
}

/// Parses one row of a `/proc/net/udp{,6}` table (`sl local_address rem_address st
/// tx_queue:rx_queue tr tm->when retrnsmt uid timeout inode ref pointer drops`, numbers in
/// hex except the last four); `None` for the header or a row it cannot read.
pub fn parse_udp_row(line: &str) -> Option<UdpSocketRow> {
    let cols: Vec<&str> = line.split_whitespace().collect();
    let (_, port) = cols.get(1)?.rsplit_once(':')?;
    let (_, rx) = cols.get(4)?.split_once(':')?;
    Some(UdpSocketRow {
        local_port: u16::from_str_radix(port, 16).ok()?,
        rx_queue: u64::from_str_radix(rx, 16).ok()?,
        drops: cols.get(12)?.parse().ok()?,
    })
}

/// Every UDP socket on this host (IPv4 and IPv6), from Linux's `/proc/net/udp{,6}`; empty
/// where those files do not exist.
pub fn udp_sockets() -> Vec<UdpSocketRow> {
    ["/proc/net/udp", "/proc/net/udp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .filter_map(parse_udp_row)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Whether some process on this host has a UDP socket bound to `port` (IPv4 or IPv6), from
/// Linux's `/proc/net/udp{,6}`; `false` where those files do not exist.
pub fn udp_port_bound(port: u16) -> bool {
    udp_sockets().iter().any(|s| s.local_port == port)
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

    /// Whether this system lacks `/proc/net/udp` (then the test says it skips).
    fn no_proc_net_udp() -> bool {
        let missing = !std::path::Path::new("/proc/net/udp").exists();
        if missing {
            eprintln!("SKIP: no /proc/net/udp on this system");
        }
        missing
    }

    #[test]
    fn a_bound_port_is_seen() {
        if no_proc_net_udp() {
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

    #[test]
    fn a_row_gives_its_port_queue_and_drops() {
        let row = "  412: 0100007F:7531 0100007F:9C41 01 00000000:00000A80 00:00000000 \
                   00000000     0        0 123456 2 0000000000000000 17";
        assert_eq!(
            parse_udp_row(row),
            Some(UdpSocketRow {
                local_port: 0x7531,
                rx_queue: 0xA80,
                drops: 17,
            })
        );
        let v6 = "  9: 00000000000000000000000001000000:0035 00000000000000000000000000000000:0000 \
                  07 00000000:00000000 00:00000000 00000000   101        0 99 2 0000000000000000 0";
        assert_eq!(parse_udp_row(v6).map(|r| r.local_port), Some(53));
        let header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when \
                      retrnsmt   uid  timeout inode ref pointer drops";
        assert_eq!(parse_udp_row(header), None);
        assert_eq!(parse_udp_row("  1: 0100007F:zz 0 0 0:0"), None);
        assert_eq!(parse_udp_row(""), None);
    }

    #[test]
    fn a_bound_socket_is_listed_with_an_empty_queue_then_a_full_one() {
        if no_proc_net_udp() {
            return;
        }
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = rx.local_addr().unwrap().port();
        let queue = || {
            udp_sockets()
                .into_iter()
                .find(|s| s.local_port == port)
                .map(|s| s.rx_queue)
        };
        assert_eq!(queue(), Some(0));
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.send_to(&[7u8; 100], ("127.0.0.1", port)).unwrap();
        // The datagram is queued (its buffer's size counts, not just the 100 bytes).
        let end = Instant::now() + Duration::from_secs(2);
        while queue() == Some(0) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(queue().is_some_and(|q| q >= 100), "queue {:?}", queue());
    }
}
