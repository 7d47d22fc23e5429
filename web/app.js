// The supernode web client: demo login, contacts with presence, call / answer / hang up,
// local and remote video, live getStats(), and what the other tabs of the same account see.
//
// Login goes through the demo partner (`POST /demo/login`), which does what a partner's
// server does: creates an anonymous account and a credential with the REST API. A real
// deployment replaces that one call with its own server's. `?name=Alice` logs in at once as
// a new account; `?account=acc_…` opens another tab (endpoint) of an existing demo account.
//
// Group calls (conferences): "Start a group call" creates one, each online contact then
// has an "Invite" button; an invite shows "Join" / "Decline"; the others' videos fill a
// grid (one per video slot of the offer, `conference.js`), the mix of their voices plays
// in one audio element, the roster names who is in and who speaks.
//
// The page's state is also exposed as `window.supernode` (for the browser tests).

import { Signaling } from './signaling.js';
import { CallLeg } from './call.js';
import { ConferenceLeg } from './conference.js';

const $ = (id) => document.getElementById(id);

const app = {
  state: 'logged_out', // logged_out | idle | ringing | calling | connecting | in_call | reconnecting
  account: null,
  endpointId: null,
  iceServers: [],
  contacts: new Map(), // id -> { display_name, online }
  callId: null,
  peer: null,
  incoming: null,
  leg: null,
  notices: [],
  errors: [],
  stats: null,
  sig: null,
  // The group call: { id, leg, roster, activeSpeaker, streamsSent } once created/joined.
  conf: null,
  confInvite: null, // a ringing conference_invite
  confStats: null,
  // Failover: logins again on another node after this one was lost (`reconnecting`
  // state meanwhile), and when the last one was lost and regained (ms since the epoch).
  reconnects: 0,
  lostAt: null,
  regainedAt: null,
};
window.supernode = app;

function setState(state, text) {
  app.state = state;
  document.body.dataset.state = state;
  $('call-status').textContent = text ?? state.replace('_', ' ');
  $('incoming').hidden = state !== 'ringing';
  $('call').hidden = !['calling', 'connecting', 'in_call'].includes(state);
  $('conf-invite').hidden = state !== 'conf_ringing';
  $('conference').hidden = !['conf_joining', 'in_conference'].includes(state);
  $('group-call').disabled = state !== 'idle';
}

function notice(text) {
  app.notices.push({ text, at: Date.now() });
  const el = $('notice');
  el.textContent = text;
  el.hidden = false;
}

function nameOf(id) {
  return app.contacts.get(id)?.display_name || id;
}

