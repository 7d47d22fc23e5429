//! `loadgen`: real UDP traffic on loopback through the relay, a bare `recvmmsg`/`sendmmsg`
//! forwarder (this machine's ceiling for user-space forwarding) and rtpengine (user space,
//! driven through its ng protocol), in one run; ramps each to the highest rate with loss
//! under 0.1%, measures added latency at half that rate, and prints a table, one JSON object
//! per target and the ratios.
//!
//! `cargo run --release -p supernode-benches --bin loadgen -- --help`

#[path = "../loadgen/bare.rs"]
mod bare;
#[path = "../loadgen/ng.rs"]
mod ng;
#[path = "../loadgen/soak.rs"]
mod soak;
#[path = "../loadgen/traffic.rs"]
mod traffic;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use supernode_relay::core::srtp::LegSrtp;
use supernode_relay::core::{CoreConfig, LegSrtpKeys, PeerMode, SrtpKey, SrtpProfile};
use supernode_relay::{LegRequest, Relay, RelayConfig};
use traffic::{Kind, Load, Shape, StepResult, Stream};

/// Packet-rate and latency benchmark of the relay against a bare forwarder and rtpengine.
#[derive(Parser, Debug, Clone)]
#[command(name = "loadgen", version, about, long_about = None)]
struct Args {
    /// Calls per target. Each call is one audio stream (50 packets/s) and one video stream
    /// (30 frames/s in bursts of --video-burst packets) from caller to callee.
    #[arg(long, default_value_t = 200)]
    calls: usize,
    /// Calls of the fan-out rows (each: one sender, --fanout receivers).
    #[arg(long, default_value_t = 20)]
    fanout_calls: usize,
    /// Receivers per fan-out call.
    #[arg(long, default_value_t = 10)]
    fanout: usize,
    /// Conferences of the `relay-conference` and `bare-conference` rows (video only: each
    /// participant's video to every other participant).
    #[arg(long, default_value_t = 2)]
    conferences: usize,
    /// Participants per conference of those rows (each video packet goes to size - 1).
    #[arg(long, default_value_t = 10)]
    conference_size: usize,
    /// Targets to run, comma separated: direct (no forwarder: loadgen's own ceiling and
    /// latency floor), relay, relay-srtp (AES_CM_128_HMAC_SHA1_80), relay-srtp-gcm
    /// (AEAD_AES_128_GCM, what browsers negotiate first), webrtc (calls between two browser
    /// transports on the shared port, ICE-lite and DTLS-SRTP with the relay's `DtlsClient` on
    /// loadgen's side), webrtc-srtp (a browser transport forwarding to an own-port SRTP leg,
    /// as a browser calling an edge client), bare, rtpengine, relay-fanout, bare-fanout; not
    /// in the default: relay-conference and bare-conference (a conference's video, SFU).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "direct,relay,relay-srtp,relay-srtp-gcm,webrtc,webrtc-srtp,bare,rtpengine,relay-fanout,bare-fanout"
    )]
    targets: Vec<String>,
    /// `ramp`: find the highest rate with loss under --max-loss; `fixed`: run at --mult only.
    #[arg(long, default_value = "ramp")]
    mode: String,
    /// Rate multiplier for `--mode fixed` (1 = nominal rates), and the ramp's first step.
    #[arg(long, default_value_t = 1.0)]
    mult: f64,
    /// Highest multiplier the ramp tries.
    #[arg(long, default_value_t = 1024.0)]
    max_mult: f64,
    /// Bisection steps after the ramp's first failure.
    #[arg(long, default_value_t = 3)]
    bisect: usize,
    /// Seconds per ramp step.
    #[arg(long, default_value_t = 2.0)]
    step_secs: f64,
    /// Seconds of the latency run at half the maximum rate.
    #[arg(long, default_value_t = 3.0)]
    latency_secs: f64,
    /// Further fractions of the maximum rate to measure latency at, besides one half (e.g.
    /// `0.25,0.1`); each adds a row `TARGET@F` under the table (not in the JSON).
    #[arg(long, value_delimiter = ',')]
    latency_also_at: Vec<f64>,
    /// Write every measured packet of the latency runs to this file (send time ns, latency
    /// ns, output index; the last latency run wins), to see when slow packets happen.
    #[arg(long)]
    latency_dump: Option<std::path::PathBuf>,
    /// A packet delivered more than this many milliseconds after it was sent counts as lost
    /// (0: every packet that comes out counts, as before). Without it a forwarder that falls
    /// behind passes a short ramp step on its socket buffers: hundreds of own-port sockets
    /// queue seconds of traffic, one shared port a tenth of one.
    #[arg(long, default_value_t = 100)]
    late_ms: u64,
    /// Kernel buffer of the relay's shared port, KiB (the `webrtc` rows; default: the
    /// relay's).
    #[arg(long)]
    shared_port_buffer_kb: Option<usize>,
    /// Soak mode: instead of the table, run each of `--targets` (give `relay,bare`) for this
    /// many seconds at `--soak-at` of the relay's maximum (found by a ramp first, unless
    /// `--mode fixed` gives the multiplier), sampling loss, resident memory, open
    /// descriptors and the forwarder's CPU every `--soak-every` seconds.
    #[arg(long, default_value_t = 0)]
    soak: u64,
    /// Fraction of the relay's maximum rate the soak runs at.
    #[arg(long, default_value_t = 0.8)]
    soak_at: f64,
    /// Seconds between two soak samples.
    #[arg(long, default_value_t = 10)]
    soak_every: u64,
    /// Seconds of the stall check before the runs: a thread spins on the forwarder's CPU and
    /// counts the gaps over 1 ms in which it did not run (the machine taking the CPU away:
    /// other processes, or the hypervisor). 0 skips it.
    #[arg(long, default_value_t = 2.0)]
    stall_check_secs: f64,
    /// Loss (percent) above which a step fails.
    #[arg(long, default_value_t = 0.1)]
    max_loss: f64,
    /// Audio payload bytes.
    #[arg(long, default_value_t = 160)]
    audio_bytes: usize,
    /// Video payload bytes per packet.
    #[arg(long, default_value_t = 1100)]
    video_bytes: usize,
    /// Video packets per frame.
    #[arg(long, default_value_t = 4)]
    video_burst: u32,
    /// Pin loadgen to CPU 0 and the forwarder (relay worker, bare thread, rtpengine) to CPU 1.
    #[arg(long)]
    pin: bool,
    /// Longest spin of the relay's workers, microseconds: polling without blocking after a
    /// busy round, shortened while spins run out (the relay's `RelayConfig::spin`, see
    /// `supernode_relay::idle`; 0: block when idle).
    #[arg(long, default_value_t = 200)]
    spin_us: u64,
    /// Microseconds the bare forwarder keeps polling without blocking after every round with
    /// traffic (a fixed spin, no policy); default: --spin-us. 0 gives the plain
    /// `epoll_wait` forwarder, the CPU baseline.
    #[arg(long)]
    bare_spin_us: Option<u64>,
    /// Datagrams per recvmmsg batch in the relay and the bare forwarder.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// rtpengine binary.
    #[arg(long, default_value = "/usr/bin/rtpengine")]
    rtpengine: String,
    /// rtpengine worker threads.
    #[arg(long, default_value_t = 1)]
    rtpengine_threads: usize,
    /// Bytes of the relay's per-leg retransmission cache (0 turns NACK answering off).
    #[arg(long, default_value_t = 32 * 1024)]
    relay_nack_cache: usize,
    /// Keep sent video in that cache from the start (`--relay-nack-always`), not from a
    /// leg's first NACK (the relay's default; loadgen's receiver never NACKs).
    #[arg(long)]
    relay_nack_always: bool,
    /// Interval of the relay's RTCP reports toward each leg, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    relay_report_ms: u64,
    /// First port of the range the forwarders use (relay, rtpengine, each their own part).
    #[arg(long, default_value_t = 20_000)]
    port_base: u16,
}

