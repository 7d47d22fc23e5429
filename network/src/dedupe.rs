//! Idempotent handling of cross-node messages (sans-IO).
//!
//! A sender retries a request with the same [`MessageId`] when an answer is late; the
//! receiver must not act twice. [`Dedupe`] remembers the reply given to each message id for
//! `keep` (60 s, far beyond a request's retries) and at most `capacity` ids (oldest
//! forgotten first): [`Dedupe::seen`] gives the remembered reply of a repeat, and
//! [`Dedupe::record`] stores a new one. Bounded in time and memory; takes `now`.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use supernode_proto::network::{MessageId, NodeReply};

/// Replies of recent message ids.
#[derive(Debug)]
pub struct Dedupe {
    keep: Duration,
    capacity: usize,
    replies: HashMap<MessageId, NodeReply>,
    order: VecDeque<(Instant, MessageId)>,
    /// Repeats answered from memory.
    pub repeats: u64,
}

impl Dedupe {
    /// Remembers up to `capacity` ids, each for `keep`.
    pub fn new(keep: Duration, capacity: usize) -> Self {
        Self {
            keep,
            capacity: capacity.max(1),
            replies: HashMap::new(),
            order: VecDeque::new(),
            repeats: 0,
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some((at, _)) = self.order.front() {
            if now.saturating_duration_since(*at) < self.keep && self.order.len() <= self.capacity {
                break;
            }
            if let Some((_, id)) = self.order.pop_front() {
                self.replies.remove(&id);
            }
        }
    }

    /// The reply already given to `id`, if it is a repeat.
    pub fn seen(&mut self, id: &MessageId, now: Instant) -> Option<NodeReply> {
        self.expire(now);
        let r = self.replies.get(id).cloned();
        if r.is_some() {
            self.repeats += 1;
        }
        r
    }

    /// Remembers the reply given to `id`.
    pub fn record(&mut self, id: MessageId, reply: NodeReply, now: Instant) {
        if self.replies.insert(id.clone(), reply).is_none() {
            self.order.push_back((now, id));
        }
        self.expire(now);
    }

    /// Ids remembered.
    pub fn len(&self) -> usize {
        self.replies.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.replies.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use supernode_proto::network::Refusal;

    #[test]
    fn repeats_get_the_first_reply_until_forgotten() {
        let t0 = Instant::now();
        let mut d = Dedupe::new(Duration::from_secs(60), 3);
        let a = MessageId("msg_a".into());
        assert_eq!(d.seen(&a, t0), None);
        let busy = NodeReply::Refused { why: Refusal::Busy };
        d.record(a.clone(), busy.clone(), t0);
        assert_eq!(d.seen(&a, t0 + Duration::from_secs(1)), Some(busy));
        assert_eq!(d.repeats, 1);
        // Forgotten after `keep`.
        assert_eq!(d.seen(&a, t0 + Duration::from_secs(60)), None);
        assert!(d.is_empty());
        // At most `capacity` ids: the oldest goes first.
        for i in 0..5 {
            d.record(MessageId(format!("msg_{i}")), NodeReply::Ok, t0);
        }
        assert_eq!(d.len(), 3);
        assert_eq!(d.seen(&MessageId("msg_0".into()), t0), None);
        assert_eq!(d.seen(&MessageId("msg_4".into()), t0), Some(NodeReply::Ok));
    }
}
