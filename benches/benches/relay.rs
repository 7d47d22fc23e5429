//! Criterion benches of the relay: the core's per-packet path (lookup, checks, stats,
//! rewrite, transmit) on an own-port leg and on a shared port, with and without a source
//! switch rewrite, a 1:10 fan-out, and 2,000 calls taken in turn (their state out of the
//! first caches). SRTP per packet is in `srtp.rs`.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use supernode_media::ids::{Pt, Ssrc};
use supernode_media::packet::rtp::RtpHeader;
use supernode_relay::core::{
    Core, CoreConfig, LegId, LegSpec, PeerMode, SessionId, SockSlot, StreamSpec, TxBatch,
};

fn rtp(ssrc: u32, seq: u16, len: usize) -> Vec<u8> {
    let h = RtpHeader {
        payload_type: Pt(111),
        sequence_number: seq,
        timestamp: u32::from(seq) * 960,
        ssrc: Ssrc(ssrc),
        ..RtpHeader::default()
    };
    let mut buf = vec![0u8; 1500];
    let n = h.write(&vec![0x5a; len], &mut buf).unwrap();
    buf.truncate(n);
    buf
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A core whose periodic reports never fall due during a bench.
fn quiet_core(now: Instant) -> Core {
    Core::new(
        CoreConfig {
            report_interval: Duration::from_secs(3600),
            ..CoreConfig::default()
        },
        now,
    )
}

/// A core with one session: leg 1 (source) -> `fanout` destinations, each with a known peer.
fn core_with(shared: bool, fanout: usize) -> (Core, SockSlot, SocketAddr) {
    let now = Instant::now();
    let mut core = quiet_core(now);
    let src_sock = SockSlot(0);
    if shared {
        core.add_shared_socket(src_sock);
        // Many other legs on the shared port, so the lookup is in a populated map.
        for i in 0..1000u64 {
            let spec = LegSpec {
                shared: true,
                streams: vec![StreamSpec {
                    ssrc: Ssrc(0x9000 + i as u32),
                    clock_rate: 48_000,
                }],
                peer: PeerMode::Fixed(addr(10_000 + i as u16)),
                ..LegSpec::latching(SessionId(100 + i), src_sock)
            };
            core.add_leg(now, LegId(1000 + i), spec).unwrap();
        }
    }
    let src_addr = addr(5000);
    let spec = LegSpec {
        shared,
        peer: PeerMode::Fixed(src_addr),
        streams: vec![StreamSpec {
            ssrc: Ssrc(0xA),
            clock_rate: 48_000,
        }],
        ..LegSpec::latching(SessionId(1), src_sock)
    };
    core.add_leg(now, LegId(1), spec).unwrap();
    for k in 0..fanout {
        let sock = SockSlot(1 + k as u32);
        let spec = LegSpec {
            peer: PeerMode::Fixed(addr(6000 + k as u16)),
            ..LegSpec::latching(SessionId(1), sock)
        };
        core.add_leg(now, LegId(2 + k as u64), spec).unwrap();
        core.connect(LegId(1), LegId(2 + k as u64)).unwrap();
    }
    (core, src_sock, src_addr)
}

fn per_packet(c: &mut Criterion) {
    let mut g = c.benchmark_group("relay_core");
    g.throughput(Throughput::Elements(1));
    for (name, shared, fanout) in [
        ("own_port_1to1", false, 1),
        ("shared_port_1to1", true, 1),
        ("own_port_1to10", false, 10),
    ] {
        let (mut core, sock, src) = core_with(shared, fanout);
        let mut tx = TxBatch::new(64);
        let pkts: Vec<Vec<u8>> = (0..1024u16).map(|s| rtp(0xA, s, 160)).collect();
        let t0 = Instant::now();
        let mut i = 0usize;
        g.bench_function(name, |b| {
            b.iter(|| {
                let now = t0 + Duration::from_micros(i as u64 * 20);
                core.handle_datagram(now, sock, src, black_box(&pkts[i & 1023]), &mut tx);
                i += 1;
                if tx.room() < 16 {
                    tx.clear();
                }
            })
        });
    }
    // A destination whose source switches: every packet is rewritten (SSRC, seq, timestamp).
    {
        let now = Instant::now();
        let mut core = quiet_core(now);
        for (id, port) in [(1u64, 5000u16), (2, 5001), (3, 6000)] {
            let spec = LegSpec {
                peer: PeerMode::Fixed(addr(port)),
                ..LegSpec::latching(SessionId(1), SockSlot(id as u32))
            };
            core.add_leg(now, LegId(id), spec).unwrap();
        }
        core.connect(LegId(1), LegId(3)).unwrap();
        let mut tx = TxBatch::new(64);
        core.handle_datagram(now, SockSlot(1), addr(5000), &rtp(0x1, 1, 160), &mut tx);
        core.disconnect(LegId(1), LegId(3)).unwrap();
        core.connect(LegId(2), LegId(3)).unwrap();
        let pkts: Vec<Vec<u8>> = (0..1024u16)
            .map(|s| rtp(0x2, 5000u16.wrapping_add(s), 160))
            .collect();
        let mut i = 0usize;
        g.bench_function("own_port_1to1_rewrite", |b| {
            b.iter(|| {
                let t = now + Duration::from_micros(i as u64 * 20);
                core.handle_datagram(
                    t,
                    SockSlot(2),
                    addr(5001),
                    black_box(&pkts[i & 1023]),
                    &mut tx,
                );
                i += 1;
                if tx.room() < 16 {
                    tx.clear();
                }
            })
        });
    }
    g.finish();
}

/// Many calls taken in turn, so that each packet finds its call's state out of the CPU's
/// first caches, as the worker does at a quarter of its maximum rate (where it idles between
/// packets and the kernel's work evicts it): what the per-transport layout is for.
fn many_calls(c: &mut Criterion) {
    const CALLS: u32 = 2000;
    const SEQS: u16 = 16;
    let mut g = c.benchmark_group("relay_core");
    g.throughput(Throughput::Elements(1));
    let now = Instant::now();
    let mut core = quiet_core(now);
    for k in 0..CALLS {
        for side in 0..2u32 {
            let i = 2 * k + side;
            let spec = LegSpec {
                peer: PeerMode::Fixed(addr(10_000 + i as u16)),
                streams: vec![StreamSpec {
                    ssrc: Ssrc(0x1000 + i),
                    clock_rate: 90_000,
                }],
                ..LegSpec::latching(SessionId(u64::from(k)), SockSlot(i))
            };
            core.add_leg(now, LegId(u64::from(i)), spec).unwrap();
        }
        core.connect(LegId(u64::from(2 * k)), LegId(u64::from(2 * k + 1)))
            .unwrap();
    }
    let pkts: Vec<Vec<u8>> = (0..CALLS * u32::from(SEQS))
        .map(|j| rtp(0x1000 + 2 * (j % CALLS), (j / CALLS) as u16, 1100))
        .collect();
    let mut tx = TxBatch::new(64);
    let mut i = 0usize;
    g.bench_function("own_port_2000_calls_in_turn", |b| {
        b.iter(|| {
            let j = i % pkts.len();
            let k = (j % CALLS as usize) as u32;
            let t = now + Duration::from_micros(i as u64 * 8);
            core.handle_datagram(
                t,
                SockSlot(2 * k),
                addr(10_000 + 2 * k as u16),
                black_box(&pkts[j]),
                &mut tx,
            );
            i += 1;
            if tx.room() < 16 {
                tx.clear();
            }
        })
    });
    g.finish();
}

criterion_group!(benches, per_packet, many_calls);
criterion_main!(benches);
