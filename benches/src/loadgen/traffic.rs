//! The load: paced RTP streams from one sender socket, received on one receiver socket, in a
//! single busy-polling thread (batched with the relay's own `sendmmsg`/`recvmmsg` shell).
//! A stream may send from a loopback address of its own through the same socket
//! ([`Stream::src`], `IP_PKTINFO`): the `webrtc` row's browsers are told apart by 5-tuple.
//!
//! Every packet carries its send time (nanoseconds since the run's start) in an RFC 8285
//! one-byte header extension, which SRTP leaves in the clear: the receiver measures latency
//! without decrypting. Outputs are told apart by the forwarder port they come from, or, when
//! every output leaves one port (browser transports on the relay's shared port), by SSRC.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use supernode_relay::core::srtp::LegSrtp;
use supernode_relay::udp::{RecvBatch, SendBatch};

/// Kind of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 50 packets/s, one packet per 20 ms.
    Audio,
    /// 30 frames/s, a burst of packets per frame.
    Video,
}

/// One input stream: what the sender sends to the forwarder.
pub struct Stream {
    /// Where to send it.
    pub to: SocketAddr,
    /// SSRC.
    pub ssrc: u32,
    /// Audio or video.
    pub kind: Kind,
    /// Forwarder ports it comes out of (one per receiver).
    pub out_ports: Vec<u16>,
    /// Whether its outputs are told apart by SSRC rather than by port: they all leave the
    /// relay's shared port (the `webrtc` row's receiving browsers). One output per stream.
    pub out_by_ssrc: bool,
    /// SRTP context to protect with, for SRTP rows.
    pub srtp: Option<LegSrtp>,
    /// The local address it sends from, at the sender socket's port (the `webrtc` row: a
    /// browser transport on the relay's shared port is told apart by its 5-tuple); `None`:
    /// the sender socket's own. Its packets still go out batched with everyone else's.
    pub src: Option<IpAddr>,
    /// A socket bound at that address and port (the `webrtc` row's ICE and DTLS went through
    /// it), kept open so that what the relay sends back there (RTCP) is not refused.
    pub sock: Option<std::net::UdpSocket>,
    seq: u16,
    next_due_ns: u64,
}

impl Stream {
    /// A stream with a start phase of `phase_ns`.
    pub fn new(
        to: SocketAddr,
        ssrc: u32,
        kind: Kind,
        out_ports: Vec<u16>,
        srtp: Option<LegSrtp>,
        phase_ns: u64,
    ) -> Self {
        Self {
            to,
            ssrc,
            kind,
            out_ports,
            out_by_ssrc: false,
            srtp,
            src: None,
            sock: None,
            seq: 0,
            next_due_ns: phase_ns,
        }
    }
}

/// Shape of the load.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Audio payload bytes.
    pub audio_bytes: usize,
    /// Video packet payload bytes.
    pub video_bytes: usize,
    /// Video packets per frame.
    pub video_burst: u32,
}

impl Shape {
    /// Packets per second of one stream at rate multiplier 1.
    pub fn nominal_pps(&self, kind: Kind) -> f64 {
        match kind {
            Kind::Audio => 50.0,
            Kind::Video => 30.0 * f64::from(self.video_burst),
        }
    }
}

/// Result of one run.
#[derive(Debug, Clone, Default)]
pub struct StepResult {
    /// Rate multiplier.
    pub mult: f64,
    /// Packets the forwarder should have delivered (inputs × outputs).
    pub expected: u64,
    /// Packets delivered.
    pub received: u64,
    /// Delivered packets per second (over the sending window).
    pub pps: f64,
    /// Offered output packets per second (what the schedule asked for).
    pub offered_pps: f64,
    /// Loss, percent.
    pub loss_pct: f64,
    /// Packets that arrived after a later one of the same output.
    pub reordered: u64,
    /// Latency percentiles (µs): p50, p99, p99.9.
    pub latency_us: Option<(f64, f64, f64)>,
    /// Whether the sender fell behind its schedule (the load was not fully offered).
    pub sender_behind: bool,
    /// Packets from an earlier run that came out during this one (ignored).
    pub stale: u64,
    /// Packets that came out later than [`Load::late_after`] after they were sent: counted
    /// as lost (a backlog in the forwarder's socket buffers is not throughput).
    pub late: u64,
    /// CPU time the forwarder's threads used during the run, ns (see [`cpu_ns`]).
    pub fwd_cpu_ns: Option<u64>,
    /// Wall time of the run (sending and draining), ns.
    pub wall_ns: u64,
}

