//! `supernode run`: composes the relay, the signaling service, relay REST, `/metrics` and the
//! probes onto one HTTP port, and serves until SIGINT/SIGTERM.
//!
//! Shutdown drains: on the first signal `/readyz` turns `503`, the relay refuses new
//! sessions (an answered call then ends with `relay_failure`; relay REST answers `503`
//! `relay_unavailable`), running calls may go on for up to `drain_seconds`; then the HTTP
//! server stops, the relay's workers stop and the database is closed cleanly. A second
//! signal cuts the drain short.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::DefaultBodyLimit;
use axum::serve::ListenerExt;
use supernode_signaling::directory::InMemoryDirectory;
use supernode_signaling::ratelimit::RateLimiter;
use supernode_signaling::{RelayAccess, Signaling, Store};
use utoipa::OpenApi as _;

use crate::cli::{Common, RunArgs};
use crate::config::Config;
use crate::relay_host::{HostRelay, RelayExecutor};

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
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("binding {}", cfg.listen))?;
    let bound = listener.local_addr()?;
    let relay_cfg = cfg.relay();
    let relay = Arc::new(HostRelay::start(relay_cfg.clone()).context("starting the relay")?);
    let access: Arc<dyn RelayAccess> = Arc::new(RelayExecutor(relay.clone()));
    let signaling = Signaling::new(
        store.clone(),
        cfg.signaling(bound),
        Some(access),
        Arc::new(InMemoryDirectory::new()),
    )
    .await
    .context("starting signaling")?
    // `/v1/openapi.json` describes relay REST too.
    .with_openapi(crate::relay_rest::RelayApiDoc::openapi());
    let rest = crate::relay_rest::RelayRest {
        store: store.clone(),
        relay: relay.clone(),
        limiter: Arc::new(RateLimiter::new(
            cfg.rate_limit_per_second,
            cfg.rate_limit_burst,
        )),
    };
    let app = signaling
        .router()
        .merge(crate::relay_rest::router(rest).layer(DefaultBodyLimit::max(cfg.body_limit_bytes)))
        .merge(crate::metrics::router(crate::metrics::MetricsState {
            signaling: signaling.clone(),
            relay: relay.clone(),
        }))
        .merge(crate::health::router(store.clone(), relay.clone()));

    let mut signals = Signals::register();
    let mut out = std::io::stdout().lock();
    writeln!(out, "supernode: listening on http://{bound}")?;
    writeln!(out, "supernode: WebSocket at ws://{bound}/v1/ws")?;
    writeln!(out, "supernode: metrics at http://{bound}/metrics")?;
    writeln!(
        out,
        "supernode: relay on {} ports {}-{}, {} workers, shared ports {:?}",
        relay_cfg.bind_ip,
        relay_cfg.port_range.0,
        relay_cfg.port_range.1,
        relay.relay().worker_count(),
        relay.relay().shared_addrs()
    )?;
    out.flush()?;
    drop(out);
    tracing::info!(%bound, backend = ?store.backend(), workers = relay.relay().worker_count(), "serving");

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

    // Signaling messages are small and latency-bound: no Nagle delay on replies.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop_rx.await;
            })
            .await
    });

    signals.recv().await;
    relay.set_draining(true);
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
        _ = signals.recv() => tracing::warn!("second signal: drain cut short"),
    }
    let left = signaling.call_count();
    if left > 0 {
        tracing::warn!(calls = left, "drain time over; ending the remaining calls");
    }
    let _ = stop_tx.send(());
    match tokio::time::timeout(Duration::from_secs(5), server).await {
        Ok(Ok(r)) => r.context("serving")?,
        Ok(Err(e)) => tracing::warn!(error = %e, "server task failed"),
        Err(_) => tracing::warn!("open connections did not close in 5 s; leaving them"),
    }
    pump.abort();
    store.close().await;
    println!("supernode: stopped ({left} calls cut at the end of the drain)");
    tracing::info!("stopped");
    Ok(())
}

/// SIGINT and SIGTERM, registered before the server says it listens: a signal sent right
/// after that line drains like any other instead of meeting the default action (exit at
/// once, status "killed").
struct Signals {
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn register() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Self {
                int: signal(SignalKind::interrupt()).ok(),
                term: signal(SignalKind::terminate()).ok(),
            }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// The next SIGINT or SIGTERM.
    async fn recv(&mut self) {
        #[cfg(unix)]
        {
            async fn next(s: &mut Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                _ = next(&mut self.int) => {},
                _ = next(&mut self.term) => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
