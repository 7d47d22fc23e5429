//! Conferences (group calls) over the WebSocket against the real `supernode` binary: create,
//! invite (every tab rings, the first join takes part, the others hear
//! `answered_elsewhere`), roster updates, `conference_full` past `max_participants`, busy
//! rules against 1:1 calls, leave and disconnect, and the relay's transports freed at the
//! end.

mod common;

use std::time::Duration;
use tokio::time::Instant;

use common::{Node, data_dir, partner};
use supernode_edge::signaling::SignalingClient;
use supernode_proto::ids::{AccountId, CallId};
use supernode_proto::protocol::{
    ClientMsg, EndReason, ErrorCode, LegInfo, MediaKind, Participant, ServerMsg,
};

struct Server {
    node: Node,
    key: String,
}

fn start(env: &[(&str, &str)]) -> Server {
    let dir = data_dir("conf_sig");
    let (_, key) = partner(&dir, "conf-test", false);
    Server {
        node: Node::start(&dir, env),
        key,
    }
}

impl Server {
    async fn account(&self) -> (AccountId, String) {
        let (id, token) = self.node.account(&self.key, "x").await;
        (AccountId::parse(&id).unwrap(), token)
    }

    async fn client(&self, token: &str) -> SignalingClient {
        SignalingClient::connect(&self.node.base(), token)
            .await
            .unwrap()
    }
}

/// The first message `pick` accepts within 10 s (others are skipped); panics naming `what`.
async fn expect<T>(
    c: &mut SignalingClient,
    what: &str,
    mut pick: impl FnMut(&ServerMsg) -> Option<T>,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    loop {
        match c.next(deadline).await.unwrap() {
            Some(m) => {
                if let Some(t) = pick(&m) {
                    return t;
                }
                seen.push(m);
            }
            None => panic!("no {what} within 10 s; saw {seen:?}"),
        }
    }
}

async fn media(c: &mut SignalingClient, conf: &CallId) -> LegInfo {
    expect(c, "media", |m| match m {
        ServerMsg::Media { call_id, leg } if call_id == conf => Some(leg.clone()),
        _ => None,
    })
    .await
}

/// The accounts of the next roster of `conf` that has `n` participants.
async fn roster(c: &mut SignalingClient, conf: &CallId, n: usize) -> Vec<AccountId> {
    expect(c, &format!("a roster of {n}"), |m| match m {
        ServerMsg::ConferenceRoster {
            conference_id,
            participants,
            ..
        } if conference_id == conf && participants.len() == n => Some(
            participants
                .iter()
                .map(|p: &Participant| p.account_id.clone())
                .collect(),
        ),
        _ => None,
    })
    .await
}

async fn error(c: &mut SignalingClient) -> ErrorCode {
    expect(c, "an error", |m| match m {
        ServerMsg::Error { code, .. } => Some(*code),
        _ => None,
    })
    .await
}

