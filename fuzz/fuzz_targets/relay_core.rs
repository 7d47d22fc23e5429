//! Fuzz target: the relay's sans-IO forwarding core. The input is a script of datagrams
//! (on one of four sockets, from one of four addresses, any bytes) and clock steps, played
//! against a core with own-port and shared-port legs, latching and fixed peers, an SRTP leg,
//! an ICE leg, a rate cap and fan-out. Invariants: no panic, every transmit fits a datagram
//! and goes to a known peer, and the core's timers keep running.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use supernode_relay::core::{
    Core, CoreConfig, IceCredentials, LegId, LegSpec, LegSrtpKeys, PeerMode, RateCap, SessionId,
    SockSlot, SrtpKey, SrtpProfile, Ssrc, StreamSpec, TxBatch,
};

fn addr(i: u8) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 5000 + u16::from(i % 4)))
}

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let mut now = t0;
    let mut core = Core::new(
        CoreConfig {
            idle_timeout: Duration::from_secs(2),
            report_interval: Duration::from_millis(300),
            ..CoreConfig::default()
        },
        t0,
    );
    let key = SrtpKey {
        profile: SrtpProfile::Aes128CmHmacSha1_80,
        master_key: vec![1; 16],
        master_salt: vec![2; 14],
    };
    let s = SessionId(1);
    let legs = [
        LegSpec::latching(s, SockSlot(0)),
        LegSpec {
            peer: PeerMode::Fixed(addr(1)),
            rate_cap: RateCap {
                packets_per_sec: 100,
                bytes_per_sec: 0,
                burst_ms: 50,
            },
            ..LegSpec::latching(s, SockSlot(1))
        },
        LegSpec {
            srtp: Some(LegSrtpKeys {
                inbound: key.clone(),
                outbound: key,
            }),
            ..LegSpec::latching(s, SockSlot(2))
        },
        LegSpec {
            shared: true,
            streams: vec![StreamSpec {
                ssrc: Ssrc(0x1234),
                clock_rate: 48_000,
            }],
            ..LegSpec::latching(s, SockSlot(3))
        },
        LegSpec {
            shared: true,
            ice: Some(IceCredentials {
                local_ufrag: "u".into(),
                local_pwd: "p".into(),
            }),
            ..LegSpec::latching(s, SockSlot(3))
        },
    ];
    for (i, spec) in legs.into_iter().enumerate() {
        core.add_leg(t0, LegId(i as u64), spec).unwrap();
    }
    for a in 0..5u64 {
        for b in 0..5u64 {
            if a != b {
                core.connect(LegId(a), LegId(b)).unwrap();
            }
        }
    }
    let mut tx = TxBatch::new(256);
    let mut rest = data;
    while let [op, a, b, tail @ ..] = rest {
        if op & 0x80 != 0 {
            now += Duration::from_millis(u64::from(*a) * 4);
            core.handle_timeout(now, &mut tx);
            rest = tail;
        } else {
            let len = (*b as usize).min(tail.len());
            let (dgram, tail) = tail.split_at(len);
            core.handle_datagram(now, SockSlot(u32::from(op % 4)), addr(*a), dgram, &mut tx);
            rest = tail;
        }
        for t in tx.items() {
            assert!(t.len as usize <= 1500);
            assert!((5000..5004).contains(&t.dst.port()));
        }
        tx.clear();
        while core.poll_event().is_some() {}
        assert!(core.poll_timeout() >= t0);
    }
});
