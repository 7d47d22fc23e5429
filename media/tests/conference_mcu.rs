//! The audio MCU ([`AudioConference`]) with real Opus on a virtual clock: each participant
//! sends its own tone and decodes the mixed stream it gets back; Goertzel powers show who
//! is heard in whose mix.

use std::time::{Duration, Instant};

use bytes::Bytes;
use supernode_media::codec::opus::{Channels, OpusConfig, OpusDecoder};
use supernode_media::conference::{
    AudioConference, ConferenceConfig, ConferenceError, ConferenceEvent, ParticipantId,
};
use supernode_media::ids::Ssrc;
use supernode_media::jitter::sim::encode_rtp;
use supernode_media::mixer::AudioLevel;
use supernode_media::packet::rtp::RtpPacket;
use supernode_media::tone::{RATE, level_db, sine};

const FREQS: [f64; 7] = [350.0, 520.0, 710.0, 930.0, 1170.0, 1420.0, 1660.0];

/// One participant: its packets to send (20 ms each) and what it decoded of its mix.
struct Party {
    id: ParticipantId,
    packets: Vec<Bytes>,
    /// Index of `packets[0]` on the conference's 20 ms grid.
    start_frame: usize,
    /// Last packet index to send (exclusive) on that grid, if it leaves.
    leave_frame: Option<usize>,
    decoder: OpusDecoder,
    /// Decoded mix, one 960-sample frame per 20 ms of the grid since it joined.
    heard: Vec<i16>,
    seqs: Vec<u16>,
    timestamps: Vec<u32>,
    levels: Vec<AudioLevel>,
    payloads: Vec<Bytes>,
}

impl Party {
    fn new(id: u32, source: &[i16], start_frame: usize) -> Self {
        Self {
            id: ParticipantId(id),
            packets: encode_rtp(&OpusConfig::default(), source, Ssrc(id)).unwrap(),
            start_frame,
            leave_frame: None,
            decoder: OpusDecoder::new(48_000, Channels::Mono).unwrap(),
            heard: Vec::new(),
            seqs: Vec::new(),
            timestamps: Vec::new(),
            levels: Vec::new(),
            payloads: Vec::new(),
        }
    }

    fn receive(&mut self, packet: &[u8]) {
        let pkt = RtpPacket::parse(packet).unwrap();
        self.seqs.push(pkt.sequence_number());
        self.timestamps.push(pkt.timestamp());
        let (id, level) = pkt.extensions().next().unwrap();
        assert_eq!(id, 1);
        self.levels.push(AudioLevel::from_byte(level[0]));
        self.payloads.push(Bytes::copy_from_slice(pkt.payload()));
        let mut pcm = [0i16; 960];
        let n = self.decoder.decode(pkt.payload(), &mut pcm).unwrap();
        assert_eq!(n, 960);
        self.heard.extend_from_slice(&pcm);
    }

    /// The decoded mix between `from` and `to` seconds after the call's start.
    fn heard_between(&self, from: f64, to: f64) -> &[i16] {
        let offset = self.start_frame * 960;
        let a = (from * RATE) as usize - offset;
        let b = (to * RATE) as usize - offset;
        &self.heard[a..b.min(self.heard.len())]
    }
}

struct Call {
    conf: AudioConference,
    parties: Vec<Party>,
    t0: Instant,
    events: Vec<(usize, ConferenceEvent)>,
    /// Extra datagrams a participant sends each 20 ms (garbage, floods).
    extra: Vec<(ParticipantId, Vec<Bytes>)>,
    extra_errors: Vec<ConferenceError>,
}

impl Call {
    fn new(config: ConferenceConfig, parties: Vec<Party>) -> Self {
        Self {
            conf: AudioConference::new(config).unwrap(),
            parties,
            t0: Instant::now(),
            events: Vec::new(),
            extra: Vec::new(),
            extra_errors: Vec::new(),
        }
    }

