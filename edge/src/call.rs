//! One signaled call, from login to report: what `edge call` and `edge answer` do, as a
//! library function for hosts that run edge clients in-process (e.g. a demo).
//!
//! ```no_run
//! # async fn f() {
//! use std::time::Duration;
//! use supernode_edge::call::{Role, SignaledCall, run_signaled_call};
//! use supernode_edge::engine::EngineConfig;
//! use supernode_proto::ids::AccountId;
//! use supernode_proto::protocol::MediaKind;
//!
//! let call = SignaledCall::new(
//!     "http://127.0.0.1:8080",
//!     "TOKEN",
//!     Role::Call {
//!         to: AccountId::parse("acc_00000000000000000000000000000000").unwrap(),
//!         media: MediaKind::Audio,
//!         ring_timeout: Duration::from_secs(30),
//!     },
//!     Duration::from_secs(10),
//! );
//! match run_signaled_call(call).await {
//!     Ok(outcome) => println!("{}", outcome.report.to_human()),
//!     Err(failure) => println!("{}", failure.report.to_human()),
//! }
//! # }
//! ```
//!
//! The engine settings come from [`SignaledCall::engine`] (sources, references, payload
//! types…); the remote address and SRTP key are filled in from the relay leg of the `media`
//! message, and video is turned off when the call is audio-only. The media runs on a
//! blocking thread while the signaling socket waits for the end: at the deadline this side
//! hangs up; when the other side ends the call first, the media stops at once.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::Ordering;
use std::time::Duration;

use supernode_proto::ids::AccountId;
use supernode_proto::protocol::MediaKind;

use crate::engine::{CallOutcome, EngineConfig, VideoSink, VideoSource};
use crate::report::CallReport;
use crate::runner::{MediaOptions, run_media};
use crate::signaling::{CallEnd, CallError, SignalingClient};
use crate::srtp::{SrtpKey, SrtpKeyB64};

/// Decides whether to accept a call from this caller with this media.
pub type Decide = Box<dyn FnMut(&AccountId, MediaKind) -> bool + Send>;
/// Receives progress lines.
pub type Progress = Box<dyn Fn(&str) + Send + Sync>;

/// Which side of the call this edge takes.
pub enum Role {
    /// Place a call.
    Call {
        /// The callee.
        to: AccountId,
        /// Audio, or audio and video.
        media: MediaKind,
        /// How long to let it ring.
        ring_timeout: Duration,
    },
    /// Wait for a call and answer it.
    Answer {
        /// How long to wait for a call.
        wait: Duration,
        /// Whether to accept a call from this caller with this media (`None`: accept all).
        decide: Option<Decide>,
    },
}

impl std::fmt::Debug for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Role::Call { to, media, .. } => write!(f, "Call({to:?}, {media:?})"),
            Role::Answer { wait, .. } => write!(f, "Answer(wait {wait:?})"),
        }
    }
}

/// Everything [`run_signaled_call`] needs.
pub struct SignaledCall {
    /// The supernode's HTTP (or WebSocket) address.
    pub server: String,
    /// Login credential.
    pub token: String,
    /// Caller or callee.
    pub role: Role,
    /// How long media runs before this side hangs up.
    pub duration: Duration,
    /// Local address for the media socket.
    pub media_bind: SocketAddr,
    /// Video goes to the relay leg's port plus this (the supernode host gives each endpoint
    /// a video companion leg at the audio port + 1, since a relay leg carries one stream);
    /// 0 sends video to the audio leg.
    pub video_port_offset: u16,
    /// Engine settings; remote addresses and SRTP come from the relay leg.
    pub engine: EngineConfig,
    /// Where decoded pictures go.
    pub video_sink: Option<Box<dyn VideoSink>>,
    /// Progress lines ("logged in", "call up", …), e.g. to stderr.
    pub progress: Option<Progress>,
}

impl std::fmt::Debug for SignaledCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignaledCall")
            .field("server", &self.server)
            .field("role", &self.role)
            .field("duration", &self.duration)
            .finish_non_exhaustive()
    }
}

impl SignaledCall {
    /// A call with the default engine settings (synthetic speech, 640×360 test pattern),
    /// media bound to `0.0.0.0:0`, no sink, no progress output.
    pub fn new(server: &str, token: &str, role: Role, duration: Duration) -> Self {
        let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
        Self {
            server: server.to_owned(),
            token: token.to_owned(),
            role,
            duration,
            media_bind: unspecified,
            video_port_offset: 0,
            engine: EngineConfig::new(Duration::ZERO, unspecified),
            video_sink: None,
            progress: None,
        }
    }
}

/// Why a signaled call failed, with a report saying so.
#[derive(Debug)]
pub struct CallFailure {
    /// Signaling (login, busy, unavailable, answered elsewhere…) or media (socket).
    pub signaling: bool,
    /// A report with `ok: false`, the failure and `call_end`.
    pub report: CallReport,
}

