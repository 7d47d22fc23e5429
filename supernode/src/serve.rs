//! `supernode run`: composes the relay, the signaling service, relay REST, `/metrics` and the
//! probes onto one HTTP port, and serves until SIGINT/SIGTERM.
//!
//! Shutdown drains: on the first signal `/readyz` turns `503`, the relay refuses new
//! sessions (an answered call then ends with `relay_failure`; relay REST answers `503`
//! `relay_unavailable`), running calls may go on for up to `drain_seconds`; then the HTTP
//! server stops, the relay's workers stop and the database is closed cleanly. A second
//! signal cuts the drain short.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::DefaultBodyLimit;
use supernode_signaling::directory::{Directory, InMemoryDirectory};
use supernode_signaling::ratelimit::RateLimiter;
use supernode_signaling::{RelayAccess, Signaling, Store};
use utoipa::OpenApi as _;

use crate::cli::{Common, RunArgs};
use crate::config::Config;
use crate::relay_host::{HostRelay, RelayExecutor};
use crate::signals::{Signals, Stop};

/// Runs the server.
pub fn run(common: &Common, args: RunArgs) -> anyhow::Result<()> {
    let cfg = Config::load(common, args.listen)?;
    init_logs(&cfg.log);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(serve(cfg))
}

fn init_logs(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn serve(cfg: Config) -> anyhow::Result<()> {
    let url = cfg.database_url()?;
    let store = Store::connect(&url).await.context("opening the database")?;
    let tls = if cfg.tls() {
        Some(crate::tls::acceptor(
            Path::new(&cfg.tls_cert),
            Path::new(&cfg.tls_key),
        )?)
    } else {
        None
    };
    let (http, ws) = if tls.is_some() {
        ("https", "wss")
    } else {
        ("http", "ws")
    };
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("binding {}", cfg.listen))?;
    let bound = listener.local_addr()?;
    let relay_cfg = cfg.relay();
    let relay = Arc::new(
        HostRelay::start(relay_cfg.clone())
            .context("starting the relay")?
            .with_public_ip(cfg.public_ip()?),
    );
    let access: Arc<dyn RelayAccess> = Arc::new(RelayExecutor(relay.clone()));
    let mut sig_cfg = cfg.signaling(bound);
    // A network (nats_url set): its directory is shared; alone: in memory.
    let network = match cfg.network(sig_cfg.public_ws_url.clone())? {
        Some(net_cfg) => Some(crate::network::connect(net_cfg).await?),
        None => None,
    };
    let directory: Arc<dyn Directory> = match &network {
        Some(net) => {
            sig_cfg.node_id = net.node_id().to_owned();
            net.directory()
        }
        None => Arc::new(InMemoryDirectory::new()),
    };
    let signaling = Signaling::new(store.clone(), sig_cfg, Some(access), directory)
        .await
        .context("starting signaling")?
        // `/v1/openapi.json` describes relay REST too.
        .with_openapi({
            let mut doc = crate::relay_rest::RelayApiDoc::openapi();
            doc.merge(crate::whip::WhipApiDoc::openapi());
            doc
        });
    let conn_stats = Arc::new(crate::http_server::ConnStats::default());
    let rest = crate::relay_rest::RelayRest {
        store: store.clone(),
        relay: relay.clone(),
        limiter: Arc::new(RateLimiter::new(
            cfg.rate_limit_per_second,
            cfg.rate_limit_burst,
        )),
    };
    let whip = crate::whip::Whip::new(store.clone(), relay.clone(), rest.limiter.clone());
    let mut app = signaling
        .router()
        .merge(crate::web_client::router())
        .merge(crate::relay_rest::router(rest).layer(DefaultBodyLimit::max(cfg.body_limit_bytes)))
        .merge(crate::whip::router(whip).layer(DefaultBodyLimit::max(cfg.body_limit_bytes)))
        .merge(crate::metrics::router(crate::metrics::MetricsState {
            signaling: signaling.clone(),
            relay: relay.clone(),
            connections: conn_stats.clone(),
        }))
        .merge(crate::health::router(store.clone(), relay.clone()))
        .merge(match &network {
            Some(net) => crate::network::router(net.clone()),
            None => axum::Router::new(),
        });
    if cfg.demo_partner {
        let partner =
            crate::demo_partner::DemoPartner::start(&store, format!("http://{bound}")).await?;
        app = app.merge(crate::demo_partner::router(partner));
    }
    let app = app.layer(axum::middleware::from_fn_with_state(
        crate::body_deadline::BodyLimits {
            timeout: Duration::from_secs(cfg.body_timeout_seconds),
            max_bytes: cfg.body_limit_bytes,
        },
        crate::body_deadline::body_deadline,
    ));
    warn_if_descriptors_short(cfg.max_connections);
    if let Some(net) = &network {
        crate::network::start(net, &signaling, relay.clone()).await?;
    }

    let mut signals = Signals::register();
    let _pid = crate::signals::PidFile::write(&cfg.data_dir)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "supernode: listening on {http}://{bound}")?;
    writeln!(out, "supernode: web client at {http}://{bound}/")?;
    if cfg.demo_partner {
        writeln!(
            out,
            "supernode: demo partner on (POST /demo/login makes accounts; dev only)"
        )?;
    }
    writeln!(out, "supernode: WebSocket at {ws}://{bound}/v1/ws")?;
    writeln!(out, "supernode: metrics at {http}://{bound}/metrics")?;
    writeln!(
        out,
        "supernode: relay on {} ports {}-{}, {} workers, shared ports {:?}",
        relay_cfg.bind_ip,
        relay_cfg.port_range.0,
        relay_cfg.port_range.1,
        relay.relay().worker_count(),
        relay.relay().shared_addrs()
    )?;
    if let Some(net) = &network {
        writeln!(
            out,
            "supernode: network node {} (region {}, role {:?}) over NATS {}",
            net.node_id(),
            net.config().region,
            net.config().role,
            net.config().urls.join(",")
        )?;
    }
    out.flush()?;
    drop(out);
    tracing::info!(%bound, backend = ?store.backend(), workers = relay.relay().worker_count(), "serving");
    tracing::info!(
        fingerprint = %relay.dtls_fingerprint().to_sdp(),
        "relay DTLS certificate (sha-256) for browser transports"
    );

    // Forget idle-freed legs and log them, once a second.
    let pump = {
        let relay = relay.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let r = relay.clone();
                let _ = tokio::task::spawn_blocking(move || r.pump_events()).await;
            }
        })
    };

    // What the conference mixers say about voices, to the rosters (the core rate-limits
    // them), every 100 ms.
    let speech = {
        let relay = relay.clone();
        let hub = signaling.hub();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tick.tick().await;
                for (session, ev) in relay.take_speech() {
                    hub.conference_speech(&session, ev);
                }
            }
        })
    };

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::http_server::serve(
        listener,
        app,
        cfg.http_limits(),
        conn_stats,
        tls,
        async move {
            let _ = stop_rx.await;
        },
    ));

    let stop = signals.recv().await;
    relay.set_draining(true);
    if let Some(net) = &network {
        // Out of placement at once; the next heartbeat says so.
        net.set_draining(true);
    }
    if stop == Stop::Migrate {
        migrate(&signaling, network.as_ref());
    }
    let drain = Duration::from_secs(cfg.drain_seconds);
    let calls = signaling.call_count();
    println!("supernode: draining ({calls} calls running, up to {drain:?})");
    tracing::info!(calls, ?drain, "draining");
    let deadline = Instant::now() + drain;
    let drained = async {
        while signaling.call_count() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::select! {
        _ = drained => {},
        _ = signals.recv_stop() => tracing::warn!("second signal: drain cut short"),
    }
    let left = signaling.call_count();
    if left > 0 {
        tracing::warn!(calls = left, "drain time over; ending the remaining calls");
    }
    let _ = stop_tx.send(());
    match tokio::time::timeout(Duration::from_secs(5), server).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "server task failed"),
        Err(_) => tracing::warn!("open connections did not close in 5 s; leaving them"),
    }
    pump.abort();
    speech.abort();
    if let Some(net) = &network {
        net.leave().await;
    }
    store.close().await;
    println!("supernode: stopped ({left} calls cut at the end of the drain)");
    tracing::info!("stopped");
    Ok(())
}

