// The supernode's signaling WebSocket (docs/protocol.md, section 3), as a browser endpoint.
//
// `new Signaling(url)`, then `await login(token)`: resolves with `login_ok` (the socket
// declared `client: "browser"`), rejects with the server's `error`. Every server message is
// dispatched as an event named by its `type` (`event.detail` is the message); `send(type,
// fields)` adds `"v": 2`. `close` fires once when a logged-in socket closes.
//
// In a network of supernodes `login_ok.nodes` lists the WebSocket URLs to go to when this
// node dies (docs/protocol.md, "Failover"): after a `close` that was not ours, `await
// reconnect()` logs in again with the same credential on those nodes (the one just lost
// last), with jittered exponential back-off between rounds, and resolves with the new
// `login_ok` (the same `Signaling` object then carries the new socket's messages). A
// `migrate` message (the node is being drained) closes the socket the same way, so the
// page moves to the nodes it names.

export const PROTOCOL_VERSION = 2;

export class Signaling extends EventTarget {
  constructor(url) {
    super();
    this.url = url;
    this.ws = null;
    this.endpointId = null;
    this.accountId = null;
    this.token = null;
    this.nodes = [];
    this.closedByUs = false;
  }

  login(token) {
    this.token = token;
    this.closedByUs = false;
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url);
      this.ws = ws;
      let settled = false;
      ws.onopen = () => this.send('login', { token, client: 'browser' });
      ws.onmessage = (ev) => {
        let msg;
        try {
          msg = JSON.parse(ev.data);
        } catch {
          return;
        }
        if (!settled && msg.type === 'login_ok') {
          settled = true;
          this.endpointId = msg.endpoint_id;
          this.accountId = msg.account_id;
          if (Array.isArray(msg.nodes) && msg.nodes.length) this.nodes = msg.nodes;
          resolve(msg);
        } else if (!settled && msg.type === 'error') {
          settled = true;
          reject(new Error(`${msg.code}: ${msg.message}`));
        }
        this.dispatchEvent(new CustomEvent(msg.type, { detail: msg }));
        this.dispatchEvent(new CustomEvent('message', { detail: msg }));
        if (msg.type === 'migrate') {
          // The node is drained (`supernode drain --migrate`; it tells a browser only when
          // it is in no call): go to the nodes it names, as after losing it.
          if (Array.isArray(msg.nodes) && msg.nodes.length) this.nodes = msg.nodes;
          ws.close(4000, 'migrate');
        }
      };
      ws.onclose = (ev) => {
        if (!settled) {
          // A login that never succeeded: the caller hears it as a rejection only.
          settled = true;
          reject(new Error(`socket closed (${ev.code})`));
          return;
        }
        const detail = { code: ev.code, reason: ev.reason, byUs: this.closedByUs };
        this.dispatchEvent(new CustomEvent('close', { detail }));
      };
    });
  }

  send(type, fields = {}) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify({ v: PROTOCOL_VERSION, type, ...fields }));
    return true;
  }

  close() {
    this.closedByUs = true;
    if (this.ws) this.ws.close(1000, 'bye');
  }

  // Logs in again after the node was lost: every URL of `login_ok.nodes` in turn (the lost
  // one last), `rounds` times, waiting `baseMs`·2^round (at most `maxMs`, jittered by up
  // to half) between rounds. A refused credential (expired, revoked) ends it at once.
  async reconnect({ rounds = 6, baseMs = 250, maxMs = 4000 } = {}) {
    const lost = this.url;
    const order = [...this.nodes.filter((u) => u !== lost), lost];
    let last = new Error('no node to reconnect to');
    for (let round = 0; round < rounds; round++) {
      for (const url of order) {
        this.url = url;
        try {
          return await this.login(this.token);
        } catch (e) {
          last = e;
          if (/^(token_expired|invalid_token|account_unavailable):/.test(e.message)) throw e;
        }
      }
      const wait = Math.min(maxMs, baseMs * 2 ** round);
      await new Promise((res) => setTimeout(res, wait / 2 + (Math.random() * wait) / 2));
    }
    throw last;
  }
}