/// What keeps a forwarder alive during a target's run.
#[allow(dead_code)]
enum Forwarder {
    Relay(Box<Relay>),
    Bare(bare::Bare, Vec<UdpSocket>),
    Rtpengine(ng::Rtpengine),
    None,
}

impl Forwarder {
    /// How many times the relay's workers cut their shared port's buffer because its queue
    /// stood full (`supernode_relay::backlog`); 0 for the other forwarders.
    fn backlog_cuts(&self) -> u64 {
        match self {
            Forwarder::Relay(r) => r
                .worker_stats()
                .map(|w| w.iter().map(|w| w.backlog_cuts).sum())
                .unwrap_or(0),
            _ => 0,
        }
    }

    /// CPU time its threads have used so far, ns (relay workers, the bare forwarder's
    /// thread, every thread of the rtpengine process).
    fn cpu_ns(&self) -> Option<u64> {
        match self {
            Forwarder::Relay(_) => traffic::cpu_ns(None, "relay-worker"),
            Forwarder::Bare(..) => traffic::cpu_ns(None, "bare-forwarder"),
            Forwarder::Rtpengine(r) => traffic::cpu_ns(Some(r.pid()), ""),
            Forwarder::None => None,
        }
    }
}

struct Row {
    target: String,
    max: Option<StepResult>,
    latency: Option<StepResult>,
    /// Latency runs at the further fractions of `--latency-also-at`.
    more_latency: Vec<(f64, StepResult)>,
    note: String,
}

fn srtp_pair(seed: u32, profile: SrtpProfile) -> (LegSrtpKeys, LegSrtpKeys) {
    let b = seed.to_be_bytes();
    let salt = if profile == SrtpProfile::AeadAes128Gcm {
        12
    } else {
        14
    };
    let k = |x: u8| SrtpKey {
        profile,
        master_key: [b[0], b[1], b[2], b[3], x, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11].to_vec(),
        master_salt: vec![x; salt],
    };
    let (up, down) = (k(1), k(2));
    (
        LegSrtpKeys {
            inbound: up.clone(),
            outbound: down.clone(),
        },
        LegSrtpKeys {
            inbound: down,
            outbound: up,
        },
    )
}

fn setup_relay(
    args: &Args,
    load: &Load,
    fanout: usize,
    calls: usize,
    srtp: Option<SrtpProfile>,
) -> Result<(Forwarder, Vec<Stream>)> {
    let relay = Relay::start(RelayConfig {
        port_range: (args.port_base, args.port_base + 9_999),
        shared_port: None,
        workers: 1,
        batch: args.batch,
        pin_cpus: if args.pin { vec![1] } else { vec![] },
        spin: Duration::from_micros(args.spin_us),
        core: CoreConfig {
            idle_timeout: never_idle(args),
            nack_cache_bytes: args.relay_nack_cache,
            nack_cache_policy: nack_policy(args),
            report_interval: Duration::from_millis(args.relay_report_ms),
            ..RelayConfig::default().core
        },
        ..RelayConfig::default()
    })?;
    let rx = load.rx_addr()?;
    let mut streams = Vec::new();
    for c in 0..calls {
        for (m, kind) in [Kind::Audio, Kind::Video].into_iter().enumerate() {
            let ssrc = 0x1000_0000 + (c * 2 + m) as u32;
            let (relay_keys, client_keys) =
                srtp_pair(ssrc, srtp.unwrap_or(SrtpProfile::Aes128CmHmacSha1_80));
            let srtp = srtp.is_some();
            let clock = if kind == Kind::Audio { 48_000 } else { 90_000 };
            let mut reqs = vec![LegRequest {
                srtp: srtp.then(|| relay_keys.clone()),
                clock_rate: clock,
                ..LegRequest::latching()
            }];
            for _ in 0..fanout {
                reqs.push(LegRequest {
                    peer: PeerMode::Fixed(rx),
                    srtp: srtp.then(|| relay_keys.clone()),
                    clock_rate: clock,
                    ..LegRequest::latching()
                });
            }
            let (_s, legs) = relay.create_session(reqs)?;
            for l in &legs[1..] {
                relay.connect(legs[0].id, l.id)?;
            }
            let sender_ctx = if srtp {
                Some(LegSrtp::new(&client_keys).map_err(anyhow::Error::msg)?)
            } else {
                None
            };
            let outs = legs[1..].iter().map(|l| l.local.port()).collect();
            streams.push(Stream::new(
                legs[0].local,
                ssrc,
                kind,
                outs,
                sender_ctx,
                (c as u64 * 7_919_000) % 20_000_000,
            ));
        }
    }
    Ok((Forwarder::Relay(Box::new(relay)), streams))
}

