// Browser tests of the supernode web client: real headless Chromium (Debian's
// /usr/bin/chromium, fake camera and microphone) driven by playwright-core.
//
//   node run.mjs --base http://127.0.0.1:PORT --scenario tabs|b2b|relay-b2b|edge-callee|edge-caller|conference \
//                [--out DIR] [--seconds N] [--callee-account acc_…] [--invite acc_…,acc_…] \
//                [--wavs A.wav,B.wav]
//
// The supernode must run with the demo partner on. Prints one JSON line per check and a
// final `{"scenario", "ok", ...}` line; exits 0 when every check passed, 1 when one failed,
// 2 on a usage error, 3 when Chromium is missing.
//
// Scenarios
// * tabs: three tabs of one account ring; the first to answer takes the call, the other two
//   show "Answered in another tab" within 1 s, and a late accept from one of them is refused
//   `invalid_state`. Needs no media.
// * b2b: a browser calls a browser through the supernode; on each side framesDecoded and
//   audio totalSamplesReceived grow and packetsLost stays under 1 %; screenshots of both.
// * relay-b2b: b2b with both browsers forced to `iceTransportPolicy: "relay"` (the page's
//   `?relay=1`): their media must go through the TURN server of the login's `ice_servers`;
//   checks as b2b, and that each selected local candidate is of type `relay`.
// * edge-callee: a browser calls the account `--callee-account` (an edge client that
//   answers), checks the browser's receive statistics, then reads its statistics a last
//   time and hangs up at once (`facts.final`: what it sent and decoded, for the test to
//   compare with the edge's report).
// * edge-caller: a browser logs in as a new account, prints `{"browser_account": id}` and
//   waits for an edge client to call it; answers, checks its statistics, then as
//   edge-callee reads them a last time and hangs up.
// * conference: two browsers (separate Chromium processes, each with its own microphone
//   file of `--wavs`, no audio processing) in a group call with the accounts of `--invite`
//   (edge clients that wait for an invite): browser A starts it with "Start a group call"
//   and invites browser B and the others from its contacts; B joins from the invite. Once
//   each browser's roster has everyone, on each: the mix's totalSamplesReceived grows, as
//   many remote videos as there are others have framesDecoded growing, and packetsLost
//   stays under 1 % for audio and each video. The browsers stay until the others left
//   (the roster is down to the two of them), then leave.
// * simulcast: two browsers in a group call, A publishing three simulcast layers. Once B
//   decodes A's top layer (720 lines), prints `{"receiver_port": N}` (B's local UDP port: the
//   test throttles what the supernode sends there), then samples B's inbound video every
//   200 ms for `--seconds` s as `{"sample": {t, frameHeight, framesDecoded, ...}}` lines
//   (`t`: Date.now()), and leaves.
// * reconnect (a network of supernodes; `--base` is the node that will be killed): a browser
//   logs in, prints `{"browser_account": id, "node": ws URL}`; the test kills that node. The
//   page must log in again on another node of `login_ok.nodes` (state `reconnecting`, then
//   `idle`), then ring when the test invites it through that node, take the call (its media
//   connected), and go back to `idle` when the caller hangs up.

import { chromium } from 'playwright-core';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--autoplay-policy=no-user-gesture-required',
];

function parseArgs(argv) {
  const out = { out: 'target/web-tests', seconds: 8 };
  for (let i = 2; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, '');
    out[k.replace(/-(.)/g, (_, c) => c.toUpperCase())] = argv[i + 1];
  }
  return out;
}

const opts = parseArgs(process.argv);
if (!opts.base || !opts.scenario) {
  console.error('usage: node run.mjs --base URL --scenario tabs|b2b|edge-callee|edge-caller [--out DIR]');
  process.exit(2);
}
if (!existsSync(CHROMIUM)) {
  console.log(JSON.stringify({ scenario: opts.scenario, ok: false, skipped: `no ${CHROMIUM}` }));
  process.exit(3);
}
mkdirSync(opts.out, { recursive: true });