async function demoLogin(body) {
  const r = await fetch('/demo/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const j = await r.json();
  if (!r.ok) throw new Error(j?.error?.message || `demo login failed (${r.status})`);
  return j;
}

function wsUrl() {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}/v1/ws`;
}

async function login(body) {
  $('login-error').textContent = '';
  let cred;
  try {
    cred = await demoLogin(body);
  } catch (e) {
    $('login-error').textContent = e.message;
    return;
  }
  app.account = cred.account;
  app.iceServers = cred.ice_servers || [];
  const sig = new Signaling(wsUrl());
  app.sig = sig;
  wire(sig);
  try {
    const ok = await sig.login(cred.token);
    app.endpointId = ok.endpoint_id;
  } catch (e) {
    $('login-error').textContent = e.message;
    return;
  }
  $('login-view').hidden = true;
  $('main-view').hidden = false;
  $('me-name').textContent = app.account.display_name || '(anonymous)';
  $('me-id').textContent = app.account.id;
  const another = new URL(location.href);
  another.search = `?account=${encodeURIComponent(app.account.id)}`;
  $('another-tab').href = another.toString();
  setState('idle', 'ready');
  await refreshContacts();
  setInterval(refreshContacts, 3000);
}

async function refreshContacts() {
  let list = [];
  try {
    const r = await fetch('/demo/contacts');
    list = (await r.json()).contacts || [];
  } catch {
    return;
  }
  const fresh = [];
  for (const c of list) {
    if (c.id === app.account.id) continue;
    if (!app.contacts.has(c.id)) {
      app.contacts.set(c.id, { display_name: c.display_name, online: false });
      fresh.push(c.id);
    }
  }
  if (fresh.length) app.sig.send('subscribe_presence', { account_ids: fresh });
  renderContacts();
}

function renderContacts() {
  const ul = $('contacts');
  ul.replaceChildren();
  for (const [id, c] of app.contacts) {
    const li = document.createElement('li');
    li.dataset.account = id;
    li.dataset.online = c.online ? 'true' : 'false';
    const dot = document.createElement('span');
    dot.className = `presence ${c.online ? 'online' : 'offline'}`;
    dot.title = c.online ? 'online' : 'offline';
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = c.display_name || id;
    const btn = document.createElement('button');
    if (app.state === 'in_conference') {
      const inIt = app.conf?.roster.some((p) => p.account_id === id);
      btn.className = 'invite';
      btn.textContent = inIt ? 'In the call' : 'Invite';
      btn.disabled = !c.online || inIt;
      btn.onclick = () => inviteToConference(id);
    } else {
      btn.className = 'call';
      btn.textContent = 'Call';
      btn.disabled = !c.online || app.state !== 'idle';
      btn.onclick = () => call(id);
    }
    li.append(dot, name, btn);
    ul.append(li);
  }
}

function wire(sig) {
  sig.addEventListener('presence', ({ detail }) => {
    const c = app.contacts.get(detail.account_id);
    if (c) {
      c.online = detail.online;
      renderContacts();
    }
  });
  sig.addEventListener('error', ({ detail }) => {
    app.errors.push(detail);
    notice(`error ${detail.code}: ${detail.message}`);
    if (['conference_create', 'conference_join'].includes(detail.in_reply_to)) {
      endConference(detail.code);
      return;
    }
    if (app.conf) return;
    if (['calling', 'connecting'].includes(app.state) && detail.in_reply_to !== 'accept') {
      endCall(detail.code);
    } else if (detail.in_reply_to === 'accept' && app.state === 'connecting') {
      endCall(detail.code);
    }
  });
  sig.addEventListener('incoming_call', ({ detail }) => {
    if (app.state !== 'idle') return;
    app.incoming = detail;
    app.callId = detail.call_id;
    app.peer = detail.from;
    $('incoming-from').textContent = nameOf(detail.from);
    $('notice').hidden = true;
    setState('ringing', `${nameOf(detail.from)} is calling`);
  });
  sig.addEventListener('ringing', ({ detail }) => {
    if (app.conf) {
      notice(`ringing ${nameOf(detail.to)}…`);
      return;
    }
    app.callId = detail.call_id;
    setState('calling', `ringing ${nameOf(detail.to)}…`);
  });
  for (const t of ['busy', 'unavailable']) {
    sig.addEventListener(t, ({ detail }) => {
      if (app.conf) notice(`${nameOf(detail.to)} is ${t}`);
      else endCall(t);
    });
  }
  sig.addEventListener('accepted', () => {
    setState('connecting', 'answered, connecting media…');
  });
  sig.addEventListener('answered_elsewhere', ({ detail }) => {
    if (app.confInvite && detail.call_id === app.confInvite.conference_id) {
      app.confInvite = null;
      setState('idle', 'ready');
      notice('Joined the group call in another tab');
      return;
    }
    if (detail.call_id !== app.callId) return;
    app.callId = null;
    app.incoming = null;
    setState('idle', 'ready');
    notice('Answered in another tab');
  });
  sig.addEventListener('call_notice', ({ detail }) => {
    if (detail.state === 'answered') notice(`In a call with ${nameOf(detail.peer)} in another tab`);
    else if (detail.state === 'outgoing') notice(`Calling ${nameOf(detail.peer)} from another tab`);
    else notice(`Call with ${nameOf(detail.peer)} ended (another tab)`);
  });
  wireConference(sig);
  sig.addEventListener('media', async ({ detail }) => {
    if (app.conf && detail.call_id === app.conf.id) return;
    if (detail.call_id !== app.callId || !app.leg) return;
    if (!detail.leg.sdp) {
      notice('the supernode sent no SDP answer');
      return;
    }
    try {
      await app.leg.answer(detail.leg.sdp);
      $('remote').play().catch(() => {});
      setState('in_call', `in call with ${nameOf(app.peer)}`);
    } catch (e) {
      notice(`could not apply the answer: ${e.message}`);
      sig.send('hangup', { call_id: app.callId });
      endCall('bad_answer');
    }
  });
  sig.addEventListener('call_ended', ({ detail }) => {
    if (app.conf && detail.call_id === app.conf.id) endConference(detail.reason);
    else if (app.confInvite && detail.call_id === app.confInvite.conference_id) {
      app.confInvite = null;
      setState('idle', 'ready');
    } else if (detail.call_id === app.callId) endCall(detail.reason);
  });
  sig.addEventListener('close', async ({ detail }) => {
    endConference('disconnected');
    endCall('disconnected');
    if (detail.byUs || !sig.nodes.length) {
      notice('disconnected from the supernode');
      setState('logged_out', 'disconnected');
      return;
    }
    // The node died (or dropped us): log in again on another node of the network. A call
    // in progress ended with it (a browser calls again; edge clients resume theirs).
    app.lostAt = Date.now();
    notice('disconnected from the supernode: reconnecting…');
    setState('reconnecting', 'reconnecting…');
    try {
      const ok = await sig.reconnect();
      app.endpointId = ok.endpoint_id;
      app.reconnects += 1;
      app.regainedAt = Date.now();
      // A new endpoint: its presence subscriptions start empty.
      if (app.contacts.size) sig.send('subscribe_presence', { account_ids: [...app.contacts.keys()] });
      notice(`reconnected to ${new URL(sig.url).host}`);
      setState('idle', 'ready');
    } catch (e) {
      notice(`could not reconnect: ${e.message}`);
      setState('logged_out', 'disconnected');
    }
  });
}

async function startLeg() {
  app.leg = await CallLeg.start({
    iceServers: app.iceServers,
    iceTransportPolicy: new URL(location.href).searchParams.get('relay') === '1' ? 'relay' : 'all',
  });
  $('local').srcObject = app.leg.localStream;
  // Picture and sound in their own elements: a video element stalls when the stream's
  // audio cannot be played (a machine without an audio device).
  app.leg.onRemoteStream = (stream) => {
    const v = $('remote');
    const video = stream.getVideoTracks();
    if (video.length && (!v.srcObject || v.srcObject.getVideoTracks()[0] !== video[0])) {
      v.srcObject = new MediaStream(video);
    }
    v.play().catch(() => {});
    const a = $('remote-audio');
    const audio = stream.getAudioTracks();
    if (audio.length && (!a.srcObject || a.srcObject.getAudioTracks()[0] !== audio[0])) {
      a.srcObject = new MediaStream(audio);
    }
    a.play().catch(() => {});
  };
}

async function call(to) {
  if (app.state !== 'idle') return;
  app.peer = to;
  $('notice').hidden = true;
  setState('calling', `calling ${nameOf(to)}…`);
  try {
    await startLeg();
  } catch (e) {
    notice(`camera/microphone: ${e.message}`);
    endCall('no_media');
    return;
  }
  app.sig.send('invite', { to, media: 'audio_video', sdp: app.leg.offerSdp, client_ref: 'web' });
}

async function accept() {
  if (app.state !== 'ringing') return;
  const callId = app.callId;
  setState('connecting', 'answering…');
  try {
    await startLeg();
  } catch (e) {
    notice(`camera/microphone: ${e.message}`);
    app.sig.send('reject', { call_id: callId });
    endCall('no_media');
    return;
  }
  app.acceptSentAt = Date.now();
  app.sig.send('accept', { call_id: callId, sdp: app.leg.offerSdp });
}

function endCall(reason) {
  if (app.leg) app.leg.close();
  app.leg = null;
  $('local').srcObject = null;
  $('remote').srcObject = null;
  $('remote-audio').srcObject = null;
  if (app.state !== 'logged_out') {
    const was = app.state;
    app.callId = null;
    app.incoming = null;
    setState('idle', was === 'idle' ? 'ready' : `call ended: ${reason}`);
    document.body.dataset.lastEnd = reason;
  }
  renderContacts();
}

function hangup() {
  if (!app.callId) return endCall('hangup');
  const verb = app.state === 'calling' ? 'cancel' : 'hangup';
  app.sig.send(verb, { call_id: app.callId });
}

// ---- group calls ----

function wireConference(sig) {
  sig.addEventListener('conference_created', ({ detail }) => {
    if (app.conf && !app.conf.id) app.conf.id = detail.conference_id;
  });
  sig.addEventListener('conference_invite', ({ detail }) => {
    if (app.state !== 'idle') return;
    app.confInvite = detail;
    $('conf-invite-from').textContent = nameOf(detail.from);
    $('notice').hidden = true;
    setState('conf_ringing', `${nameOf(detail.from)} invites you to a group call`);
  });
  sig.addEventListener('conference_roster', ({ detail }) => {
    if (!app.conf || detail.conference_id !== app.conf.id) return;
    app.conf.roster = detail.participants;
    app.conf.activeSpeaker = detail.active_speaker ?? null;
    renderRoster();
    renderContacts();
  });
  sig.addEventListener('media', async ({ detail }) => {
    if (!app.conf || detail.call_id !== app.conf.id || !app.conf.leg) return;
    if (!detail.leg.sdp) {
      notice('the supernode sent no SDP answer');
      return;
    }
    try {
      await app.conf.leg.answer(detail.leg.sdp);
      setState('in_conference', 'in a group call');
      renderContacts();
    } catch (e) {
      notice(`could not apply the answer: ${e.message}`);
      leaveConference();
    }
  });
}

async function startConferenceLeg() {
  const q = new URL(location.href).searchParams;
  const leg = await ConferenceLeg.start({
    iceServers: app.iceServers,
    iceTransportPolicy: q.get('relay') === '1' ? 'relay' : 'all',
    // `?audio=raw`: the microphone without echo cancellation, noise suppression and gain
    // control (the browser tests measure a tone through the mixer).
    audio: q.get('audio') === 'raw'
      ? { echoCancellation: false, noiseSuppression: false, autoGainControl: false }
      : true,
  });
  $('conf-local').srcObject = leg.localStream;
  leg.onAudio = (stream) => {
    const a = $('conf-audio');
    a.srcObject = stream;
    a.play().catch(() => {});
  };
  leg.onTile = (mid, track) => {
    let v = document.querySelector(`#grid video[data-mid="${mid}"]`);
    if (!v) {
      const fig = document.createElement('figure');
      v = document.createElement('video');
      v.autoplay = true;
      v.playsInline = true;
      v.muted = true;
      v.dataset.mid = mid;
      const cap = document.createElement('figcaption');
      cap.textContent = `video ${mid}`;
      fig.append(v, cap);
      $('grid').append(fig);
    }
    v.srcObject = new MediaStream([track]);
    v.play().catch(() => {});
  };
  return leg;
}

