//! Fuzz target: SDP offers parsed and answered (`supernode_signaling::sdp`); an answer
//! always parses again, with one m-section per offered one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use supernode_signaling::sdp::{
    AnswerParams, MediaPolicy, RelayTransport, SendStream, Ssrc, answer, parse, parse_bytes,
};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the policy, the rest is the offer.
    let Some((&flags, offer)) = data.split_first() else {
        return;
    };
    let Ok(parsed) = parse_bytes(offer) else {
        return;
    };
    let stream = |ssrc: u32, rtx: Option<u32>| SendStream {
        ssrc: Ssrc(ssrc),
        rtx_ssrc: rtx.map(Ssrc),
        cname: "fuzz".into(),
        stream_id: "s".into(),
        track_id: "t".into(),
    };
    let params = AnswerParams {
        session_id: 1,
        transport: RelayTransport {
            ice_ufrag: "fuzz".into(),
            ice_pwd: "0123456789012345678901".into(),
            fingerprint_sha256: [7; 32],
            host: "127.0.0.1:5000".parse().unwrap(),
            public_ip: (flags & 1 != 0).then(|| "::1".parse().unwrap()),
        },
        policy: MediaPolicy {
            h264: (flags & 2 == 0)
                .then_some(MediaPolicy::default().h264)
                .flatten(),
            transport_cc: flags & 4 != 0,
            remb: flags & 8 != 0,
            simulcast: flags & 16 != 0,
            mid_extension: flags & 32 == 0,
        },
        audio_send: vec![stream(1, None)],
        video_send: vec![stream(2, Some(3)), stream(4, None)],
    };
    if let Ok(a) = answer(&parsed, &params) {
        let again = parse(&a.sdp).expect("an answer parses");
        assert_eq!(again.media.len(), parsed.media.len());
        assert_eq!(a.media.len(), parsed.media.len());
        for r in a.rejected() {
            let _ = r.reason.to_string();
        }
    }
});
