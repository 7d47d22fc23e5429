//! Simulcast: a browser publisher sends one video in several **layers** (RFC 8853, one SSRC
//! per `rid`, each at its own resolution and bitrate), and each receiver gets exactly one of
//! them in its one send stream for that source, switched only where a decoder can start.
//!
//! - **Binding.** On a browser transport whose answer accepted simulcast
//!   ([`SimulcastSpec`]), a video SSRC the relay does not know yet is bound to a layer by the
//!   RID header extension of its packet (its RTX by the repaired-RID extension); the layers
//!   are ordered low → high as the offer listed them (`q`, `h`, `f`). A new video SSRC with
//!   neither is dropped (`wrong_ssrc`): it cannot be placed.
//! - **Routing.** Every layer of a source feeds the *same* send stream at each receiver
//!   (one SSRC there, one slot of a browser's m-lines); the stream's [`LayerSel`] lets one
//!   layer through. RTX of a layer is not forwarded (receivers' NACKs are answered from the
//!   relay's cache, or asked of the current layer's SSRC).
//! - **Switching.** When the selection wants another layer (the *target*), the publisher is
//!   asked for a keyframe on that layer's SSRC (a PLI, coalesced per stream as every keyframe
//!   request is, and repeated while the target's packets are not a keyframe); the switch
//!   happens on the first packet of the target layer that opens a keyframe
//!   ([`super::keyframe`]), and the send stream's [`super::rewrite::Rewriter`] continues
//!   SSRC, sequence numbers and timestamps across it. The send stream's `source` then names
//!   the new layer's SSRC, so NACKs, PLIs and sender reports map to it.
//! - **Selection** ([`choose`]): the highest active layer whose measured bitrate fits the
//!   receiver's budget (its bandwidth estimate from transport-wide feedback,
//!   [`super::bwe`], shared equally by the simulcast streams it receives), never above the
//!   receiver's cap ([`super::Core::set_max_layer`]); down at once, up only after the wish
//!   held for [`UP_HOLD`]. A receiver without an estimate gets the highest active layer.

use std::time::{Duration, Instant};

use supernode_media::ids::Ssrc;
use supernode_media::packet::rtcp::TransportFeedback;
use supernode_media::packet::rtp::RtpPacket;

use super::Core;
use super::error::CoreError;
use super::ids::LegId;
use super::transmit::TxBatch;

/// How long a higher layer must keep fitting before a receiver is moved up to it.
pub const UP_HOLD: Duration = Duration::from_secs(1);

/// A layer that has sent nothing for this long is not chosen.
pub const ACTIVE_WITHIN: Duration = Duration::from_secs(1);

/// Window of a layer's bitrate measurement.
pub const RATE_WINDOW: Duration = Duration::from_millis(500);

/// Most layers of one source.
pub const MAX_LAYERS: usize = 4;

/// What the answer accepted of a browser's simulcast video (from the SDP offer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulcastSpec {
    /// The RID header extension id (`urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id`).
    pub rid_extension_id: u8,
    /// The repaired-RID header extension id, if negotiated (RTX of a layer).
    pub repaired_rid_extension_id: Option<u8>,
    /// The RIDs, lowest layer first (at most [`MAX_LAYERS`]).
    pub rids: Vec<String>,
}

impl SimulcastSpec {
    /// The layer the packet `pkt` of a new SSRC belongs to, by its RID (or repaired-RID).
    pub fn layer_of(&self, pkt: &RtpPacket<'_>) -> Option<Layer> {
        for (id, value) in pkt.extensions() {
            let rtx = if id == self.rid_extension_id {
                false
            } else if Some(id) == self.repaired_rid_extension_id {
                true
            } else {
                continue;
            };
            let index = self
                .rids
                .iter()
                .take(MAX_LAYERS)
                .position(|r| r.as_bytes() == value)?;
            return Some(Layer {
                index: index as u8,
                rtx,
            });
        }
        None
    }
}

/// A receive stream's place in its transport's simulcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layer {
    /// 0: the lowest.
    pub index: u8,
    /// The layer's retransmission (RTX) stream.
    pub rtx: bool,
}

