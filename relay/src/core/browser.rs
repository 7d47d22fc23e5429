//! Browser transports (WebRTC): what a transport of kind *browser* adds to a plain one, the
//! way mediasoup's WebRtcTransport does it — the relay is an **ICE-lite** agent and the
//! **DTLS server**, on one BUNDLE transport with rtcp-mux (audio, video and RTX SSRCs on
//! one 5-tuple; RFC 7983 tells STUN, DTLS, SRTP and SRTCP apart by the first byte).
//!
//! - **ICE-lite** ([`super::stun`]): binding requests whose USERNAME is
//!   `<relay ufrag>:<browser ufrag>` and whose MESSAGE-INTEGRITY verifies under the relay's
//!   password are answered (XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY, FINGERPRINT). The first
//!   valid check selects the path until the browser nominates one with USE-CANDIDATE; after
//!   that only another USE-CANDIDATE moves it. Anything else is a counted `stun_rejected`.
//! - **Consent freshness** (RFC 7675): the browser keeps sending checks (every ~5 s); a
//!   transport that has had no valid check for [`super::CoreConfig::consent_timeout`] is
//!   freed (an [`super::Event::LegFreed`]) and counted ([`BrowserCounters::consent_expired`]).
//! - **DTLS-SRTP** ([`super::dtls`]): DTLS records from the selected path go to the
//!   transport's [`DtlsServer`]; its flights go out through the egress; at the end of the
//!   handshake the client certificate's fingerprint is checked against the offer's and the
//!   exported keys key the transport's SRTP sessions (then early media held for it is sent).
//!   A mismatch, a fatal alert or a handshake timeout frees the transport and is counted.
//!   Media before the keys exist is neither accepted (`not_keyed`) nor sent (held as early
//!   media, or not sent).
//! - **Transport-wide congestion control** ([`super::twcc`]): when the offer negotiated the
//!   extension, arrivals are recorded and feedback goes to the browser every
//!   [`super::CoreConfig::twcc_interval`].

use std::sync::Arc;
use std::time::Instant;

use super::Core;
use super::bwe::{Bwe, BweConfig};
use super::dtls::{DtlsFailure, DtlsIdentity, DtlsPhase, DtlsPoll, DtlsServer, Fingerprint};
use super::egress::{Out, egress};
use super::layers::SimulcastSpec;
use super::mid::{MidRewrite, MidValue};
use super::srtp::LegSrtp;
use super::stats::DropReason;
use super::transmit::TxBatch;
use super::twcc::TwccRecorder;

/// What the control plane says about a browser transport (from the SDP offer), next to its
/// [`super::IceCredentials`] (which the relay made).
#[derive(Debug, Clone)]
pub struct BrowserSpec {
    /// The relay's DTLS identity (certificate, key, shared configuration).
    pub identity: Arc<DtlsIdentity>,
    /// The offer's `a=fingerprint`: the client certificate must hash to it.
    pub remote_fingerprint: Fingerprint,
    /// The offer's `a=ice-ufrag`, if checked: a binding request's USERNAME must then be
    /// exactly `<relay ufrag>:<this>`.
    pub remote_ufrag: Option<String>,
    /// The transport-wide sequence number extension id, if negotiated.
    pub twcc_extension_id: Option<u8>,
    /// The MID header extension id (`urn:ietf:params:rtp-hdrext:sdes:mid`), if negotiated:
    /// media toward this browser then carries the MIDs of [`BrowserSpec::receive_mids`]
    /// under it ([`super::mid`]), and its own MID elements are known by it.
    pub mid_extension_id: Option<u8>,
    /// The MID of the m-line that receives each media clock rate (48000: the audio m-line,
    /// 90000: the video m-line), from the offer. Several m-lines of one clock rate (a
    /// conference participant's video m-lines) are **slots**: each source transport's
    /// streams of that rate go to one of them, the first free in the order given, held until
    /// the source is unlinked; sources beyond the slots are not forwarded to this browser.
    pub receive_mids: Vec<(u32, String)>,
    /// The browser's simulcast video, when the answer accepted it ([`super::layers`]).
    pub simulcast: Option<SimulcastSpec>,
}

/// The live browser part of a transport.
#[derive(Debug)]
#[repr(C)]
pub struct BrowserState {
    /// Transport-wide congestion control bookkeeping, if negotiated.
    pub twcc: Option<TwccRecorder>,
    /// The estimate of what may be sent to it, when transport-cc was negotiated (and the
    /// MID extension, which carries the sequence number's place).
    pub bwe: Option<Bwe>,
    /// The browser's simulcast video, if accepted.
    pub simulcast: Option<SimulcastSpec>,
    /// The MID header extension id, if negotiated.
    pub mid_extension_id: Option<u8>,
    /// The transport-wide sequence number extension id.
    pub twcc_extension_id: Option<u8>,
    /// Whether the browser nominated the selected path (USE-CANDIDATE).
    pub nominated: bool,
    /// The last valid connectivity check (consent).
    pub last_check: Instant,
    /// The browser's ufrag, if checked.
    pub remote_ufrag: Option<String>,
    /// The MID of the m-line that receives each clock rate (valid MIDs only), and the
    /// source transport a slot is held by (when several m-lines receive one clock rate).
    pub receive_mids: Vec<(u32, MidValue, Option<u32>)>,
    /// The DTLS server.
    pub dtls: DtlsServer,
}

