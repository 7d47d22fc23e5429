//! The WebSocket protocol over real sockets on loopback: login, errors, presence and calls
//! across many endpoints.

mod common;

use std::time::Duration;

use common::{Client, Server};
use supernode_signaling::SignalingConfig;
use supernode_signaling::directory::Directory;
use supernode_signaling::ids::{AccountId, CallId, EndpointId};
use supernode_signaling::protocol::{
    ClientKind, ClientMsg, EndReason, ErrorCode, MediaKind, Negotiation, NoticeState, ServerMsg,
};
use supernode_signaling::token::{Keyring, SigningKey};

fn acc(s: &str) -> AccountId {
    AccountId::parse(s).unwrap()
}

fn expect_error(m: ServerMsg, code: ErrorCode) {
    match m {
        ServerMsg::Error { code: c, .. } => assert_eq!(c, code),
        other => panic!("expected error {code:?}, got {other:?}"),
    }
}

async fn refused(s: &Server, token: &str, code: ErrorCode) {
    let mut c = Client::connect(s).await;
    c.send(&ClientMsg::Login {
        token: token.to_owned(),
        client: ClientKind::Edge,
    })
    .await;
    expect_error(c.recv().await, code);
    assert!(c.closed().await, "socket closed after a refused login");
}

/// One partner with `n` accounts, each with a fresh token.
async fn setup(s: &Server, n: usize) -> (String, Vec<(String, String)>) {
    let (_, key) = common::partner(s, "p").await;
    let mut out = Vec::new();
    for _ in 0..n {
        let a = common::account(s, &key).await;
        let t = common::token(s, &key, &a).await;
        out.push((a, t));
    }
    (key, out)
}

async fn invite(c: &mut Client, to: &str) {
    c.send(&ClientMsg::Invite {
        to: acc(to),
        media: MediaKind::AudioVideo,
        client_ref: Some("r".into()),
        sdp: None,
    })
    .await;
}

async fn ringing(c: &mut Client) -> CallId {
    match c.recv().await {
        ServerMsg::Ringing {
            call_id,
            client_ref,
            ..
        } => {
            assert_eq!(client_ref.as_deref(), Some("r"));
            call_id
        }
        other => panic!("expected ringing, got {other:?}"),
    }
}

async fn incoming(c: &mut Client, from: &str) -> CallId {
    match c.recv().await {
        ServerMsg::IncomingCall {
            call_id,
            from: f,
            media,
            ..
        } => {
            assert_eq!(f.as_str(), from);
            assert_eq!(media, MediaKind::AudioVideo);
            call_id
        }
        other => panic!("expected incoming_call, got {other:?}"),
    }
}

/// Answers `call` (no SDP).
async fn accept(c: &mut Client, call: CallId) {
    c.send(&ClientMsg::Accept {
        call_id: call.clone(),
        sdp: None,
    })
    .await;
}

async fn ended(c: &mut Client, call: CallId, reason: EndReason) {
    assert_eq!(
        c.recv().await,
        ServerMsg::CallEnded {
            call_id: call.clone(),
            reason
        }
    );
}

#[tokio::test]
async fn login_and_keepalive() {
    let s = common::start(common::test_config()).await;
    let (_, accs) = setup(&s, 1).await;
    let (mut c, ep) = Client::login(&s, &accs[0].1).await;
    // A random 128-bit id, never a small integer.
    assert!(
        ep.as_str().starts_with("ep_") && ep.as_str().len() == 3 + 32,
        "{ep}"
    );
    c.send(&ClientMsg::Ping { nonce: Some(42) }).await;
    assert_eq!(c.recv().await, ServerMsg::Pong { nonce: Some(42) });
    c.send(&ClientMsg::Login {
        token: accs[0].1.clone(),
        client: ClientKind::Edge,
    })
    .await;
    expect_error(c.recv().await, ErrorCode::AlreadyLoggedIn);
    assert_eq!(s.signaling.endpoint_count(), 1);
    c.close().await;
}