impl StepResult {
    /// The forwarder's CPU use during the run, percent of one core.
    pub fn cpu_pct(&self) -> Option<f64> {
        let cpu = self.fwd_cpu_ns?;
        (self.wall_ns > 0).then(|| 100.0 * cpu as f64 / self.wall_ns as f64)
    }

    /// The forwarder's CPU time per delivered packet, ns.
    pub fn cpu_ns_per_packet(&self) -> Option<f64> {
        let cpu = self.fwd_cpu_ns?;
        (self.received > 0).then(|| cpu as f64 / self.received as f64)
    }
}

/// CPU time (ns, from `/proc/PID/task/TID/schedstat`) of the threads of process `pid`
/// (`None`: this process) whose name starts with `prefix` (`""`: every thread). `None` when
/// the kernel has no schedstat (or no such thread).
pub fn cpu_ns(pid: Option<u32>, prefix: &str) -> Option<u64> {
    let dir = match pid {
        Some(p) => format!("/proc/{p}/task"),
        None => "/proc/self/task".to_owned(),
    };
    let mut total = None;
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        if !comm.starts_with(prefix) {
            continue;
        }
        let stat = std::fs::read_to_string(e.path().join("schedstat")).ok()?;
        let ns: u64 = stat.split_whitespace().next()?.parse().ok()?;
        *total.get_or_insert(0) += ns;
    }
    total
}

/// The load generator's sockets and buffers.
pub struct Load {
    /// Sender socket.
    pub tx: UdpSocket,
    /// Receiver socket.
    pub rx: UdpSocket,
    send: SendBatch,
    recv: RecvBatch,
    arena: Vec<u8>,
    lens: Vec<(Option<IpAddr>, SocketAddr, usize)>,
    /// Output index by forwarder source port.
    port_out: Vec<u32>,
    /// Output index by SSRC, when the streams' outputs are told apart that way.
    ssrc_out: Option<std::collections::HashMap<u32, u32>>,
    out_last_seq: Vec<Option<u16>>,
    track_order: bool,
    latencies: Vec<u32>,
    start: Instant,
    /// Where to write each measured packet of a latency run (`--latency-dump`), and the
    /// samples: (send time ns since start, latency ns, output index).
    dump: Option<(std::path::PathBuf, Vec<DumpSample>)>,
    /// Start of the current run (ns since loadgen started): packets sent before it are stale.
    run_start_ns: u64,
    /// Stale packets seen (sent in an earlier run).
    stale: u64,
    late: u64,
    /// A packet delivered more than this many ns after it was sent counts as lost (0: never).
    late_ns: u64,
}

/// One measured packet: send time (ns since loadgen started), latency (ns), output index.
type DumpSample = (u64, u32, u32);

const SLOT: usize = 1500;
const BATCH: usize = 64;

impl Load {
    /// Binds the sender and receiver on loopback.
    pub fn new() -> anyhow::Result<Self> {
        let tx = supernode_relay::udp::bind("127.0.0.1:0".parse()?, false)?;
        // The wildcard address, with SO_REUSEPORT: the `webrtc` row's receiving browsers are
        // loopback addresses of their own at this port (each does its handshake through a
        // socket bound there for a moment), and their media arrives here.
        let rx = supernode_relay::udp::bind("0.0.0.0:0".parse()?, true)?;
        supernode_relay::udp::force_buffer_sizes(&tx, 16 << 20);
        supernode_relay::udp::force_buffer_sizes(&rx, 32 << 20);
        Ok(Self {
            tx,
            rx,
            send: SendBatch::new(BATCH, false, true),
            recv: RecvBatch::new(BATCH, false),
            arena: vec![0u8; BATCH * SLOT],
            lens: Vec::with_capacity(BATCH),
            port_out: vec![u32::MAX; 65_536],
            ssrc_out: None,
            out_last_seq: Vec::new(),
            track_order: true,
            latencies: Vec::with_capacity(4 << 20),
            start: Instant::now(),
            dump: None,
            run_start_ns: 0,
            stale: 0,
            late: 0,
            late_ns: 0,
        })
    }

    /// Writes every measured packet of the next latency runs to `path` (one line each:
    /// send time in ns since loadgen started, latency in ns, output index), to see *when*
    /// slow packets happen: periodic work in the forwarder, or the machine stalling.
    pub fn dump_latencies_to(&mut self, path: std::path::PathBuf) {
        self.dump = Some((path, Vec::with_capacity(4 << 20)));
    }

    /// Counts a packet delivered more than `late` after it was sent as lost (`ZERO`: every
    /// packet that comes out counts). A real-time packet that late is useless to a jitter
    /// buffer, and without the bound a forwarder that falls behind would pass a short step
    /// on its socket buffers alone: hundreds of own-port sockets queue far more than one
    /// shared port.
    pub fn late_after(&mut self, late: Duration) {
        self.late_ns = late.as_nanos() as u64;
    }

