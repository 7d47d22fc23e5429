// WHEP playback in real headless Chromium (Debian's /usr/bin/chromium) driven by
// playwright-core: the page offers recvonly audio and video to POST /v1/whep/STREAM with a
// Bearer key, applies the answer, and watches getStats.
//
//   node whep.mjs --base http://127.0.0.1:PORT --key KEY --stream NAME [--seconds N]
//
// Prints `{"whep_answer": {"audio_pt", "video_pt", "mid_ext", "audio_mid", "video_mid",
// "location"}}` once the answer is applied (the test then starts the WHIP publisher with
// those payload types and MID header extension: the relay forwards both as the publisher
// wrote them, and Chromium binds an unannounced SSRC to its m-line by the MID), one JSON line per check, and a final
// `{"scenario": "whep", "ok", ...}`; exits 0 when every check passed, 1 when one failed,
// 2 on a usage error, 3 when Chromium is missing.

import { chromium } from 'playwright-core';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const opts = { seconds: 4 };
for (let i = 2; i < process.argv.length; i += 2) {
  opts[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
}
if (!opts.base || !opts.key || !opts.stream) {
  console.error('usage: node whep.mjs --base URL --key KEY --stream NAME [--seconds N]');
  process.exit(2);
}
if (!existsSync(CHROMIUM)) {
  console.log(JSON.stringify({ scenario: 'whep', ok: false, skipped: `no ${CHROMIUM}` }));
  process.exit(3);
}

const failures = [];
function check(name, ok, detail = {}) {
  console.log(JSON.stringify({ check: name, ok: !!ok, ...detail }));
  if (!ok) failures.push(name);
}

const dir = mkdtempSync(join(tmpdir(), 'supernode-whep-'));
let ctx;
let summary = {};
try {
  ctx = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--autoplay-policy=no-user-gesture-required'],
  });
  const page = ctx.pages()[0] || (await ctx.newPage());
  page.on('pageerror', (e) => console.log(JSON.stringify({ pageerror: e.message })));
  // Any page of the supernode: the WHEP request is then same-origin.
  await page.goto(`${opts.base}/healthz`);
  const answer = await page.evaluate(async ({ key, stream }) => {
    const pc = new RTCPeerConnection();
    window.whep = pc;
    // Played, as a page would: audio is only pulled (and counted) by a playing element.
    pc.ontrack = (e) => {
      const el = document.createElement(e.track.kind);
      el.srcObject = new MediaStream([e.track]);
      el.autoplay = true;
      document.body.appendChild(el);
    };
    pc.addTransceiver('audio', { direction: 'recvonly' });
    pc.addTransceiver('video', { direction: 'recvonly' });
    await pc.setLocalDescription(await pc.createOffer());
    const r = await fetch(`/v1/whep/${stream}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/sdp' },
      body: pc.localDescription.sdp,
    });
    const sdp = await r.text();
    if (r.status !== 201) return { status: r.status, body: sdp };
    await pc.setRemoteDescription({ type: 'answer', sdp });
    const pt = (kind) => {
      const m = sdp.split(`m=${kind} `)[1];
      return m ? Number(m.split('\r\n')[0].split(' ')[2]) : null;
    };
    const midExt = sdp.match(/a=extmap:(\d+) urn:ietf:params:rtp-hdrext:sdes:mid/);
    const mid = (kind) => {
      const m = sdp.split(`m=${kind} `)[1];
      const a = m && m.match(/a=mid:(\S+)/);
      return a ? a[1] : null;
    };
    return {
      status: r.status,
      location: r.headers.get('location'),
      audio_pt: pt('audio'),
      video_pt: pt('video'),
      mid_ext: midExt ? Number(midExt[1]) : null,
      audio_mid: mid('audio'),
      video_mid: mid('video'),
    };
  }, { key: opts.key, stream: opts.stream });
  check('WHEP answered 201', answer.status === 201, answer);
  if (answer.status === 201) {
    console.log(JSON.stringify({ whep_answer: answer }));
    const inbound = () => page.evaluate(async () => {
      const out = { video: {}, audio: {}, state: window.whep.connectionState };
      (await window.whep.getStats()).forEach((s) => {
        if (s.type === 'inbound-rtp') out[s.kind] = s;
      });
      return out;
    });
    // Wait for the first decoded frame (the publisher starts after the answer).
    const deadline = Date.now() + 40000;
    while (Date.now() < deadline) {
      const s = await inbound();
      if ((s.video.framesDecoded ?? 0) > 0) break;
      await page.waitForTimeout(250);
    }
    const a = await inbound();
    await page.waitForTimeout(Number(opts.seconds) * 1000);
    const b = await inbound();
    summary = {
      state: b.state,
      framesDecoded: [a.video.framesDecoded, b.video.framesDecoded],
      audioSamples: [a.audio.totalSamplesReceived, b.audio.totalSamplesReceived],
      videoPacketsLost: b.video.packetsLost,
      videoPacketsReceived: b.video.packetsReceived,
      audioPacketsReceived: b.audio.packetsReceived,
    };
    check('video framesDecoded grows', (b.video.framesDecoded ?? 0) > (a.video.framesDecoded ?? 0), summary);
    check('audio totalSamplesReceived grows',
      (b.audio.totalSamplesReceived ?? 0) > (a.audio.totalSamplesReceived ?? 0), summary);
    const del = await page.evaluate(async ({ key, location }) => {
      const r = await fetch(location, { method: 'DELETE', headers: { authorization: `Bearer ${key}` } });
      window.whep.close();
      return r.status;
    }, { key: opts.key, location: answer.location });
    check('DELETE ends the viewer', del === 200, { status: del });
  }
} catch (e) {
  check('no exception', false, { error: String(e && e.stack || e) });
} finally {
  if (ctx) await ctx.close().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
}
console.log(JSON.stringify({ scenario: 'whep', ok: failures.length === 0, failures, ...summary }));
process.exit(failures.length === 0 ? 0 : 1);
