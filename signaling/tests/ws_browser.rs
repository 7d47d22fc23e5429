//! Browser endpoints over the real WebSocket (`docs/protocol.md`, "Browser endpoints"): a
//! browser's offer rides on `invite`/`accept`, the relay is asked for an
//! `AddTransport{Browser}` with what the offer says, and the browser's `media` carries the
//! supernode's answer built from the relay's grant. Browser ↔ edge both ways, browser ↔
//! browser, and bad offers.

mod common;

use common::{Client, Server};
use supernode_proto::relay_ops::MediaKindOfLine;
use supernode_signaling::ids::{AccountId, CallId};
use supernode_signaling::protocol::{
    ClientKind, ClientMsg, EndReason, ErrorCode, LegInfo, MediaKind, ServerMsg,
};

const CHROME: &str = include_str!("fixtures/sdp/chrome.sdp");
const FIREFOX: &str = include_str!("fixtures/sdp/firefox.sdp");
const NO_CODEC: &str = include_str!("fixtures/sdp/no_opus_no_h264.sdp");

/// CRLF line ends, as browsers send.
fn crlf(sdp: &str) -> String {
    sdp.lines().map(|l| format!("{l}\r\n")).collect()
}

async fn setup(s: &Server, n: usize) -> Vec<(AccountId, String)> {
    let (_, key) = common::partner(s, "p").await;
    let mut out = Vec::new();
    for _ in 0..n {
        let a = common::account(s, &key).await;
        let t = common::token(s, &key, &a).await;
        out.push((AccountId::parse(&a).unwrap(), t));
    }
    out
}

async fn invite(c: &mut Client, to: &AccountId, sdp: Option<String>) {
    c.send(&ClientMsg::Invite {
        to: to.clone(),
        media: MediaKind::AudioVideo,
        client_ref: None,
        sdp,
    })
    .await;
}

async fn accept(c: &mut Client, call_id: &CallId, sdp: Option<String>) {
    c.send(&ClientMsg::Accept {
        call_id: call_id.clone(),
        sdp,
    })
    .await;
}

async fn ringing(c: &mut Client) -> CallId {
    match c.recv().await {
        ServerMsg::Ringing { call_id, .. } => call_id,
        other => panic!("expected ringing, got {other:?}"),
    }
}

/// The `incoming_call` (returns its id and SDP).
async fn incoming(c: &mut Client) -> (CallId, Option<String>) {
    match c.recv().await {
        ServerMsg::IncomingCall { call_id, sdp, .. } => (call_id, sdp),
        other => panic!("expected incoming_call, got {other:?}"),
    }
}

async fn accepted(c: &mut Client) -> Option<String> {
    match c.recv().await {
        ServerMsg::Accepted { sdp, .. } => sdp,
        other => panic!("expected accepted, got {other:?}"),
    }
}

async fn media(c: &mut Client) -> LegInfo {
    match c.recv().await {
        ServerMsg::Media { leg, .. } => leg,
        other => panic!("expected media, got {other:?}"),
    }
}

async fn error(c: &mut Client) -> (ErrorCode, String) {
    match c.recv().await {
        ServerMsg::Error { code, message, .. } => (code, message),
        other => panic!("expected error, got {other:?}"),
    }
}

/// A browser's leg: no SDES keys, an answer to its offer that names the relay transport.
fn assert_browser_leg(leg: &LegInfo) -> String {
    assert!(
        leg.srtp.is_none(),
        "a browser is keyed by DTLS-SRTP: {leg:?}"
    );
    let sdp = leg
        .sdp
        .clone()
        .expect("a browser's media carries the answer");
    let port = leg.address.rsplit_once(':').unwrap().1;
    assert!(sdp.contains("a=ice-lite\r\n"), "{sdp}");
    assert!(sdp.contains("a=setup:passive\r\n"), "{sdp}");
    assert!(sdp.contains(&format!("127.0.0.1 {port} typ host")), "{sdp}");
    assert!(sdp.contains(" opus/48000/2\r\n"), "{sdp}");
    assert!(sdp.contains("H264/90000"), "{sdp}");
    sdp
}

#[tokio::test]
async fn a_browser_calls_an_edge_client_and_gets_the_relays_answer() {
    let s = common::start(common::test_config()).await;
    let accs = setup(&s, 2).await;
    let (mut browser, _) = Client::login_as(&s, &accs[0].1, ClientKind::Browser).await;
    let (mut edge, _) = Client::login(&s, &accs[1].1).await;

    invite(&mut browser, &accs[1].0, Some(crlf(CHROME))).await;
    let call = ringing(&mut browser).await;
    let (ringing_call, sdp) = incoming(&mut edge).await;
    assert_eq!(ringing_call, call);
    assert_eq!(
        sdp, None,
        "a browser's offer is for the supernode, not the callee"
    );
    accept(&mut edge, &call, None).await;
    assert_eq!(accepted(&mut browser).await, None);
    let leg = media(&mut browser).await;
    let answer = assert_browser_leg(&leg);
    let edge_leg = media(&mut edge).await;
    assert!(
        edge_leg.srtp.is_some() && edge_leg.sdp.is_none(),
        "{edge_leg:?}"
    );

    // The relay was asked for a browser transport with what the offer says, and the
    // answer announces what the relay was told to send under.
    let offers = s.relay.state.lock().unwrap().browser_offers.clone();
    assert_eq!(offers.len(), 1);
    let (tr, offer) = &offers[0];
    assert_eq!(tr, &leg.leg_id);
    assert_eq!(offer.ice_ufrag, "Kx3b");
    assert_eq!(offer.fingerprint.algorithm, "sha-256");
    assert!(offer.twcc_extension_id.is_some());
    let kinds: Vec<MediaKindOfLine> = offer.send.iter().map(|s| s.kind).collect();
    assert_eq!(kinds, vec![MediaKindOfLine::Audio, MediaKindOfLine::Video]);
    for send in &offer.send {
        assert!(
            answer.contains(&format!("a=rtpmap:{} ", send.pt)),
            "{answer}"
        );
    }
    assert_eq!(s.relay.state.lock().unwrap().connected.len(), 2);

    browser
        .send(&ClientMsg::Hangup {
            call_id: call.clone(),
        })
        .await;
    for c in [&mut browser, &mut edge] {
        assert_eq!(
            c.recv().await,
            ServerMsg::CallEnded {
                call_id: call.clone(),
                reason: EndReason::Hangup
            }
        );
    }
    assert!(s.relay.wait_live(vec![]).await.is_empty());
}