/// Bitrate of a stream, measured over [`RATE_WINDOW`]s (no allocation).
#[derive(Debug, Clone, Copy, Default)]
pub struct RateMeter {
    window_start: Option<Instant>,
    bytes: u64,
    bps: u64,
    last: Option<Instant>,
}

impl RateMeter {
    /// `bytes` arrived at `now`; whether a measurement window closed.
    #[inline]
    pub fn on_packet(&mut self, now: Instant, bytes: usize) -> bool {
        self.last = Some(now);
        let start = *self.window_start.get_or_insert(now);
        let span = now.saturating_duration_since(start);
        if span >= RATE_WINDOW {
            self.bps = self.bytes * 8 * 1_000_000 / span.as_micros().max(1) as u64;
            self.bytes = 0;
            self.window_start = Some(now);
            self.bytes = bytes as u64;
            return true;
        }
        self.bytes += bytes as u64;
        false
    }

    /// The last measured bitrate, bits/s.
    pub fn bps(&self) -> u64 {
        self.bps
    }

    /// Whether something arrived within [`ACTIVE_WITHIN`] of `now`.
    pub fn active(&self, now: Instant) -> bool {
        self.last
            .is_some_and(|t| now.saturating_duration_since(t) < ACTIVE_WITHIN)
    }
}

/// The layer selection of one send stream fed by a simulcast source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerSel {
    /// The layer forwarded now (`None` before the first keyframe).
    pub current: Option<u8>,
    /// The layer wanted: switched to at its next keyframe.
    pub target: u8,
    /// Since when a higher layer than the target has been wished for.
    pub up_since: Option<Instant>,
    /// Layer switches done.
    pub switches: u64,
}

impl Default for LayerSel {
    fn default() -> Self {
        Self::new()
    }
}

impl LayerSel {
    /// Starts on the lowest layer (the first to be decodable; the selection moves it up).
    pub fn new() -> Self {
        Self {
            current: None,
            target: 0,
            up_since: None,
            switches: 0,
        }
    }

    /// Applies the wish `want` at `now` (see the module docs for the hysteresis); whether
    /// the target changed.
    pub fn wish(&mut self, now: Instant, want: u8) -> bool {
        if want < self.target {
            self.target = want;
            self.up_since = None;
            return true;
        }
        if want == self.target {
            self.up_since = None;
            return false;
        }
        let since = *self.up_since.get_or_insert(now);
        if now.saturating_duration_since(since) >= UP_HOLD {
            self.target = want;
            self.up_since = None;
            return true;
        }
        false
    }
}

/// One layer as the selection sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerInfo {
    /// Layer index.
    pub index: u8,
    /// Measured bitrate, bits/s.
    pub bps: u64,
    /// Whether it is sending.
    pub active: bool,
}

/// The layer a receiver should get: the highest active one at most `cap` whose bitrate fits
/// `budget_bps` (no budget: the highest active one); the lowest active one when none fits;
/// 0 when none is active.
pub fn choose(layers: &[LayerInfo], budget_bps: Option<u64>, cap: u8) -> u8 {
    let mut best: Option<u8> = None;
    let mut lowest: Option<u8> = None;
    for l in layers.iter().filter(|l| l.active && l.index <= cap) {
        lowest = Some(lowest.map_or(l.index, |x: u8| x.min(l.index)));
        if budget_bps.is_none_or(|b| l.bps <= b) {
            best = Some(best.map_or(l.index, |x: u8| x.max(l.index)));
        }
    }
    best.or(lowest).unwrap_or(0)
}

/// What one receiver gets of one simulcast source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerView {
    /// The SSRC the receiver sees.
    pub ssrc: Ssrc,
    /// The source transport.
    pub source: LegId,
    /// The layer forwarded now.
    pub current: Option<u8>,
    /// The layer wanted.
    pub target: u8,
    /// Switches done.
    pub switches: u64,
}

/// The simulcast state of one receiving transport.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SimulcastView {
    /// Its bandwidth estimate, bits/s, if it has one ([`super::bwe`]).
    pub estimate_bps: Option<u64>,
    /// Loss of the estimator's last window, per mille.
    pub loss_permille: Option<u32>,
    /// The simulcast sources it receives.
    pub streams: Vec<LayerView>,
}

