//! Conferences (group calls) in the call core: create, invite, join, leave, roster.
//!
//! A conference is one relay session opened with [`RelayOp::OpenConference`] (a mixer for
//! the audio, video forwarded participant to participant); each participant's endpoint gets
//! a client transport from [`RelayOp::JoinConference`] and a `media` message with its grant,
//! as a leg of a 1:1 call does. Rules:
//! * an account takes part in at most one call or conference; creating or joining while in
//!   one is `already_in_call`, inviting an account in one answers `busy`;
//! * an invite rings every endpoint of the invitee (`conference_invite`); the first of them
//!   to `conference_join` takes part, the others are told `answered_elsewhere` at once; a
//!   later join of theirs is `invalid_state`;
//! * past `max_participants` (joined and joining) a join is `conference_full` and nothing
//!   changes;
//! * whenever who is in changes, every participant gets `conference_roster`;
//! * a participant that leaves (or disconnects) gets its transport removed
//!   ([`RelayOp::LeaveConference`]); when the last one is out, the session is released once
//!   every operation of it has been answered;
//! * a failed join ends the conference for that endpoint (`call_ended relay_failure`); a
//!   failed open ends it for everyone.
//!
//! A browser endpoint's `conference_create` / `conference_join` carries its SDP offer
//! (`sdp`), checked at once ([`CheckedOffer::check_conference`]: `invalid_sdp` and nothing
//! changes); its transport is a browser transport whose video m-lines are slots for the
//! others' videos (in join order), and its `media` message carries the answer. The answer
//! negotiates the MID header extension (the relay writes each slot's MID), unlike a 1:1
//! call's.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use supernode_proto::relay_ops::{
    JoinConference, LeaveConference, OpenConference, RelayOp, RelayOutcome, RelayResult, Release,
};

use super::{CallCore, CallError, err, not_yours};
use crate::calls::browser::CheckedOffer;
use crate::ids::{
    AccountId, CallId, EndpointId, OperationId, PartnerId, RelaySessionId, TransportId,
};
use crate::protocol::{ClientKind, EndReason, ErrorCode, LegInfo, Participant, ServerMsg};
use crate::sdp::MediaPolicy;

/// One participant's endpoint (joined, or joining while its transport is made).
#[derive(Debug)]
struct Member {
    account: AccountId,
    transport: TransportId,
    /// The grant, once the relay answered.
    leg: Option<LegInfo>,
    /// Join order.
    seq: u64,
    /// The SSRCs it declared (`conference_streams`): audio, video.
    streams: (Option<u32>, Option<u32>),
    /// A browser's checked offer (answered once its transport is granted).
    offer: Option<Box<CheckedOffer>>,
}

#[derive(Debug)]
struct Conference {
    partner: PartnerId,
    session: RelaySessionId,
    members: BTreeMap<EndpointId, Member>,
    /// Invited accounts and their ringing endpoints.
    invites: BTreeMap<AccountId, BTreeSet<EndpointId>>,
    /// Operations whose results have not come back.
    outstanding: BTreeSet<OperationId>,
    /// No participant is left: release the session once nothing is outstanding.
    closing: bool,
    next_seq: u64,
    /// Who speaks now, as the mixer last said.
    speaking: BTreeSet<EndpointId>,
    /// The active speaker, as the mixer last said.
    active: Option<EndpointId>,
    /// Who speaks changed since the last roster: one is due.
    speech_due: bool,
    /// When a roster last went out for a change of who speaks.
    speech_sent: Option<Instant>,
}

/// Rosters for a change of who speaks go out at most this often per conference.
pub const SPEECH_ROSTER_EVERY: Duration = Duration::from_millis(500);

/// What a conference's mixer says about its participants' voices (the host reads it from
/// the mixer and hands it to [`CallCore::conference_speech`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpeechEvent {
    /// The participant on `transport` started or stopped speaking.
    Speaking {
        /// Its transport.
        transport: TransportId,
        /// Whether it speaks now.
        speaking: bool,
    },
    /// The active speaker changed (`None`: nobody speaks).
    ActiveSpeaker(Option<TransportId>),
}

/// What an outstanding conference operation is.
#[derive(Debug)]
enum OpKind {
    Open,
    Join(EndpointId),
    Leave,
}

/// The conferences of a core.
#[derive(Debug, Default)]
pub(super) struct Conferences {
    confs: BTreeMap<CallId, Conference>,
    /// The conference each account takes part in (or joins).
    of_account: HashMap<AccountId, CallId>,
    ops: HashMap<OperationId, (CallId, OpKind)>,
    releases: BTreeSet<OperationId>,
}

impl Conferences {
    /// The conference an account takes part in.
    pub(super) fn of(&self, account: &AccountId) -> Option<&CallId> {
        self.of_account.get(account)
    }
}

impl CallCore {
    /// Live conferences.
    pub fn conference_count(&self) -> usize {
        self.conf.confs.len()
    }

    /// The participants' endpoints of a conference (joined or joining), in join order.
    pub fn conference_members(&self, conference: &CallId) -> Vec<EndpointId> {
        let Some(c) = self.conf.confs.get(conference) else {
            return Vec::new();
        };
        let mut m: Vec<(&EndpointId, &Member)> = c.members.iter().collect();
        m.sort_by_key(|(_, m)| m.seq);
        m.into_iter().map(|(e, _)| e.clone()).collect()
    }

