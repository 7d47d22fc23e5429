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
//! [`BacklogPolicy`] tells the two apart the way CoDel does (RFC 8289: a queue that has not
//! emptied for a whole interval is standing, not a burst): a receive that fills its batch
//! means more is queued behind it. When every receive has filled its batch for
//! [`STANDING_AFTER`], the worker cuts the queue's buffer to a [`SHED_DIVISOR`]th: the kernel
//! drops what arrives beyond it (counted in the socket's drops), the datagrams the worker does
//! forward are fresh, and it forwards more of them. The first receive that does not fill its
//! batch means the queue has drained: the buffer is restored at once, ready for the next
//! stall. A stall at normal load drains in far less than [`STANDING_AFTER`] and never cuts
//! the buffer.
//!
//! Sans-IO: the worker tells the policy, after each receive on the shared port, `now` and
//! whether the batch was full; the policy answers with the buffer size to set, if any. Driven
//! by a virtual clock in its tests.

use std::time::{Duration, Instant};

/// How long every receive on the shared port must fill its batch before the queue counts as
/// standing: CoDel's interval (RFC 8289, 100 ms), far longer than a virtual machine's stall
/// takes to drain at normal load.
pub const STANDING_AFTER: Duration = Duration::from_millis(100);
/// The cut buffer is the configured one divided by this (1 MB of the default 8 MB).
pub const SHED_DIVISOR: usize = 8;
/// The cut buffer is never smaller than this.
pub const SHED_FLOOR: usize = 256 << 10;

/// Whether the shared port's queue stands full, and which buffer it should have. See the
/// module docs.
#[derive(Debug, Clone)]
pub struct BacklogPolicy {
    configured: usize,
    full_since: Option<Instant>,
    cut: bool,
    cuts: u64,
}

impl BacklogPolicy {
    /// A policy for a queue whose configured buffer is `configured` bytes.
    pub fn new(configured: usize) -> Self {
        Self {
            configured,
            full_since: None,
            cut: false,
            cuts: 0,
        }
    }

    /// After a receive on the shared port at `now`: `full` when it filled its batch (one
    /// that found the queue empty is not full). Returns the buffer size to give the socket
    /// when it changes.
    pub fn after_receive(&mut self, now: Instant, full: bool) -> Option<usize> {
        if !full {
            self.full_since = None;
            if self.cut {
                self.cut = false;
                return Some(self.configured);
            }
            return None;
        }
        let since = *self.full_since.get_or_insert(now);
        if !self.cut && now.saturating_duration_since(since) >= STANDING_AFTER {
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
