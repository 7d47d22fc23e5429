//! Linux system calls: `recvmmsg`, `sendmmsg` with `UDP_SEGMENT` (GSO), `epoll`, `eventfd`.
//!
//! Safety: every pointer handed to the kernel points into buffers owned by the struct (or
//! borrowed for the duration of the call) and is rebuilt before each call, so no pointer
//! outlives what it points to; lengths given to the kernel are the lengths of those buffers.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;

use super::{OutgoingFrom, RECV_BUF, SendStats};

const SOL_UDP: libc::c_int = 17;
const UDP_SEGMENT: libc::c_int = 103;
/// Most segments the kernel accepts in one GSO message.
const MAX_GSO_SEGMENTS: usize = 64;
/// Most bytes of one GSO message.
const MAX_GSO_BYTES: usize = 65_000;

fn to_storage(addr: &SocketAddr, st: &mut libc::sockaddr_storage) -> libc::socklen_t {
    // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in and sockaddr_in6.
    unsafe {
        match addr {
            SocketAddr::V4(a) => {
                let sin = &mut *(st as *mut libc::sockaddr_storage as *mut libc::sockaddr_in);
                *sin = zeroed();
                sin.sin_family = libc::AF_INET as libc::sa_family_t;
                sin.sin_port = a.port().to_be();
                sin.sin_addr = libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                };
                size_of::<libc::sockaddr_in>() as libc::socklen_t
            }
            SocketAddr::V6(a) => {
                let sin6 = &mut *(st as *mut libc::sockaddr_storage as *mut libc::sockaddr_in6);
                *sin6 = zeroed();
                sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sin6.sin6_port = a.port().to_be();
                sin6.sin6_flowinfo = a.flowinfo();
                sin6.sin6_addr = libc::in6_addr {
                    s6_addr: a.ip().octets(),
                };
                sin6.sin6_scope_id = a.scope_id();
                size_of::<libc::sockaddr_in6>() as libc::socklen_t
            }
        }
    }
}

