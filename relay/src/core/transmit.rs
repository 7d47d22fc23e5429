//! The core's output: a batch of datagrams to send, in one preallocated arena. The I/O shell
//! hands a `TxBatch` to the core, sends what it holds (`sendmmsg`, GSO), and clears it.

use std::net::SocketAddr;

use super::ids::SockSlot;

/// One datagram to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// Socket to send from (this fixes the source address and port).
    pub sock: SockSlot,
    /// Destination address.
    pub dst: SocketAddr,
    /// Offset of the payload in the batch arena.
    pub off: u32,
    /// Payload length.
    pub len: u32,
}

/// A fixed-capacity batch of transmits. Nothing allocates after [`TxBatch::new`].
#[derive(Debug)]
pub struct TxBatch {
    arena: Box<[u8]>,
    used: usize,
    items: Vec<Transmit>,
    cap: usize,
}

/// Largest datagram the relay sends.
pub const MAX_DATAGRAM: usize = 1500;

impl TxBatch {
    /// Room for `packets` datagrams of up to [`MAX_DATAGRAM`] bytes.
    pub fn new(packets: usize) -> Self {
        Self {
            arena: vec![0u8; packets * MAX_DATAGRAM].into_boxed_slice(),
            used: 0,
            items: Vec::with_capacity(packets),
            cap: packets,
        }
    }

    /// Free datagram slots.
    pub fn room(&self) -> usize {
        self.cap - self.items.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Datagrams queued.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Queues a copy of `data`; returns the queued bytes for in-place rewriting, or `None` when
    /// the batch is full or `data` is larger than a datagram.
    #[inline]
    pub fn push(&mut self, sock: SockSlot, dst: SocketAddr, data: &[u8]) -> Option<&mut [u8]> {
        if self.items.len() == self.cap || data.len() > MAX_DATAGRAM {
            return None;
        }
        let off = self.used;
        self.arena[off..off + data.len()].copy_from_slice(data);
        self.used += data.len();
        self.items.push(Transmit {
            sock,
            dst,
            off: off as u32,
            len: data.len() as u32,
        });
        Some(&mut self.arena[off..off + data.len()])
    }

    /// Queues a datagram written by `write` into a buffer of [`MAX_DATAGRAM`] bytes; `write`
    /// returns the length it wrote (0 to cancel).
    pub fn push_with(
        &mut self,
        sock: SockSlot,
        dst: SocketAddr,
        write: impl FnOnce(&mut [u8]) -> usize,
    ) -> bool {
        if self.items.len() == self.cap {
            return false;
        }
        let off = self.used;
        let len = write(&mut self.arena[off..off + MAX_DATAGRAM]).min(MAX_DATAGRAM);
        if len == 0 {
            return false;
        }
        self.used += len;
        self.items.push(Transmit {
            sock,
            dst,
            off: off as u32,
            len: len as u32,
        });
        true
    }

    /// The last queued datagram's bytes (to replace after SRTP protection, for example).
    pub fn last_mut(&mut self) -> Option<&mut [u8]> {
        let t = *self.items.last()?;
        Some(&mut self.arena[t.off as usize..(t.off + t.len) as usize])
    }

    /// Rewrites the last queued datagram in place with room to grow to [`MAX_DATAGRAM`]:
    /// `f` gets that buffer and the datagram's length and returns its new length (SRTP
    /// protection appends its tag so). On `Err` the datagram is dropped. Does nothing when
    /// the batch is empty.
    #[inline]
    pub fn grow_last<E>(
        &mut self,
        f: impl FnOnce(&mut [u8], usize) -> Result<usize, E>,
    ) -> Result<(), E> {
        let Some(t) = self.items.last().copied() else {
            return Ok(());
        };
        let off = t.off as usize;
        // Every datagram is at most MAX_DATAGRAM, so the last one starts at most
        // (cap - 1) * MAX_DATAGRAM into the arena: this slice is always in it.
        match f(&mut self.arena[off..off + MAX_DATAGRAM], t.len as usize) {
            Ok(len) => {
                let len = len.min(MAX_DATAGRAM);
                if let Some(last) = self.items.last_mut() {
                    last.len = len as u32;
                }
                self.used = off + len;
                Ok(())
            }
            Err(e) => {
                self.pop();
                Err(e)
            }
        }
    }

    /// Drops the last queued datagram.
    pub fn pop(&mut self) {
        if let Some(t) = self.items.pop() {
            self.used = t.off as usize;
        }
    }

    /// Replaces the payload of the last queued datagram with `data`.
    pub fn replace_last(&mut self, data: &[u8]) -> bool {
        let Some(t) = self.items.last_mut() else {
            return false;
        };
        if data.len() > MAX_DATAGRAM {
            return false;
        }
        let off = t.off as usize;
        self.arena[off..off + data.len()].copy_from_slice(data);
        t.len = data.len() as u32;
        self.used = off + data.len();
        true
    }

    /// The queued transmits, in order.
    pub fn items(&self) -> &[Transmit] {
        &self.items
    }

    /// Mutable access to the queued transmits (the shell sorts them by socket).
    pub fn items_mut(&mut self) -> &mut [Transmit] {
        &mut self.items
    }

    /// The bytes of one transmit.
    pub fn data(&self, t: &Transmit) -> &[u8] {
        &self.arena[t.off as usize..(t.off + t.len) as usize]
    }

    /// Forgets everything queued.
    pub fn clear(&mut self) {
        self.items.clear();
        self.used = 0;
    }
}
