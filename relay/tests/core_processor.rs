//! Processor transports and per-kind / per-stream subscriptions through the sans-IO core:
//! a conference's audio goes to the mixer's queue (tagged with its source transport), each
//! participant's mix comes back to that participant alone, video goes participant to
//! participant; leaves and joins, a full queue, garbage from the processor.

mod harness;

use std::time::Duration;

use harness::*;
use supernode_media::ids::Ssrc;
use supernode_media::packet::rtcp::{RtcpCompound, RtcpPacket};

const AUDIO_PT: u8 = 111;
const VIDEO_PT: u8 = 96;

fn config() -> CoreConfig {
    CoreConfig {
        report_interval: Duration::from_secs(3600),
        ..CoreConfig::default()
    }
}

fn audio_ssrc(i: usize) -> u32 {
    0xA0 + i as u32
}
fn video_ssrc(i: usize) -> u32 {
    0xB0 + i as u32
}
fn mix_ssrc(i: usize) -> u32 {
    0x3000 + i as u32
}

fn participant_opts() -> LegOpts {
    LegOpts::latching().clock_rates(&[(AUDIO_PT, 48_000), (VIDEO_PT, 90_000)])
}

struct Conf {
    h: Harness,
    session: SessionId,
    proc_leg: Leg,
    queue: ProcessorQueue,
    /// (index, leg, peer) of who is in.
    members: Vec<(usize, Leg, Peer)>,
}

impl Conf {
    fn new(n: usize, capacity: usize) -> Self {
        let mut h = Harness::new(config());
        let session = h.session();
        let (proc_leg, queue) = h.add_processor(session, capacity);
        let mut c = Conf {
            h,
            session,
            proc_leg,
            queue,
            members: Vec::new(),
        };
        for i in 0..n {
            c.join(i);
        }
        c
    }

    /// Participant `i` joins: audio to the processor, its mix back to it alone, video both
    /// ways with everyone in. Its peer latches with one audio packet.
    fn join(&mut self, i: usize) {
        let leg = self.h.add_leg(self.session, participant_opts());
        let peer = self.h.peer();
        let p = self.proc_leg;
        self.h.connect_kind(leg, p, StreamKind::Audio);
        self.h.add_stream(p, mix_ssrc(i), 48_000).unwrap();
        self.h.subscribe_stream(p, mix_ssrc(i), leg).unwrap();
        for &(_, other, _) in &self.members {
            self.h.connect_kind(leg, other, StreamKind::Video);
            self.h.connect_kind(other, leg, StreamKind::Video);
        }
        self.members.push((i, leg, peer));
        self.h
            .send(peer, leg, &rtp_pt(AUDIO_PT, audio_ssrc(i), 0, 0, b"latch"));
    }

    fn leave(&mut self, i: usize) {
        let k = self.members.iter().position(|m| m.0 == i).unwrap();
        let (_, leg, _) = self.members.remove(k);
        self.h.remove_leg(leg);
        self.h.remove_stream(self.proc_leg, mix_ssrc(i));
    }

    /// One 20 ms round: everyone sends audio and video packet `seq`, the processor takes
    /// its queue and sends one mix per participant it heard. Returns what the processor got.
    fn round(&mut self, seq: u16) -> Vec<Queued> {
        let ts = u32::from(seq) * 960;
        for &(i, leg, peer) in &self.members.clone() {
            let a = format!("a{i}-{seq}");
            let v = format!("v{i}-{seq}");
            self.h.send(
                peer,
                leg,
                &rtp_pt(AUDIO_PT, audio_ssrc(i), seq, ts, a.as_bytes()),
            );
            self.h.send(
                peer,
                leg,
                &rtp_pt(VIDEO_PT, video_ssrc(i), seq, ts * 2, v.as_bytes()),
            );
        }
        let got = self.queue.take();
        for &(i, _, _) in &self.members.clone() {
            let m = format!("m{i}-{seq}");
            self.h
                .processed(self.proc_leg, &rtp(mix_ssrc(i), seq, ts, m.as_bytes()))
                .unwrap();
        }
        self.h.advance(Duration::from_millis(20));
        got
    }
}

