//! Helpers of the end-to-end tests: a real `supernode run` process on free loopback ports in a
//! fresh data directory, REST and `/metrics` helpers, real `edge` processes.
//!
//! The `edge` executable: `$SUPERNODE_EDGE_BIN` if set, else `edge` next to the `supernode`
//! executable under test (`cargo test --workspace` builds it); when it is missing the
//! helpers build it once with `cargo build -p supernode-edge --bin edge` (same profile and
//! target directory), as they do when a file under `edge/src` is newer than it, so
//! `cargo test -p supernode` works alone too.
#![allow(dead_code)]

pub mod web;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The supernode under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_supernode");

/// The `edge` executable (built on first use when missing).
pub fn edge_bin() -> PathBuf {
    static EDGE: OnceLock<PathBuf> = OnceLock::new();
    EDGE.get_or_init(|| {
        if let Some(p) = std::env::var_os("SUPERNODE_EDGE_BIN") {
            return PathBuf::from(p);
        }
        let bin = Path::new(BIN);
        let edge = bin.with_file_name("edge");
        if !edge.exists() || stale(&edge) {
            let profile_dir = bin.parent().unwrap();
            let target = profile_dir.parent().unwrap();
            let release = profile_dir.file_name().is_some_and(|n| n == "release");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/venv/bin");
            let path = format!(
                "{}:{}",
                tools.display(),
                std::env::var("PATH").unwrap_or_default()
            );
            let mut c = Command::new(cargo);
            c.args([
                "build",
                "-p",
                "supernode-edge",
                "--bin",
                "edge",
                "--target-dir",
            ])
            .arg(target)
            .env("PATH", path);
            if release {
                c.arg("--release");
            }
            let st = c.status().expect("running cargo to build edge");
            assert!(st.success(), "building the edge binary failed");
        }
        edge
    })
    .clone()
}

/// Whether a source file of the edge is newer than the executable (a `cargo test -p
/// supernode` does not rebuild the edge binary).
fn stale(edge: &Path) -> bool {
    fn newest(dir: &Path) -> std::time::SystemTime {
        let mut t = std::time::UNIX_EPOCH;
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            let m = if p.is_dir() {
                newest(&p)
            } else {
                e.metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH)
            };
            t = t.max(m);
        }
        t
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../edge/src");
    let built = std::fs::metadata(edge)
        .and_then(|m| m.modified())
        .unwrap_or(std::time::UNIX_EPOCH);
    newest(&src) > built
}

/// A fresh data directory, removed when the last of its holders is dropped: the test's
/// [`DataDir`] and every [`Node`] started on it (a helper may return a node and drop the
/// directory's handle; the node keeps the directory until it stops).
pub fn data_dir(tag: &str) -> DataDir {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let d = std::env::temp_dir().join(format!("sn_e2e_{tag}_{}_{n}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let inner = Arc::new(DirGuard(d.clone()));
    dirs().lock().unwrap().insert(d, Arc::downgrade(&inner));
    DataDir(inner)
}

/// A test data directory (see [`data_dir`]); derefs to its path.
#[derive(Clone)]
pub struct DataDir(Arc<DirGuard>);

struct DirGuard(PathBuf);

impl Drop for DirGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        if let Ok(mut m) = dirs().lock() {
            m.remove(&self.0);
        }
    }
}

impl std::ops::Deref for DataDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0.0
    }
}

impl AsRef<Path> for DataDir {
    fn as_ref(&self) -> &Path {
        &self.0.0
    }
}

/// The live data directories of this test process, so that [`Node::start`] can hold the
/// one it runs on.
fn dirs() -> &'static Mutex<HashMap<PathBuf, Weak<DirGuard>>> {
    static DIRS: OnceLock<Mutex<HashMap<PathBuf, Weak<DirGuard>>>> = OnceLock::new();
    DIRS.get_or_init(Default::default)
}

