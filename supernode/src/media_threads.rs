//! Media threads: where the audio MCUs of conferences ([`AudioConference`]) run, apart from
//! the relay's forwarding workers.
//!
//! [`MediaThreads::start`]`(n)` spawns `n` plain OS threads. [`MediaThreads::open`] places a
//! conference on one of them (round robin) and gives back a [`ConferenceHandle`] (the
//! control plane's: add and remove participants, counters) and an [`Outlet`] (the mixed
//! packets, one per participant per 20 ms, and the roster events). The forwarding side
//! hands received audio to the conference through an [`Inlet`]: a bounded queue whose
//! `push` never blocks — when the media thread falls behind and the queue is full, the
//! packet is dropped and counted ([`Counters::inbound_dropped`]), so a slow mixer can never
//! stall a worker. The same holds the other way: a mixed packet the outlet has no room for
//! is dropped and counted ([`Counters::outbound_dropped`]), so a consumer that stops reading
//! cannot stall the mixer of anyone else on the thread.
//!
//! Each thread sleeps until the earliest `poll_timeout` of its conferences or the next
//! packet, drains its inbound queue in a batch, and runs the due mixes.
//!
//! Wired to the relay through a processor transport
//! ([`supernode_relay::core::processor`]): the [`Inlet`] is the transport's
//! [`ProcessorPort`] (participants are numbered by their relay transport's id:
//! `ParticipantId(leg as u32)`), and [`ConferenceHandle::attach_relay`] sends the mixes back
//! into the relay's worker through its [`ProcessorReturn`] instead of the [`Outlet`]. The
//! inlet's queue holds each packet inline, so a forwarding worker never allocates to hand
//! one over.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender, TrySendError, bounded, select};
use supernode_media::conference::{
    AudioConference, ConferenceConfig, ConferenceError, ConferenceEvent, ParticipantId,
};
use supernode_media::ids::Ssrc;
use supernode_relay::ProcessorReturn;
use supernode_relay::core::ProcessorPort;
use supernode_relay::core::transmit::MAX_DATAGRAM;

/// Capacity of each conference's inbound queue (packets). At 50 packets/s per participant
/// and 32 participants, about 160 ms of audio.
pub const INBOUND_CAPACITY: usize = 256;
/// Capacity of each conference's outlet (mixed packets and events).
pub const OUTBOUND_CAPACITY: usize = 256;

/// Counters of one conference on its media thread.
#[derive(Debug, Default)]
pub struct Counters {
    /// Packets the inlet dropped because the media thread was behind (queue full).
    pub inbound_dropped: AtomicU64,
    /// Packets the conference refused (garbage, over a participant's rate, unknown).
    pub refused: AtomicU64,
    /// Mixed packets the outlet had no room for.
    pub outbound_dropped: AtomicU64,
    /// Mixed packets delivered to the outlet.
    pub mixed_out: AtomicU64,
    /// 10 ms mixes skipped because the thread was late.
    pub ticks_skipped: AtomicU64,
}

/// One mixed RTP packet for one participant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mixed {
    /// Whose mix.
    pub to: ParticipantId,
    /// The RTP packet (not yet SRTP-protected).
    pub packet: Bytes,
}

/// What comes out of a conference.
#[derive(Debug)]
pub struct Outlet {
    /// Mixed packets.
    pub packets: Receiver<Mixed>,
    /// Roster events (speaking, active speaker).
    pub events: Receiver<ConferenceEvent>,
}

/// The forwarding side's way into a conference: never blocks.
#[derive(Debug, Clone)]
pub struct Inlet {
    key: u64,
    input: Sender<Inbound>,
    counters: Arc<Counters>,
}

impl Inlet {
    /// Queues one audio datagram (SRTP removed) from `from`; false if it was dropped
    /// (queue full: counted).
    pub fn push(&self, from: ParticipantId, datagram: Bytes) -> bool {
        self.push_slice(Instant::now(), from, &datagram)
    }