/// A STUN binding request with USE-CANDIDATE toward a browser transport.
fn ice_check(relay_ufrag: &str, own_ufrag: &str, pwd: &str) -> Vec<u8> {
    use supernode_media::packet::stun::{Class, Method, StunAttr, StunWriter, TransactionId};
    let mut buf = vec![0u8; 256];
    let Ok(mut w) = StunWriter::new(
        &mut buf,
        Class::Request,
        Method::BINDING,
        TransactionId([7; 12]),
    ) else {
        return Vec::new();
    };
    let user = format!("{relay_ufrag}:{own_ufrag}");
    let ok = w.add(&StunAttr::Username(user.as_bytes())).is_ok()
        && w.add(&StunAttr::UseCandidate).is_ok()
        && w.add_message_integrity(pwd.as_bytes()).is_ok()
        && w.add_fingerprint().is_ok();
    let n = if ok { w.finish() } else { 0 };
    buf.truncate(n);
    buf
}

/// ICE and the DTLS handshake of one loadgen-side browser on `sock` with the relay's
/// browser transport at `relay`: its SRTP context.
fn browser_handshake(
    sock: &UdpSocket,
    relay: SocketAddr,
    ufrag: &str,
    own_ufrag: &str,
    pwd: &str,
    identity: &supernode_relay::core::DtlsIdentity,
) -> Result<LegSrtp> {
    use std::time::Instant;
    use supernode_media::packet::demux::{PacketKind, classify};
    use supernode_relay::core::dtls::DtlsClient;
    sock.set_read_timeout(Some(Duration::from_millis(5)))?;
    sock.send_to(&ice_check(ufrag, own_ufrag, pwd), relay)?;
    let mut dtls = DtlsClient::new(identity, Instant::now());
    let mut buf = vec![0u8; 2048];
    let deadline = Instant::now() + Duration::from_secs(10);
    while !dtls.is_connected() && Instant::now() < deadline {
        dtls.handle_timeout(Instant::now());
        for d in dtls.drain() {
            sock.send_to(&d, relay)?;
        }
        if let Ok((n, _)) = sock.recv_from(&mut buf)
            && classify(&buf[..n]) == PacketKind::Dtls
        {
            dtls.handle_datagram(Instant::now(), &buf[..n]);
        }
    }
    anyhow::ensure!(
        dtls.is_connected(),
        "DTLS handshake with the relay timed out"
    );
    for d in dtls.drain() {
        sock.send_to(&d, relay)?;
    }
    let keys = dtls.keys().context("no DTLS-SRTP keys")?;
    // Packets sent before the relay has processed the last flight are dropped as
    // `not_keyed`: the warm-up run of `fresh_forwarder` covers that moment.
    sock.set_read_timeout(None)?;
    LegSrtp::new(keys).map_err(anyhow::Error::msg)
}

/// The relay's retransmission cache policy for `args`.
fn nack_policy(args: &Args) -> supernode_relay::core::NackCachePolicy {
    use supernode_relay::core::NackCachePolicy;
    if args.relay_nack_always {
        NackCachePolicy::Always
    } else {
        NackCachePolicy::FromFirstNack
    }
}

/// The loopback address browser `n` of the `webrtc` row sends from (127.10.0.1 onwards).
fn browser_ip(n: usize) -> std::net::IpAddr {
    let k = n + 1;
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(
        127,
        10 + (k >> 16) as u8,
        (k >> 8) as u8,
        k as u8,
    ))
}

/// Where receiving browser `n` of the `webrtc` row is (127.11.0.1 onwards): a loopback address
/// of its own at the receiver socket's port, which is bound to the wildcard address.
fn receiving_browser_ip(n: usize) -> std::net::IpAddr {
    browser_ip((1 << 16) - 1 + n)
}

