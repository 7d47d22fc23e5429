//! One conference (group call) from login to report: what `edge conference` runs.
//!
//! [`run_conference`] logs in, creates a conference (and invites the accounts given) or
//! waits for an invite and joins it, runs the media engine on the participant's relay
//! transport for the duration (sending a looped tone, [`supernode_media::tone::sine`]), follows the roster
//! meanwhile, leaves, and measures the received mix at the frequencies asked for
//! ([`supernode_media::tone::level_db`], a Goertzel filter): in a conference each participant hears the others'
//! tones and not its own.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use supernode_media::tone::{level_db, level_db_windowed, sine};
use supernode_proto::ids::{AccountId, CallId};
use supernode_proto::protocol::{ClientMsg, ServerMsg};
use tokio::time::Instant;

use crate::engine::{AudioSource, EngineConfig, VideoSource};
use crate::report::CallReport;
use crate::runner::{MediaOptions, run_media};
use crate::signaling::{CallError, SignalingClient};
use crate::srtp::{SrtpKey, SrtpKeyB64};

/// Why a conference failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConferenceError {
    /// Signaling failed (login, a refused join, no media leg...).
    #[error("signaling: {0}")]
    Signaling(#[from] CallError),
    /// The media could not run.
    #[error("media: {0}")]
    Media(String),
}

/// What to do.
#[derive(Debug)]
pub struct ConferenceSetup {
    /// The supernode's HTTP base URL.
    pub server: String,
    /// The login credential.
    pub token: String,
    /// Create the conference (else: wait for an invite and join).
    pub create: bool,
    /// Accounts the creator invites once it has its transport.
    pub invite: Vec<AccountId>,
    /// How long to wait for an invite (joiners).
    pub wait: Duration,
    /// How long the media runs.
    pub duration: Duration,
    /// The tone this participant sends, Hz (`None`: the engine's configured audio).
    pub tone_hz: Option<u32>,
    /// The engine's settings (remote and keys are filled in from the grant).
    pub engine: EngineConfig,
    /// Local UDP address for media.
    pub media_bind: SocketAddr,
    /// Frequencies to measure in what was received, Hz.
    pub measure: Vec<u32>,
    /// Received audio skipped before measuring (the mix settling, others joining).
    pub skip: Duration,
    /// Measure in pieces this long, their powers averaged
    /// ([`supernode_media::tone::level_db_windowed`]); zero: one filter over all of it.
    pub measure_window: Duration,
    /// How long a joiner waits after the invite before it joins (a late joiner).
    pub join_delay: Duration,
}

/// The level of one frequency in the received audio.
#[derive(Clone, Debug, Serialize)]
pub struct ToneLevel {
    /// Hz.
    pub hz: u32,
    /// Power at `hz`, dB relative to a full-scale sine.
    pub db: f64,
}

/// What happened.
#[derive(Debug, Serialize)]
pub struct ConferenceOutcome {
    /// The conference.
    pub conference_id: CallId,
    /// The largest roster seen.
    pub max_participants_seen: usize,
    /// The measured levels (over the received audio after `skip`).
    pub levels: Vec<ToneLevel>,
    /// Seconds of received audio measured.
    pub measured_seconds: f64,
    /// The media engine's report.
    pub report: CallReport,
    /// Accounts the roster ever showed speaking.
    pub speaking_seen: Vec<String>,
    /// Accounts the roster ever named the active speaker.
    pub active_speakers_seen: Vec<String>,
    /// The SSRCs this participant sent (audio, video) and declared.
    pub own_ssrcs: (u32, Option<u32>),
    /// The received (played-out) audio, 48 kHz mono.
    #[serde(skip)]
    pub audio: Vec<i16>,
}

async fn expect<T>(
    c: &mut SignalingClient,
    what: &'static str,
    limit: Duration,
    mut pick: impl FnMut(&ServerMsg) -> Option<Result<T, CallError>>,
) -> Result<T, CallError> {
    let deadline = Instant::now() + limit;
    loop {
        let m = c.next(deadline).await?.ok_or(CallError::Timeout(what))?;
        if let ServerMsg::Error { code, message, .. } = &m {
            return Err(CallError::Server(*code, message.clone()));
        }
        if let Some(r) = pick(&m) {
            return r;
        }
    }
}