fn from_storage(st: &libc::sockaddr_storage) -> Option<SocketAddr> {
    // SAFETY: the family field says which layout the kernel wrote.
    unsafe {
        match st.ss_family as libc::c_int {
            libc::AF_INET => {
                let sin = &*(st as *const libc::sockaddr_storage as *const libc::sockaddr_in);
                Some(SocketAddr::V4(SocketAddrV4::new(
                    Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes()),
                    u16::from_be(sin.sin_port),
                )))
            }
            libc::AF_INET6 => {
                let sin6 = &*(st as *const libc::sockaddr_storage as *const libc::sockaddr_in6);
                Some(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }
}

/// `recvmmsg` state.
pub(super) struct RecvSys {
    hdrs: Vec<libc::mmsghdr>,
    iovs: Vec<libc::iovec>,
    names: Vec<libc::sockaddr_storage>,
}

// SAFETY: the raw pointers inside are rebuilt before every call and only used during it.
unsafe impl Send for RecvSys {}

impl RecvSys {
    pub(super) fn new(cap: usize) -> Self {
        // SAFETY: all-zero is a valid value of these plain C structs.
        unsafe {
            Self {
                hdrs: vec![zeroed(); cap],
                iovs: vec![zeroed(); cap],
                names: vec![zeroed(); cap],
            }
        }
    }

    pub(super) fn recv(
        &mut self,
        sock: &UdpSocket,
        bufs: &mut [u8],
        lens: &mut [usize],
        addrs: &mut [Option<SocketAddr>],
    ) -> io::Result<usize> {
        let cap = self.hdrs.len().min(bufs.len() / RECV_BUF);
        for i in 0..cap {
            self.iovs[i] = libc::iovec {
                iov_base: bufs[i * RECV_BUF..].as_mut_ptr() as *mut libc::c_void,
                iov_len: RECV_BUF,
            };
            // SAFETY: zeroed msghdr is valid; fields set below point into owned buffers.
            let mut h: libc::msghdr = unsafe { zeroed() };
            h.msg_name = &mut self.names[i] as *mut libc::sockaddr_storage as *mut libc::c_void;
            h.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &mut self.iovs[i];
            h.msg_iovlen = 1;
            self.hdrs[i] = libc::mmsghdr {
                msg_hdr: h,
                msg_len: 0,
            };
        }
        // SAFETY: hdrs[..cap] are initialised and point into live buffers of the right sizes.
        let n = unsafe {
            libc::recvmmsg(
                sock.as_raw_fd(),
                self.hdrs.as_mut_ptr(),
                cap as libc::c_uint,
                libc::MSG_DONTWAIT,
                ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            };
        }
        let n = n as usize;
        for i in 0..n {
            lens[i] = (self.hdrs[i].msg_len as usize).min(RECV_BUF);
            addrs[i] = from_storage(&self.names[i]);
        }
        Ok(n)
    }
}

/// `sendmmsg` + GSO state.
pub(super) struct SendSys {
    hdrs: Vec<libc::mmsghdr>,
    iovs: Vec<libc::iovec>,
    names: Vec<libc::sockaddr_storage>,
    /// One control buffer per message, 8-byte aligned (room for one `UDP_SEGMENT` cmsg and
    /// one `IP_PKTINFO`/`IPV6_PKTINFO` cmsg).
    cmsgs: Vec<[u64; 10]>,
    /// Per message: first iovec, iovec count, segment size (0 = not GSO).
    groups: Vec<(usize, usize, usize)>,
    dsts: Vec<SocketAddr>,
    /// Per message: the source address asked for (`None`: the socket's own).
    srcs: Vec<Option<IpAddr>>,
    gso: bool,
}

// SAFETY: the raw pointers inside are rebuilt before every call and only used during it.
unsafe impl Send for SendSys {}

impl SendSys {
    pub(super) fn new(cap: usize, gso: bool) -> Self {
        // SAFETY: all-zero is a valid value of these plain C structs.
        unsafe {
            Self {
                hdrs: vec![zeroed(); cap],
                iovs: vec![zeroed(); cap],
                names: vec![zeroed(); cap],
                cmsgs: vec![[0u64; 10]; cap],
                groups: Vec::with_capacity(cap),
                dsts: Vec::with_capacity(cap),
                srcs: Vec::with_capacity(cap),
                gso,
            }
        }
    }

    pub(super) fn gso_enabled(&self) -> bool {
        self.gso
    }

    pub(super) fn send<'a>(
        &mut self,
        sock: &UdpSocket,
        msgs: impl Iterator<Item = OutgoingFrom<'a>>,
    ) -> SendStats {
        let mut st = SendStats::default();
        let cap = self.iovs.len();
        let mut niov = 0usize;
        self.groups.clear();
        self.dsts.clear();
        self.srcs.clear();
        for (src, dst, data) in msgs {
            if niov == cap {
                self.flush(sock, &mut st);
                niov = 0;
            }
            self.iovs[niov] = libc::iovec {
                iov_base: data.as_ptr() as *mut libc::c_void,
                iov_len: data.len(),
            };
            let mut joined = false;
            if self.gso
                && let Some(g) = self.groups.last_mut()
            {
                let same_dst = self.dsts.last() == Some(&dst) && self.srcs.last() == Some(&src);
                let seg = if g.2 == 0 {
                    self.iovs[g.0].iov_len
                } else {
                    g.2
                };
                let last_len = self.iovs[g.0 + g.1 - 1].iov_len;
                // Segments are all `seg` bytes; only the last may be shorter.
                if same_dst
                    && last_len == seg
                    && data.len() <= seg
                    && g.1 < MAX_GSO_SEGMENTS
                    && (g.1 + 1) * seg <= MAX_GSO_BYTES
                {
                    g.1 += 1;
                    g.2 = seg;
                    joined = true;
                }
            }
            if !joined {
                self.groups.push((niov, 1, 0));
                self.dsts.push(dst);
                self.srcs.push(src);
            }
            niov += 1;
        }
        if niov > 0 {
            self.flush(sock, &mut st);
        }
        st
    }

    fn flush(&mut self, sock: &UdpSocket, st: &mut SendStats) {
        let nmsg = self.groups.len();
        for m in 0..nmsg {
            let (first, count, seg) = self.groups[m];
            let namelen = to_storage(&self.dsts[m], &mut self.names[m]);
            // SAFETY: zeroed msghdr is valid; pointers set below are into owned buffers or the
            // borrowed datagrams, all alive until the syscall below returns.
            let mut h: libc::msghdr = unsafe { zeroed() };
            h.msg_name = &mut self.names[m] as *mut libc::sockaddr_storage as *mut libc::c_void;
            h.msg_namelen = namelen;
            h.msg_iov = &mut self.iovs[first];
            h.msg_iovlen = count as _;
            let gso = seg > 0 && count > 1;
            let src = self.srcs[m];
            if gso || src.is_some() {
                let buf = &mut self.cmsgs[m];
                h.msg_control = buf.as_mut_ptr() as *mut libc::c_void;
                let mut space = 0u32;
                // SAFETY: the control buffer (80 bytes) has room for CMSG_SPACE of a u16 (24)
                // plus CMSG_SPACE of an in6_pktinfo (36 rounded up to 40; in_pktinfo: 32);
                // every cmsg header written is inside msg_controllen, which is set to the
                // total before each CMSG_FIRSTHDR/CMSG_NXTHDR walk.
                unsafe {
                    if gso {
                        space += libc::CMSG_SPACE(size_of::<u16>() as u32);
                    }
                    match src {
                        Some(IpAddr::V4(_)) => {
                            space += libc::CMSG_SPACE(size_of::<libc::in_pktinfo>() as u32)
                        }
                        Some(IpAddr::V6(_)) => {
                            space += libc::CMSG_SPACE(size_of::<libc::in6_pktinfo>() as u32)
                        }
                        None => {}
                    }
                    debug_assert!(space as usize <= size_of::<[u64; 10]>());
                    buf.fill(0);
                    h.msg_controllen = space as _;
                    let mut c = libc::CMSG_FIRSTHDR(&h);
                    if gso {
                        (*c).cmsg_level = SOL_UDP;
                        (*c).cmsg_type = UDP_SEGMENT;
                        (*c).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as u32) as _;
                        ptr::write_unaligned(libc::CMSG_DATA(c) as *mut u16, seg as u16);
                        c = libc::CMSG_NXTHDR(&h, c);
                    }
                    match src {
                        Some(IpAddr::V4(a)) => {
                            (*c).cmsg_level = libc::IPPROTO_IP;
                            (*c).cmsg_type = libc::IP_PKTINFO;
                            (*c).cmsg_len =
                                libc::CMSG_LEN(size_of::<libc::in_pktinfo>() as u32) as _;
                            let info = libc::in_pktinfo {
                                ipi_ifindex: 0,
                                ipi_spec_dst: libc::in_addr {
                                    s_addr: u32::from_ne_bytes(a.octets()),
                                },
                                ipi_addr: libc::in_addr { s_addr: 0 },
                            };
                            ptr::write_unaligned(libc::CMSG_DATA(c) as *mut libc::in_pktinfo, info);
                        }
                        Some(IpAddr::V6(a)) => {
                            (*c).cmsg_level = libc::IPPROTO_IPV6;
                            (*c).cmsg_type = libc::IPV6_PKTINFO;
                            (*c).cmsg_len =
                                libc::CMSG_LEN(size_of::<libc::in6_pktinfo>() as u32) as _;
                            let info = libc::in6_pktinfo {
                                ipi6_addr: libc::in6_addr {
                                    s6_addr: a.octets(),
                                },
                                ipi6_ifindex: 0,
                            };
                            ptr::write_unaligned(
                                libc::CMSG_DATA(c) as *mut libc::in6_pktinfo,
                                info,
                            );
                        }
                        None => {}
                    }
                }
                if gso {
                    st.gso_messages += 1;
                }
            }
            self.hdrs[m] = libc::mmsghdr {
                msg_hdr: h,
                msg_len: 0,
            };
        }
        let mut done = 0usize;
        while done < nmsg {
            st.syscalls += 1;
            // SAFETY: hdrs[done..nmsg] are initialised above and point into live buffers.
            let r = unsafe {
                libc::sendmmsg(
                    sock.as_raw_fd(),
                    self.hdrs[done..].as_mut_ptr(),
                    (nmsg - done) as libc::c_uint,
                    0,
                )
            };
            if r > 0 {
                for m in done..done + r as usize {
                    st.sent += self.groups[m].1;
                }
                done += r as usize;
                continue;
            }
            // The message at `done` failed.
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            let (first, count, seg) = self.groups[done];
            if seg > 0 && count > 1 && self.srcs[done].is_none() && gso_refused(&err) {
                // The kernel cannot do GSO on this path: stop using it and send these one by
                // one. (Only for errors that say so: a transient error, a full buffer or a
                // refused destination, says nothing about GSO and must not turn it off for
                // good. A message with a chosen source address is not resent this way:
                // `send_to` cannot choose it; the next batch goes without GSO.)
                self.gso = false;
                for k in first..first + count {
                    let iov = self.iovs[k];
                    // SAFETY: iov points into a datagram borrowed for this call.
                    let data = unsafe {
                        std::slice::from_raw_parts(iov.iov_base as *const u8, iov.iov_len)
                    };
                    st.syscalls += 1;
                    match sock.send_to(data, self.dsts[done]) {
                        Ok(_) => st.sent += 1,
                        Err(_) => st.failed += 1,
                    }
                }
            } else {
                if seg > 0 && count > 1 && gso_refused(&err) {
                    self.gso = false;
                }
                st.failed += count;
            }
            done += 1;
        }
        self.groups.clear();
        self.dsts.clear();
        self.srcs.clear();
    }
}

