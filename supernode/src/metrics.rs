//! `/metrics`: Prometheus text exposition (format 0.0.4), rendered on each scrape from the
//! signaling service's call and endpoint counts and the relay's per-leg and per-worker
//! statistics.
//!
//! Series:
//! * `supernode_calls`, `supernode_endpoints`, `supernode_relay_sessions`,
//!   `supernode_relay_legs` (gauges), `supernode_draining` (1 while draining);
//! * `supernode_relay_packets_received_total`, `…_bytes_received_total`,
//!   `supernode_relay_packets_forwarded_total`, `…_bytes_forwarded_total`,
//!   `supernode_relay_packets_dropped_total{reason}`, `supernode_simulcast_layer_switches_total`
//!   — live legs plus released and idle-freed
//!   legs, never decreasing (a leg freed by the idle timeout keeps the counts last seen of it,
//!   see [`HostRelay::snapshot`]);
//! * `supernode_relay_leg_loss_percent`, `…_jitter_ms`, `…_rtt_ms` with `stat="max"|"mean"`
//!   over live legs (RTT over legs that have one);
//! * `supernode_relay_worker_legs{worker}`, `…_datagrams_received_total{worker}`,
//!   `…_datagrams_sent_total{worker}`, `…_receive_batches_total{worker}` (worker load);
//! * `supernode_relay_allocations_refused_total`, `supernode_relay_idle_legs_freed_total`;
//! * client limits (see `docs/host.md`, "Limits"): `supernode_http_connections` (open now),
//!   `supernode_http_connections_accepted_total`,
//!   `supernode_http_connections_refused_total{reason="global_cap"|"per_ip_cap"}`,
//!   `supernode_http_header_timeouts_total`,
//!   `supernode_ws_closed_by_limit_total{reason="rate_limited"|"too_big"|"login_timeout"}`;
//! * `supernode_call_mos` (histogram): the E-model MOS estimated for each audio leg when it
//!   ends, from the relay's loss, jitter and RTT of it (see [`crate::call_quality`]).

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use supernode_relay::core::DropReason;
use supernode_signaling::Signaling;

use crate::relay_host::HostRelay;

/// One per-worker series: name, type, help, value.
type WorkerSeries = (
    &'static str,
    &'static str,
    &'static str,
    fn(&supernode_relay::worker::WorkerStats) -> u64,
);

/// What `/metrics` reads.
#[derive(Clone)]
pub struct MetricsState {
    /// Calls and endpoints.
    pub signaling: Signaling,
    /// Legs, packets, workers.
    pub relay: Arc<HostRelay>,
    /// HTTP connections (caps, refusals, timeouts).
    pub connections: Arc<crate::http_server::ConnStats>,
}