#[tokio::test]
async fn an_edge_client_calls_a_browser_which_answers_with_its_offer() {
    let s = common::start(common::test_config()).await;
    let accs = setup(&s, 2).await;
    let (mut edge, _) = Client::login(&s, &accs[0].1).await;
    let (mut browser, _) = Client::login_as(&s, &accs[1].1, ClientKind::Browser).await;

    invite(&mut edge, &accs[1].0, None).await;
    let call = ringing(&mut edge).await;
    assert_eq!(incoming(&mut browser).await.0, call);
    // A browser's accept needs its offer.
    accept(&mut browser, &call, None).await;
    assert_eq!(error(&mut browser).await.0, ErrorCode::InvalidMessage);
    accept(&mut browser, &call, Some(crlf(FIREFOX))).await;
    assert_eq!(
        accepted(&mut edge).await,
        None,
        "the browser's offer is not passed on"
    );
    let edge_leg = media(&mut edge).await;
    assert!(edge_leg.srtp.is_some());
    let leg = media(&mut browser).await;
    assert_browser_leg(&leg);
}

#[tokio::test]
async fn two_browsers_call_each_other_through_one_session() {
    let s = common::start(common::test_config()).await;
    let accs = setup(&s, 2).await;
    let (mut a, _) = Client::login_as(&s, &accs[0].1, ClientKind::Browser).await;
    let (mut b, _) = Client::login_as(&s, &accs[1].1, ClientKind::Browser).await;
    invite(&mut a, &accs[1].0, Some(crlf(CHROME))).await;
    let call = ringing(&mut a).await;
    assert_eq!(incoming(&mut b).await, (call.clone(), None));
    accept(&mut b, &call, Some(crlf(CHROME))).await;
    assert_eq!(accepted(&mut a).await, None);
    let (la, lb) = (media(&mut a).await, media(&mut b).await);
    let (sa, sb) = (assert_browser_leg(&la), assert_browser_leg(&lb));
    assert_ne!(la.leg_id, lb.leg_id);
    assert_ne!(sa, sb, "each browser gets the answer of its own transport");
    let log = s.relay.state.lock().unwrap();
    assert_eq!(log.browser_offers.len(), 2);
    assert_ne!(
        log.browser_offers[0].1.send, log.browser_offers[1].1.send,
        "each transport sends under its own SSRCs"
    );
    assert_eq!(log.live.len(), 1, "one session");
    assert_eq!(log.connected.len(), 2, "a subscription each way");
}

#[tokio::test]
async fn bad_offers_get_invalid_sdp_and_set_nothing_up() {
    let s = common::start(common::test_config()).await;
    let accs = setup(&s, 2).await;
    let (mut a, _) = Client::login_as(&s, &accs[0].1, ClientKind::Browser).await;
    let (mut b, _) = Client::login_as(&s, &accs[1].1, ClientKind::Browser).await;

    // No offer at all.
    invite(&mut a, &accs[1].0, None).await;
    assert_eq!(error(&mut a).await.0, ErrorCode::InvalidMessage);
    // Malformed: the error names the line.
    invite(&mut a, &accs[1].0, Some("v=0\r\no=broken\r\n".into())).await;
    let (code, message) = error(&mut a).await;
    assert_eq!(code, ErrorCode::InvalidSdp);
    assert!(message.contains("line 2"), "{message}");
    // Nothing the supernode serves.
    invite(&mut a, &accs[1].0, Some(crlf(NO_CODEC))).await;
    let (code, message) = error(&mut a).await;
    assert_eq!(code, ErrorCode::InvalidSdp);
    assert!(
        message.contains("nothing the supernode serves"),
        "{message}"
    );
    // Nobody rang; a good offer still works.
    invite(&mut a, &accs[1].0, Some(crlf(CHROME))).await;
    let call = ringing(&mut a).await;
    assert_eq!(incoming(&mut b).await.0, call);
    // A bad answer-side offer leaves the call ringing.
    accept(&mut b, &call, Some("not sdp".into())).await;
    assert_eq!(error(&mut b).await.0, ErrorCode::InvalidSdp);
    assert!(
        s.relay.live_calls().is_empty(),
        "no transports for a refused offer"
    );
    accept(&mut b, &call, Some(crlf(CHROME))).await;
    assert_eq!(accepted(&mut a).await, None);
    assert_browser_leg(&media(&mut a).await);
}
