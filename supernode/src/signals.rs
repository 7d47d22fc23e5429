//! How an operator stops a running supernode: signals, and the pid file that `supernode
//! drain` reads to send them.
//!
//! - SIGTERM or SIGINT: drain (out of placement at once, running calls go on for up to
//!   `drain_seconds`); a second one cuts the drain short.
//! - SIGUSR1: drain **and migrate**: the same, and every endpoint that can move is told
//!   `migrate` (it logs in on another node and resumes its call there; see
//!   `supernode_signaling`'s call core, `migrate`).
//!
//! `supernode run` writes its process id to `<data_dir>/supernode.pid` and removes it when it
//! stops; `supernode drain [--migrate]` (same `--config`/`--data-dir`) sends the signal.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// What the operator asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// SIGTERM/SIGINT: drain.
    Drain,
    /// SIGUSR1: drain and move the endpoints to other nodes.
    Migrate,
}

/// SIGINT, SIGTERM and SIGUSR1, registered before the server says it listens: a signal
/// sent right after that line drains like any other instead of meeting the default action
/// (exit at once, status "killed").
pub struct Signals {
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    usr1: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    /// Registers the handlers.
    pub fn register() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Self {
                int: signal(SignalKind::interrupt()).ok(),
                term: signal(SignalKind::terminate()).ok(),
                usr1: signal(SignalKind::user_defined1()).ok(),
            }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// The next stop signal.
    pub async fn recv(&mut self) -> Stop {
        #[cfg(unix)]
        {
            async fn next(s: &mut Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                _ = next(&mut self.int) => Stop::Drain,
                _ = next(&mut self.term) => Stop::Drain,
                _ = next(&mut self.usr1) => Stop::Migrate,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Stop::Drain
        }
    }

    /// The next SIGINT or SIGTERM (a repeated SIGUSR1 is ignored: the migration is on).
    pub async fn recv_stop(&mut self) {
        while self.recv().await != Stop::Drain {}
    }
}

/// The pid file of the supernode serving `data_dir`.
pub fn pid_path(data_dir: &Path) -> PathBuf {
    data_dir.join("supernode.pid")
}

/// This process's pid file; removed when dropped.
pub struct PidFile(PathBuf);

impl PidFile {
    /// Writes this process's id to [`pid_path`].
    pub fn write(data_dir: &Path) -> anyhow::Result<Self> {
        let path = pid_path(data_dir);
        std::fs::write(&path, format!("{}\n", std::process::id()))
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(Self(path))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `supernode drain [--migrate]`: signals the supernode serving `data_dir` (SIGTERM, or
/// SIGUSR1 with `migrate`).
pub fn send(data_dir: &Path, migrate: bool) -> anyhow::Result<()> {
    let path = pid_path(data_dir);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading {} (is a supernode running with this data directory?)",
            path.display()
        )
    })?;
    let pid: i32 = text
        .trim()
        .parse()
        .with_context(|| format!("{} does not hold a process id", path.display()))?;
    #[cfg(unix)]
    {
        use nix::sys::signal::{Signal, kill};
        use nix::unistd::Pid;
        let sig = if migrate {
            Signal::SIGUSR1
        } else {
            Signal::SIGTERM
        };
        kill(Pid::from_raw(pid), sig)
            .with_context(|| format!("signalling supernode process {pid} (stale pid file?)"))?;
        println!(
            "supernode: sent {sig} to process {pid}: draining{}",
            if migrate {
                " and moving its endpoints to other nodes"
            } else {
                ""
            }
        );
        Ok(())
    }
    #[cfg(not(unix))]
    {
        let _ = (pid, migrate);
        anyhow::bail!("supernode drain needs a Unix system")
    }
}
