//! Calls between endpoints on different nodes, through three sans-IO conference cores
//! wired together by a harness: one shared directory (as the network's replica would be),
//! messages between nodes delivered in order, and a claim table where the first claim of a
//! call wins (as the network's KV claim does). The relay answers at once with a grant per
//! transport. The same rules then run over NATS in the network crate's and the host's
//! tests.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use supernode_proto::SrtpProfile;
use supernode_proto::network::NodeReply;
use supernode_proto::protocol::SrtpKeying;
use supernode_proto::relay_ops::{
    RelayOp, RelayOutcome, RelayResult, TransportGrant, TrunkGrant, TrunkKeys, TrunkRekey,
};
use supernode_signaling::NetFailure;
use supernode_signaling::calls::{CallConfig, CallCore, NodeOut};
use supernode_signaling::directory::InMemoryDirectory;
use supernode_signaling::ids::{AccountId, CallId, EndpointId, PartnerId};
use supernode_signaling::protocol::{EndReason, ErrorCode, MediaKind, ServerMsg};

struct Net {
    now: Instant,
    cores: Vec<CallCore>,
    names: Vec<String>,
    claims: HashMap<CallId, EndpointId>,
    /// Whether the network is up (claims and messages fail fast when not).
    up: bool,
    /// What each endpoint was told, in order.
    inbox: BTreeMap<EndpointId, Vec<ServerMsg>>,
    /// Trunk ends made: (node, the far end's address when aimed at one).
    trunks: Vec<(usize, Option<String>)>,
    /// The keys each end aimed at a far one was given (node, keys from its view).
    trunk_keys: Vec<(usize, TrunkKeys)>,
    /// Re-keys of trunk ends the relays made (node).
    rekeys: Vec<usize>,
    /// Nodes killed (`kill -9`): they run nothing and messages to them fail.
    dead: Vec<bool>,
}

fn keying(b: char) -> SrtpKeying {
    SrtpKeying {
        profile: SrtpProfile::Aes128CmHmacSha1_80,
        key_b64: std::iter::repeat_n(b, 40).collect(),
    }
}

impl Net {
    fn new(n: usize) -> Self {
        let dir = Arc::new(InMemoryDirectory::new());
        let names: Vec<String> = (0..n).map(|i| format!("node-{i}")).collect();
        let cores = names
            .iter()
            .map(|name| {
                CallCore::new(
                    CallConfig {
                        node_id: name.clone(),
                        network: true,
                        ..CallConfig::default()
                    },
                    dir.clone(),
                )
            })
            .collect();
        Self {
            now: Instant::now(),
            cores,
            names,
            claims: HashMap::new(),
            up: true,
            inbox: BTreeMap::new(),
            trunks: Vec::new(),
            trunk_keys: Vec::new(),
            rekeys: Vec::new(),
            dead: vec![false; n],
        }
    }

    fn node(&self, name: &str) -> usize {
        self.names
            .iter()
            .position(|n| n == name)
            .expect("known node")
    }

    fn set_up(&mut self, up: bool) {
        self.up = up;
        for c in &mut self.cores {
            c.set_network_up(up);
        }
    }

