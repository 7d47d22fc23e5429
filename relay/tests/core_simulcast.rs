//! Simulcast through the sans-IO core, on a virtual clock: a browser publisher's three
//! layers bound by RID, one layer forwarded into a receiver's slot, switches only at a
//! keyframe of the target layer with the receiver's SSRC, sequence numbers and timestamps
//! continuous across them, feedback mapped back to the layer's SSRC; and the receiver's
//! bandwidth estimate, from its own transport-wide feedback, moving it down when its link
//! loses packets and back up when the link recovers.

mod harness;

use std::sync::Arc;
use std::time::Duration;

use harness::*;
use supernode_media::ids::Ssrc;
use supernode_media::packet::rtcp::{RtcpPacket, TransportFeedback, TwccPackets, TwccStatus};
use supernode_relay::core::SimulcastSpec;

const PWD: &str = "relay-password-0123456789";
/// Extension ids (as Chrome numbers them in both offers).
const TWCC: u8 = 3;
const MID: u8 = 4;
const RID: u8 = 10;
const RRID: u8 = 11;
/// Layer SSRCs of the publisher, low to high, and their RTX.
const LAYERS: [u32; 3] = [0x51, 0x52, 0x53];
const RTX: [u32; 3] = [0x61, 0x62, 0x63];
const RIDS: [&[u8]; 3] = [b"q", b"h", b"f"];
const H264: u8 = 102;
const H264_RTX: u8 = 103;

fn no_reports() -> CoreConfig {
    CoreConfig {
        report_interval: Duration::from_secs(3600),
        ..CoreConfig::default()
    }
}

struct Sim {
    h: Harness,
    lp: Leg,
    lv: Leg,
    p: Peer,
    v: Peer,
    ps: SrtpClient,
    vs: SrtpClient,
    seq: [u16; 3],
    frame: u32,
}

impl Sim {
    fn new() -> Self {
        let mut h = Harness::new(no_reports());
        let relay = Arc::new(DtlsIdentity::generate().expect("relay certificate"));
        let mut p = h.browser_peer("pubU");
        let mut v = h.browser_peer("viwU");
        let base = |b: &BrowserPeer| BrowserSpec {
            identity: relay.clone(),
            remote_fingerprint: b.fingerprint(),
            remote_ufrag: Some(b.ufrag.clone()),
            twcc_extension_id: Some(TWCC),
            mid_extension_id: Some(MID),
            receive_mids: Vec::new(),
            simulcast: None,
        };
        let publisher = BrowserSpec {
            simulcast: Some(SimulcastSpec {
                rid_extension_id: RID,
                repaired_rid_extension_id: Some(RRID),
                rids: vec!["q".into(), "h".into(), "f".into()],
            }),
            ..base(&p)
        };
        // A conference participant: two video m-lines, two slots.
        let viewer = BrowserSpec {
            receive_mids: vec![(90_000, "1".into()), (90_000, "2".into())],
            ..base(&v)
        };
        let rates = [(111, 48_000), (H264, 90_000), (H264_RTX, 90_000)];
        let legs = h.session_with([
            LegOpts::browser("rlyP", PWD, publisher).clock_rates(&rates),
            LegOpts::browser("rlyV", PWD, viewer).clock_rates(&rates),
        ]);
        let (lp, lv) = (legs[0], legs[1]);
        h.connect_kind(lp, lv, StreamKind::Video);
        h.send(p.peer, lp, &ice_check("rlyP", "pubU", PWD, 1, true));
        h.send(v.peer, lv, &ice_check("rlyV", "viwU", PWD, 2, true));
        let _ = (h.take(p.peer), h.take(v.peer));
        let ps = p.handshake(&mut h, lp, 20).expect("publisher keyed");
        let vs = v.handshake(&mut h, lv, 20).expect("viewer keyed");
        let (p, v) = (p.peer, v.peer);
        let _ = (h.take(p), h.take(v));
        Self {
            h,
            lp,
            lv,
            p,
            v,
            ps,
            vs,
            seq: [100, 2000, 30_000],
            frame: 0,
        }
    }

    /// One packet of `layer` of the current frame: an IDR when `key`, else a P slice, of
    /// `size` payload bytes; the RID (and the publisher's own transport-wide number) in it.
    fn send_layer(&mut self, layer: usize, key: bool, size: usize) {
        let mut payload = vec![0u8; size.max(2)];
        payload[0] = if key { 0x65 } else { 0x41 };
        let seq = self.seq[layer];
        self.seq[layer] = seq.wrapping_add(1);
        // Each layer has its own timestamp base, as a browser's do.
        let ts = (layer as u32 * 1_000_000).wrapping_add(self.frame * 3000);
        let pkt = rtp_ext(
            H264,
            LAYERS[layer],
            seq,
            ts,
            &[(TWCC, &[0, 9]), (MID, b"1"), (RID, RIDS[layer])],
            &payload,
        );
        let wire = self.ps.protect_rtp(&pkt);
        self.h.send(self.p, self.lp, &wire);
    }

