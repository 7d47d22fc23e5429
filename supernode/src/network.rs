//! The host's membership of a network of supernodes (when `nats_url` is set): joins the
//! network before signaling starts (its directory is the network's), wires the call hub to
//! it, and reports the node's load into its heartbeat once a second (endpoints, relay
//! transports, packets per second, CPU).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use supernode_network::{Load, Network, NetworkConfig};
use supernode_signaling::Signaling;

use crate::relay_host::HostRelay;

/// Connects to NATS and joins (buckets, heartbeat, directory watch).
pub async fn connect(cfg: NetworkConfig) -> anyhow::Result<Arc<Network>> {
    let urls = cfg.urls.join(",");
    Network::connect(cfg)
        .await
        .with_context(|| format!("joining the network over NATS at {urls}"))
}

/// Wires the hub to the network and starts the load reporter (stops with the process).
pub async fn start(
    net: &Arc<Network>,
    signaling: &Signaling,
    relay: Arc<HostRelay>,
) -> anyhow::Result<()> {
    supernode_network::join(net, &signaling.hub())
        .await
        .context("serving cross-node messages")?;
    // Credentials send new clients to the least-loaded live node of the region.
    signaling.set_placement(Arc::new(supernode_network::NetworkPlacement(net.clone())));
    watch_deaths(net, signaling);
    watch_presence(net, signaling);
    let weak = Arc::downgrade(net);
    let signaling = signaling.clone();
    tokio::spawn(async move {
        let mut last: Option<(Instant, u64, f64)> = None;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let Some(net) = weak.upgrade() else { return };
            let r = relay.clone();
            let Ok((legs, totals)) = tokio::task::spawn_blocking(move || r.snapshot()).await else {
                continue;
            };
            let now = Instant::now();
            let cpu = cpu_seconds();
            let (pps, cpu_percent) = match last {
                Some((at, packets, cpu0)) => {
                    let dt = now.duration_since(at).as_secs_f64().max(1e-3);
                    (
                        (totals.packets_out.saturating_sub(packets) as f64 / dt) as u64,
                        ((cpu - cpu0).max(0.0) / dt * 100.0) as f32,
                    )
                }
                None => (0, 0.0),
            };
            last = Some((now, totals.packets_out, cpu));
            net.set_load(Load {
                endpoints: signaling.endpoint_count() as u64,
                transports: legs.len() as u64,
                packets_per_second: pps,
                cpu_percent,
            });
        }
    });
    Ok(())
}

/// Feeds the directory's changes (an account's endpoints attached or detached on any node)
/// to the call hub, whose presence watchers hear of the accounts they watch
/// (`Hub::presence_changed`); after a lag (more than the channel holds at once), every
/// watched account is read again.
fn watch_presence(net: &Arc<Network>, signaling: &Signaling) {
    let mut changes = net.directory().changes();
    let hub = Arc::downgrade(&signaling.hub());
    tokio::spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            let change = changes.recv().await;
            let Some(hub) = hub.upgrade() else { return };
            match change {
                Ok(account) => hub.presence_changed(&account),
                Err(RecvError::Lagged(_)) => hub.presence_resync(),
                Err(RecvError::Closed) => return,
            }
        }
    });
}

/// Tells the call hub when a node that was live stops being live (missed heartbeats, or
/// left): calls with their far end there fail over (`Hub::node_down`). Checked every
/// 100 ms, so a death is acted on within `dead_after` + 0.1 s of its last heartbeat.
fn watch_deaths(net: &Arc<Network>, signaling: &Signaling) {
    let weak = Arc::downgrade(net);
    let hub = signaling.hub();
    tokio::spawn(async move {
        let mut live: std::collections::BTreeSet<String> = Default::default();
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tick.tick().await;
            let Some(net) = weak.upgrade() else { return };
            let now: std::collections::BTreeSet<String> =
                net.live_nodes().into_iter().map(|b| b.node).collect();
            for gone in live.difference(&now) {
                if gone != net.node_id() {
                    tracing::warn!(node = %gone, "node lost: failing its calls over");
                    hub.node_down(gone);
                }
            }
            for back in now.difference(&live) {
                hub.node_up(back);
            }
            live = now;
        }
    });
}

/// CPU seconds this process used (user + system), from `/proc/self/stat`; 0 elsewhere.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the ')'.
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| f.get(i).and_then(|v| v.parse::<f64>().ok()))
        .sum();
    // USER_HZ is 100 on Linux.
    ticks / 100.0
}

/// `GET /v1/network`: this node's view of the network — its id, the live nodes with their
/// load, the directory's size and the NATS counters (operator information, like
/// `/metrics`; no secrets).
pub fn router(net: Arc<Network>) -> axum::Router {
    use supernode_signaling::directory::Directory as _;
    axum::Router::new().route(
        "/v1/network",
        axum::routing::get(move || {
            let net = net.clone();
            async move {
                let c = net.counters();
                axum::Json(serde_json::json!({
                    "node": net.node_id(),
                    "region": net.config().region,
                    "connected": net.connected(),
                    "live": net.live_nodes(),
                    "directory_records": net.directory().len(),
                    "counters": {
                        "requests": c.requests,
                        "retries": c.retries,
                        "request_failures": c.request_failures,
                        "handled": c.handled,
                        "repeats": c.repeats,
                        "undecodable": c.undecodable,
                        "heartbeats": c.heartbeats,
                        "directory_puts": c.directory_puts,
                        "directory_deletes": c.directory_deletes,
                        "claims": c.claims,
                        "reregistrations": c.reregistrations,
                        "messages": c.messages(),
                        "kv_writes": c.kv_writes(),
                    },
                }))
            }
        }),
    )
}