    /// [`Inlet::push`] of a borrowed datagram received at `at`, copied into the queue's
    /// slot (no allocation). A datagram larger than the slot is dropped and counted.
    pub fn push_slice(&self, at: Instant, from: ParticipantId, datagram: &[u8]) -> bool {
        if datagram.len() > MAX_DATAGRAM {
            self.counters
                .inbound_dropped
                .fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let mut data = [0u8; MAX_DATAGRAM];
        data[..datagram.len()].copy_from_slice(datagram);
        match self.input.try_send(Inbound {
            key: self.key,
            from,
            len: datagram.len() as u16,
            data,
            at,
        }) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counters
                    .inbound_dropped
                    .fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }
}

/// The inlet as a relay processor transport's far side: the source transport's id is the
/// participant's id.
impl ProcessorPort for Inlet {
    fn push(&self, now: Instant, from: supernode_relay::LegId, packet: &[u8]) -> bool {
        self.push_slice(now, participant_of(from), packet)
    }
}

/// The participant id of the relay transport `leg` (see the module docs).
pub fn participant_of(leg: supernode_relay::LegId) -> ParticipantId {
    ParticipantId(leg.0 as u32)
}

/// The control plane's handle of one conference. Dropping it closes the conference.
#[derive(Debug)]
pub struct ConferenceHandle {
    key: u64,
    control: Sender<Control>,
    counters: Arc<Counters>,
    inlet: Inlet,
}

/// Why a media-thread request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MediaThreadError {
    /// The conference refused (full, duplicate, codec).
    #[error(transparent)]
    Conference(#[from] ConferenceError),
    /// The media thread is gone.
    #[error("media thread stopped")]
    Stopped,
}

impl ConferenceHandle {
    /// Adds a participant whose mix goes out with SSRC `out_ssrc`.
    pub fn add(&self, id: ParticipantId, out_ssrc: Ssrc) -> Result<(), MediaThreadError> {
        let (reply, answer) = bounded(1);
        self.control
            .send(Control::Add {
                key: self.key,
                id,
                out_ssrc,
                reply,
            })
            .map_err(|_| MediaThreadError::Stopped)?;
        answer.recv().map_err(|_| MediaThreadError::Stopped)?
    }

    /// Removes a participant.
    pub fn remove(&self, id: ParticipantId) {
        let _ = self.control.send(Control::Remove { key: self.key, id });
    }

    /// Sends the mixes into the relay through `back` (the processor transport's return)
    /// from now on, instead of the [`Outlet`]'s packet queue.
    pub fn attach_relay(&self, back: ProcessorReturn) -> Result<(), MediaThreadError> {
        self.control
            .send(Control::Attach {
                key: self.key,
                back,
            })
            .map_err(|_| MediaThreadError::Stopped)
    }

    /// The inlet for the forwarding side.
    pub fn inlet(&self) -> Inlet {
        self.inlet.clone()
    }

    /// The conference's counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }
}

impl Drop for ConferenceHandle {
    fn drop(&mut self) {
        let _ = self.control.send(Control::Close { key: self.key });
    }
}

struct Inbound {
    key: u64,
    from: ParticipantId,
    len: u16,
    data: [u8; MAX_DATAGRAM],
    at: Instant,
}

enum Control {
    Open {
        key: u64,
        conference: Box<AudioConference>,
        packets: Sender<Mixed>,
        events: Sender<ConferenceEvent>,
        counters: Arc<Counters>,
    },
    Add {
        key: u64,
        id: ParticipantId,
        out_ssrc: Ssrc,
        reply: Sender<Result<(), MediaThreadError>>,
    },
    Remove {
        key: u64,
        id: ParticipantId,
    },
    Close {
        key: u64,
    },
    Attach {
        key: u64,
        back: ProcessorReturn,
    },
    Stop,
}

struct Thread {
    control: Sender<Control>,
    input: Sender<Inbound>,
    join: Option<JoinHandle<()>>,
}

/// The media threads of the host. Dropping it stops them.
pub struct MediaThreads {
    threads: Vec<Thread>,
    next: usize,
    next_key: u64,
}

impl MediaThreads {
    /// Spawns `n` media threads (at least one).
    pub fn start(n: usize) -> std::io::Result<Self> {
        let mut threads = Vec::new();
        for i in 0..n.max(1) {
            let (control, control_rx) = crossbeam_channel::unbounded();
            let (input, input_rx) = bounded(INBOUND_CAPACITY);
            let join = std::thread::Builder::new()
                .name(format!("media-{i}"))
                .spawn(move || run(control_rx, input_rx))?;
            threads.push(Thread {
                control,
                input,
                join: Some(join),
            });
        }
        Ok(Self {
            threads,
            next: 0,
            next_key: 1,
        })
    }

