//! Subscriptions: which source streams reach which transports, kept as routing tables on
//! the receive streams (each lists the send streams it feeds), so the packet path does one
//! indexed step per receiver. Everything here runs between batches and may allocate.
//!
//! - [`Core::connect`]`(from, to)` subscribes `to` to every stream of `from`, present and
//!   learned later (the control API's "a session's legs hear each other" is `connect` both
//!   ways between every pair).
//! - A new send stream keeps its source's SSRC unless that SSRC is already taken at the
//!   receiver (another send stream, or one of the receiver's own streams: two test tools with
//!   the same SSRC, a loop); then a derived SSRC is used. Or it adopts an orphaned send
//!   stream of the same clock rate at that receiver and continues it (see [`super::stream`]).
//! - A send stream translates the codec's payload type when source and receiver number it
//!   differently ([`super::transport::Transport::codec_pt`] of each, by clock rate).

use std::time::Instant;

use supernode_media::ids::Ssrc;

use super::error::CoreError;
use super::ids::LegId;
use super::layers::LayerSel;
use super::mid::MidRewrite;
use super::stream::{Out, RecvStream, SendStream, Source};
use super::{Core, transport};

/// Most orphaned send streams a transport keeps for adoption; older ones are dropped.
const MAX_ORPHANS: usize = 8;

impl Core {
    /// Subscribes `to` to every stream of `from`, present and future (one direction).
    /// Fan-out: subscribe many transports to one source; fan-in: one transport to many.
    pub fn connect(&mut self, from: LegId, to: LegId) -> Result<(), CoreError> {
        let (f, t) = (self.idx(from)?, self.idx(to)?);
        if f == t {
            return Err(CoreError::SelfRoute);
        }
        if self.t(f).session != self.t(t).session {
            return Err(CoreError::CrossSession(from.0, to.0));
        }
        let max = self.config.max_destinations;
        let src = self.t(f);
        if src.subscribers.contains(&t) {
            return Ok(());
        }
        if src.subscribers.len() >= max {
            return Err(CoreError::TooManyDestinations(from.0, max));
        }
        self.t_mut(f).subscribers.push(t);
        self.t_mut(t).publishers.push(f);
        for k in 0..self.t(f).recv.len() {
            self.add_send_stream(f, k, t);
        }
        Ok(())
    }

    /// Ends the subscription of `to` to `from`. Its send streams at `to` are orphaned.
    pub fn disconnect(&mut self, from: LegId, to: LegId) -> Result<(), CoreError> {
        let (f, t) = (self.idx(from)?, self.idx(to)?);
        self.t_mut(f).subscribers.retain(|&d| d != t);
        self.t_mut(f).kind_subscribers.retain(|&(d, _)| d != t);
        self.t_mut(t).publishers.retain(|&s| s != f);
        let freed = self
            .t_mut(t)
            .browser
            .as_deref_mut()
            .is_some_and(|b| b.release_slots(f));
        let now = self.t(t).last_rx;
        for k in 0..self.t(f).recv.len() {
            let outs: Vec<Out> = self.t(f).recv[k]
                .outs
                .iter()
                .copied()
                .filter(|o| o.transport == t)
                .collect();
            self.t_mut(f).recv[k].outs.retain(|o| o.transport != t);
            for o in outs {
                self.orphan(o, now);
            }
        }
        if freed {
            self.refill_slots(t);
        }
        Ok(())
    }

    /// Adds receive stream `r` to transport `li` and gives every subscriber a send stream for
    /// it. Returns its index.
    pub(super) fn add_recv_stream(&mut self, _now: Instant, li: u32, r: RecvStream) -> usize {
        let t = self.t_mut(li);
        let ssrc = r.ssrc;
        t.recv.push(r);
        let k = t.recv.len() - 1;
        let (sock, shared) = (t.sock, t.shared);
        if shared {
            self.by_ssrc.insert((sock, ssrc), li);
        }
        for j in 0..self.t(li).subscribers.len() {
            let d = self.t(li).subscribers[j];
            self.add_send_stream(li, k, d);
        }
        let kind = super::processor::StreamKind::of_clock(self.t(li).recv[k].clock_rate);
        for j in 0..self.t(li).kind_subscribers.len() {
            let (d, want) = self.t(li).kind_subscribers[j];
            if want == kind {
                self.add_send_stream(li, k, d);
            }
        }
        k
    }

    /// Retires every learned stream of `li` (its peer restarted with new SSRCs): what they
    /// fed is orphaned, to be continued by the new streams.
    pub(super) fn retire_learned(&mut self, now: Instant, li: u32) {
        let t = self.t_mut(li);
        let (sock, shared) = (t.sock, t.shared);
        let mut gone = Vec::new();
        t.recv.retain_mut(|r| {
            if r.declared {
                return true;
            }
            gone.push((r.ssrc, std::mem::take(&mut r.outs)));
            false
        });
        for (ssrc, outs) in gone {
            if shared {
                self.by_ssrc.remove(&(sock, ssrc));
            }
            for o in outs {
                self.orphan(o, now);
            }
        }
    }