    /// Runs `frames` 20 ms frames on the virtual clock: joins and leaves on the grid, each
    /// participant's packet at the start of its frame, the mixer every 10 ms.
    fn run(&mut self, frames: usize) {
        for f in 0..frames {
            let frame_start = self.t0 + Duration::from_millis(20 * f as u64);
            for p in &mut self.parties {
                if p.start_frame == f {
                    self.conf
                        .add(frame_start, p.id, Ssrc(0x5000 + p.id.0))
                        .unwrap();
                }
                if p.leave_frame == Some(f) {
                    assert!(self.conf.remove(p.id));
                }
                let live = f >= p.start_frame && p.leave_frame.is_none_or(|l| f < l);
                if live && let Some(pkt) = p.packets.get(f - p.start_frame) {
                    // 3 ms of network delay.
                    let at = frame_start + Duration::from_millis(3);
                    self.conf.handle_rtp(at, p.id, pkt.clone()).unwrap();
                }
            }
            for (from, dgs) in &self.extra {
                for d in dgs {
                    if let Err(e) = self.conf.handle_rtp(frame_start, *from, d.clone()) {
                        self.extra_errors.push(e);
                    }
                }
            }
            for half in 1..=2u64 {
                let now = frame_start + Duration::from_millis(10 * half);
                while self.conf.poll_timeout().is_some_and(|t| t <= now) {
                    self.conf.handle_timeout(now);
                    while let Some(tx) = self.conf.poll_transmit() {
                        let p = self.parties.iter_mut().find(|p| p.id == tx.to).unwrap();
                        p.receive(tx.packet);
                    }
                }
                while let Some(e) = self.conf.poll_event() {
                    self.events.push((f, e));
                }
            }
        }
    }
}

/// Own tone ≥ 30 dB below each other tone in the window; every other tone present.
fn assert_hears_others_not_self(p: &Party, tones: &[(ParticipantId, f64)], from: f64, to: f64) {
    let heard = p.heard_between(from, to);
    let own = tones.iter().find(|(id, _)| *id == p.id).map(|t| t.1);
    let others: Vec<f64> = tones
        .iter()
        .filter(|(id, _)| *id != p.id)
        .map(|&(_, f)| level_db(heard, f))
        .collect();
    let weakest = others.iter().cloned().fold(f64::INFINITY, f64::min);
    let strongest = others.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    // Every other tone present: all within 6 dB of each other (equal inputs) and loud.
    assert!(
        strongest - weakest < 6.0,
        "{}: others uneven {others:?}",
        p.id
    );
    assert!(
        weakest > -44.0,
        "{}: others too quiet {others:?} dBFS",
        p.id
    );
    if let Some(f) = own {
        let own_db = level_db(heard, f);
        println!(
            "{}: own tone {:.1} dB below the weakest other ({} others within {:.1} dB)",
            p.id,
            weakest - own_db,
            others.len(),
            strongest - weakest
        );
        assert!(
            weakest - own_db >= 30.0,
            "{} hears itself: own {own_db:.1} dB vs weakest other {weakest:.1} dB",
            p.id
        );
    }
}

#[test]
fn six_tones_each_hears_the_other_five_and_not_itself() {
    let parties: Vec<Party> = (0..6)
        .map(|k| Party::new(k as u32 + 1, &sine(FREQS[k], 3000.0, 3.0), 0))
        .collect();
    let tones: Vec<(ParticipantId, f64)> = (0..6)
        .map(|k| (ParticipantId(k as u32 + 1), FREQS[k]))
        .collect();
    let mut call = Call::new(ConferenceConfig::default(), parties);
    call.run(150);
    for p in &call.parties {
        assert_eq!(p.seqs.len(), 150, "one packet per 20 ms");
        assert_hears_others_not_self(p, &tones, 0.5, 2.9);
    }
    // Everyone speaks: everyone gets its own encode.
    let stats = call.conf.stats();
    assert!(stats.own_encodes >= 6 * 140, "{stats:?}");
    assert_eq!(stats.errors, 0);
    for p in &call.parties {
        assert_eq!(call.conf.is_speaking(p.id), Some(true));
        let s = call.conf.participant_stats(p.id).unwrap();
        assert_eq!(s.packets_in, 150);
        assert_eq!(s.dropped_malformed + s.dropped_rate + s.dropped_late, 0);
    }
}

