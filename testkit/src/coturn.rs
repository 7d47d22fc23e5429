//! A real TURN server on loopback for the browsers' relay-only tests (Debian's `coturn`,
//! `turnserver`), with TURN-REST authentication (`use-auth-secret`,
//! `static-auth-secret`): exactly what a deployment runs beside a supernode.
//!
//! [`Coturn::start`] picks a free UDP/TCP listening port and a relay port range, writes a
//! configuration into a temporary directory and starts `turnserver -c` on 127.0.0.1 with
//! loopback peers allowed (the relay under test is on loopback), then waits until the port
//! is bound. Dropping it kills the server and removes the directory. When `turnserver` is
//! not installed, [`Coturn::start`] gives `None` after [`crate::external::unavailable`]
//! (`SKIP:`, or a panic under `SUPERNODE_REQUIRE_EXTERNAL=1`).
//!
//! ```no_run
//! let Some(turn) = supernode_testkit::coturn::Coturn::start("s3cret") else {
//!     return; // SKIP printed
//! };
//! let url = turn.url(); // "turn:127.0.0.1:PORT?transport=udp"
//! // … give the supernode `turn_urls = url`, `turn_secret = "s3cret"` …
//! assert!(turn.log().contains("session"));
//! ```

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::external::unavailable;
use crate::net::{free_udp_port, udp_port_bound, wait_udp_bound};

/// The server binary (Debian package `coturn`).
pub const TURNSERVER: &str = "turnserver";

/// Whether `turnserver` can be run here.
pub fn installed() -> bool {
    Command::new(TURNSERVER)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A running coturn (killed and its directory removed on drop).
#[derive(Debug)]
pub struct Coturn {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Coturn {
    /// Starts coturn on 127.0.0.1 accepting TURN-REST credentials signed with `secret`.
    /// `None` (after `SKIP:`) when `turnserver` is not installed.
    pub fn start(secret: &str) -> Option<Self> {
        if !installed() {
            unavailable(format!(
                "{TURNSERVER} is not installed (Debian: apt-get install coturn)"
            ));
            return None;
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "supernode-coturn-{}-{}-{nanos}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create coturn's temporary directory");
        // A port free for both UDP and TCP (coturn listens on both).
        let port = loop {
            let p = free_udp_port();
            if TcpListener::bind(("127.0.0.1", p)).is_ok() && !udp_port_bound(p) {
                break p;
            }
        };
        // Relay ports: a range of its own per process, inside the ephemeral range.
        let lo = 50_000 + (std::process::id() % 150) as u16 * 100;
        let conf = format!(
            "listening-ip=127.0.0.1\n\
             relay-ip=127.0.0.1\n\
             listening-port={port}\n\
             min-port={lo}\n\
             max-port={hi}\n\
             realm=supernode.test\n\
             use-auth-secret\n\
             static-auth-secret={secret}\n\
             fingerprint\n\
             allow-loopback-peers\n\
             no-tls\n\
             no-dtls\n\
             no-cli\n\
             no-stdout-log\n\
             simple-log\n\
             log-file={log}\n\
             pidfile={pid}\n\
             userdb={db}\n\
             verbose\n",
            hi = lo + 99,
            log = dir.join("turn.log").display(),
            pid = dir.join("turn.pid").display(),
            db = dir.join("turndb").display(),
        );
        let conf_path = dir.join("turnserver.conf");
        std::fs::write(&conf_path, conf).expect("write coturn's configuration");
        let child = Command::new(TURNSERVER)
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("stderr.log")).expect("coturn's stderr file"),
            ))
            .spawn()
            .expect("start turnserver");
        let mut turn = Self { child, dir, port };
        if !wait_udp_bound(port, Duration::from_secs(20)) {
            let log = turn.log();
            let _ = turn.child.kill();
            panic!("turnserver did not bind 127.0.0.1:{port} within 20 s; its log:\n{log}");
        }
        Some(turn)
    }

    /// The listening port (UDP and TCP) on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `turn:127.0.0.1:PORT?transport=udp`.
    pub fn url(&self) -> String {
        format!("turn:127.0.0.1:{}?transport=udp", self.port)
    }

    /// What coturn logged so far (its log file, whose name coturn may suffix with a date,
    /// and its stderr).
    pub fn log(&self) -> String {
        let mut out = String::new();
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            let mut names: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("turn") && n.ends_with(".log"))
                        || p.file_name().is_some_and(|n| n == "stderr.log")
                })
                .collect();
            names.sort();
            for p in names {
                out.push_str(&std::fs::read_to_string(&p).unwrap_or_default());
            }
        }
        out
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
