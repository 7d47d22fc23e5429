// One WebRTC call leg toward the supernode's relay (not toward the peer): the browser makes
// the offer, the supernode answers it (ICE-lite, DTLS-SRTP, BUNDLE; docs/protocol.md,
// "Browser endpoints"), and the relay forwards the other party's media on the same
// transport.
//
// `const leg = await CallLeg.start({ iceServers, iceTransportPolicy, video })` opens the
// camera and microphone and makes the offer (`leg.offerSdp`); give the supernode's answer to
// `await leg.answer(sdp)`; `leg.onRemoteStream = (stream) => …`; `await leg.stats()` reads
// `getStats()` into plain numbers; `leg.close()` stops everything.

export class CallLeg {
  static async start({ iceServers = [], iceTransportPolicy = 'all', video = true } = {}) {
    const leg = new CallLeg();
    leg.localStream = await navigator.mediaDevices.getUserMedia({ audio: true, video });
    leg.pc = new RTCPeerConnection({ iceServers, iceTransportPolicy, bundlePolicy: 'max-bundle' });
    leg.remoteStream = new MediaStream();
    leg.pc.ontrack = (ev) => {
      // The answer announces one stream (a=msid) for the peer's audio and video.
      if (ev.streams && ev.streams[0]) leg.remoteStream = ev.streams[0];
      else leg.remoteStream.addTrack(ev.track);
      if (leg.onRemoteStream) leg.onRemoteStream(leg.remoteStream);
    };
    for (const track of leg.localStream.getTracks()) {
      leg.pc.addTransceiver(track, { direction: 'sendrecv', streams: [leg.localStream] });
    }
    const offer = await leg.pc.createOffer();
    await leg.pc.setLocalDescription(offer);
    if (iceTransportPolicy === 'relay') {
      // Through TURN the relay candidates must be in the offer: no trickle.
      await leg.gathered(5000);
    }
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

  // The call's statistics from getStats(), as plain numbers per direction and kind.
  async stats() {
    const out = {
      connection: this.state,
      audioIn: {},
      videoIn: {},
      audioOut: {},
      videoOut: {},
      rttMs: null,
    };
    if (!this.pc) return out;
    const report = await this.pc.getStats();
    report.forEach((s) => {
      if (s.type === 'inbound-rtp') {
        const o = s.kind === 'video' ? out.videoIn : out.audioIn;
        o.packetsReceived = s.packetsReceived ?? 0;
        o.packetsLost = s.packetsLost ?? 0;
        o.bytesReceived = s.bytesReceived ?? 0;
        o.jitter = s.jitter ?? 0;
        if (s.kind === 'video') {
          o.framesDecoded = s.framesDecoded ?? 0;
          o.frameWidth = s.frameWidth ?? 0;
          o.frameHeight = s.frameHeight ?? 0;
          o.framesPerSecond = s.framesPerSecond ?? 0;
        } else {
          o.totalSamplesReceived = s.totalSamplesReceived ?? 0;
          o.concealedSamples = s.concealedSamples ?? 0;
        }
      } else if (s.type === 'outbound-rtp') {
        const o = s.kind === 'video' ? out.videoOut : out.audioOut;
        o.packetsSent = s.packetsSent ?? 0;
        o.bytesSent = s.bytesSent ?? 0;
        if (s.kind === 'video') {
          o.framesEncoded = s.framesEncoded ?? 0;
          o.framesSent = s.framesSent ?? 0;
          o.encoder = s.encoderImplementation ?? '';
        }
      } else if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') {
        if (typeof s.currentRoundTripTime === 'number') out.rttMs = s.currentRoundTripTime * 1000;
        out.localCandidateId = s.localCandidateId;
      }
    });
    // The selected pair's local candidate: `relay` when the media goes through TURN.
    const local = out.localCandidateId && report.get(out.localCandidateId);
    out.localCandidateType = local ? local.candidateType : null;
    delete out.localCandidateId;
    return out;
  }

  close() {
    if (this.localStream) this.localStream.getTracks().forEach((t) => t.stop());
    if (this.pc) this.pc.close();
    this.pc = null;
  }
}