#[test]
fn listeners_share_one_encode_of_the_full_mix() {
    // Two speak (2 is 8 dB louder), four listen in silence.
    let mut parties = vec![
        Party::new(1, &sine(FREQS[0], 3000.0, 2.0), 0),
        Party::new(2, &sine(FREQS[1], 7500.0, 2.0), 0),
    ];
    for id in 3..=6 {
        parties.push(Party::new(id, &vec![0i16; 96_000], 0));
    }
    let tones = [(ParticipantId(1), FREQS[0]), (ParticipantId(2), FREQS[1])];
    let mut call = Call::new(ConferenceConfig::default(), parties);
    call.run(100);
    // The speakers hear each other, not themselves.
    let h1 = call.parties[0].heard_between(0.5, 1.9);
    let h2 = call.parties[1].heard_between(0.5, 1.9);
    assert!(level_db(h1, FREQS[1]) - level_db(h1, FREQS[0]) >= 30.0);
    assert!(level_db(h2, FREQS[0]) - level_db(h2, FREQS[1]) >= 30.0);
    // The listeners hear both, from one shared encode: the same payload bytes.
    for p in &call.parties[2..] {
        let heard = p.heard_between(0.5, 1.9);
        for &(_, f) in &tones {
            assert!(level_db(heard, f) > -44.0, "{} misses {f} Hz", p.id);
        }
        assert_eq!(p.payloads, call.parties[2].payloads);
        assert_ne!(p.payloads[50], call.parties[0].payloads[50]);
        // Each stream is its own: own SSRC, contiguous sequence numbers and timestamps.
        assert!(p.seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)));
        assert!(
            p.timestamps
                .windows(2)
                .all(|w| w[1] == w[0].wrapping_add(960))
        );
    }
    let stats = call.conf.stats();
    assert_eq!(stats.shared_encodes, 100);
    assert!((2 * 95..=2 * 100).contains(&stats.own_encodes), "{stats:?}");
    // 3 encodes per frame instead of 6.
    assert!(stats.shared_encodes + stats.own_encodes <= 300);
    // Roster: speaking events for 1 and 2 only; 2 (louder) becomes the active speaker.
    let speaking: Vec<ParticipantId> = call
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            ConferenceEvent::Speaking {
                participant,
                speaking: true,
            } => Some(*participant),
            _ => None,
        })
        .collect();
    assert_eq!(speaking.len(), 2);
    assert!(speaking.contains(&ParticipantId(1)) && speaking.contains(&ParticipantId(2)));
    assert_eq!(call.conf.active_speaker(), Some(ParticipantId(2)));
    assert!(
        call.events
            .iter()
            .any(|(_, e)| *e == ConferenceEvent::ActiveSpeaker(Some(ParticipantId(2))))
    );
    assert_eq!(call.conf.is_speaking(ParticipantId(4)), Some(false));
    // RFC 6464 levels in the packets: the mix a listener gets is loud, and the input level
    // of a silent participant is silence.
    let lvl = call.parties[3].levels[60];
    assert!(lvl.voice && lvl.level < 30, "{lvl:?}");
    assert!(call.conf.level(ParticipantId(5)).unwrap().level > 90);
}

#[test]
fn a_leaver_and_a_joiner_mid_call_leave_no_gap_for_the_rest() {
    // 1..=4 from the start; 4 leaves at 1.0 s; 5 joins at 1.5 s; the call runs 3 s.
    let mut parties: Vec<Party> = (0..4)
        .map(|k| Party::new(k as u32 + 1, &sine(FREQS[k], 3000.0, 3.0), 0))
        .collect();
    parties[3].leave_frame = Some(50);
    parties.push(Party::new(5, &sine(FREQS[4], 3000.0, 1.5), 75));
    let mut call = Call::new(ConferenceConfig::default(), parties);
    call.run(150);
    let id = |k: u32| ParticipantId(k);
    for p in &call.parties[..3] {
        // Not a packet missing: contiguous sequence numbers and timestamps for 3 s.
        assert_eq!(p.seqs.len(), 150, "{}", p.id);
        assert!(p.seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)));
        assert!(
            p.timestamps
                .windows(2)
                .all(|w| w[1] == w[0].wrapping_add(960))
        );
        let before: Vec<_> = (1..=4).map(|k| (id(k), FREQS[k as usize - 1])).collect();
        assert_hears_others_not_self(p, &before, 0.5, 0.95);
        // Between the leave and the join: only the other two.
        let between: Vec<_> = (1..=3).map(|k| (id(k), FREQS[k as usize - 1])).collect();
        assert_hears_others_not_self(p, &between, 1.2, 1.5);
        let gone = p.heard_between(1.2, 1.5);
        let weakest_present = (1..=3u32)
            .filter(|&k| id(k) != p.id)
            .map(|k| level_db(gone, FREQS[k as usize - 1]))
            .fold(f64::INFINITY, f64::min);
        assert!(
            level_db(gone, FREQS[3]) < weakest_present - 30.0,
            "{}: the leaver is still heard",
            p.id
        );
        let after: Vec<_> = [1, 2, 3, 5]
            .into_iter()
            .map(|k| (id(k), FREQS[k as usize - 1]))
            .collect();
        assert_hears_others_not_self(p, &after, 1.8, 2.9);
        // No silent stretch anywhere in the mix (a gap would show as a quiet 20 ms).
        let whole = p.heard_between(0.2, 2.9);
        for frame in whole.chunks(960) {
            assert!(AudioLevel::measure(frame).voice, "{}: a silent frame", p.id);
        }
    }
    // The joiner hears the three from its first second on; the leaver got nothing after.
    let joiner = &call.parties[4];
    let trio: Vec<_> = (1..=3).map(|k| (id(k), FREQS[k as usize - 1])).collect();
    assert_hears_others_not_self(joiner, &trio, 1.8, 2.9);
    assert_eq!(call.parties[3].seqs.len(), 50);
    assert_eq!(call.conf.len(), 4);
}

