//! Don't-fragment on every socket the relay binds.

use std::net::UdpSocket;

/// Sends with the don't-fragment bit and without path-MTU state (`IP_PMTUDISC_PROBE`, as
/// QUIC stacks do). An unconnected socket left at the default (`IP_PMTUDISC_WANT`) lets the
/// kernel fragment, so every datagram it sends needs an IP identification drawn from the
/// shared, hashed `ip_idents` table (`__ip_select_ident`, 2 % of a worker's time on the
/// shared port); with DF set the identification is simply 0. Media datagrams fit the MTU
/// (RTP stays under 1,200 bytes); one that does not is refused by the kernel and counted as
/// a failed send rather than fragmented. Best effort: a refusal leaves the default.
pub(super) fn dont_fragment(sock: &UdpSocket, ipv4: bool) {
    #[cfg(target_os = "linux")]
    {
        let v4 = (
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            libc::IP_PMTUDISC_PROBE,
        );
        let v6 = (
            libc::IPPROTO_IPV6,
            libc::IPV6_MTU_DISCOVER,
            libc::IPV6_PMTUDISC_PROBE,
        );
        // An IPv6 socket may also carry IPv4 (mapped addresses): both options there.
        let options: &[_] = if ipv4 { &[v4] } else { &[v6, v4] };
        for &(level, opt, v) in options {
            super::set_int_option(sock, level, opt, v);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (sock, ipv4);
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::os::fd::AsRawFd;

    fn option(sock: &std::net::UdpSocket, level: libc::c_int, opt: libc::c_int) -> libc::c_int {
        let mut v: libc::c_int = -1;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into a live c_int.
        let rc = unsafe {
            libc::getsockopt(
                sock.as_raw_fd(),
                level,
                opt,
                &mut v as *mut libc::c_int as *mut libc::c_void,
                &mut len,
            )
        };
        assert_eq!(rc, 0, "getsockopt: {}", std::io::Error::last_os_error());
        v
    }

    #[test]
    fn every_bound_socket_sends_with_dont_fragment() {
        let v4 = super::super::bind("127.0.0.1:0".parse().unwrap(), false).unwrap();
        assert_eq!(
            option(&v4, libc::IPPROTO_IP, libc::IP_MTU_DISCOVER),
            libc::IP_PMTUDISC_PROBE
        );
        let shared = super::super::bind("127.0.0.1:0".parse().unwrap(), true).unwrap();
        assert_eq!(
            option(&shared, libc::IPPROTO_IP, libc::IP_MTU_DISCOVER),
            libc::IP_PMTUDISC_PROBE
        );
        // IPv6 where the machine has it.
        if let Ok(v6) = super::super::bind("[::1]:0".parse().unwrap(), false) {
            assert_eq!(
                option(&v6, libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER),
                libc::IPV6_PMTUDISC_PROBE
            );
        }
    }
}