/// Whether a failed GSO send says the kernel cannot segment on this path (no checksum
/// offload, an unsupported socket or route): EIO, EINVAL, EOPNOTSUPP or ENOPROTOOPT.
fn gso_refused(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EIO | libc::EINVAL | libc::EOPNOTSUPP | libc::ENOPROTOOPT)
    )
}

/// `epoll` readiness for many sockets.
pub struct Poller {
    fd: OwnedFd,
    events: Vec<libc::epoll_event>,
    n: usize,
}

impl Poller {
    /// A poller that reports up to `cap` ready sockets per wait.
    pub fn new(cap: usize) -> io::Result<Self> {
        // SAFETY: plain syscall; the returned fd is owned below.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            // SAFETY: fd is a fresh, valid descriptor that nothing else owns.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            events: vec![libc::epoll_event { events: 0, u64: 0 }; cap.max(1)],
            n: 0,
        })
    }

    /// Watches `fd` for readability, reporting it as `token`.
    pub fn add(&mut self, fd: RawFd, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: ev is a valid epoll_event; fd validity is the kernel's to check.
        let r = unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// Stops watching `fd`.
    pub fn remove(&mut self, fd: RawFd) -> io::Result<()> {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: as in `add`.
        let r = unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_DEL, fd, &mut ev) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// Waits up to `timeout_ms` for readiness; returns how many tokens are ready.
    pub fn wait(&mut self, timeout_ms: i32) -> io::Result<usize> {
        // SAFETY: events is a live buffer of the given length.
        let n = unsafe {
            libc::epoll_wait(
                self.fd.as_raw_fd(),
                self.events.as_mut_ptr(),
                self.events.len() as libc::c_int,
                timeout_ms,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            self.n = 0;
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(0)
            } else {
                Err(e)
            };
        }
        self.n = n as usize;
        Ok(self.n)
    }

    /// Token of ready entry `i` of the last wait.
    pub fn token(&self, i: usize) -> u64 {
        let ev = self.events[i];
        ev.u64
    }
}

/// Wakes a worker blocked in [`Poller::wait`] (an `eventfd`).
pub struct Waker {
    fd: OwnedFd,
}

impl Waker {
    /// A new waker.
    pub fn new() -> io::Result<Self> {
        // SAFETY: plain syscall; the fd is owned below.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fresh valid descriptor.
        Ok(Self {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// The descriptor to register with the poller.
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Wakes the waiting worker.
    pub fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64.
        unsafe {
            libc::write(
                self.fd.as_raw_fd(),
                &one as *const u64 as *const libc::c_void,
                8,
            );
        }
    }

    /// Consumes pending wake-ups.
    pub fn reset(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64.
        unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                &mut v as *mut u64 as *mut libc::c_void,
                8,
            );
        }
    }
}