impl BrowserState {
    /// A fresh browser part, created at `now`.
    pub fn new(spec: &BrowserSpec, now: Instant, bwe: BweConfig) -> Self {
        let mid_extension_id = spec.mid_extension_id.filter(|id| (1..=14).contains(id));
        let twcc_extension_id = spec.twcc_extension_id.filter(|id| (1..=14).contains(id));
        Self {
            dtls: DtlsServer::new(&spec.identity, spec.remote_fingerprint, now),
            nominated: false,
            last_check: now,
            remote_ufrag: spec.remote_ufrag.clone(),
            twcc: spec.twcc_extension_id.map(TwccRecorder::new),
            mid_extension_id,
            receive_mids: spec
                .receive_mids
                .iter()
                .filter_map(|(clock, mid)| Some((*clock, MidValue::new(mid)?, None)))
                .collect(),
            simulcast: spec.simulcast.clone(),
            bwe: (mid_extension_id.is_some() && twcc_extension_id.is_some()).then(|| Bwe::new(bwe)),
            twcc_extension_id,
        }
    }

    /// The MID rewrite of a send stream of `clock` Hz toward this browser, from a source
    /// whose MID extension id is `from_id`: `None` when this browser did not negotiate the
    /// extension or has no m-line receiving that clock rate with a MID.
    pub fn mid_rewrite(&self, clock: u32, from_id: Option<u8>) -> Option<MidRewrite> {
        let mid = self.receive_mids.iter().find(|(c, _, _)| *c == clock)?.1;
        self.mid_rewrite_to(mid, from_id)
    }

    /// The MID rewrite toward m-line `mid` of this browser (`None` without the extension).
    pub fn mid_rewrite_to(&self, mid: MidValue, from_id: Option<u8>) -> Option<MidRewrite> {
        Some(MidRewrite {
            from_id,
            to_id: self.mid_extension_id?,
            mid,
            twcc_id: self.twcc_extension_id.filter(|_| self.bwe.is_some()),
            strip: [0; 2],
        })
    }

    /// Whether several m-lines receive `clock` (slots, see [`BrowserSpec::receive_mids`]).
    pub fn slotted(&self, clock: u32) -> bool {
        self.receive_mids
            .iter()
            .filter(|(c, _, _)| *c == clock)
            .nth(1)
            .is_some()
    }

    /// The slot of `clock` that source transport `source` holds, or else the first free
    /// one, now held by it; `None` when every slot is held by other sources.
    pub fn slot_for(&mut self, clock: u32, source: u32) -> Option<MidValue> {
        if let Some((_, mid, _)) = self
            .receive_mids
            .iter()
            .find(|(c, _, h)| *c == clock && *h == Some(source))
        {
            return Some(*mid);
        }
        let (_, mid, holder) = self
            .receive_mids
            .iter_mut()
            .find(|(c, _, h)| *c == clock && h.is_none())?;
        *holder = Some(source);
        Some(*mid)
    }

    /// Frees the slots source transport `source` holds; whether it held one.
    pub fn release_slots(&mut self, source: u32) -> bool {
        let mut freed = false;
        for (_, _, h) in &mut self.receive_mids {
            if *h == Some(source) {
                *h = None;
                freed = true;
            }
        }
        freed
    }

    /// The earliest time something of the browser part is due, given the consent timeout.
    pub fn next_due(&self, consent_timeout: std::time::Duration) -> Instant {
        let mut due = self.last_check + consent_timeout;
        if let Some(t) = self.dtls.timeout() {
            due = due.min(t);
        }
        if let Some(t) = self.twcc.as_ref().and_then(|t| t.due) {
            due = due.min(t);
        }
        due
    }
}

/// Relay-wide counters of browser transports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BrowserCounters {
    /// DTLS handshakes completed (certificate checked, SRTP keyed).
    pub handshakes: u64,
    /// Transports closed because the client certificate did not match the offer.
    pub fingerprint_mismatches: u64,
    /// Transports closed because the handshake failed otherwise (alert, timeout, close).
    pub dtls_failures: u64,
    /// Transports freed because consent expired (no valid check for the consent timeout).
    pub consent_expired: u64,
    /// Simulcast layer switches toward receivers ([`super::layers`]).
    pub layer_switches: u64,
}