    /// What the viewer received since last asked: plain RTP packets.
    fn viewer_rtp(&mut self) -> Vec<Vec<u8>> {
        self.h
            .take(self.v)
            .into_iter()
            .filter(|d| d.is_rtp())
            .filter_map(|d| self.vs.unprotect_rtp(&d.data))
            .collect()
    }

    /// The media SSRCs of the PLIs the publisher received since last asked.
    fn publisher_plis(&mut self) -> Vec<u32> {
        self.publisher_rtcp()
            .iter()
            .filter(|p| p.len() >= 12 && p[0] & 0x1f == 1 && p[1] == 206)
            .map(|p| u32::from_be_bytes([p[8], p[9], p[10], p[11]]))
            .collect()
    }

    fn publisher_rtcp(&mut self) -> Vec<Vec<u8>> {
        self.h
            .take(self.p)
            .into_iter()
            .filter(|d| d.is_rtcp())
            .filter_map(|d| self.ps.unprotect_rtcp(&d.data))
            .collect()
    }

    fn current(&self) -> Option<u8> {
        let v = self.h.simulcast_view(self.lv);
        v.streams.first().and_then(|s| s.current)
    }
}

fn mid_of(p: &[u8]) -> Option<Vec<u8>> {
    extensions(p)
        .into_iter()
        .find(|(id, _)| *id == MID)
        .map(|(_, v)| v)
}