/// The `webrtc` and `webrtc-srtp` rows: per stream a browser transport (ICE-lite, DTLS-SRTP
/// with the relay's certificate; loadgen's side is `DtlsClient`, from a loopback address of its
/// own) on the worker's shared port. `webrtc` forwards it to a second browser transport on
/// that port (a call between two browsers: every packet in and out of the one shared
/// socket); `webrtc-srtp` to an own-port SRTP leg aimed at loadgen's receiver (a browser
/// calling an edge client).
fn setup_webrtc(
    args: &Args,
    load: &Load,
    calls: usize,
    to_browser: bool,
) -> Result<(Forwarder, Vec<Stream>)> {
    use supernode_relay::core::{BrowserSpec, DtlsIdentity, IceCredentials, Pt};
    let relay = Relay::start(RelayConfig {
        port_range: (args.port_base, args.port_base + 9_999),
        shared_port: Some(0),
        shared_port_buffer: args
            .shared_port_buffer_kb
            .map_or(supernode_relay::handle::SHARED_PORT_BUFFER, |k| k << 10),
        workers: 1,
        batch: args.batch,
        pin_cpus: if args.pin { vec![1] } else { vec![] },
        spin: Duration::from_micros(args.spin_us),
        core: CoreConfig {
            idle_timeout: never_idle(args),
            consent_timeout: never_idle(args),
            nack_cache_bytes: args.relay_nack_cache,
            nack_cache_policy: nack_policy(args),
            report_interval: Duration::from_millis(args.relay_report_ms),
            ..RelayConfig::default().core
        },
        ..RelayConfig::default()
    })?;
    let relay_id = std::sync::Arc::new(DtlsIdentity::generate().map_err(anyhow::Error::msg)?);
    let client_id = DtlsIdentity::generate().map_err(anyhow::Error::msg)?;
    let rx = load.rx_addr()?;
    let tx_port = load.tx.local_addr()?.port();
    let browser = |name: &str| {
        let (ufrag, own, pwd) = (
            format!("r{name}"),
            format!("b{name}"),
            format!("pwd-{name}-0123456789abcdefghij"),
        );
        let leg = LegRequest::browser(
            IceCredentials {
                local_ufrag: ufrag.clone(),
                local_pwd: pwd.clone(),
            },
            BrowserSpec {
                identity: relay_id.clone(),
                remote_fingerprint: client_id.fingerprint(),
                remote_ufrag: Some(own.clone()),
                twcc_extension_id: None,
                mid_extension_id: None,
                receive_mids: Vec::new(),
                simulcast: None,
            },
            vec![(Pt(111), 48_000), (Pt(96), 90_000)],
        );
        (leg, [ufrag, own, pwd])
    };
    let mut streams = Vec::new();
    for c in 0..calls {
        for (m, kind) in [Kind::Audio, Kind::Video].into_iter().enumerate() {
            let n = c * 2 + m;
            let ssrc = 0x1000_0000 + n as u32;
            let clock = if kind == Kind::Audio { 48_000 } else { 90_000 };
            let (sending, [ufrag, own, pwd]) = browser(&n.to_string());
            let (out, receiving) = if to_browser {
                let (leg, ice) = browser(&format!("{n}-in"));
                (leg, Some(ice))
            } else {
                let (out_keys, _) = srtp_pair(ssrc, SrtpProfile::AeadAes128Gcm);
                let leg = LegRequest {
                    peer: PeerMode::Fixed(rx),
                    srtp: Some(out_keys),
                    clock_rate: clock,
                    ..LegRequest::latching()
                };
                (leg, None)
            };
            let (_s, legs) = relay.create_session(vec![sending, out])?;
            relay.connect(legs[0].id, legs[1].id)?;
            if let Some([ufrag, own, pwd]) = receiving {
                // The receiving browser: its handshake through a socket bound at its own
                // address for the moment; closed after, what the relay sends there reaches
                // the wildcard-bound receiver socket.
                let ip = receiving_browser_ip(n);
                let sock = supernode_relay::udp::bind(SocketAddr::new(ip, rx.port()), true)
                    .with_context(|| format!("binding receiving browser {n} at {ip}"))?;
                browser_handshake(&sock, legs[1].local, &ufrag, &own, &pwd, &client_id)
                    .with_context(|| format!("receiving browser transport {n}"))?;
            }
            // Each browser is an address of its own at the sender socket's port: the
            // handshake goes through a socket bound there, the media through the sender
            // socket with that source address (batched like every other row's).
            let ip = browser_ip(n);
            let sock = supernode_relay::udp::bind(SocketAddr::new(ip, tx_port), false)
                .with_context(|| format!("binding browser {n} at {ip}:{tx_port}"))?;
            let srtp = browser_handshake(&sock, legs[0].local, &ufrag, &own, &pwd, &client_id)
                .with_context(|| format!("browser transport {n}"))?;
            let mut s = Stream::new(
                legs[0].local,
                ssrc,
                kind,
                vec![legs[1].local.port()],
                Some(srtp),
                (c as u64 * 7_919_000) % 20_000_000,
            );
            s.out_by_ssrc = to_browser;
            s.src = Some(ip);
            s.sock = Some(sock);
            streams.push(s);
        }
    }
    Ok((Forwarder::Relay(Box::new(relay)), streams))
}

