//! The batched UDP shell over real loopback sockets: `recvmmsg`/`sendmmsg`, UDP GSO (with its
//! fallback) and the portable path deliver every datagram intact and in order.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use supernode_relay::udp::{self, Poller, RecvBatch, SendBatch, Waker};

fn any() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn recv_n(rx: &std::net::UdpSocket, batch: &mut RecvBatch, n: usize) -> Vec<(Vec<u8>, SocketAddr)> {
    let mut got = Vec::new();
    let end = Instant::now() + Duration::from_secs(3);
    while got.len() < n && Instant::now() < end {
        let k = batch.recv(rx).unwrap();
        for i in 0..k {
            let d = batch.get(i).unwrap();
            got.push((d.data.to_vec(), d.src));
        }
        if k == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    got
}

fn check(portable: bool, gso: bool) {
    let tx = udp::bind(any(), false).unwrap();
    let rx = udp::bind(any(), false).unwrap();
    let other = udp::bind(any(), false).unwrap();
    let dst = rx.local_addr().unwrap();
    // 20 equal datagrams to one destination (GSO candidates), a shorter tail, and a few
    // to another destination in between.
    let mut msgs: Vec<(SocketAddr, Vec<u8>)> = (0..20u8).map(|i| (dst, vec![i; 1000])).collect();
    msgs.push((dst, vec![99; 300]));
    msgs.insert(5, (other.local_addr().unwrap(), vec![7; 50]));
    let mut send = SendBatch::new(64, portable, gso);
    let st = send.send(&tx, msgs.iter().map(|(d, b)| (*d, b.as_slice())));
    assert_eq!(st.sent, 22);
    assert_eq!(st.failed, 0);
    if gso && !portable && send.gso_enabled() {
        assert!(
            st.gso_messages >= 1,
            "equal datagrams to one destination were coalesced"
        );
        assert!(st.syscalls < 22);
    }
    let mut batch = RecvBatch::new(8, portable);
    let got = recv_n(&rx, &mut batch, 21);
    assert_eq!(got.len(), 21);
    for (i, (data, src)) in got.iter().take(20).enumerate() {
        assert_eq!(*src, tx.local_addr().unwrap());
        assert_eq!(
            data,
            &vec![i as u8; 1000],
            "datagram {i} intact and in order"
        );
    }
    assert_eq!(got[20].0, vec![99; 300]);
    let got = recv_n(&other, &mut batch, 1);
    assert_eq!(got[0].0, vec![7; 50]);
}

#[test]
fn sendmmsg_with_gso_delivers_everything_in_order() {
    check(false, true);
}

#[test]
fn sendmmsg_without_gso_delivers_everything_in_order() {
    check(false, false);
}

#[test]
fn portable_fallback_delivers_everything_in_order() {
    check(true, false);
}

#[test]
fn poller_reports_readable_sockets_and_the_waker() {
    use std::os::fd::AsRawFd;
    let a = udp::bind(any(), false).unwrap();
    let b = udp::bind(any(), false).unwrap();
    let waker = Waker::new().unwrap();
    let mut p = Poller::new(8).unwrap();
    p.add(a.as_raw_fd(), 1).unwrap();
    p.add(b.as_raw_fd(), 2).unwrap();
    p.add(waker.raw_fd(), 99).unwrap();
    assert_eq!(p.wait(0).unwrap(), 0, "nothing ready");
    b.send_to(b"x", a.local_addr().unwrap()).unwrap();
    waker.wake();
    let n = p.wait(1000).unwrap();
    let mut tokens: Vec<u64> = (0..n).map(|i| p.token(i)).collect();
    tokens.sort();
    assert_eq!(tokens, vec![1, 99]);
    waker.reset();
    let mut batch = RecvBatch::new(4, false);
    assert_eq!(batch.recv(&a).unwrap(), 1);
    assert_eq!(p.wait(0).unwrap(), 0, "drained and reset");
}

#[test]
fn a_failed_gso_send_to_one_destination_does_not_turn_gso_off() {
    let tx = udp::bind(any(), false).unwrap();
    let rx = udp::bind(any(), false).unwrap();
    let mut send = SendBatch::new(64, false, true);
    if !send.gso_enabled() {
        eprintln!("SKIP: no UDP GSO on this kernel");
        return;
    }
    // An IPv6 destination from an IPv4 socket: the kernel refuses the message
    // (EAFNOSUPPORT), which says nothing about GSO.
    let bad: SocketAddr = "[::1]:9".parse().unwrap();
    let dst = rx.local_addr().unwrap();
    let msgs: Vec<(SocketAddr, Vec<u8>)> = (0..4u8)
        .map(|i| (bad, vec![i; 500]))
        .chain((0..4u8).map(|i| (dst, vec![i; 500])))
        .collect();
    let st = send.send(&tx, msgs.iter().map(|(d, b)| (*d, b.as_slice())));
    assert_eq!((st.sent, st.failed), (4, 4));
    assert!(send.gso_enabled(), "GSO still on after an unrelated error");
    let st = send.send(&tx, msgs[4..].iter().map(|(d, b)| (*d, b.as_slice())));
    assert_eq!(st.sent, 4);
    assert!(st.gso_messages >= 1, "and still used");
    let mut batch = RecvBatch::new(16, false);
    assert_eq!(recv_n(&rx, &mut batch, 8).len(), 8);
}

/// `send_from`: one socket sends from several loopback addresses (its port kept), with and
/// without GSO, and the receiver sees each datagram from the address it named; the portable
/// fallback, which cannot choose a source, counts such datagrams as failed.
#[test]
fn send_from_chooses_each_datagrams_source_address() {
    use std::net::{IpAddr, Ipv4Addr};
    for gso in [true, false] {
        let tx = udp::bind(any(), false).unwrap();
        let rx = udp::bind(any(), false).unwrap();
        let (dst, port) = (rx.local_addr().unwrap(), tx.local_addr().unwrap().port());
        let a = IpAddr::V4(Ipv4Addr::new(127, 3, 0, 2));
        let b = IpAddr::V4(Ipv4Addr::new(127, 3, 0, 3));
        // Three equal datagrams from a (one GSO message when allowed), two from b, one from
        // the socket's own address.
        let msgs: Vec<(Option<IpAddr>, Vec<u8>)> = vec![
            (Some(a), vec![1; 500]),
            (Some(a), vec![2; 500]),
            (Some(a), vec![3; 500]),
            (Some(b), vec![4; 500]),
            (Some(b), vec![5; 200]),
            (None, vec![6; 500]),
        ];
        let mut send = SendBatch::new(64, false, gso);
        let st = send.send_from(&tx, msgs.iter().map(|(s, d)| (*s, dst, d.as_slice())));
        assert_eq!((st.sent, st.failed), (6, 0), "gso {gso}");
        let mut batch = RecvBatch::new(8, false);
        let got = recv_n(&rx, &mut batch, 6);
        assert_eq!(got.len(), 6);
        let want_src = [Some(a), Some(a), Some(a), Some(b), Some(b), None];
        for (i, (data, src)) in got.iter().enumerate() {
            assert_eq!(data[0], i as u8 + 1, "datagram {i} in order");
            assert_eq!(data.len(), msgs[i].1.len());
            let ip = want_src[i].unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
            assert_eq!(
                *src,
                SocketAddr::new(ip, port),
                "datagram {i} from its address"
            );
        }
    }
    let tx = udp::bind(any(), false).unwrap();
    let mut portable = SendBatch::new(8, true, false);
    let dst = tx.local_addr().unwrap();
    let st = portable.send_from(
        &tx,
        [(
            Some(IpAddr::V4(Ipv4Addr::new(127, 3, 0, 2))),
            dst,
            &[0u8; 10][..],
        )]
        .into_iter(),
    );
    assert_eq!((st.sent, st.failed), (0, 1));
}

#[cfg(target_os = "linux")]
#[test]
fn queue_memory_counts_what_waits_and_the_receive_buffer_can_be_cut_and_restored() {
    let tx = udp::bind(any(), false).unwrap();
    let rx = udp::bind(any(), false).unwrap();
    let dst = rx.local_addr().unwrap();
    let (empty, capacity) = udp::queue_memory(&rx).expect("SO_MEMINFO on Linux");
    assert_eq!(empty, 0);
    // bind asks for 1 MB; the kernel counts twice that (or rmem_max's cap when it may not
    // force it).
    assert!(capacity > 0);
    for i in 0..20u8 {
        tx.send_to(&[i; 1000], dst).unwrap();
    }
    let end = Instant::now() + Duration::from_secs(3);
    let mut queued = 0;
    while Instant::now() < end {
        queued = udp::queue_memory(&rx).unwrap().0;
        if queued >= 20 * 1000 {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(
        queued >= 20 * 1000,
        "20 datagrams of 1000 bytes wait: {queued}"
    );
    // Cut, then restored: the capacity follows, what waits stays.
    udp::set_receive_buffer(&rx, 256 << 10);
    let (still, cut) = udp::queue_memory(&rx).unwrap();
    assert_eq!(
        still, queued,
        "cutting the buffer drops nothing already queued"
    );
    assert!(cut < capacity, "cut {cut} against {capacity}");
    udp::set_receive_buffer(&rx, 1 << 20);
    assert_eq!(udp::queue_memory(&rx).unwrap().1, capacity);
    let mut batch = RecvBatch::new(64, false);
    assert_eq!(recv_n(&rx, &mut batch, 20).len(), 20);
    assert_eq!(udp::queue_memory(&rx).unwrap().0, 0);
}