    /// Before transport `i` is removed: orphans what it fed, forgets what fed it, and ends its
    /// subscriptions both ways.
    pub(super) fn unlink_transport(&mut self, i: u32) {
        let now = self.t(i).last_rx;
        let id = self.t(i).id;
        let mut refill = Vec::new();
        for (d, t) in self.transports.iter_mut().enumerate() {
            let Some(t) = t else { continue };
            if let Some(p) = t.processor.as_mut() {
                p.forget(id);
            }
            if let Some(b) = t.browser.as_deref_mut()
                && b.release_slots(i)
            {
                refill.push(d as u32);
            }
        }
        let outs: Vec<Out> = self
            .t_mut(i)
            .recv
            .iter_mut()
            .flat_map(|r| std::mem::take(&mut r.outs))
            .collect();
        for o in outs {
            self.orphan(o, now);
        }
        let sources: Vec<(u32, Source)> = self
            .t(i)
            .send
            .iter()
            .enumerate()
            .filter_map(|(slot, s)| Some((slot as u32, s.as_ref()?.source?)))
            .collect();
        for (slot, src) in sources {
            if let Some(Some(st)) = self.transports.get_mut(src.transport as usize) {
                for r in &mut st.recv {
                    r.outs.retain(|o| !(o.transport == i && o.slot == slot));
                }
            }
        }
        let (mut subs, pubs) = {
            let t = self.t_mut(i);
            (
                std::mem::take(&mut t.subscribers),
                std::mem::take(&mut t.publishers),
            )
        };
        subs.extend(
            std::mem::take(&mut self.t_mut(i).kind_subscribers)
                .into_iter()
                .map(|(d, _)| d),
        );
        for d in subs {
            if let Some(Some(t)) = self.transports.get_mut(d as usize) {
                t.publishers.retain(|&s| s != i);
            }
        }
        for s in pubs {
            if let Some(Some(t)) = self.transports.get_mut(s as usize) {
                t.subscribers.retain(|&d| d != i);
                t.kind_subscribers.retain(|&(d, _)| d != i);
            }
        }
        for d in refill {
            self.refill_slots(d);
        }
    }

    /// A browser's slot was freed: the sources routed to it that had none get one now (in
    /// the order they subscribed).
    fn refill_slots(&mut self, d: u32) {
        let pubs = self.t(d).publishers.clone();
        for f in pubs {
            let src = self.t(f);
            let all = src.subscribers.contains(&d);
            let kinds: Vec<super::processor::StreamKind> = src
                .kind_subscribers
                .iter()
                .filter(|(t, _)| *t == d)
                .map(|(_, k)| *k)
                .collect();
            for k in 0..self.t(f).recv.len() {
                let kind = super::processor::StreamKind::of_clock(self.t(f).recv[k].clock_rate);
                if all || kinds.contains(&kind) {
                    self.add_send_stream(f, k, d);
                }
            }
        }
    }