    /// What browsers in conferences are served: the calls' policy with the MID header
    /// extension (the relay writes each video slot's MID; see the module docs).
    fn conference_media(&self) -> MediaPolicy {
        MediaPolicy {
            mid_extension: true,
            simulcast: self.cfg.conference_simulcast,
            ..self.cfg.browser_media
        }
    }

    /// The participant's account and partner, and a browser's checked offer (required from
    /// a browser with `what`; an edge client's `sdp` is ignored).
    fn participant(
        &self,
        ep: &EndpointId,
        sdp: Option<&str>,
        what: &str,
    ) -> Result<(AccountId, PartnerId, Option<CheckedOffer>), CallError> {
        let Some(e) = self.endpoints.get(ep) else {
            return Err(err(ErrorCode::NotLoggedIn, "unknown endpoint"));
        };
        let offer = match e.kind {
            ClientKind::Browser => {
                let Some(sdp) = sdp else {
                    return Err(err(
                        ErrorCode::InvalidMessage,
                        &format!("a browser's {what} carries its SDP offer in \"sdp\""),
                    ));
                };
                Some(CheckedOffer::check_conference(
                    sdp,
                    &self.conference_media(),
                )?)
            }
            _ => None,
        };
        Ok((e.account.clone(), e.partner.clone(), offer))
    }

    /// Emits one batch (run in order by the executor).
    fn conf_emit(&mut self, conference: &CallId, batch: Vec<(RelayOp, OpKind)>) {
        let mut ops = Vec::with_capacity(batch.len());
        for (op, kind) in batch {
            if let Some(c) = self.conf.confs.get_mut(conference) {
                c.outstanding.insert(op.id().clone());
            }
            self.conf
                .ops
                .insert(op.id().clone(), (conference.clone(), kind));
            ops.push(op);
        }
        self.relay_out.push_back(ops);
    }

    /// `conference_create`: opens a conference with the creator in it.
    pub fn conference_create(
        &mut self,
        ep: &EndpointId,
        client_ref: Option<String>,
        sdp: Option<&str>,
    ) -> Result<(), CallError> {
        let (account, partner, offer) = self.participant(ep, sdp, "conference_create")?;
        self.check_free(&account)?;
        if !self.cfg.relay {
            return Err(err(
                ErrorCode::Overloaded,
                "this supernode has no relay for conferences",
            ));
        }
        let id = CallId::random();
        let session = RelaySessionId::random();
        self.conf.confs.insert(
            id.clone(),
            Conference {
                partner,
                session: session.clone(),
                members: BTreeMap::new(),
                invites: BTreeMap::new(),
                outstanding: BTreeSet::new(),
                closing: false,
                next_seq: 0,
                speaking: BTreeSet::new(),
                active: None,
                speech_due: false,
                speech_sent: None,
            },
        );
        self.books.sessions_created += 1;
        let op = RelayOp::OpenConference(OpenConference {
            op: OperationId::random(),
            session,
            call: id.clone(),
            max_participants: self.cfg.max_participants as u32,
        });
        self.push(
            ep.clone(),
            ServerMsg::ConferenceCreated {
                conference_id: id.clone(),
                client_ref,
            },
        );
        // One batch: the join runs after the open.
        let mut batch = vec![(op, OpKind::Open)];
        batch.extend(self.add_member(&id, ep, account, offer));
        self.conf_emit(&id, batch);
        Ok(())
    }

    fn check_free(&self, account: &AccountId) -> Result<(), CallError> {
        if self.call_of(account).is_some() || self.conf.of(account).is_some() {
            return Err(err(
                ErrorCode::AlreadyInCall,
                "this account is already in a call",
            ));
        }
        Ok(())
    }

    /// Records `ep` as joining and returns the relay operation that makes its transport.
    fn add_member(
        &mut self,
        id: &CallId,
        ep: &EndpointId,
        account: AccountId,
        offer: Option<CheckedOffer>,
    ) -> Option<(RelayOp, OpKind)> {
        let srtp = Some(self.cfg.srtp);
        let policy = self.conference_media();
        let c = self.conf.confs.get_mut(id)?;
        let transport = TransportId::random();
        let browser = offer.as_ref().map(|o| o.relay_offer(&transport, &policy));
        let seq = c.next_seq;
        c.next_seq += 1;
        c.members.insert(
            ep.clone(),
            Member {
                account: account.clone(),
                transport: transport.clone(),
                leg: None,
                seq,
                streams: (None, None),
                offer: offer.map(Box::new),
            },
        );
        let session = c.session.clone();
        self.conf.of_account.insert(account, id.clone());
        let op = RelayOp::JoinConference(JoinConference {
            op: OperationId::random(),
            session,
            transport,
            srtp,
            browser,
        });
        Some((op, OpKind::Join(ep.clone())))
    }

    fn conference(&self, id: &CallId, ep: &EndpointId) -> Result<&Conference, CallError> {
        let partner = self.endpoints.get(ep).map(|e| &e.partner);
        match self.conf.confs.get(id) {
            Some(c) if Some(&c.partner) == partner && !c.closing => Ok(c),
            _ => Err(not_yours()),
        }
    }