/// `relay-conference`: `--conferences` sessions of `--conference-size` participants routed
/// as the host routes a conference's video (per-kind subscriptions, every participant's
/// video to every other one, each a stream of its own with its own rewrite). Each
/// participant is two legs here, one that loadgen's sender latches and one toward its
/// receiver, so that one sending and one receiving socket drive it; the relay's work per
/// packet is the conference's (one rewrite, protect and send per other participant).
fn setup_relay_conference(args: &Args, load: &Load) -> Result<(Forwarder, Vec<Stream>)> {
    use supernode_relay::core::StreamKind;
    let relay = Relay::start(RelayConfig {
        port_range: (args.port_base, args.port_base + 9_999),
        shared_port: None,
        workers: 1,
        batch: args.batch,
        pin_cpus: if args.pin { vec![1] } else { vec![] },
        spin: Duration::from_micros(args.spin_us),
        core: CoreConfig {
            idle_timeout: Duration::from_secs(3600),
            nack_cache_bytes: args.relay_nack_cache,
            nack_cache_policy: nack_policy(args),
            report_interval: Duration::from_millis(args.relay_report_ms),
            ..RelayConfig::default().core
        },
        ..RelayConfig::default()
    })?;
    let rx = load.rx_addr()?;
    let n = args.conference_size.max(2);
    let mut streams = Vec::new();
    for c in 0..args.conferences {
        let mut reqs = Vec::new();
        for _ in 0..n {
            reqs.push(LegRequest {
                clock_rate: 90_000,
                ..LegRequest::latching()
            });
            reqs.push(LegRequest {
                peer: PeerMode::Fixed(rx),
                clock_rate: 90_000,
                ..LegRequest::latching()
            });
        }
        let (_s, legs) = relay.create_session(reqs)?;
        for p in 0..n {
            for q in (0..n).filter(|&q| q != p) {
                relay.connect_kind(legs[2 * p].id, legs[2 * q + 1].id, StreamKind::Video)?;
            }
        }
        for p in 0..n {
            let outs = (0..n)
                .filter(|&q| q != p)
                .map(|q| legs[2 * q + 1].local.port())
                .collect();
            streams.push(Stream::new(
                legs[2 * p].local,
                0x5000_0000 + (c * n + p) as u32,
                Kind::Video,
                outs,
                None,
                ((c * n + p) as u64 * 7_919_000) % 20_000_000,
            ));
        }
    }
    Ok((Forwarder::Relay(Box::new(relay)), streams))
}

/// `bare-conference`: the bare forwarder doing the same fan-out as `relay-conference` (each
/// participant's input to the other participants' outputs).
fn setup_bare_conference(args: &Args, load: &Load) -> Result<(Forwarder, Vec<Stream>)> {
    let rx = load.rx_addr()?;
    let any: SocketAddr = "127.0.0.1:0".parse()?;
    let n = args.conference_size.max(2);
    let mut routes = Vec::new();
    let mut outs = Vec::new();
    let mut streams = Vec::new();
    for c in 0..args.conferences {
        let first = outs.len();
        let mut ports = Vec::new();
        for _ in 0..n {
            let o = supernode_relay::udp::bind(any, false)?;
            ports.push(o.local_addr()?.port());
            outs.push(o);
        }
        for p in 0..n {
            let input = supernode_relay::udp::bind(any, false)?;
            let to = input.local_addr()?;
            let others: Vec<usize> = (0..n).filter(|&q| q != p).collect();
            routes.push(bare::Route {
                input,
                outputs: others.iter().map(|&q| (first + q, rx)).collect(),
            });
            streams.push(Stream::new(
                to,
                0x6000_0000 + (c * n + p) as u32,
                Kind::Video,
                others.iter().map(|&q| ports[q]).collect(),
                None,
                ((c * n + p) as u64 * 7_919_000) % 20_000_000,
            ));
        }
    }
    start_bare(args, routes, outs, streams)
}

/// Starts the bare forwarder over `routes`, keeping a clone of each output socket open for
/// the run.
fn start_bare(
    args: &Args,
    routes: Vec<bare::Route>,
    outs: Vec<UdpSocket>,
    streams: Vec<Stream>,
) -> Result<(Forwarder, Vec<Stream>)> {
    let keep: Vec<UdpSocket> = outs
        .iter()
        .map(|s| s.try_clone())
        .collect::<std::io::Result<_>>()?;
    let b = bare::Bare::start(
        routes,
        outs,
        args.batch,
        args.pin.then_some(1),
        Duration::from_micros(args.bare_spin_us.unwrap_or(args.spin_us)),
    )?;
    Ok((Forwarder::Bare(b, keep), streams))
}

fn setup_bare(
    args: &Args,
    load: &Load,
    fanout: usize,
    calls: usize,
) -> Result<(Forwarder, Vec<Stream>)> {
    let rx = load.rx_addr()?;
    let mut routes = Vec::new();
    let mut outs = Vec::new();
    let mut streams = Vec::new();
    let any: SocketAddr = "127.0.0.1:0".parse()?;
    for c in 0..calls {
        for (m, kind) in [Kind::Audio, Kind::Video].into_iter().enumerate() {
            let input = supernode_relay::udp::bind(any, false)?;
            let to = input.local_addr()?;
            let mut route_outs = Vec::new();
            let mut ports = Vec::new();
            for _ in 0..fanout {
                let o = supernode_relay::udp::bind(any, false)?;
                ports.push(o.local_addr()?.port());
                route_outs.push((outs.len(), rx));
                outs.push(o);
            }
            routes.push(bare::Route {
                input,
                outputs: route_outs,
            });
            let ssrc = 0x2000_0000 + (c * 2 + m) as u32;
            streams.push(Stream::new(
                to,
                ssrc,
                kind,
                ports,
                None,
                (c as u64 * 7_919_000) % 20_000_000,
            ));
        }
    }
    start_bare(args, routes, outs, streams)
}

fn setup_rtpengine(args: &Args, load: &Load, calls: usize) -> Result<(Forwarder, Vec<Stream>)> {
    let ng_port = args.port_base.wrapping_add(19_990);
    let min = args.port_base + 10_000;
    let mut eng = ng::Rtpengine::start(
        &args.rtpengine,
        ng_port,
        min,
        min + 9_000,
        args.rtpengine_threads,
        args.pin.then_some(1),
    )?;
    let (tx, rx) = (load.tx.local_addr()?, load.rx_addr()?);
    let mut streams = Vec::new();
    for c in 0..calls {
        let ports = eng.call(&format!("loadgen-{c}"), tx, rx, &["audio", "video"])?;
        for (m, kind) in [Kind::Audio, Kind::Video].into_iter().enumerate() {
            let (send_to, recv_from) = ports.media[m];
            let ssrc = 0x3000_0000 + (c * 2 + m) as u32;
            streams.push(Stream::new(
                SocketAddr::new(tx.ip(), send_to),
                ssrc,
                kind,
                vec![recv_from],
                None,
                (c as u64 * 7_919_000) % 20_000_000,
            ));
        }
    }
    Ok((Forwarder::Rtpengine(eng), streams))
}

