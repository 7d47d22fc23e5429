// The supernode's signaling WebSocket (docs/protocol.md, section 3), as a browser endpoint.
//
// `new Signaling(url)`, then `await login(token)`: resolves with `login_ok` (the socket
// declared `client: "browser"`), rejects with the server's `error`. Every server message is
// dispatched as an event named by its `type` (`event.detail` is the message); `send(type,
// fields)` adds `"v": 2`. `close` fires once when the socket closes.

export const PROTOCOL_VERSION = 2;

export class Signaling extends EventTarget {
  constructor(url) {
    super();
    this.url = url;
    this.ws = null;
    this.endpointId = null;
    this.accountId = null;
  }

  login(token) {
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
          resolve(msg);
        } else if (!settled && msg.type === 'error') {
          settled = true;
          reject(new Error(`${msg.code}: ${msg.message}`));
        }
        this.dispatchEvent(new CustomEvent(msg.type, { detail: msg }));
        this.dispatchEvent(new CustomEvent('message', { detail: msg }));
      };
      ws.onclose = (ev) => {
        if (!settled) {
          settled = true;
          reject(new Error(`socket closed (${ev.code})`));
        }
        this.dispatchEvent(new CustomEvent('close', { detail: { code: ev.code, reason: ev.reason } }));
      };
    });
  }

  send(type, fields = {}) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify({ v: PROTOCOL_VERSION, type, ...fields }));
    return true;
  }

  close() {
    if (this.ws) this.ws.close(1000, 'bye');
  }
}
