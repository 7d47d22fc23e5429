//! STUN on a transport (RFC 8489), as an ICE-lite agent answers connectivity checks: a
//! binding request whose USERNAME is `<transport's ufrag>:<peer's ufrag>` and whose
//! MESSAGE-INTEGRITY verifies under the transport's password proves that the sender belongs
//! to it. The relay answers with a binding success response (XOR-MAPPED-ADDRESS,
//! MESSAGE-INTEGRITY, FINGERPRINT) and latches the transport onto the sender's address; this
//! is how a peer moves to a new address (a new network, a new device) without the relay
//! trusting a bare packet from there. Anything else STUN is dropped and counted.
//!
//! On a browser transport (see [`super::browser`]) this is ICE-lite proper: the USERNAME's
//! second part must be the browser's ufrag (when the offer gave it), a check refreshes
//! consent (RFC 7675), the first valid check selects the path and, once the browser has
//! nominated a path with USE-CANDIDATE, only another USE-CANDIDATE moves it. A check with a
//! wrong password or username gets no answer (no reflection toward a forged source) and does
//! not latch: it is counted as `stun_rejected`.

use std::net::SocketAddr;
use std::time::Instant;

use supernode_media::packet::stun::{Class, Method, StunAttr, StunMessage, StunWriter};

use super::Core;
use super::egress::{Out, egress};
use super::stats::DropReason;
use super::transmit::TxBatch;

/// The relay-side part (before the colon) of a binding request's USERNAME, if `data` is
/// one. Used to find the leg on a shared port; nothing is verified here.
pub fn username_local_part(data: &[u8]) -> Option<&str> {
    let msg = StunMessage::parse(data).ok()?;
    if msg.class() != Class::Request || msg.method() != Method::BINDING {
        return None;
    }
    let user = msg.username()?;
    let local = user.split(|&b| b == b':').next()?;
    std::str::from_utf8(local).ok()
}

impl Core {
    pub(super) fn on_stun(
        &mut self,
        now: Instant,
        li: u32,
        src: SocketAddr,
        data: &[u8],
        tx: &mut TxBatch,
    ) {
        let leg = self.t_mut(li);
        let Some(ice) = leg.ice.as_ref() else {
            leg.counters.drop(DropReason::StunRejected);
            return;
        };
        let Ok(msg) = StunMessage::parse(data) else {
            leg.counters.drop(DropReason::Malformed);
            return;
        };
        let remote_ufrag = leg.browser.as_ref().and_then(|b| b.remote_ufrag.as_deref());
        let user_ok = msg.username().is_some_and(|u| {
            u.len() > ice.local_ufrag.len()
                && u.starts_with(ice.local_ufrag.as_bytes())
                && u[ice.local_ufrag.len()] == b':'
                && remote_ufrag.is_none_or(|r| &u[ice.local_ufrag.len() + 1..] == r.as_bytes())
        });
        if msg.class() != Class::Request
            || msg.method() != Method::BINDING
            || !user_ok
            || msg.verify_integrity(ice.local_pwd.as_bytes()).is_err()
            || (msg.has_fingerprint() && msg.verify_fingerprint().is_err())
        {
            leg.counters.drop(DropReason::StunRejected);
            return;
        }
        let pwd = ice.local_pwd.clone();
        let tid = msg.transaction_id();
        leg.last_rx = now;
        leg.heard = true;
        let mut move_path = leg.peer != Some(src) && matches!(leg.mode, super::PeerMode::Latching);
        if let Some(b) = leg.browser.as_mut() {
            b.last_check = now;
            let nominate = msg.use_candidate();
            // ICE-lite: the first valid check selects a path; a nomination selects it for
            // good; a check on another path after a nomination is answered, not followed.
            move_path &= nominate || !b.nominated;
            b.nominated |= nominate && (move_path || leg.peer == Some(src));
        }
        if move_path {
            self.latch(now, li, src, tx);
        }
        let mut write = |buf: &mut [u8]| {
            let Ok(mut w) = StunWriter::new(buf, Class::SuccessResponse, Method::BINDING, tid)
            else {
                return 0;
            };
            if w.add(&StunAttr::XorMappedAddress(src)).is_err()
                || w.add_message_integrity(pwd.as_bytes()).is_err()
                || w.add_fingerprint().is_err()
            {
                return 0;
            }
            w.finish()
        };
        egress(tx, self.t_mut(li), Out::Raw(src, &mut write));
    }
}