#[test]
fn audio_goes_to_the_processor_alone_and_video_to_every_other_participant() {
    let mut c = Conf::new(3, 1024);
    let latches = c.queue.take();
    assert_eq!(
        latches.len(),
        3,
        "each latch packet is audio: to the processor"
    );
    let got = c.round(1);
    // The processor got exactly each participant's audio, tagged with its transport, and
    // no video.
    assert_eq!(got.len(), 3, "{got:?}");
    for &(i, leg, _) in &c.members {
        let (from, (ssrc, seq, _, payload)) = got
            .iter()
            .find(|(_, f)| f.3 == format!("a{i}-1").into_bytes())
            .expect("audio of each participant at the processor");
        assert_eq!(*from, leg.id);
        assert_eq!((*ssrc, *seq), (audio_ssrc(i), 1));
        assert!(!payload.starts_with(b"v"));
    }
    for &(j, _, peer) in &c.members.clone() {
        let rx = c.h.take_rtp(peer);
        // Its own mix, and nobody else's.
        let mixes: Vec<_> = rx.iter().filter(|r| r.payload.starts_with(b"m")).collect();
        assert_eq!(mixes.len(), 1, "participant {j}: {rx:?}");
        assert_eq!(mixes[0].payload, format!("m{j}-1").into_bytes());
        assert_eq!(mixes[0].ssrc, mix_ssrc(j));
        // The others' video, each as its own stream; no raw audio of anyone.
        assert!(rx.iter().all(|r| !r.payload.starts_with(b"a")), "{rx:?}");
        let mut videos: Vec<_> = rx
            .iter()
            .filter(|r| r.payload.starts_with(b"v"))
            .map(|r| (r.ssrc, r.payload.clone()))
            .collect();
        videos.sort();
        let mut want: Vec<_> = (0..3)
            .filter(|&i| i != j)
            .map(|i| (video_ssrc(i), format!("v{i}-1").into_bytes()))
            .collect();
        want.sort();
        assert_eq!(videos, want, "participant {j}");
    }
    let ps = c.h.stats(c.proc_leg);
    assert_eq!(
        ps.packets_out, 6,
        "3 latch packets and 3 audio packets queued"
    );
    assert_eq!(ps.rtp_in, 3, "3 mixes");
    assert_eq!(ps.total_drops(), 0);
}

#[test]
fn a_leave_and_a_join_mid_call_leave_the_others_mix_without_a_gap() {
    let mut c = Conf::new(3, 1024);
    c.queue.take();
    let b_peer = c.members[1].2;
    c.h.take_rtp(b_peer);
    for seq in 1..=5 {
        c.round(seq);
    }
    c.leave(0);
    c.join(3);
    let d_leg = c.members.iter().find(|m| m.0 == 3).unwrap().1;
    let a_leg_gone = c.queue.take();
    assert_eq!(a_leg_gone.len(), 1, "D's latch packet");
    assert_eq!(a_leg_gone[0].0, d_leg.id);
    let mut after = Vec::new();
    for seq in 6..=10 {
        after.extend(c.round(seq));
    }
    // The processor hears B, C and D, never A again.
    let froms: std::collections::BTreeSet<LegId> = after.iter().map(|(l, _)| *l).collect();
    let want: std::collections::BTreeSet<LegId> = c.members.iter().map(|m| m.1.id).collect();
    assert_eq!(froms, want);
    // B's mix: ten packets, one stream, consecutive sequence numbers (no gap).
    let rx = c.h.take_rtp(b_peer);
    let mix: Vec<&Rtp> = rx.iter().filter(|r| r.payload.starts_with(b"m")).collect();
    assert_eq!(mix.len(), 10, "{rx:?}");
    assert!(mix.iter().all(|r| r.ssrc == mix_ssrc(1)));
    for w in mix.windows(2) {
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1));
    }
    // B sees A's video before the leave, D's after the join, and never A's after it.
    let a_video_after = rx
        .iter()
        .filter(|r| r.payload.starts_with(b"v0-"))
        .filter(|r| {
            let s: u16 = std::str::from_utf8(&r.payload[3..])
                .unwrap()
                .parse()
                .unwrap();
            s > 5
        })
        .count();
    assert_eq!(a_video_after, 0);
    let d_video = rx.iter().filter(|r| r.payload.starts_with(b"v3-")).count();
    assert_eq!(d_video, 5);
    // D gets its own mix from the join on.
    let d_peer = c.members.iter().find(|m| m.0 == 3).unwrap().2;
    let d_mix: Vec<Rtp> =
        c.h.take_rtp(d_peer)
            .into_iter()
            .filter(|r| r.payload.starts_with(b"m"))
            .collect();
    assert_eq!(d_mix.len(), 5);
    assert!(d_mix.iter().all(|r| r.payload.starts_with(b"m3-")));
}