const failures = [];
const facts = {};
function check(name, ok, detail = {}) {
  console.log(JSON.stringify({ check: name, ok: !!ok, ...detail }));
  if (!ok) failures.push(name);
}

const browsers = [];
const dirs = [];
async function browser(extraArgs = []) {
  const dir = mkdtempSync(join(tmpdir(), 'supernode-chromium-'));
  dirs.push(dir);
  const ctx = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...ARGS, ...extraArgs],
    viewport: { width: 1100, height: 800 },
  });
  browsers.push(ctx);
  return ctx;
}

async function open(ctx, query) {
  const page = ctx.pages().length === 1 && ctx.pages()[0].url() === 'about:blank' && !ctx._used
    ? ctx.pages()[0]
    : await ctx.newPage();
  ctx._used = true;
  page.on('pageerror', (e) => console.log(JSON.stringify({ pageerror: e.message })));
  await page.goto(`${opts.base}/${query}`);
  await page.waitForFunction(() => window.supernode && window.supernode.state === 'idle', null, {
    timeout: 15000,
  });
  return page;
}

const state = (page) => page.evaluate(() => window.supernode.state);
const accountOf = (page) => page.evaluate(() => window.supernode.account.id);

async function waitState(page, states, timeout = 10000) {
  await page.waitForFunction(
    (s) => s.includes(window.supernode.state),
    states,
    { timeout, polling: 20 },
  );
}

async function call(caller, calleeId) {
  const sel = `li[data-account="${calleeId}"][data-online="true"] button.call:not([disabled])`;
  await caller.waitForSelector(sel, { timeout: 15000 });
  await caller.click(sel);
}

async function stats(page) {
  return page.evaluate(() => window.supernode.stats);
}

// Samples a page's getStats twice, `seconds` apart, and checks media flowed in both kinds.
async function mediaChecks(name, page, seconds) {
  await page.waitForFunction(() => window.supernode.stats && window.supernode.stats.connection === 'connected', null, { timeout: 15000 });
  await page.waitForTimeout(1500);
  const a = await stats(page);
  await page.waitForTimeout(seconds * 1000);
  const b = await stats(page);
  const loss = (o) => (o.packetsReceived + o.packetsLost ? o.packetsLost / (o.packetsReceived + o.packetsLost) : 1);
  facts[name] = { before: a, after: b };
  check(`${name}: framesDecoded grows`, (b.videoIn.framesDecoded ?? 0) > (a.videoIn.framesDecoded ?? 0), {
    before: a.videoIn.framesDecoded, after: b.videoIn.framesDecoded,
  });
  check(`${name}: audio totalSamplesReceived grows`, (b.audioIn.totalSamplesReceived ?? 0) > (a.audioIn.totalSamplesReceived ?? 0), {
    before: a.audioIn.totalSamplesReceived, after: b.audioIn.totalSamplesReceived,
  });
  check(`${name}: video packetsLost < 1 %`, loss(b.videoIn) < 0.01, { lost: b.videoIn.packetsLost, received: b.videoIn.packetsReceived });
  check(`${name}: audio packetsLost < 1 %`, loss(b.audioIn) < 0.01, { lost: b.audioIn.packetsLost, received: b.audioIn.packetsReceived });
  return b;
}

// The page's statistics read now (not the page's last 1 s poll) and the call hung up in the
// same step, so what the browser counts as sent ends where the peer stops receiving.
async function finalAndHangup(page) {
  return page.evaluate(async () => {
    const s = await window.supernode.leg.stats();
    document.getElementById('hangup').click();
    return s;
  });
}

