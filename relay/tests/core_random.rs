//! Seeded randomized runs of the sans-IO core under a hostile, lossy world: talkers whose
//! uplinks lose, reorder and duplicate packets (`supernode_media::net` emulator), strangers
//! spraying RTP and RTCP at every leg, receivers sending NACKs and PLIs at random. Each
//! seed checks the invariants:
//!
//! - nothing from a stranger is ever forwarded, and strangers receive nothing;
//! - per destination, one SSRC per source and a constant sequence/timestamp mapping (the
//!   stream continues; only what the source sent arrives);
//! - counters agree with what the wire saw: datagrams and bytes out equal what each peer
//!   received; RTP in equals what the uplink delivered; every forwarded packet and every
//!   retransmission is accounted for; every stranger packet is a counted stranger drop;
//!   every NACKed sequence number is a retransmission or a miss; every PLI is forwarded or
//!   coalesced, and forwarded ones are spaced by the coalescing interval.
//!
//! The same runs with every leg on SRTP (the two profiles alternating) also check that what
//! every peer receives opens under its key, that strangers' plain and wrongly keyed packets
//! are strangers, and that the emulator's duplicates are refused as replays (and counted).
//!
//! The topology is what the leg-based core gets right (fan-out, and a pair talking both
//! ways); fan-in is in `core_fan_in.rs`.

mod harness;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use harness::*;
use supernode_media::net::{GilbertElliott, NetProfile};
use supernode_media::packet::rtcp::{RtcpCompound, RtcpPacket};

const SEEDS: u64 = 24;
const TICKS: usize = 150;
const STRANGER_TAG: &[u8] = b"STRANGER";

/// xorshift64*: a few lines, reproducible, no dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

fn lossy(rng: &mut Rng) -> NetProfile {
    NetProfile {
        base_delay: Duration::from_millis(5 + rng.below(30)),
        loss: GilbertElliott {
            p: 0.05,
            r: 0.5,
            loss_good: 0.01,
            loss_bad: 0.3,
        },
        reorder_prob: 0.05,
        reorder_delay: Duration::from_millis(45),
        duplicate_prob: 0.03,
        ..NetProfile::perfect()
    }
}

/// Media payload: tag, original sequence number and timestamp, body.
fn media(seq: u16, ts: u32, len: usize) -> Vec<u8> {
    let mut p = vec![b'M'];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.resize(len, 0x33);
    p
}

/// The sequence number in an RTP header (in clear in SRTP too).
fn header_seq(wire: &[u8]) -> u16 {
    u16::from_be_bytes([wire[2], wire[3]])
}

fn original(p: &Rtp) -> (u16, u32) {
    assert_eq!(
        p.payload[0], b'M',
        "only media is forwarded: {:?}",
        p.payload
    );
    (
        u16::from_be_bytes([p.payload[1], p.payload[2]]),
        u32::from_be_bytes([p.payload[3], p.payload[4], p.payload[5], p.payload[6]]),
    )
}

struct Talker {
    peer: Peer,
    leg: Leg,
    ssrc: u32,
    seq0: u16,
    ts0: u32,
}

/// Each peer's SRTP client, or none for plain legs.
struct Keys(Vec<Option<SrtpClient>>);

impl Keys {
    fn rtp(&mut self, k: usize, plain: Vec<u8>) -> Vec<u8> {
        match &mut self.0[k] {
            Some(c) => c.protect_rtp(&plain),
            None => plain,
        }
    }
    fn rtcp(&mut self, k: usize, plain: Vec<u8>) -> Vec<u8> {
        match &mut self.0[k] {
            Some(c) => c.protect_rtcp(&plain),
            None => plain,
        }
    }
    fn is_srtp(&self) -> bool {
        self.0[0].is_some()
    }
}