    /// Removes the orphaned send streams of one kind at transport `leg`, so that no later
    /// source continues them: a conference's video, where each participant's video is its
    /// own stream (its own SSRC at every receiver) and a leaver's simply ends. Returns how
    /// many were removed.
    pub fn drop_orphans(
        &mut self,
        leg: LegId,
        kind: super::processor::StreamKind,
    ) -> Result<usize, CoreError> {
        let i = self.idx(leg)?;
        let mut n = 0;
        for s in self.t_mut(i).send.iter_mut() {
            if s.as_ref().is_some_and(|s| {
                s.source.is_none() && super::processor::StreamKind::of_clock(s.clock_rate) == kind
            }) {
                *s = None;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Orphans the send stream at `o` (its source went away).
    pub(super) fn orphan(&mut self, o: Out, now: Instant) {
        let Some(Some(t)) = self.transports.get_mut(o.transport as usize) else {
            return;
        };
        if let Some(Some(s)) = t.send.get_mut(o.slot as usize) {
            s.source = None;
            s.source_sr = None;
            s.orphaned_at = Some(now);
        }
        let orphans = t
            .send
            .iter()
            .flatten()
            .filter(|s| s.source.is_none())
            .count();
        if orphans > MAX_ORPHANS {
            let oldest = t
                .send
                .iter()
                .enumerate()
                .filter_map(|(i, s)| Some((s.as_ref()?.orphaned_at?, i)))
                .min();
            if let Some((_, i)) = oldest {
                t.send[i] = None;
            }
        }
    }

    /// Gives transport `d` a send stream for receive stream `k` of transport `f`.
    pub(super) fn add_send_stream(&mut self, f: u32, k: usize, d: u32) {
        let (ssrc, clock, src_id) = {
            let r = &self.t(f).recv[k];
            (r.ssrc, r.clock_rate, self.t(f).id)
        };
        let source = Source { transport: f, ssrc };
        let pt_map = self
            .t(f)
            .codec_pt(clock)
            .zip(self.t(d).codec_pt(clock))
            .filter(|(from, to)| from != to);
        let from_mid = self.t(f).browser.as_ref().and_then(|b| b.mid_extension_id);
        if self
            .t(d)
            .send
            .iter()
            .flatten()
            .any(|s| s.source == Some(source))
        {
            return;
        }
        // Simulcast: a layer's RTX is not forwarded; every layer of a source feeds one send
        // stream at each receiver (see [`super::layers`]).
        let layer = self.t(f).recv[k].layer;
        if layer.is_some_and(|l| l.rtx) {
            return;
        }
        if layer.is_some()
            && let Some(slot) = self.t(d).send.iter().position(|s| {
                s.as_ref().is_some_and(|s| {
                    s.layers.is_some() && s.source.is_some_and(|x| x.transport == f)
                })
            })
        {
            let out = Out {
                transport: d,
                slot: slot as u32,
            };
            if !self.t(f).recv[k].outs.contains(&out) {
                self.t_mut(f).recv[k].outs.push(out);
            }
            // The receiver sees the lowest layer's SSRC (what the publisher declares as its
            // video in a conference roster), whichever layer arrived first; a receiver
            // starts on the lowest layer, so nothing was sent under the other yet.
            if layer.is_some_and(|l| l.index == 0) {
                let dest = self.t(d);
                let current = dest.send[slot].as_ref().map(|s| s.ssrc());
                if current != Some(ssrc) {
                    let out_ssrc = choose_ssrc(dest, ssrc, src_id);
                    if let Some(s) = self.t_mut(d).send[slot].as_mut() {
                        s.rewrite.reassign(out_ssrc);
                    }
                }
            }
            return;
        }
        let mid = match self.t_mut(d).browser.as_deref_mut() {
            // Several m-lines receive this rate: the source's slot, or none left.
            Some(b) if b.slotted(clock) => match b.slot_for(clock, f) {
                Some(m) => b.mid_rewrite_to(m, from_mid),
                None => return,
            },
            Some(b) => b.mid_rewrite(clock, from_mid),
            None => None,
        };
        let strip = self
            .t(f)
            .browser
            .as_ref()
            .and_then(|b| b.simulcast.as_ref())
            .map(|s| [s.rid_extension_id, s.repaired_rid_extension_id.unwrap_or(0)])
            .unwrap_or([0; 2]);
        let mid = mid.map(|m| MidRewrite { strip, ..m });
        let dest = self.t_mut(d);
        // Adopt the oldest orphan of the same clock rate: the receiver's stream continues
        // (not into a browser's slot: each source there is its own stream).
        let slotted = dest.browser.as_ref().is_some_and(|b| b.slotted(clock));
        let adopt = dest
            .send
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let s = s.as_ref()?;
                (s.source.is_none() && s.clock_rate == clock).then_some((s.orphaned_at?, i))
            })
            .min()
            .map(|(_, i)| i)
            .filter(|_| !slotted);
        let slot = match adopt {
            Some(i) => {
                let s = dest.send[i].as_mut().expect("orphan slot");
                s.source = Some(source);
                s.orphaned_at = None;
                s.source_sr = None;
                s.pt_map = pt_map;
                s.mid = mid;
                s.layers = layer.map(|_| LayerSel::new());
                i
            }
            None => {
                let out = choose_ssrc(dest, ssrc, src_id);
                let mut s = SendStream::new(source, out, clock);
                s.pt_map = pt_map;
                s.mid = mid;
                s.layers = layer.map(|_| LayerSel::new());
                let s = Some(s);
                match dest.send.iter().position(Option::is_none) {
                    Some(i) => {
                        dest.send[i] = s;
                        i
                    }
                    None => {
                        dest.send.push(s);
                        dest.send.len() - 1
                    }
                }
            }
        };
        self.t_mut(f).recv[k].outs.push(Out {
            transport: d,
            slot: slot as u32,
        });
    }
}

/// The SSRC a receiver gets a source stream as: the source's own (salted with the receiver's
/// [`transport::Transport::ssrc_salt`], a trunk's), unless that is taken at the receiver;
/// then one derived from it and the source transport's id (deterministic).
fn choose_ssrc(dest: &transport::Transport, ssrc: Ssrc, src: LegId) -> Ssrc {
    let mut candidate = Ssrc(ssrc.0 ^ dest.ssrc_salt);
    let mut salt = src.0 as u32;
    while dest.ssrc_taken(candidate) {
        salt = salt.wrapping_add(0x9E37_79B9);
        candidate = Ssrc((ssrc.0 ^ dest.ssrc_salt).rotate_left(7) ^ salt.wrapping_mul(0x85EB_CA6B));
    }
    candidate
}
