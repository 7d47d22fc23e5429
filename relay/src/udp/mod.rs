//! The relay's UDP I/O: the only module of the project with `unsafe` code.
//!
//! - [`bind`]: non-blocking UDP sockets with `SO_REUSEPORT` (through `socket2`), sending with
//!   the don't-fragment bit (`IP_PMTUDISC_PROBE`: no IP identification to draw per datagram).
//! - [`RecvBatch`]: receive up to N datagrams with one `recvmmsg` call.
//! - [`SendBatch`]: send a run of datagrams from one socket with one `sendmmsg` call; when
//!   several consecutive datagrams go to the same destination with the same size, they are
//!   coalesced into one UDP GSO message (`UDP_SEGMENT`), and GSO switches itself off if the
//!   kernel refuses it. [`SendBatch::send_from`] also picks each datagram's source address
//!   (`IP_PKTINFO`).
//! - [`Poller`] and [`Waker`]: `epoll` readiness over many sockets, and an `eventfd` to wake
//!   a worker when a command is queued.
//! - [`prefetch`]: a cache hint for the state a received batch will touch (the worker warms
//!   each datagram's transport before handling any of them). It lives here because it is the
//!   one other instruction the hot path needs that Rust offers only as `unsafe`.
//!
//! Every type has a portable fallback (`recv_from`/`send_to` loops) chosen with
//! `portable = true` or on platforms other than Linux; the fallback costs a syscall per
//! datagram and exists for correctness, not speed.
#![allow(unsafe_code)]

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};

use socket2::{Domain, Protocol, Socket, Type};

mod dont_fragment;
#[cfg(target_os = "linux")]
mod linux;
mod prefetch;
use dont_fragment::dont_fragment;
#[cfg(target_os = "linux")]
pub use linux::{Poller, Waker};
pub use prefetch::prefetch;
#[cfg(not(target_os = "linux"))]
mod portable_poll;
#[cfg(not(target_os = "linux"))]
pub use portable_poll::{Poller, Waker};

/// Size of one receive buffer: larger than any datagram the relay forwards, so that an
/// oversized datagram is seen (and dropped) whole rather than truncated.
pub const RECV_BUF: usize = 2048;

/// Binds a non-blocking UDP socket at `addr`, with `SO_REUSEPORT` when `reuse_port` (so that
/// several workers, or a restarted relay, can bind the same port) and large kernel buffers.
pub fn bind(addr: SocketAddr, reuse_port: bool) -> io::Result<UdpSocket> {
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
    if reuse_port {
        sock.set_reuse_port(true)?;
    }
    #[cfg(not(unix))]
    let _ = reuse_port;
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    let sock: UdpSocket = sock.into();
    force_buffer_sizes(&sock, 1 << 20);
    dont_fragment(&sock, addr.is_ipv4());
    Ok(sock)
}

/// One received datagram of a [`RecvBatch`].
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    /// Its bytes.
    pub data: &'a [u8],
    /// Its source.
    pub src: SocketAddr,
}

/// Buffers for receiving a batch of datagrams, allocated once.
pub struct RecvBatch {
    bufs: Box<[u8]>,
    lens: Box<[usize]>,
    addrs: Box<[Option<SocketAddr>]>,
    n: usize,
    cap: usize,
    portable: bool,
    #[cfg(target_os = "linux")]
    sys: linux::RecvSys,
}

impl RecvBatch {
    /// Room for `cap` datagrams per call; `portable` forces the `recv_from` fallback.
    pub fn new(cap: usize, portable: bool) -> Self {
        let cap = cap.max(1);
        Self {
            bufs: vec![0u8; cap * RECV_BUF].into_boxed_slice(),
            lens: vec![0; cap].into_boxed_slice(),
            addrs: vec![None; cap].into_boxed_slice(),
            n: 0,
            cap,
            portable: portable || cfg!(not(target_os = "linux")),
            #[cfg(target_os = "linux")]
            sys: linux::RecvSys::new(cap),
        }
    }

