//! The I/O shell: runs a [`MediaEngine`] on one UDP socket for a duration.
//!
//! [`run_media`] reads the wall clock and `Instant::now()` once to anchor the engine's media
//! clock, then loops on the calling thread: send what the engine has queued, wait for a
//! datagram (from the receive thread) until the engine's next timeout, hand it in, run the
//! timers. It returns when the duration is over or the stop flag is raised (a hangup from
//! signaling), with the engine's [`CallOutcome`].

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::EdgeError;
use crate::engine::{CallOutcome, EngineConfig, MediaEngine, VideoSink};

/// How long and under what conditions [`run_media`] runs.
pub struct MediaOptions {
    /// How long the media runs.
    pub duration: Duration,
    /// Raised by someone else to end the media early.
    pub stop: Arc<AtomicBool>,
    /// Where decoded video pictures go.
    pub video_sink: Option<Box<dyn VideoSink>>,
}

impl std::fmt::Debug for MediaOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaOptions")
            .field("duration", &self.duration)
            .finish_non_exhaustive()
    }
}

impl MediaOptions {
    /// Run for `duration`, with a fresh stop flag and no video sink.
    pub fn for_duration(duration: Duration) -> Self {
        Self {
            duration,
            stop: Arc::new(AtomicBool::new(false)),
            video_sink: None,
        }
    }
}

/// Runs one call's media on `socket` (bound by the caller; its peer addresses are in
/// `cfg`). Sets `cfg.wall_at_start` from the system clock.
///
/// A second thread owns the socket's receive side: it stamps every datagram with its
/// arrival instant and passes it on through a bounded channel, so that arrival times
/// (jitter, RTT) do not include the time the engine spends encoding a picture, and the
/// socket is drained even while it does.
pub fn run_media(
    socket: UdpSocket,
    mut cfg: EngineConfig,
    opts: MediaOptions,
) -> Result<CallOutcome, EdgeError> {
    // Room for a few hundred milliseconds of video should the machine be busy.
    let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(4 << 20);
    let start = Instant::now();
    cfg.wall_at_start = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| EdgeError::Config("system clock before 1970".into()))?;
    if cfg.ssrc_seed == 0 {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        cfg.ssrc_seed = (cfg.wall_at_start.as_nanos() as u64)
            ^ (u64::from(std::process::id()) << 32)
            ^ COUNTER
                .fetch_add(1, Ordering::Relaxed)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    let mut engine = MediaEngine::with_sink(start, cfg, opts.video_sink)?;
    let end = start + opts.duration;
    let (tx, rx) = mpsc::sync_channel::<(Instant, SocketAddr, Vec<u8>)>(RX_QUEUE);
    let rx_done = Arc::new(AtomicBool::new(false));
    let receiver = {
        let sock = socket.try_clone()?;
        let done = rx_done.clone();
        std::thread::Builder::new()
            .name("edge-rx".into())
            .spawn(move || receive_loop(&sock, &tx, &done))?
    };
    let result = drive(&socket, &mut engine, &rx, end, &opts.stop);
    rx_done.store(true, Ordering::Relaxed);
    let _ = receiver.join();
    result?;
    Ok(engine.finish(Instant::now()))
}

/// Datagrams queued between the receive thread and the engine at most.
const RX_QUEUE: usize = 4096;

fn receive_loop(
    sock: &UdpSocket,
    tx: &mpsc::SyncSender<(Instant, SocketAddr, Vec<u8>)>,
    done: &AtomicBool,
) -> std::io::Result<()> {
    sock.set_read_timeout(Some(Duration::from_millis(20)))?;
    let mut buf = vec![0u8; 2048];
    while !done.load(Ordering::Relaxed) {
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => {
                // A full queue drops the datagram (the engine is hopelessly behind).
                if let Err(mpsc::TrySendError::Disconnected(_)) =
                    tx.try_send((Instant::now(), from, buf[..n].to_vec()))
                {
                    return Ok(());
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::ConnectionRefused
                        | std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn drive(
    socket: &UdpSocket,
    engine: &mut MediaEngine,
    rx: &mpsc::Receiver<(Instant, SocketAddr, Vec<u8>)>,
    end: Instant,
    stop: &AtomicBool,
) -> Result<(), EdgeError> {
    loop {
        while let Some(t) = engine.poll_transmit() {
            // A send error (e.g. ICMP unreachable surfacing as ECONNREFUSED) is not fatal:
            // the peer may not be up yet.
            let _ = socket.send_to(&t.data, t.to);
        }
        let now = Instant::now();
        if now >= end || stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let wake = engine.poll_timeout().min(end);
        if wake > now {
            // Short waits keep the stop flag responsive.
            let wait = (wake - now).min(Duration::from_millis(50));
            match rx.recv_timeout(wait) {
                Ok((at, from, data)) => engine.handle_datagram(at, from, &data),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(EdgeError::Io(std::io::Error::other(
                        "the receive thread stopped",
                    )));
                }
            }
        }
        while let Ok((at, from, data)) = rx.try_recv() {
            engine.handle_datagram(at, from, &data);
        }
        engine.handle_timeout(Instant::now());
    }
}