/// No forwarder: the sender sends straight to the receiver. The loadgen's own ceiling and
/// latency floor (kernel loopback plus the loadgen loop), to read the other rows against.
fn setup_direct(load: &Load, calls: usize) -> Result<(Forwarder, Vec<Stream>)> {
    let (tx, rx) = (load.tx.local_addr()?, load.rx_addr()?);
    let mut streams = Vec::new();
    for c in 0..calls {
        for (m, kind) in [Kind::Audio, Kind::Video].into_iter().enumerate() {
            let ssrc = 0x4000_0000 + (c * 2 + m) as u32;
            streams.push(Stream::new(
                rx,
                ssrc,
                kind,
                vec![tx.port()],
                None,
                (c as u64 * 7_919_000) % 20_000_000,
            ));
        }
    }
    Ok((Forwarder::None, streams))
}

fn setup(args: &Args, load: &Load, target: &str) -> Result<(Forwarder, Vec<Stream>)> {
    match target {
        "relay" => setup_relay(args, load, 1, args.calls, None),
        "relay-srtp" => setup_relay(
            args,
            load,
            1,
            args.calls,
            Some(SrtpProfile::Aes128CmHmacSha1_80),
        ),
        "relay-srtp-gcm" => {
            setup_relay(args, load, 1, args.calls, Some(SrtpProfile::AeadAes128Gcm))
        }
        "webrtc" => setup_webrtc(args, load, args.calls, true),
        "webrtc-srtp" => setup_webrtc(args, load, args.calls, false),
        "relay-fanout" => setup_relay(args, load, args.fanout, args.fanout_calls, None),
        "bare" => setup_bare(args, load, 1, args.calls),
        "bare-fanout" => setup_bare(args, load, args.fanout, args.fanout_calls),
        "relay-conference" => setup_relay_conference(args, load),
        "bare-conference" => setup_bare_conference(args, load),
        "rtpengine" => setup_rtpengine(args, load, args.calls),
        "direct" => setup_direct(load, args.calls),
        other => Err(anyhow::anyhow!("unknown target {other}")),
    }
}

fn cpu_delta(before: Option<u64>, after: Option<u64>) -> Option<u64> {
    Some(after?.saturating_sub(before?))
}

/// "63% 512 ns/pkt": the forwarder's CPU over a run, and per delivered packet.
fn cpu_text(r: &StepResult) -> String {
    match (r.cpu_pct(), r.cpu_ns_per_packet()) {
        (Some(p), Some(n)) => format!("{p:.0}% {n:.0} ns/pkt"),
        _ => "-".into(),
    }
}

fn ok(r: &StepResult, args: &Args) -> bool {
    r.loss_pct < args.max_loss && r.received > 0
}

/// A new forwarder of `target` with its calls, warmed up: the relay's legs latched,
/// rtpengine's peers learnt.
/// The relay's idle (and consent) timeout in loadgen: longer than any run, soak included.
/// The callee side of a call only receives, so with the production timeout its transport
/// would be freed as idle in the middle of a long run.
fn never_idle(args: &Args) -> Duration {
    Duration::from_secs(3600 + args.soak.saturating_mul(2))
}

fn fresh_forwarder(
    args: &Args,
    load: &mut Load,
    target: &str,
    shape: Shape,
) -> Result<(Forwarder, Vec<Stream>)> {
    let (fwd, mut streams) = setup(args, load, target)?;
    load.map_outputs(&streams);
    let _ = load.run(
        &mut streams,
        shape,
        0.2,
        0.5,
        Duration::from_millis(200),
        false,
    );
    Ok((fwd, streams))
}