impl Core {
    /// Caps the simulcast layer transport `leg` receives (`None`: no cap; 0: the lowest).
    pub fn set_max_layer(
        &mut self,
        now: Instant,
        leg: LegId,
        max: Option<u8>,
        tx: &mut TxBatch,
    ) -> Result<(), CoreError> {
        let d = self.idx(leg)?;
        self.t_mut(d).max_layer = max.unwrap_or(u8::MAX);
        self.select_layers(now, d, tx);
        Ok(())
    }

    /// The simulcast state of transport `leg` as a receiver.
    pub fn simulcast_view(&self, leg: LegId) -> Result<SimulcastView, CoreError> {
        let t = self.t(self.idx(leg)?);
        let bwe = t.browser.as_ref().and_then(|b| b.bwe.as_ref());
        let streams = t
            .send
            .iter()
            .flatten()
            .filter_map(|s| {
                let sel = s.layers?;
                let src = s.source?;
                Some(LayerView {
                    ssrc: s.ssrc(),
                    source: self.transports.get(src.transport as usize)?.as_ref()?.id,
                    current: sel.current,
                    target: sel.target,
                    switches: sel.switches,
                })
            })
            .collect();
        Ok(SimulcastView {
            estimate_bps: bwe.map(|b| b.estimate_bps()),
            loss_permille: bwe.map(|b| (b.last_loss() * 1000.0) as u32),
            streams,
        })
    }

    /// A layer stream `k` of transport `f` finished a bitrate window: the receivers it feeds
    /// choose again.
    pub(super) fn reselect_for_layer(&mut self, now: Instant, f: u32, k: usize, tx: &mut TxBatch) {
        for j in 0..self.t(f).recv[k].outs.len() {
            let o = self.t(f).recv[k].outs[j];
            self.select_layer(now, o.transport, o.slot as usize, tx);
        }
    }

    /// Transport-cc feedback from transport `li` (about what the relay sent it): the
    /// estimate, then its layers.
    pub(super) fn on_transport_feedback(
        &mut self,
        now: Instant,
        li: u32,
        fb: &TransportFeedback<'_>,
        tx: &mut TxBatch,
    ) {
        let moved = self
            .t_mut(li)
            .browser
            .as_mut()
            .and_then(|b| b.bwe.as_mut())
            .is_some_and(|b| b.on_feedback(now, fb));
        if moved {
            self.select_layers(now, li, tx);
        }
    }

    /// Every simulcast send stream of transport `d` chooses its layer.
    pub(super) fn select_layers(&mut self, now: Instant, d: u32, tx: &mut TxBatch) {
        for slot in 0..self.t(d).send.len() {
            self.select_layer(now, d, slot, tx);
        }
    }