    /// Opens a conference on the next thread.
    pub fn open(
        &mut self,
        config: ConferenceConfig,
    ) -> Result<(ConferenceHandle, Outlet), MediaThreadError> {
        let conference = Box::new(AudioConference::new(config)?);
        let t = &self.threads[self.next % self.threads.len()];
        self.next += 1;
        let key = self.next_key;
        self.next_key += 1;
        let counters = Arc::new(Counters::default());
        let (packets, packets_rx) = bounded(OUTBOUND_CAPACITY);
        let (events, events_rx) = bounded(OUTBOUND_CAPACITY);
        t.control
            .send(Control::Open {
                key,
                conference,
                packets,
                events,
                counters: counters.clone(),
            })
            .map_err(|_| MediaThreadError::Stopped)?;
        let inlet = Inlet {
            key,
            input: t.input.clone(),
            counters: counters.clone(),
        };
        Ok((
            ConferenceHandle {
                key,
                control: t.control.clone(),
                counters,
                inlet,
            },
            Outlet {
                packets: packets_rx,
                events: events_rx,
            },
        ))
    }
}

impl Drop for MediaThreads {
    fn drop(&mut self) {
        for t in &mut self.threads {
            let _ = t.control.send(Control::Stop);
            if let Some(j) = t.join.take() {
                let _ = j.join();
            }
        }
    }
}

struct Hosted {
    conference: Box<AudioConference>,
    packets: Sender<Mixed>,
    events: Sender<ConferenceEvent>,
    counters: Arc<Counters>,
    skipped: u64,
    back: Option<ProcessorReturn>,
}

/// A media thread's loop.
fn run(control: Receiver<Control>, input: Receiver<Inbound>) {
    let mut hosted: HashMap<u64, Hosted> = HashMap::new();
    loop {
        let deadline = hosted
            .values()
            .filter_map(|h| h.conference.poll_timeout())
            .min();
        let wait = deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_millis(100));
        select! {
            recv(control) -> msg => match msg {
                Ok(Control::Stop) | Err(_) => return,
                Ok(msg) => handle_control(&mut hosted, msg),
            },
            recv(input) -> msg => {
                if let Ok(p) = msg {
                    deliver(&mut hosted, p);
                }
            },
            default(wait) => {},
        }
        // Drain what else is queued, in one batch.
        while let Ok(p) = input.try_recv() {
            deliver(&mut hosted, p);
        }
        let now = Instant::now();
        for h in hosted.values_mut() {
            while h.conference.poll_timeout().is_some_and(|t| t <= now) {
                h.conference.handle_timeout(now);
                let mut to_relay = false;
                while let Some(tx) = h.conference.poll_transmit() {
                    let ok = match &h.back {
                        Some(back) => {
                            to_relay = true;
                            back.push(tx.packet)
                        }
                        None => h
                            .packets
                            .try_send(Mixed {
                                to: tx.to,
                                packet: Bytes::copy_from_slice(tx.packet),
                            })
                            .is_ok(),
                    };
                    let c = if ok {
                        &h.counters.mixed_out
                    } else {
                        &h.counters.outbound_dropped
                    };
                    c.fetch_add(1, Ordering::Relaxed);
                }
                if let (true, Some(back)) = (to_relay, &h.back) {
                    back.wake();
                }
                while let Some(e) = h.conference.poll_event() {
                    let _ = h.events.try_send(e);
                }
            }
            let skipped = h.conference.stats().ticks_skipped;
            if skipped != h.skipped {
                h.counters
                    .ticks_skipped
                    .fetch_add(skipped - h.skipped, Ordering::Relaxed);
                h.skipped = skipped;
            }
        }
    }
}

