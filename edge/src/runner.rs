//! The I/O shell: runs a [`MediaEngine`] on one UDP socket for a duration.
//!
//! [`run_media`] reads the wall clock and `Instant::now()` once to anchor the engine's media
//! clock, then loops on the calling thread: send what the engine has queued, wait for a
//! datagram until the engine's next timeout (a socket read timeout), hand it in, run the
//! timers. It returns when the duration is over or the stop flag is raised (a hangup from
//! signaling), with the engine's [`CallOutcome`].

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
pub fn run_media(
    socket: UdpSocket,
    mut cfg: EngineConfig,
    opts: MediaOptions,
) -> Result<CallOutcome, EdgeError> {
    // Room for a few hundred milliseconds of video should the loop stall (a busy machine).
    let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(4 << 20);
    let start = Instant::now();
    cfg.wall_at_start = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| EdgeError::Config("system clock before 1970".into()))?;
    let mut engine = MediaEngine::with_sink(start, cfg, opts.video_sink)?;
    let end = start + opts.duration;
    let mut buf = vec![0u8; 2048];
    loop {
        while let Some(t) = engine.poll_transmit() {
            // A send error (e.g. ICMP unreachable surfacing as ECONNREFUSED) is not fatal:
            // the peer may not be up yet.
            let _ = socket.send_to(&t.data, t.to);
        }
        let now = Instant::now();
        if now >= end || opts.stop.load(Ordering::Relaxed) {
            break;
        }
        let wake = engine.poll_timeout().min(end);
        if wake > now {
            // Short waits keep the stop flag responsive.
            let wait = (wake - now).clamp(Duration::from_micros(100), Duration::from_millis(50));
            socket.set_read_timeout(Some(wait))?;
            match socket.recv_from(&mut buf) {
                Ok((n, from)) => engine.handle_datagram(Instant::now(), from, &buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::ConnectionRefused
                            | std::io::ErrorKind::ConnectionReset
                    ) => {}
                Err(e) => return Err(e.into()),
            }
        }
        engine.handle_timeout(Instant::now());
    }
    Ok(engine.finish(Instant::now()))
}
