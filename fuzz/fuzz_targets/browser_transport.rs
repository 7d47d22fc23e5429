//! Fuzz target: a browser transport (ICE-lite, DTLS-SRTP, TWCC) in the relay's sans-IO core,
//! fed arbitrary datagrams on the shared port. The first input byte picks the starting
//! state: a fresh transport (DTLS records go to the handshake), or one already nominated and
//! keyed by a real DTLS handshake with a client of the same crate (then SRTP/SRTCP, TWCC and
//! late DTLS). The rest is a script: raw datagrams from one of four addresses, valid ICE
//! checks (with or without USE-CANDIDATE) from one of them, and clock steps. Invariants: no
//! panic, every transmit fits a datagram and goes to one of the four addresses or a peer of
//! the plain leg, and the core's timers keep running.
#![no_main]

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use supernode_media::packet::stun::{Class, Method, StunAttr, StunWriter, TransactionId};
use supernode_relay::core::dtls::DtlsClient;
use supernode_relay::core::{
    BrowserSpec, Core, CoreConfig, DtlsIdentity, IceCredentials, LegId, LegSpec, SessionId,
    SockSlot, TxBatch,
};

const UFRAG: &str = "rlyU";
const PWD: &str = "relay-password-0123456789";

fn addr(i: u8) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 5000 + u16::from(i % 4)))
}

fn identities() -> &'static (Arc<DtlsIdentity>, DtlsIdentity) {
    static IDS: OnceLock<(Arc<DtlsIdentity>, DtlsIdentity)> = OnceLock::new();
    IDS.get_or_init(|| {
        (
            Arc::new(DtlsIdentity::generate().unwrap()),
            DtlsIdentity::generate().unwrap(),
        )
    })
}

fn check(tid: u8, nominate: bool) -> Vec<u8> {
    let mut buf = vec![0u8; 256];
    let mut w =
        StunWriter::new(&mut buf, Class::Request, Method::BINDING, TransactionId([tid; 12]))
            .unwrap();
    w.add(&StunAttr::Username(b"rlyU:brws")).unwrap();
    if nominate {
        w.add(&StunAttr::UseCandidate).unwrap();
    }
    w.add_message_integrity(PWD.as_bytes()).unwrap();
    w.add_fingerprint().unwrap();
    let n = w.finish();
    buf.truncate(n);
    buf
}

fn drain(tx: &mut TxBatch) -> Vec<Vec<u8>> {
    let out = tx.items().iter().map(|t| {
        assert!(t.len as usize <= 1500);
        assert!((5000..5004).contains(&t.dst.port()) || t.dst.port() == 6000);
        tx.data(t).to_vec()
    });
    let v = out.collect();
    tx.clear();
    v
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let (relay_id, browser_id) = identities();
    let t0 = Instant::now();
    let mut now = t0;
    let mut core = Core::new(
        CoreConfig {
            idle_timeout: Duration::from_secs(5),
            consent_timeout: Duration::from_secs(3),
            report_interval: Duration::from_millis(300),
            ..CoreConfig::default()
        },
        t0,
    );
    let s = SessionId(1);
    let browser = LegSpec {
        shared: true,
        ice: Some(IceCredentials {
            local_ufrag: UFRAG.into(),
            local_pwd: PWD.into(),
        }),
        max_streams: 8,
        browser: Some(BrowserSpec {
            identity: relay_id.clone(),
            remote_fingerprint: browser_id.fingerprint(),
            remote_ufrag: Some("brws".into()),
            twcc_extension_id: Some(u8::from(mode >> 4).max(1)),
            mid_extension_id: None,
            receive_mids: Vec::new(),
            simulcast: None,
        }),
        ..LegSpec::latching(s, SockSlot(0))
    };
    core.add_leg(t0, LegId(0), browser).unwrap();
    let plain = LegSpec {
        peer: supernode_relay::core::PeerMode::Fixed(SocketAddr::from(([127, 0, 0, 1], 6000))),
        ..LegSpec::latching(s, SockSlot(1))
    };
    core.add_leg(t0, LegId(1), plain).unwrap();
    core.connect(LegId(0), LegId(1)).unwrap();
    core.connect(LegId(1), LegId(0)).unwrap();
    let mut tx = TxBatch::new(256);
    if mode & 1 == 1 {
        // Nominate addr(0) and run a real handshake first.
        core.handle_datagram(now, SockSlot(0), addr(0), &check(0, true), &mut tx);
        drain(&mut tx);
        let mut client = DtlsClient::new(browser_id, now);
        for _ in 0..8 {
            client.handle_timeout(now);
            for d in client.drain() {
                core.handle_datagram(now, SockSlot(0), addr(0), &d, &mut tx);
            }
            for d in drain(&mut tx) {
                client.handle_datagram(now, &d);
            }
            if client.is_connected() {
                for d in client.drain() {
                    core.handle_datagram(now, SockSlot(0), addr(0), &d, &mut tx);
                }
                drain(&mut tx);
                break;
            }
        }
    }
    while let [op, a, b, tail @ ..] = rest {
        match op & 0xc0 {
            0x80 => {
                now += Duration::from_millis(u64::from(*a) * 4);
                core.handle_timeout(now, &mut tx);
                rest = tail;
            }
            0xc0 => {
                core.handle_datagram(now, SockSlot(0), addr(*a), &check(*b, op & 1 == 1), &mut tx);
                rest = tail;
            }
            _ => {
                let len = (*b as usize).min(tail.len());
                let (dgram, tail) = tail.split_at(len);
                let sock = SockSlot(u32::from(op & 1));
                core.handle_datagram(now, sock, addr(*a), dgram, &mut tx);
                rest = tail;
            }
        }
        drain(&mut tx);
        while core.poll_event().is_some() {}
        assert!(core.poll_timeout() >= t0);
    }
});