#[test]
fn one_layer_reaches_the_receiver_and_switches_only_at_a_keyframe_seamlessly() {
    let mut s = Sim::new();
    // P slices of all three layers: the receiver waits for a keyframe of the lowest, which
    // is asked of its SSRC; nothing is forwarded meanwhile, and nothing counted as a drop.
    // (The high layer's SSRC arrives first.)
    for layer in (0..3).rev() {
        s.send_layer(layer, false, 100);
    }
    assert!(s.viewer_rtp().is_empty(), "no layer before its keyframe");
    assert_eq!(s.publisher_plis(), vec![LAYERS[0]]);
    assert_eq!(s.h.stats(s.lp).drops(DropReason::NoDestination), 0);

    // A new video SSRC without a RID cannot be placed: dropped and counted.
    let stray = rtp_ext(H264, 0x99, 1, 0, &[(MID, b"1")], &[0x65, 0]);
    let wire = s.ps.protect_rtp(&stray);
    s.h.send(s.p, s.lp, &wire);
    assert_eq!(s.h.stats(s.lp).drops(DropReason::WrongSsrc), 1);
    // RTX of a layer (repaired-RID) is bound but not forwarded.
    let rtx = rtp_ext(H264_RTX, RTX[2], 1, 0, &[(RRID, b"f")], &[0, 1, 0x41]);
    let wire = s.ps.protect_rtp(&rtx);
    s.h.send(s.p, s.lp, &wire);
    assert!(s.viewer_rtp().is_empty());

    // The lowest layer's keyframe: from here on exactly that layer reaches the viewer, in
    // its first slot, under one SSRC; its packets are numbered for transport-wide feedback.
    let mut got = Vec::new();
    for f in 0..50u32 {
        s.frame = f;
        for layer in 0..3 {
            s.send_layer(layer, f == 0, 300);
        }
        got.extend(s.viewer_rtp());
        s.h.advance(Duration::from_millis(33));
    }
    assert_eq!(got.len(), 50, "one packet per frame: one layer");
    let out_ssrc = fields(&got[0]).0;
    assert_eq!(
        out_ssrc, LAYERS[0],
        "the receiver sees the lowest layer's SSRC"
    );
    for (i, p) in got.iter().enumerate() {
        let (ssrc, seq, ts, _) = fields(p);
        assert_eq!(ssrc, out_ssrc);
        assert_eq!(
            seq,
            101 + i as u16,
            "the low layer's numbering (100 was not passed)"
        );
        assert_eq!(ts, i as u32 * 3000);
        assert_eq!(mid_of(p).as_deref(), Some(&b"1"[..]));
        let tw: Vec<_> = extensions(p)
            .into_iter()
            .filter(|(id, _)| *id == TWCC)
            .collect();
        assert_eq!(tw, vec![(TWCC, (i as u16).to_be_bytes().to_vec())]);
        assert!(
            extensions(p).iter().all(|(id, _)| *id != RID),
            "the publisher's RID is not passed on"
        );
    }
    assert_eq!(s.current(), Some(0));
    // The estimate (2 Mbit/s to start) fits every layer: after a second of that, the highest
    // is the target and its keyframe is asked for; it is still not forwarded without one.
    let view = s.h.simulcast_view(s.lv);
    assert_eq!(view.streams[0].target, 2, "{view:?}");
    assert!(s.publisher_plis().contains(&LAYERS[2]));
    s.frame = 50;
    for layer in 0..3 {
        s.send_layer(layer, false, 300);
    }
    let before = s.viewer_rtp();
    assert_eq!(before.len(), 1);
    let (_, last_seq, last_ts, _) = fields(&before[0]);

    // The high layer's keyframe (sent before the low layer's packet of the same frame):
    // the switch; one SSRC, the next sequence number, the timestamp advanced by the time
    // since the last packet; the low layer no longer passes.
    s.h.advance(Duration::from_millis(33));
    s.frame = 51;
    s.send_layer(2, true, 300);
    s.send_layer(1, false, 300);
    s.send_layer(0, false, 300);
    let after = s.viewer_rtp();
    assert_eq!(after.len(), 1, "only the high layer");
    let (ssrc, seq, ts, payload) = fields(&after[0]);
    assert_eq!(ssrc, out_ssrc);
    assert_eq!(seq, last_seq.wrapping_add(1));
    assert_eq!(ts, last_ts.wrapping_add(2970), "33 ms at 90 kHz");
    assert_eq!(payload[0], 0x65, "it starts at the IDR");
    assert_eq!(s.current(), Some(2));
    assert_eq!(s.h.simulcast_view(s.lv).streams[0].switches, 1);
    assert_eq!(s.h.stats(s.lv).layer_switches, 1);
    for f in 52..55u32 {
        s.frame = f;
        for layer in 0..3 {
            s.send_layer(layer, false, 300);
        }
    }
    let next: Vec<_> = s.viewer_rtp().iter().map(|p| fields(p).1).collect();
    assert_eq!(next, vec![seq + 1, seq + 2, seq + 3]);

    // Feedback from the viewer maps to the high layer: a PLI on its SSRC, and a NACK the
    // relay's cache cannot serve, asked of the high layer under its own numbering.
    let _ = s.publisher_rtcp();
    s.h.advance(Duration::from_millis(400));
    let pli = s.vs.protect_rtcp(&pli(0xBB, out_ssrc));
    s.h.send(s.v, s.lv, &pli);
    assert_eq!(s.publisher_plis(), vec![LAYERS[2]]);
    let n = s.vs.protect_rtcp(&nack(0xBB, out_ssrc, &[(seq + 1, 0)]));
    s.h.send(s.v, s.lv, &n);
    let asked = nacks(&s.publisher_rtcp());
    // The high layer's packet of frame 52 was its sequence number 30_053 (30_000 was the
    // first P slice, then one per frame).
    assert_eq!(asked, vec![(LAYERS[2], vec![30_053])]);

    // Capped to the middle layer: the target drops at once, its keyframe is asked for, and
    // the high layer flows until it comes.
    s.h.set_max_layer(s.lv, Some(1));
    assert_eq!(s.h.simulcast_view(s.lv).streams[0].target, 1);
    assert!(s.publisher_plis().contains(&LAYERS[1]));
    s.frame = 55;
    s.send_layer(2, false, 300);
    s.send_layer(1, false, 300);
    assert_eq!(s.viewer_rtp().len(), 1, "still the high layer");
    assert_eq!(s.current(), Some(2));
    s.frame = 56;
    s.send_layer(1, true, 300);
    s.send_layer(2, false, 300);
    s.send_layer(0, false, 300);
    let got = s.viewer_rtp();
    assert_eq!(got.len(), 1);
    assert_eq!(fields(&got[0]).1, seq + 5);
    assert_eq!(s.current(), Some(1));
    assert_eq!(s.h.browser_counters().layer_switches, 2);
}

/// The viewer's link: drains at `bps`, holds at most 100 ms of it, drops the rest.
struct Link {
    bps: f64,
    queue: f64,
    last: Duration,
}

impl Link {
    fn passes(&mut self, at: Duration, bytes: usize) -> bool {
        let drained = self.bps / 8.0 * (at - self.last).as_secs_f64();
        self.queue = (self.queue - drained).max(0.0);
        self.last = at;
        if self.queue + bytes as f64 > self.bps / 8.0 * 0.1 {
            return false;
        }
        self.queue += bytes as f64;
        true
    }
}