    /// Receives what `sock` has, up to the batch size, without blocking. Returns how many
    /// datagrams arrived (0 when none was waiting).
    pub fn recv(&mut self, sock: &UdpSocket) -> io::Result<usize> {
        self.n = 0;
        #[cfg(target_os = "linux")]
        if !self.portable {
            let n = self
                .sys
                .recv(sock, &mut self.bufs, &mut self.lens, &mut self.addrs)?;
            self.n = n;
            return Ok(n);
        }
        while self.n < self.cap {
            let i = self.n;
            let buf = &mut self.bufs[i * RECV_BUF..(i + 1) * RECV_BUF];
            match sock.recv_from(buf) {
                Ok((len, src)) => {
                    self.lens[i] = len;
                    self.addrs[i] = Some(src);
                    self.n += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if self.n == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(self.n)
    }

    /// Datagrams of the last [`RecvBatch::recv`].
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether the last receive got nothing.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Datagram `i` of the last receive (`None` for a source address the relay cannot use).
    pub fn get(&self, i: usize) -> Option<Received<'_>> {
        if i >= self.n {
            return None;
        }
        let src = self.addrs[i]?;
        Some(Received {
            data: &self.bufs[i * RECV_BUF..i * RECV_BUF + self.lens[i]],
            src,
        })
    }
}

/// One datagram to send: destination and bytes.
pub type Outgoing<'a> = (SocketAddr, &'a [u8]);

/// One datagram to send from a chosen local address (`None`: the socket's own): source,
/// destination and bytes. The source must be an address of this host; the socket's port
/// is kept.
pub type OutgoingFrom<'a> = (Option<IpAddr>, SocketAddr, &'a [u8]);

/// Buffers for sending a batch of datagrams from one socket, allocated once.
pub struct SendBatch {
    portable: bool,
    #[cfg(target_os = "linux")]
    sys: linux::SendSys,
}

/// What a [`SendBatch::send`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendStats {
    /// Datagrams handed to the kernel.
    pub sent: usize,
    /// Datagrams the kernel refused (dropped and counted by the caller).
    pub failed: usize,
    /// `sendmmsg`/`sendmsg`/`send_to` calls made.
    pub syscalls: usize,
    /// Messages that carried several datagrams through GSO.
    pub gso_messages: usize,
}

impl SendBatch {
    /// Room for `cap` datagrams per call; `portable` forces `send_to`; `gso` allows UDP GSO.
    pub fn new(cap: usize, portable: bool, gso: bool) -> Self {
        #[cfg(not(target_os = "linux"))]
        let _ = (cap, gso);
        Self {
            portable: portable || cfg!(not(target_os = "linux")),
            #[cfg(target_os = "linux")]
            sys: linux::SendSys::new(cap.max(1), gso && !portable),
        }
    }

    /// Whether GSO is in use (it switches off after the kernel refuses it once).
    pub fn gso_enabled(&self) -> bool {
        #[cfg(target_os = "linux")]
        {
            !self.portable && self.sys.gso_enabled()
        }
        #[cfg(not(target_os = "linux"))]
        {
            false
        }
    }