impl Core {
    /// A DTLS datagram on transport `li` from `src`.
    pub(super) fn on_dtls(
        &mut self,
        now: Instant,
        li: u32,
        src: std::net::SocketAddr,
        data: &[u8],
        tx: &mut TxBatch,
    ) {
        let t = self.t_mut(li);
        if t.browser.is_none() {
            t.counters.drop(DropReason::Unsupported);
            return;
        }
        if !t.is_peer(src) {
            // DTLS only on the path ICE selected.
            t.counters.drop(DropReason::Stranger);
            return;
        }
        t.last_rx = now;
        t.heard = true;
        if let Some(b) = t.browser.as_mut() {
            b.dtls.handle_datagram(now, data);
        }
        self.drive_dtls(now, li, tx);
    }

    /// Sends what the transport's DTLS server has to send, installs its keys when the
    /// handshake completes, frees the transport when it failed, and keeps its timer right.
    pub(super) fn drive_dtls(&mut self, now: Instant, li: u32, tx: &mut TxBatch) {
        let mut scratch = std::mem::take(&mut self.srtp_scratch);
        loop {
            let t = self.t_mut(li);
            let Some(b) = t.browser.as_mut() else { break };
            let Some(peer) = t.peer else { break };
            match b.dtls.poll(&mut scratch) {
                DtlsPoll::Send(p) => {
                    let n = p.len();
                    let mut write = |buf: &mut [u8]| {
                        buf[..n].copy_from_slice(p);
                        n
                    };
                    egress(tx, t, Out::Raw(peer, &mut write));
                }
                DtlsPoll::Keys(keys) => {
                    if let Ok(s) = LegSrtp::new(&keys) {
                        t.srtp = Some(Box::new(s));
                        self.browser_counters.handshakes += 1;
                        let max_age = self.config.early_media_max_age;
                        let t = self.t_mut(li);
                        super::egress::replay_early(now, max_age, t, tx);
                        self.keyframes_for_new_receiver(now, li, tx);
                    }
                }
                DtlsPoll::Idle => break,
            }
        }
        self.srtp_scratch = scratch;
        let phase = self.t(li).browser.as_ref().map(|b| b.dtls.phase());
        if let Some(DtlsPhase::Failed(why)) = phase {
            match why {
                DtlsFailure::FingerprintMismatch => {
                    self.browser_counters.fingerprint_mismatches += 1
                }
                _ => self.browser_counters.dtls_failures += 1,
            }
            self.free_idle(li);
            return;
        }
        self.reschedule_if_earlier(li);
    }

    /// Makes sure the transport's timer entry is due no later than its browser part needs.
    pub(super) fn reschedule_if_earlier(&mut self, li: u32) {
        let consent = self.config.consent_timeout;
        let t = self.t_mut(li);
        let Some(b) = t.browser.as_ref() else { return };
        let due = b.next_due(consent);
        if due < t.timer_due {
            t.timer_due = due;
            let generation = t.generation;
            self.timers.schedule(due, li, generation);
        }
    }

    /// The browser part's timers: consent, DTLS retransmissions, TWCC feedback. Returns
    /// `false` if the transport was freed.
    pub(super) fn browser_timeout(&mut self, now: Instant, li: u32, tx: &mut TxBatch) -> bool {
        let consent = self.config.consent_timeout;
        let Some(b) = self.t(li).browser.as_ref() else {
            return true;
        };
        if now.saturating_duration_since(b.last_check) >= consent {
            self.browser_counters.consent_expired += 1;
            self.free_idle(li);
            return false;
        }
        if b.dtls.timeout().is_some_and(|d| d <= now) {
            if let Some(b) = self.t_mut(li).browser.as_mut() {
                b.dtls.handle_timeout(now);
            }
            self.drive_dtls(now, li, tx);
            if self.transports[li as usize].is_none() {
                return false;
            }
        }
        self.send_twcc(now, li, tx);
        true
    }

    /// Sends the transport-wide congestion control feedback that is due.
    fn send_twcc(&mut self, now: Instant, li: u32, tx: &mut TxBatch) {
        let interval = self.config.twcc_interval;
        let t = self.t_mut(li);
        let sender = t.report_ssrc;
        let Some(mut rec) = t.browser.as_mut().and_then(|b| b.twcc.take()) else {
            return;
        };
        if rec.due.is_some_and(|d| d <= now) {
            rec.due = None;
            if t.srtp.is_some() && t.peer.is_some() {
                while tx.room() > 0 {
                    let mut write = |buf: &mut [u8]| rec.write_feedback(sender, buf);
                    if egress(tx, t, Out::Rtcp(&mut write)) != super::egress::Sent::Batched {
                        break;
                    }
                }
            }
            if rec.has_pending() {
                rec.due = Some(now + interval);
            }
        }
        if let Some(b) = t.browser.as_mut() {
            b.twcc = Some(rec);
        }
    }

    /// Relay-wide counters of browser transports.
    pub fn browser_counters(&self) -> BrowserCounters {
        self.browser_counters
    }
}
