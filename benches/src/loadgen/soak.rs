//! `loadgen --soak SECONDS`: the leak hunt. Each target (`--targets relay,bare`) forwards
//! the 200-call load for SECONDS at `--soak-at` (default 80 %) of the relay's maximum
//! rate, one forwarder for the whole run, while a sample is taken every `--soak-every`
//! seconds: packets delivered and lost in that interval, resident memory and open file
//! descriptors of this process (the relay and the bare forwarder run in it; rtpengine's
//! are its own process's), the forwarder's CPU, and its worker's queue: the bytes waiting
//! in the receive queues of the sockets loadgen sends to (read from `/proc/net/udp` five
//! times a second during the interval: the deepest and the mean) and the datagrams the
//! kernel dropped on them (receive buffer full) in the interval. loadgen runs every
//! forwarder with one worker, so that is the per-worker queue.
//!
//! The verdict, per target: resident memory and descriptors after the warm-up (the first
//! tenth of the run, at least one sample) grow by less than 5 %, and the relay's loss is no
//! more than the bare forwarder's at the same rate.

use std::collections::HashSet;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result};
use supernode_testkit::net::udp_sockets;

use super::traffic::{Load, Shape};
use super::{Args, Forwarder, fresh_forwarder, run_target};

/// One soak interval.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at_s: f64,
    pps: f64,
    expected: u64,
    received: u64,
    rss_kib: u64,
    fds: usize,
    cpu_pct: Option<f64>,
    queue: Queue,
}

/// The forwarder's receive queues over one interval.
#[derive(Debug, Clone, Copy, Default)]
struct Queue {
    /// Deepest total seen, bytes.
    max_bytes: u64,
    /// Mean of the totals seen, bytes.
    mean_bytes: u64,
    /// Datagrams the kernel dropped on the forwarder's sockets.
    drops: u64,
}

/// How often the queue sampler reads `/proc/net/udp`.
const QUEUE_EVERY: Duration = Duration::from_millis(200);

/// Total bytes queued and datagrams dropped on the sockets bound to `ports`.
fn queued(ports: &HashSet<u16>) -> (u64, u64) {
    udp_sockets()
        .iter()
        .filter(|s| ports.contains(&s.local_port))
        .fold((0, 0), |(q, d), s| (q + s.rx_queue, d + s.drops))
}

/// Runs `f` while a thread samples the queues of `ports`; returns what `f` returned and the
/// queue figures of that time.
fn with_queue_sampler<T>(ports: &HashSet<u16>, f: impl FnOnce() -> T) -> (T, Queue) {
    let (stop, stopped) = mpsc::channel::<()>();
    let drops0 = queued(ports).1;
    let (out, (max_bytes, sum, n)) = std::thread::scope(|scope| {
        let sampler = scope.spawn(move || {
            let (mut max, mut sum, mut n) = (0u64, 0u64, 0u64);
            // Samples until told to stop (a message, or the sender dropped).
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(QUEUE_EVERY) {
                let q = queued(ports).0;
                max = max.max(q);
                sum += q;
                n += 1;
            }
            (max, sum, n)
        });
        let out = f();
        drop(stop);
        (out, sampler.join().unwrap_or_default())
    });
    let drops = queued(ports).1.saturating_sub(drops0);
    (
        out,
        Queue {
            max_bytes,
            mean_bytes: sum.checked_div(n).unwrap_or(0),
            drops,
        },
    )
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// The process whose memory and descriptors count for `fwd`.
fn pid_of(fwd: &Forwarder) -> u32 {
    match fwd {
        Forwarder::Rtpengine(r) => r.pid(),
        _ => std::process::id(),
    }
}

fn soak_target(
    args: &Args,
    load: &mut Load,
    target: &str,
    shape: Shape,
    mult: f64,
) -> Result<Vec<Sample>> {
    let (fwd, mut streams) = fresh_forwarder(args, load, target, shape)?;
    let pid = pid_of(&fwd);
    let ports: HashSet<u16> = streams.iter().map(|s| s.to.port()).collect();
    let every = args.soak_every.max(1) as f64;
    let rounds = (args.soak as f64 / every).ceil().max(1.0) as usize;
    let mut out = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let cpu0 = fwd.cpu_ns();
        let (r, queue) = with_queue_sampler(&ports, || {
            load.run(
                &mut streams,
                shape,
                mult,
                every,
                Duration::from_millis(20),
                false,
            )
        });
        let cpu = super::cpu_delta(cpu0, fwd.cpu_ns());
        let s = Sample {
            at_s: (i + 1) as f64 * every,
            pps: r.pps,
            expected: r.expected,
            received: r.received,
            rss_kib: rss_kib(pid),
            fds: fds(pid),
            cpu_pct: cpu.map(|c| 100.0 * c as f64 / r.wall_ns.max(1) as f64),
            queue,
        };
        eprintln!(
            "loadgen: soak {target:13} t={:>6.0}s  {:>8.0} pps  loss {:>7.4}%  rss {:>8} KiB  fds {:>5}  cpu {}  queue max/mean {}/{} B  kernel drops {}",
            s.at_s,
            s.pps,
            loss_pct(s.expected, s.received),
            s.rss_kib,
            s.fds,
            s.cpu_pct
                .map(|c| format!("{c:.0}%"))
                .unwrap_or_else(|| "-".into()),
            s.queue.max_bytes,
            s.queue.mean_bytes,
            s.queue.drops
        );
        out.push(s);
    }
    drop(fwd);
    Ok(out)
}