    /// Runs everything due: relay batches, messages between nodes, claims, deliveries.
    fn pump(&mut self) {
        loop {
            let mut busy = false;
            for i in 0..self.cores.len() {
                if self.dead[i] {
                    continue;
                }
                while let Some(o) = self.cores[i].poll_output() {
                    self.inbox.entry(o.to).or_default().push(o.msg);
                    busy = true;
                }
                while let Some(batch) = self.cores[i].poll_relay() {
                    busy = true;
                    for op in batch {
                        let outcome = match &op {
                            RelayOp::CreateSession(_) => RelayOutcome::SessionCreated,
                            RelayOp::AddTransport(t) => {
                                RelayOutcome::TransportAdded(TransportGrant {
                                    transport: t.transport.clone(),
                                    address: format!("127.0.0.{}:4000", i + 1),
                                    srtp: None,
                                    browser: None,
                                })
                            }
                            RelayOp::AddTrunk(t) => {
                                self.trunks
                                    .push((i, t.peer.as_ref().map(|p| p.address.clone())));
                                if let Some(p) = &t.peer {
                                    self.trunk_keys.push((i, p.keys.clone()));
                                }
                                RelayOutcome::TrunkAdded(TrunkGrant {
                                    transport: t.transport.clone(),
                                    address: format!("127.0.0.{}:5000", i + 1),
                                    keys: match &t.peer {
                                        Some(p) => p.keys.clone(),
                                        None => TrunkKeys {
                                            inbound: keying('A'),
                                            outbound: keying('B'),
                                        },
                                    },
                                })
                            }
                            RelayOp::RekeyTrunk(t) => {
                                // Fresh keys each time, as the host's relay makes them.
                                self.rekeys.push(i);
                                let n = self.rekeys.len() as u8;
                                RelayOutcome::TrunkRekeyed(TrunkRekey {
                                    transport: t.transport.clone(),
                                    keys: TrunkKeys {
                                        inbound: keying(char::from(b'a' + 2 * n)),
                                        outbound: keying(char::from(b'b' + 2 * n)),
                                    },
                                })
                            }
                            RelayOp::Subscribe(_) => RelayOutcome::Subscribed,
                            _ => RelayOutcome::Released,
                        };
                        self.cores[i].handle_relay_result(RelayResult {
                            op: op.id().clone(),
                            outcome: Ok(outcome),
                        });
                    }
                }
                if let Some(out) = self.cores[i].poll_node() {
                    busy = true;
                    let from = self.names[i].clone();
                    match out {
                        NodeOut::Send { to, msg } => {
                            let j = self.node(&to);
                            let result = if self.dead[j] {
                                Err(NetFailure::Unreachable)
                            } else if self.up {
                                Ok(self.cores[j].handle_node_msg(self.now, &from, msg.clone()))
                            } else {
                                Err(NetFailure::Unavailable)
                            };
                            self.cores[i].handle_node_reply(&to, &msg, result);
                        }
                        NodeOut::Claim { call, endpoint } => {
                            let result = if self.up {
                                Ok(self.claims.entry(call.clone()).or_insert(endpoint.clone())
                                    == &endpoint)
                            } else {
                                Err(NetFailure::Unavailable)
                            };
                            self.cores[i].handle_claim(self.now, &call, &endpoint, result);
                        }
                        _ => {}
                    }
                }
            }
            if !busy {
                return;
            }
        }
    }

    fn told(&mut self, ep: &EndpointId) -> Vec<ServerMsg> {
        self.inbox.remove(ep).unwrap_or_default()
    }
}