async function groupCall() {
  if (app.state !== 'idle') return;
  $('notice').hidden = true;
  app.conf = { id: null, leg: null, roster: [], activeSpeaker: null, streamsSent: false };
  setState('conf_joining', 'opening a group call…');
  try {
    app.conf.leg = await startConferenceLeg();
  } catch (e) {
    notice(`camera/microphone: ${e.message}`);
    endConference('no_media');
    return;
  }
  app.sig.send('conference_create', { sdp: app.conf.leg.offerSdp, client_ref: 'web' });
}

function inviteToConference(accountId) {
  if (!app.conf?.id || app.state !== 'in_conference') return;
  app.sig.send('conference_invite', { conference_id: app.conf.id, to: accountId });
}

async function joinConference() {
  const inv = app.confInvite;
  if (!inv || app.state !== 'conf_ringing') return;
  app.confInvite = null;
  app.conf = { id: inv.conference_id, leg: null, roster: [], activeSpeaker: null, streamsSent: false };
  setState('conf_joining', 'joining the group call…');
  try {
    app.conf.leg = await startConferenceLeg();
  } catch (e) {
    notice(`camera/microphone: ${e.message}`);
    app.sig.send('conference_leave', { conference_id: inv.conference_id });
    endConference('no_media');
    return;
  }
  app.sig.send('conference_join', { conference_id: inv.conference_id, sdp: app.conf.leg.offerSdp });
}

