"""Schemathesis hooks for scripts/schemathesis.sh (loaded through SCHEMATHESIS_HOOKS).

WHIP and WHEP take `application/sdp`, a media type Schemathesis has no generator for: this
registers one that draws well-formed offers (the subset browsers and WHIP tools send: Opus
and H.264 in one BUNDLE, random ICE credentials, DTLS fingerprint and direction), so the
positive cases exercise the real answer path (201, or 409 for a second publisher).
"""

import schemathesis
from hypothesis import strategies as st

ICE = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"


@st.composite
def sdp_offer(draw):
    ufrag = draw(st.text(ICE, min_size=4, max_size=32))
    pwd = draw(st.text(ICE, min_size=22, max_size=64))
    fp = ":".join(f"{b:02X}" for b in draw(st.binary(min_size=32, max_size=32)))
    direction = draw(st.sampled_from(["sendonly", "recvonly", "sendrecv"]))
    video = draw(st.booleans())
    lines = ["v=0", "o=- 1 2 IN IP4 127.0.0.1", "s=-", "t=0 0"]
    lines.append("a=group:BUNDLE 0 1" if video else "a=group:BUNDLE 0")
    media = [("audio", "0", "111", ["a=rtpmap:111 opus/48000/2", "a=fmtp:111 minptime=10;useinbandfec=1"])]
    if video:
        media.append(
            (
                "video",
                "1",
                "102",
                [
                    "a=rtpmap:102 H264/90000",
                    "a=rtcp-fb:102 nack pli",
                    "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
                ],
            )
        )
    for kind, mid, pt, extra in media:
        lines += [
            f"m={kind} 9 UDP/TLS/RTP/SAVPF {pt}",
            "c=IN IP4 0.0.0.0",
            f"a=ice-ufrag:{ufrag}",
            f"a=ice-pwd:{pwd}",
            f"a=fingerprint:sha-256 {fp}",
            "a=setup:actpass",
            f"a=mid:{mid}",
            f"a={direction}",
            "a=rtcp-mux",
            *extra,
        ]
    return ("\r\n".join(lines) + "\r\n").encode()


schemathesis.openapi.media_type("application/sdp", sdp_offer())
