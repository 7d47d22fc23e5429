//! `sigbench churn` mode: creates and releases many calls with real relay transports, over
//! the real WebSocket path (invite/accept/hangup between logged-in endpoints) and the relay
//! REST path (`POST`/`DELETE /v1/relay/sessions`), against a real `supernode` process, and
//! checks that what the node holds comes back to its baseline afterwards: relay sessions and
//! transports (`/metrics`), UDP ports (socket descriptors) and file descriptors of the
//! process (`/proc/PID/fd`); resident memory is reported (the allocator may keep some).
//!
//! The baseline is taken after the endpoints have logged in and before the first call; the
//! final snapshot when the relay gauges are back at the baseline (releases are
//! asynchronous), or after `--settle-seconds`. Exit status 1 if anything did not come back.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::relay::{Client, account, one_call, start_with};

/// Options of the churn mode.
#[derive(Debug, Clone, clap::Args)]
pub struct ChurnArgs {
    /// The `supernode` executable.
    #[arg(long = "supernode")]
    pub supernode: PathBuf,
    /// Calls to set up and tear down over WebSocket (each: two relay transports).
    #[arg(long, default_value_t = 10_000)]
    pub calls: u64,
    /// Relay REST sessions (two legs each) to create and delete meanwhile.
    #[arg(long, default_value_t = 2_000)]
    pub rest_sessions: u64,
    /// Caller/callee pairs working at once.
    #[arg(long, default_value_t = 8)]
    pub pairs: usize,
    /// Longest wait for the relay gauges to come back after the last call.
    #[arg(long, default_value_t = 15)]
    pub settle_seconds: u64,
}

/// What the node holds at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Snapshot {
    sessions: f64,
    legs: f64,
    fds: usize,
    sockets: usize,
    rss_kib: u64,
}

fn proc_counts(pid: u32) -> Result<(usize, usize, u64)> {
    let mut fds = 0;
    let mut sockets = 0;
    for e in std::fs::read_dir(format!("/proc/{pid}/fd"))?.flatten() {
        fds += 1;
        if std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().starts_with("socket:")) {
            sockets += 1;
        }
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Ok((fds, sockets, rss))
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

async fn snapshot(http: &reqwest::Client, base: &str, pid: u32) -> Result<Snapshot> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let (fds, sockets, rss_kib) = proc_counts(pid)?;
    Ok(Snapshot {
        sessions: metric(&text, "supernode_relay_sessions").context("relay sessions gauge")?,
        legs: metric(&text, "supernode_relay_legs").context("relay legs gauge")?,
        fds,
        sockets,
        rss_kib,
    })
}

async fn rest_session(http: &reqwest::Client, base: &str, key: &str) -> Result<()> {
    let r = http
        .post(format!("{base}/v1/relay/sessions"))
        .bearer_auth(key)
        .json(&json!({"legs": [{}, {}]}))
        .send()
        .await?;
    if r.status() != reqwest::StatusCode::CREATED {
        bail!(
            "create: {} {}",
            r.status(),
            r.text().await.unwrap_or_default()
        );
    }
    let v: Value = r.json().await?;
    let id = v["id"].as_str().context("session id")?;
    let r = http
        .delete(format!("{base}/v1/relay/sessions/{id}"))
        .bearer_auth(key)
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("delete: {}", r.status());
    }
    Ok(())
}

async fn churn(bin: &Path, a: &ChurnArgs) -> Result<bool> {
    let (node, key) = start_with(bin, 0, &["--relay"])?;
    let pid = node.child.id();
    let http = reqwest::Client::new();
    let base = node.base.clone();
    let ws_url = format!("{}/v1/ws", base.replacen("http://", "ws://", 1));
    let mut pairs = Vec::new();
    for _ in 0..a.pairs.max(1) {
        let (_, ta) = account(&http, &base, &key).await?;
        let (b, tb) = account(&http, &base, &key).await?;
        pairs.push((
            Client::login(&ws_url, &ta).await?,
            Client::login(&ws_url, &tb).await?,
            b,
        ));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = snapshot(&http, &base, pid).await?;

    let t0 = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let callers: Vec<_> = pairs
        .into_iter()
        .map(|(mut ca, mut cb, to)| {
            let (next, failed, total) = (next.clone(), failed.clone(), a.calls);
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < total {
                    if !one_call(&mut ca, &mut cb, &to).await? {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok::<_, anyhow::Error>(())
            })
        })
        .collect();
    let rest = {
        let (http, base, key, n) = (http.clone(), base.clone(), key.clone(), a.rest_sessions);
        tokio::spawn(async move {
            for _ in 0..n {
                rest_session(&http, &base, &key).await?;
            }
            Ok::<_, anyhow::Error>(())
        })
    };
    for t in callers {
        t.await??;
    }
    rest.await??;
    let secs = t0.elapsed().as_secs_f64();

    // Releases are asynchronous: wait for the gauges to come back.
    let deadline = Instant::now() + Duration::from_secs(a.settle_seconds);
    let mut after = snapshot(&http, &base, pid).await?;
    while (after.legs != before.legs || after.sessions != before.sessions || after.fds > before.fds)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
        after = snapshot(&http, &base, pid).await?;
    }
    let back = after.legs == before.legs
        && after.sessions == before.sessions
        && after.fds <= before.fds
        && after.sockets <= before.sockets;
    println!(
        "sigbench churn: {} calls over WebSocket ({} failed) and {} relay REST sessions in {:.1} s ({:.0} calls/s), {} pairs",
        a.calls,
        failed.load(Ordering::Relaxed),
        a.rest_sessions,
        secs,
        a.calls as f64 / secs,
        a.pairs
    );
    println!(
        "{:<10} {:>9} {:>9} {:>6} {:>8} {:>10}",
        "", "sessions", "legs", "fds", "sockets", "rss_kib"
    );
    for (name, s) in [("baseline", before), ("after", after)] {
        println!(
            "{:<10} {:>9} {:>9} {:>6} {:>8} {:>10}",
            name, s.sessions, s.legs, s.fds, s.sockets, s.rss_kib
        );
    }
    println!(
        "{}",
        json!({
            "calls": a.calls, "failed_calls": failed.load(Ordering::Relaxed),
            "rest_sessions": a.rest_sessions, "seconds": secs,
            "baseline": {"sessions": before.sessions, "legs": before.legs, "fds": before.fds,
                         "sockets": before.sockets, "rss_kib": before.rss_kib},
            "after": {"sessions": after.sessions, "legs": after.legs, "fds": after.fds,
                      "sockets": after.sockets, "rss_kib": after.rss_kib},
            "back_to_baseline": back,
        })
    );
    if !back {
        eprintln!("sigbench churn: the node did not come back to its baseline");
    }
    Ok(back)
}

/// Runs the mode; `Ok(false)` when the node did not come back to its baseline.
pub async fn run(a: ChurnArgs) -> Result<bool> {
    churn(&a.supernode, &a)
        .await
        .with_context(|| a.supernode.display().to_string())
}