#[test]
fn a_full_processor_queue_is_a_counted_drop_and_video_flows_on() {
    let mut c = Conf::new(3, 4);
    c.queue.take();
    // 3 participants x 2 rounds of audio = 6 packets for a queue of 4 that nobody drains
    // in between (the round takes it only at its end: drain it first, then refill).
    let (i, leg, peer) = c.members[0];
    let other = c.members[1].2;
    c.h.take_rtp(other);
    for seq in 1..=10u16 {
        c.h.send(
            peer,
            leg,
            &rtp_pt(AUDIO_PT, audio_ssrc(i), seq, u32::from(seq) * 960, b"a"),
        );
        c.h.send(
            peer,
            leg,
            &rtp_pt(VIDEO_PT, video_ssrc(i), seq, u32::from(seq) * 1800, b"v"),
        );
    }
    assert_eq!(c.queue.take().len(), 4);
    let ps = c.h.stats(c.proc_leg);
    assert_eq!(ps.drops(DropReason::TxFull), 6);
    assert_eq!(ps.packets_out, 3 + 4, "3 latch packets and 4 queued");
    // The flooded queue did not touch the video path.
    let v = c.h.take_rtp(other);
    assert_eq!(v.iter().filter(|r| r.payload == b"v").count(), 10);
}

#[test]
fn garbage_from_the_processor_and_bad_control_calls_are_refused() {
    let mut c = Conf::new(2, 64);
    let p = c.proc_leg;
    c.h.processed(p, b"junk").unwrap();
    c.h.processed(p, &rtp(0xDEAD, 1, 0, b"who")).unwrap();
    let ps = c.h.stats(p);
    assert_eq!(ps.drops(DropReason::Malformed), 1);
    assert_eq!(ps.drops(DropReason::WrongSsrc), 1);
    assert_eq!(ps.rtp_in, 0);
    let leg = c.members[0].1;
    assert!(c.h.is_processor(p) && !c.h.is_processor(leg));
    assert!(matches!(
        c.h.processed(leg, &rtp(1, 1, 0, b"x")),
        Err(CoreError::NotAProcessor(_))
    ));
    assert!(matches!(
        c.h.subscribe_stream(p, 0xDEAD, leg),
        Err(CoreError::UnknownStream(_, 0xDEAD))
    ));
    assert!(matches!(
        c.h.add_stream(p, mix_ssrc(0), 48_000),
        Err(CoreError::BadStreams(_))
    ));
    // Nobody received anything from the garbage.
    for &(_, _, peer) in &c.members {
        assert!(c.h.take_rtp(peer).is_empty());
    }
}

#[test]
fn a_processor_is_never_freed_as_idle_its_participants_are() {
    let mut c = Conf::new(2, 64);
    let p = c.proc_leg;
    c.h.advance(Duration::from_secs(65));
    assert!(c.h.is_live(p));
    for &(_, leg, _) in &c.members {
        assert!(!c.h.is_live(leg));
    }
    // The mixes of the freed participants' streams go nowhere, counted on the processor.
    c.h.processed(p, &rtp(mix_ssrc(0), 1, 0, b"m")).unwrap();
    assert_eq!(c.h.stats(p).drops(DropReason::NoDestination), 1);
    c.h.remove_leg(p);
    assert!(!c.h.is_live(p));
}