async function tabs() {
  const calleeCtx = await browser();
  const callerCtx = await browser();
  const tab1 = await open(calleeCtx, '?name=Bob');
  const bob = await accountOf(tab1);
  const tab2 = await open(calleeCtx, `?account=${bob}`);
  const tab3 = await open(calleeCtx, `?account=${bob}`);
  const endpoints = await Promise.all([tab1, tab2, tab3].map((p) => p.evaluate(() => window.supernode.endpointId)));
  check('three tabs are three endpoints of one account', new Set(endpoints).size === 3, { endpoints });
  const alice = await open(callerCtx, '?name=Alice');
  await call(alice, bob);
  await Promise.all([tab1, tab2, tab3].map((p) => waitState(p, ['ringing'])));
  check('all three tabs ring', true);
  const callId = await tab1.evaluate(() => window.supernode.callId);
  const t0 = await tab1.evaluate(() => {
    const t = Date.now();
    document.getElementById('accept').click();
    return t;
  });
  // The time each tab put the notice on screen (its log of notices: a later one, such as
  // the call's end, may replace the text afterwards).
  const seen = await Promise.all(
    [tab2, tab3].map(async (p) => {
      await p.waitForFunction(
        () => window.supernode.notices.some((n) => n.text === 'Answered in another tab'),
        null,
        { timeout: 5000, polling: 10 },
      );
      return p.evaluate(() => window.supernode.notices.find((n) => n.text === 'Answered in another tab').at);
    }),
  );
  // From the first tab's answer (its accept sent: after getUserMedia and createOffer) to the
  // notice on screen in the others; the click-to-notice time is reported beside it.
  const sent = await tab1.evaluate(() => window.supernode.acceptSentAt);
  const delays = seen.map((t) => t - sent);
  facts.answered_elsewhere_ms = delays;
  facts.click_to_notice_ms = seen.map((t) => t - t0);
  check('the other two tabs show "Answered in another tab" within 1 s', delays.every((d) => d < 1000), {
    delays_ms: delays,
    click_to_notice_ms: facts.click_to_notice_ms,
  });
  await tab2.screenshot({ path: join(opts.out, 'tabs-answered-elsewhere.png') });
  await tab1.screenshot({ path: join(opts.out, 'tabs-answerer.png') });
  check('the other two tabs stop ringing', (await Promise.all([tab2, tab3].map(state))).every((s) => s === 'idle'));
  // The first tab answered: it is in the call (or still connecting its media).
  const s1 = await state(tab1);
  const end1 = await tab1.evaluate(() => document.body.dataset.lastEnd ?? null);
  facts.answerer = { state: s1, last_end: end1 };
  check('the first tab took the call', ['connecting', 'in_call'].includes(s1), facts.answerer);
  // A late accept from another tab is refused.
  await tab2.evaluate((id) => window.supernode.sig.send('accept', { call_id: id, sdp: 'v=0' }), callId);
  await tab2.waitForFunction(() => window.supernode.errors.some((e) => e.in_reply_to === 'accept'), null, { timeout: 3000 });
  const err = await tab2.evaluate(() => window.supernode.errors.find((e) => e.in_reply_to === 'accept').code);
  check('a later accept from another tab is refused', err === 'invalid_state', { code: err });
  await waitState(tab1, ['in_call'], 15000);
  await waitState(alice, ['in_call'], 15000);
  check('the caller and the answering tab are in the call', true);
  await alice.click('#hangup');
  await waitState(tab1, ['idle'], 5000);
}