fn call_end_name(e: &CallError) -> String {
    match e {
        CallError::Busy => "busy".to_owned(),
        CallError::Unavailable => "unavailable".to_owned(),
        CallError::AnsweredElsewhere => "answered_elsewhere".to_owned(),
        CallError::Ended(r) => format!("ended_{}", format!("{r:?}").to_lowercase()),
        CallError::Timeout(_) => "timeout".to_owned(),
        CallError::NoMedia => "no_media_leg".to_owned(),
        CallError::Server(c, _) => format!("error_{c:?}").to_lowercase(),
        CallError::Transport(_) => "transport".to_owned(),
    }
}

/// Logs in, sets the call up, runs media on the relay leg, ends the call, and returns the
/// media outcome (its report's `call_end` says how the call ended).
pub async fn run_signaled_call(mut c: SignaledCall) -> Result<CallOutcome, CallFailure> {
    let progress = c.progress.take();
    let say = |m: &str| {
        if let Some(p) = &progress {
            p(m);
        }
    };
    let fail_sig = |e: CallError| CallFailure {
        signaling: true,
        report: CallReport::failed(&e.to_string(), Some(call_end_name(&e))),
    };
    let mut sig = SignalingClient::connect(&c.server, &c.token)
        .await
        .map_err(fail_sig)?;
    say(&format!(
        "logged in as {} (endpoint {})",
        sig.account_id.as_str(),
        sig.endpoint_id.0
    ));
    let setup = match c.role {
        Role::Call {
            to,
            media,
            ring_timeout,
        } => {
            say(&format!("calling {}", to.as_str()));
            sig.invite(to, media, ring_timeout).await
        }
        Role::Answer { wait, mut decide } => {
            say("waiting for a call");
            sig.answer(
                |from, kind| {
                    say(&format!("incoming {kind:?} call from {}", from.as_str()));
                    decide.as_mut().is_none_or(|d| d(from, kind))
                },
                wait,
            )
            .await
        }
    };
    let call = match setup {
        Ok(call) => call,
        Err(e) => {
            say(&format!("call failed: {e}"));
            sig.close().await;
            return Err(fail_sig(e));
        }
    };
    say(&format!(
        "call {} up: relay leg {} ({})",
        call.call_id.0,
        call.leg.address,
        if call.leg.srtp.is_some() {
            "SRTP"
        } else {
            "plain RTP"
        }
    ));
    let media_fail = |why: String| CallFailure {
        signaling: false,
        report: CallReport::failed(&why, None),
    };
    let prepared = (|| {
        let leg: SocketAddr = call
            .leg
            .address
            .parse()
            .map_err(|_| format!("bad leg address {:?}", call.leg.address))?;
        let srtp = match &call.leg.srtp {
            Some(k) => Some(SrtpKey::from_keying(k).map_err(|e| e.to_string())?),
            None => None,
        };
        let socket = UdpSocket::bind(c.media_bind)
            .map_err(|e| format!("cannot bind {}: {e}", c.media_bind))?;
        Ok::<_, String>((leg, srtp, socket))
    })();
    let (leg, srtp, socket) = match prepared {
        Ok(p) => p,
        Err(why) => {
            let _ = sig.hangup(call.call_id).await;
            sig.close().await;
            return Err(media_fail(why));
        }
    };
    let mut cfg = c.engine;
    cfg.remote_audio = leg;
    cfg.remote_video = match leg.port().checked_add(c.video_port_offset) {
        Some(p) => SocketAddr::new(leg.ip(), p),
        None => leg,
    };
    cfg.srtp = srtp;
    if call.media == MediaKind::Audio {
        cfg.video = VideoSource::Off;
        cfg.receive_video = false;
    }
    let mut opts = MediaOptions::for_duration(c.duration);
    opts.video_sink = c.video_sink.take();
    let stop = opts.stop.clone();
    let media = tokio::task::spawn_blocking(move || run_media(socket, cfg, opts));
    let deadline = tokio::time::Instant::now() + c.duration;
    let end = sig.wait_end(call.call_id.clone(), deadline).await;
    stop.store(true, Ordering::Relaxed);
    let call_end = match end {
        Ok(CallEnd::TimeUp) => {
            let _ = sig.hangup(call.call_id).await;
            "hangup_sent".to_owned()
        }
        Ok(CallEnd::Remote(r)) => format!("remote_{}", format!("{r:?}").to_lowercase()),
        Err(e) => format!("signaling_lost: {e}"),
    };
    say(&format!("call ended ({call_end})"));
    sig.close().await;
    match media.await {
        Ok(Ok(mut outcome)) => {
            outcome.report.call_end = Some(call_end);
            Ok(outcome)
        }
        Ok(Err(e)) => Err(media_fail(format!("media failed: {e}"))),
        Err(e) => Err(media_fail(format!("media task failed: {e}"))),
    }
}
