//! `supernode run`: composes the services onto one HTTP port and serves until SIGINT/SIGTERM.
//!
//! Today the composition is the signaling router plus the probes; the relay (its
//! `RelayAccess` for the signaling service) and `/metrics` are added here by the host issue.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use axum::serve::ListenerExt;
use supernode_signaling::directory::InMemoryDirectory;
use supernode_signaling::{Signaling, Store};

use crate::cli::RunArgs;
use crate::config::Config;

/// Runs the server.
pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let cfg = Config::load(&args.common, args.listen)?;
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
    let signaling = Signaling::new(
        store.clone(),
        cfg.signaling(bound),
        None,
        Arc::new(InMemoryDirectory::new()),
    )
    .await
    .context("starting signaling")?;
    let app = signaling
        .router()
        .merge(crate::health::router(store.clone()));

    let mut out = std::io::stdout().lock();
    writeln!(out, "supernode: listening on http://{bound}")?;
    writeln!(out, "supernode: WebSocket at ws://{bound}/v1/ws")?;
    out.flush()?;
    drop(out);
    tracing::info!(%bound, backend = ?store.backend(), "serving");

    // Signaling messages are small and latency-bound: no Nagle delay on replies.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving")?;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