fn ringing_call(msgs: &[ServerMsg]) -> CallId {
    msgs.iter()
        .find_map(|m| match m {
            ServerMsg::IncomingCall { call_id, .. } | ServerMsg::Ringing { call_id, .. } => {
                Some(call_id.clone())
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no ringing/incoming_call in {msgs:?}"))
}

/// Alice (caller) on node 0; Bob has a tab on each of nodes 0, 1, 2.
fn setup(net: &mut Net) -> (EndpointId, [EndpointId; 3], AccountId) {
    let partner = PartnerId::random();
    let (alice, bob) = (AccountId::random(), AccountId::random());
    let a = net.cores[0].attach(alice, partner.clone());
    let tabs = [0, 1, 2].map(|i| net.cores[i].attach(bob.clone(), partner.clone()));
    net.pump();
    net.inbox.clear();
    (a, tabs, bob)
}

#[test]
fn tabs_on_three_nodes_ring_and_the_first_answer_wins() {
    let mut net = Net::new(3);
    let (a, tabs, bob) = setup(&mut net);
    let now = net.now;
    net.cores[0]
        .invite(now, &a, bob, MediaKind::Audio, Some("r1".into()), None)
        .unwrap();
    net.pump();
    let caller = net.told(&a);
    let call = ringing_call(&caller);
    assert_eq!(
        caller
            .iter()
            .filter(|m| matches!(m, ServerMsg::Ringing { .. }))
            .count(),
        1,
        "{caller:?}"
    );
    for t in &tabs {
        assert_eq!(ringing_call(&net.told(t)), call, "every tab rings");
    }
    // Tabs on nodes 1 and 2 answer at the same moment: node 1's claim lands first.
    net.cores[1].accept(now, &tabs[1], &call, None).unwrap();
    net.cores[2].accept(now, &tabs[2], &call, None).unwrap();
    net.pump();
    let caller = net.told(&a);
    assert!(
        caller
            .iter()
            .any(|m| matches!(m, ServerMsg::Accepted { by, .. } if by == &tabs[1])),
        "{caller:?}"
    );
    assert!(caller.iter().any(|m| matches!(m, ServerMsg::Media { .. })));
    let winner = net.told(&tabs[1]);
    assert!(
        winner.iter().any(|m| matches!(m, ServerMsg::Media { .. })),
        "the winner gets its media leg across nodes: {winner:?}"
    );
    // Trunked: the winner talks to its own node's relay, which is trunked to the anchor's.
    assert!(
        winner
            .iter()
            .any(|m| matches!(m, ServerMsg::Media { leg, .. } if leg.address == "127.0.0.2:4000")),
        "{winner:?}"
    );
    assert_eq!(
        net.trunks,
        vec![(0, None), (1, Some("127.0.0.1:5000".to_owned()))],
        "the anchor's end first, then node 1's aimed at it"
    );
    for loser in [&tabs[0], &tabs[2]] {
        let got = net.told(loser);
        assert_eq!(
            got,
            vec![ServerMsg::AnsweredElsewhere {
                call_id: call.clone()
            }],
            "each other tab is told once"
        );
    }
    // The winner hangs up: the caller hears it on the anchor.
    net.cores[1].hangup(&tabs[1], &call).unwrap();
    net.pump();
    assert!(net.told(&a).contains(&ServerMsg::CallEnded {
        call_id: call.clone(),
        reason: EndReason::Hangup
    }));
    assert!(net.cores.iter().all(|c| c.call_count() == 0));
    assert!(
        net.cores.iter().all(|c| c.unreleased_sessions().is_empty()),
        "both ends of the trunk are released with the call"
    );
    assert_eq!(net.claims.len(), 1);
}

#[test]
fn a_local_tab_can_win_against_remote_ones() {
    let mut net = Net::new(3);
    let (a, tabs, bob) = setup(&mut net);
    let now = net.now;
    net.cores[0]
        .invite(now, &a, bob, MediaKind::Audio, None, None)
        .unwrap();
    net.pump();
    let call = ringing_call(&net.told(&a));
    net.inbox.clear();
    net.cores[0].accept(now, &tabs[0], &call, None).unwrap();
    // A second accept while the claim is out.
    assert_eq!(
        net.cores[0]
            .accept(now, &tabs[0], &call, None)
            .unwrap_err()
            .code,
        ErrorCode::InvalidState
    );
    net.cores[2].accept(now, &tabs[2], &call, None).unwrap();
    net.pump();
    assert!(
        net.told(&tabs[0])
            .iter()
            .any(|m| matches!(m, ServerMsg::Media { .. }))
    );
    for loser in [&tabs[1], &tabs[2]] {
        assert_eq!(
            net.told(loser),
            vec![ServerMsg::AnsweredElsewhere {
                call_id: call.clone()
            }]
        );
    }
    // The remote nodes forgot the call; the anchor has it.
    assert_eq!(net.cores[1].call_count(), 0);
    assert_eq!(net.cores[2].call_count(), 0);
    assert_eq!(net.cores[0].call_count(), 1);
    // A late accept there hears `answered_elsewhere` (not `unknown_call`); an endpoint of
    // another account learns nothing.
    net.cores[1].accept(now, &tabs[1], &call, None).unwrap();
    net.pump();
    assert_eq!(
        net.told(&tabs[1]),
        vec![ServerMsg::AnsweredElsewhere {
            call_id: call.clone()
        }]
    );
    let stranger = net.cores[1].attach(AccountId::random(), PartnerId::random());
    assert_eq!(
        net.cores[1]
            .accept(now, &stranger, &call, None)
            .unwrap_err()
            .code,
        ErrorCode::UnknownCall
    );
}

#[test]
fn cancel_and_reject_reach_every_node() {
    let mut net = Net::new(3);
    let (a, tabs, bob) = setup(&mut net);
    let now = net.now;
    net.cores[0]
        .invite(now, &a, bob.clone(), MediaKind::Audio, None, None)
        .unwrap();
    net.pump();
    let call = ringing_call(&net.told(&a));
    net.inbox.clear();
    net.cores[0].cancel(&a, &call).unwrap();
    net.pump();
    for t in &tabs {
        assert_eq!(
            net.told(t),
            vec![ServerMsg::CallEnded {
                call_id: call.clone(),
                reason: EndReason::Cancelled
            }]
        );
    }
    assert!(net.cores.iter().all(|c| c.call_count() == 0));
    // A remote tab rejects: the call ends rejected everywhere.
    net.cores[0]
        .invite(now, &a, bob, MediaKind::Audio, None, None)
        .unwrap();
    net.pump();
    let call = ringing_call(&net.told(&a));
    net.inbox.clear();
    net.cores[2].reject(&tabs[2], &call).unwrap();
    net.pump();
    let ended = ServerMsg::CallEnded {
        call_id: call.clone(),
        reason: EndReason::Rejected,
    };
    assert!(net.told(&a).contains(&ended));
    assert!(net.told(&tabs[0]).contains(&ended));
    assert!(net.told(&tabs[1]).contains(&ended));
    assert!(net.cores.iter().all(|c| c.call_count() == 0));
}

#[test]
fn remote_only_callee_busy_unavailable_and_network_down() {
    let mut net = Net::new(2);
    let partner = PartnerId::random();
    let (alice, bob, carol) = (
        AccountId::random(),
        AccountId::random(),
        AccountId::random(),
    );
    let a = net.cores[0].attach(alice.clone(), partner.clone());
    let b = net.cores[1].attach(bob.clone(), partner.clone());
    let c = net.cores[1].attach(carol.clone(), partner.clone());
    let other = net.cores[1].attach(AccountId::random(), PartnerId::random());
    net.pump();
    net.inbox.clear();
    let now = net.now;
    // Bob is in a call on node 1: Alice (node 0) hears `busy`, never `ringing`.
    net.cores[1]
        .invite(now, &c, bob.clone(), MediaKind::Audio, None, None)
        .unwrap();
    net.pump();
    net.inbox.clear();
    net.cores[0]
        .invite(
            now,
            &a,
            bob.clone(),
            MediaKind::Audio,
            Some("x".into()),
            None,
        )
        .unwrap();
    net.pump();
    assert_eq!(
        net.told(&a),
        vec![ServerMsg::Busy {
            to: bob.clone(),
            client_ref: Some("x".into())
        }]
    );
    assert!(
        net.told(&b)
            .iter()
            .all(|m| !matches!(m, ServerMsg::IncomingCall { .. }))
    );
    // An account of another partner on node 1: `unavailable`.
    let other_account = AccountId::random();
    let _ = other;
    let o = net.cores[1].attach(other_account.clone(), PartnerId::random());
    net.pump();
    net.cores[0]
        .invite(now, &a, other_account.clone(), MediaKind::Audio, None, None)
        .unwrap();
    net.pump();
    assert_eq!(
        net.told(&a),
        vec![ServerMsg::Unavailable {
            to: other_account,
            client_ref: None
        }]
    );
    assert!(net.told(&o).is_empty());
    // The network goes down: a call to an endpoint on another node fails fast…
    net.set_up(false);
    let e = net.cores[0]
        .invite(now, &a, carol, MediaKind::Audio, None, None)
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::NetworkUnavailable);
    // … and a same-node call still works.
    let d = net.cores[0].attach(AccountId::random(), partner.clone());
    let dave = AccountId::random();
    let d2 = net.cores[0].attach(dave.clone(), partner);
    let _ = d;
    net.cores[0]
        .invite(now, &a, dave, MediaKind::Audio, None, None)
        .unwrap();
    net.pump();
    let call = ringing_call(&net.told(&d2));
    net.cores[0].accept(now, &d2, &call, None).unwrap();
    net.pump();
    assert!(
        net.told(&a)
            .iter()
            .any(|m| matches!(m, ServerMsg::Accepted { .. }))
    );
}

#[test]
fn the_ring_times_out_on_every_node_and_a_leaving_callee_ends_it() {
    let mut net = Net::new(2);
    let partner = PartnerId::random();
    let (alice, bob) = (AccountId::random(), AccountId::random());
    let a = net.cores[0].attach(alice, partner.clone());
    let b = net.cores[1].attach(bob.clone(), partner.clone());
    net.pump();
    net.inbox.clear();
    let now = net.now;
    net.cores[0]
        .invite(now, &a, bob.clone(), MediaKind::Audio, None, None)
        .unwrap();
    net.pump();
    let call = ringing_call(&net.told(&a));
    net.inbox.clear();
    // Bob's only tab leaves while ringing: the call ends `unavailable` for Alice.
    net.cores[1].detach(&b);
    net.pump();
    assert_eq!(
        net.told(&a),
        vec![ServerMsg::CallEnded {
            call_id: call,
            reason: EndReason::Unavailable
        }]
    );
    assert!(net.cores.iter().all(|c| c.call_count() == 0));
    // A ring nobody answers ends `no_answer` on both nodes at the ring timeout.
    let b = net.cores[1].attach(bob.clone(), partner);
    net.pump();
    net.cores[0]
        .invite(now, &a, bob, MediaKind::Audio, None, None)
        .unwrap();
    net.pump();
    let call = ringing_call(&net.told(&b));
    net.inbox.clear();
    let later = now + Duration::from_secs(61);
    for core in &mut net.cores {
        core.handle_timeout(later);
    }
    net.pump();
    let no_answer = ServerMsg::CallEnded {
        call_id: call,
        reason: EndReason::NoAnswer,
    };
    assert!(net.told(&a).contains(&no_answer));
    assert!(net.told(&b).contains(&no_answer));
    assert!(net.cores.iter().all(|c| c.call_count() == 0));
}

#[test]
fn replies_and_repeats_are_harmless() {
    // A repeated ring (the network layer normally drops repeats) is answered `ok` without
    // ringing twice.
    let mut net = Net::new(2);
    let partner = PartnerId::random();
    let (alice, bob) = (AccountId::random(), AccountId::random());
    let a = net.cores[0].attach(alice.clone(), partner.clone());
    let b = net.cores[1].attach(bob.clone(), partner.clone());
    net.pump();
    net.inbox.clear();
    let call = CallId::random();
    let ring = supernode_proto::network::NodeMsg::Ring {
        call: call.clone(),
        caller: alice,
        caller_endpoint: a,
        partner,
        callee: bob,
        media: MediaKind::Audio,
        sdp: None,
    };
    let now = net.now;
    assert_eq!(
        net.cores[1].handle_node_msg(now, "node-0", ring.clone()),
        NodeReply::Ok
    );
    assert_eq!(
        net.cores[1].handle_node_msg(now, "node-0", ring),
        NodeReply::Ok
    );
    net.pump();
    assert_eq!(
        net.told(&b)
            .iter()
            .filter(|m| matches!(m, ServerMsg::IncomingCall { .. }))
            .count(),
        1
    );
}

/// Alice on node 0 calls Bob on node 1 (trunked); Bob's answer is in and his media leg out.
fn trunked_call(net: &mut Net) -> (EndpointId, AccountId, AccountId, PartnerId, CallId) {
    let partner = PartnerId::random();
    let (alice, bob) = (AccountId::random(), AccountId::random());
    let a = net.cores[0].attach(alice.clone(), partner.clone());
    let b = net.cores[1].attach(bob.clone(), partner.clone());
    net.pump();
    net.inbox.clear();
    let now = net.now;
    net.cores[0]
        .invite(now, &a, bob.clone(), MediaKind::Audio, None, None)
        .unwrap();
    net.pump();
    let call = ringing_call(&net.told(&b));
    net.cores[1].accept(now, &b, &call, None).unwrap();
    net.pump();
    assert!(
        net.told(&b)
            .iter()
            .any(|m| matches!(m, ServerMsg::Media { .. }))
    );
    assert!(
        net.told(&a)
            .iter()
            .any(|m| matches!(m, ServerMsg::Media { .. }))
    );
    (a, alice, bob, partner, call)
}

#[test]
fn a_callee_whose_node_died_resumes_the_call_on_another_node() {
    let mut net = Net::new(3);
    let (a, alice, bob, partner, call) = trunked_call(&mut net);
    let anchor_end = net.trunks[0].clone();
    assert_eq!(anchor_end.0, 0);
    // kill -9 node 1: the anchor hears of it from membership and keeps the call.
    net.dead[1] = true;
    let now = net.now;
    net.cores[0].node_down(now, "node-1");
    net.pump();
    assert!(net.told(&a).is_empty(), "the caller is told nothing yet");
    assert_eq!(net.cores[0].call_count(), 1);
    assert_eq!(
        net.cores[0].poll_timeout(),
        Some(now + CallConfig::default().failover_grace)
    );
    // Another account cannot take the call.
    let carol = net.cores[2].attach(AccountId::random(), partner.clone());
    net.cores[2]
        .resume(now, &carol, &call, alice.clone())
        .unwrap();
    net.pump();
    assert!(
        net.told(&carol).iter().any(|m| matches!(
            m,
            ServerMsg::Error { code: ErrorCode::UnknownCall, in_reply_to: Some(r), .. } if r == "resume"
        )),
        "a stranger's resume is refused"
    );
    assert_eq!(net.cores[2].call_count(), 0);
    // Bob logs in on node 2 and resumes: node 2 gets the same trunk end of the anchor and
    // Bob a new leg there.
    let b2 = net.cores[2].attach(bob.clone(), partner);
    net.pump();
    net.inbox.clear();
    net.cores[2].resume(now, &b2, &call, alice).unwrap();
    net.pump();
    let told = net.told(&b2);
    assert!(
        told.iter().any(|m| matches!(
            m,
            ServerMsg::Media { call_id, leg } if *call_id == call && leg.address == "127.0.0.3:4000"
        )),
        "{told:?}"
    );
    assert_eq!(
        net.trunks.last().unwrap(),
        &(2, Some("127.0.0.1:5000".to_owned())),
        "node 2's trunk end is aimed at the anchor's"
    );
    // ... with fresh keys: the anchor re-keyed its end first (a fresh far end starts its
    // SRTP contexts at index 0, which the old keys' contexts at the anchor would refuse).
    assert_eq!(
        net.rekeys,
        vec![0],
        "the anchor re-keyed its trunk end once"
    );
    let (first, resumed) = (&net.trunk_keys[0], net.trunk_keys.last().unwrap());
    assert_eq!((first.0, resumed.0), (1, 2));
    assert_ne!(
        first.1.inbound, resumed.1.inbound,
        "the resumed end unprotects with a new key"
    );
    assert_ne!(
        first.1.outbound, resumed.1.outbound,
        "the resumed end protects with a new key"
    );
    assert_ne!(
        resumed.1.inbound, resumed.1.outbound,
        "one key per direction"
    );
    // No more grace: the call is whole again, and it ends everywhere as usual.
    assert_eq!(net.cores[0].poll_timeout(), None);
    net.cores[0].hangup(&a, &call).unwrap();
    net.pump();
    assert!(net.told(&b2).iter().any(|m| matches!(
        m,
        ServerMsg::CallEnded {
            reason: EndReason::Hangup,
            ..
        }
    )));
    assert_eq!(net.cores[2].call_count(), 0);
    assert!(net.cores[2].unreleased_sessions().is_empty());
    assert!(net.cores[0].unreleased_sessions().is_empty());
}

#[test]
fn without_a_resume_the_call_ends_after_the_grace() {
    let mut net = Net::new(3);
    let (a, _alice, _bob, _partner, call) = trunked_call(&mut net);
    net.dead[1] = true;
    let now = net.now;
    net.cores[0].node_down(now, "node-1");
    let grace = CallConfig::default().failover_grace;
    net.cores[0].handle_timeout(now + grace - Duration::from_millis(1));
    net.pump();
    assert_eq!(net.cores[0].call_count(), 1);
    net.cores[0].handle_timeout(now + grace);
    net.pump();
    assert!(net.told(&a).iter().any(|m| matches!(
        m,
        ServerMsg::CallEnded { call_id, reason: EndReason::PeerDisconnected } if *call_id == call
    )));
    assert_eq!(net.cores[0].call_count(), 0);
    assert!(net.cores[0].unreleased_sessions().is_empty());
}

#[test]
fn a_callee_whose_anchor_died_is_told_the_call_ended_after_the_grace() {
    let mut net = Net::new(2);
    let (_a, _alice, _bob, _partner, call) = trunked_call(&mut net);
    let b = net.cores[1].answerer(&call).unwrap();
    net.dead[0] = true;
    let now = net.now;
    net.cores[1].node_down(now, "node-0");
    net.pump();
    assert!(net.told(&b).is_empty(), "the callee waits the grace");
    // Heard again (a false death): nothing happens after the grace.
    net.cores[1].node_up("node-0");
    let grace = CallConfig::default().failover_grace;
    net.cores[1].handle_timeout(now + grace);
    assert_eq!(net.cores[1].call_count(), 1);
    // Dead for good: the call ends once the grace is over.
    net.cores[1].node_down(now + grace, "node-0");
    net.cores[1].handle_timeout(now + grace * 2);
    net.pump();
    assert!(net.told(&b).iter().any(|m| matches!(
        m,
        ServerMsg::CallEnded {
            reason: EndReason::PeerDisconnected,
            ..
        }
    )));
    assert_eq!(net.cores[1].call_count(), 0);
}

#[test]
fn a_caller_whose_anchor_died_resumes_and_the_call_is_reanchored_on_the_callees_node() {
    let mut net = Net::new(3);
    let (_a, alice, bob, partner, call) = trunked_call(&mut net);
    let b = net.cores[1].answerer(&call).unwrap();
    assert_eq!(
        net.trunks[1],
        (1, Some("127.0.0.1:5000".to_owned())),
        "node 1's end aimed at the anchor's"
    );
    // kill -9 the anchor (node 0).
    net.dead[0] = true;
    let now = net.now;
    net.cores[1].node_down(now, "node-0");
    net.pump();
    assert!(net.told(&b).is_empty(), "the callee is told nothing");
    // Another account of the partner cannot take the call over.
    let carol = net.cores[2].attach(AccountId::random(), partner.clone());
    net.pump();
    net.cores[2]
        .resume(now, &carol, &call, bob.clone())
        .unwrap();
    net.pump();
    assert!(net.told(&carol).iter().any(|m| matches!(
        m,
        ServerMsg::Error {
            code: ErrorCode::UnknownCall,
            ..
        }
    )));
    assert!(net.rekeys.is_empty());
    // A resume on the callee's own node is refused (it holds the call's other end).
    let a1 = net.cores[1].attach(alice.clone(), partner.clone());
    net.pump();
    net.inbox.clear();
    assert!(net.cores[1].resume(now, &a1, &call, bob.clone()).is_err());
    // Alice logs in on node 2 and resumes with Bob as the peer: node 1 re-keys its trunk
    // end and aims node 2 at it; Alice gets a new leg on node 2; Bob's leg is unchanged.
    let a2 = net.cores[2].attach(alice.clone(), partner);
    net.pump();
    net.inbox.clear();
    net.cores[2].resume(now, &a2, &call, bob).unwrap();
    net.pump();
    assert_eq!(
        net.rekeys,
        vec![1],
        "the callee's node re-keyed its end once"
    );
    assert_eq!(
        net.trunks.last().unwrap(),
        &(2, Some("127.0.0.2:5000".to_owned())),
        "node 2's trunk end is aimed at node 1's"
    );
    let told = net.told(&a2);
    assert!(
        told.iter().any(|m| matches!(
            m,
            ServerMsg::Media { call_id, leg } if *call_id == call && leg.address == "127.0.0.3:4000"
        )),
        "{told:?}"
    );
    assert!(net.told(&b).is_empty(), "bob's leg does not change");
    let resumed = net.trunk_keys.last().unwrap();
    assert_eq!(resumed.0, 2);
    assert_ne!(resumed.1.inbound, net.trunk_keys[0].1.inbound, "fresh keys");
    // No grace left on node 1: the call is whole again.
    assert_eq!(net.cores[1].poll_timeout(), None);
    // The dead anchor's `end`, were it to come late, is ignored (the call left it).
    // Bob hangs up: Alice on node 2 hears it, and both nodes release everything.
    net.cores[1].hangup(&b, &call).unwrap();
    net.pump();
    assert!(net.told(&a2).iter().any(|m| matches!(
        m,
        ServerMsg::CallEnded {
            reason: EndReason::Hangup,
            ..
        }
    )));
    assert_eq!(net.cores[1].call_count(), 0);
    assert_eq!(net.cores[2].call_count(), 0);
    assert!(net.cores[1].unreleased_sessions().is_empty());
    assert!(net.cores[2].unreleased_sessions().is_empty());
}

#[test]
fn an_end_from_a_node_the_call_left_is_ignored() {
    let mut net = Net::new(3);
    let (_a, _alice, _bob, _partner, call) = trunked_call(&mut net);
    // Node 2 takes no part in the call: its `end` changes nothing.
    let now = net.now;
    let r = net.cores[1].handle_node_msg(
        now,
        "node-2",
        supernode_proto::network::NodeMsg::End {
            call: call.clone(),
            reason: EndReason::Hangup,
        },
    );
    assert_eq!(r, supernode_proto::network::NodeReply::Ok);
    assert_eq!(net.cores[1].call_count(), 1);
    // The anchor's does.
    net.cores[1].handle_node_msg(
        now,
        "node-0",
        supernode_proto::network::NodeMsg::End {
            call,
            reason: EndReason::Hangup,
        },
    );
    assert_eq!(net.cores[1].call_count(), 0);
}

#[test]
fn drain_migrate_tells_the_movable_endpoints_and_keeps_their_calls_for_the_resume() {
    let mut net = Net::new(3);
    let (a, alice, bob, partner, call) = trunked_call(&mut net);
    // On node 0 also: an idle endpoint, and a call with both ends on node 0.
    let idle = net.cores[0].attach(AccountId::random(), partner.clone());
    let (carol, dave) = (AccountId::random(), AccountId::random());
    let c = net.cores[0].attach(carol, partner.clone());
    let d = net.cores[0].attach(dave.clone(), partner.clone());
    net.pump();
    let now = net.now;
    net.cores[0]
        .invite(now, &c, dave, MediaKind::Audio, None, None)
        .unwrap();
    net.pump();
    let local = ringing_call(&net.told(&d));
    net.cores[0].accept(now, &d, &local, None).unwrap();
    net.pump();
    net.inbox.clear();
    let nodes = vec!["ws://n1/v1/ws".to_owned(), "ws://n2/v1/ws".to_owned()];
    let told = net.cores[0].migrate(now, nodes.clone());
    net.pump();
    assert_eq!(told, 2, "alice (trunked call) and the idle endpoint");
    for ep in [&a, &idle] {
        assert!(
            net.told(ep)
                .iter()
                .any(|m| matches!(m, ServerMsg::Migrate { nodes: n } if *n == nodes)),
            "{ep:?} told to move"
        );
    }
    assert!(net.told(&c).is_empty() && net.told(&d).is_empty());
    // Alice's socket closes: her call is not ended (Bob hears nothing), it waits for her
    // resume elsewhere.
    net.cores[0].detach(&a);
    net.pump();
    assert_eq!(net.cores[0].call_count(), 2);
    let b = net.cores[1].answerer(&call).unwrap();
    assert!(net.told(&b).is_empty(), "bob hears nothing");
    // She resumes on node 2: node 1 re-anchors the call and tells node 0 `end`; node 0
    // releases its side quietly.
    let a2 = net.cores[2].attach(alice, partner);
    net.pump();
    net.cores[2].resume(now, &a2, &call, bob).unwrap();
    net.pump();
    assert!(
        net.told(&a2)
            .iter()
            .any(|m| matches!(m, ServerMsg::Media { .. }))
    );
    assert_eq!(net.cores[0].call_count(), 1, "only the local call is left");
    assert!(net.told(&b).is_empty(), "bob's call goes on");
    // The local call ends: its endpoints are told to move now.
    net.cores[0].hangup(&c, &local).unwrap();
    net.pump();
    for ep in [&c, &d] {
        assert!(
            net.told(ep)
                .iter()
                .any(|m| matches!(m, ServerMsg::Migrate { .. })),
            "{ep:?} told to move once its call ended"
        );
    }
    assert_eq!(net.cores[0].call_count(), 0);
    assert!(net.cores[0].unreleased_sessions().is_empty());
}

#[test]
fn a_moved_endpoint_that_never_resumes_ends_its_call_everywhere_after_the_grace() {
    let mut net = Net::new(2);
    let (a, _alice, _bob, _partner, call) = trunked_call(&mut net);
    let b = net.cores[1].answerer(&call).unwrap();
    let now = net.now;
    net.cores[0].migrate(now, vec!["ws://n1/v1/ws".to_owned()]);
    net.cores[0].detach(&a);
    net.pump();
    assert_eq!(net.cores[0].call_count(), 1);
    let grace = CallConfig::default().failover_grace;
    net.cores[0].handle_timeout(now + grace);
    net.pump();
    assert_eq!(net.cores[0].call_count(), 0);
    // The far node is alive and is told.
    assert!(net.told(&b).iter().any(|m| matches!(
        m,
        ServerMsg::CallEnded {
            reason: EndReason::PeerDisconnected,
            ..
        }
    )));
    assert_eq!(net.cores[1].call_count(), 0);
}

#[test]
fn presence_crosses_nodes_within_a_partner_only() {
    let mut net = Net::new(2);
    let partner = PartnerId::random();
    let (alice, bob) = (AccountId::random(), AccountId::random());
    let a = net.cores[0].attach(alice, partner.clone());
    let stranger = net.cores[0].attach(AccountId::random(), PartnerId::random());
    net.cores[0]
        .subscribe_presence(&a, vec![bob.clone()])
        .unwrap();
    net.cores[0]
        .subscribe_presence(&stranger, vec![bob.clone()])
        .unwrap();
    net.pump();
    let presence = |msgs: Vec<ServerMsg>| -> Vec<bool> {
        msgs.into_iter()
            .filter_map(|m| match m {
                ServerMsg::Presence { online, .. } => Some(online),
                _ => None,
            })
            .collect()
    };
    assert_eq!(presence(net.told(&a)), vec![false]);
    assert_eq!(presence(net.told(&stranger)), vec![false]);
    // Bob logs in on node 1: the directory says so, and node 0 tells Alice (once, even
    // when told of the change twice); the other partner's endpoint hears nothing.
    let b = net.cores[1].attach(bob.clone(), partner.clone());
    net.cores[0].presence_changed(&bob);
    net.cores[0].presence_changed(&bob);
    net.pump();
    assert_eq!(presence(net.told(&a)), vec![true]);
    assert!(presence(net.told(&stranger)).is_empty());
    // A second tab of Bob's changes nothing; a late watcher reads him online at once.
    let b2 = net.cores[1].attach(bob.clone(), partner.clone());
    net.cores[0].presence_changed(&bob);
    let late = net.cores[0].attach(AccountId::random(), partner);
    net.cores[0]
        .subscribe_presence(&late, vec![bob.clone()])
        .unwrap();
    net.pump();
    assert!(presence(net.told(&a)).is_empty());
    assert_eq!(presence(net.told(&late)), vec![true]);
    // Both tabs leave: offline, told once.
    net.cores[1].detach(&b);
    net.cores[0].presence_changed(&bob);
    net.cores[1].detach(&b2);
    net.cores[0].presence_changed(&bob);
    net.pump();
    assert_eq!(presence(net.told(&a)), vec![false]);
    assert_eq!(presence(net.told(&late)), vec![false]);
    assert!(presence(net.told(&stranger)).is_empty());
}