/// The `/metrics` route.
pub fn router(state: MetricsState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn metrics(State(st): State<MetricsState>) -> impl IntoResponse {
    // The relay's control calls block briefly on its workers: keep them off the runtime.
    let text = tokio::task::spawn_blocking(move || render(&st))
        .await
        .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn one(out: &mut String, name: &str, kind: &str, help: &str, v: impl std::fmt::Display) {
    head(out, name, kind, help);
    let _ = writeln!(out, "{name} {v}");
}

fn max_mean(out: &mut String, name: &str, help: &str, values: &[f64]) {
    head(out, name, "gauge", help);
    let max = values.iter().copied().fold(0.0, f64::max);
    let mean = if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    };
    let _ = writeln!(out, "{name}{{stat=\"max\"}} {max}");
    let _ = writeln!(out, "{name}{{stat=\"mean\"}} {mean}");
}

/// Renders the exposition text.
pub fn render(st: &MetricsState) -> String {
    let mut out = String::with_capacity(4096);
    st.relay.pump_events();
    let (live, totals) = st.relay.snapshot();
    one(
        &mut out,
        "supernode_calls",
        "gauge",
        "Calls live on this supernode.",
        st.signaling.call_count(),
    );
    one(
        &mut out,
        "supernode_endpoints",
        "gauge",
        "Logged-in endpoints.",
        st.signaling.endpoint_count(),
    );
    one(
        &mut out,
        "supernode_draining",
        "gauge",
        "1 while the supernode drains (SIGTERM received).",
        u8::from(st.relay.is_draining()),
    );
    one(
        &mut out,
        "supernode_relay_sessions",
        "gauge",
        "Relay sessions (calls and relay REST sessions).",
        st.relay.session_count(),
    );
    one(
        &mut out,
        "supernode_relay_legs",
        "gauge",
        "Relay legs allocated.",
        st.relay.relay().leg_count(),
    );
    one(
        &mut out,
        "supernode_relay_packets_received_total",
        "counter",
        "Accepted RTP/RTCP packets received by the relay.",
        totals.packets_in,
    );
    one(
        &mut out,
        "supernode_relay_bytes_received_total",
        "counter",
        "Bytes of accepted packets received by the relay.",
        totals.bytes_in,
    );
    one(
        &mut out,
        "supernode_relay_packets_forwarded_total",
        "counter",
        "Datagrams the relay sent toward peers.",
        totals.packets_out,
    );
    one(
        &mut out,
        "supernode_relay_bytes_forwarded_total",
        "counter",
        "Bytes the relay sent toward peers.",
        totals.bytes_out,
    );
    one(
        &mut out,
        "supernode_simulcast_layer_switches_total",
        "counter",
        "Simulcast layer switches toward receivers (each at a keyframe of the new layer).",
        totals.layer_switches,
    );
    head(
        &mut out,
        "supernode_relay_packets_dropped_total",
        "counter",
        "Datagrams the relay dropped, by reason.",
    );
    for (r, n) in DropReason::ALL.iter().zip(totals.drops.iter()) {
        let _ = writeln!(
            out,
            "supernode_relay_packets_dropped_total{{reason=\"{}\"}} {n}",
            r.name()
        );
    }
    let loss: Vec<f64> = live.iter().map(|l| l.loss_pct.max(0.0)).collect();
    let jitter: Vec<f64> = live.iter().map(|l| l.jitter_ms).collect();
    let rtt: Vec<f64> = live
        .iter()
        .filter_map(|l| l.rtt.map(|d| d.as_secs_f64() * 1000.0))
        .collect();
    max_mean(
        &mut out,
        "supernode_relay_leg_loss_percent",
        "Loss from each leg's peer, percent of expected (live legs).",
        &loss,
    );
    max_mean(
        &mut out,
        "supernode_relay_leg_jitter_ms",
        "Interarrival jitter from each leg's peer, ms (live legs).",
        &jitter,
    );
    max_mean(
        &mut out,
        "supernode_relay_leg_rtt_ms",
        "Round-trip time to each leg's peer from its reports, ms (live legs with one).",
        &rtt,
    );
    let workers = st.relay.relay().worker_stats().unwrap_or_default();
    let per_worker: [WorkerSeries; 6] = [
        (
            "supernode_relay_worker_legs",
            "gauge",
            "Legs served by each relay worker.",
            |w| w.legs as u64,
        ),
        (
            "supernode_relay_worker_datagrams_received_total",
            "counter",
            "Datagrams each relay worker received.",
            |w| w.received,
        ),
        (
            "supernode_relay_worker_datagrams_sent_total",
            "counter",
            "Datagrams each relay worker sent.",
            |w| w.sent,
        ),
        (
            "supernode_relay_worker_receive_batches_total",
            "counter",
            "Receive batches of each relay worker (system calls that returned data).",
            |w| w.recv_batches,
        ),
        (
            "supernode_relay_worker_backlog_cuts_total",
            "counter",
            "Times each relay worker's shared-port queue stood over half full for 100 ms (overload) and its buffer was cut to an eighth.",
            |w| w.backlog_cuts,
        ),
        (
            "supernode_relay_worker_backlog_cut",
            "gauge",
            "1 while a relay worker's shared-port buffer is cut (its queue stands full), else 0.",
            |w| u64::from(w.backlog_cut),
        ),
    ];
    for (name, kind, help, f) in per_worker {
        head(&mut out, name, kind, help);
        for (i, w) in workers.iter().enumerate() {
            let _ = writeln!(out, "{name}{{worker=\"{i}\"}} {}", f(w));
        }
    }
    one(
        &mut out,
        "supernode_relay_allocations_refused_total",
        "counter",
        "Session allocations the relay refused (draining, exhausted, errors).",
        st.relay.refused(),
    );
    one(
        &mut out,
        "supernode_relay_idle_legs_freed_total",
        "counter",
        "Legs freed by the idle timeout.",
        st.relay.idle_freed(),
    );
    client_limits(&mut out, st);
    st.relay.mos_histogram().render(
        &mut out,
        "supernode_call_mos",
        "E-model (ITU-T G.107) MOS estimate of each relay audio leg, observed when the leg ends \
         (loss, jitter and RTT the relay measured of it; Opus).",
    );
    out
}

/// The series of the client-facing limits: connections and WebSocket limit closes.
fn client_limits(out: &mut String, st: &MetricsState) {
    let c = st.connections.snapshot();
    one(
        out,
        "supernode_http_connections",
        "gauge",
        "HTTP connections open (WebSockets included).",
        c.open,
    );
    one(
        out,
        "supernode_http_connections_accepted_total",
        "counter",
        "HTTP connections accepted under the caps.",
        c.accepted,
    );
    let name = "supernode_http_connections_refused_total";
    head(
        out,
        name,
        "counter",
        "Connections refused past max_connections (503) or max_connections_per_ip (429).",
    );
    let _ = writeln!(out, "{name}{{reason=\"global_cap\"}} {}", c.refused_global);
    let _ = writeln!(out, "{name}{{reason=\"per_ip_cap\"}} {}", c.refused_per_ip);
    one(
        out,
        "supernode_http_header_timeouts_total",
        "counter",
        "Connections closed because request headers did not arrive within header_read_timeout_seconds.",
        c.header_timeouts,
    );
    let w = st.signaling.ws_limit_counts();
    let name = "supernode_ws_closed_by_limit_total";
    head(
        out,
        name,
        "counter",
        "WebSockets closed for a message flood, an oversized message or no login in time.",
    );
    for (reason, v) in [
        ("rate_limited", w.rate_limited),
        ("too_big", w.too_big),
        ("login_timeout", w.login_timeouts),
    ] {
        let _ = writeln!(out, "{name}{{reason=\"{reason}\"}} {v}");
    }
}
