// One browser's leg in a conference (group call), toward the supernode's relay. The offer is
// shaped so that nobody ever renegotiates (docs/protocol.md, "Conferences"): one sendrecv
// audio m-line (the supernode's mix of the others comes back on it), one sendrecv video
// m-line (the camera; it receives one other participant's video) and `slots - 1` recvonly
// video m-lines, each receiving one more participant's video. The relay puts the others'
// videos on these m-lines in join order; a conference larger than `slots + 1` shows the
// first `slots` others only.
//
// `const leg = await ConferenceLeg.start({ iceServers, slots, audio })` (`audio`: the
// getUserMedia audio constraints), send `leg.offerSdp` with
// `conference_create` / `conference_join`, give the `media` message's answer to
// `await leg.answer(sdp)`; `leg.onTile = (mid, track) => …` fires when a video slot gets
// a picture; `await leg.stats()` reads getStats() per inbound track; `leg.close()`.

export const DEFAULT_SLOTS = 5;

// The camera's simulcast layers, lowest first: quarter, half and full resolution.
export const SIMULCAST_LAYERS = [
  { rid: 'q', scaleResolutionDownBy: 4 },
  { rid: 'h', scaleResolutionDownBy: 2 },
  { rid: 'f', scaleResolutionDownBy: 1 },
];

export class ConferenceLeg {
  static async start({ iceServers = [], iceTransportPolicy = 'all', slots = DEFAULT_SLOTS, audio = true, simulcast = true } = {}) {
    const leg = new ConferenceLeg();
    // Simulcast: Chrome sends as many layers as the capture's resolution allows (640x360 gives
    // two), so the camera is asked for 1280x720 to get all three.
    const video = simulcast ? { width: { ideal: 1280 }, height: { ideal: 720 } } : true;
    leg.localStream = await navigator.mediaDevices.getUserMedia({ audio, video });
    leg.pc = new RTCPeerConnection({ iceServers, iceTransportPolicy, bundlePolicy: 'max-bundle' });
    leg.audio = new MediaStream();
    leg.tracks = new Map(); // mid -> remote video track
    leg.pc.ontrack = (ev) => {
      const mid = ev.transceiver.mid;
      if (ev.track.kind === 'audio') {
        leg.audio = new MediaStream([ev.track]);
        if (leg.onAudio) leg.onAudio(leg.audio);
        return;
      }
      leg.tracks.set(mid, ev.track);
      if (leg.onTile) leg.onTile(mid, ev.track);
    };
    const [mic] = leg.localStream.getAudioTracks();
    const [camera] = leg.localStream.getVideoTracks();
    leg.pc.addTransceiver(mic, { direction: 'sendrecv', streams: [leg.localStream] });
    // The camera as three layers, low to high (the supernode forwards one to each receiver,
    // from its bandwidth estimate; it ignores them if simulcast is off in its config).
    const sendEncodings = simulcast ? SIMULCAST_LAYERS.map((l) => ({ ...l })) : undefined;
    leg.pc.addTransceiver(camera, { direction: 'sendrecv', streams: [leg.localStream], sendEncodings });
    for (let i = 1; i < slots; i++) leg.pc.addTransceiver('video', { direction: 'recvonly' });
    const offer = await leg.pc.createOffer();
    await leg.pc.setLocalDescription(offer);
    if (iceTransportPolicy === 'relay') await leg.gathered(5000);
    leg.offerSdp = leg.pc.localDescription.sdp;
    return leg;
  }

  gathered(timeoutMs) {
    if (this.pc.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      this.pc.addEventListener('icegatheringstatechange', () => {
        if (this.pc.iceGatheringState === 'complete') {
          clearTimeout(t);
          resolve();
        }
      });
    });
  }

  async answer(sdp) {
    await this.pc.setRemoteDescription({ type: 'answer', sdp });
  }

  get state() {
    return this.pc ? this.pc.connectionState : 'closed';
  }

  // getStats() as plain numbers: the mix's audio, every inbound video by its m-line's MID,
  // and what this browser sends.
  async stats() {
    const out = { connection: this.state, audioIn: {}, videoIn: {}, audioOut: {}, videoOut: {} };
    if (!this.pc) return out;
    const report = await this.pc.getStats();
    report.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'audio') {
        out.audioIn = {
          packetsReceived: s.packetsReceived ?? 0,
          packetsLost: s.packetsLost ?? 0,
          totalSamplesReceived: s.totalSamplesReceived ?? 0,
          concealedSamples: s.concealedSamples ?? 0,
        };
      } else if (s.type === 'inbound-rtp' && s.kind === 'video') {
        out.videoIn[s.mid ?? s.ssrc] = {
          ssrc: s.ssrc,
          packetsReceived: s.packetsReceived ?? 0,
          packetsLost: s.packetsLost ?? 0,
          framesDecoded: s.framesDecoded ?? 0,
          frameWidth: s.frameWidth ?? 0,
          frameHeight: s.frameHeight ?? 0,
          keyFramesDecoded: s.keyFramesDecoded ?? 0,
          pliCount: s.pliCount ?? 0,
          freezeCount: s.freezeCount ?? 0,
        };
      } else if (s.type === 'outbound-rtp' && s.kind === 'video') {
        // One entry per simulcast layer: summed, and each by its rid in `layers`.
        // Its SSRC is the lowest layer's: what other participants receive it as.
        const o = out.videoOut;
        if (!s.rid || s.rid === SIMULCAST_LAYERS[0].rid) o.ssrc = s.ssrc;
        o.packetsSent = (o.packetsSent ?? 0) + (s.packetsSent ?? 0);
        o.framesEncoded = (o.framesEncoded ?? 0) + (s.framesEncoded ?? 0);
        if (s.rid) {
          o.layers = o.layers ?? {};
          o.layers[s.rid] = {
            ssrc: s.ssrc,
            frameWidth: s.frameWidth ?? 0,
            frameHeight: s.frameHeight ?? 0,
            framesEncoded: s.framesEncoded ?? 0,
            qualityLimitationReason: s.qualityLimitationReason ?? '',
          };
        }
      } else if (s.type === 'outbound-rtp') {
        out.audioOut.ssrc = s.ssrc;
        out.audioOut.packetsSent = s.packetsSent ?? 0;
      }
    });
    // The local UDP port of the selected ICE pair (where the supernode sends to this page).
    report.forEach((s) => {
      if (s.type !== 'transport' || !s.selectedCandidatePairId) return;
      const pair = report.get(s.selectedCandidatePairId);
      const local = pair && report.get(pair.localCandidateId);
      if (local) out.localPort = local.port;
    });
    return out;
  }

  close() {
    if (this.localStream) this.localStream.getTracks().forEach((t) => t.stop());
    if (this.pc) this.pc.close();
    this.pc = null;
  }
}