/// `drain --migrate` (SIGUSR1): tells this node's endpoints to move to the other live nodes
/// of its region (placement order, this node left out).
fn migrate(signaling: &Signaling, network: Option<&Arc<supernode_network::Network>>) {
    let nodes: Vec<String> = match network {
        Some(net) => {
            use supernode_signaling::Placement as _;
            let own = net.config().ws_url.clone();
            supernode_network::NetworkPlacement(net.clone())
                .ws_urls()
                .into_iter()
                .filter(|u| *u != own)
                .collect()
        }
        None => Vec::new(),
    };
    if nodes.is_empty() {
        tracing::warn!("drain --migrate: no other node to move the endpoints to; draining only");
        println!("supernode: no other node to migrate to; draining only");
        return;
    }
    let told = signaling.hub().migrate(nodes.clone());
    println!(
        "supernode: migrating: {told} endpoints told to move to {}",
        nodes.join(", ")
    );
    tracing::info!(told, nodes = ?nodes, "drain --migrate");
}

/// Warns when the process may open fewer descriptors than `max_connections` needs (each
/// connection is one; the relay and the database take some more).
fn warn_if_descriptors_short(max_connections: usize) {
    let Ok(limits) = std::fs::read_to_string("/proc/self/limits") else {
        return;
    };
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(soft) = soft
        && soft < max_connections + 256
    {
        tracing::warn!(
            soft_limit = soft,
            max_connections,
            "the open-file limit is below max_connections + 256: past it, new connections wait in the kernel's backlog; raise `ulimit -n` or lower max_connections"
        );
    }
}