/// Runs `supernode admin … partner create NAME [--relay]`; returns (id, api key).
pub fn partner(dir: &Path, name: &str, relay: bool) -> (String, String) {
    let mut c = Command::new(BIN);
    c.args(["admin", "--data-dir"])
        .arg(dir)
        .args(["partner", "create", name]);
    if relay {
        c.arg("--relay");
    }
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        v["id"].as_str().unwrap().to_owned(),
        v["api_key"].as_str().unwrap().to_owned(),
    )
}

/// A running supernode, killed when dropped.
pub struct Node {
    /// The process.
    pub child: Child,
    /// HTTP address.
    pub addr: SocketAddr,
    /// Whether it serves HTTPS (`tls_cert`/`tls_key` set).
    pub https: bool,
    /// Data directory.
    pub dir: PathBuf,
    /// Lines it printed on stdout after the address.
    pub stdout: mpsc::Receiver<String>,
    /// Its relay's port range (inclusive).
    pub relay_ports: (u16, u16),
    /// Keeps the data directory (when made by [`data_dir`]) while the node runs.
    _dir_guard: Option<DataDir>,
}

impl Node {
    /// Starts `supernode run` on `dir` with extra `SUPERNODE_*` settings.
    pub fn start(dir: &Path, env: &[(&str, &str)]) -> Node {
        // A relay port range of its own per node, below the ephemeral range (edge sockets).
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 10;
        let lo = 20_000 + ((std::process::id() % 100) * 10 + n) * 12;
        let relay_ports = (lo as u16, lo as u16 + 11);
        let (lo, hi) = (lo.to_string(), (lo + 11).to_string());
        let mut c = Command::new(BIN);
        c.env("SUPERNODE_RELAY_PORT_MIN", &lo)
            .env("SUPERNODE_RELAY_PORT_MAX", &hi);
        c.args(["run", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .env_remove("SUPERNODE_CONFIG")
            .env("SUPERNODE_RATE_LIMIT_PER_SECOND", "1000")
            .env("SUPERNODE_RATE_LIMIT_BURST", "1000")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("supernode.log")).unwrap(),
            ));
        for (k, v) in env {
            c.env(k, v);
        }
        let mut child = c.spawn().unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        let (addr, https) = loop {
            let l = rx
                .recv_timeout(Duration::from_secs(30))
                .expect("supernode did not print its address");
            if let Some(a) = l.strip_prefix("supernode: listening on http://") {
                break (a.trim().parse().unwrap(), false);
            }
            if let Some(a) = l.strip_prefix("supernode: listening on https://") {
                break (a.trim().parse().unwrap(), true);
            }
        };
        Node {
            child,
            addr,
            https,
            dir: dir.to_owned(),
            stdout: rx,
            relay_ports,
            _dir_guard: dirs()
                .lock()
                .unwrap()
                .get(dir)
                .and_then(Weak::upgrade)
                .map(DataDir),
        }
    }

    /// `http://ADDR` (`https://ADDR` when it serves HTTPS).
    pub fn base(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Sends SIGTERM.
    pub fn term(&self) {
        let st = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    }

    /// The value of an unlabelled `/metrics` series.
    pub async fn metric(&self, name: &str) -> f64 {
        let text = reqwest::get(format!("{}/metrics", self.base()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no series {name} in /metrics"))
    }

    /// Waits until `name` equals `want` (up to `limit`); returns the last value.
    pub async fn wait_metric(&self, name: &str, want: f64, limit: Duration) -> f64 {
        let end = Instant::now() + limit;
        loop {
            let v = self.metric(name).await;
            if v == want || Instant::now() >= end {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `name` equals `want` (up to 20 s) and fails the test if it never does.
    pub async fn expect_metric(&self, name: &str, want: f64) {
        let got = self.wait_metric(name, want, Duration::from_secs(20)).await;
        assert_eq!(got, want, "{name} after waiting 20 s");
    }

    /// Waits until `name` is at least `min` (up to 20 s) and fails the test if it never is.
    pub async fn expect_metric_at_least(&self, name: &str, min: f64) {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            let v = self.metric(name).await;
            if v >= min {
                return;
            }
            assert!(
                Instant::now() < end,
                "{name} stayed at {v}, below {min}, for 20 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// An answered audio-only call of `duration` (e.g. `"5s"`) between two new accounts,
    /// Alice calling Bob, both `edge` processes: `(caller, callee)` once the supernode counts
    /// the call.
    pub async fn audio_call(&self, key: &str, duration: &str) -> (Edge, Edge) {
        let (_, alice) = self.account(key, "Alice").await;
        let (bob_id, bob) = self.account(key, "Bob").await;
        let callee = Edge::signaled(
            self,
            &bob,
            &[
                "answer",
                "--auto-accept",
                "--no-video",
                "--duration",
                duration,
            ],
        );
        self.expect_metric("supernode_endpoints", 1.0).await;
        let caller = Edge::signaled(
            self,
            &alice,
            &["call", &bob_id, "--no-video", "--duration", duration],
        );
        self.expect_metric("supernode_calls", 1.0).await;
        (caller, callee)
    }

    /// A new account and a login token, through the partner REST API.
    pub async fn account(&self, key: &str, name: &str) -> (String, String) {
        supernode_testkit::rest::account_and_token(
            &self.base(),
            key,
            &json!({ "display_name": name }),
        )
        .await
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running edge process, killed when dropped.
pub struct Edge {
    /// The process.
    pub child: Option<Child>,
    out: Option<mpsc::Receiver<String>>,
}

impl Edge {
    /// Starts `edge --server … --token … ARGS --report-json`.
    pub fn signaled(node: &Node, token: &str, args: &[&str]) -> Edge {
        let mut c = Command::new(edge_bin());
        c.args(["--server", &node.base(), "--token", token])
            .args(args)
            .args(["--report-json", "--media-bind", "127.0.0.1:0"]);
        Self::spawn(c)
    }

    /// Starts `edge ARGS --report-json` (e.g. `media …`).
    pub fn plain(args: &[&str]) -> Edge {
        let mut c = Command::new(edge_bin());
        c.args(args).arg("--report-json");
        Self::spawn(c)
    }

    fn spawn(mut c: Command) -> Edge {
        let mut child = c
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut BufReader::new(out), &mut s);
            let _ = tx.send(s);
        });
        Edge {
            child: Some(child),
            out: Some(rx),
        }
    }

    /// Writes a line to its stdin (e.g. the answer to `accept? [y/N]`).
    pub fn say(&mut self, line: &str) {
        use std::io::Write as _;
        let stdin = self.child.as_mut().unwrap().stdin.as_mut().unwrap();
        let _ = writeln!(stdin, "{line}");
        let _ = stdin.flush();
    }

    /// Sends SIGKILL.
    pub fn kill(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
        }
    }

    /// Waits (up to `limit`) for the exit; returns the exit code and the JSON report.
    pub fn finish(&mut self, limit: Duration) -> (Option<i32>, Value) {
        let mut child = self.child.take().unwrap();
        let end = Instant::now() + limit;
        let code = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s.code();
            }
            if Instant::now() >= end {
                let _ = child.kill();
                let _ = child.wait();
                panic!("edge did not finish within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let text = self
            .out
            .take()
            .unwrap()
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_default();
        let v = text
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str::<Value>(l).ok())
            .unwrap_or(Value::Null);
        (code, v)
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Creates a relay REST session; returns its id and legs' local addresses.
pub async fn relay_session(node: &Node, key: &str, legs: Value) -> (String, Vec<SocketAddr>) {
    let r = reqwest::Client::new()
        .post(format!("{}/v1/relay/sessions", node.base()))
        .bearer_auth(key)
        .json(&json!({ "legs": legs }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    let addrs = v["legs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["local"].as_str().unwrap().parse().unwrap())
        .collect();
    (v["id"].as_str().unwrap().to_owned(), addrs)
}

/// A free UDP port on loopback (bound and released).
pub fn free_port() -> u16 {
    supernode_testkit::net::free_udp_port()
}

pub fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