async function b2b() {
  const a = await open(await browser(), '?name=Alice');
  const b = await open(await browser(), '?name=Bob');
  const bob = await accountOf(b);
  await call(a, bob);
  await waitState(b, ['ringing']);
  await b.click('#accept');
  await Promise.all([waitState(a, ['in_call'], 15000), waitState(b, ['in_call'], 15000)]);
  check('both browsers are in the call', true);
  facts.remote_video = await Promise.all([a, b].map((p) => p.evaluate(() => {
    const v = document.getElementById('remote');
    return { paused: v.paused, width: v.videoWidth, height: v.videoHeight, time: v.currentTime, tracks: v.srcObject ? v.srcObject.getTracks().length : 0 };
  })));
  const secs = Number(opts.seconds);
  await Promise.all([mediaChecks('caller', a, secs), mediaChecks('callee', b, secs)]);
  facts.remote_video_end = await Promise.all([a, b].map((p) => p.evaluate(() => {
    const v = document.getElementById('remote');
    return { paused: v.paused, width: v.videoWidth, height: v.videoHeight, time: v.currentTime };
  })));
  check('the remote video plays on both sides', facts.remote_video_end.every((v) => v.width > 0 && v.time > 0), { video: facts.remote_video_end });
  await a.screenshot({ path: join(opts.out, 'b2b-caller.png') });
  await b.screenshot({ path: join(opts.out, 'b2b-callee.png') });
  await a.click('#hangup');
  await waitState(b, ['idle'], 5000);
  check('hang up ends the call on both sides', (await b.evaluate(() => document.body.dataset.lastEnd)) === 'hangup');
}

async function relayB2b() {
  const a = await open(await browser(), '?name=Alice&relay=1');
  const b = await open(await browser(), '?name=Bob&relay=1');
  facts.ice_servers = await a.evaluate(() => window.supernode.iceServers.map((s) => s.urls));
  check('the login carried TURN ice_servers', facts.ice_servers.length > 0, { ice_servers: facts.ice_servers });
  const bob = await accountOf(b);
  await call(a, bob);
  await waitState(b, ['ringing'], 20000);
  await b.click('#accept');
  await Promise.all([waitState(a, ['in_call'], 30000), waitState(b, ['in_call'], 30000)]);
  check('both browsers are in the call', true);
  const offers = await Promise.all([a, b].map((p) => p.evaluate(() => window.supernode.leg.offerSdp)));
  check('the offers carry relay candidates only', offers.every((o) => /typ relay/.test(o) && !/typ host/.test(o)));
  const secs = Number(opts.seconds);
  const [sa, sb] = await Promise.all([mediaChecks('caller', a, secs), mediaChecks('callee', b, secs)]);
  facts.candidate_types = [sa.localCandidateType, sb.localCandidateType];
  check('both sides send through TURN (selected local candidate: relay)', facts.candidate_types.every((t) => t === 'relay'), {
    types: facts.candidate_types,
  });
  await a.screenshot({ path: join(opts.out, 'relay-caller.png') });
  await a.click('#hangup');
  await waitState(b, ['idle'], 10000);
}

async function edgeCallee() {
  const a = await open(await browser(), '?name=Browser');
  await call(a, opts.calleeAccount);
  await waitState(a, ['in_call'], 30000);
  await mediaChecks('browser', a, Number(opts.seconds));
  await a.screenshot({ path: join(opts.out, 'browser-calls-edge.png') });
  facts.final = await finalAndHangup(a);
  await waitState(a, ['idle'], 10000);
}

async function edgeCaller() {
  const a = await open(await browser(), '?name=Browser');
  console.log(JSON.stringify({ browser_account: await accountOf(a) }));
  await waitState(a, ['ringing'], 60000);
  await a.click('#accept');
  await waitState(a, ['in_call'], 30000);
  await mediaChecks('browser', a, Number(opts.seconds));
  await a.screenshot({ path: join(opts.out, 'edge-calls-browser.png') });
  facts.final = await finalAndHangup(a);
  await waitState(a, ['idle'], 10000);
}

const confStats = (page) => page.evaluate(() => window.supernode.confStats);

async function waitRoster(page, n, timeout) {
  await page.waitForFunction((k) => (window.supernode.conf?.roster.length ?? 0) === k, n, {
    timeout,
    polling: 100,
  });
}

