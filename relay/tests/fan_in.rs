//! Fan-in over real loopback sockets, as relay REST sets a session up ("a session's legs hear
//! each other": every leg connected to every other): each receiver gets every talker as its
//! own stream, intact.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use supernode_relay::core::CoreConfig;
use supernode_relay::{LegInfo, LegRequest, Relay};

fn quiet() -> CoreConfig {
    CoreConfig {
        report_interval: Duration::from_secs(3600),
        ..CoreConfig::default()
    }
}

/// `n` latching legs, all hearing all, each latched by its client.
fn session(relay: &Relay, n: usize) -> (Vec<LegInfo>, Vec<Client>) {
    let reqs = (0..n).map(|_| LegRequest::latching()).collect();
    let (_s, legs) = relay.create_session(reqs).unwrap();
    let ids: Vec<_> = legs.iter().map(|l| l.id).collect();
    relay.connect_all(&ids).unwrap();
    let clients: Vec<Client> = (0..n).map(|_| Client::new()).collect();
    for (i, c) in clients.iter().enumerate() {
        c.sock
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        c.send(legs[i].local, &rtp(0xF000 + i as u32, 0, 0, b"latch"));
        assert!(wait_stats(relay, legs[i].id, |s| s.peer == Some(c.addr())));
    }
    (legs, clients)
}

/// Talkers send `n` packets each, interleaved; every other client must get each talker's
/// stream intact: its own SSRC, consecutive sequence numbers, timestamps 960 apart, its own
/// payloads.
fn talk_and_check(legs: &[LegInfo], clients: &[Client], talkers: &[usize], n: u16) {
    for k in 0..n {
        for &t in talkers {
            let seq = (t as u16).wrapping_mul(1000).wrapping_add(k + 1);
            let ts = (t as u32)
                .wrapping_mul(7_777_777)
                .wrapping_add(u32::from(k) * 960);
            clients[t].send(
                legs[t].local,
                &rtp(0xF000 + t as u32, seq, ts, &[t as u8, k as u8, 0xAB]),
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    for (rx, c) in clients.iter().enumerate() {
        let others: Vec<usize> = talkers.iter().copied().filter(|&t| t != rx).collect();
        let expected = others.len() * usize::from(n);
        let mut by: HashMap<u32, Vec<(u16, u32, Vec<u8>)>> = HashMap::new();
        let mut got = 0;
        while got < expected {
            let Some((d, _)) = c.recv() else { break };
            if d.len() < 2 || (192..=223).contains(&d[1]) {
                continue;
            }
            let (ssrc, seq, ts, payload) = fields(&d);
            if payload == b"latch" {
                continue; // early media of the set-up
            }
            by.entry(ssrc).or_default().push((seq, ts, payload));
            got += 1;
        }
        assert_eq!(by.len(), others.len(), "client {rx}: one stream per talker");
        for &t in &others {
            let pkts = &by[&(0xF000 + t as u32)];
            assert_eq!(pkts.len(), usize::from(n), "client {rx}: all of {t}");
            for (k, w) in pkts.windows(2).enumerate() {
                assert_eq!(w[1].0, w[0].0.wrapping_add(1), "{t}->{rx}: sequence");
                assert_eq!(w[1].1.wrapping_sub(w[0].1), 960, "{t}->{rx}: timestamp");
                assert_eq!(w[1].2, vec![t as u8, (k + 1) as u8, 0xAB], "{t}->{rx}");
            }
        }
    }
}

#[test]
fn three_legs_two_talking_over_sockets() {
    let relay = relay(43_000, quiet());
    let (legs, clients) = session(&relay, 3);
    talk_and_check(&legs, &clients, &[0, 1], 40);
}

#[test]
fn sixteen_legs_four_talking_over_sockets() {
    let relay = relay(43_100, quiet());
    let (legs, clients) = session(&relay, 16);
    talk_and_check(&legs, &clients, &[0, 5, 10, 15], 25);
}
