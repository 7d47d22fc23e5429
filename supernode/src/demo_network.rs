//! `supernode demo --nodes N` (N ≥ 2): one real call across a local network of supernodes.
//!
//! 1. Starts a `nats-server` with JetStream (Debian's package; a clear message when it is
//!    not installed) on a free loopback port, in a fresh temporary directory.
//! 2. Creates a partner in one shared database (SQLite file) and starts N `supernode run`
//!    processes (this executable) on it, each a node of the network (`node-1` … `node-N`),
//!    and waits until every node sees N live nodes.
//! 3. Creates two accounts; Bob's `edge` logs in on the last node, Alice's on the first, and
//!    Alice calls Bob: audio and video cross the nodes over a relay-to-relay trunk.
//! 4. Prints both call reports and a verdict, as the one-node demo does, and fails when
//!    either side fails or when the media did not go through both nodes' relays.
//!
//! Every child process is killed on every path; the directory is removed unless
//! `--keep-data`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

use crate::cli::DemoArgs;
use crate::demo::{
    DemoPair, Guard, check, collect, edge_path, last_json, make_pair, metric, pretty, relay_lines,
    say,
};

/// `nats-server` on `PATH` (or in `/usr/sbin`, where Debian puts it).
fn nats_server() -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|d| d.join("nats-server"))
        .find(|p| p.is_file())
        .context(
            "`supernode demo --nodes` needs `nats-server` (NATS with JetStream) and found none on \
             PATH or in /usr/sbin: install it (Debian/Ubuntu: `apt-get install nats-server`), or \
             run `supernode demo` for one node",
        )
}

