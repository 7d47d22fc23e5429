//! A real NATS cluster with JetStream for the network tests (Debian's `nats-server`, 2.9).
//!
//! [`NatsCluster::start`] starts `n` servers on free loopback ports, each with JetStream and
//! its own store directory under one temporary directory, routed to each other as one
//! cluster, and waits until every server answers `/healthz` (JetStream ready). Dropping the
//! cluster kills the servers and removes the directory, so a failing test leaves nothing
//! behind. [`NatsCluster::kill`], [`NatsCluster::restart`], [`NatsCluster::stop_all`] and
//! [`NatsCluster::start_all`] are the failure drills (a restarted server keeps its ports and
//! store).
//!
//! When `nats-server` is not installed, [`NatsCluster::start`] gives `None` after
//! [`crate::external::unavailable`] (`SKIP:`, or a panic under
//! `SUPERNODE_REQUIRE_EXTERNAL=1`).
//!
//! ```no_run
//! let Some(cluster) = supernode_testkit::nats::NatsCluster::start(3) else {
//!     return; // SKIP printed
//! };
//! let urls: Vec<String> = cluster.client_urls();
//! // … connect clients to `urls` …
//! drop(cluster); // servers killed, store removed
//! ```

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::external::unavailable;

/// The server binary (Debian package `nats-server`).
pub const NATS_SERVER: &str = "nats-server";

/// How long a server may take to become healthy (JetStream meta leader elected): generous,
/// since three servers electing on a loaded 2-core machine took more than 30 s once.
const READY_LIMIT: Duration = Duration::from_secs(90);

/// Whether `nats-server` can be run here.
pub fn installed() -> bool {
    Command::new(NATS_SERVER)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral TCP port on 127.0.0.1")
        .port()
}

/// One server of the cluster.
#[derive(Debug)]
struct Server {
    name: String,
    client_port: u16,
    cluster_port: u16,
    http_port: u16,
    store: PathBuf,
    child: Option<Child>,
}

/// A running NATS cluster (killed and removed on drop).
#[derive(Debug)]
pub struct NatsCluster {
    dir: PathBuf,
    servers: Vec<Server>,
    /// Credentials every server requires (`user`, `password`), if any.
    auth: Option<(String, String)>,
    /// One cluster at a time per test process (tests of a binary run in parallel; several
    /// clusters at once overload a small machine and make elections slow).
    _turn: MutexGuard<'static, ()>,
}

static TURN: Mutex<()> = Mutex::new(());

static SEQ: AtomicU32 = AtomicU32::new(0);