function declineConference() {
  const inv = app.confInvite;
  if (!inv) return;
  app.confInvite = null;
  app.sig.send('conference_leave', { conference_id: inv.conference_id });
  setState('idle', 'ready');
}

function leaveConference() {
  if (app.conf?.id) app.sig.send('conference_leave', { conference_id: app.conf.id });
  endConference('left');
}

function endConference(reason) {
  if (!app.conf) return;
  if (app.conf.leg) app.conf.leg.close();
  app.conf = null;
  app.confStats = null;
  $('grid').replaceChildren();
  $('roster').replaceChildren();
  $('conf-audio').srcObject = null;
  $('conf-local').srcObject = null;
  if (app.state !== 'logged_out') {
    setState('idle', `group call ended: ${reason}`);
    document.body.dataset.lastEnd = reason;
  }
  renderContacts();
}

function renderRoster() {
  const ul = $('roster');
  ul.replaceChildren();
  for (const p of app.conf.roster) {
    const li = document.createElement('li');
    li.dataset.account = p.account_id;
    li.dataset.speaking = p.speaking ? 'true' : 'false';
    li.dataset.active = p.endpoint_id === app.conf.activeSpeaker ? 'true' : 'false';
    li.textContent = p.account_id === app.account.id ? 'you' : nameOf(p.account_id);
    ul.append(li);
  }
}