fn run_target(args: &Args, load: &mut Load, target: &str, shape: Shape) -> Row {
    let mut row = Row {
        target: target.to_string(),
        max: None,
        latency: None,
        more_latency: Vec::new(),
        note: String::new(),
    };
    // Every step runs against a fresh forwarder (new process or threads, new calls), so that
    // an overloaded step cannot leave state behind that spoils the next one.
    let fresh = |load: &mut Load| fresh_forwarder(args, load, target, shape);
    match fresh(load) {
        Ok((fwd, _)) => drop(fwd),
        Err(e) => {
            row.note = format!("not measured: {e:#}");
            eprintln!("loadgen: {target}: {}", row.note);
            return row;
        }
    }
    let step = |load: &mut Load, m: f64| {
        let Ok((fwd, mut streams)) = fresh(load) else {
            return StepResult {
                mult: m,
                ..StepResult::default()
            };
        };
        let cpu_before = fwd.cpu_ns();
        let mut r = load.run(
            &mut streams,
            shape,
            m,
            args.step_secs,
            Duration::from_millis(300),
            false,
        );
        r.fwd_cpu_ns = cpu_delta(cpu_before, fwd.cpu_ns());
        let cuts = fwd.backlog_cuts();
        drop(fwd);
        eprintln!(
            "loadgen: {target:13} x{:<8.2} offered {:>9.0} pps  delivered {:>9.0} pps ({} of {})  loss {:>7.3}%  late {}  reordered {}  stale {}  CPU {}{}{}",
            m,
            r.offered_pps,
            r.pps,
            r.received,
            r.expected,
            r.loss_pct,
            r.late,
            r.reordered,
            r.stale,
            cpu_text(&r),
            if r.sender_behind {
                "  (sender behind)"
            } else {
                ""
            },
            if cuts > 0 {
                format!("  shared queue cut {cuts}x")
            } else {
                String::new()
            }
        );
        r
    };
    let mut best: Option<StepResult> = None;
    let better = |best: &mut Option<StepResult>, r: StepResult| {
        if best.as_ref().is_none_or(|b| r.pps > b.pps) {
            *best = Some(r);
        }
    };
    if args.mode == "fixed" {
        let r = step(load, args.mult);
        if ok(&r, args) {
            best = Some(r);
        } else {
            row.note = format!("loss {:.3}% at x{}", r.loss_pct, args.mult);
            row.max = Some(r);
        }
    } else {
        // 1. Find a passing rate (halving from the first multiplier), 2. double until a step
        // fails, 3. bisect between the last pass and the first failure.
        let passes = |r: &StepResult| ok(r, args) && !r.sender_behind;
        let mut m = args.mult;
        let mut hi: Option<f64> = None;
        // Highest multiplier whose step passed with the load fully offered.
        let mut last_pass: Option<f64> = None;
        loop {
            let r = step(load, m);
            if passes(&r) {
                last_pass = Some(m);
                better(&mut best, r);
                break;
            }
            if ok(&r, args) {
                // No loss but the sender could not offer the load: that is a measurement too.
                better(&mut best, r);
                row.note = "loadgen's sender was the limit".into();
                break;
            }
            hi = Some(m);
            m /= 2.0;
            if m < args.mult / 64.0 {
                break;
            }
        }
        if row.note.is_empty() && best.is_some() && hi.is_none() {
            loop {
                if m >= args.max_mult {
                    break;
                }
                m *= 2.0;
                let r = step(load, m);
                let (good, behind) = (ok(&r, args), r.sender_behind);
                if good && !behind {
                    last_pass = Some(m);
                }
                if good {
                    better(&mut best, r);
                }
                if !good || behind {
                    hi = Some(m);
                    if good {
                        row.note = "loadgen's sender was the limit".into();
                    }
                    break;
                }
            }
        }
        if let (Some(mut hi), Some(mut lo)) = (hi, last_pass) {
            for _ in 0..args.bisect {
                let mid = (lo + hi) / 2.0;
                let r = step(load, mid);
                if passes(&r) {
                    lo = mid;
                    better(&mut best, r);
                } else {
                    if ok(&r, args) {
                        better(&mut best, r);
                    }
                    hi = mid;
                }
            }
        }
    }
    if let Some(b) = &best {
        row.max = best.clone();
        let fractions = std::iter::once(0.5).chain(args.latency_also_at.iter().copied());
        // The multiplier that offers the highest rate delivered (when the sender fell behind
        // at the best step, its multiplier offered more than went through).
        let max_mult = b.mult * (b.pps / b.offered_pps).min(1.0);
        for (i, frac) in fractions.enumerate() {
            let m = max_mult * frac;
            let Ok((fwd, mut streams)) = fresh(load) else {
                return row;
            };
            let cpu_before = fwd.cpu_ns();
            let mut r = load.run(
                &mut streams,
                shape,
                m,
                args.latency_secs,
                Duration::from_millis(300),
                true,
            );
            r.fwd_cpu_ns = cpu_delta(cpu_before, fwd.cpu_ns());
            drop(fwd);
            eprintln!(
                "loadgen: {target:13} latency run at x{m:.2} ({:.0}% of max): {:.0} pps, loss {:.3}%, p50/p99/p99.9 {:?} us, forwarder CPU {}",
                frac * 100.0,
                r.pps,
                r.loss_pct,
                r.latency_us,
                cpu_text(&r)
            );
            if i == 0 {
                row.latency = Some(r);
            } else {
                row.more_latency.push((frac, r));
            }
        }
    } else if row.note.is_empty() {
        row.note = "no step passed the loss limit".into();
    }
    row
}

