// The supernode web client: demo login, contacts with presence, call / answer / hang up,
// local and remote video, live getStats(), and what the other tabs of the same account see.
//
// Login goes through the demo partner (`POST /demo/login`), which does what a partner's
// server does: creates an anonymous account and a credential with the REST API. A real
// deployment replaces that one call with its own server's. `?name=Alice` logs in at once as
// a new account; `?account=acc_…` opens another tab (endpoint) of an existing demo account.
//
// The page's state is also exposed as `window.supernode` (for the browser tests).

import { Signaling } from './signaling.js';
import { CallLeg } from './call.js';

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
    btn.className = 'call';
    btn.textContent = 'Call';
    btn.disabled = !c.online || app.state !== 'idle';
    btn.onclick = () => call(id);
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
    app.callId = detail.call_id;
    setState('calling', `ringing ${nameOf(detail.to)}…`);
  });
  for (const t of ['busy', 'unavailable']) {
    sig.addEventListener(t, () => endCall(t));
  }
  sig.addEventListener('accepted', () => {
    setState('connecting', 'answered, connecting media…');
  });
  sig.addEventListener('answered_elsewhere', ({ detail }) => {
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
  sig.addEventListener('media', async ({ detail }) => {
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
    if (detail.call_id === app.callId) endCall(detail.reason);
  });
  sig.addEventListener('close', async ({ detail }) => {
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
setInterval(pollStats, 1000);

const params = new URL(location.href).searchParams;
if (params.get('account')) login({ account_id: params.get('account') });
else if (params.get('name')) login({ name: params.get('name') });