fn handle_control(hosted: &mut HashMap<u64, Hosted>, msg: Control) {
    match msg {
        Control::Open {
            key,
            conference,
            packets,
            events,
            counters,
        } => {
            hosted.insert(
                key,
                Hosted {
                    conference,
                    packets,
                    events,
                    counters,
                    skipped: 0,
                    back: None,
                },
            );
        }
        Control::Add {
            key,
            id,
            out_ssrc,
            reply,
        } => {
            let r = match hosted.get_mut(&key) {
                Some(h) => h
                    .conference
                    .add(Instant::now(), id, out_ssrc)
                    .map_err(MediaThreadError::from),
                None => Err(MediaThreadError::Stopped),
            };
            let _ = reply.send(r);
        }
        Control::Remove { key, id } => {
            if let Some(h) = hosted.get_mut(&key) {
                h.conference.remove(id);
            }
        }
        Control::Close { key } => {
            hosted.remove(&key);
        }
        Control::Attach { key, back } => {
            if let Some(h) = hosted.get_mut(&key) {
                h.back = Some(back);
            }
        }
        Control::Stop => {}
    }
}

fn deliver(hosted: &mut HashMap<u64, Hosted>, p: Inbound) {
    if let Some(h) = hosted.get_mut(&p.key)
        && h.conference
            .handle_rtp(
                p.at,
                p.from,
                Bytes::copy_from_slice(&p.data[..usize::from(p.len)]),
            )
            .is_err()
    {
        h.counters.refused.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use supernode_media::codec::opus::{Channels, OpusConfig, OpusDecoder};
    use supernode_media::jitter::sim::encode_rtp;
    use supernode_media::packet::rtp::RtpPacket;
    use supernode_media::tone::{level_db, sine};

    /// A smoke test in real time (the mixing itself is tested on a virtual clock in
    /// `media/tests/conference_mcu.rs`): three tones through a media thread.
    #[test]
    fn a_conference_mixes_on_a_media_thread() {
        let mut threads = MediaThreads::start(1).unwrap();
        let (conf, outlet) = threads.open(ConferenceConfig::default()).unwrap();
        let freqs = [440.0, 750.0, 1230.0];
        let streams: Vec<Vec<Bytes>> = freqs
            .iter()
            .enumerate()
            .map(|(k, &f)| {
                conf.add(ParticipantId(k as u32), Ssrc(100 + k as u32))
                    .unwrap();
                encode_rtp(
                    &OpusConfig::default(),
                    &sine(f, 3000.0, 1.2),
                    Ssrc(k as u32),
                )
                .unwrap()
            })
            .collect();
        let inlet = conf.inlet();
        let start = Instant::now();
        let mut heard = Vec::new();
        let mut dec = OpusDecoder::new(48_000, Channels::Mono).unwrap();
        for i in 0..60 {
            for (k, s) in streams.iter().enumerate() {
                assert!(inlet.push(ParticipantId(k as u32), s[i].clone()));
            }
            let next = start + Duration::from_millis(20 * (i as u64 + 1));
            while let Ok(m) = outlet.packets.recv_deadline(next) {
                if m.to == ParticipantId(0) {
                    let p = RtpPacket::parse(&m.packet).unwrap();
                    assert_eq!(p.ssrc(), Ssrc(100));
                    let mut pcm = [0i16; 960];
                    dec.decode(p.payload(), &mut pcm).unwrap();
                    heard.extend_from_slice(&pcm);
                }
            }
        }
        assert!(heard.len() >= 40 * 960, "{} samples", heard.len());
        let tail = &heard[heard.len() - 20 * 960..];
        let (own, a, b) = (
            level_db(tail, freqs[0]),
            level_db(tail, freqs[1]),
            level_db(tail, freqs[2]),
        );
        assert!(a > -44.0 && b > -44.0, "{a:.1} {b:.1} dBFS");
        assert!(a.min(b) - own >= 30.0, "own {own:.1} vs {a:.1} {b:.1}");
        assert!(outlet.events.try_iter().count() > 0);
        assert_eq!(conf.counters().inbound_dropped.load(Ordering::Relaxed), 0);
        assert!(conf.counters().mixed_out.load(Ordering::Relaxed) >= 120);
        // After a leave, the mixes go to the other two only.
        conf.remove(ParticipantId(2));
        std::thread::sleep(Duration::from_millis(100));
        while outlet.packets.try_recv().is_ok() {}
        let after: Vec<ParticipantId> = (0..6)
            .filter_map(|_| outlet.packets.recv_timeout(Duration::from_secs(1)).ok())
            .map(|m| m.to)
            .collect();
        assert_eq!(after.len(), 6);
        assert!(!after.contains(&ParticipantId(2)), "{after:?}");
    }

    #[test]
    fn a_flood_is_dropped_and_counted_without_blocking_the_sender() {
        let mut threads = MediaThreads::start(1).unwrap();
        let (conf, _outlet) = threads.open(ConferenceConfig::default()).unwrap();
        conf.add(ParticipantId(1), Ssrc(1)).unwrap();
        let inlet = conf.inlet();
        let packet = encode_rtp(&OpusConfig::default(), &sine(500.0, 3000.0, 0.02), Ssrc(1))
            .unwrap()[0]
            .clone();
        let total = 100_000u64;
        let queued = (0..total)
            .filter(|_| inlet.push(ParticipantId(1), packet.clone()))
            .count() as u64;
        let c = conf.counters();
        let dropped = c.inbound_dropped.load(Ordering::Relaxed);
        assert_eq!(queued + dropped, total);
        assert!(dropped > 0, "the queue never filled");
        // Garbage is refused by the conference, counted.
        inlet.push(ParticipantId(1), Bytes::from_static(b"junk"));
        let deadline = Instant::now() + Duration::from_secs(5);
        while c.refused.load(Ordering::Relaxed) == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(c.refused.load(Ordering::Relaxed) > 0);
    }

    #[test]
    fn a_stuck_outlet_drops_and_counts_and_the_thread_mixes_on() {
        let mut threads = MediaThreads::start(1).unwrap();
        let (stuck, _stuck_out) = threads.open(ConferenceConfig::default()).unwrap();
        for k in 0..32 {
            stuck.add(ParticipantId(k), Ssrc(k)).unwrap();
        }
        let (live, live_out) = threads.open(ConferenceConfig::default()).unwrap();
        live.add(ParticipantId(1), Ssrc(1)).unwrap();
        live.add(ParticipantId(2), Ssrc(2)).unwrap();
        // 32 mixes every 20 ms: 256 slots fill in about 160 ms; nobody reads them.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut live_packets = 0;
        while stuck.counters().outbound_dropped.load(Ordering::Relaxed) == 0
            && Instant::now() < deadline
        {
            if live_out
                .packets
                .recv_timeout(Duration::from_millis(50))
                .is_ok()
            {
                live_packets += 1;
            }
        }
        assert!(stuck.counters().outbound_dropped.load(Ordering::Relaxed) > 0);
        // The other conference on the same thread kept getting its mixes.
        let more = live_out
            .packets
            .recv_timeout(Duration::from_secs(1))
            .is_ok();
        assert!(more && live_packets > 0);
        drop(stuck);
        drop(live);
        drop(threads);
    }
}
