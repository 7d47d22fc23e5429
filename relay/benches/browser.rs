//! Browser transports: DTLS handshakes per second on one core (the relay's `DtlsServer` and
//! a `DtlsClient` of the same crate, in memory: the figure includes the client's half of
//! the work), and memory per browser transport in the relay core (printed once before the
//! benches: `size_of` of the transport slot, and the growth of the process's resident set
//! per transport over 2,000 browser transports, fresh and after ICE and a DTLS handshake;
//! RSS, so it includes allocator overhead and is an upper bound of the heap it holds).

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use supernode_media::packet::stun::{Class, Method, StunAttr, StunWriter, TransactionId};
use supernode_relay::core::dtls::{DtlsClient, DtlsPoll, DtlsServer};
use supernode_relay::core::{
    BrowserSpec, Core, CoreConfig, DtlsIdentity, IceCredentials, LegId, LegSpec, SessionId,
    SockSlot, Transport, TxBatch,
};

/// Resident set size of this process, bytes (Linux `/proc/self/statm`; 0 elsewhere).
fn rss() -> isize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<isize>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn handshake(relay: &DtlsIdentity, browser: &DtlsIdentity) -> bool {
    let now = Instant::now();
    let mut server = DtlsServer::new(relay, browser.fingerprint(), now);
    let mut client = DtlsClient::new(browser, now);
    let mut buf = vec![0u8; 1500];
    let mut keyed = false;
    client.handle_timeout(now);
    for _ in 0..10 {
        for d in client.drain() {
            server.handle_datagram(now, &d);
        }
        loop {
            match server.poll(&mut buf) {
                DtlsPoll::Send(p) => client.handle_datagram(now, p),
                DtlsPoll::Keys(_) => keyed = true,
                DtlsPoll::Idle => break,
            }
        }
        if keyed && client.is_connected() {
            break;
        }
    }
    keyed
}

const PWD: &str = "relay-password-0123456789";

fn check(ufrag: &str) -> Vec<u8> {
    let mut buf = vec![0u8; 256];
    let mut w = StunWriter::new(
        &mut buf,
        Class::Request,
        Method::BINDING,
        TransactionId([1; 12]),
    )
    .unwrap();
    let user = format!("{ufrag}:brws");
    w.add(&StunAttr::Username(user.as_bytes())).unwrap();
    w.add(&StunAttr::UseCandidate).unwrap();
    w.add_message_integrity(PWD.as_bytes()).unwrap();
    w.add_fingerprint().unwrap();
    let n = w.finish();
    buf.truncate(n);
    buf
}

/// Resident bytes per browser transport in a core: fresh (ICE-lite and DTLS state, caches,
/// TWCC ring), and after ICE and a completed handshake (SRTP sessions).
fn memory_report(relay: &Arc<DtlsIdentity>, browser: &DtlsIdentity) {
    const N: u64 = 2000;
    let t0 = Instant::now();
    let mut core = Core::new(CoreConfig::default(), t0);
    core.add_shared_socket(SockSlot(0));
    let mut tx = TxBatch::new(64);
    let spec = |i: u64| LegSpec {
        shared: true,
        ice: Some(IceCredentials {
            local_ufrag: format!("u{i:07}"),
            local_pwd: PWD.into(),
        }),
        max_streams: 8,
        browser: Some(BrowserSpec {
            identity: relay.clone(),
            remote_fingerprint: browser.fingerprint(),
            remote_ufrag: Some("brws".into()),
            twcc_extension_id: Some(3),
            mid_extension_id: None,
            receive_mids: Vec::new(),
            simulcast: None,
        }),
        ..LegSpec::latching(SessionId(i), SockSlot(0))
    };
    // Warm the core's own maps up so their growth is not charged to the transports.
    for i in 0..N {
        core.add_leg(t0, LegId(10_000 + i), spec(10_000 + i))
            .unwrap();
    }
    for i in 0..N {
        core.remove_leg(LegId(10_000 + i)).unwrap();
    }
    let before = rss();
    for i in 0..N {
        core.add_leg(t0, LegId(i), spec(i)).unwrap();
    }
    let fresh = (rss() - before) as f64 / N as f64;
    for i in 0..N {
        let a = SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 5000));
        core.handle_datagram(t0, SockSlot(0), a, &check(&format!("u{i:07}")), &mut tx);
        tx.clear();
        let mut client = DtlsClient::new(browser, t0);
        for _ in 0..10 {
            client.handle_timeout(t0);
            for d in client.drain() {
                core.handle_datagram(t0, SockSlot(0), a, &d, &mut tx);
            }
            let out: Vec<Vec<u8>> = tx.items().iter().map(|t| tx.data(t).to_vec()).collect();
            tx.clear();
            for d in out {
                client.handle_datagram(t0, &d);
            }
            if client.is_connected() {
                for d in client.drain() {
                    core.handle_datagram(t0, SockSlot(0), a, &d, &mut tx);
                }
                tx.clear();
                break;
            }
        }
        drop(client);
    }
    while core.poll_event().is_some() {}
    let keyed = (rss() - before) as f64 / N as f64;
    let slot = std::mem::size_of::<Option<Transport>>();
    eprintln!(
        "browser transport memory: slot {slot} B + RSS {fresh:.0} B fresh = {:.0} B; \
         after ICE + DTLS handshake: RSS {keyed:.0} B = {:.0} B \
         (handshakes done: {} of {N})",
        slot as f64 + fresh,
        slot as f64 + keyed,
        core.browser_counters().handshakes,
    );
}

fn benches(c: &mut Criterion) {
    let relay = Arc::new(DtlsIdentity::generate().unwrap());
    let browser = DtlsIdentity::generate().unwrap();
    assert!(handshake(&relay, &browser), "handshake completes");
    memory_report(&relay, &browser);
    c.bench_function("dtls_handshake_server_and_client", |b| {
        b.iter(|| black_box(handshake(&relay, &browser)))
    });
    c.bench_function("dtls_identity_generate", |b| {
        b.iter(|| black_box(DtlsIdentity::generate().unwrap().fingerprint()))
    });
}

criterion_group!(browser, benches);
criterion_main!(browser);