fn temp_dir() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    std::env::temp_dir().join(format!(
        "supernode-nats-{}-{}-{nanos}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ))
}

impl NatsCluster {
    /// Starts `n` servers (1 = a single server, no cluster) with JetStream and waits until
    /// all are healthy. `None` (after `SKIP:`) when `nats-server` is not installed.
    pub fn start(n: usize) -> Option<Self> {
        Self::start_with_auth(n, None)
    }

    /// Like [`Self::start`], with every server requiring `user`/`password`.
    pub fn start_with_auth(n: usize, auth: Option<(&str, &str)>) -> Option<Self> {
        if !installed() {
            unavailable(format!(
                "{NATS_SERVER} is not installed (Debian: apt-get install nats-server)"
            ));
            return None;
        }
        assert!(n >= 1, "a cluster has at least one server");
        let turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
        let dir = temp_dir();
        std::fs::create_dir_all(&dir).expect("create the cluster's temporary directory");
        let servers = (0..n)
            .map(|i| Server {
                name: format!("nats-{i}"),
                client_port: free_tcp_port(),
                cluster_port: free_tcp_port(),
                http_port: free_tcp_port(),
                store: dir.join(format!("store-{i}")),
                child: None,
            })
            .collect();
        let mut cluster = Self {
            dir,
            servers,
            auth: auth.map(|(u, p)| (u.to_owned(), p.to_owned())),
            _turn: turn,
        };
        for i in 0..n {
            cluster.spawn(i);
        }
        cluster.wait_ready();
        Some(cluster)
    }

    fn routes(&self) -> String {
        self.servers
            .iter()
            .map(|s| format!("nats://127.0.0.1:{}", s.cluster_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn spawn(&mut self, i: usize) {
        let routes = self.routes();
        let clustered = self.servers.len() > 1;
        let auth = self.auth.clone();
        let log = self.dir.join(format!("nats-{i}.log"));
        let s = &mut self.servers[i];
        let mut c = Command::new(NATS_SERVER);
        c.args(["-a", "127.0.0.1", "-p", &s.client_port.to_string()])
            .args(["-m", &s.http_port.to_string()])
            .args(["-n", &s.name])
            .arg("-js")
            .arg("-sd")
            .arg(&s.store)
            .arg("-l")
            .arg(&log);
        if let Some((user, pass)) = &auth {
            c.args(["--user", user, "--pass", pass]);
        }
        if clustered {
            c.args([
                "--cluster_name",
                "supernode-test",
                "--cluster",
                &format!("nats://127.0.0.1:{}", s.cluster_port),
                "--routes",
                &routes,
            ]);
        }
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        s.child = Some(c.spawn().expect("start nats-server"));
    }

    /// Waits until every running server is healthy (JetStream ready); panics after 30 s.
    pub fn wait_ready(&self) {
        let end = Instant::now() + READY_LIMIT;
        for (i, s) in self.servers.iter().enumerate() {
            if s.child.is_none() {
                continue;
            }
            while !healthy(s.http_port) {
                assert!(
                    Instant::now() < end,
                    "nats server {i} not healthy within {READY_LIMIT:?} (log: {})",
                    self.dir.join(format!("nats-{i}.log")).display()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// `nats://127.0.0.1:PORT` of every server (running or not).
    pub fn client_urls(&self) -> Vec<String> {
        self.servers
            .iter()
            .map(|s| format!("nats://127.0.0.1:{}", s.client_port))
            .collect()
    }

    /// The client URLs joined with commas (what `SUPERNODE_NATS_URL` takes).
    pub fn url_list(&self) -> String {
        self.client_urls().join(",")
    }

    /// Number of servers.
    pub fn len(&self) -> usize {
        self.servers.len()
    }

    /// Whether the cluster has no server (never: [`Self::start`] needs one).
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    /// The temporary directory (store directories and logs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Kills server `i` at once (`SIGKILL`) and reaps it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.servers[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Restarts server `i` on its old ports and store, and waits until it is healthy.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i);
        self.wait_ready();
    }

    /// Kills every server.
    pub fn stop_all(&mut self) {
        for i in 0..self.servers.len() {
            self.kill(i);
        }
    }

    /// Starts every stopped server again and waits until all are healthy.
    pub fn start_all(&mut self) {
        for i in 0..self.servers.len() {
            if self.servers[i].child.is_none() {
                self.spawn(i);
            }
        }
        self.wait_ready();
    }

    /// Whether server `i` runs.
    pub fn running(&self, i: usize) -> bool {
        self.servers[i].child.is_some()
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        self.stop_all();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `GET /healthz` on the monitoring port answers 200 (2.9: JetStream enabled and current).
fn healthy(http_port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", http_port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_three_server_cluster_starts_and_is_cleaned_up() {
        let Some(mut cluster) = NatsCluster::start(3) else {
            return;
        };
        assert_eq!(cluster.len(), 3);
        let dir = cluster.dir().to_owned();
        assert!(dir.join("store-0").exists() || dir.exists());
        for url in cluster.client_urls() {
            let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
            assert!(TcpStream::connect(("127.0.0.1", port)).is_ok(), "{url}");
        }
        let port0 = cluster.servers[0].client_port;
        cluster.kill(0);
        assert!(!cluster.running(0));
        assert!(TcpStream::connect(("127.0.0.1", port0)).is_err());
        cluster.restart(0);
        assert!(TcpStream::connect(("127.0.0.1", port0)).is_ok());
        let pids: Vec<u32> = cluster
            .servers
            .iter()
            .map(|s| s.child.as_ref().unwrap().id())
            .collect();
        drop(cluster);
        assert!(!dir.exists(), "temporary directory removed");
        for pid in pids {
            assert!(
                !Path::new(&format!("/proc/{pid}")).exists()
                    || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                        .is_ok_and(|s| s.contains(") Z ")),
                "server {pid} killed"
            );
        }
    }
}