fn run_seed(seed: u64, srtp: bool, cover: &mut Coverage) {
    let mut rng = Rng::new(seed);
    let keyframe_min = Duration::from_millis(300);
    let mut h = Harness::new(CoreConfig {
        report_interval: Duration::from_millis(500),
        keyframe_min_interval: keyframe_min,
        ..CoreConfig::default()
    });
    // A source fanned out to 1-5 destinations, and a pair talking both ways.
    let n_dest = 1 + rng.below(5) as usize;
    let n = n_dest + 3;
    let profiles = [SrtpProfile::Aes128CmHmacSha1_80, SrtpProfile::AeadAes128Gcm];
    let mut keys = Keys(Vec::new());
    let mut opts = Vec::new();
    for k in 0..n {
        if srtp {
            let (relay, client) =
                srtp_pair(profiles[k % 2], (seed as u8).wrapping_mul(31) ^ k as u8);
            opts.push(LegOpts::latching().clock_rate(90_000).srtp(relay));
            keys.0.push(Some(client));
        } else {
            opts.push(LegOpts::latching().clock_rate(90_000));
            keys.0.push(None);
        }
    }
    let legs = h.session_with(opts);
    let peers: Vec<Peer> = legs.iter().map(|_| h.peer()).collect();
    let strangers = [h.peer(), h.peer()];
    let (_, mut wrong_key) = srtp_pair(SrtpProfile::Aes128CmHmacSha1_80, 0xEE);
    let (src, pair) = (0usize, [n_dest + 1, n_dest + 2]);
    let dests: Vec<usize> = (1..=n_dest).collect();
    // Everyone latches before any route exists (counted as "no destination").
    let mut talkers: HashMap<usize, Talker> = HashMap::new();
    for (k, (&leg, &peer)) in legs.iter().zip(&peers).enumerate() {
        let ssrc = 0x1000_0000 + rng.below(1 << 28) as u32;
        let seq0 = rng.below(1 << 16) as u16;
        let ts0 = rng.next() as u32;
        let latch = keys.rtp(k, rtp(ssrc, seq0.wrapping_sub(1), ts0, &media(0, 0, 20)));
        h.send(peer, leg, &latch);
        assert_eq!(h.stats(leg).peer, Some(peer.addr));
        talkers.insert(
            k,
            Talker {
                peer,
                leg,
                ssrc,
                seq0,
                ts0,
            },
        );
    }
    for &d in &dests {
        h.connect(legs[src], legs[d]);
    }
    h.connect_both(legs[pair[0]], legs[pair[1]]);
    for k in [src, pair[0], pair[1]] {
        h.set_uplink(peers[k], lossy(&mut rng), seed * 16 + k as u64);
    }
    let mut stranger_sent: HashMap<usize, u64> = HashMap::new();
    let mut nacked: HashMap<usize, u64> = HashMap::new();
    let mut plis: HashMap<usize, u64> = HashMap::new();
    for tick in 0..TICKS {
        for k in [src, pair[0], pair[1]] {
            let t = &talkers[&k];
            let seq = t.seq0.wrapping_add(tick as u16);
            let ts = t.ts0.wrapping_add(tick as u32 * 960);
            let len = 20 + rng.below(400) as usize;
            let (peer, leg, ssrc) = (t.peer, t.leg, t.ssrc);
            let wire = keys.rtp(k, rtp(ssrc, seq, ts, &media(seq, ts, len)));
            h.send(peer, leg, &wire);
        }
        // Strangers: RTP with the leg's own SSRC or another (plain, or under a wrong key),
        // and RTCP.
        if rng.chance(0.3) {
            let k = rng.below(legs.len() as u64) as usize;
            let s = strangers[rng.below(2) as usize];
            let ssrc = if rng.chance(0.5) {
                talkers[&k].ssrc
            } else {
                rng.next() as u32
            };
            let mut body = STRANGER_TAG.to_vec();
            body.resize(20 + rng.below(200) as usize, 0xEE);
            if rng.chance(0.8) {
                let p = rtp(ssrc, rng.next() as u16, rng.next() as u32, &body);
                if srtp && rng.chance(0.5) {
                    h.send(s, legs[k], &wrong_key.protect_rtp(&p));
                } else {
                    h.send(s, legs[k], &p);
                }
            } else {
                h.send(s, legs[k], &pli(ssrc, talkers[&src].ssrc));
            }
            *stranger_sent.entry(k).or_default() += 1;
        }
        // Receivers of the fan-out ask for retransmissions and keyframes.
        for &d in &dests {
            // A NACK for a recent sequence number in the receiver's own numbering (the
            // newest it got, or up to 99 before): answered at once with the bytes it was
            // first sent, or counted as a miss.
            let newest = h
                .inbox(peers[d])
                .iter()
                .rev()
                .find(|x| x.is_rtp())
                .map(|x| header_seq(&x.data));
            if let Some(newest) = newest.filter(|_| rng.chance(0.1)) {
                let seq = newest.wrapping_sub(rng.below(100) as u16);
                let before = h.inbox(peers[d]).len();
                let media_ssrc = talkers[&src].ssrc;
                let wire = keys.rtcp(d, nack(talkers[&d].ssrc, media_ssrc, &[(seq, 0)]));
                h.send(peers[d], legs[d], &wire);
                let inbox = h.inbox(peers[d]);
                assert!(
                    inbox.len() <= before + 1,
                    "seed {seed}: one answer per NACK"
                );
                if let Some(re) = inbox.get(before) {
                    assert_eq!(
                        header_seq(&re.data),
                        seq,
                        "seed {seed}: the packet asked for"
                    );
                    assert!(
                        inbox[..before].iter().any(|x| x.data == re.data),
                        "seed {seed}: byte-identical to its first send"
                    );
                }
                *nacked.entry(d).or_default() += 1;
            }
            if rng.chance(0.05) {
                let wire = keys.rtcp(d, pli(talkers[&d].ssrc, talkers[&src].ssrc));
                h.send(peers[d], legs[d], &wire);
                *plis.entry(d).or_default() += 1;
            }
        }
        h.advance(Duration::from_millis(20));
    }
    h.advance(Duration::from_secs(1)); // everything in flight lands

    // Nothing goes astray; strangers get nothing.
    for (k, &peer) in peers.iter().enumerate() {
        for d in h.inbox(peer) {
            assert_eq!(
                d.from, legs[k].local,
                "seed {seed}: from the leg's own port"
            );
            assert!(
                srtp || !d
                    .data
                    .windows(STRANGER_TAG.len())
                    .any(|w| w == STRANGER_TAG),
                "seed {seed}: a stranger's packet reached leg {k}"
            );
        }
    }
    for s in strangers {
        assert!(
            h.inbox(s).is_empty(),
            "seed {seed}: a stranger got something"
        );
    }
    assert!(h.stranger_sink().is_empty(), "seed {seed}");
    assert_eq!(h.unrouted, 0);

    // What each peer received, opened with its key: RTP (a retransmission is the same bytes
    // as the first send, so SRTP peers open each distinct datagram once) and RTCP.
    let mut rtp_got: Vec<Vec<Rtp>> = Vec::new();
    let mut rtcp_got: Vec<Vec<(Duration, Vec<u8>)>> = Vec::new();
    for (k, &peer) in peers.iter().enumerate() {
        let mut seen = BTreeSet::new();
        let mut r = Vec::new();
        let mut c = Vec::new();
        for d in h.inbox(peer) {
            let plain = match &mut keys.0[k] {
                None => d.data.clone(),
                Some(_) if !seen.insert(d.data.clone()) => continue,
                Some(client) if d.is_rtp() => client
                    .unprotect_rtp(&d.data)
                    .unwrap_or_else(|| panic!("seed {seed}: leg {k}'s key opens its RTP")),
                Some(client) => client
                    .unprotect_rtcp(&d.data)
                    .unwrap_or_else(|| panic!("seed {seed}: leg {k}'s key opens its RTCP")),
            };
            let plain_dg = Datagram {
                data: plain,
                ..d.clone()
            };
            if plain_dg.is_rtp() {
                r.push(parse_rtp(&plain_dg));
            } else {
                assert!(plain_dg.is_rtcp(), "seed {seed}: only RTP and RTCP");
                c.push((d.at, plain_dg.data));
            }
        }
        rtp_got.push(r);
        rtcp_got.push(c);
    }

    // Counters agree with the wire.
    for (k, &leg) in legs.iter().enumerate() {
        let st = h.stats(leg);
        let inbox = h.inbox(peers[k]);
        assert_eq!(st.packets_out, inbox.len() as u64, "seed {seed} leg {k}");
        assert_eq!(
            st.bytes_out,
            inbox.iter().map(|d| d.data.len() as u64).sum::<u64>(),
            "seed {seed} leg {k}: bytes out"
        );
        assert_eq!(
            st.drops(DropReason::Stranger),
            stranger_sent.get(&k).copied().unwrap_or(0),
            "seed {seed} leg {k}: every stranger packet counted"
        );
        assert_eq!(st.drops(DropReason::NoDestination), 1, "the latch packet");
        assert_eq!(st.drops(DropReason::RateLimited), 0);
        assert_eq!(st.latches, 1, "seed {seed} leg {k}: the latch never moved");
        assert_eq!(
            st.rtp_in,
            st.received + st.duplicates,
            "seed {seed} leg {k}"
        );
    }
    for k in [src, pair[0], pair[1]] {
        let net = h.uplink_stats(peers[k]);
        assert_eq!(net.sent, TICKS as u64);
        cover.lost += net.lost;
        cover.duplicated += net.duplicated;
        cover.reordered += net.reordered;
        let st = h.stats(legs[k]);
        // Plain legs forward the emulator's duplicates (and count them in the statistics);
        // SRTP legs refuse them as replays.
        let replays = if keys.is_srtp() { net.duplicated } else { 0 };
        assert_eq!(
            st.drops(DropReason::SrtpAuth),
            replays,
            "seed {seed} talker {k}"
        );
        assert_eq!(
            st.rtp_in,
            1 + net.delivered - replays,
            "seed {seed} talker {k}: every delivered packet accepted"
        );
    }

    // Per destination: one SSRC per source, a constant mapping, everything accounted for.
    let routes: Vec<(usize, usize)> = dests
        .iter()
        .map(|&d| (src, d))
        .chain([(pair[0], pair[1]), (pair[1], pair[0])])
        .collect();
    for (s, d) in routes {
        let got = &rtp_got[d];
        let st = h.stats(legs[d]);
        let on_wire = h.inbox(peers[d]).iter().filter(|x| x.is_rtp()).count() as u64;
        assert_eq!(
            on_wire,
            h.stats(legs[s]).rtp_in - 1 + st.nack_retransmits,
            "seed {seed} {s}->{d}: every accepted packet forwarded once, plus retransmissions"
        );
        if srtp {
            assert_eq!(got.len() as u64, h.stats(legs[s]).rtp_in - 1);
        }
        let mut mapping = BTreeSet::new();
        let mut seqs = BTreeSet::new();
        for p in got {
            let (oseq, ots) = original(p);
            mapping.insert((p.ssrc, p.seq.wrapping_sub(oseq), p.ts.wrapping_sub(ots)));
            let i = oseq.wrapping_sub(talkers[&s].seq0);
            assert!((i as usize) < TICKS, "seed {seed}: only what {s} sent");
            seqs.insert(i);
        }
        assert!(
            mapping.len() <= 1,
            "seed {seed} {s}->{d}: one SSRC and a constant rewrite, got {mapping:x?}"
        );
        // With ~5% loss on the uplink most of the stream arrives.
        assert!(
            seqs.len() > TICKS * 3 / 4,
            "seed {seed}: {} arrived",
            seqs.len()
        );
    }

    // NACKs and PLIs.
    let mut pli_total = 0;
    for &d in &dests {
        let st = h.stats(legs[d]);
        cover.retransmits += st.nack_retransmits;
        cover.misses += st.nack_misses;
        assert_eq!(
            st.nack_retransmits + st.nack_misses,
            nacked.get(&d).copied().unwrap_or(0),
            "seed {seed} dest {d}: each NACKed packet resent or missed"
        );
        assert_eq!(st.keyframe_requests_in, plis.get(&d).copied().unwrap_or(0));
        pli_total += plis.get(&d).copied().unwrap_or(0);
    }
    let ss = h.stats(legs[src]);
    cover.coalesced += ss.keyframe_requests_coalesced;
    cover.plis_out += ss.keyframe_requests_out;
    cover.strangers += stranger_sent.values().sum::<u64>();
    assert_eq!(
        ss.keyframe_requests_out + ss.keyframe_requests_coalesced,
        pli_total,
        "seed {seed}: every PLI forwarded or coalesced"
    );
    let pli_times: Vec<Duration> = rtcp_got[src]
        .iter()
        .filter(|(_, c)| {
            RtcpCompound::parse(c)
                .flatten()
                .any(|p| matches!(p, RtcpPacket::Pli(_)))
        })
        .map(|(at, _)| *at)
        .collect();
    assert_eq!(pli_times.len() as u64, ss.keyframe_requests_out);
    for w in pli_times.windows(2) {
        assert!(w[1] - w[0] >= keyframe_min, "seed {seed}: PLIs coalesced");
    }
}

