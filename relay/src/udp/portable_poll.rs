//! Readiness fallback for platforms without `epoll`: every watched socket is reported ready
//! after a short sleep, and the non-blocking receive finds out. Correct, not fast.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

/// Raw descriptor stand-in.
pub type RawFd = i32;

/// Reports every watched token after at most the timeout.
pub struct Poller {
    tokens: Vec<(RawFd, u64)>,
}

impl Poller {
    /// A poller.
    pub fn new(_cap: usize) -> io::Result<Self> {
        Ok(Self { tokens: Vec::new() })
    }
    /// Watches `fd` as `token`.
    pub fn add(&mut self, fd: RawFd, token: u64) -> io::Result<()> {
        self.tokens.push((fd, token));
        Ok(())
    }
    /// Stops watching `fd`.
    pub fn remove(&mut self, fd: RawFd) -> io::Result<()> {
        self.tokens.retain(|t| t.0 != fd);
        Ok(())
    }
    /// Sleeps briefly and reports every token.
    pub fn wait(&mut self, timeout_ms: i32) -> io::Result<usize> {
        std::thread::sleep(std::time::Duration::from_millis(
            timeout_ms.clamp(0, 1) as u64
        ));
        Ok(self.tokens.len())
    }
    /// Token `i`.
    pub fn token(&self, i: usize) -> u64 {
        self.tokens[i].1
    }
}

/// A flag standing in for an eventfd.
pub struct Waker {
    flag: AtomicBool,
}

impl Waker {
    /// A waker.
    pub fn new() -> io::Result<Self> {
        Ok(Self {
            flag: AtomicBool::new(false),
        })
    }
    /// Stand-in descriptor (never ready through the fallback poller).
    pub fn raw_fd(&self) -> RawFd {
        -1
    }
    /// Sets the flag.
    pub fn wake(&self) {
        self.flag.store(true, Ordering::Release);
    }
    /// Clears the flag.
    pub fn reset(&self) {
        self.flag.store(false, Ordering::Release);
    }
}