fn main() -> Result<()> {
    let args = Args::parse();
    // Counted before pinning (a pinned thread sees one CPU).
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    if args.pin {
        supernode_relay::udp::pin_current_thread(0);
    }
    let shape = Shape {
        audio_bytes: args.audio_bytes,
        video_bytes: args.video_bytes,
        video_burst: args.video_burst,
    };
    let loadavg = || {
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    eprintln!("loadgen: {cpus} CPUs, load average at start: {}", loadavg());
    let stalls = (args.stall_check_secs > 0.0)
        .then(|| stall_check(args.pin.then_some(1), args.stall_check_secs));
    if let Some(s) = &stalls {
        eprintln!("loadgen: {s}");
    }
    let mut load = Load::new().context("binding loadgen sockets")?;
    load.late_after(Duration::from_millis(args.late_ms));
    if let Some(p) = &args.latency_dump {
        load.dump_latencies_to(p.clone());
    }
    if args.soak > 0 {
        return soak::run(&args, &mut load, shape);
    }
    let mut rows = Vec::new();
    for t in &args.targets {
        rows.push(run_target(&args, &mut load, t, shape));
    }
    let find = |name: &str| {
        rows.iter()
            .find(|r| r.target == name)
            .and_then(|r| r.max.as_ref())
            .map(|m| m.pps)
    };
    let (relay, bare, rtpe) = (find("relay"), find("bare"), find("rtpengine"));
    println!(
        "loadgen: {} calls (fan-out rows: {} calls x 1:{}), pinned: {}, load average at end: {}",
        args.calls,
        args.fanout_calls,
        args.fanout,
        args.pin,
        loadavg()
    );
    if let Some(s) = &stalls {
        println!("loadgen: {s}");
    }
    println!(
        "{:<14} {:>12} {:>8} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8} {:>6} {:>7}  note",
        "target",
        "max_pps",
        "loss%",
        "reorder",
        "p50_us",
        "p99_us",
        "p99.9_us",
        "vs_bare",
        "vs_rtpe",
        "vs_relay",
        "cpu%",
        "ns/pkt"
    );
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    let fmt_opt = |v: Option<f64>, prec: usize| {
        v.map(|x| format!("{x:.prec$}"))
            .unwrap_or_else(|| "-".into())
    };
    for r in &rows {
        let max = r.max.as_ref().map(|m| m.pps);
        let lat = r.latency.as_ref().and_then(|l| l.latency_us);
        let base_bare = if r.target.ends_with("fanout") {
            find("bare-fanout")
        } else if r.target.ends_with("conference") {
            find("bare-conference")
        } else {
            bare
        };
        println!(
            "{:<14} {:>12} {:>8} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8} {:>6} {:>7}  {}",
            r.target,
            fmt_opt(max, 0),
            fmt_opt(r.max.as_ref().map(|m| m.loss_pct), 3),
            r.max
                .as_ref()
                .map(|m| m.reordered.to_string())
                .unwrap_or_else(|| "-".into()),
            fmt_opt(lat.map(|l| l.0), 1),
            fmt_opt(lat.map(|l| l.1), 1),
            fmt_opt(lat.map(|l| l.2), 1),
            fmt_opt(ratio(max, base_bare), 2),
            fmt_opt(
                if r.target.ends_with("fanout") || r.target.ends_with("conference") {
                    None
                } else {
                    ratio(max, rtpe)
                },
                2
            ),
            fmt_opt(
                if r.target.starts_with("relay-srtp") || r.target.starts_with("webrtc") {
                    ratio(max, relay)
                } else {
                    None
                },
                2
            ),
            fmt_opt(r.max.as_ref().and_then(StepResult::cpu_pct), 0),
            fmt_opt(r.max.as_ref().and_then(StepResult::cpu_ns_per_packet), 0),
            r.note
        );
    }
    for r in &rows {
        for (frac, l) in &r.more_latency {
            let lat = l.latency_us;
            println!(
                "{:<14} {:>12} {:>8} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8} {:>6} {:>7}  latency at {:.0}% of max",
                format!("{}@{frac}", r.target),
                format!("{:.0}", l.pps),
                format!("{:.3}", l.loss_pct),
                l.reordered,
                fmt_opt(lat.map(|l| l.0), 1),
                fmt_opt(lat.map(|l| l.1), 1),
                fmt_opt(lat.map(|l| l.2), 1),
                "-",
                "-",
                "-",
                fmt_opt(l.cpu_pct(), 0),
                fmt_opt(l.cpu_ns_per_packet(), 0),
                frac * 100.0
            );
        }
    }
    let json_num = |v: Option<f64>| {
        v.map(|x| format!("{x:.3}"))
            .unwrap_or_else(|| "null".into())
    };
    for r in &rows {
        let lat = r.latency.as_ref().and_then(|l| l.latency_us);
        println!(
            "{{\"target\": \"{}\", \"max_pps\": {}, \"p50_us\": {}, \"p99_us\": {}, \"p999_us\": {}, \"loss_pct\": {}, \"cpu_pct_at_max\": {}, \"cpu_ns_per_pkt_at_half\": {}}}",
            r.target,
            r.max
                .as_ref()
                .map(|m| format!("{:.0}", m.pps))
                .unwrap_or_else(|| "null".into()),
            json_num(lat.map(|l| l.0)),
            json_num(lat.map(|l| l.1)),
            json_num(lat.map(|l| l.2)),
            json_num(r.max.as_ref().map(|m| m.loss_pct)),
            json_num(r.max.as_ref().and_then(StepResult::cpu_pct)),
            json_num(r.latency.as_ref().and_then(StepResult::cpu_ns_per_packet)),
        );
    }
    println!(
        "{{\"ratio_vs_bare\": {}, \"ratio_vs_rtpengine\": {}}}",
        json_num(ratio(relay, bare)),
        json_num(ratio(relay, rtpe))
    );
    Ok(())
}

/// Spins on `cpu` for `secs`, while a second thread spins on CPU 0 as loadgen's own loop
/// does, and reports the gaps over 1 ms between two consecutive clock reads on `cpu`: time
/// the machine took the CPU away (other processes, or the hypervisor descheduling a vCPU).
/// A forwarder cannot forward while its CPU is gone, so these gaps bound the latency tail
/// any forwarder can show here.
fn stall_check(cpu: Option<usize>, secs: f64) -> String {
    let end = std::time::Instant::now() + Duration::from_secs_f64(secs);
    let companion = std::thread::spawn(move || {
        supernode_relay::udp::pin_current_thread(0);
        while std::time::Instant::now() < end {
            std::hint::spin_loop();
        }
    });
    let measure = std::thread::spawn(move || {
        if let Some(c) = cpu {
            supernode_relay::udp::pin_current_thread(c);
        }
        let mut last = std::time::Instant::now();
        let (mut count, mut total, mut max) = (0u64, Duration::ZERO, Duration::ZERO);
        while last < end {
            let now = std::time::Instant::now();
            let gap = now - last;
            if gap > Duration::from_millis(1) {
                count += 1;
                total += gap;
                max = max.max(gap);
            }
            last = now;
        }
        (count, total, max)
    });
    let (count, total, max) = measure.join().unwrap_or_default();
    let _ = companion.join();
    format!(
        "stall check (CPU {} spinning, CPU 0 busy too): {count} gaps over 1 ms in {secs:.1} s ({:.1} per s), {:.1} ms in all ({:.2}% of the time), longest {:.1} ms",
        cpu.map_or_else(|| "any".to_string(), |c| c.to_string()),
        count as f64 / secs,
        total.as_secs_f64() * 1000.0,
        total.as_secs_f64() / secs * 100.0,
        max.as_secs_f64() * 1000.0
    )
}