    /// Sends `msgs` from `sock`, in order. Never blocks: what the kernel does not take now is
    /// counted as failed.
    pub fn send<'a>(
        &mut self,
        sock: &UdpSocket,
        msgs: impl Iterator<Item = Outgoing<'a>>,
    ) -> SendStats {
        self.send_from(sock, msgs.map(|(dst, data)| (None, dst, data)))
    }

    /// Sends `msgs` from `sock`, in order, each from the source address it names
    /// (`IP_PKTINFO`/`IPV6_PKTINFO`: one socket speaks for many local addresses, as a load
    /// generator standing for many browsers does). Never blocks. The portable fallback cannot
    /// choose a source: such datagrams are counted as failed there, as they are when the
    /// kernel refuses the address.
    pub fn send_from<'a>(
        &mut self,
        sock: &UdpSocket,
        msgs: impl Iterator<Item = OutgoingFrom<'a>>,
    ) -> SendStats {
        #[cfg(target_os = "linux")]
        if !self.portable {
            return self.sys.send(sock, msgs);
        }
        let mut st = SendStats::default();
        for (src, dst, data) in msgs {
            if src.is_some() {
                st.failed += 1;
                continue;
            }
            st.syscalls += 1;
            match sock.send_to(data, dst) {
                Ok(_) => st.sent += 1,
                Err(_) => st.failed += 1,
            }
        }
        st
    }
}

/// Pins the calling thread to CPU `cpu` (Linux `sched_setaffinity`); a no-op elsewhere or on
/// failure.
pub fn pin_current_thread(cpu: usize) {
    #[cfg(target_os = "linux")]
    // SAFETY: cpu_set_t is a plain bit set; the call only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu % libc::CPU_SETSIZE as usize, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cpu;
}

/// A socket's receive queue as the kernel counts it (`SO_MEMINFO`): the memory its queued
/// datagrams take, and the receive buffer that memory is held against (twice what was
/// asked for with `SO_RCVBUF`). `None` where not available.
pub fn queue_memory(sock: &UdpSocket) -> Option<(usize, usize)> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let mut info = [0u32; libc::SK_MEMINFO_DROPS as usize + 1];
        let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into a live array of that size.
        let rc = unsafe {
            libc::getsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_MEMINFO,
                info.as_mut_ptr().cast(),
                &mut len,
            )
        };
        if rc != 0 || (len as usize) < 2 * std::mem::size_of::<u32>() {
            return None;
        }
        Some((
            info[libc::SK_MEMINFO_RMEM_ALLOC as usize] as usize,
            info[libc::SK_MEMINFO_RCVBUF as usize] as usize,
        ))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = sock;
        None
    }
}

/// Sets a socket's kernel receive buffer to `bytes`, past `rmem_max` when the process may
/// (`SO_RCVBUFFORCE` on Linux, as root), as large as allowed otherwise. Lowering it leaves
/// what is queued: the kernel drops arrivals until the queue is under the new size.
pub fn set_receive_buffer(sock: &UdpSocket, bytes: usize) {
    let _ = socket2::SockRef::from(sock).set_recv_buffer_size(bytes);
    #[cfg(target_os = "linux")]
    set_int_option(
        sock,
        libc::SOL_SOCKET,
        libc::SO_RCVBUFFORCE,
        clamp_int(bytes),
    );
}

/// Sets a socket's kernel buffers to `bytes`, past the `rmem_max`/`wmem_max` caps when the
/// process may (`SO_RCVBUFFORCE`/`SO_SNDBUFFORCE` on Linux, as root); otherwise as large as
/// allowed. For benchmarks and busy relays.
pub fn force_buffer_sizes(sock: &UdpSocket, bytes: usize) {
    set_receive_buffer(sock, bytes);
    let _ = socket2::SockRef::from(sock).set_send_buffer_size(bytes);
    #[cfg(target_os = "linux")]
    set_int_option(
        sock,
        libc::SOL_SOCKET,
        libc::SO_SNDBUFFORCE,
        clamp_int(bytes),
    );
}

#[cfg(target_os = "linux")]
fn clamp_int(v: usize) -> libc::c_int {
    v.min(libc::c_int::MAX as usize) as libc::c_int
}

/// `setsockopt` of one `int` option, best effort: whether the kernel took it.
#[cfg(target_os = "linux")]
fn set_int_option(sock: &UdpSocket, level: libc::c_int, opt: libc::c_int, v: libc::c_int) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: setsockopt reads one c_int from a live variable.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            opt,
            &v as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        ) == 0
    }
}
