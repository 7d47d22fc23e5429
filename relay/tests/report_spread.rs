//! RTCP report timing of the sans-IO core: legs created in the same instant (a burst of
//! calls, a restart) must not all report in the same instant. Each report interval is drawn
//! from 0.5–1.5× the configured one (RFC 3550 §6.3.1), and the core sweeps for due reports
//! often enough that they leave a few at a time.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use supernode_relay::core::{
    Core, CoreConfig, LegId, LegSpec, PeerMode, SessionId, SockSlot, TxBatch,
};

const LEGS: u64 = 400;

fn core_with_legs(now: Instant) -> Core {
    let mut core = Core::new(
        CoreConfig {
            report_interval: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(3600),
            ..CoreConfig::default()
        },
        now,
    );
    for i in 0..LEGS {
        let peer: SocketAddr = format!("127.0.0.1:{}", 10_000 + i).parse().unwrap();
        let spec = LegSpec {
            peer: PeerMode::Fixed(peer),
            ..LegSpec::latching(SessionId(i), SockSlot(i as u32))
        };
        core.add_leg(now, LegId(i), spec).unwrap();
    }
    core
}

/// Steps simulated time by `step` for `total`, calling `handle_timeout` whenever the core
/// asks; returns the number of reports sent at each call, with the call's time.
fn run(core: &mut Core, start: Instant, step: Duration, total: Duration) -> Vec<(Duration, usize)> {
    let mut tx = TxBatch::new(4096);
    let mut out = Vec::new();
    let mut t = start;
    while t < start + total {
        if t >= core.poll_timeout() {
            core.handle_timeout(t, &mut tx);
            if !tx.is_empty() {
                out.push((t - start, tx.len()));
            }
            tx.clear();
        }
        t += step;
    }
    out
}

#[test]
fn legs_created_together_report_spread_over_the_interval() {
    let start = Instant::now();
    let mut core = core_with_legs(start);
    let sends = run(
        &mut core,
        start,
        Duration::from_millis(1),
        Duration::from_secs(5),
    );
    let total: usize = sends.iter().map(|s| s.1).sum();
    // Every leg reports about once a second: 5 s give between 3 and 10 reports per leg.
    assert!(
        total >= 3 * LEGS as usize && total <= 10 * LEGS as usize,
        "{total} reports from {LEGS} legs in 5 s"
    );
    // No report before half an interval.
    assert!(
        sends[0].0 >= Duration::from_millis(480),
        "first report at {:?}",
        sends[0].0
    );
    // Spread: no single sweep carries more than a tenth of the legs (all-at-once would be
    // every leg in one sweep each second).
    let worst = sends.iter().map(|s| s.1).max().unwrap();
    assert!(worst <= LEGS as usize / 10, "a sweep sent {worst} reports");
    // And reports go out in most 100 ms windows after the first half second.
    let busy_windows = (5..50)
        .filter(|w| {
            sends.iter().any(|s| {
                s.0 >= Duration::from_millis(w * 100) && s.0 < Duration::from_millis((w + 1) * 100)
            })
        })
        .count();
    assert!(
        busy_windows >= 40,
        "reports in only {busy_windows} of 45 windows"
    );
}

#[test]
fn each_leg_reports_within_half_to_one_and_a_half_intervals() {
    let start = Instant::now();
    let mut core = core_with_legs(start);
    let mut tx = TxBatch::new(4096);
    let mut last: Vec<Option<Duration>> = vec![None; LEGS as usize];
    let mut gaps = Vec::new();
    let mut t = start;
    while t < start + Duration::from_secs(10) {
        if t >= core.poll_timeout() {
            core.handle_timeout(t, &mut tx);
            for item in tx.items() {
                let leg = (item.dst.port() - 10_000) as usize;
                let at = t - start;
                if let Some(prev) = last[leg] {
                    gaps.push(at - prev);
                }
                last[leg] = Some(at);
            }
            tx.clear();
        }
        t += Duration::from_millis(1);
    }
    assert!(last.iter().all(Option::is_some), "every leg reported");
    // The sweep runs every 20 ms, so a gap can stretch by one sweep past 1.5 s.
    let (min, max) = (gaps.iter().min().unwrap(), gaps.iter().max().unwrap());
    assert!(*min >= Duration::from_millis(480), "shortest gap {min:?}");
    assert!(*max <= Duration::from_millis(1_530), "longest gap {max:?}");
    // The draws are spread, not one constant: both halves of the range are used.
    let short = gaps.iter().filter(|g| **g < Duration::from_secs(1)).count();
    let long = gaps.len() - short;
    assert!(
        short > gaps.len() / 4 && long > gaps.len() / 4,
        "{short} short, {long} long"
    );
}