/// Runs one conference; see the module docs.
pub async fn run_conference(
    setup: ConferenceSetup,
    progress: impl Fn(&str),
) -> Result<ConferenceOutcome, ConferenceError> {
    let mut c = SignalingClient::connect(&setup.server, &setup.token).await?;
    let limit = Duration::from_secs(10);
    let conf = if setup.create {
        c.send(&ClientMsg::ConferenceCreate {
            client_ref: None,
            sdp: None,
        })
        .await?;
        expect(&mut c, "conference_created", limit, |m| match m {
            ServerMsg::ConferenceCreated { conference_id, .. } => Some(Ok(conference_id.clone())),
            _ => None,
        })
        .await?
    } else {
        let conf = expect(&mut c, "conference_invite", setup.wait, |m| match m {
            ServerMsg::ConferenceInvite { conference_id, .. } => Some(Ok(conference_id.clone())),
            _ => None,
        })
        .await?;
        tokio::time::sleep(setup.join_delay).await;
        c.send(&ClientMsg::ConferenceJoin {
            conference_id: conf.clone(),
            sdp: None,
        })
        .await?;
        conf
    };
    let leg = expect(&mut c, "media", limit, |m| match m {
        ServerMsg::Media { call_id, leg } if *call_id == conf => Some(Ok(leg.clone())),
        ServerMsg::CallEnded { call_id, reason } if *call_id == conf => {
            Some(Err(CallError::Ended(*reason)))
        }
        _ => None,
    })
    .await?;
    progress(&format!("in conference {conf}, transport {}", leg.address));
    for to in &setup.invite {
        c.send(&ClientMsg::ConferenceInvite {
            conference_id: conf.clone(),
            to: to.clone(),
        })
        .await?;
    }
    let remote: SocketAddr = leg
        .address
        .parse()
        .map_err(|_| ConferenceError::Media(format!("bad address {}", leg.address)))?;
    let mut cfg = setup.engine;
    cfg.remote_audio = remote;
    cfg.remote_video = remote;
    cfg.srtp = match &leg.srtp {
        Some(k) => {
            Some(SrtpKey::from_keying(k).map_err(|e| ConferenceError::Media(e.to_string()))?)
        }
        None => None,
    };
    if let Some(hz) = setup.tone_hz {
        cfg.audio = AudioSource::Pcm(Arc::new(sine(f64::from(hz), 8000.0, 1.0)));
    }
    // Our SSRCs are fixed here (not by the runner) to declare them: the others map the
    // video they receive to us by it.
    if cfg.ssrc_seed == 0 {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        cfg.ssrc_seed = (t.as_nanos() as u64 ^ (u64::from(std::process::id()) << 32)) | 1;
    }
    let (audio_ssrc, video_ssrc) = cfg.ssrcs();
    let video_ssrc = (!matches!(cfg.video, VideoSource::Off)).then_some(video_ssrc.0);
    c.send(&ClientMsg::ConferenceStreams {
        conference_id: conf.clone(),
        audio_ssrc: Some(audio_ssrc.0),
        video_ssrc,
    })
    .await?;
    let socket = UdpSocket::bind(setup.media_bind)
        .map_err(|e| ConferenceError::Media(format!("bind {}: {e}", setup.media_bind)))?;
    let opts = MediaOptions::for_duration(setup.duration);
    let mut media = tokio::task::spawn_blocking(move || run_media(socket, cfg, opts));
    let mut max_seen = 0;
    // Video SSRC -> account, from every roster seen (a leaver's stays known).
    let mut video_of: std::collections::HashMap<u32, AccountId> = Default::default();
    let mut speaking_seen = std::collections::BTreeSet::new();
    let mut active_seen = std::collections::BTreeSet::new();
    let outcome = loop {
        tokio::select! {
            r = &mut media => break r,
            m = c.next(Instant::now() + Duration::from_millis(500)) => {
                if let Ok(Some(ServerMsg::ConferenceRoster {
                    participants, active_speaker, ..
                })) = m {
                    max_seen = max_seen.max(participants.len());
                    for p in &participants {
                        if let Some(v) = p.video_ssrc {
                            video_of.insert(v, p.account_id.clone());
                        }
                        if p.speaking {
                            speaking_seen.insert(p.account_id.to_string());
                        }
                        if active_speaker.as_ref() == Some(&p.endpoint_id) {
                            active_seen.insert(p.account_id.to_string());
                        }
                    }
                    progress(&format!("roster: {} participants", participants.len()));
                }
            }
        }
    };
    let mut outcome = outcome
        .map_err(|e| ConferenceError::Media(e.to_string()))?
        .map_err(|e| ConferenceError::Media(e.to_string()))?;
    for s in &mut outcome.report.video_sources {
        s.participant = video_of.get(&s.ssrc).map(|a| a.to_string());
    }
    let _ = c
        .send(&ClientMsg::ConferenceLeave {
            conference_id: conf.clone(),
        })
        .await;
    c.close().await;
    let skip = ((setup.skip.as_secs_f64() * 48_000.0) as usize).min(outcome.audio.len());
    let x = &outcome.audio[skip..];
    Ok(ConferenceOutcome {
        conference_id: conf,
        max_participants_seen: max_seen,
        levels: setup
            .measure
            .iter()
            .map(|&hz| ToneLevel {
                hz,
                db: match (setup.measure_window.as_secs_f64() * 48_000.0) as usize {
                    0 => level_db(x, f64::from(hz)),
                    w => level_db_windowed(x, f64::from(hz), w),
                },
            })
            .collect(),
        measured_seconds: x.len() as f64 / 48_000.0,
        report: outcome.report,
        speaking_seen: speaking_seen.into_iter().collect(),
        active_speakers_seen: active_seen.into_iter().collect(),
        own_ssrcs: (audio_ssrc.0, video_ssrc),
        audio: outcome.audio,
    })
}

/// How many test pattern variants conference participants use (`--pattern` below this).
pub const PATTERN_VARIANTS: u8 = 8;

/// The engine settings of a conference participant: no timing marks (they would be mixed
/// into the others' audio), no audio reference to compare with, and the others' videos
/// received one decoder per SSRC, each compared with the pattern variant it matches.
/// `pattern` is the variant this participant sends.
pub fn engine_defaults(mut cfg: EngineConfig, pattern: u8) -> EngineConfig {
    cfg.mark_period_ms = 3_600_000;
    cfg.reference_seed = None;
    cfg.pattern_variant = pattern.min(PATTERN_VARIANTS - 1);
    cfg.video_sources = true;
    cfg.video_variants = PATTERN_VARIANTS;
    cfg
}