async fn invited(c: &mut SignalingClient) -> CallId {
    expect(c, "conference_invite", |m| match m {
        ServerMsg::ConferenceInvite { conference_id, .. } => Some(conference_id.clone()),
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conference_create_invite_join_full_leave() {
    let server = start(&[("SUPERNODE_MAX_PARTICIPANTS", "3")]);
    let (alice, alice_token) = server.account().await;
    let (bob, bob_token) = server.account().await;
    let (carol, carol_token) = server.account().await;
    let (dave, dave_token) = server.account().await;
    let mut a = server.client(&alice_token).await;
    let mut b1 = server.client(&bob_token).await;
    let mut b2 = server.client(&bob_token).await;
    let mut c = server.client(&carol_token).await;
    let mut d = server.client(&dave_token).await;

    // Alice opens a conference: created, her transport, a roster of one.
    a.send(&ClientMsg::ConferenceCreate {
        client_ref: Some("c1".into()),
        sdp: None,
    })
    .await
    .unwrap();
    let conf = expect(&mut a, "conference_created", |m| match m {
        ServerMsg::ConferenceCreated {
            conference_id,
            client_ref,
        } => {
            assert_eq!(client_ref.as_deref(), Some("c1"));
            Some(conference_id.clone())
        }
        _ => None,
    })
    .await;
    let leg_a = media(&mut a, &conf).await;
    assert!(leg_a.srtp.is_some(), "an edge participant gets SRTP keys");
    assert_eq!(roster(&mut a, &conf, 1).await, vec![alice.clone()]);

    // Inviting Bob rings both of his endpoints; the first join takes part.
    a.send(&ClientMsg::ConferenceInvite {
        conference_id: conf.clone(),
        to: bob.clone(),
    })
    .await
    .unwrap();
    expect(&mut a, "ringing", |m| {
        matches!(m, ServerMsg::Ringing { to, .. } if *to == bob).then_some(())
    })
    .await;
    assert_eq!(invited(&mut b1).await, conf);
    assert_eq!(invited(&mut b2).await, conf);
    b1.send(&ClientMsg::ConferenceJoin {
        conference_id: conf.clone(),
        sdp: None,
    })
    .await
    .unwrap();
    expect(&mut b2, "answered_elsewhere", |m| {
        matches!(m, ServerMsg::AnsweredElsewhere { call_id } if *call_id == conf).then_some(())
    })
    .await;
    let leg_b = media(&mut b1, &conf).await;
    assert_ne!(leg_b.address, leg_a.address, "a transport per participant");
    assert_ne!(leg_b.leg_id, leg_a.leg_id);
    assert_eq!(
        roster(&mut a, &conf, 2).await,
        vec![alice.clone(), bob.clone()]
    );
    assert_eq!(
        roster(&mut b1, &conf, 2).await,
        vec![alice.clone(), bob.clone()]
    );
    // Bob's other tab cannot join as well.
    b2.send(&ClientMsg::ConferenceJoin {
        conference_id: conf.clone(),
        sdp: None,
    })
    .await
    .unwrap();
    assert_eq!(error(&mut b2).await, ErrorCode::InvalidState);

    // Dave, not invited, cannot join; a 1:1 call to Bob (in the conference) is busy, and
    // Alice cannot start one.
    d.send(&ClientMsg::ConferenceJoin {
        conference_id: conf.clone(),
        sdp: None,
    })
    .await
    .unwrap();
    assert_eq!(error(&mut d).await, ErrorCode::UnknownCall);
    d.send(&ClientMsg::Invite {
        to: bob.clone(),
        media: MediaKind::Audio,
        client_ref: None,
        sdp: None,
    })
    .await
    .unwrap();
    expect(&mut d, "busy", |m| {
        matches!(m, ServerMsg::Busy { to, .. } if *to == bob).then_some(())
    })
    .await;
    a.send(&ClientMsg::Invite {
        to: dave.clone(),
        media: MediaKind::Audio,
        client_ref: None,
        sdp: None,
    })
    .await
    .unwrap();
    assert_eq!(error(&mut a).await, ErrorCode::AlreadyInCall);

    // Carol makes three (the limit); Dave, invited as a fourth, is refused typed.
    for (who, client) in [(&carol, &mut c), (&dave, &mut d)] {
        b1.send(&ClientMsg::ConferenceInvite {
            conference_id: conf.clone(),
            to: who.clone(),
        })
        .await
        .unwrap();
        assert_eq!(invited(client).await, conf);
    }
    c.send(&ClientMsg::ConferenceJoin {
        conference_id: conf.clone(),
        sdp: None,
    })
    .await
    .unwrap();
    media(&mut c, &conf).await;
    assert_eq!(
        roster(&mut a, &conf, 3).await,
        vec![alice.clone(), bob.clone(), carol.clone()]
    );
    d.send(&ClientMsg::ConferenceJoin {
        conference_id: conf.clone(),
        sdp: None,
    })
    .await
    .unwrap();
    assert_eq!(error(&mut d).await, ErrorCode::ConferenceFull);
    // Three participants' legs and the mixer's processor transport.
    server.node.expect_metric("supernode_relay_legs", 4.0).await;

    // Bob leaves: he is told, the others get the new roster; Dave may now join.
    b1.send(&ClientMsg::ConferenceLeave {
        conference_id: conf.clone(),
    })
    .await
    .unwrap();
    expect(&mut b1, "call_ended", |m| {
        matches!(m, ServerMsg::CallEnded { call_id, reason: EndReason::Hangup } if *call_id == conf)
            .then_some(())
    })
    .await;
    assert_eq!(
        roster(&mut c, &conf, 2).await,
        vec![alice.clone(), carol.clone()]
    );
    d.send(&ClientMsg::ConferenceJoin {
        conference_id: conf.clone(),
        sdp: None,
    })
    .await
    .unwrap();
    media(&mut d, &conf).await;
    assert_eq!(
        roster(&mut a, &conf, 3).await,
        vec![alice.clone(), carol.clone(), dave.clone()]
    );

    // Carol's socket closes: she is out. Dave and Alice leave: the conference is closed
    // and every relay transport of it freed.
    c.close().await;
    assert_eq!(
        roster(&mut a, &conf, 2).await,
        vec![alice.clone(), dave.clone()]
    );
    for x in [&mut d, &mut a] {
        x.send(&ClientMsg::ConferenceLeave {
            conference_id: conf.clone(),
        })
        .await
        .unwrap();
    }
    server.node.expect_metric("supernode_relay_legs", 0.0).await;
    // A closed conference is unknown.
    a.send(&ClientMsg::ConferenceJoin {
        conference_id: conf.clone(),
        sdp: None,
    })
    .await
    .unwrap();
    assert_eq!(error(&mut a).await, ErrorCode::UnknownCall);
}