#[test]
fn garbage_and_a_flood_are_dropped_and_counted_and_the_others_mix_is_unaffected() {
    let make = || -> Vec<Party> {
        (0..3)
            .map(|k| Party::new(k as u32 + 1, &sine(FREQS[k], 3000.0, 2.0), 0))
            .collect()
    };
    let mut clean = Call::new(ConferenceConfig::default(), make());
    clean.run(100);
    let mut hostile = Call::new(ConferenceConfig::default(), make());
    let garbage = vec![
        Bytes::from_static(b"\x00\x01garbage"),
        Bytes::from_static(&[0x80, 0x60, 0, 1, 0, 0, 0, 1, 0, 0, 0, 3, 0xff]), // PT 96
        Bytes::from_static(&[0x80, 111, 0, 1, 0, 0, 0, 1, 0, 0, 0, 3]),        // no payload
        Bytes::from_static(&[0x90, 111, 0, 1]),                                // truncated
    ];
    // Participant 3 sends garbage every 20 ms, and participant 2 replays 30 copies of
    // an old packet every 20 ms (a flood far over its rate).
    let flood: Vec<Bytes> = vec![hostile.parties[1].packets[0].clone(); 30];
    hostile.extra = vec![(ParticipantId(3), garbage), (ParticipantId(2), flood)];
    hostile.run(100);
    let s3 = hostile.conf.participant_stats(ParticipantId(3)).unwrap();
    // Five datagrams per 20 ms is over the 200/s cap: some garbage goes as rate drops.
    assert_eq!(s3.dropped_malformed + s3.dropped_rate, 400, "{s3:?}");
    assert!(s3.dropped_malformed >= 300, "{s3:?}");
    assert_eq!(s3.packets_in, 100, "{s3:?}");
    let s2 = hostile.conf.participant_stats(ParticipantId(2)).unwrap();
    assert!(s2.dropped_rate > 2000, "{s2:?}");
    let s1 = hostile.conf.participant_stats(ParticipantId(1)).unwrap();
    assert_eq!(s1.dropped_malformed + s1.dropped_rate + s1.dropped_late, 0);
    assert!(
        hostile
            .extra_errors
            .iter()
            .any(|e| matches!(e, ConferenceError::Malformed(_)))
    );
    assert!(
        hostile
            .extra_errors
            .iter()
            .any(|e| matches!(e, ConferenceError::WrongPayloadType(_)))
    );
    assert!(
        hostile
            .extra_errors
            .iter()
            .any(|e| matches!(e, ConferenceError::RateLimited(_)))
    );
    // Participant 1's mix: 2 and 3 at the same level as in the clean call, no packet lost.
    let tones: Vec<_> = (1..=3)
        .map(|k| (ParticipantId(k), FREQS[k as usize - 1]))
        .collect();
    for (c, h) in clean.parties.iter().zip(&hostile.parties) {
        assert_eq!(h.seqs.len(), 100);
        assert_hears_others_not_self(h, &tones, 0.5, 1.9);
        for &(id, f) in &tones {
            if id == c.id {
                continue;
            }
            let a = level_db(c.heard_between(0.5, 1.9), f);
            let b = level_db(h.heard_between(0.5, 1.9), f);
            assert!((a - b).abs() < 1.0, "{}: {f} Hz {a:.1} vs {b:.1} dB", c.id);
        }
    }
    // An unknown participant is a typed error, not a panic.
    assert_eq!(
        hostile
            .conf
            .handle_rtp(hostile.t0, ParticipantId(99), Bytes::from_static(b"x")),
        Err(ConferenceError::UnknownParticipant(ParticipantId(99)))
    );
}

