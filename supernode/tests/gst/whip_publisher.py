#!/usr/bin/python3
"""A WHIP publisher made of GStreamer's own WebRTC stack (webrtcbin: libnice ICE, OpenSSL
DTLS, libsrtp), for supernode's interop test (supernode/tests/whip.rs).

Usage: whip_publisher.py URL KEY SECONDS PEM [h264|vp8]

Publishes Opus (a 440 Hz tone, payload type 111) and H.264 (openh264, Constrained
Baseline, payload type 102; or VP8, which the supernode refuses) to URL with
`Authorization: Bearer KEY`, non-trickle: the offer is posted once ICE gathering is
complete, the answer set, media sent for SECONDS, then the resource is deleted. PEM holds the certificate and private key webrtcbin's DTLS uses
(ECDSA: GStreamer 1.22 generates RSA by default, which the relay's DTLS does not speak).
Prints one JSON line per event; exits non-zero on any failure.
"""
import base64
import hashlib
import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("GstSdp", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

AUDIO = (
    "audiotestsrc is-live=true wave=sine freq=440 ! audioconvert ! audioresample "
    "! opusenc ! rtpopuspay pt=111 "
    "! application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000 ! w. "
)
VIDEO_SOURCE = (
    "videotestsrc is-live=true pattern=ball "
    "! video/x-raw,width=320,height=240,framerate=15/1 ! videoconvert "
)
VIDEO = {
    "h264": VIDEO_SOURCE
    + "! openh264enc gop-size=30 ! h264parse ! rtph264pay pt=102 config-interval=-1 "
    "! application/x-rtp,media=video,encoding-name=H264,payload=102,clock-rate=90000 ! w.",
    # A codec the supernode does not serve: its m-line is refused, the audio goes on.
    "vp8": VIDEO_SOURCE
    + "! vp8enc deadline=1 ! rtpvp8pay pt=96 "
    "! application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000 ! w.",
}


def say(**kv):
    print(json.dumps(kv), flush=True)


def fail(what):
    say(error=what)
    sys.exit(1)


def main():
    url, key, seconds, pem_path = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    video = sys.argv[5] if len(sys.argv) > 5 else "h264"
    pem = open(pem_path).read()
    der = base64.b64decode(
        re.search(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", pem, re.S).group(1)
    )
    fingerprint = ":".join("%02X" % b for b in hashlib.sha256(der).digest())
    Gst.init(None)
    pipe = Gst.parse_launch("webrtcbin name=w bundle-policy=max-bundle " + AUDIO + VIDEO[video])
    w = pipe.get_by_name("w")
    loop = GLib.MainLoop()
    state = {"location": None, "posted": False}

    # libnice leaves loopback out of its host candidates; the test's relay is on loopback.
    agent = w.get_property("ice-agent")
    agent.emit("add-local-ip-address", "127.0.0.1")
    for i in range(2):  # audio, video
        t = w.emit("get-transceiver", i)
        t.set_property("direction", GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY)

    def post_offer():
        if state["posted"]:
            return
        state["posted"] = True
        offer = w.get_property("local-description").sdp.as_text()
        req = urllib.request.Request(
            url,
            data=offer.encode(),
            method="POST",
            headers={"Authorization": "Bearer " + key, "Content-Type": "application/sdp"},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                status, location, answer = r.status, r.headers["Location"], r.read().decode()
        except urllib.error.HTTPError as e:
            fail("POST %s: %d %s" % (url, e.code, e.read().decode()))
        except urllib.error.URLError as e:
            fail("POST %s: %s" % (url, e.reason))
        if status != 201:
            fail("POST %s: %d" % (url, status))
        state["location"] = urllib.parse.urljoin(url, location)
        say(event="answered", location=location)
        _, msg = GstSdp.SDPMessage.new_from_text(answer)
        desc = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, msg)
        def on_remote(promise, _):
            reply = promise.get_reply()
            if reply is not None and reply.has_field("error"):
                fail("set-remote-description: %s" % reply.get_value("error"))
            say(event="remote-description-set")

        w.emit("set-remote-description", desc, Gst.Promise.new_with_change_func(on_remote, None))

    def on_gathering(el, _pspec):
        if el.get_property("ice-gathering-state") == GstWebRTC.WebRTCICEGatheringState.COMPLETE:
            post_offer()

    def elements(factory):
        found, it = [], pipe.iterate_recurse()
        while True:
            ok, el = it.next()
            if ok != Gst.IteratorResult.OK:
                return found
            f = el.get_factory()
            if f is not None and f.get_name() == factory:
                found.append(el)

    def on_offer(promise, _):
        reply = promise.get_reply()
        offer = reply.get_value("offer")
        if offer is None or offer.sdp is None:
            fail("create-offer: %s" % (reply.to_string() if reply else "no reply"))
        text = offer.sdp.as_text()
        # webrtcbin 1.22 makes its DTLS transport while creating the offer, with a generated
        # RSA certificate, and has no way to give it one before. Its DTLS encoders wait,
        # stopped, for the answer (they take their connection when started), so: each DTLS
        # decoder is given our certificate now (a new agent, and a new connection under the
        # same id) and restarted to hook that connection's key signals; then our
        # certificate's fingerprint goes into the offer.
        decs, encs = elements("dtlsdec"), elements("dtlsenc")
        if not decs:
            fail("webrtcbin made no DTLS transport for the offer")
        if any(e.get_state(0)[1] != Gst.State.NULL for e in encs):
            fail("a DTLS encoder started before the answer: cannot change its certificate")
        for dec in decs:
            dec.set_property("pem", pem)
            dec.set_state(Gst.State.NULL)
            dec.sync_state_with_parent()
        text = re.sub(
            r"a=fingerprint:sha-256 [0-9A-F:]+",
            "a=fingerprint:sha-256 " + fingerprint,
            text,
        )
        _, msg = GstSdp.SDPMessage.new_from_text(text)
        offer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.OFFER, msg)
        w.emit("set-local-description", offer, Gst.Promise.new())
        say(event="offer", transports=len(decs))

    def on_negotiation_needed(_el):
        w.emit("create-offer", None, Gst.Promise.new_with_change_func(on_offer, None))

    def on_connection(el, _pspec):
        say(event="connection", state=el.get_property("connection-state").value_nick)

    w.connect("on-negotiation-needed", on_negotiation_needed)
    w.connect("notify::ice-gathering-state", on_gathering)
    w.connect("notify::connection-state", on_connection)
    w.connect(
        "notify::ice-connection-state",
        lambda el, _p: say(event="ice", state=el.get_property("ice-connection-state").value_nick),
    )

    def on_bus(_bus, msg):
        if msg.type == Gst.MessageType.ERROR:
            err, dbg = msg.parse_error()
            fail("%s (%s)" % (err.message, dbg))
        return True

    bus = pipe.get_bus()
    bus.add_signal_watch()
    bus.connect("message", on_bus)

    def finish():
        connected = w.get_property("connection-state") == GstWebRTC.WebRTCPeerConnectionState.CONNECTED
        if state["location"]:
            req = urllib.request.Request(
                state["location"], method="DELETE", headers={"Authorization": "Bearer " + key}
            )
            with urllib.request.urlopen(req, timeout=10) as r:
                say(event="deleted", status=r.status)
        loop.quit()
        if not connected:
            fail("never connected")
        return False

    pipe.set_state(Gst.State.PLAYING)
    GLib.timeout_add(int(seconds * 1000), finish)
    # Gathering can finish before the notify is connected; check once more shortly.
    GLib.timeout_add(2000, lambda: (on_gathering(w, None), False)[1])
    loop.run()
    pipe.set_state(Gst.State.NULL)


if __name__ == "__main__":
    main()