async function pollConferenceStats() {
  const conf = app.conf;
  if (!conf?.leg || app.state !== 'in_conference') return;
  const s = await conf.leg.stats();
  app.confStats = s;
  // Name this browser's streams in the roster (edge clients map SSRCs to participants).
  if (!conf.streamsSent && s.audioOut.ssrc && s.videoOut.ssrc) {
    conf.streamsSent = app.sig.send('conference_streams', {
      conference_id: conf.id,
      audio_ssrc: s.audioOut.ssrc,
      video_ssrc: s.videoOut.ssrc,
    });
  }
  const lines = [
    `connection   ${s.connection}`,
    `mix in       ${s.audioIn.totalSamplesReceived ?? 0} samples, ${s.audioIn.packetsLost ?? 0} lost`,
  ];
  for (const [mid, v] of Object.entries(s.videoIn)) {
    lines.push(`video ${mid}      ${v.framesDecoded} frames decoded, ${v.frameWidth}x${v.frameHeight}, ${v.packetsLost} lost`);
  }
  lines.push(`video out    ${s.videoOut.framesEncoded ?? 0} frames encoded`);
  $('conf-stats').textContent = lines.join('\n');
}

async function pollStats() {
  if (!app.leg) return;
  const s = await app.leg.stats();
  app.stats = s;
  const lossPct = (o) =>
    o.packetsReceived ? ((100 * o.packetsLost) / (o.packetsReceived + o.packetsLost)).toFixed(2) : '0.00';
  $('stats').textContent = [
    `connection        ${s.connection}`,
    `rtt               ${s.rttMs == null ? '-' : s.rttMs.toFixed(1) + ' ms'}`,
    `video in          ${s.videoIn.framesDecoded ?? 0} frames decoded, ${s.videoIn.frameWidth ?? 0}x${s.videoIn.frameHeight ?? 0} @ ${s.videoIn.framesPerSecond ?? 0} fps, lost ${lossPct(s.videoIn)} %`,
    `audio in          ${s.audioIn.totalSamplesReceived ?? 0} samples, lost ${lossPct(s.audioIn)} %`,
    `video out         ${s.videoOut.framesEncoded ?? 0} frames encoded (${s.videoOut.encoder ?? ''}), ${s.videoOut.bytesSent ?? 0} B`,
    `audio out         ${s.audioOut.packetsSent ?? 0} packets`,
  ].join('\n');
}

$('login').onclick = () => login({ name: $('name').value.trim() || undefined });
$('name').addEventListener('keydown', (e) => {
  if (e.key === 'Enter') $('login').click();
});
$('accept').onclick = accept;
$('reject').onclick = () => {
  if (app.callId) app.sig.send('reject', { call_id: app.callId });
};
$('hangup').onclick = hangup;
$('group-call').onclick = groupCall;
$('conf-join').onclick = joinConference;
$('conf-decline').onclick = declineConference;
$('conf-leave').onclick = leaveConference;
setInterval(pollStats, 1000);
setInterval(pollConferenceStats, 1000);

const params = new URL(location.href).searchParams;
if (params.get('account')) login({ account_id: params.get('account') });
else if (params.get('name')) login({ name: params.get('name') });
