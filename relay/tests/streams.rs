//! Streams inside transports, driven through the sans-IO core with a virtual clock: fan-in
//! (N senders reach a receiver as N intact streams), learned streams up to a bound, SSRC
//! collisions at a receiver, RTCP per transport (a report block per receive stream, an SR per
//! send stream), NACK and PLI keyed by media SSRC, and lip sync through the rewrite.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use supernode_media::ids::{Pt, Ssrc};
use supernode_media::packet::rtcp::{
    Nack, NackPair, Pli, RtcpCompound, RtcpPacket, SenderReport, WireList, write_compound,
};
use supernode_media::packet::rtp::{RtpHeader, RtpPacket};
use supernode_relay::core::{
    Core, CoreConfig, DropReason, LegId, LegSpec, NackCachePolicy, SessionId, SockSlot, StreamSpec,
    TxBatch,
};

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn rtp(ssrc: u32, pt: u8, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
    let h = RtpHeader {
        payload_type: Pt(pt),
        sequence_number: seq,
        timestamp: ts,
        ssrc: Ssrc(ssrc),
        ..RtpHeader::default()
    };
    let mut buf = vec![0u8; 1500];
    let n = h.write(payload, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

fn rtcp(packets: &[RtcpPacket<'_>]) -> Vec<u8> {
    let mut buf = vec![0u8; 1500];
    let n = write_compound(packets, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

/// A core and a virtual clock. Transport `i` is leg `i` on socket `i`, its peer at port
/// `10_000 + i`.
struct Net {
    core: Core,
    now: Instant,
    tx: TxBatch,
}

type Sent = (SockSlot, SocketAddr, Vec<u8>);

impl Net {
    fn new(config: CoreConfig) -> Self {
        let now = Instant::now();
        Self {
            core: Core::new(config, now),
            now,
            tx: TxBatch::new(4096),
        }
    }

    fn quiet() -> Self {
        Self::new(CoreConfig {
            report_interval: Duration::from_secs(3600),
            ..CoreConfig::default()
        })
    }

    fn add(&mut self, i: u32, spec: impl FnOnce(LegSpec) -> LegSpec) {
        let spec = spec(LegSpec::latching(SessionId(1), SockSlot(i)));
        self.core
            .add_leg(self.now, LegId(u64::from(i)), spec)
            .unwrap();
    }

    /// `n` latching transports, every one subscribed to every other, each latched by a
    /// first packet from its peer (SSRC `0xF000 + i`, which its peers then receive).
    fn all_hear_all(&mut self, n: u32) {
        self.all_hear_all_at(n, 48_000);
    }

    /// [`Net::all_hear_all`] with streams of a `clock_rate` Hz media clock (90 kHz: video,
    /// the streams the relay keeps for retransmission).
    fn all_hear_all_at(&mut self, n: u32, clock_rate: u32) {
        for i in 0..n {
            self.add(i, |s| LegSpec { clock_rate, ..s });
        }
        for a in 0..n {
            for b in 0..n {
                if a != b {
                    self.core.connect(LegId(a.into()), LegId(b.into())).unwrap();
                }
            }
        }
        for i in 0..n {
            self.send(i, &rtp(0xF000 + i, 111, 0, 0, b"latch"));
        }
        self.take();
    }

    fn send(&mut self, i: u32, data: &[u8]) {
        self.core.handle_datagram(
            self.now,
            SockSlot(i),
            addr(10_000 + i as u16),
            data,
            &mut self.tx,
        );
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        if self.now >= self.core.poll_timeout() {
            self.core.handle_timeout(self.now, &mut self.tx);
        }
    }

    fn take(&mut self) -> Vec<Sent> {
        let out = self
            .tx
            .items()
            .iter()
            .map(|t| (t.sock, t.dst, self.tx.data(t).to_vec()))
            .collect();
        self.tx.clear();
        out
    }
}

/// RTP packets toward transport `i`, by SSRC: (seq, ts, payload) in order of sending.
fn rtp_to(sent: &[Sent], i: u32) -> HashMap<u32, Vec<(u16, u32, Vec<u8>)>> {
    let mut by = HashMap::<u32, Vec<_>>::new();
    for (sock, dst, data) in sent {
        if *sock != SockSlot(i) || *dst != addr(10_000 + i as u16) {
            continue;
        }
        let Ok(p) = RtpPacket::parse(data) else {
            continue;
        };
        if data[1] >= 200 && data[1] <= 206 {
            continue; // RTCP
        }
        by.entry(p.ssrc().0).or_default().push((
            p.sequence_number(),
            p.timestamp(),
            p.payload().to_vec(),
        ));
    }
    by
}

/// Every source `s` in `talkers` sends `n` packets, interleaved, with its own sequence and
/// timestamp origin; returns what each receiver got.
fn talk(net: &mut Net, talkers: &[u32], n: u16) -> Vec<Sent> {
    let mut sent = Vec::new();
    for k in 0..n {
        for &s in talkers {
            let seq = (s as u16)
                .wrapping_mul(1000)
                .wrapping_add(k)
                .wrapping_add(65_000);
            let ts = s.wrapping_mul(7_777_777).wrapping_add(u32::from(k) * 960);
            let payload = [s as u8, k as u8];
            net.send(s, &rtp(0xF000 + s, 111, seq, ts, &payload));
        }
        sent.extend(net.take());
        net.advance(Duration::from_millis(20));
    }
    sent
}

/// Each talker's stream arrived at `rx` intact: its own SSRC, every packet, sequence numbers
/// consecutive, timestamps 960 apart, payloads from that talker only.
fn assert_intact(sent: &[Sent], rx: u32, talkers: &[u32], n: u16) {
    let by = rtp_to(sent, rx);
    assert_eq!(
        by.len(),
        talkers.len(),
        "receiver {rx} gets one stream per talker"
    );
    for &s in talkers {
        let pkts = by
            .get(&(0xF000 + s))
            .unwrap_or_else(|| panic!("receiver {rx} has talker {s}'s SSRC"));
        assert_eq!(pkts.len(), usize::from(n), "every packet of {s} at {rx}");
        for (k, w) in pkts.windows(2).enumerate() {
            assert_eq!(
                w[1].0,
                w[0].0.wrapping_add(1),
                "{s}->{rx}: sequence continues"
            );
            assert_eq!(
                w[1].1.wrapping_sub(w[0].1),
                960,
                "{s}->{rx}: timestamps intact"
            );
            assert_eq!(
                w[1].2,
                vec![s as u8, (k + 1) as u8],
                "{s}->{rx}: its own payload"
            );
        }
    }
}

#[test]
fn fan_in_two_senders_reach_the_third_as_two_intact_streams() {
    let mut net = Net::quiet();
    net.all_hear_all(3);
    let sent = talk(&mut net, &[0, 1], 50);
    assert_intact(&sent, 2, &[0, 1], 50);
    // And each talker hears the other (and not itself).
    assert_intact(&sent, 0, &[1], 50);
    assert_intact(&sent, 1, &[0], 50);
    let s = net.core.leg_stats(LegId(2)).unwrap();
    assert_eq!(s.counters.source_switches, 0, "no stream switches source");
    assert_eq!(net.core.send_ssrcs(LegId(2)).len(), 2);
}

#[test]
fn fan_in_sixteen_transports_four_talking() {
    let mut net = Net::new(CoreConfig {
        report_interval: Duration::from_secs(3600),
        ..CoreConfig::default()
    });
    net.all_hear_all(16);
    let talkers = [0, 5, 10, 15];
    let sent = talk(&mut net, &talkers, 30);
    for rx in 0..16u32 {
        let others: Vec<u32> = talkers.iter().copied().filter(|&t| t != rx).collect();
        assert_intact(&sent, rx, &others, 30);
    }
}

#[test]
fn streams_are_learned_up_to_the_bound_then_wrong_ssrc() {
    let mut net = Net::quiet();
    net.add(0, |s| LegSpec {
        max_streams: 3,
        ..s
    });
    net.add(1, |s| s);
    net.core.connect(LegId(0), LegId(1)).unwrap();
    net.send(1, &rtp(0xB, 111, 1, 0, b"latch"));
    for ssrc in [0xA1, 0xA2, 0xA3, 0xA4] {
        for seq in 0..3 {
            net.send(0, &rtp(ssrc, 111, seq, 0, b"x"));
        }
    }
    let by = rtp_to(&net.take(), 1);
    assert_eq!(by.len(), 3);
    assert!(by.values().all(|v| v.len() == 3));
    assert!(!by.contains_key(&0xA4));
    let s = net.core.leg_stats(LegId(0)).unwrap();
    assert_eq!(s.counters.drops_for(DropReason::WrongSsrc), 3);
    assert_eq!(s.received, 9);
}

#[test]
fn declared_streams_take_their_clock_rates_and_refuse_others() {
    let mut net = Net::quiet();
    net.add(0, |s| LegSpec {
        streams: vec![
            StreamSpec {
                ssrc: Ssrc(0xA),
                clock_rate: 48_000,
            },
            StreamSpec {
                ssrc: Ssrc(0xB),
                clock_rate: 90_000,
            },
        ],
        ..s
    });
    net.add(1, |s| s);
    net.core.connect(LegId(0), LegId(1)).unwrap();
    net.send(1, &rtp(0xC, 111, 1, 0, b"latch"));
    net.send(0, &rtp(0xA, 111, 1, 0, b"audio"));
    net.send(0, &rtp(0xB, 96, 1, 0, b"video"));
    net.send(0, &rtp(0xE, 96, 1, 0, b"other"));
    let by = rtp_to(&net.take(), 1);
    assert_eq!(by.len(), 2);
    assert_eq!(
        net.core
            .leg_stats(LegId(0))
            .unwrap()
            .counters
            .drops_for(DropReason::WrongSsrc),
        1
    );
    assert_eq!(net.core.recv_ssrcs(LegId(0)), vec![Ssrc(0xA), Ssrc(0xB)]);
}

#[test]
fn two_sources_with_one_ssrc_reach_a_receiver_as_two_ssrcs() {
    let mut net = Net::quiet();
    for i in 0..3 {
        net.add(i, |s| s);
    }
    net.core.connect(LegId(0), LegId(2)).unwrap();
    net.core.connect(LegId(1), LegId(2)).unwrap();
    net.send(2, &rtp(0x77, 111, 1, 0, b"latch"));
    for k in 0..5u16 {
        net.send(0, &rtp(0x1234, 111, k, u32::from(k) * 960, b"zero"));
        net.send(1, &rtp(0x1234, 111, 500 + k, u32::from(k) * 960, b"one"));
        // The receiver's own SSRC is not reused toward it either.
    }
    let by = rtp_to(&net.take(), 2);
    assert_eq!(by.len(), 2, "two streams, two SSRCs");
    assert!(by.contains_key(&0x1234), "the first keeps its SSRC");
    for v in by.values() {
        assert_eq!(v.len(), 5);
        assert!(v.windows(2).all(|w| w[1].0 == w[0].0.wrapping_add(1)));
        assert!(v.iter().all(|p| p.2 == v[0].2), "one source per SSRC");
    }
    assert!(!net.core.send_ssrcs(LegId(2)).contains(&Ssrc(0x77)));
}

#[test]
fn reports_carry_a_block_per_receive_stream_and_an_sr_per_send_stream() {
    let mut net = Net::new(CoreConfig {
        report_interval: Duration::from_millis(500),
        ..CoreConfig::default()
    });
    net.all_hear_all(3);
    // Transport 2 sends two streams of its own; 0 and 1 talk to it.
    for k in 0..10u16 {
        net.send(2, &rtp(0xF002, 111, 1 + k, u32::from(k) * 960, b"a"));
        net.send(2, &rtp(0xE002, 111, 100 + k, u32::from(k) * 960, b"b"));
        net.send(0, &rtp(0xF000, 111, 1 + k, u32::from(k) * 960, b"0"));
        net.send(1, &rtp(0xF001, 111, 1 + k, u32::from(k) * 960, b"1"));
        net.advance(Duration::from_millis(20));
    }
    net.take();
    let mut compounds = Vec::new();
    for _ in 0..100 {
        net.advance(Duration::from_millis(20));
        for (sock, dst, d) in net.take() {
            if sock == SockSlot(2) && dst == addr(10_002) && d[1] == 200 {
                compounds.push(d);
            }
        }
    }
    assert!(!compounds.is_empty(), "transport 2 got reports");
    let c = &compounds[compounds.len() - 1];
    let mut srs = Vec::new();
    let mut blocks = Vec::new();
    for p in RtcpCompound::parse(c) {
        if let RtcpPacket::SenderReport(sr) = p.unwrap() {
            srs.push(sr.ssrc);
            blocks.extend(sr.reports.iter().map(|b| b.ssrc));
        }
    }
    srs.sort();
    blocks.sort();
    assert_eq!(
        srs,
        vec![Ssrc(0xF000), Ssrc(0xF001)],
        "an SR per send stream"
    );
    assert_eq!(
        blocks,
        vec![Ssrc(0xE002), Ssrc(0xF002)],
        "a block per receive stream"
    );
}

#[test]
fn nack_and_pli_are_keyed_by_media_ssrc() {
    let mut net = Net::new(CoreConfig {
        report_interval: Duration::from_secs(3600),
        keyframe_min_interval: Duration::from_secs(60),
        nack_cache_policy: NackCachePolicy::Always,
        ..CoreConfig::default()
    });
    net.all_hear_all_at(3, 90_000);
    let originals: Vec<(Vec<u8>, Vec<u8>)> = (10..20u16)
        .map(|s| {
            (
                rtp(0xF000, 96, s, u32::from(s) * 3000, &[s as u8; 300]),
                rtp(0xF001, 96, s, u32::from(s) * 3000, &[!(s as u8); 300]),
            )
        })
        .collect();
    for (a, b) in &originals {
        net.send(0, a);
        net.send(1, b);
    }
    net.take();
    // Transport 2 lost 12 of 0's stream and 14 of 1's.
    let n0 = [NackPair { pid: 12, blp: 0 }];
    let n1 = [NackPair { pid: 14, blp: 0 }];
    let nack0 = RtcpPacket::Nack(Nack {
        sender_ssrc: Ssrc(0xF002),
        media_ssrc: Ssrc(0xF000),
        pairs: WireList::Items(&n0),
    });
    let nack1 = RtcpPacket::Nack(Nack {
        sender_ssrc: Ssrc(0xF002),
        media_ssrc: Ssrc(0xF001),
        pairs: WireList::Items(&n1),
    });
    net.send(2, &rtcp(&[nack0, nack1]));
    let re: Vec<Vec<u8>> = net.take().into_iter().map(|s| s.2).collect();
    assert_eq!(re, vec![originals[2].0.clone(), originals[4].1.clone()]);
    assert_eq!(
        net.core
            .leg_stats(LegId(2))
            .unwrap()
            .counters
            .nack_retransmits,
        2
    );
    // A PLI about 1's stream reaches transport 1 only, for its own SSRC.
    let pli = RtcpPacket::Pli(Pli {
        sender_ssrc: Ssrc(0xF002),
        media_ssrc: Ssrc(0xF001),
    });
    net.send(2, &rtcp(&[pli]));
    let out = net.take();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1, addr(10_001));
    match RtcpCompound::parse(&out[0].2).next().unwrap().unwrap() {
        RtcpPacket::Pli(p) => assert_eq!(p.media_ssrc, Ssrc(0xF001)),
        other => panic!("expected a PLI, got {other:?}"),
    }
    assert_eq!(
        net.core
            .leg_stats(LegId(0))
            .unwrap()
            .counters
            .keyframe_requests_out,
        0
    );
}

/// NTP seconds as f64 from a 64-bit NTP timestamp.
fn ntp_secs(ntp: u64) -> f64 {
    (ntp >> 32) as f64 + (ntp & 0xffff_ffff) as f64 / 4_294_967_296.0
}

#[test]
fn lip_sync_survives_the_rewrite() {
    let mut net = Net::new(CoreConfig {
        report_interval: Duration::from_millis(400),
        ..CoreConfig::default()
    });
    // 0: the sender (audio 48 kHz PT 111, video 90 kHz PT 96 on one transport);
    // 1: an earlier video source whose stream the receiver keeps (so the sender's video
    // reaches the receiver through a rewrite with a timestamp offset); 2: the receiver.
    net.add(0, |s| LegSpec {
        clock_rates: vec![(Pt(111), 48_000), (Pt(96), 90_000)],
        ..s
    });
    net.add(1, |s| LegSpec {
        clock_rate: 90_000,
        ..s
    });
    net.add(2, |s| s);
    net.core.connect(LegId(1), LegId(2)).unwrap();
    net.send(2, &rtp(0x2222, 111, 1, 0, b"latch"));
    for k in 0..5u16 {
        net.send(
            1,
            &rtp(0x1111, 96, k, 5_000_000 + u32::from(k) * 3000, b"old"),
        );
        net.advance(Duration::from_millis(33));
    }
    net.core.disconnect(LegId(1), LegId(2)).unwrap();
    net.core.connect(LegId(0), LegId(2)).unwrap();
    // The sender's clocks: audio and video timestamps of the same instant differ by random
    // origins; its SRs state the mapping.
    let (a0, v0) = (1_000_000u32, 3_000_000_000u32);
    let ntp0: u64 = 3_900_000_000 << 32;
    let mut sent_at = Duration::ZERO;
    let mut received = Vec::new();
    for k in 0..150u32 {
        let t = Duration::from_millis(u64::from(k) * 20);
        let a_ts = a0.wrapping_add(k * 960);
        let v_ts = v0.wrapping_add(k * 1800);
        net.send(0, &rtp(0xA, 111, k as u16, a_ts, b"audio"));
        net.send(0, &rtp(0xB, 96, k as u16, v_ts, b"video"));
        if k % 25 == 5 {
            let ntp = ntp0 + ((t.as_nanos() as u64) << 32) / 1_000_000_000;
            let sra = RtcpPacket::SenderReport(SenderReport {
                ssrc: Ssrc(0xA),
                ntp_time: ntp,
                rtp_time: a_ts,
                packet_count: k,
                octet_count: k * 5,
                reports: WireList::Items(&[]),
                profile_extension: &[],
            });
            let srv = RtcpPacket::SenderReport(SenderReport {
                ssrc: Ssrc(0xB),
                ntp_time: ntp,
                rtp_time: v_ts,
                packet_count: k,
                octet_count: k * 5,
                reports: WireList::Items(&[]),
                profile_extension: &[],
            });
            net.send(0, &rtcp(&[sra, srv]));
        }
        // The network delays what the relay sends by a few ms, differently per direction.
        net.advance(Duration::from_millis(20));
        sent_at += Duration::from_millis(20);
        received.extend(net.take());
    }
    // The receiver's view: RTP packets by SSRC, and each SSRC's last SR mapping.
    let mut srs: HashMap<u32, (u64, u32)> = HashMap::new();
    let mut rtp_in: HashMap<u32, Vec<(u32, Vec<u8>)>> = HashMap::new();
    for (_, dst, d) in &received {
        if *dst != addr(10_002) {
            continue;
        }
        if (200..=206).contains(&d[1]) {
            for p in RtcpCompound::parse(d).flatten() {
                if let RtcpPacket::SenderReport(sr) = p {
                    srs.insert(sr.ssrc.0, (sr.ntp_time, sr.rtp_time));
                }
            }
        } else if let Ok(p) = RtpPacket::parse(d) {
            rtp_in
                .entry(p.ssrc().0)
                .or_default()
                .push((p.timestamp(), p.payload().to_vec()));
        }
    }
    let audio_ssrc = *rtp_in
        .iter()
        .find(|(_, v)| v.iter().any(|p| p.1 == b"audio"))
        .unwrap()
        .0;
    let video_ssrc = *rtp_in
        .iter()
        .find(|(_, v)| v.iter().any(|p| p.1 == b"video"))
        .unwrap()
        .0;
    assert_eq!(
        video_ssrc, 0x1111,
        "the sender's video continues the old stream"
    );
    let last_video = rtp_in[&video_ssrc].last().unwrap().0;
    assert_ne!(
        last_video,
        v0.wrapping_add(149 * 1800),
        "video timestamps are rewritten (an offset applies)"
    );
    let (a_ntp, a_rtp) = srs[&audio_ssrc];
    let (v_ntp, v_rtp) = srs[&video_ssrc];
    // The last packet of each, captured at the same instant by the sender, mapped to NTP by
    // the receiver's SR mapping.
    let last_audio = rtp_in[&audio_ssrc].last().unwrap().0;
    let a_at = ntp_secs(a_ntp) + f64::from(last_audio.wrapping_sub(a_rtp) as i32) / 48_000.0;
    let v_at = ntp_secs(v_ntp) + f64::from(last_video.wrapping_sub(v_rtp) as i32) / 90_000.0;
    let skew_ms = (a_at - v_at).abs() * 1000.0;
    assert!(skew_ms < 20.0, "audio and video {skew_ms:.2} ms apart");
}

/// The payload type of each packet toward transport `i`, by SSRC, in order of sending.
fn pts_to(sent: &[Sent], i: u32) -> HashMap<u32, Vec<u8>> {
    let mut by = HashMap::<u32, Vec<u8>>::new();
    for (sock, dst, data) in sent {
        if *sock != SockSlot(i) || *dst != addr(10_000 + i as u16) {
            continue;
        }
        if let Ok(p) = RtpPacket::parse(data) {
            by.entry(p.ssrc().0).or_default().push(p.payload_type().0);
        }
    }
    by
}

#[test]
fn the_codec_payload_type_is_translated_between_transports_that_number_it_differently() {
    let mut net = Net::quiet();
    // 0: an edge client (Opus 111, H.264 96); 1: a browser (Opus 111, H.264 102, its RTX
    // 103: the codec first); 2: a tool whose payload types are not known (none declared).
    net.add(0, |s| LegSpec {
        clock_rates: vec![(Pt(111), 48_000), (Pt(96), 90_000)],
        ..s
    });
    net.add(1, |s| LegSpec {
        clock_rates: vec![(Pt(111), 48_000), (Pt(102), 90_000), (Pt(103), 90_000)],
        ..s
    });
    net.add(2, |s| s);
    for (a, b) in [(0, 1), (1, 0), (0, 2), (1, 2)] {
        net.core.connect(LegId(a), LegId(b)).unwrap();
    }
    net.send(2, &rtp(0xC, 0, 1, 0, b"latch"));
    for seq in 0..3u16 {
        net.send(0, &rtp(0xA0, 111, seq, 0, b"edge audio"));
        net.send(0, &rtp(0xA1, 96, seq, 0, b"edge video"));
        net.send(1, &rtp(0xB0, 111, seq, 0, b"browser audio"));
        net.send(1, &rtp(0xB1, 102, seq, 0, b"browser video"));
        net.send(1, &rtp(0xB2, 103, seq, 0, b"browser rtx"));
    }
    let out = net.take();
    // Toward the browser the edge's H.264 goes as 102; Opus is 111 on both.
    let to_browser = pts_to(&out, 1);
    assert_eq!(to_browser[&0xA0], vec![111; 3]);
    assert_eq!(to_browser[&0xA1], vec![102; 3]);
    // Toward the edge the browser's H.264 goes as 96; its RTX keeps its own number (the
    // edge does not know it and drops it as an unknown payload type).
    let to_edge = pts_to(&out, 0);
    assert_eq!(to_edge[&0xB0], vec![111; 3]);
    assert_eq!(to_edge[&0xB1], vec![96; 3]);
    assert_eq!(to_edge[&0xB2], vec![103; 3]);
    // Toward a transport whose numbering is not known nothing is translated.
    let to_tool = pts_to(&out, 2);
    assert_eq!(to_tool[&0xA1], vec![96; 3]);
    assert_eq!(to_tool[&0xB1], vec![102; 3]);
    // The payload is untouched.
    let by = rtp_to(&out, 0);
    assert!(by[&0xB1].iter().all(|(_, _, p)| p == b"browser video"));
}
