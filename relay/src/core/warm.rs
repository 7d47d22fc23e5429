//! Cache warming ahead of a batch: the addresses the data path of an RTP packet will read,
//! stage by stage, for a prefetch hint.
//!
//! A shared-port batch holds one or two packets of each of dozens of transports, and each
//! packet's path reads a chain of its own cold memory: the transport, its SRTP state and
//! keys, its receive stream, the subscribed transport, that one's send stream, SRTP state
//! and keys. Read in turn, every link of every packet is a cache miss the CPU waits for.
//! The worker instead walks the whole batch [`WARM_STAGES`] times before handling it, each
//! walk hinting the next link of every packet (whose address the previous walk brought in),
//! so that the misses of a batch overlap. The core only says where; the worker turns the
//! addresses into prefetch instructions (`udp::prefetch`). Measured in docs/design-notes.md
//! ("loadgen's `webrtc` row is a call between two browsers; warming a shared-port batch").

use std::mem::size_of;
use std::net::SocketAddr;

use supernode_media::packet::demux::{PacketKind, classify};

use super::srtp::LegSrtp;
use super::stream::{RecvStream, SendStream};
use super::{Core, SockSlot, SockUse, Ssrc, Transport};

/// Stages of [`Core::warm`] after [`Core::warm_lookup`].
pub const WARM_STAGES: u8 = 5;

/// Transports per packet warmed on the sending side (a fan-out's first few).
const WARM_FANOUT: usize = 4;

/// Bytes of a transport that every packet reads (its hot fields come first).
const TRANSPORT_HOT: usize = 256;

impl Core {
    /// The transport an RTP datagram belongs to and its SSRC, hinting the transport's hot
    /// lines; `None` for anything else (no warming).
    #[inline]
    pub fn warm_lookup(
        &self,
        sock: SockSlot,
        src: SocketAddr,
        data: &[u8],
        hint: &mut impl FnMut(*const u8, usize),
    ) -> Option<(u32, Ssrc)> {
        let kind = classify(data);
        if kind != PacketKind::Rtp || data.len() < 12 {
            return None;
        }
        let li = match self.socks.get(sock.0 as usize)? {
            SockUse::Leg(i) => *i,
            SockUse::Shared => self.lookup_shared(sock, src, data, kind)?,
            SockUse::Free => return None,
        };
        let t = self.transports.get(li as usize)?.as_deref()?;
        hint(std::ptr::from_ref::<Transport>(t).cast(), TRANSPORT_HOT);
        let ssrc = Ssrc(u32::from_be_bytes([data[8], data[9], data[10], data[11]]));
        Some((li, ssrc))
    }

    /// Stage `stage` (`1..=WARM_STAGES`) of warming an RTP packet of `ssrc` on transport
    /// `li`: hints what the stage before brought within reach.
    #[inline]
    pub fn warm(&self, stage: u8, li: u32, ssrc: Ssrc, hint: &mut impl FnMut(*const u8, usize)) {
        let Some(t) = self.transports.get(li as usize).and_then(|t| t.as_deref()) else {
            return;
        };
        let region = |p: *const u8, n: usize, hint: &mut dyn FnMut(*const u8, usize)| {
            if n > 0 {
                hint(p, n);
            }
        };
        match stage {
            1 => {
                if let Some(s) = t.srtp.as_deref() {
                    hint(
                        std::ptr::from_ref::<LegSrtp>(s).cast(),
                        size_of::<LegSrtp>(),
                    );
                }
                region(
                    t.recv.as_ptr().cast(),
                    t.recv.len().min(2) * size_of::<RecvStream>(),
                    hint,
                );
                if let Some(b) = t.browser.as_deref() {
                    hint(std::ptr::from_ref(b).cast(), 64);
                }
            }
            2 => {
                if let Some(s) = t.srtp.as_deref() {
                    for (p, n) in s.rtp_regions(true) {
                        region(p, n, hint);
                    }
                }
                if let Some(k) = t.recv_index(ssrc) {
                    let outs = &t.recv[k].outs;
                    region(
                        outs.as_ptr().cast(),
                        outs.len() * size_of::<super::stream::Out>(),
                        hint,
                    );
                }
            }
            3..=5 => {
                let Some(k) = t.recv_index(ssrc) else { return };
                for o in t.recv[k].outs.iter().take(WARM_FANOUT) {
                    let Some(d) = self
                        .transports
                        .get(o.transport as usize)
                        .and_then(|t| t.as_deref())
                    else {
                        continue;
                    };
                    match stage {
                        3 => hint(std::ptr::from_ref::<Transport>(d).cast(), TRANSPORT_HOT),
                        4 => {
                            if let Some(ss) = d.send.get(o.slot as usize) {
                                hint(
                                    std::ptr::from_ref(ss).cast(),
                                    size_of::<Option<SendStream>>(),
                                );
                            }
                            if let Some(s) = d.srtp.as_deref() {
                                hint(
                                    std::ptr::from_ref::<LegSrtp>(s).cast(),
                                    size_of::<LegSrtp>(),
                                );
                            }
                        }
                        _ => {
                            if let Some(s) = d.srtp.as_deref() {
                                for (p, n) in s.rtp_regions(false) {
                                    region(p, n, hint);
                                }
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
}