/// What the runs exercised, summed over the seeds.
#[derive(Debug, Default)]
struct Coverage {
    lost: u64,
    duplicated: u64,
    reordered: u64,
    strangers: u64,
    retransmits: u64,
    misses: u64,
    plis_out: u64,
    coalesced: u64,
}

#[test]
fn random_lossy_hostile_runs_keep_the_invariants() {
    let mut cover = Coverage::default();
    for seed in 0..SEEDS {
        run_seed(seed, false, &mut cover);
    }
    // The runs did meet what they are about.
    eprintln!("{cover:?}");
    assert!(cover.lost > 0 && cover.duplicated > 0 && cover.reordered > 0);
    assert!(cover.strangers > 0 && cover.retransmits > 0 && cover.misses > 0);
    assert!(cover.plis_out > 0 && cover.coalesced > 0);
}

#[test]
fn random_lossy_hostile_runs_on_srtp_legs_keep_the_invariants() {
    let mut cover = Coverage::default();
    for seed in 0..SEEDS / 2 {
        run_seed(1_000 + seed, true, &mut cover);
    }
    eprintln!("{cover:?}");
    assert!(cover.lost > 0 && cover.duplicated > 0 && cover.reordered > 0);
    assert!(cover.strangers > 0 && cover.retransmits > 0 && cover.misses > 0);
    assert!(cover.plis_out > 0 && cover.coalesced > 0);
}