    /// `conference_invite`: rings every endpoint of `to` on this node.
    pub fn conference_invite(
        &mut self,
        ep: &EndpointId,
        id: &CallId,
        to: AccountId,
    ) -> Result<(), CallError> {
        let c = self.conference(id, ep)?;
        if !c.members.contains_key(ep) {
            return Err(not_yours());
        }
        let from = c.members[ep].account.clone();
        if c.members[ep].leg.is_none() {
            return Err(err(
                ErrorCode::InvalidState,
                "invite once this endpoint has its media (the conference is being opened)",
            ));
        }
        let partner = c.partner.clone();
        if to == from || c.members.values().any(|m| m.account == to) {
            return Err(err(
                ErrorCode::InvalidTarget,
                "that account is in the conference already",
            ));
        }
        let endpoints = if self.partner_of_account(&to) == Some(partner) {
            self.local_endpoints(&to)
        } else {
            BTreeSet::new()
        };
        if endpoints.is_empty() {
            self.push(
                ep.clone(),
                ServerMsg::Unavailable {
                    to,
                    client_ref: None,
                },
            );
            return Ok(());
        }
        if self.call_of(&to).is_some() || self.conf.of(&to).is_some() {
            self.push(
                ep.clone(),
                ServerMsg::Busy {
                    to,
                    client_ref: None,
                },
            );
            return Ok(());
        }
        let participants = self.roster(id);
        if let Some(c) = self.conf.confs.get_mut(id) {
            c.invites
                .entry(to.clone())
                .or_default()
                .extend(endpoints.iter().cloned());
        }
        for e in endpoints {
            self.push(
                e,
                ServerMsg::ConferenceInvite {
                    conference_id: id.clone(),
                    from: from.clone(),
                    participants: participants.clone(),
                },
            );
        }
        self.push(
            ep.clone(),
            ServerMsg::Ringing {
                call_id: id.clone(),
                to,
                client_ref: None,
            },
        );
        Ok(())
    }

    /// `conference_join`: a ringing endpoint of an invited account joins.
    pub fn conference_join(
        &mut self,
        ep: &EndpointId,
        id: &CallId,
        sdp: Option<&str>,
    ) -> Result<(), CallError> {
        let (account, _, offer) = self.participant(ep, sdp, "conference_join")?;
        let c = self.conference(id, ep)?;
        if c.members.contains_key(ep) {
            return Err(err(ErrorCode::InvalidState, "already in this conference"));
        }
        let Some(ringing) = c.invites.get(&account) else {
            if c.members.values().any(|m| m.account == account) {
                return Err(err(
                    ErrorCode::InvalidState,
                    "answered in another endpoint of this account",
                ));
            }
            return Err(not_yours());
        };
        if !ringing.contains(ep) {
            return Err(not_yours());
        }
        if c.members.len() >= self.cfg.max_participants {
            return Err(err(
                ErrorCode::ConferenceFull,
                &format!(
                    "the conference is full ({} participants)",
                    self.cfg.max_participants
                ),
            ));
        }
        if self.call_of(&account).is_some() {
            return Err(err(
                ErrorCode::AlreadyInCall,
                "this account is already in a call",
            ));
        }
        let ringing = self
            .conf
            .confs
            .get_mut(id)
            .and_then(|c| c.invites.remove(&account))
            .unwrap_or_default();
        for other in ringing.into_iter().filter(|e| e != ep) {
            self.push(
                other,
                ServerMsg::AnsweredElsewhere {
                    call_id: id.clone(),
                },
            );
        }
        if let Some(op) = self.add_member(id, ep, account, offer) {
            self.conf_emit(id, vec![op]);
        }
        Ok(())
    }

    /// `conference_streams`: a participant with its transport declares the SSRCs it sends;
    /// every participant gets the new roster.
    pub fn conference_streams(
        &mut self,
        ep: &EndpointId,
        id: &CallId,
        audio: Option<u32>,
        video: Option<u32>,
    ) -> Result<(), CallError> {
        let c = self.conference(id, ep)?;
        match c.members.get(ep) {
            Some(m) if m.leg.is_some() => {}
            Some(_) => {
                return Err(err(
                    ErrorCode::InvalidState,
                    "declare streams once the transport is granted (after media)",
                ));
            }
            None => return Err(not_yours()),
        }
        if let Some(m) = self
            .conf
            .confs
            .get_mut(id)
            .and_then(|c| c.members.get_mut(ep))
        {
            if m.streams == (audio, video) {
                return Ok(());
            }
            m.streams = (audio, video);
        }
        self.send_roster(id);
        Ok(())
    }

    /// `conference_leave`: the endpoint leaves (also: it declines a ringing invite).
    pub fn conference_leave(&mut self, ep: &EndpointId, id: &CallId) -> Result<(), CallError> {
        let c = self.conference(id, ep)?;
        if !c.members.contains_key(ep) {
            let Some(account) = self.endpoints.get(ep).map(|e| e.account.clone()) else {
                return Err(not_yours());
            };
            // A ringing endpoint declines: its account's invite ends.
            let Some(c) = self.conf.confs.get_mut(id) else {
                return Err(not_yours());
            };
            match c.invites.get(&account) {
                Some(r) if r.contains(ep) => {
                    let r = c.invites.remove(&account).unwrap_or_default();
                    for e in r {
                        self.push(
                            e,
                            ServerMsg::CallEnded {
                                call_id: id.clone(),
                                reason: EndReason::Rejected,
                            },
                        );
                    }
                    return Ok(());
                }
                _ => return Err(not_yours()),
            }
        }
        self.remove_member(id, ep, EndReason::Hangup);
        Ok(())
    }