#[test]
fn a_receiver_whose_link_loses_moves_down_within_two_seconds_and_back_up_when_it_recovers() {
    let mut s = Sim::new();
    let mut link = Link {
        bps: 10_000_000.0,
        queue: 0.0,
        last: Duration::ZERO,
    };
    // What the publisher sends every 20 ms per layer: packets × payload bytes (about 150,
    // 500 and 1500 kbit/s).
    let shape = [(1usize, 330usize), (2, 600), (5, 700)];
    let mut key_next = [true; 3];
    // Transport-wide numbers the viewer got or lost since its last feedback.
    let mut pending: Vec<(u16, bool)> = Vec::new();
    let mut log: Vec<(Duration, Option<u8>)> = Vec::new();
    let mut step = |s: &mut Sim, link: &mut Link, key_next: &mut [bool; 3], n: u32| {
        s.frame += 1;
        for (layer, &(count, size)) in shape.iter().enumerate() {
            for i in 0..count {
                s.send_layer(layer, key_next[layer] && i == 0, size);
            }
            key_next[layer] = false;
        }
        for ssrc in s.publisher_plis() {
            if let Some(l) = LAYERS.iter().position(|&x| x == ssrc) {
                key_next[l] = true;
            }
        }
        let at = s.h.elapsed();
        for p in s.viewer_rtp() {
            let tw = extensions(&p)
                .into_iter()
                .find(|(id, _)| *id == TWCC)
                .map(|(_, v)| u16::from_be_bytes([v[0], v[1]]))
                .expect("numbered");
            pending.push((tw, link.passes(at, p.len())));
        }
        if n % 5 == 4 && !pending.is_empty() {
            let base = pending[0].0;
            let statuses: Vec<TwccStatus> = pending
                .iter()
                .map(|&(_, ok)| {
                    if ok {
                        TwccStatus::Received(4)
                    } else {
                        TwccStatus::NotReceived
                    }
                })
                .collect();
            let fb = TransportFeedback {
                sender_ssrc: Ssrc(0xBB),
                media_ssrc: Ssrc(0),
                base_seq: base,
                reference_time: 0,
                fb_pkt_count: 0,
                packets: TwccPackets::Items(&statuses),
            };
            let wire =
                s.vs.protect_rtcp(&rtcp(&[RtcpPacket::TransportFeedback(fb)]));
            s.h.send(s.v, s.lv, &wire);
            pending.clear();
        }
        s.h.advance(Duration::from_millis(20));
        log.push((s.h.elapsed(), s.current()));
    };
    let mut n = 0u32;
    // Four seconds on a good link: the viewer gets the high layer.
    while s.h.elapsed() < Duration::from_secs(4) {
        step(&mut s, &mut link, &mut key_next, n);
        n += 1;
    }
    assert_eq!(s.current(), Some(2), "{:?}", s.h.simulcast_view(s.lv));
    // The link drops to 700 kbit/s: down within 2 s.
    let throttled_at = s.h.elapsed();
    link.bps = 700_000.0;
    while s.current() == Some(2) && s.h.elapsed() < throttled_at + Duration::from_secs(5) {
        step(&mut s, &mut link, &mut key_next, n);
        n += 1;
    }
    let down = s.h.elapsed() - throttled_at;
    let view = s.h.simulcast_view(s.lv);
    println!("down to layer {:?} after {down:?} ({view:?})", s.current());
    assert!(down <= Duration::from_secs(2), "{down:?}");
    // It stays down while the link is bad (six more seconds).
    let until = s.h.elapsed() + Duration::from_secs(6);
    while s.h.elapsed() < until {
        step(&mut s, &mut link, &mut key_next, n);
        n += 1;
        assert_ne!(
            s.current(),
            Some(2),
            "up again on a bad link at {:?}",
            s.h.elapsed()
        );
    }
    // The link recovers: back to the high layer (the estimate grows 8 %/s).
    let recovered_at = s.h.elapsed();
    link.bps = 10_000_000.0;
    while s.current() != Some(2) && s.h.elapsed() < recovered_at + Duration::from_secs(60) {
        step(&mut s, &mut link, &mut key_next, n);
        n += 1;
    }
    let up = s.h.elapsed() - recovered_at;
    println!(
        "back up to layer {:?} after {up:?} ({:?})",
        s.current(),
        s.h.simulcast_view(s.lv)
    );
    assert_eq!(s.current(), Some(2));
    // Down and up: at least two switches seen.
    let switches = log.windows(2).filter(|w| w[0].1 != w[1].1).count();
    assert!(switches >= 2, "{switches}");
}