fn loss_pct(expected: u64, received: u64) -> f64 {
    if expected == 0 {
        0.0
    } else {
        100.0 * expected.saturating_sub(received) as f64 / expected as f64
    }
}

/// Growth (percent) of `f` from the first sample after the warm-up to the last.
fn growth(samples: &[Sample], f: impl Fn(&Sample) -> f64) -> f64 {
    let warm = (samples.len() / 10).max(1).min(samples.len() - 1);
    let (a, b) = (f(&samples[warm]), f(&samples[samples.len() - 1]));
    if a <= 0.0 { 0.0 } else { 100.0 * (b - a) / a }
}

/// Runs the soak over `--targets` and prints the summary; fails if a target could not run.
pub fn run(args: &Args, load: &mut Load, shape: Shape) -> Result<()> {
    let mult = if args.mode == "fixed" {
        args.mult
    } else {
        let row = run_target(args, load, "relay", shape);
        let m = row.max.context("the relay's ramp found no maximum")?;
        m.mult * (m.pps / m.offered_pps).min(1.0) * args.soak_at
    };
    eprintln!(
        "loadgen: soak for {} s at x{mult:.2}, a sample every {} s",
        args.soak, args.soak_every
    );
    let mut summary = Vec::new();
    for t in &args.targets {
        let samples = soak_target(args, load, t, shape, mult).with_context(|| t.clone())?;
        if samples.len() < 2 {
            continue;
        }
        let (exp, rec) = samples
            .iter()
            .fold((0, 0), |(e, r), s| (e + s.expected, r + s.received));
        summary.push((
            t.clone(),
            samples.iter().map(|s| s.pps).sum::<f64>() / samples.len() as f64,
            loss_pct(exp, rec),
            samples[0].rss_kib,
            samples[samples.len() - 1].rss_kib,
            growth(&samples, |s| s.rss_kib as f64),
            samples[0].fds,
            samples[samples.len() - 1].fds,
            growth(&samples, |s| s.fds as f64),
            samples.iter().map(|s| s.queue.max_bytes).max().unwrap_or(0),
            samples.iter().map(|s| s.queue.drops).sum::<u64>(),
        ));
    }
    println!(
        "loadgen soak: {} s at x{mult:.2} ({:.0} % of the relay's maximum), {} calls",
        args.soak,
        args.soak_at * 100.0,
        args.calls
    );
    println!(
        "{:<14} {:>10} {:>9} {:>10} {:>10} {:>9} {:>6} {:>6} {:>9} {:>10} {:>8}  verdict",
        "target",
        "mean_pps",
        "loss%",
        "rss_first",
        "rss_last",
        "rss_grow%",
        "fds_0",
        "fds_n",
        "fds_grow%",
        "queue_max",
        "k_drops"
    );
    let bare_loss = summary.iter().find(|r| r.0 == "bare").map(|r| r.2);
    for r in &summary {
        let flat = r.5 < 5.0 && r.8 < 5.0;
        let loss_ok = bare_loss.is_none_or(|b| r.0 == "bare" || r.2 <= b);
        println!(
            "{:<14} {:>10.0} {:>9.4} {:>10} {:>10} {:>9.2} {:>6} {:>6} {:>9.2} {:>10} {:>8}  {}",
            r.0,
            r.1,
            r.2,
            r.3,
            r.4,
            r.5,
            r.6,
            r.7,
            r.8,
            r.9,
            r.10,
            match (flat, loss_ok) {
                (true, true) => "PASS",
                (false, _) => "FAIL: grows",
                (true, false) => "FAIL: more loss than bare",
            }
        );
    }
    Ok(())
}