fn free_tcp_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Runs the network demo.
pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let nats = nats_server()?;
    let edge = edge_path(args.edge.as_deref())?;
    let me = std::env::current_exe().context("locating this executable")?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    let dir =
        std::env::temp_dir().join(format!("supernode-demo-net-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let r = demo(&args, &nats, &me, &edge, &dir);
    if args.keep_data {
        say(&format!("data kept in {}", dir.display()));
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    r
}

fn demo(args: &DemoArgs, nats: &Path, me: &Path, edge: &Path, dir: &Path) -> anyhow::Result<()> {
    let mut guard = Guard::default();
    let n = usize::from(args.nodes);
    say(&format!(
        "a network of {n} supernodes; data in {}",
        dir.display()
    ));

    // NATS with JetStream.
    let port = free_tcp_port()?;
    let nats_url = format!("nats://127.0.0.1:{port}");
    let child = Command::new(nats)
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(dir.join("nats"))
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(dir.join("nats.log"))?))
        .spawn()
        .with_context(|| format!("starting {}", nats.display()))?;
    guard.add("nats-server", child);
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if t0.elapsed() > Duration::from_secs(10) {
            bail!("nats-server did not start (see nats.log with --keep-data)");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    say(&format!("nats-server (JetStream) at {nats_url}"));

    // The partner, in the database every node shares.
    let db = format!("sqlite://{}/shared.db", dir.display());
    let out = Command::new(me)
        .args(["admin", "--data-dir"])
        .arg(dir)
        .args(["partner", "create", "demo-partner"])
        .env_remove("SUPERNODE_CONFIG")
        .env("SUPERNODE_DATABASE_URL", &db)
        .output()
        .context("running supernode admin")?;
    if !out.status.success() {
        bail!(
            "supernode admin failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let partner: Value = serde_json::from_slice(&out.stdout).context("admin output")?;
    let api_key = partner["api_key"]
        .as_str()
        .context("no api_key from admin")?
        .to_owned();

    // The nodes.
    let mut bases = Vec::new();
    let mut pids = Vec::new();
    for i in 1..=n {
        let ndir = dir.join(format!("node-{i}"));
        std::fs::create_dir_all(&ndir)?;
        let mut child = Command::new(me)
            .args(["run", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&ndir)
            .env_remove("SUPERNODE_CONFIG")
            .env("SUPERNODE_DATABASE_URL", &db)
            .env("SUPERNODE_NATS_URL", &nats_url)
            .env("SUPERNODE_NODE_ID", format!("node-{i}"))
            .env("SUPERNODE_DRAIN_SECONDS", "2")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(
                ndir.join("supernode.log"),
            )?))
            .spawn()
            .context("starting supernode run")?;
        let stdout = child.stdout.take().context("supernode stdout")?;
        pids.push(guard.add(&format!("node-{i}"), child));
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("supernode: listening on http://")
                    && let Ok(a) = rest.trim().parse::<SocketAddr>()
                {
                    let _ = tx.send(a);
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .with_context(|| format!("node-{i} did not start (see its supernode.log)"))?;
        say(&format!("node-{i} listening on http://{addr}"));
        bases.push(format!("http://{addr}"));
    }

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let http = reqwest::Client::new();
    let view = |base: &str| -> Option<Value> {
        rt.block_on(async {
            http.get(format!("{base}/v1/network"))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()
        })
    };
    let wait_view = |what: &str, f: &dyn Fn(&Value) -> bool| -> anyhow::Result<()> {
        let t0 = Instant::now();
        for base in &bases {
            while !view(base).is_some_and(|v| f(&v)) {
                if t0.elapsed() > Duration::from_secs(30) {
                    bail!("{what}: not within 30 s at {base}");
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(())
    };
    wait_view("every node sees the others", &|v| {
        v["live"].as_array().is_some_and(|l| l.len() == n)
    })?;
    say(&format!("every node sees {n} live nodes"));

    let DemoPair {
        bob,
        alice_token: alice_tok,
        bob_token: bob_tok,
        ..
    } = rt.block_on(make_pair(&http, &bases[0], &api_key))?;

    let secs = args.seconds.max(2);
    let spawn_edge = |base: &str, role: &[&str], token: &str, seed: &str, peer_seed: &str| {
        Command::new(edge)
            .arg("--server")
            .arg(base)
            .arg("--token")
            .arg(token)
            .args(role)
            .args(["--report-json", "--duration"])
            .arg(format!("{secs}s"))
            .args(["--seed", seed, "--peer-seed", peer_seed])
            .args(["--media-bind", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
    };
    let (first, last) = (bases[0].clone(), bases[n - 1].clone());
    let mut callee = spawn_edge(
        &last,
        &["answer", "--auto-accept", "--wait", "60s"],
        &bob_tok,
        "2",
        "1",
    )
    .context("starting edge answer")?;
    let callee_err = relay_lines("bob", callee.stderr.take().context("stderr")?);
    let callee_out = collect(callee.stdout.take().context("stdout")?);
    let ci = guard.add("edge answer", callee);
    say(&format!("Bob's edge logs in on node-{n}"));
    wait_view("Bob is in every node's directory", &|v| {
        v["directory_records"].as_u64().unwrap_or(0) >= 1
    })?;
    say(&format!(
        "Alice's edge, on node-1, calls Bob: {secs} s of Opus audio + H.264 video; each edge \
         talks to its own node's relay, the relays to each other over an SRTP trunk"
    ));
    let mut caller = spawn_edge(&first, &["call", bob.as_str()], &alice_tok, "1", "2")
        .context("starting edge call")?;
    let caller_err = relay_lines("alice", caller.stderr.take().context("stderr")?);
    let caller_out = collect(caller.stdout.take().context("stdout")?);
    let ki = guard.add("edge call", caller);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs + 40) {
        if let Ok(Some(_)) = guard.children[ki].1.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_secs(2));
        let legs: Vec<String> = bases
            .iter()
            .map(|b| {
                metric(&rt, &http, b, "supernode_relay_legs").map_or("?".into(), |x| format!("{x}"))
            })
            .collect();
        say(&format!(
            "t+{:>2} s: relay legs per node {}",
            start.elapsed().as_secs(),
            legs.join("/")
        ));
    }
    let caller_status = guard.wait(ki, Duration::from_secs(5));
    let callee_status = guard.wait(ci, Duration::from_secs(20));
    drop((caller_err, callee_err));
    let caller_report = last_json(
        &caller_out
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_default(),
    );
    let callee_report = last_json(
        &callee_out
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_default(),
    );
    let forwarded: Vec<f64> = bases
        .iter()
        .map(|b| metric(&rt, &http, b, "supernode_relay_packets_forwarded_total").unwrap_or(0.0))
        .collect();
    for &i in pids.iter().rev() {
        let _ = Command::new("kill")
            .args(["-TERM", &guard.pid(i).to_string()])
            .status();
    }
    for &i in &pids {
        let _ = guard.wait(i, Duration::from_secs(10));
    }
    say("nodes stopped (SIGTERM)");

    println!();
    println!("== Alice (caller, node-1) report ==");
    println!("{}", pretty(&caller_report));
    println!("== Bob (callee, node-{n}) report ==");
    println!("{}", pretty(&callee_report));
    println!();
    let mut problems = Vec::new();
    for (who, st, rep) in [
        ("Alice", caller_status, &caller_report),
        ("Bob", callee_status, &callee_report),
    ] {
        check(who, st, rep, &mut problems);
    }
    for (i, f) in [(1, forwarded[0]), (n, forwarded[n - 1])] {
        if f <= 0.0 {
            problems.push(format!("node-{i}'s relay forwarded nothing"));
        }
    }
    let per_node: Vec<String> = forwarded.iter().map(|f| format!("{f}")).collect();
    if problems.is_empty() {
        println!(
            "VERDICT: PASS — {secs} s audio+video call from node-1 to node-{n} over a trunk; \
             packets forwarded per node {}",
            per_node.join("/")
        );
        Ok(())
    } else {
        println!("VERDICT: FAIL — {}", problems.join("; "));
        bail!("the network demo call failed")
    }
}