async function conference() {
  const wavs = (opts.wavs || '').split(',').filter(Boolean);
  const invitees = (opts.invite || '').split(',').filter(Boolean);
  const mic = (i) => (wavs[i] ? [`--use-file-for-fake-audio-capture=${wavs[i]}`] : []);
  const a = await open(await browser(mic(0)), '?name=BrowserA&audio=raw');
  const b = await open(await browser(mic(1)), '?name=BrowserB&audio=raw');
  const [accA, accB] = await Promise.all([accountOf(a), accountOf(b)]);
  console.log(JSON.stringify({ browser_accounts: [accA, accB] }));
  await a.click('#group-call');
  await waitState(a, ['in_conference'], 30000);
  check('browser A started a group call', true);
  for (const acc of [accB, ...invitees]) {
    const sel = `li[data-account="${acc}"][data-online="true"] button.invite:not([disabled])`;
    await a.waitForSelector(sel, { timeout: 30000 });
    await a.click(sel);
  }
  check('browser A invited everyone from its contacts', true);
  await waitState(b, ['conf_ringing'], 30000);
  await b.click('#conf-join');
  await waitState(b, ['in_conference'], 30000);
  const everyone = 2 + invitees.length;
  await Promise.all([waitRoster(a, everyone, 60000), waitRoster(b, everyone, 60000)]);
  check(`both browsers' rosters have all ${everyone}`, true);
  const others = everyone - 1;
  const secs = Number(opts.seconds);
  const sides = await Promise.all([['A', a], ['B', b]].map(async ([name, page]) => {
    // Every remote video decodes before the measured window starts (or the check fails).
    await page.waitForFunction(
      (k) => {
        const s = window.supernode.confStats;
        return s && s.connection === 'connected'
          && Object.values(s.videoIn).filter((v) => v.framesDecoded > 0).length >= k;
      },
      others,
      { timeout: 60000, polling: 250 },
    ).catch(() => {});
    const before = await confStats(page);
    await page.waitForTimeout(secs * 1000);
    const after = await confStats(page);
    return { name, page, before, after };
  }));
  const loss = (o) => (o && o.packetsReceived + o.packetsLost ? o.packetsLost / (o.packetsReceived + o.packetsLost) : 1);
  facts.browsers = {};
  for (const { name, page, before, after } of sides) {
    facts.browsers[name] = { before, after };
    check(`browser ${name}: the mix's totalSamplesReceived grows`,
      (after.audioIn.totalSamplesReceived ?? 0) > (before.audioIn.totalSamplesReceived ?? 0) + 48000, {
        before: before.audioIn.totalSamplesReceived, after: after.audioIn.totalSamplesReceived,
      });
    check(`browser ${name}: audio packetsLost < 1 %`, loss(after.audioIn) < 0.01, after.audioIn);
    const growing = Object.entries(after.videoIn)
      .filter(([mid, v]) => v.framesDecoded > (before.videoIn[mid]?.framesDecoded ?? 0));
    check(`browser ${name}: framesDecoded grows on ${others} remote videos`, growing.length >= others, {
      videos: after.videoIn,
    });
    check(`browser ${name}: video packetsLost < 1 % on each`,
      growing.length > 0 && growing.every(([, v]) => loss(v) < 0.01), { videos: after.videoIn });
    await page.screenshot({ path: join(opts.out, `conference-browser-${name}.png`) });
  }
  // The others leave when their media ends; then the browsers do.
  await Promise.all([waitRoster(a, 2, 120000), waitRoster(b, 2, 120000)]);
  check('the others left; the rosters are down to the two browsers', true);
  await a.click('#conf-leave');
  await waitRoster(b, 1, 10000);
  await b.click('#conf-leave');
  await Promise.all([waitState(a, ['idle'], 10000), waitState(b, ['idle'], 10000)]);
  check('leaving ends the group call on both', true);
}

