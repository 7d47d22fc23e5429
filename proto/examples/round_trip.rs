//! Prints one protocol round trip as it appears on the wire: a client's `invite`, the
//! server's `ringing` and `media` frames, and the relay operations the accept turns into
//! with their results. Run: `cargo run -p supernode-proto --example round_trip --features rand`.
use supernode_proto::SrtpProfile;
use supernode_proto::ids::{AccountId, CallId, OperationId, RelaySessionId, TransportId};
use supernode_proto::protocol::{
    ClientMsg, LegInfo, MediaKind, ServerMsg, SrtpKeying, decode_client, decode_server,
    encode_client, encode_server,
};
use supernode_proto::relay_ops::{
    AddTransport, CreateSession, RelayOp, RelayOutcome, RelayResult, TransportGrant, TransportKind,
};

fn main() {
    let bob = AccountId::random();
    let call = CallId::random();
    let invite = ClientMsg::Invite {
        to: bob.clone(),
        media: MediaKind::Audio,
        client_ref: Some("my-ref".into()),
        sdp: None,
    };
    let frame = encode_client(&invite);
    println!("client -> server  {frame}");
    assert_eq!(decode_client(&frame).unwrap(), invite);

    let ringing = ServerMsg::Ringing {
        call_id: call.clone(),
        to: bob,
        client_ref: Some("my-ref".into()),
    };
    let frame = encode_server(&ringing);
    println!("server -> client  {frame}");
    assert_eq!(decode_server(&frame).unwrap(), ringing);

    let session = RelaySessionId::random();
    let transport = TransportId::random();
    let ops = [
        RelayOp::CreateSession(CreateSession {
            op: OperationId::random(),
            session: session.clone(),
            call: call.clone(),
        }),
        RelayOp::AddTransport(AddTransport {
            op: OperationId::random(),
            session,
            transport: transport.clone(),
            kind: TransportKind::Client,
            srtp: Some(SrtpProfile::Aes128CmHmacSha1_80),
            browser: None,
        }),
    ];
    for op in &ops {
        println!("core -> relay     {}", serde_json::to_string(op).unwrap());
    }
    let keying = SrtpKeying {
        profile: SrtpProfile::Aes128CmHmacSha1_80,
        key_b64: "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNk".into(),
    };
    let added = RelayResult {
        op: ops[1].id().clone(),
        outcome: Ok(RelayOutcome::TransportAdded(TransportGrant {
            transport: transport.clone(),
            address: "203.0.113.7:40002".into(),
            srtp: Some(keying.clone()),
            browser: None,
        })),
    };
    println!(
        "relay -> core     {}",
        serde_json::to_string(&added).unwrap()
    );

    let media = ServerMsg::Media {
        call_id: call,
        leg: LegInfo {
            leg_id: transport,
            address: "203.0.113.7:40002".into(),
            srtp: Some(keying),
            sdp: None,
        },
    };
    let frame = encode_server(&media);
    println!("server -> client  {frame}");
    assert_eq!(decode_server(&frame).unwrap(), media);
}