#[test]
fn a_flooding_participant_is_capped_toward_the_processor_the_others_are_not() {
    let mut c = Conf::new(2, 4096);
    c.queue.take();
    let (i, leg, peer) = c.members[0];
    // 500 audio packets at one instant: the cap's burst (200 packets/s for 200 ms) passes.
    for seq in 1..=500u16 {
        c.h.send(
            peer,
            leg,
            &rtp_pt(AUDIO_PT, audio_ssrc(i), seq, u32::from(seq) * 960, b"f"),
        );
    }
    assert_eq!(
        c.queue.take().len(),
        40 - 1,
        "the burst less the latch packet"
    );
    assert_eq!(
        c.h.stats(c.proc_leg).drops(DropReason::RateLimited),
        500 - 39
    );
    // The other participant's audio still goes through, from its own allowance.
    let (j, leg_b, peer_b) = c.members[1];
    c.h.send(
        peer_b,
        leg_b,
        &rtp_pt(AUDIO_PT, audio_ssrc(j), 1, 960, b"b"),
    );
    let got = c.queue.take();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, leg_b.id);
    // A second later the flooder has its allowance back.
    c.h.advance(Duration::from_secs(1));
    c.h.send(peer, leg, &rtp_pt(AUDIO_PT, audio_ssrc(i), 501, 0, b"ok"));
    assert_eq!(c.queue.take().len(), 1);
}

/// The conference's video after a leave and a join, with the leaver's video streams
/// dropped at the receivers (as the host does): the joiner's video reaches everyone as its
/// own stream (its own SSRC, not the leaver's continued), and a PLI from a receiver about
/// it reaches the joiner alone. Without the drop the joiner would continue the leaver's.
#[test]
fn a_joiners_video_is_its_own_stream_and_a_receivers_pli_reaches_it() {
    let mut c = Conf::new(3, 1024);
    c.queue.take();
    for seq in 1..=3 {
        c.round(seq);
    }
    let (b_leg, b_peer) = (c.members[1].1, c.members[1].2);
    let c_leg = c.members[2].1;
    c.leave(0);
    assert_eq!(
        c.h.drop_orphans(b_leg, StreamKind::Video),
        1,
        "A's video at B"
    );
    assert_eq!(
        c.h.drop_orphans(c_leg, StreamKind::Video),
        1,
        "A's video at C"
    );
    assert_eq!(c.h.drop_orphans(b_leg, StreamKind::Video), 0);
    c.join(3);
    let (d_leg, d_peer) = (c.members[2].1, c.members[2].2);
    c.h.take_rtp(b_peer);
    c.h.take(d_peer);
    for seq in 4..=6 {
        c.round(seq);
    }
    let rx = c.h.take_rtp(b_peer);
    let d_video: Vec<&Rtp> = rx
        .iter()
        .filter(|r| r.payload.starts_with(b"v3-"))
        .collect();
    assert_eq!(d_video.len(), 3, "{rx:?}");
    assert!(
        d_video.iter().all(|r| r.ssrc == video_ssrc(3)),
        "{d_video:?}"
    );
    assert!(rx.iter().all(|r| r.ssrc != video_ssrc(0)));
    // C's video at B goes on as before.
    assert_eq!(
        rx.iter()
            .filter(|r| r.payload.starts_with(b"v2-") && r.ssrc == video_ssrc(2))
            .count(),
        3
    );
    c.h.take(d_peer);
    let c_peer = c.members[1].2;
    c.h.take(c_peer);
    c.h.send(b_peer, b_leg, &pli(audio_ssrc(1), video_ssrc(3)));
    let got = c.h.take(d_peer);
    let plis: Vec<_> = got
        .iter()
        .filter(|d| d.is_rtcp())
        .flat_map(|d| RtcpCompound::parse(&d.data).collect::<Vec<_>>())
        .filter_map(|p| match p {
            Ok(RtcpPacket::Pli(p)) => Some(p.media_ssrc),
            _ => None,
        })
        .collect();
    assert_eq!(plis, vec![Ssrc(video_ssrc(3))], "{got:?}");
    assert!(
        c.h.take(c_peer).iter().all(|d| !d.is_rtcp()),
        "C got no PLI"
    );
    assert_eq!(c.h.stats(d_leg).keyframe_requests_out, 1);
}