    /// Takes `ep` out of the conference (its transport is removed), tells it `call_ended
    /// reason` and the others the new roster; closes an empty conference.
    fn remove_member(&mut self, id: &CallId, ep: &EndpointId, reason: EndReason) {
        let Some(c) = self.conf.confs.get_mut(id) else {
            return;
        };
        let Some(m) = c.members.remove(ep) else {
            return;
        };
        c.speaking.remove(ep);
        if c.active.as_ref() == Some(ep) {
            c.active = None;
        }
        let session = c.session.clone();
        self.conf.of_account.remove(&m.account);
        if self.endpoints.contains_key(ep) {
            self.push(
                ep.clone(),
                ServerMsg::CallEnded {
                    call_id: id.clone(),
                    reason,
                },
            );
        }
        if m.leg.is_some() {
            let op = RelayOp::LeaveConference(LeaveConference {
                op: OperationId::random(),
                session,
                transport: m.transport,
            });
            self.conf_emit(id, vec![(op, OpKind::Leave)]);
        }
        self.send_roster(id);
        self.close_if_empty(id);
    }

    fn close_if_empty(&mut self, id: &CallId) {
        let Some(c) = self.conf.confs.get_mut(id) else {
            return;
        };
        if !c.members.is_empty() {
            return;
        }
        if !c.closing {
            c.closing = true;
            let invites = std::mem::take(&mut c.invites);
            for e in invites.into_values().flatten() {
                self.push(
                    e,
                    ServerMsg::CallEnded {
                        call_id: id.clone(),
                        reason: EndReason::Cancelled,
                    },
                );
            }
        }
        let Some(c) = self.conf.confs.get(id) else {
            return;
        };
        if !c.outstanding.is_empty() {
            return;
        }
        let session = c.session.clone();
        self.conf.confs.remove(id);
        let op = OperationId::random();
        self.conf.releases.insert(op.clone());
        self.books.sessions_released += 1;
        self.relay_out
            .push_back(vec![RelayOp::Release(Release { op, session })]);
    }

    /// Who is in (with a transport granted), in join order.
    fn roster(&self, id: &CallId) -> Vec<Participant> {
        let Some(c) = self.conf.confs.get(id) else {
            return Vec::new();
        };
        let mut m: Vec<(&EndpointId, &Member)> =
            c.members.iter().filter(|(_, m)| m.leg.is_some()).collect();
        m.sort_by_key(|(_, m)| m.seq);
        m.into_iter()
            .map(|(e, m)| Participant {
                account_id: m.account.clone(),
                endpoint_id: e.clone(),
                audio_ssrc: m.streams.0,
                video_ssrc: m.streams.1,
                speaking: c.speaking.contains(e),
            })
            .collect()
    }

    fn send_roster(&mut self, id: &CallId) {
        let participants = self.roster(id);
        let active_speaker = self.conf.confs.get(id).and_then(|c| {
            c.active
                .clone()
                .filter(|a| participants.iter().any(|p| &p.endpoint_id == a))
        });
        if let Some(c) = self.conf.confs.get_mut(id) {
            c.speech_due = false;
        }
        for p in &participants {
            self.push(
                p.endpoint_id.clone(),
                ServerMsg::ConferenceRoster {
                    conference_id: id.clone(),
                    participants: participants.clone(),
                    active_speaker: active_speaker.clone(),
                },
            );
        }
    }

    /// What the mixer of the conference on relay session `session` says about voices: the
    /// roster goes out at once, or (within [`SPEECH_ROSTER_EVERY`] of the last one sent for
    /// speech) from [`Self::handle_timeout`] when that time has passed. Events about
    /// transports that are not (or no longer) a participant's are ignored.
    pub fn conference_speech(&mut self, now: Instant, session: &RelaySessionId, ev: SpeechEvent) {
        let Some((id, c)) = self
            .conf
            .confs
            .iter_mut()
            .find(|(_, c)| &c.session == session && !c.closing)
        else {
            return;
        };
        let endpoint_of = |t: &TransportId| {
            c.members
                .iter()
                .find(|(_, m)| &m.transport == t)
                .map(|(e, _)| e.clone())
        };
        let changed = match ev {
            SpeechEvent::Speaking {
                transport,
                speaking,
            } => match endpoint_of(&transport) {
                Some(e) if speaking => c.speaking.insert(e),
                Some(e) => c.speaking.remove(&e),
                None => false,
            },
            SpeechEvent::ActiveSpeaker(t) => {
                let a = match t {
                    Some(t) => match endpoint_of(&t) {
                        Some(e) => Some(e),
                        None => return,
                    },
                    None => None,
                };
                let changed = c.active != a;
                c.active = a;
                changed
            }
        };
        if changed {
            c.speech_due = true;
            let id = id.clone();
            self.flush_speech(now, Some(&id));
        }
    }

    /// When a rate-limited speech roster is next due.
    pub(super) fn speech_timeout(&self) -> Option<Instant> {
        self.conf
            .confs
            .values()
            .filter_map(|c| {
                c.speech_sent
                    .filter(|_| c.speech_due)
                    .map(|t| t + SPEECH_ROSTER_EVERY)
            })
            .min()
    }