#[tokio::test]
async fn bad_expired_forged_and_revoked_tokens_are_refused() {
    let s = common::start(common::test_config()).await;
    let (key, accs) = setup(&s, 2).await;
    let (a, token) = &accs[0];

    refused(&s, "garbage", ErrorCode::InvalidToken).await;
    // Forged: another account id under the same signature.
    let forged = token.replace(a.as_str(), accs[1].0.as_str());
    refused(&s, &forged, ErrorCode::InvalidToken).await;
    // Forged: a later expiry.
    let parts: Vec<&str> = token.split('.').collect();
    let later = format!(
        "{}.{}.{}.{}.{}",
        parts[0],
        parts[1],
        parts[2],
        parts[3].parse::<i64>().unwrap() + 1000,
        parts[4]
    );
    refused(&s, &later, ErrorCode::InvalidToken).await;
    // Signed by a key of another network.
    let stranger = Keyring::new(vec![SigningKey::generate(0)], 0, 3600);
    let foreign = stranger
        .sign(&acc(a), supernode_signaling::timefmt::unix_now() + 60)
        .unwrap();
    refused(&s, &foreign, ErrorCode::InvalidToken).await;
    // Expired: signed with the real key, expiry in the past.
    let ring = supernode_signaling::admin::load_keyring(
        &s.store,
        supernode_signaling::timefmt::unix_now(),
        86_400,
    )
    .await
    .unwrap();
    let expired = ring
        .sign(&acc(a), supernode_signaling::timefmt::unix_now() - 1)
        .unwrap();
    refused(&s, &expired, ErrorCode::TokenExpired).await;

    // Deleted account: its still-valid token is refused.
    let r = reqwest::Client::new()
        .delete(s.url(&format!("/v1/accounts/{}", accs[1].0)))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    refused(&s, &accs[1].1, ErrorCode::AccountUnavailable).await;

    // The valid token still works.
    let (c, _) = Client::login(&s, token).await;
    c.close().await;
}

#[tokio::test]
async fn revoked_partner_tokens_and_other_partner_accounts() {
    let s = common::start(common::test_config()).await;
    let (pid_a, key_a) = common::partner(&s, "a").await;
    let (_, key_b) = common::partner(&s, "b").await;
    let a1 = common::account(&s, &key_a).await;
    let t1 = common::token(&s, &key_a, &a1).await;
    let b1 = common::account(&s, &key_b).await;
    let tb = common::token(&s, &key_b, &b1).await;

    // An endpoint of partner B cannot see or call partner A's accounts.
    let (mut ca, _) = Client::login(&s, &t1).await;
    let (mut cb, _) = Client::login(&s, &tb).await;
    cb.send(&ClientMsg::SubscribePresence {
        account_ids: vec![acc(&a1)],
    })
    .await;
    assert_eq!(
        cb.recv().await,
        ServerMsg::Presence {
            account_id: acc(&a1),
            online: false
        }
    );
    invite(&mut cb, &a1).await;
    assert_eq!(
        cb.recv().await,
        ServerMsg::Unavailable {
            to: acc(&a1),
            client_ref: Some("r".into())
        }
    );
    ca.quiet(200).await;

    supernode_signaling::admin::revoke_partner(&s.store, &pid_a, 0)
        .await
        .unwrap();
    refused(&s, &t1, ErrorCode::AccountUnavailable).await;
}

#[tokio::test]
async fn rotated_secrets_keep_old_tokens_valid() {
    let s = common::start(common::test_config()).await;
    let (key, accs) = setup(&s, 1).await;
    let (a, old_token) = &accs[0];
    let rotated = supernode_signaling::admin::rotate_secret(
        &s.store,
        supernode_signaling::timefmt::unix_now(),
        86_400,
    )
    .await
    .unwrap();
    // A token signed with the new key (as another supernode would issue it) is accepted at
    // once: an unknown key id makes the server reload its keyring.
    let ring = supernode_signaling::admin::load_keyring(
        &s.store,
        supernode_signaling::timefmt::unix_now(),
        86_400,
    )
    .await
    .unwrap();
    let new_token = ring
        .sign(&acc(a), supernode_signaling::timefmt::unix_now() + 60)
        .unwrap();
    assert!(new_token.contains(&rotated.key_id));
    let (c1, _) = Client::login(&s, &new_token).await;
    // The old token still verifies.
    let (c2, _) = Client::login(&s, old_token).await;
    // And the API now signs with the new key.
    let issued = common::token(&s, &key, a).await;
    assert!(issued.contains(&rotated.key_id), "{issued}");
    c1.close().await;
    c2.close().await;
}

