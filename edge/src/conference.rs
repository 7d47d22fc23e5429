//! One conference (group call) from login to report: what `edge conference` runs.
//!
//! [`run_conference`] logs in, creates a conference (and invites the accounts given) or
//! waits for an invite and joins it, runs the media engine on the participant's relay
//! transport for the duration (sending a looped tone, see [`tone`]), follows the roster
//! meanwhile, leaves, and measures the received mix at the frequencies asked for
//! ([`level_db`], a Goertzel filter): in a conference each participant hears the others'
//! tones and not its own.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
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

/// One second of a sine at `hz` (loops seamlessly at whole Hz), 48 kHz, amplitude 8000.
pub fn tone(hz: u32) -> Vec<i16> {
    (0..48_000)
        .map(|i| {
            (8000.0 * (std::f64::consts::TAU * f64::from(hz) * f64::from(i) / 48_000.0).sin())
                as i16
        })
        .collect()
}

/// Power of `x` at `hz` (Goertzel), dB relative to a full-scale sine (0 dB).
pub fn level_db(x: &[i16], hz: u32) -> f64 {
    if x.is_empty() {
        return -200.0;
    }
    let w = std::f64::consts::TAU * f64::from(hz) / 48_000.0;
    let c = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s0 = f64::from(v) / 32768.0 + c * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let n = x.len() as f64;
    // A full-scale sine gives (n/2)^2.
    let p = (s1 * s1 + s2 * s2 - c * s1 * s2) / (n * n / 4.0);
    10.0 * p.max(1e-20).log10()
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
        c.send(&ClientMsg::ConferenceCreate { client_ref: None })
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
        cfg.audio = AudioSource::Pcm(Arc::new(tone(hz)));
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
                db: level_db(x, hz),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goertzel_finds_the_tone_and_not_the_others() {
        let mut x = tone(440);
        let y = tone(1000);
        for (a, b) in x.iter_mut().zip(&y) {
            *a = (*a / 2).saturating_add(*b / 2);
        }
        let at = level_db(&x, 440);
        assert!((at - (-18.3)).abs() < 1.0, "{at}");
        assert!(level_db(&tone(440), 660) < at - 60.0);
        assert!(level_db(&[], 440) < -100.0);
    }
}
