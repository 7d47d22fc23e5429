//! The supernode as SDP answerer for browsers and WHIP/WHEP tools: sans-IO, no clock, no
//! sockets, no other signaling module.
//!
//! ## How to drive it
//!
//! 1. Take the offer's bytes (a WebSocket field, a WHIP body) and the parameters of the
//!    relay transport allocated for this browser: ICE-lite ufrag/pwd, the DTLS certificate's
//!    SHA-256, the host address (`relay_ip`:port) and optional `relay_public_ip`
//!    ([`RelayTransport`]); what is served ([`MediaPolicy`]: the H.264 profile and level
//!    really delivered, transport-cc, simulcast); the SSRCs the supernode will send per kind
//!    ([`SendStream`]); and a random `o=` session id.
//! 2. Call [`answer_offer`] (or [`parse`] then [`answer`] to look at the offer first).
//! 3. `Err(SdpError)`: the offer is malformed (the error names the line) or unanswerable as
//!    a whole (no ICE credentials, no fingerprint, ...): send the browser an error (WHIP:
//!    `400`).
//! 4. `Ok(Answer)`: send [`Answer::sdp`] back; configure the relay transport from
//!    [`Answer::remote`] (the browser's ICE ufrag/pwd, its certificate fingerprints, the
//!    supernode's DTLS role) and from each [`AcceptedMedia`] (payload types, RTX, feedback,
//!    header extension ids, the browser's SSRCs or RIDs, what is sent). Log each
//!    [`RejectedMedia`]'s [`RejectReason`]: those m-lines have port 0 in the answer.
//!
//! Parsing: [`parse`] / [`parse_bytes`] read the subset browsers send into the borrowed
//! [`SessionDescription`] (see [`model`]); limits [`MAX_SDP_BYTES`], [`MAX_SDP_LINES`],
//! [`MAX_MEDIA_SECTIONS`]. H.264 profile-level-id rules live in [`h264_profile`].
//!
//! ## Example
//!
//! ```
//! use supernode_signaling::sdp::{
//!     answer_offer, AnswerParams, Codec, MediaPolicy, RelayTransport, SendStream, Ssrc,
//! };
//!
//! let offer = "v=0\r\n\
//!     o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n\
//!     s=-\r\n\
//!     t=0 0\r\n\
//!     a=group:BUNDLE 0\r\n\
//!     m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\n\
//!     c=IN IP4 0.0.0.0\r\n\
//!     a=ice-ufrag:Kx3b\r\n\
//!     a=ice-pwd:4Ttz3A0yPXfJtGQpBPrJ2Bmd\r\n\
//!     a=fingerprint:sha-256 1C:08:46:CC:FA:2E:94:64:D1:42:99:A3:CF:55:63:B5:\
//!     50:37:7B:8A:E6:FB:9E:3B:18:7D:2D:D1:39:4A:2F:5E\r\n\
//!     a=setup:actpass\r\n\
//!     a=mid:0\r\n\
//!     a=sendrecv\r\n\
//!     a=rtcp-mux\r\n\
//!     a=rtpmap:111 opus/48000/2\r\n\
//!     a=fmtp:111 minptime=10;useinbandfec=1\r\n\
//!     a=rtpmap:0 PCMU/8000\r\n\
//!     a=ssrc:1001 cname:abc\r\n";
//! let params = AnswerParams {
//!     session_id: 7,
//!     transport: RelayTransport {
//!         ice_ufrag: "rly1".into(),
//!         ice_pwd: "0123456789abcdefABCDEF".into(),
//!         fingerprint_sha256: [0xab; 32],
//!         host: "10.0.0.5:40000".parse().unwrap(),
//!         public_ip: Some("203.0.113.9".parse().unwrap()),
//!     },
//!     policy: MediaPolicy::default(),
//!     audio_send: vec![SendStream {
//!         ssrc: Ssrc(5001),
//!         rtx_ssrc: None,
//!         cname: "supernode".into(),
//!         stream_id: "peer".into(),
//!         track_id: "peer-audio".into(),
//!     }],
//!     video_send: vec![],
//! };
//! let answer = answer_offer(offer.as_bytes(), &params).expect("a well-formed offer");
//! let audio = answer.accepted().next().expect("audio accepted");
//! assert_eq!((audio.pt.0, audio.codec), (111, Codec::Opus));
//! assert_eq!(audio.remote_streams[0].ssrc, Ssrc(1001));
//! assert!(answer.sdp.contains("a=setup:passive\r\n"));
//! assert!(answer.sdp.contains("a=fmtp:111 minptime=10;useinbandfec=1\r\n"));
//! assert!(answer.sdp.contains("a=candidate:1 1 udp 2130706431 203.0.113.9 40000 typ host\r\n"));
//! assert!(answer.sdp.ends_with("a=end-of-candidates\r\n"));
//! assert_eq!(answer.remote.unwrap().ice_ufrag, "Kx3b");
//! ```

pub mod answer;
pub mod error;
pub mod h264_profile;
pub mod model;
pub mod parse;

pub use answer::{
    AcceptedKind, AcceptedMedia, Answer, AnswerParams, Codec, DtlsRole, Extensions, Feedback,
    MediaAnswer, MediaPolicy, RejectReason, RejectedMedia, RelayTransport, RemoteStream,
    RemoteTransport, SendStream, answer, answer_offer,
};
pub use error::{LineError, SdpError};
pub use h264_profile::{H264Delivery, H264Level, H264Mismatch, H264Profile, ProfileLevelId};
pub use model::{Direction, MediaKind, Pt, SessionDescription, Setup, Ssrc};
pub use parse::{MAX_MEDIA_SECTIONS, MAX_SDP_BYTES, MAX_SDP_LINES, parse, parse_bytes};
