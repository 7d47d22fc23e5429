//! Failover: when the supernode carrying an answered call dies, log in on another node of
//! the network and take the call back (`resume`), then send media to the new leg.
//!
//! Two parts:
//!
//! - [`Reconnect`], a sans-IO state machine that says what to do next: which node to try
//!   ([`Step::Connect`]), how long to wait between rounds ([`Step::Wait`], exponential
//!   back-off with jitter, so that the endpoints of a dead node do not all come back in the
//!   same instant), or to give up ([`Step::GiveUp`]). The nodes come from the list the
//!   network gave at login (`login_ok.nodes`, placement order); the node that failed is
//!   tried last in each round (it may be back).
//! - [`resume_call`], its I/O shell: connects and logs in along the plan, sends `resume`
//!   and returns the new connection and the call's new leg.
//!
//! ```no_run
//! # async fn f(sig: supernode_edge::signaling::SignalingClient,
//! #            call: supernode_edge::signaling::CallSetup, token: &str) {
//! use std::time::Duration;
//! use supernode_edge::failover::{Reconnect, resume_call};
//! // … the call's WebSocket closed: its node is gone.
//! let plan = Reconnect::new(&sig.nodes, &sig.url, Duration::from_millis(100), 0x5eed);
//! let peer = call.peer.clone().unwrap();
//! let (sig, leg) = resume_call(plan, token, &call.call_id, &peer, Duration::from_secs(10))
//!     .await
//!     .unwrap();
//! // … media goes to leg.address with leg.srtp from now on.
//! # }
//! ```

use std::time::Duration;

use supernode_proto::ids::{AccountId, CallId};
use supernode_proto::protocol::{ClientMsg, ErrorCode, LegInfo, ServerMsg};
use tokio::time::Instant;

use crate::signaling::{CallError, SignalingClient, ws_url};

/// Longest wait between two rounds.
pub const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// What the client should do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Connect and log in to this node (its WebSocket URL), then resume.
    Connect(String),
    /// Wait this long (the end of a round), then ask again.
    Wait(Duration),
    /// Out of rounds.
    GiveUp,
}

/// The reconnect plan of one failover (see the module docs).
#[derive(Clone, Debug)]
pub struct Reconnect {
    /// Nodes in the order of a round.
    order: Vec<String>,
    /// The next node of this round.
    next: usize,
    /// Rounds started.
    round: u32,
    /// Most rounds.
    max_rounds: u32,
    /// The first round's back-off.
    base: Duration,
    /// Jitter source (xorshift).
    rng: u64,
}

impl Reconnect {
    /// A plan over `nodes` (placement order) after `failed` died; rounds are separated by
    /// `base` × 2^round (at most [`MAX_BACKOFF`]), each with ±50 % jitter from `seed`.
    pub fn new(nodes: &[String], failed: &str, base: Duration, seed: u64) -> Self {
        let failed = ws_url(failed);
        let mut order: Vec<String> = nodes
            .iter()
            .map(|n| ws_url(n))
            .filter(|n| *n != failed)
            .collect();
        order.dedup();
        order.push(failed);
        Self {
            order,
            next: 0,
            round: 0,
            max_rounds: 8,
            base,
            rng: seed | 1,
        }
    }

    /// At most `n` rounds (8 by default).
    pub fn with_max_rounds(mut self, n: u32) -> Self {
        self.max_rounds = n.max(1);
        self
    }

    /// What to do next (after a failed attempt, or at the start).
    pub fn next_step(&mut self) -> Step {
        if self.round >= self.max_rounds {
            return Step::GiveUp;
        }
        if let Some(node) = self.order.get(self.next) {
            self.next += 1;
            return Step::Connect(node.clone());
        }
        // The round is over: wait, then start the next one.
        self.next = 0;
        self.round += 1;
        if self.round >= self.max_rounds {
            return Step::GiveUp;
        }
        let exp = self.base.saturating_mul(1 << (self.round - 1).min(16));
        let wait = exp.min(MAX_BACKOFF);
        Step::Wait(self.jitter(wait))
    }

    /// `d` × a factor in [0.5, 1.5).
    fn jitter(&mut self, d: Duration) -> Duration {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let f = 0.5 + (self.rng % 1000) as f64 / 1000.0;
        d.mul_f64(f)
    }
}

