//! A group call on this host: one relay session, one processor transport whose far side is
//! an audio MCU on a media thread ([`crate::media_threads`]), and the participants'
//! transports.
//!
//! [`HostedConference::open`] creates the session, opens the conference on a media thread
//! and adds the processor transport (the MCU's [`Inlet`](crate::media_threads::Inlet) is its
//! port; the mixes come back through the transport's return). [`HostedConference::join`]
//! adds a participant's transport and routes it: its audio to the processor only, its mix
//! (a stream of the processor) to it alone, its video to every other participant and theirs
//! to it (SFU). [`HostedConference::leave`] undoes that; the others' streams go on. A
//! leaver's video streams at the others are dropped rather than left for adoption, so a
//! newcomer's video is always its own stream (its own SSRC) at every receiver; its mix
//! stream (never reused: each participant has its own mix SSRC) goes with it. Past `max_participants` a join is a typed [`ConferenceHostError::Full`],
//! checked before any relay resource is taken. A participant's transport is capped at
//! [`PARTICIPANT_CAP`] unless its request says otherwise.

use std::sync::Arc;

use supernode_media::conference::{ConferenceConfig, ConferenceError};
use supernode_media::ids::Ssrc;
use supernode_relay::core::{RateCap, StreamKind, StreamSpec};
use supernode_relay::{LegId, LegInfo, LegRequest, Relay, RelayError, SessionId};

use crate::media_threads::{
    ConferenceHandle, MediaThreadError, MediaThreads, Outlet, participant_of,
};

/// What a participant's transport takes in when its request names no cap: 1500 packets/s
/// and 12 Mbit/s, 500 ms of burst — several times a camera's video and audio, so that a
/// flooding participant (whose every packet the relay would fan out to all the others)
/// costs the others nothing: past the cap its packets are dropped (`rate_limited`) on its
/// own transport.
pub const PARTICIPANT_CAP: RateCap = RateCap {
    packets_per_sec: 1500,
    bytes_per_sec: 1_500_000,
    burst_ms: 500,
};