    /// Send stream `slot` of transport `d` chooses its layer (see the module docs); a new
    /// target is asked of its publisher as a keyframe.
    fn select_layer(&mut self, now: Instant, d: u32, slot: usize, tx: &mut TxBatch) {
        let t = self.t(d);
        let Some(Some(s)) = t.send.get(slot) else {
            return;
        };
        let (Some(_), Some(src)) = (s.layers, s.source) else {
            return;
        };
        let sharing = t
            .send
            .iter()
            .flatten()
            .filter(|s| s.layers.is_some() && s.source.is_some())
            .count()
            .max(1) as u64;
        let budget = t
            .browser
            .as_ref()
            .and_then(|b| b.bwe.as_ref())
            .map(|b| b.estimate_bps() / sharing);
        let cap = t.max_layer;
        let Some(Some(st)) = self.transports.get(src.transport as usize) else {
            return;
        };
        let mut infos = [LayerInfo {
            index: 0,
            bps: 0,
            active: false,
        }; MAX_LAYERS];
        let mut n = 0;
        for r in &st.recv {
            if let Some(l) = r.layer
                && !l.rtx
                && n < MAX_LAYERS
            {
                infos[n] = LayerInfo {
                    index: l.index,
                    bps: r.rate.bps(),
                    active: r.rate.active(now),
                };
                n += 1;
            }
        }
        let want = choose(&infos[..n], budget, cap);
        let Some(Some(s)) = self.t_mut(d).send.get_mut(slot) else {
            return;
        };
        let Some(sel) = s.layers.as_mut() else {
            return;
        };
        if sel.wish(now, want) && sel.current != Some(sel.target) {
            let target = sel.target;
            let k = self
                .t(src.transport)
                .recv
                .iter()
                .position(|r| r.layer.is_some_and(|l| !l.rtx && l.index == target));
            if let Some(k) = k {
                self.request_keyframe_of_stream(now, src.transport, k, tx);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use supernode_media::ids::{Pt, Ssrc};
    use supernode_media::packet::rtp::RtpHeader;

    fn info(index: u8, kbps: u64, active: bool) -> LayerInfo {
        LayerInfo {
            index,
            bps: kbps * 1000,
            active,
        }
    }

    #[test]
    fn choose_the_highest_that_fits() {
        let l = [info(0, 150, true), info(1, 500, true), info(2, 1500, true)];
        assert_eq!(choose(&l, Some(2_000_000), 9), 2);
        assert_eq!(choose(&l, Some(1_000_000), 9), 1);
        assert_eq!(choose(&l, Some(100_000), 9), 0, "none fits: the lowest");
        assert_eq!(choose(&l, None, 9), 2);
        assert_eq!(choose(&l, None, 1), 1, "capped");
        let l = [info(0, 150, true), info(1, 500, true), info(2, 0, false)];
        assert_eq!(choose(&l, None, 9), 1, "an inactive layer is not chosen");
        assert_eq!(choose(&[], None, 9), 0);
    }

    #[test]
    fn down_at_once_up_after_a_second() {
        let t0 = Instant::now();
        let mut s = LayerSel::new();
        assert!(!s.wish(t0, 2));
        assert!(!s.wish(t0 + Duration::from_millis(900), 2));
        assert!(s.wish(t0 + Duration::from_millis(1000), 2));
        assert_eq!(s.target, 2);
        assert!(s.wish(t0 + Duration::from_millis(1100), 1), "down at once");
        assert_eq!(s.target, 1);
        // A wish that does not hold restarts the clock.
        assert!(!s.wish(t0 + Duration::from_millis(1200), 2));
        assert!(!s.wish(t0 + Duration::from_millis(1300), 1));
        assert!(!s.wish(t0 + Duration::from_millis(2250), 2));
        assert_eq!(s.target, 1);
    }

    #[test]
    fn rate_meter_measures_windows() {
        let t0 = Instant::now();
        let mut m = RateMeter::default();
        for i in 0..=50u64 {
            m.on_packet(t0 + Duration::from_millis(10 * i), 1250); // 1 Mbit/s
        }
        assert_eq!(m.bps(), 1_000_000);
        assert!(m.active(t0 + Duration::from_millis(900)));
        assert!(!m.active(t0 + Duration::from_millis(1600)));
    }

    #[test]
    fn layers_are_bound_by_rid_and_repaired_rid() {
        let spec = SimulcastSpec {
            rid_extension_id: 10,
            repaired_rid_extension_id: Some(11),
            rids: vec!["q".into(), "h".into(), "f".into()],
        };
        let pkt = |ext: &[(u8, &[u8])]| {
            let h = RtpHeader {
                payload_type: Pt(102),
                ssrc: Ssrc(1),
                extensions: ext.iter().map(|(i, v)| (*i, v.to_vec())).collect(),
                ..RtpHeader::default()
            };
            let mut b = vec![0u8; 200];
            let n = h.write(b"x", &mut b).unwrap();
            b.truncate(n);
            b
        };
        let of = |b: &[u8]| spec.layer_of(&RtpPacket::parse(b).unwrap());
        assert_eq!(
            of(&pkt(&[(3, &[0, 1]), (10, b"h")])),
            Some(Layer {
                index: 1,
                rtx: false
            })
        );
        assert_eq!(
            of(&pkt(&[(11, b"f")])),
            Some(Layer {
                index: 2,
                rtx: true
            })
        );
        assert_eq!(of(&pkt(&[(10, b"x")])), None, "an unknown RID");
        assert_eq!(of(&pkt(&[(3, &[0, 1])])), None, "no RID");
    }
}
