//! A browser transport over real loopback sockets, through the relay handle (the thin smoke
//! layer on top of `core_browser.rs`): a fake browser on a UDP socket checks ICE on the
//! worker's shared port, runs the DTLS handshake (the same DTLS crate as client) and sends
//! SRTP that reaches a plain-RTP leg decrypted; what the plain leg sends reaches the browser
//! protected with the DTLS-SRTP key.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use supernode_media::packet::demux::{PacketKind, classify};
use supernode_media::packet::stun::{
    Class, Method, StunAttr, StunMessage, StunWriter, TransactionId,
};
use supernode_relay::core::dtls::DtlsClient;
use supernode_relay::core::srtp::LegSrtp;
use supernode_relay::core::{BrowserSpec, CoreConfig, DtlsIdentity, IceCredentials, Pt};
use supernode_relay::{LegRequest, RelayConfig};

fn check(pwd: &str, tid: u8) -> Vec<u8> {
    let mut buf = vec![0u8; 256];
    let mut w = StunWriter::new(
        &mut buf,
        Class::Request,
        Method::BINDING,
        TransactionId([tid; 12]),
    )
    .unwrap();
    w.add(&StunAttr::Username(b"relayufrag:brws")).unwrap();
    w.add(&StunAttr::UseCandidate).unwrap();
    w.add_message_integrity(pwd.as_bytes()).unwrap();
    w.add_fingerprint().unwrap();
    let n = w.finish();
    buf.truncate(n);
    buf
}

#[test]
fn a_browser_handshakes_and_exchanges_srtp_over_loopback() {
    let relay = supernode_relay::Relay::start(RelayConfig {
        port_range: (46_000, 46_099),
        workers: 1,
        core: CoreConfig {
            report_interval: Duration::from_secs(3600),
            early_media_max_age: Duration::from_secs(30),
            ..CoreConfig::default()
        },
        ..RelayConfig::default()
    })
    .expect("relay starts");
    let relay_id = Arc::new(DtlsIdentity::generate().unwrap());
    let browser_id = DtlsIdentity::generate().unwrap();
    let session = relay.create_session(Vec::new()).expect("session").0;
    let pwd = "relay-password-0123456789";
    let b_leg = relay
        .add_leg(
            session,
            LegRequest::browser(
                IceCredentials {
                    local_ufrag: "relayufrag".into(),
                    local_pwd: pwd.into(),
                },
                BrowserSpec {
                    identity: relay_id.clone(),
                    remote_fingerprint: browser_id.fingerprint(),
                    remote_ufrag: Some("brws".into()),
                    twcc_extension_id: None,
                    mid_extension_id: None,
                    receive_mids: Vec::new(),
                    simulcast: None,
                },
                vec![(Pt(111), 48_000)],
            ),
        )
        .expect("browser leg");
    let p_leg = relay
        .add_leg(session, LegRequest::latching())
        .expect("plain leg");
    relay.connect_both(b_leg.id, p_leg.id).unwrap();

    let browser = Client::new();
    let plain = Client::new();
    // A wrong password gets nothing; the right one an answer with the browser's address.
    browser.send(b_leg.local, &check("wrong", 1));
    browser.send(b_leg.local, &check(pwd, 2));
    let (answer, from) = browser.recv().expect("a STUN answer");
    assert_eq!(from, b_leg.local);
    let m = StunMessage::parse(&answer).unwrap();
    assert_eq!(
        m.transaction_id().0,
        [2; 12],
        "only the good check is answered"
    );
    assert_eq!(m.xor_mapped_address(), Some(browser.addr()));

    // DTLS over the socket.
    let mut dtls = DtlsClient::new(&browser_id, Instant::now());
    let deadline = Instant::now() + Duration::from_secs(10);
    browser
        .sock
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    while !dtls.is_connected() && Instant::now() < deadline {
        dtls.handle_timeout(Instant::now());
        for d in dtls.drain() {
            browser.send(b_leg.local, &d);
        }
        while let Some((d, _)) = browser.recv() {
            if classify(&d) == PacketKind::Dtls {
                dtls.handle_datagram(Instant::now(), &d);
            }
        }
    }
    assert!(dtls.is_connected(), "handshake over loopback");
    assert_eq!(dtls.peer_fingerprint(), Some(relay_id.fingerprint()));
    for d in dtls.drain() {
        browser.send(b_leg.local, &d);
    }
    let mut srtp = LegSrtp::new(dtls.keys().unwrap()).unwrap();
    // The relay is keyed once it has the client's last flight.
    assert!(wait_until(Duration::from_secs(5), || {
        let mut buf = rtp(0xB, 1, 0, b"probe");
        let len = buf.len();
        buf.resize(len + 64, 0);
        let n = srtp.protect_rtp(&mut buf, len).unwrap();
        browser.send(b_leg.local, &buf[..n]);
        stats(&relay, b_leg.id).counters.rtp_in > 0
    }));

    // Plain leg latches; then both ways.
    plain.send(p_leg.local, &rtp(0xC, 1, 0, b"latch"));
    assert!(wait_stats(&relay, p_leg.id, |s| s.peer == Some(plain.addr())));
    let _ = plain.recv_all();
    for i in 0..5u16 {
        let mut buf = rtp(0xB, 10 + i, 0, &[i as u8; 100]);
        let len = buf.len();
        buf.resize(len + 64, 0);
        let n = srtp.protect_rtp(&mut buf, len).unwrap();
        browser.send(b_leg.local, &buf[..n]);
    }
    let got = plain.recv_rtp();
    assert_eq!(got.len(), 5, "decrypted and forwarded");
    for (i, p) in got.iter().enumerate() {
        assert_eq!(fields(p).3, vec![i as u8; 100]);
    }
    plain.send(p_leg.local, &rtp(0xC, 2, 960, b"to the browser"));
    let mut opened = None;
    while let Some((d, _)) = browser.recv() {
        if classify(&d) == PacketKind::Rtp {
            let mut out = vec![0u8; d.len()];
            let n = srtp
                .unprotect_rtp(&d, &mut out)
                .expect("browser key opens it");
            opened = Some(fields(&out[..n]).3);
        }
    }
    assert_eq!(opened.as_deref(), Some(&b"to the browser"[..]));
    relay.shutdown();
}