#[test]
fn a_full_conference_refuses_with_a_typed_error() {
    let config = ConferenceConfig {
        mixer: supernode_media::mixer::MixerConfig {
            max_participants: 3,
            ..Default::default()
        },
        ..ConferenceConfig::default()
    };
    let mut conf = AudioConference::new(config).unwrap();
    let t0 = Instant::now();
    for k in 1..=3 {
        conf.add(t0, ParticipantId(k), Ssrc(k)).unwrap();
    }
    assert_eq!(
        conf.add(t0, ParticipantId(4), Ssrc(4)),
        Err(ConferenceError::Full(3))
    );
    assert_eq!(
        conf.add(t0, ParticipantId(2), Ssrc(2)),
        Err(ConferenceError::DuplicateParticipant(ParticipantId(2)))
    );
    assert!(conf.remove(ParticipantId(1)));
    conf.add(t0, ParticipantId(4), Ssrc(4)).unwrap();
}

#[test]
fn a_driver_that_falls_behind_skips_ticks_and_counts_them() {
    let mut conf = AudioConference::new(ConferenceConfig::default()).unwrap();
    let t0 = Instant::now();
    conf.add(t0, ParticipantId(1), Ssrc(1)).unwrap();
    conf.add(t0, ParticipantId(2), Ssrc(2)).unwrap();
    conf.handle_timeout(t0 + Duration::from_millis(20));
    let first = RtpPacket::parse(conf.poll_transmit().unwrap().packet)
        .unwrap()
        .timestamp();
    while conf.poll_transmit().is_some() {}
    // 200 ms late: the 15 oldest of the 20 due ticks are skipped, the other 5 run (two
    // Opus frames), one frame per call so the driver drains in between.
    let now = t0 + Duration::from_millis(220);
    let mut timestamps = vec![first];
    while conf.poll_timeout().is_some_and(|t| t <= now) {
        conf.handle_timeout(now);
        while let Some(tx) = conf.poll_transmit() {
            if tx.to == ParticipantId(1) {
                timestamps.push(RtpPacket::parse(tx.packet).unwrap().timestamp());
            }
        }
    }
    let s = conf.stats();
    assert_eq!(s.ticks, 2 + 5);
    assert_eq!(s.ticks_skipped, 15);
    assert_eq!(conf.poll_timeout(), Some(t0 + Duration::from_millis(230)));
    // The timestamps count the skipped 150 ms: a jump the receiver sees as a gap in time
    // with no gap in sequence numbers.
    assert_eq!(
        timestamps,
        vec![first, first + 960 + 15 * 480, first + 2 * 960 + 15 * 480]
    );
}

/// First sample louder than a threshold.
fn onset(x: &[i16]) -> usize {
    x.iter()
        .position(|&s| s.unsigned_abs() > 1500)
        .expect("no onset")
}

#[test]
fn the_mixer_path_adds_a_bounded_delay_over_a_direct_path() {
    // Participant 1 is silent for 1 s, then speaks; 2 and 3 listen.
    let mut a = vec![0i16; 48_000];
    a.extend(sine(FREQS[0], 8000.0, 1.0));
    let parties = vec![
        Party::new(1, &a, 0),
        Party::new(2, &vec![0i16; 96_000], 0),
        Party::new(3, &vec![0i16; 96_000], 0),
    ];
    // Direct path (a 1:1 call through a forwarder): the listener decodes 1's packets as
    // they arrive, 3 ms after they were sent. The onset is heard at arrival + its offset.
    let mut direct = OpusDecoder::new(48_000, Channels::Mono).unwrap();
    let mut direct_pcm = Vec::new();
    for p in &parties[0].packets {
        let mut pcm = [0i16; 960];
        direct
            .decode(RtpPacket::parse(p).unwrap().payload(), &mut pcm)
            .unwrap();
        direct_pcm.extend_from_slice(&pcm);
    }
    let direct_onset = onset(&direct_pcm);
    let direct_ms = 3.0 + (direct_onset % 960) as f64 / 48.0 + 20.0 * (direct_onset / 960) as f64;
    let mut call = Call::new(ConferenceConfig::default(), parties);
    call.run(100);
    // Through the mixer: packet k of the listener's stream left the mixer at the tick that
    // completed it, 20 ms × (k + 1) after the start; the onset is heard at that time plus
    // its offset in the packet.
    let heard = &call.parties[1].heard;
    let k = onset(heard);
    let mixer_ms = 20.0 * (k / 960 + 1) as f64 + (k % 960) as f64 / 48.0;
    let added = mixer_ms - direct_ms;
    println!(
        "onset heard at {direct_ms:.1} ms direct, {mixer_ms:.1} ms through the mixer: +{added:.1} ms \
         (mixer jitter buffer, 20 ms frame assembly, second Opus encode)"
    );
    assert!(added > 0.0 && added < 80.0, "{added:.1} ms");
}
