//! The shared port's queue under overload: a standing backlog is cut short.
//!
//! A worker's shared port is one kernel queue for every browser transport of the worker, and
//! its buffer is large ([`crate::handle::SHARED_PORT_BUFFER`]) so that it absorbs the stalls
//! of a virtual machine (a vCPU taken away for milliseconds) without loss. When the worker is
//! *overloaded*, though, that same buffer becomes a standing queue: it stays full, every
//! datagram waits the whole queue (tens of milliseconds at 200,000 datagrams/s) and reaches
//! the worker after its bytes have left the caches, so each costs more to forward and the
//! worker falls further behind. Measured with `loadgen --targets webrtc --mode fixed --mult 10`
//! (340,000 datagrams/s offered to one worker, eight interleaved pairs): an 8 MB queue
//! delivered a median of 269,000 datagrams/s, a 1 MB queue 290,000 (7 pairs of 8 better).
//!
//! [`BacklogPolicy`] tells a standing queue from a burst the way CoDel does (RFC 8289: a
//! queue that stays above its target for a whole interval is standing; one that dips below
//! it is draining a burst), with the queue's depth as the kernel counts it. While every
//! receive fills its batch (more is queued behind it), the worker measures the queue now and
//! then ([`SAMPLE_EVERY`], one `getsockopt` each); when every measurement for
//! [`STANDING_AFTER`] found it more than half full, the worker cuts the buffer to a
//! [`SHED_DIVISOR`]th: the kernel drops what arrives beyond it (the socket's drop counter),
//! the datagrams the worker does forward are fresh, and it forwards more of them. The first
//! receive that does not fill its batch means the queue has drained: the buffer is restored
//! at once, ready for the next stall. A stall at normal load leaves a backlog far below half
//! the buffer, or drains it within the interval, and never cuts anything.
//!
//! Sans-IO: the worker tells the policy when a receive on the shared port did not fill its
//! batch, and after one that did hands it a measurement of the queue when it asks (with
//! `now`); the policy answers with the buffer size to set, if any. Driven by a virtual clock in its tests.

use std::time::{Duration, Instant};

/// How long the queue must stay more than half full before it counts as standing: CoDel's
/// interval (RFC 8289, 100 ms), far longer than a virtual machine's stall takes to drain at
/// normal load.
pub const STANDING_AFTER: Duration = Duration::from_millis(100);
/// How often the worker measures the queue while its receives fill their batches.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(2);
/// The cut buffer is the configured one divided by this (1 MB of the default 8 MB).
pub const SHED_DIVISOR: usize = 8;
/// The cut buffer is never smaller than this.
pub const SHED_FLOOR: usize = 256 << 10;

/// Whether the shared port's queue stands full, and which buffer it should have. See the
/// module docs.
#[derive(Debug, Clone)]
pub struct BacklogPolicy {
    configured: usize,
    /// Since when every measurement found the queue more than half full.
    deep_since: Option<Instant>,
    last_sample: Option<Instant>,
    cut: bool,
    cuts: u64,
}

impl BacklogPolicy {
    /// A policy for a queue whose configured buffer is `configured` bytes.
    pub fn new(configured: usize) -> Self {
        Self {
            configured,
            deep_since: None,
            last_sample: None,
            cut: false,
            cuts: 0,
        }
    }

    /// After a receive on the shared port that did not fill its batch (or found the queue
    /// empty): the queue has drained. Returns the buffer size to give the socket when it
    /// changes (the configured one, if it was cut).
    pub fn drained(&mut self) -> Option<usize> {
        self.deep_since = None;
        self.last_sample = None;
        if self.cut {
            self.cut = false;
            return Some(self.configured);
        }
        None
    }

    /// Whether the worker should measure the queue after a full receive at `now` and pass
    /// it to [`BacklogPolicy::measured`].
    pub fn wants_measure(&self, now: Instant) -> bool {
        !self.cut
            && self
                .last_sample
                .is_none_or(|t| now.saturating_duration_since(t) >= SAMPLE_EVERY)
    }

    /// A measurement at `now`: `queued` bytes in the queue and its `capacity`, both as the
    /// kernel counts them (`SO_MEMINFO`: memory of the queued datagrams, and the receive
    /// buffer it compares that with). Returns the buffer size to give the socket when it
    /// changes.
    pub fn measured(&mut self, now: Instant, queued: usize, capacity: usize) -> Option<usize> {
        self.last_sample = Some(now);
        if self.cut {
            return None;
        }
        if queued.saturating_mul(2) <= capacity {
            self.deep_since = None;
            return None;
        }
        let since = *self.deep_since.get_or_insert(now);
        if now.saturating_duration_since(since) >= STANDING_AFTER {
            self.cut = true;
            self.cuts += 1;
            return Some(self.cut_size());
        }
        None
    }

    /// The buffer while the queue stands: a [`SHED_DIVISOR`]th of the configured one, at
    /// least [`SHED_FLOOR`] (and never more than the configured one).
    pub fn cut_size(&self) -> usize {
        (self.configured / SHED_DIVISOR)
            .max(SHED_FLOOR)
            .min(self.configured)
    }

    /// Whether the buffer is cut now.
    pub fn is_cut(&self) -> bool {
        self.cut
    }

    /// How many times the buffer was cut.
    pub fn cuts(&self) -> u64 {
        self.cuts
    }
}