/// Follows `plan` until a node takes the call back: logs in with `token`, sends `resume`
/// for `call` (whose other party is `peer`) and returns the new connection and the call's
/// new leg. A node that cannot be reached, or that cannot resume the call (`unknown_call`:
/// the call's anchor has not heard of the death yet, or `network_unavailable`), is left
/// for the next; the call ending (`call_ended`) or `timeout` passing ends the attempt.
pub async fn resume_call(
    mut plan: Reconnect,
    token: &str,
    call: &CallId,
    peer: &AccountId,
    timeout: Duration,
) -> Result<(SignalingClient, LegInfo), CallError> {
    let deadline = Instant::now() + timeout;
    let mut last = CallError::Timeout("a node to resume the call on");
    loop {
        if Instant::now() >= deadline {
            return Err(last);
        }
        match plan.next_step() {
            Step::GiveUp => return Err(last),
            Step::Wait(d) => {
                tokio::time::sleep_until((Instant::now() + d).min(deadline)).await;
            }
            Step::Connect(url) => {
                let mut sig = match SignalingClient::connect(&url, token).await {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::debug!(%url, error = %e, "failover: node not reachable");
                        last = e;
                        continue;
                    }
                };
                match resume_on(&mut sig, call, peer, deadline).await {
                    Ok(leg) => {
                        tracing::info!(%url, call = %call, "failover: call resumed");
                        return Ok((sig, leg));
                    }
                    Err(
                        e @ (CallError::Ended(_) | CallError::Server(ErrorCode::InvalidState, _)),
                    ) => {
                        return Err(e);
                    }
                    Err(e) => {
                        tracing::debug!(%url, error = %e, "failover: resume refused");
                        last = e;
                        sig.close().await;
                    }
                }
            }
        }
    }
}

/// Sends `resume` on a logged-in connection and waits for the new leg.
async fn resume_on(
    sig: &mut SignalingClient,
    call: &CallId,
    peer: &AccountId,
    deadline: Instant,
) -> Result<LegInfo, CallError> {
    sig.send(&ClientMsg::Resume {
        call_id: call.clone(),
        peer: peer.clone(),
    })
    .await?;
    loop {
        match sig.next(deadline).await? {
            None => return Err(CallError::Timeout("media after resume")),
            Some(ServerMsg::Media { call_id, leg }) if call_id == *call => return Ok(leg),
            Some(ServerMsg::CallEnded { call_id, reason }) if call_id == *call => {
                return Err(CallError::Ended(reason));
            }
            Some(ServerMsg::Error {
                code,
                message,
                in_reply_to,
            }) if in_reply_to.as_deref() == Some("resume") => {
                return Err(CallError::Server(code, message));
            }
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes() -> Vec<String> {
        ["ws://a/v1/ws", "ws://b/v1/ws", "ws://c/v1/ws"]
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn a_round_tries_the_other_nodes_in_order_then_the_failed_one() {
        let mut p = Reconnect::new(&nodes(), "ws://a/v1/ws", Duration::from_millis(100), 7);
        assert_eq!(p.next_step(), Step::Connect("ws://b/v1/ws".into()));
        assert_eq!(p.next_step(), Step::Connect("ws://c/v1/ws".into()));
        assert_eq!(p.next_step(), Step::Connect("ws://a/v1/ws".into()));
        assert!(matches!(p.next_step(), Step::Wait(_)));
        assert_eq!(p.next_step(), Step::Connect("ws://b/v1/ws".into()));
    }

    #[test]
    fn the_failed_node_given_as_http_is_still_recognised() {
        let mut p = Reconnect::new(&nodes(), "http://b", Duration::from_millis(100), 7);
        assert_eq!(p.next_step(), Step::Connect("ws://a/v1/ws".into()));
        assert_eq!(p.next_step(), Step::Connect("ws://c/v1/ws".into()));
        assert_eq!(p.next_step(), Step::Connect("ws://b/v1/ws".into()));
    }

    #[test]
    fn back_off_grows_with_jitter_is_capped_and_ends() {
        let base = Duration::from_millis(100);
        let mut p = Reconnect::new(&nodes(), "ws://a/v1/ws", base, 99).with_max_rounds(6);
        let mut waits = Vec::new();
        loop {
            match p.next_step() {
                Step::Connect(_) => {}
                Step::Wait(d) => waits.push(d),
                Step::GiveUp => break,
            }
        }
        assert_eq!(waits.len(), 5);
        for (i, w) in waits.iter().enumerate() {
            let nominal = (base * (1 << i)).min(MAX_BACKOFF);
            assert!(*w >= nominal / 2 && *w < nominal.mul_f64(1.5), "{i}: {w:?}");
        }
        assert_eq!(p.next_step(), Step::GiveUp);
        // Another seed jitters differently.
        let mut q = Reconnect::new(&nodes(), "ws://a/v1/ws", base, 12345);
        let first_wait = |p: &mut Reconnect| loop {
            if let Step::Wait(d) = p.next_step() {
                return d;
            }
        };
        let mut p = Reconnect::new(&nodes(), "ws://a/v1/ws", base, 99);
        assert_ne!(first_wait(&mut p), first_wait(&mut q));
    }

    #[test]
    fn no_nodes_given_retries_the_failed_one() {
        let mut p = Reconnect::new(&[], "ws://a/v1/ws", Duration::from_millis(10), 1);
        assert_eq!(p.next_step(), Step::Connect("ws://a/v1/ws".into()));
        assert!(matches!(p.next_step(), Step::Wait(_)));
    }
}
