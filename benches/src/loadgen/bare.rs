//! The bare forwarder: the relay's own batched UDP shell (`epoll`, `recvmmsg`, `sendmmsg`
//! with GSO) with no forwarding logic at all — every datagram received on an input socket is
//! sent, unchanged, from each of its output sockets to a fixed address. Same sockets, same
//! syscalls as the relay: this machine's ceiling for user-space forwarding.

use std::net::{SocketAddr, UdpSocket};
#[cfg(unix)]
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Result;
use supernode_relay::udp::{self, Poller, RecvBatch, SendBatch};

/// One input socket and where its datagrams go: (output socket index, destination).
pub struct Route {
    /// Socket the sender sends to.
    pub input: UdpSocket,
    /// Outputs: index into the output sockets, and destination.
    pub outputs: Vec<(usize, SocketAddr)>,
}

/// A running bare forwarder.
pub struct Bare {
    stop: Arc<AtomicBool>,
    join: Option<JoinHandle<()>>,
}

impl Bare {
    /// Starts the forwarder thread over `routes`, sending from `out_socks`.
    pub fn start(
        routes: Vec<Route>,
        out_socks: Vec<UdpSocket>,
        batch: usize,
        pin: Option<usize>,
        spin: Duration,
    ) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let mut poller = Poller::new(256)?;
        #[cfg(unix)]
        for (i, r) in routes.iter().enumerate() {
            poller.add(r.input.as_raw_fd(), i as u64)?;
        }
        let join = std::thread::Builder::new()
            .name("bare-forwarder".into())
            .spawn(move || {
                if let Some(c) = pin {
                    udp::pin_current_thread(c);
                }
                let mut recv = RecvBatch::new(batch, false);
                let mut send = SendBatch::new(batch, false, true);
                // Same idle policy as the relay's worker: poll without blocking for `spin`
                // after a round with traffic, then block.
                let mut spin_until: Option<Instant> = None;
                while !s2.load(Ordering::Relaxed) {
                    let timeout = if spin_until.is_some_and(|t| Instant::now() < t) {
                        0
                    } else {
                        20
                    };
                    let Ok(n) = poller.wait(timeout) else {
                        continue;
                    };
                    if n > 0 && !spin.is_zero() {
                        spin_until = Some(Instant::now() + spin);
                    }
                    for k in 0..n {
                        let r = &routes[poller.token(k) as usize];
                        for _ in 0..8 {
                            let got = recv.recv(&r.input).unwrap_or(0);
                            if got == 0 {
                                break;
                            }
                            for &(o, dst) in &r.outputs {
                                let recv = &recv;
                                send.send(
                                    &out_socks[o],
                                    (0..got).filter_map(|i| recv.get(i)).map(|d| (dst, d.data)),
                                );
                            }
                            if got < batch {
                                break;
                            }
                        }
                    }
                }
            })?;
        Ok(Self {
            stop,
            join: Some(join),
        })
    }
}

impl Drop for Bare {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}