#[tokio::test]
async fn login_must_come_first_and_in_time() {
    let s = common::start(SignalingConfig {
        login_timeout: Duration::from_millis(300),
        ..common::test_config()
    })
    .await;
    let mut c = Client::connect(&s).await;
    c.send(&ClientMsg::Ping { nonce: None }).await;
    expect_error(c.recv().await, ErrorCode::NotLoggedIn);
    assert!(c.closed().await);

    let mut c = Client::connect(&s).await;
    expect_error(c.recv().await, ErrorCode::LoginTimeout);
    assert!(c.closed().await);

    let mut c = Client::connect(&s).await;
    c.send_text("not json").await;
    expect_error(c.recv().await, ErrorCode::MalformedJson);
    assert!(c.closed().await);
}

#[tokio::test]
async fn bad_messages_get_typed_errors_and_the_socket_stays() {
    let s = common::start(common::test_config()).await;
    let (_, accs) = setup(&s, 1).await;
    let (mut c, _) = Client::login(&s, &accs[0].1).await;
    for (frame, code) in [
        ("{oops", ErrorCode::MalformedJson),
        ("42", ErrorCode::MalformedJson),
        (r#"{"type":"ping"}"#, ErrorCode::UnsupportedVersion),
        (r#"{"v":9,"type":"ping"}"#, ErrorCode::UnsupportedVersion),
        (
            r#"{"v":2,"type":"teleport","to":"mars"}"#,
            ErrorCode::UnknownType,
        ),
        (r#"{"v":2,"type":"invite"}"#, ErrorCode::InvalidMessage),
        (
            r#"{"v":2,"type":"accept","call_id":"seven"}"#,
            ErrorCode::InvalidMessage,
        ),
        // Version 1 frames are refused by version; its integer call ids are not ids.
        (r#"{"v":1,"type":"ping"}"#, ErrorCode::UnsupportedVersion),
        (
            r#"{"v":2,"type":"accept","call_id":777}"#,
            ErrorCode::InvalidMessage,
        ),
        (
            r#"{"v":2,"type":"accept","call_id":"call_00000000000000000000000000000777"}"#,
            ErrorCode::UnknownCall,
        ),
        (
            r#"{"v":2,"type":"hangup","call_id":"call_00000000000000000000000000000777"}"#,
            ErrorCode::UnknownCall,
        ),
        (
            r#"{"v":2,"type":"cancel","call_id":"call_00000000000000000000000000000777"}"#,
            ErrorCode::UnknownCall,
        ),
        (
            r#"{"v":2,"type":"reject","call_id":"call_00000000000000000000000000000777"}"#,
            ErrorCode::UnknownCall,
        ),
        (
            r#"{"v":2,"type":"negotiate","call_id":"call_00000000000000000000000000000777","negotiation":{"kind":"offer","sdp":"v=0"}}"#,
            ErrorCode::UnknownCall,
        ),
    ] {
        c.send_text(frame).await;
        expect_error(c.recv().await, code);
    }
    c.ws.send(tokio_tungstenite::tungstenite::Message::binary(vec![
        1u8, 2, 3,
    ]))
    .await
    .unwrap();
    expect_error(c.recv().await, ErrorCode::BinaryNotSupported);
    // Calling oneself.
    invite(&mut c, &accs[0].0).await;
    expect_error(c.recv().await, ErrorCode::InvalidTarget);
    // Still alive.
    c.send(&ClientMsg::Ping { nonce: Some(1) }).await;
    assert_eq!(c.recv().await, ServerMsg::Pong { nonce: Some(1) });
}

use futures_util::SinkExt;

#[tokio::test]
async fn presence_of_contacts() {
    let s = common::start(common::test_config()).await;
    let (_, accs) = setup(&s, 2).await;
    let (mut a, _) = Client::login(&s, &accs[0].1).await;
    a.send(&ClientMsg::SubscribePresence {
        account_ids: vec![acc(&accs[1].0)],
    })
    .await;
    let off = ServerMsg::Presence {
        account_id: acc(&accs[1].0),
        online: false,
    };
    let on = ServerMsg::Presence {
        account_id: acc(&accs[1].0),
        online: true,
    };
    assert_eq!(a.recv().await, off);
    let (b1, _) = Client::login(&s, &accs[1].1).await;
    assert_eq!(a.recv().await, on);
    // A second endpoint of B changes nothing; the last one leaving does.
    let (b2, b2_ep) = Client::login(&s, &accs[1].1).await;
    {
        let eps: Vec<EndpointId> = s
            .directory
            .endpoints_of(&acc(&accs[1].0))
            .into_iter()
            .map(|r| r.endpoint)
            .collect();
        assert_eq!(eps.len(), 2);
        assert!(eps.contains(&b2_ep));
        assert_eq!(s.directory.len(), 3);
    }
    b1.close().await;
    a.quiet(200).await;
    b2.close().await;
    assert_eq!(a.recv().await, off);
    assert_eq!(s.directory.len(), 1, "only A is left");
}

/// The multi-endpoint scenario: caller with two endpoints, callee with two tabs.
#[tokio::test]
async fn first_accept_wins_across_tabs() {
    let s = common::start(common::test_config()).await;
    let (_, accs) = setup(&s, 3).await;
    let (alice, bob, carol) = (&accs[0], &accs[1], &accs[2]);
    let (mut a1, a1_ep) = Client::login(&s, &alice.1).await;
    let (mut a2, _) = Client::login(&s, &alice.1).await;
    let (mut b1, b1_ep) = Client::login(&s, &bob.1).await;
    let (mut b2, _) = Client::login(&s, &bob.1).await;
    let (mut c1, _) = Client::login(&s, &carol.1).await;

    invite(&mut a1, &bob.0).await;
    let call = ringing(&mut a1).await;
    assert_eq!(incoming(&mut b1, &alice.0).await, call);
    assert_eq!(incoming(&mut b2, &alice.0).await, call);
    assert_eq!(
        a2.recv().await,
        ServerMsg::CallNotice {
            call_id: call.clone(),
            state: NoticeState::Outgoing,
            peer: acc(&bob.0)
        }
    );
    assert!(s.relay.live_calls().is_empty(), "no legs before an answer");

    // Busy: Carol calls Bob (and Alice) while they are in a call.
    invite(&mut c1, &bob.0).await;
    assert_eq!(
        c1.recv().await,
        ServerMsg::Busy {
            to: acc(&bob.0),
            client_ref: Some("r".into())
        }
    );
    invite(&mut c1, &alice.0).await;
    assert_eq!(
        c1.recv().await,
        ServerMsg::Busy {
            to: acc(&alice.0),
            client_ref: Some("r".into())
        }
    );
    // Alice cannot start a second call.
    invite(&mut a2, &carol.0).await;
    expect_error(a2.recv().await, ErrorCode::AlreadyInCall);

    accept(&mut b1, call.clone()).await;
    match a1.recv().await {
        ServerMsg::Accepted { call_id, by, .. } => {
            assert_eq!(call_id, call.clone());
            assert_eq!(by, b1_ep);
        }
        other => panic!("{other:?}"),
    }
    let a_leg = match a1.recv().await {
        ServerMsg::Media { call_id, leg } => {
            assert_eq!(call_id, call.clone());
            assert!(leg.srtp.is_some());
            leg
        }
        other => panic!("{other:?}"),
    };
    let b_leg = match b1.recv().await {
        ServerMsg::Media { leg, .. } => leg,
        other => panic!("{other:?}"),
    };
    assert_ne!(a_leg.leg_id, b_leg.leg_id);
    assert_eq!(
        b2.recv().await,
        ServerMsg::AnsweredElsewhere {
            call_id: call.clone()
        }
    );
    assert_eq!(
        a2.recv().await,
        ServerMsg::CallNotice {
            call_id: call.clone(),
            state: NoticeState::Answered,
            peer: acc(&bob.0)
        }
    );
    assert_eq!(s.relay.live_calls(), vec![call.clone()]);
    // One subscription each way.
    assert_eq!(s.relay.state.lock().unwrap().connected.len(), 2);

    // The second tab is too late.
    accept(&mut b2, call.clone()).await;
    expect_error(b2.recv().await, ErrorCode::InvalidState);
    // The caller's other endpoint takes no part.
    a2.send(&ClientMsg::Hangup {
        call_id: call.clone(),
    })
    .await;
    expect_error(a2.recv().await, ErrorCode::UnknownCall);

    // Negotiation flows only between the two endpoints in the call.
    let offer = Negotiation::Offer {
        sdp: "v=0 offer".into(),
    };
    a1.send(&ClientMsg::Negotiate {
        call_id: call.clone(),
        negotiation: offer.clone(),
    })
    .await;
    assert_eq!(
        b1.recv().await,
        ServerMsg::Negotiate {
            call_id: call.clone(),
            negotiation: offer
        }
    );
    let cand = Negotiation::IceCandidate {
        candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host".into(),
        sdp_mid: Some("0".into()),
        sdp_mline_index: Some(0),
    };
    b1.send(&ClientMsg::Negotiate {
        call_id: call.clone(),
        negotiation: cand.clone(),
    })
    .await;
    assert_eq!(
        a1.recv().await,
        ServerMsg::Negotiate {
            call_id: call.clone(),
            negotiation: cand
        }
    );
    b2.quiet(150).await;
    a2.quiet(10).await;

    // Hangup ends it for both, releases the legs, and notices the others.
    b1.send(&ClientMsg::Hangup {
        call_id: call.clone(),
    })
    .await;
    ended(&mut a1, call.clone(), EndReason::Hangup).await;
    ended(&mut b1, call.clone(), EndReason::Hangup).await;
    assert_eq!(
        a2.recv().await,
        ServerMsg::CallNotice {
            call_id: call.clone(),
            state: NoticeState::Ended,
            peer: acc(&bob.0)
        }
    );
    assert_eq!(
        b2.recv().await,
        ServerMsg::CallNotice {
            call_id: call.clone(),
            state: NoticeState::Ended,
            peer: acc(&alice.0)
        }
    );
    assert!(s.relay.wait_live(vec![]).await.is_empty());
    {
        let log = s.relay.state.lock().unwrap();
        assert_eq!(log.allocations, 1);
        assert_eq!(log.releases, 1);
    }
    assert_eq!(s.signaling.call_count(), 0);
    let _ = a1_ep;

    // Bob is free again.
    invite(&mut c1, &bob.0).await;
    ringing(&mut c1).await;
}

#[tokio::test]
async fn disconnect_ends_only_the_calls_it_takes_part_in() {
    let s = common::start(common::test_config()).await;
    let (_, accs) = setup(&s, 4).await;
    let (mut a, _) = Client::login(&s, &accs[0].1).await;
    let (mut b, _) = Client::login(&s, &accs[1].1).await;
    let (mut c, _) = Client::login(&s, &accs[2].1).await;
    let (mut d, _) = Client::login(&s, &accs[3].1).await;
    // Two answered calls: a–b and c–d.
    invite(&mut a, &accs[1].0).await;
    let ab = ringing(&mut a).await;
    incoming(&mut b, &accs[0].0).await;
    accept(&mut b, ab.clone()).await;
    invite(&mut c, &accs[3].0).await;
    let cd = ringing(&mut c).await;
    incoming(&mut d, &accs[2].0).await;
    accept(&mut d, cd.clone()).await;
    for cl in [&mut a, &mut c] {
        assert!(matches!(cl.recv().await, ServerMsg::Accepted { .. }));
        assert!(matches!(cl.recv().await, ServerMsg::Media { .. }));
    }
    for cl in [&mut b, &mut d] {
        assert!(matches!(cl.recv().await, ServerMsg::Media { .. }));
    }
    assert_eq!(s.relay.live_calls().len(), 2);

    // a's connection drops.
    drop(a);
    ended(&mut b, ab.clone(), EndReason::PeerDisconnected).await;
    assert_eq!(s.relay.wait_live(vec![cd.clone()]).await, vec![cd.clone()]);
    // c–d is untouched.
    let offer = Negotiation::Answer { sdp: "v=0".into() };
    c.send(&ClientMsg::Negotiate {
        call_id: cd.clone(),
        negotiation: offer.clone(),
    })
    .await;
    assert_eq!(
        d.recv().await,
        ServerMsg::Negotiate {
            call_id: cd.clone(),
            negotiation: offer
        }
    );
    d.close().await;
    ended(&mut c, cd.clone(), EndReason::PeerDisconnected).await;
    assert!(s.relay.wait_live(vec![]).await.is_empty());
}

#[tokio::test]
async fn a_ringing_tab_leaving_stops_only_itself() {
    let s = common::start(common::test_config()).await;
    let (_, accs) = setup(&s, 2).await;
    let (mut a, _) = Client::login(&s, &accs[0].1).await;
    let (mut b1, _) = Client::login(&s, &accs[1].1).await;
    let (mut b2, _) = Client::login(&s, &accs[1].1).await;
    invite(&mut a, &accs[1].0).await;
    let call = ringing(&mut a).await;
    incoming(&mut b1, &accs[0].0).await;
    incoming(&mut b2, &accs[0].0).await;
    b1.close().await;
    a.quiet(200).await;
    // A new tab of Bob rings too, and can answer.
    let (mut b3, _) = Client::login(&s, &accs[1].1).await;
    assert_eq!(incoming(&mut b3, &accs[0].0).await, call);
    b3.send(&ClientMsg::Accept {
        call_id: call.clone(),
        sdp: Some("answer".into()),
    })
    .await;
    assert!(matches!(
        a.recv().await,
        ServerMsg::Accepted { sdp: Some(_), .. }
    ));
    assert_eq!(
        b2.recv().await,
        ServerMsg::AnsweredElsewhere {
            call_id: call.clone()
        }
    );

    // When every ringing endpoint leaves, the caller hears `unavailable`.
    let (_, more) = setup(&s, 2).await;
    let (mut x, _) = Client::login(&s, &more[0].1).await;
    let (y, _) = Client::login(&s, &more[1].1).await;
    invite(&mut x, &more[1].0).await;
    let c2 = ringing(&mut x).await;
    y.close().await;
    ended(&mut x, c2, EndReason::Unavailable).await;
}

#[tokio::test]
async fn cancel_reject_no_answer_and_unavailable() {
    let s = common::start(SignalingConfig {
        ring_timeout: Duration::from_millis(300),
        ..common::test_config()
    })
    .await;
    let (_, accs) = setup(&s, 3).await;
    let (mut a, _) = Client::login(&s, &accs[0].1).await;
    let (mut b1, _) = Client::login(&s, &accs[1].1).await;
    let (mut b2, _) = Client::login(&s, &accs[1].1).await;

    // Cancel.
    invite(&mut a, &accs[1].0).await;
    let call = ringing(&mut a).await;
    incoming(&mut b1, &accs[0].0).await;
    incoming(&mut b2, &accs[0].0).await;
    b1.send(&ClientMsg::Cancel {
        call_id: call.clone(),
    })
    .await;
    expect_error(b1.recv().await, ErrorCode::UnknownCall);
    a.send(&ClientMsg::Cancel {
        call_id: call.clone(),
    })
    .await;
    ended(&mut a, call.clone(), EndReason::Cancelled).await;
    ended(&mut b1, call.clone(), EndReason::Cancelled).await;
    ended(&mut b2, call.clone(), EndReason::Cancelled).await;

    // Reject by one tab ends it for everyone.
    invite(&mut a, &accs[1].0).await;
    let call = ringing(&mut a).await;
    incoming(&mut b1, &accs[0].0).await;
    incoming(&mut b2, &accs[0].0).await;
    b2.send(&ClientMsg::Reject {
        call_id: call.clone(),
    })
    .await;
    ended(&mut a, call.clone(), EndReason::Rejected).await;
    ended(&mut b1, call.clone(), EndReason::Rejected).await;
    ended(&mut b2, call.clone(), EndReason::Rejected).await;

    // No answer within the ring timeout.
    invite(&mut a, &accs[1].0).await;
    let call = ringing(&mut a).await;
    incoming(&mut b1, &accs[0].0).await;
    incoming(&mut b2, &accs[0].0).await;
    ended(&mut a, call.clone(), EndReason::NoAnswer).await;
    ended(&mut b1, call.clone(), EndReason::NoAnswer).await;
    ended(&mut b2, call.clone(), EndReason::NoAnswer).await;

    // Nobody online.
    invite(&mut a, &accs[2].0).await;
    assert_eq!(
        a.recv().await,
        ServerMsg::Unavailable {
            to: acc(&accs[2].0),
            client_ref: Some("r".into())
        }
    );
    invite(&mut a, "acc_0123456789abcdef0123456789abcdef").await;
    assert!(matches!(a.recv().await, ServerMsg::Unavailable { .. }));
    assert_eq!(s.relay.state.lock().unwrap().allocations, 0);
}

#[tokio::test]
async fn relay_failure_ends_the_call_cleanly() {
    let s = common::start(common::test_config()).await;
    let (_, accs) = setup(&s, 2).await;
    let (mut a, _) = Client::login(&s, &accs[0].1).await;
    let (mut b, _) = Client::login(&s, &accs[1].1).await;
    invite(&mut a, &accs[1].0).await;
    let call = ringing(&mut a).await;
    incoming(&mut b, &accs[0].0).await;
    s.relay.state.lock().unwrap().fail_next = true;
    accept(&mut b, call.clone()).await;
    ended(&mut a, call.clone(), EndReason::RelayFailure).await;
    ended(&mut b, call.clone(), EndReason::RelayFailure).await;
    assert!(s.relay.wait_live(vec![]).await.is_empty());
    assert_eq!(s.signaling.call_count(), 0);
}

#[tokio::test]
async fn deleting_an_account_closes_its_sockets() {
    let s = common::start(common::test_config()).await;
    let (key, accs) = setup(&s, 1).await;
    let (mut c, _) = Client::login(&s, &accs[0].1).await;
    let r = reqwest::Client::new()
        .delete(s.url(&format!("/v1/accounts/{}", accs[0].0)))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    expect_error(c.recv().await, ErrorCode::AccountUnavailable);
    assert!(c.closed().await);
    for _ in 0..50 {
        if s.signaling.endpoint_count() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(s.signaling.endpoint_count(), 0);
    assert!(
        s.directory.is_empty(),
        "the directory forgets shed endpoints"
    );
}

#[tokio::test]
async fn silent_sockets_are_closed_by_keepalive() {
    let s = common::start(SignalingConfig {
        keepalive_interval: Duration::from_millis(100),
        ..common::test_config()
    })
    .await;
    let (_, accs) = setup(&s, 1).await;
    let (c, _) = Client::login(&s, &accs[0].1).await;
    // Hold the socket without reading: the client never answers pings (tungstenite answers
    // only while read), so the server closes it after two intervals.
    let ws = c.ws;
    for _ in 0..50 {
        if s.signaling.endpoint_count() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(s.signaling.endpoint_count(), 0);
    drop(ws);
}

#[tokio::test]
async fn a_draining_host_refuses_new_invites_and_keeps_running_calls() {
    let s = common::start(common::test_config()).await;
    let (_, accs) = setup(&s, 4).await;
    let (mut a, _) = Client::login(&s, &accs[0].1).await;
    let (mut b, _) = Client::login(&s, &accs[1].1).await;
    let (mut c, _) = Client::login(&s, &accs[2].1).await;
    let (mut d, _) = Client::login(&s, &accs[3].1).await;
    // A call set up before the drain.
    invite(&mut a, &accs[1].0).await;
    let call = ringing(&mut a).await;
    assert_eq!(incoming(&mut b, &accs[0].0).await, call);
    accept(&mut b, call.clone()).await;
    for _ in 0..200 {
        if !s.relay.live_calls().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(s.relay.live_calls(), vec![call.clone()]);

    s.relay.state.lock().unwrap().draining = true;
    invite(&mut c, &accs[3].0).await;
    expect_error(c.recv().await, ErrorCode::Draining);
    // The callee was never rung (its next message is the answer to its own ping), and
    // nothing was allocated for the refused call.
    d.send(&ClientMsg::Ping { nonce: Some(7) }).await;
    assert_eq!(d.recv().await, ServerMsg::Pong { nonce: Some(7) });
    assert_eq!(s.relay.live_calls(), vec![call.clone()]);

    // The running call goes on and ends normally, its legs released.
    a.send(&ClientMsg::Hangup {
        call_id: call.clone(),
    })
    .await;
    loop {
        match b.recv().await {
            ServerMsg::CallEnded { call_id, reason } => {
                assert_eq!((call_id, reason), (call.clone(), EndReason::Hangup));
                break;
            }
            _ => continue,
        }
    }
    assert!(s.relay.wait_live(vec![]).await.is_empty());
}