    /// Where forwarders send to: the receiver's port on 127.0.0.1.
    pub fn rx_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(SocketAddr::new(
            IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            self.rx.local_addr()?.port(),
        ))
    }

    /// Registers the output ports of `streams`.
    pub fn map_outputs(&mut self, streams: &[Stream]) {
        self.port_out.iter_mut().for_each(|p| *p = u32::MAX);
        let mut n = 0u32;
        self.track_order = true;
        if !streams.is_empty() && streams.iter().all(|s| s.out_by_ssrc) {
            let map: std::collections::HashMap<u32, u32> =
                streams.iter().zip(0..).map(|(s, i)| (s.ssrc, i)).collect();
            self.out_last_seq = vec![None; map.len()];
            self.ssrc_out = Some(map);
            return;
        }
        self.ssrc_out = None;
        for s in streams {
            for &p in &s.out_ports {
                if self.port_out[p as usize] != u32::MAX {
                    // Several outputs from one port (the direct row): no per-output order.
                    self.track_order = false;
                }
                self.port_out[p as usize] = n;
                n += 1;
            }
        }
        self.out_last_seq = vec![None; n as usize];
    }

    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    fn write_packet(buf: &mut [u8], s: &Stream, ts_ns: u64, size: usize, marker: bool) -> usize {
        let pt = if s.kind == Kind::Audio {
            111
        } else {
            96 | if marker { 0x80 } else { 0 }
        };
        buf[0] = 0x90; // V=2, X=1
        buf[1] = pt;
        buf[2..4].copy_from_slice(&s.seq.to_be_bytes());
        let rtp_ts = (ts_ns / 1000 * if s.kind == Kind::Audio { 48 } else { 90 } / 1000) as u32;
        buf[4..8].copy_from_slice(&rtp_ts.to_be_bytes());
        buf[8..12].copy_from_slice(&s.ssrc.to_be_bytes());
        // One-byte extension block: id 1, 8 bytes of send time, 3 bytes padding.
        buf[12..16].copy_from_slice(&[0xBE, 0xDE, 0, 3]);
        buf[16] = 0x17;
        buf[17..25].copy_from_slice(&ts_ns.to_be_bytes());
        buf[25..28].fill(0);
        let end = 28 + size;
        buf[28..end].fill(0x5a);
        end
    }

    fn drain(&mut self, record: bool, received: &mut u64, reordered: &mut u64) {
        loop {
            let n = self.recv.recv(&self.rx).unwrap_or(0);
            if n == 0 {
                break;
            }
            let now = self.now_ns();
            for i in 0..n {
                let Some(d) = self.recv.get(i) else { continue };
                if d.data.len() < 25 || d.data[0] != 0x90 || d.data[12] != 0xBE {
                    continue;
                }
                let out = match &self.ssrc_out {
                    Some(map) => {
                        let ssrc =
                            u32::from_be_bytes([d.data[8], d.data[9], d.data[10], d.data[11]]);
                        map.get(&ssrc).copied().unwrap_or(u32::MAX)
                    }
                    None => self.port_out[d.src.port() as usize],
                };
                if out == u32::MAX {
                    continue;
                }
                let sent = u64::from_be_bytes(d.data[17..25].try_into().expect("8 bytes"));
                if sent < self.run_start_ns {
                    // Sent in an earlier run (a backlog left by an overloaded step, coming out
                    // of a port that the new forwarder reuses): neither received nor reordered.
                    self.stale += 1;
                    continue;
                }
                if self.late_ns > 0 && now.saturating_sub(sent) > self.late_ns {
                    self.late += 1;
                    continue;
                }
                *received += 1;
                let seq = u16::from_be_bytes([d.data[2], d.data[3]]);
                let last = &mut self.out_last_seq[out as usize];
                if self.track_order {
                    match *last {
                        Some(l) if (seq.wrapping_sub(l) as i16) < 0 => *reordered += 1,
                        _ => *last = Some(seq),
                    }
                }
                if record && self.latencies.len() < self.latencies.capacity() {
                    let lat = now.saturating_sub(sent).min(u64::from(u32::MAX)) as u32;
                    self.latencies.push(lat);
                    if let Some((_, d)) = self.dump.as_mut()
                        && d.len() < d.capacity()
                    {
                        d.push((sent, lat, out));
                    }
                }
            }
        }
        // Whatever comes back to the sender (reports, echoes) is discarded.
        while self.recv.recv(&self.tx).unwrap_or(0) > 0 {}
    }

    /// Runs the load at `mult` × nominal for `secs`, then drains for `drain`.
    pub fn run(
        &mut self,
        streams: &mut [Stream],
        shape: Shape,
        mult: f64,
        secs: f64,
        drain: Duration,
        record: bool,
    ) -> StepResult {
        self.latencies.clear();
        let (stale_before, late_before) = (self.stale, self.late);
        let t0 = self.now_ns();
        self.run_start_ns = t0;
        let dur_ns = (secs * 1e9) as u64;
        let mut offered = 0f64;
        for s in streams.iter_mut() {
            let interval = 1e9
                / (shape.nominal_pps(s.kind)
                    / if s.kind == Kind::Video {
                        f64::from(shape.video_burst)
                    } else {
                        1.0
                    }
                    * mult);
            s.next_due_ns = t0 + (s.next_due_ns % (interval as u64).max(1));
            offered += shape.nominal_pps(s.kind) * mult * s.out_ports.len() as f64;
        }
        let (mut expected, mut received, mut reordered) = (0u64, 0u64, 0u64);
        let behind = false;
        let end = t0 + dur_ns;
        loop {
            let now = self.now_ns();
            if now >= end {
                break;
            }
            self.lens.clear();
            for s in streams.iter_mut() {
                if s.next_due_ns > now || self.lens.len() + shape.video_burst as usize > BATCH {
                    continue;
                }
                let (burst, size, per_sec) = match s.kind {
                    Kind::Audio => (1, shape.audio_bytes, 50.0),
                    Kind::Video => (shape.video_burst, shape.video_bytes, 30.0),
                };
                for k in 0..burst {
                    let slot = self.lens.len();
                    let buf = &mut self.arena[slot * SLOT..(slot + 1) * SLOT];
                    let mut len = Self::write_packet(buf, s, now, size, k + 1 == burst);
                    if let Some(ctx) = s.srtp.as_mut() {
                        // In place: the slot has room for the tag.
                        match ctx.protect_rtp(buf, len) {
                            Ok(n) => len = n,
                            Err(_) => continue,
                        }
                    }
                    s.seq = s.seq.wrapping_add(1);
                    expected += s.out_ports.len() as u64;
                    self.lens.push((s.src, s.to, len));
                }
                let interval = (1e9 / (per_sec * mult)) as u64;
                s.next_due_ns += interval.max(1);
                if now > s.next_due_ns + 50_000_000 {
                    // More than 50 ms late: drop the backlog rather than burst it out.
                    s.next_due_ns = now;
                }
            }
            if !self.lens.is_empty() {
                let arena = &self.arena;
                self.send.send_from(
                    &self.tx,
                    self.lens
                        .iter()
                        .enumerate()
                        .map(|(i, &(src, to, len))| (src, to, &arena[i * SLOT..i * SLOT + len])),
                );
            }
            self.drain(record, &mut received, &mut reordered);
        }
        let sent_window = (self.now_ns() - t0) as f64 / 1e9;
        // The schedule was not kept if less than 95% of the offered load went out.
        let behind = behind || (expected as f64) < 0.95 * offered * sent_window;
        let drain_end = Instant::now() + drain;
        while Instant::now() < drain_end {
            self.drain(record, &mut received, &mut reordered);
        }
        let loss_pct = if expected == 0 {
            0.0
        } else {
            100.0 * expected.saturating_sub(received) as f64 / expected as f64
        };
        if let Some((path, d)) = self.dump.as_mut()
            && record
        {
            use std::io::Write;
            let written = std::fs::File::create(&*path).and_then(|f| {
                let mut w = std::io::BufWriter::new(f);
                for (s, l, o) in d.iter() {
                    writeln!(w, "{s} {l} {o}")?;
                }
                w.flush()
            });
            if let Err(e) = written {
                eprintln!("loadgen: cannot write {}: {e}", path.display());
            }
            d.clear();
        }
        let latency_us = if record && !self.latencies.is_empty() {
            self.latencies.sort_unstable();
            let q = |p: f64| {
                f64::from(self.latencies[((self.latencies.len() - 1) as f64 * p) as usize]) / 1000.0
            };
            Some((q(0.5), q(0.99), q(0.999)))
        } else {
            None
        };
        StepResult {
            mult,
            expected,
            received,
            pps: received as f64 / sent_window,
            offered_pps: offered,
            loss_pct,
            reordered,
            latency_us,
            sender_behind: behind,
            stale: self.stale - stale_before,
            late: self.late - late_before,
            fwd_cpu_ns: None,
            wall_ns: self.now_ns() - t0,
        }
    }
}