/// Why a conference operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConferenceHostError {
    /// The conference already holds `max_participants`.
    #[error("the conference is full ({0} participants)")]
    Full(usize),
    /// No such participant.
    #[error("leg {0} is not in the conference")]
    NotIn(u64),
    /// The relay refused.
    #[error(transparent)]
    Relay(#[from] RelayError),
    /// The media thread refused.
    #[error(transparent)]
    Media(#[from] MediaThreadError),
}

#[derive(Debug, Clone, Copy)]
struct Member {
    leg: LegId,
    mix: Ssrc,
}

/// One conference hosted here. See the module docs.
#[derive(Debug)]
pub struct HostedConference {
    session: SessionId,
    mixer: LegId,
    handle: ConferenceHandle,
    outlet: Outlet,
    members: Vec<Member>,
    max: usize,
}

impl HostedConference {
    /// Opens a conference: a relay session with a processor transport, and an MCU on one
    /// of `threads`.
    pub fn open(
        relay: &Relay,
        threads: &mut MediaThreads,
        config: ConferenceConfig,
    ) -> Result<Self, ConferenceHostError> {
        let max = config.mixer.max_participants;
        let (handle, outlet) = threads.open(config)?;
        let (session, _) = relay.create_session(Vec::new())?;
        let (mixer, back) = match relay.add_processor(session, Arc::new(handle.inlet())) {
            Ok(x) => x,
            Err(e) => {
                let _ = relay.release_session(session);
                return Err(e.into());
            }
        };
        handle.attach_relay(back)?;
        Ok(Self {
            session,
            mixer,
            handle,
            outlet,
            members: Vec::new(),
            max,
        })
    }

    /// The relay session.
    pub fn session(&self) -> SessionId {
        self.session
    }

    /// The processor transport.
    pub fn mixer(&self) -> LegId {
        self.mixer
    }

    /// The MCU's handle (counters).
    pub fn handle(&self) -> &ConferenceHandle {
        &self.handle
    }

    /// The MCU's roster events (speaking, active speaker).
    pub fn outlet(&self) -> &Outlet {
        &self.outlet
    }

    /// The participants' transports, in join order.
    pub fn participants(&self) -> Vec<LegId> {
        self.members.iter().map(|m| m.leg).collect()
    }

    /// The SSRC a participant receives its mix as (before the relay's rewrite, which keeps
    /// it unless the participant already uses it).
    pub fn mix_ssrc(&self, leg: LegId) -> Option<Ssrc> {
        self.members.iter().find(|m| m.leg == leg).map(|m| m.mix)
    }

    /// Adds a participant: a relay transport made from `req`, routed as the module docs
    /// say.
    pub fn join(
        &mut self,
        relay: &Relay,
        mut req: LegRequest,
    ) -> Result<LegInfo, ConferenceHostError> {
        if self.members.len() >= self.max {
            return Err(ConferenceHostError::Full(self.max));
        }
        if req.rate_cap == RateCap::default() {
            req.rate_cap = PARTICIPANT_CAP;
        }
        let info = relay.add_leg(self.session, req)?;
        let leg = info.id;
        // Distinct per leg, and unlike the small SSRCs tools pick.
        let mix = Ssrc(0x4D00_0000 | ((leg.0 as u32).wrapping_mul(0x9E37_79B1) >> 8));
        let r = (|| -> Result<(), ConferenceHostError> {
            match self.handle.add(participant_of(leg), mix) {
                Err(MediaThreadError::Conference(ConferenceError::Full(n))) => {
                    return Err(ConferenceHostError::Full(n));
                }
                r => r?,
            }
            relay.add_stream(
                self.mixer,
                StreamSpec {
                    ssrc: mix,
                    clock_rate: 48_000,
                },
            )?;
            relay.subscribe_stream(self.mixer, mix, leg)?;
            relay.connect_kind(leg, self.mixer, StreamKind::Audio)?;
            for m in &self.members {
                relay.connect_kind(leg, m.leg, StreamKind::Video)?;
                relay.connect_kind(m.leg, leg, StreamKind::Video)?;
            }
            Ok(())
        })();
        if let Err(e) = r {
            self.handle.remove(participant_of(leg));
            let _ = relay.remove_stream(self.mixer, mix);
            let _ = relay.release_leg(leg);
            return Err(e);
        }
        self.members.push(Member { leg, mix });
        Ok(info)
    }

    /// Removes a participant (its transport is released).
    pub fn leave(&mut self, relay: &Relay, leg: LegId) -> Result<(), ConferenceHostError> {
        let k = self
            .members
            .iter()
            .position(|m| m.leg == leg)
            .ok_or(ConferenceHostError::NotIn(leg.0))?;
        let m = self.members.remove(k);
        self.handle.remove(participant_of(leg));
        let r = relay.release_leg(leg);
        relay.remove_stream(self.mixer, m.mix)?;
        // Its video ends at the others (no joiner continues it under its SSRC): each
        // participant's video is its own stream, which the roster's SSRCs name.
        for o in &self.members {
            relay.drop_orphans(o.leg, StreamKind::Video)?;
        }
        r.map_err(Into::into)
    }

    /// Ends the conference: the relay session and the MCU.
    pub fn close(self, relay: &Relay) -> Result<(), ConferenceHostError> {
        relay.release_session(self.session)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! Conferences through a real relay (UDP sockets on loopback, a worker thread) and a
    //! real media thread, in real time: each client sends its own Opus tone and decodes
    //! what it receives; the tones are measured with Goertzel filters.

    use super::*;
    use std::net::{SocketAddr, UdpSocket};
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

    use bytes::Bytes;
    use supernode_media::codec::opus::{Channels, OpusConfig, OpusDecoder};
    use supernode_media::jitter::sim::encode_rtp;
    use supernode_media::packet::demux::{PacketKind, classify};
    use supernode_media::packet::rtp::RtpPacket;
    use supernode_media::tone::{level_db, sine};
    use supernode_relay::RelayConfig;
    use supernode_relay::core::{DropReason, Pt};

    /// A plain RTP video packet (PT 96, 90 kHz timestamps of 30 frames/s).
    fn video_packet(ssrc: u32, seq: u16, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, 96];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&(u32::from(seq) * 3000).to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    const FRAME: Duration = Duration::from_millis(20);

    /// The real-time tests run one at a time: on a loaded 2-core machine two of them at
    /// once starve each other's media thread.
    static REALTIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn realtime() -> std::sync::MutexGuard<'static, ()> {
        REALTIME.lock().unwrap_or_else(|p| p.into_inner())
    }

    struct Client {
        freq: f64,
        sock: UdpSocket,
        relay: SocketAddr,
        leg: LegId,
        mix: Ssrc,
        packets: Vec<Bytes>,
        sent: usize,
        /// (frame at arrival, RTP bytes).
        got: Vec<(usize, Vec<u8>)>,
        /// Video received: (SSRC, sequence number, payload).
        video: Vec<(u32, u16, Vec<u8>)>,
        /// Video packets sent.
        video_sent: u16,
        active: bool,
    }

    impl Client {
        fn join(conf: &mut HostedConference, relay: &Relay, freq: f64, seconds: f64) -> Self {
            Self::join_with(conf, relay, freq, seconds, LegRequest::latching())
        }

        /// Joins with audio (PT 111) and video (PT 96) told apart by payload type, as the
        /// host's transports are.
        fn join_av(conf: &mut HostedConference, relay: &Relay, freq: f64, seconds: f64) -> Self {
            let req = LegRequest {
                clock_rates: vec![(Pt(111), 48_000), (Pt(96), 90_000)],
                ..LegRequest::latching()
            };
            Self::join_with(conf, relay, freq, seconds, req)
        }

        fn join_with(
            conf: &mut HostedConference,
            relay: &Relay,
            freq: f64,
            seconds: f64,
            req: LegRequest,
        ) -> Self {
            let info = conf.join(relay, req).unwrap();
            let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
            sock.set_nonblocking(true).unwrap();
            let ssrc = Ssrc(0x1000 + freq as u32);
            Client {
                freq,
                sock,
                relay: info.local,
                leg: info.id,
                mix: conf.mix_ssrc(info.id).unwrap(),
                packets: encode_rtp(&OpusConfig::default(), &sine(freq, 2000.0, seconds), ssrc)
                    .unwrap(),
                sent: 0,
                got: Vec::new(),
                video: Vec::new(),
                video_sent: 0,
                active: true,
            }
        }

        /// The SSRC of its video.
        fn video_ssrc(&self) -> u32 {
            0x7000 + self.freq as u32
        }

        /// One video packet (PT 96, a frame's worth of payload).
        fn send_video(&mut self) {
            let p = video_packet(self.video_ssrc(), self.video_sent, b"picture");
            self.sock.send_to(&p, self.relay).unwrap();
            self.video_sent = self.video_sent.wrapping_add(1);
        }

        fn send_next(&mut self) {
            if let Some(p) = self.packets.get(self.sent) {
                self.sock.send_to(p, self.relay).unwrap();
                self.sent += 1;
            }
        }

        fn drain(&mut self, frame: usize) {
            let mut buf = [0u8; 1500];
            while let Ok((n, _)) = self.sock.recv_from(&mut buf) {
                // The relay's RTCP reports aside: only the media.
                if classify(&buf[..n]) == PacketKind::Rtp {
                    match RtpPacket::parse(&buf[..n]) {
                        Ok(p) if p.payload_type() == Pt(96) => {
                            self.video
                                .push((p.ssrc().0, p.sequence_number(), p.payload().to_vec()))
                        }
                        _ => self.got.push((frame, buf[..n].to_vec())),
                    }
                }
            }
        }

        /// Decodes everything received, in order; returns the PCM of the packets that
        /// arrived in frames `from..to`, and checks the stream has no sequence gap.
        fn heard(&self, from: usize, to: usize) -> Vec<i16> {
            let mut dec = OpusDecoder::new(48_000, Channels::Mono).unwrap();
            let mut out = Vec::new();
            let mut last: Option<u16> = None;
            for (frame, p) in &self.got {
                let p = RtpPacket::parse(p).expect("RTP from the relay");
                assert_eq!(p.ssrc(), self.mix, "only the own mix reaches a participant");
                if let Some(l) = last {
                    assert_eq!(
                        p.sequence_number(),
                        l.wrapping_add(1),
                        "a gap in the mix of the {} Hz client",
                        self.freq
                    );
                }
                last = Some(p.sequence_number());
                let mut pcm = [0i16; 960];
                let n = dec.decode(p.payload(), &mut pcm).unwrap();
                if (from..to).contains(frame) {
                    out.extend_from_slice(&pcm[..n]);
                }
            }
            out
        }
    }

    fn start() -> (Relay, MediaThreads) {
        let relay = Relay::start(RelayConfig {
            workers: 1,
            ..RelayConfig::default()
        })
        .unwrap();
        (relay, MediaThreads::start(1).unwrap())
    }

    /// Runs `frames` 20 ms frames in real time: every active client sends its next packet,
    /// then every client takes what arrived.
    fn run(clients: &mut [Client], first: usize, frames: usize) {
        run_frames(clients, first, frames, false);
    }

    /// Like [`run`], and every active client also sends one video packet per frame.
    fn run_av(clients: &mut [Client], first: usize, frames: usize) {
        run_frames(clients, first, frames, true);
    }

    fn run_frames(clients: &mut [Client], first: usize, frames: usize, video: bool) {
        let t0 = Instant::now();
        for f in first..first + frames {
            for c in clients.iter_mut().filter(|c| c.active) {
                c.send_next();
                if video {
                    c.send_video();
                }
            }
            let due = t0 + FRAME * (f - first + 1) as u32;
            loop {
                for c in clients.iter_mut() {
                    c.drain(f);
                }
                let now = Instant::now();
                if now >= due {
                    break;
                }
                std::thread::sleep((due - now).min(Duration::from_millis(2)));
            }
        }
    }

    /// Asserts the tone criteria on `pcm`, heard by the client of `own`: its own tone at
    /// least 30 dB below the weakest of `others`, every one of `others` present.
    fn assert_mix(pcm: &[i16], own: f64, others: &[f64], absent: &[f64], mcu: &ConferenceHandle) {
        let c = mcu.counters();
        let load = format!(
            "(MCU: {} ticks skipped, {} inbound dropped, {} refused)",
            c.ticks_skipped.load(Ordering::Relaxed),
            c.inbound_dropped.load(Ordering::Relaxed),
            c.refused.load(Ordering::Relaxed)
        );
        assert!(pcm.len() >= 48_000 / 2, "{} samples", pcm.len());
        let levels: Vec<f64> = others.iter().map(|&f| level_db(pcm, f)).collect();
        let weakest = levels.iter().copied().fold(f64::INFINITY, f64::min);
        assert!(
            weakest > -44.0,
            "{own} Hz hears {others:?} at {levels:.1?} dBFS {load}"
        );
        for &f in std::iter::once(&own).chain(absent) {
            let l = level_db(pcm, f);
            assert!(
                weakest - l >= 30.0,
                "{own} Hz hears {f} Hz at {l:.1} dB, the others at {levels:.1?} dBFS {load}"
            );
        }
    }

    /// The must-show of issue 14 below the signaling: six participants, each its own tone,
    /// each hearing the other five and not itself; one leaves and another joins mid-call,
    /// and the others' mixes go on without a gap.
    #[test]
    fn six_tones_each_hears_the_others_not_itself_across_a_leave_and_a_join() {
        let _one_at_a_time = realtime();
        let (relay, mut threads) = start();
        let mut conf =
            HostedConference::open(&relay, &mut threads, ConferenceConfig::default()).unwrap();
        let freqs = [440.0, 620.0, 850.0, 1100.0, 1370.0, 1700.0];
        let joiner = 2050.0;
        let mut clients: Vec<Client> = freqs
            .iter()
            .map(|&f| Client::join(&mut conf, &relay, f, 7.0))
            .collect();
        run(&mut clients, 0, 150);
        // Frames 50..150: 2 s, everyone in for 1 s or more.
        for c in &clients {
            let others: Vec<f64> = freqs.iter().copied().filter(|&f| f != c.freq).collect();
            assert_mix(&c.heard(50, 150), c.freq, &others, &[], conf.handle());
        }
        // The 440 Hz participant leaves; a 2050 Hz one joins.
        clients[0].active = false;
        conf.leave(&relay, clients[0].leg).unwrap();
        clients.push(Client::join(&mut conf, &relay, joiner, 5.0));
        run(&mut clients, 150, 150);
        let now_in: Vec<f64> = freqs[1..].iter().copied().chain([joiner]).collect();
        for c in &clients[1..] {
            let others: Vec<f64> = now_in.iter().copied().filter(|&f| f != c.freq).collect();
            // Frames 200..300: 2 s, from 1 s after the change.
            assert_mix(
                &c.heard(200, 300),
                c.freq,
                &others,
                &[freqs[0]],
                conf.handle(),
            );
            if c.freq != joiner {
                // No gap across the change (`heard` asserts sequence continuity), and a
                // mix every frame give or take the jitter buffer's start.
                let n = c.got.iter().filter(|(f, _)| *f >= 150).count();
                assert!(n >= 140, "{} Hz got {n} mixes in 150 frames", c.freq);
            }
        }
        let counters = conf.handle().counters();
        assert_eq!(counters.inbound_dropped.load(Ordering::Relaxed), 0);
        assert_eq!(counters.outbound_dropped.load(Ordering::Relaxed), 0);
        assert!(conf.outlet().events.try_iter().count() > 0, "roster events");
        assert!(
            relay
                .session_legs(conf.session())
                .unwrap()
                .contains(&conf.mixer())
        );
        let mixer = relay.leg_stats(conf.mixer()).unwrap();
        assert!(mixer.counters.rtp_in > 1000, "{:?}", mixer.counters);
        conf.close(&relay).unwrap();
        assert_eq!(relay.leg_count(), 0);
    }

    #[test]
    fn joining_a_full_conference_is_a_typed_error_and_takes_nothing() {
        let (relay, mut threads) = start();
        let mut config = ConferenceConfig::default();
        config.mixer.max_participants = 2;
        let mut conf = HostedConference::open(&relay, &mut threads, config).unwrap();
        conf.join(&relay, LegRequest::latching()).unwrap();
        conf.join(&relay, LegRequest::latching()).unwrap();
        let before = relay.leg_count();
        let e = conf.join(&relay, LegRequest::latching()).unwrap_err();
        assert!(matches!(e, ConferenceHostError::Full(2)), "{e}");
        assert_eq!(relay.leg_count(), before);
        assert_eq!(conf.participants().len(), 2);
        let gone = LegId(u64::MAX);
        assert!(matches!(
            conf.leave(&relay, gone),
            Err(ConferenceHostError::NotIn(_))
        ));
    }

    /// A participant that sends garbage and floods: its packets are dropped and counted,
    /// the other two still hear each other (and not themselves).
    #[test]
    fn garbage_and_a_flood_from_one_participant_leave_the_others_mix_intact() {
        let _one_at_a_time = realtime();
        let (relay, mut threads) = start();
        let mut conf =
            HostedConference::open(&relay, &mut threads, ConferenceConfig::default()).unwrap();
        let freqs = [500.0, 900.0, 1300.0];
        let mut clients: Vec<Client> = freqs
            .iter()
            .map(|&f| Client::join(&mut conf, &relay, f, 4.0))
            .collect();
        // The flooder latches with its first real packet, then sends garbage and bursts.
        let flood = clients[2].packets.clone();
        let (fsock, faddr) = (clients[2].sock.try_clone().unwrap(), clients[2].relay);
        clients[2].active = false;
        fsock.send_to(&flood[0], faddr).unwrap();
        let t0 = Instant::now();
        let flooder = std::thread::spawn(move || {
            let mut i = 0usize;
            while t0.elapsed() < Duration::from_secs(3) {
                // 20 valid packets and 20 junk datagrams every 10 ms: 4000 packets/s.
                for _ in 0..20 {
                    let _ = fsock.send_to(&flood[1 + i % (flood.len() - 1)], faddr);
                    let _ = fsock.send_to(b"\x80\x6fjunk-that-is-not-rtp", faddr);
                    i += 1;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        run(&mut clients, 0, 150);
        flooder.join().unwrap();
        for c in &clients[..2] {
            let other = freqs[..2].iter().copied().find(|&f| f != c.freq).unwrap();
            let pcm = c.heard(75, 150);
            assert!(pcm.len() >= 48_000, "{} samples", pcm.len());
            let (own, heard) = (level_db(&pcm, c.freq), level_db(&pcm, other));
            assert!(
                heard > -44.0,
                "{} Hz hears {other} Hz at {heard:.1} dBFS",
                c.freq
            );
            assert!(heard - own >= 30.0, "own {own:.1} vs {heard:.1}");
        }
        // The relay caps the flooder toward the mixer; what passes is refused there
        // (junk, over the participant's rate) or taken as its (garbled) audio.
        let capped = relay
            .leg_stats(conf.mixer())
            .unwrap()
            .counters
            .drops_for(DropReason::RateLimited);
        assert!(capped > 1000, "capped {capped}");
        let refused = conf.handle().counters().refused.load(Ordering::Relaxed);
        assert!(refused > 0, "refused {refused}");
    }

    /// A participant that floods video (valid RTP at 5000 packets/s, which the relay
    /// would fan out to everyone) and sends junk: past its transport's cap its packets are
    /// dropped and counted on its own transport; the others get each other's video whole
    /// (every packet, in order) and their mix intact.
    #[test]
    fn a_video_flood_and_junk_from_one_participant_leave_the_others_video_and_mix_intact() {
        let _one_at_a_time = realtime();
        let (relay, mut threads) = start();
        let mut conf =
            HostedConference::open(&relay, &mut threads, ConferenceConfig::default()).unwrap();
        let freqs = [500.0, 900.0, 1300.0];
        let mut clients: Vec<Client> = freqs
            .iter()
            .map(|&f| Client::join_av(&mut conf, &relay, f, 4.0))
            .collect();
        let flooder_leg = clients[2].leg;
        let flood_ssrc = clients[2].video_ssrc();
        let (fsock, faddr) = (clients[2].sock.try_clone().unwrap(), clients[2].relay);
        clients[2].active = false;
        fsock.send_to(&clients[2].packets[0], faddr).unwrap();
        let t0 = Instant::now();
        let flooder = std::thread::spawn(move || {
            let mut seq = 0u16;
            let mut sent = 0u64;
            while t0.elapsed() < Duration::from_secs(3) {
                // 50 video packets and 10 junk datagrams every 10 ms.
                for k in 0..50 {
                    let _ = fsock.send_to(&video_packet(flood_ssrc, seq, &[0xAB; 1000]), faddr);
                    seq = seq.wrapping_add(1);
                    sent += 1;
                    if k % 5 == 0 {
                        let _ = fsock.send_to(b"\x50junk-that-is-no-media", faddr);
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            sent
        });
        run_av(&mut clients, 0, 150);
        let flood_sent = flooder.join().unwrap();
        // Let the last packets arrive.
        std::thread::sleep(Duration::from_millis(200));
        for c in clients.iter_mut() {
            c.drain(160);
        }
        for (i, c) in clients[..2].iter().enumerate() {
            let other = &clients[1 - i];
            let from_other: Vec<u16> = c
                .video
                .iter()
                .filter(|v| v.0 == other.video_ssrc())
                .map(|v| v.1)
                .collect();
            assert_eq!(
                from_other.len(),
                usize::from(other.video_sent),
                "{} Hz lost video of {} Hz",
                c.freq,
                other.freq
            );
            assert!(
                from_other.windows(2).all(|w| w[1] == w[0].wrapping_add(1)),
                "out of order"
            );
            let pcm = c.heard(75, 150);
            assert!(pcm.len() >= 48_000, "{} samples", pcm.len());
            let (own, heard) = (level_db(&pcm, c.freq), level_db(&pcm, other.freq));
            assert!(
                heard > -44.0,
                "{} Hz hears {} Hz at {heard:.1} dBFS",
                c.freq,
                other.freq
            );
            assert!(heard - own >= 30.0, "own {own:.1} vs {heard:.1}");
            // Of the flood, at most the cap (and its burst) came through.
            let flood_got = c.video.iter().filter(|v| v.0 == flood_ssrc).count() as u64;
            let cap = u64::from(PARTICIPANT_CAP.packets_per_sec);
            assert!(
                flood_got <= cap * 4 + cap / 2,
                "{flood_got} of {flood_sent} flood packets reached {} Hz",
                c.freq
            );
        }
        let st = relay.leg_stats(flooder_leg).unwrap();
        let limited = st.counters.drops_for(DropReason::RateLimited);
        assert!(
            limited >= flood_sent / 2,
            "{limited} of {flood_sent} flood packets dropped at the cap"
        );
        assert!(
            st.counters.drops_for(DropReason::Unsupported) > 0,
            "junk counted too: {:?}",
            st.counters
        );
        conf.close(&relay).unwrap();
    }
}