async function simulcast() {
  const a = await open(await browser(), '?name=Publisher&audio=raw');
  const b = await open(await browser(), '?name=Receiver&audio=raw');
  const accB = await accountOf(b);
  await a.click('#group-call');
  await waitState(a, ['in_conference'], 30000);
  const sel = `li[data-account="${accB}"][data-online="true"] button.invite:not([disabled])`;
  await a.waitForSelector(sel, { timeout: 30000 });
  await a.click(sel);
  await waitState(b, ['conf_ringing'], 30000);
  await b.click('#conf-join');
  await waitState(b, ['in_conference'], 30000);
  await Promise.all([waitRoster(a, 2, 60000), waitRoster(b, 2, 60000)]);
  const inbound = () => b.evaluate(async () => {
    const s = await window.supernode.conf.leg.stats();
    const videos = Object.values(s.videoIn).sort((x, y) => y.framesDecoded - x.framesDecoded);
    return { port: s.localPort, v: videos[0] ?? null, layers: s.videoOut.layers ?? null };
  });
  const pub = await a.evaluate(async () => (await window.supernode.conf.leg.stats()).videoOut.layers ?? {});
  facts.publisher_layers = pub;
  check('the publisher sends three layers', Object.keys(pub).length === 3, pub);
  let first = null;
  try {
    await b.waitForFunction(
      () => Object.values(window.supernode.confStats?.videoIn ?? {}).some((v) => v.frameHeight >= 720),
      null,
      { timeout: 90000, polling: 250 },
    );
    first = await inbound();
  } catch (e) {
    first = await inbound();
  }
  check('the receiver decodes the top layer (720 lines) before the throttle', (first.v?.frameHeight ?? 0) >= 720, first);
  console.log(JSON.stringify({ receiver_port: first.port }));
  const end = Date.now() + Number(opts.seconds) * 1000;
  while (Date.now() < end) {
    const { v } = await inbound();
    console.log(JSON.stringify({ sample: { t: Date.now(), ...(v ?? {}) } }));
    await b.waitForTimeout(200);
  }
  await a.click('#conf-leave');
  await waitRoster(b, 1, 10000);
  await b.click('#conf-leave');
}

async function reconnect() {
  const a = await open(await browser(), '?name=Roamer');
  const before = await a.evaluate(() => ({ node: window.supernode.sig.url, nodes: window.supernode.sig.nodes }));
  check('login_ok lists the network\'s nodes', before.nodes.length >= 2, before);
  console.log(JSON.stringify({ browser_account: await accountOf(a), node: before.node }));
  // (`reconnecting` may last only milliseconds: wait for its outcome.)
  await a.waitForFunction(() => window.supernode.reconnects >= 1 && window.supernode.state === 'idle', null, {
    timeout: 60000,
    polling: 20,
  });
  const after = await a.evaluate(() => ({
    node: window.supernode.sig.url,
    ms: window.supernode.regainedAt - window.supernode.lostAt,
  }));
  facts.reconnect_ms = after.ms;
  check('logged in again on another node', after.node !== before.node, { before: before.node, after: after.node, ms: after.ms });
  console.log(JSON.stringify({ reconnected: after.node }));
  await waitState(a, ['ringing'], 60000);
  check('an invite through the network rings the tab', true);
  await a.click('#accept');
  await waitState(a, ['in_call'], 30000);
  check('the tab takes the call', true);
  await a.screenshot({ path: join(opts.out, 'reconnected.png') });
  console.log(JSON.stringify({ in_call: true }));
  // The caller hangs up.
  await waitState(a, ['idle'], 30000);
}

const scenarios = {
  tabs,
  b2b,
  'relay-b2b': relayB2b,
  'edge-callee': edgeCallee,
  'edge-caller': edgeCaller,
  reconnect,
  conference,
  simulcast,
};
let error = null;
try {
  if (!scenarios[opts.scenario]) throw new Error(`unknown scenario ${opts.scenario}`);
  await scenarios[opts.scenario]();
} catch (e) {
  error = e.message.split('\n')[0];
  failures.push(error);
}
for (const b of browsers) await b.close().catch(() => {});
for (const d of dirs) rmSync(d, { recursive: true, force: true });
console.log(JSON.stringify({ scenario: opts.scenario, ok: failures.length === 0, failures, error, facts }));
process.exit(failures.length === 0 ? 0 : 1);