    /// Sends the speech rosters that are due at `now` (of `only`, or of every conference).
    pub(super) fn flush_speech(&mut self, now: Instant, only: Option<&CallId>) {
        let due: Vec<CallId> = self
            .conf
            .confs
            .iter()
            .filter(|(id, _)| only.is_none_or(|o| o == *id))
            .filter(|(_, c)| {
                c.speech_due && c.speech_sent.is_none_or(|t| now >= t + SPEECH_ROSTER_EVERY)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            if let Some(c) = self.conf.confs.get_mut(&id) {
                c.speech_sent = Some(now);
            }
            self.send_roster(&id);
        }
    }

    /// A relay result for a conference operation; `false` when it is not one.
    pub(super) fn conference_result(&mut self, result: &RelayResult) -> bool {
        if self.conf.releases.remove(&result.op) {
            if result.outcome.is_err() {
                self.books.failed_results += 1;
            }
            return true;
        }
        let Some((id, kind)) = self.conf.ops.remove(&result.op) else {
            return false;
        };
        if let Some(c) = self.conf.confs.get_mut(&id) {
            c.outstanding.remove(&result.op);
        }
        if result.outcome.is_err() {
            self.books.failed_results += 1;
        }
        match (kind, &result.outcome) {
            (OpKind::Open, Err(e)) => {
                tracing::warn!(conference = %id, error = %e, "conference open failed");
                let eps: Vec<EndpointId> = self
                    .conf
                    .confs
                    .get(&id)
                    .map(|c| c.members.keys().cloned().collect())
                    .unwrap_or_default();
                for ep in eps {
                    self.remove_member(&id, &ep, EndReason::RelayFailure);
                }
            }
            (OpKind::Join(ep), Err(e)) => {
                tracing::warn!(conference = %id, error = %e, "conference join failed");
                self.remove_member(&id, &ep, EndReason::RelayFailure);
            }
            (OpKind::Join(ep), Ok(RelayOutcome::TransportAdded(g))) => {
                let (public_ip, policy) = (self.cfg.public_ip, self.conference_media());
                let mut leg = LegInfo {
                    leg_id: g.transport.clone(),
                    address: g.address.clone(),
                    srtp: g.srtp.clone(),
                    sdp: None,
                };
                let mut unusable = None;
                let granted = match self
                    .conf
                    .confs
                    .get_mut(&id)
                    .and_then(|c| c.members.get_mut(&ep))
                {
                    Some(m) if m.transport == g.transport => {
                        match m.offer.as_ref().map(|o| o.answer(g, public_ip, &policy)) {
                            Some(Ok(sdp)) => leg.sdp = Some(sdp),
                            Some(Err(e)) => unusable = Some(e),
                            None => {}
                        }
                        m.leg = Some(leg.clone());
                        true
                    }
                    _ => false,
                };
                if let Some(e) = unusable {
                    // Not a usable grant: the transport is removed, the endpoint told.
                    tracing::warn!(conference = %id, error = %e, "relay grant unusable");
                    self.remove_member(&id, &ep, EndReason::RelayFailure);
                } else if granted {
                    self.push(
                        ep.clone(),
                        ServerMsg::Media {
                            call_id: id.clone(),
                            leg,
                        },
                    );
                    self.send_roster(&id);
                } else if let Some(c) = self.conf.confs.get(&id) {
                    // Left (or disconnected) while its transport was being made.
                    let op = RelayOp::LeaveConference(LeaveConference {
                        op: OperationId::random(),
                        session: c.session.clone(),
                        transport: g.transport.clone(),
                    });
                    self.conf_emit(&id, vec![(op, OpKind::Leave)]);
                }
            }
            _ => {}
        }
        self.close_if_empty(&id);
        true
    }

    /// An endpoint went away: it leaves its conference and stops ringing for others.
    pub(super) fn conference_detach(&mut self, ep: &EndpointId, account: &AccountId) {
        if let Some(id) = self.conf.of(account).cloned() {
            self.remove_member(&id, ep, EndReason::PeerDisconnected);
        }
        let ids: Vec<CallId> = self.conf.confs.keys().cloned().collect();
        for id in ids {
            if let Some(c) = self.conf.confs.get_mut(&id)
                && let Some(r) = c.invites.get_mut(account)
            {
                r.remove(ep);
                if r.is_empty() {
                    c.invites.remove(account);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use supernode_proto::relay_ops::{RelayOpError, TransportGrant};

    use super::*;
    use crate::calls::CallConfig;

    fn core(max: usize) -> CallCore {
        CallCore::new(
            CallConfig {
                max_participants: max,
                ..CallConfig::default()
            },
            Arc::new(crate::directory::InMemoryDirectory::new()),
        )
    }

    /// `N` accounts of one partner attached, and a conference created by the first: the
    /// open batch (open + the creator's join) is polled, not yet answered.
    struct Opened<const N: usize> {
        core: CallCore,
        accounts: [AccountId; N],
        eps: [EndpointId; N],
        id: CallId,
        session: RelaySessionId,
        open: Vec<RelayOp>,
    }

    fn opened<const N: usize>(max: usize) -> Opened<N> {
        let mut core = core(max);
        let p = PartnerId::random();
        let accounts: [AccountId; N] = std::array::from_fn(|_| AccountId::random());
        let eps = accounts.clone().map(|a| core.attach(a, p.clone()));
        core.conference_create(&eps[0], None, None).unwrap();
        let open = core.poll_relay().unwrap();
        let RelayOp::OpenConference(o) = &open[0] else {
            panic!("{open:?}")
        };
        let (id, session) = (o.call.clone(), o.session.clone());
        Opened {
            core,
            accounts,
            eps,
            id,
            session,
            open,
        }
    }

    /// Answers each of `ops` with its success.
    fn grant_all(core: &mut CallCore, ops: &[RelayOp]) {
        for op in ops {
            core.handle_relay_result(grant(op));
        }
    }

    fn drain(core: &mut CallCore) -> Vec<(EndpointId, ServerMsg)> {
        std::iter::from_fn(|| core.poll_output().map(|o| (o.to, o.msg))).collect()
    }

    fn grant(op: &RelayOp) -> RelayResult {
        match op {
            RelayOp::JoinConference(j) => RelayResult {
                op: j.op.clone(),
                outcome: Ok(RelayOutcome::TransportAdded(TransportGrant {
                    transport: j.transport.clone(),
                    address: "127.0.0.1:40000".into(),
                    srtp: None,
                    browser: None,
                })),
            },
            RelayOp::OpenConference(o) => RelayResult {
                op: o.op.clone(),
                outcome: Ok(RelayOutcome::SessionCreated),
            },
            RelayOp::LeaveConference(l) => RelayResult {
                op: l.op.clone(),
                outcome: Ok(RelayOutcome::Left),
            },
            other => RelayResult {
                op: other.id().clone(),
                outcome: Ok(RelayOutcome::Released),
            },
        }
    }

    /// A failed join ends the conference for that endpoint only; a participant that leaves
    /// while its transport is being made has it removed when it comes; the session is
    /// released once, after every operation of it was answered.
    #[test]
    fn failed_and_abandoned_joins_and_one_release_at_the_end() {
        let Opened {
            mut core,
            accounts: [_, b, c],
            eps: [ea, eb, ec],
            id,
            open,
            ..
        } = opened::<3>(3);
        assert_eq!(open.len(), 2, "open and the creator's join in one batch");
        let RelayOp::OpenConference(o) = &open[0] else {
            panic!()
        };
        assert_eq!(o.max_participants, 3);
        // Inviting before one's own transport exists is refused.
        assert_eq!(
            core.conference_invite(&ea, &id, b.clone())
                .unwrap_err()
                .code,
            ErrorCode::InvalidState
        );
        grant_all(&mut core, &open);
        drain(&mut core);
        core.conference_invite(&ea, &id, b.clone()).unwrap();
        core.conference_invite(&ea, &id, c.clone()).unwrap();
        // Bob's join fails at the relay: he is told, Alice's roster stays one.
        core.conference_join(&eb, &id, None).unwrap();
        let jb = core.poll_relay().unwrap();
        core.handle_relay_result(jb[0].failed(RelayOpError::Exhausted));
        let out = drain(&mut core);
        assert!(out.contains(&(
            eb.clone(),
            ServerMsg::CallEnded {
                call_id: id.clone(),
                reason: EndReason::RelayFailure
            }
        )));
        assert_eq!(core.conference_members(&id), vec![ea.clone()]);
        assert!(core.conf.of(&b).is_none(), "Bob is free again");
        // Carol joins and leaves before her transport comes: it is removed on arrival.
        core.conference_join(&ec, &id, None).unwrap();
        let jc = core.poll_relay().unwrap();
        core.conference_leave(&ec, &id).unwrap();
        assert!(core.poll_relay().is_none(), "nothing to remove yet");
        core.handle_relay_result(grant(&jc[0]));
        let leave = core.poll_relay().unwrap();
        assert!(matches!(leave[0], RelayOp::LeaveConference(_)), "{leave:?}");
        // Alice leaves: the conference closes, but the release waits for the leave.
        core.conference_leave(&ea, &id).unwrap();
        let leave_a = core.poll_relay().unwrap();
        assert!(matches!(leave_a[0], RelayOp::LeaveConference(_)));
        core.handle_relay_result(grant(&leave_a[0]));
        assert!(
            core.poll_relay().is_none(),
            "Carol's removal is outstanding"
        );
        core.handle_relay_result(grant(&leave[0]));
        let release = core.poll_relay().unwrap();
        assert!(matches!(release[0], RelayOp::Release(_)), "{release:?}");
        core.handle_relay_result(grant(&release[0]));
        assert!(core.poll_relay().is_none());
        assert_eq!(core.conference_count(), 0);
        assert_eq!(core.relay_books().sessions_released, 1);
        assert_eq!(core.relay_books().unknown_results, 0);
        // Everyone may call again.
        core.conference_create(&eb, None, None).unwrap();
    }

    #[test]
    fn a_join_past_max_participants_is_conference_full() {
        let Opened {
            mut core,
            accounts,
            eps,
            id,
            open,
            ..
        } = opened::<3>(2);
        grant_all(&mut core, &open);
        core.conference_invite(&eps[0], &id, accounts[1].clone())
            .unwrap();
        core.conference_invite(&eps[0], &id, accounts[2].clone())
            .unwrap();
        core.conference_join(&eps[1], &id, None).unwrap();
        // Joining (not yet granted) counts.
        let e = core.conference_join(&eps[2], &id, None).unwrap_err();
        assert_eq!(e.code, ErrorCode::ConferenceFull);
        assert_eq!(core.conference_members(&id).len(), 2);
    }

    /// `conference_streams`: only a participant with its transport declares; the roster
    /// every participant gets then carries the SSRCs; an unchanged declaration sends
    /// nothing.
    #[test]
    fn declared_streams_appear_in_everyones_roster() {
        let Opened {
            mut core,
            accounts: [_, b, _],
            eps: [ea, eb, ec],
            id,
            open,
            ..
        } = opened::<3>(4);
        grant_all(&mut core, &open);
        core.conference_invite(&ea, &id, b.clone()).unwrap();
        core.conference_join(&eb, &id, None).unwrap();
        // Bob's transport is not made yet: too early.
        let e = core
            .conference_streams(&eb, &id, Some(1), Some(2))
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidState);
        let jb = core.poll_relay().unwrap();
        core.handle_relay_result(grant(&jb[0]));
        drain(&mut core);
        // Carol is not in it.
        assert!(core.conference_streams(&ec, &id, None, Some(9)).is_err());
        core.conference_streams(&eb, &id, Some(0xB0), Some(0xB1))
            .unwrap();
        let out = drain(&mut core);
        assert_eq!(out.len(), 2, "{out:?}");
        for to in [&ea, &eb] {
            let (_, msg) = out.iter().find(|(e, _)| e == to).expect("a roster each");
            let ServerMsg::ConferenceRoster { participants, .. } = msg else {
                panic!("{msg:?}")
            };
            assert_eq!(participants.len(), 2);
            let bob = participants.iter().find(|x| x.endpoint_id == eb).unwrap();
            assert_eq!((bob.audio_ssrc, bob.video_ssrc), (Some(0xB0), Some(0xB1)));
            let alice = participants.iter().find(|x| x.endpoint_id == ea).unwrap();
            assert_eq!((alice.audio_ssrc, alice.video_ssrc), (None, None));
        }
        core.conference_streams(&eb, &id, Some(0xB0), Some(0xB1))
            .unwrap();
        assert!(drain(&mut core).is_empty(), "nothing changed");
    }
    /// Who speaks reaches every participant's roster: a change at once, the next within
    /// 500 ms only once that time has passed (from the timer), with the active speaker;
    /// repeated or foreign events send nothing.
    #[test]
    fn speech_rosters_are_rate_limited_and_name_the_active_speaker() {
        let Opened {
            mut core,
            accounts: [_, b],
            eps: [ea, eb],
            id,
            session,
            open,
        } = opened::<2>(4);
        let transport_of = |op: &RelayOp| match op {
            RelayOp::JoinConference(j) => j.transport.clone(),
            other => panic!("{other:?}"),
        };
        let ta = transport_of(&open[1]);
        grant_all(&mut core, &open);
        core.conference_invite(&ea, &id, b.clone()).unwrap();
        core.conference_join(&eb, &id, None).unwrap();
        let jb = core.poll_relay().unwrap();
        let tb = transport_of(&jb[0]);
        core.handle_relay_result(grant(&jb[0]));
        drain(&mut core);
        let rosters = |out: Vec<(EndpointId, ServerMsg)>| -> Vec<(EndpointId, Vec<bool>, Option<EndpointId>)> {
            out.into_iter()
                .filter_map(|(to, m)| match m {
                    ServerMsg::ConferenceRoster {
                        participants,
                        active_speaker,
                        ..
                    } => Some((
                        to,
                        participants.iter().map(|p| p.speaking).collect(),
                        active_speaker,
                    )),
                    _ => None,
                })
                .collect()
        };
        let t0 = Instant::now();
        let speaks = |t: &TransportId, on: bool| SpeechEvent::Speaking {
            transport: t.clone(),
            speaking: on,
        };
        core.conference_speech(t0, &session, speaks(&ta, true));
        let r = rosters(drain(&mut core));
        assert_eq!(r.len(), 2, "one roster each");
        assert!(
            r.iter()
                .all(|(_, s, act)| s == &vec![true, false] && act.is_none())
        );
        // The same again: nothing. An unknown transport or session: nothing.
        core.conference_speech(t0, &session, speaks(&ta, true));
        core.conference_speech(t0, &session, speaks(&TransportId::random(), true));
        core.conference_speech(t0, &RelaySessionId::random(), speaks(&tb, true));
        assert!(drain(&mut core).is_empty());
        // 100 ms later Alice becomes the active speaker and Bob speaks: held back.
        let t1 = t0 + Duration::from_millis(100);
        core.conference_speech(t1, &session, SpeechEvent::ActiveSpeaker(Some(ta.clone())));
        core.conference_speech(t1, &session, speaks(&tb, true));
        assert!(drain(&mut core).is_empty(), "within 500 ms of the last");
        assert_eq!(core.poll_timeout(), Some(t0 + SPEECH_ROSTER_EVERY));
        core.handle_timeout(t0 + Duration::from_millis(499));
        assert!(drain(&mut core).is_empty());
        core.handle_timeout(t0 + SPEECH_ROSTER_EVERY);
        let r = rosters(drain(&mut core));
        assert_eq!(r.len(), 2);
        assert!(
            r.iter()
                .all(|(_, s, act)| s == &vec![true, true] && act.as_ref() == Some(&ea)),
            "{r:?}"
        );
        assert_eq!(core.poll_timeout(), None, "nothing due");
        // Alice leaves: Bob's roster has her neither speaking nor active.
        core.conference_leave(&ea, &id).unwrap();
        let r = rosters(drain(&mut core));
        assert_eq!(r, vec![(eb.clone(), vec![true], None)]);
    }

    /// A browser grant for a join: ICE-lite credentials and a sha-256 fingerprint.
    fn browser_grant(op: &RelayOp) -> RelayResult {
        let RelayOp::JoinConference(j) = op else {
            panic!("{op:?}")
        };
        RelayResult {
            op: j.op.clone(),
            outcome: Ok(RelayOutcome::TransportAdded(TransportGrant {
                transport: j.transport.clone(),
                address: "127.0.0.1:40100".into(),
                srtp: None,
                browser: Some(supernode_proto::relay_ops::BrowserGrant {
                    ice_ufrag: "rlyC".into(),
                    ice_pwd: "0123456789abcdefABCDEF".into(),
                    fingerprint: supernode_proto::relay_ops::DtlsFingerprint {
                        algorithm: "sha-256".into(),
                        value: vec!["AB"; 32].join(":"),
                    },
                    candidates: vec![],
                }),
            })),
        }
    }

    /// Browsers take part: a browser's create and join carry its offer (none, or a bad
    /// one, is refused and nothing changes); its join becomes a browser transport whose
    /// video m-lines are the slots; its `media` carries the answer (with the MID
    /// extension); an edge client's `sdp` is ignored.
    #[test]
    fn browsers_create_and_join_with_an_offer_and_get_the_answer() {
        use crate::calls::browser::tests::conference_offer;
        use supernode_proto::relay_ops::MediaKindOfLine;
        let mut core = core(4);
        let p = PartnerId::random();
        let (a, b, c) = (
            AccountId::random(),
            AccountId::random(),
            AccountId::random(),
        );
        let ea = core.attach_as(a.clone(), p.clone(), ClientKind::Browser);
        let eb = core.attach(b.clone(), p.clone());
        let ec = core.attach_as(c.clone(), p.clone(), ClientKind::Browser);
        // No offer; a bad one; an offer without audio: refused, nothing opened.
        let e = core.conference_create(&ea, None, None).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidMessage);
        let e = core
            .conference_create(&ea, None, Some("v=0\r\nbogus\r\n"))
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidSdp);
        let no_audio = conference_offer(2).replace("m=audio 9", "m=audio 0");
        let e = core
            .conference_create(&ea, None, Some(&no_audio))
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidSdp);
        assert_eq!(core.conference_count(), 0);
        assert!(core.poll_relay().is_none());
        assert!(drain(&mut core).is_empty());
        assert!(core.conf.of(&a).is_none(), "Alice is still free");

        // A good offer with two recvonly video m-lines: three video slots.
        core.conference_create(&ea, None, Some(&conference_offer(2)))
            .unwrap();
        let open = core.poll_relay().unwrap();
        let RelayOp::JoinConference(j) = &open[1] else {
            panic!("{open:?}")
        };
        let offer = j.browser.as_ref().expect("a browser transport");
        let kinds: Vec<(MediaKindOfLine, Option<&str>)> = offer
            .send
            .iter()
            .map(|s| (s.kind, s.mid.as_deref()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (MediaKindOfLine::Audio, Some("0")),
                (MediaKindOfLine::Video, Some("1")),
                (MediaKindOfLine::Video, Some("2")),
                (MediaKindOfLine::Video, Some("3")),
            ]
        );
        assert_eq!(
            offer.mid_extension_id,
            Some(4),
            "conferences negotiate MIDs"
        );
        core.handle_relay_result(grant(&open[0]));
        core.handle_relay_result(browser_grant(&open[1]));
        let out = drain(&mut core);
        let id = match &open[0] {
            RelayOp::OpenConference(o) => o.call.clone(),
            _ => unreachable!(),
        };
        let sdp = out
            .iter()
            .find_map(|(to, m)| match m {
                ServerMsg::Media { call_id, leg } if to == &ea && call_id == &id => leg.sdp.clone(),
                _ => None,
            })
            .expect("Alice's media carries her answer");
        assert!(sdp.contains("a=ice-ufrag:rlyC\r\n"), "{sdp}");
        assert!(sdp.contains("urn:ietf:params:rtp-hdrext:sdes:mid"), "{sdp}");
        assert_eq!(sdp.matches("m=video").count(), 3);

        // The edge client joins without sdp (and its sdp would be ignored): a client
        // transport, no answer.
        core.conference_invite(&ea, &id, b.clone()).unwrap();
        core.conference_invite(&ea, &id, c.clone()).unwrap();
        core.conference_join(&eb, &id, Some("ignored")).unwrap();
        let jb = core.poll_relay().unwrap();
        let RelayOp::JoinConference(j) = &jb[0] else {
            panic!("{jb:?}")
        };
        assert!(j.browser.is_none() && j.srtp.is_some());
        core.handle_relay_result(grant(&jb[0]));
        let out = drain(&mut core);
        assert!(
            out.iter().any(|(to, m)| to == &eb
                && matches!(m, ServerMsg::Media { leg, .. } if leg.sdp.is_none()))
        );
        // Carol's browser: a bad offer on join changes nothing (she still rings and may
        // join with a good one); a grant without browser parameters ends it for her.
        let e = core.conference_join(&ec, &id, Some("v=0\r\n")).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidSdp);
        assert!(core.poll_relay().is_none());
        assert_eq!(core.conference_members(&id).len(), 2);
        core.conference_join(&ec, &id, Some(&conference_offer(0)))
            .unwrap();
        let jc = core.poll_relay().unwrap();
        core.handle_relay_result(grant(&jc[0]));
        let out = drain(&mut core);
        assert!(out.contains(&(
            ec.clone(),
            ServerMsg::CallEnded {
                call_id: id.clone(),
                reason: EndReason::RelayFailure
            }
        )));
        let leave = core.poll_relay().unwrap();
        assert!(matches!(leave[0], RelayOp::LeaveConference(_)), "{leave:?}");
        assert_eq!(core.conference_members(&id), vec![ea, eb]);
    }
}
