//! Command-line syntax.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// A supernode: relay, signaling and directory point of the call network.
#[derive(Debug, Parser)]
#[command(name = "supernode", version, about)]
pub struct Cli {
    /// Config file and data directory: global, so they may stand before or after the
    /// subcommand (`supernode admin partner create acme --data-dir D`).
    #[command(flatten)]
    pub common: Common,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the REST API, the WebSocket, /healthz and /readyz.
    Run(RunArgs),
    /// Operator actions: partners and signing secrets.
    Admin(AdminArgs),
    /// A 10-second audio+video call between two edge clients through a fresh supernode.
    Demo(DemoArgs),
    /// Drain the supernode running with this config/data directory (SIGTERM to it); with
    /// `--migrate`, also move its endpoints and their calls to other nodes (SIGUSR1).
    Drain(DrainArgs),
}

/// `supernode drain`.
#[derive(Debug, Args)]
pub struct DrainArgs {
    /// Move the endpoints to other nodes of the network the failover way (they log in
    /// again elsewhere and resume their calls there).
    #[arg(long)]
    pub migrate: bool,
}

/// Where the configuration comes from (read by `run` and `admin`; `demo` makes its own).
#[derive(Debug, Args, Clone, Default)]
pub struct Common {
    /// TOML configuration file (every key has a default).
    #[arg(long, env = "SUPERNODE_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Data directory (SQLite database lives here).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
}

/// `supernode run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// HTTP address (REST, WebSocket, probes); port 0 picks a free port.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
}

/// `supernode admin`.
#[derive(Debug, Args)]
pub struct AdminArgs {
    /// The action.
    #[command(subcommand)]
    pub action: AdminAction,
}

/// Admin actions.
#[derive(Debug, Subcommand)]
pub enum AdminAction {
    /// Partners and their API keys.
    #[command(subcommand)]
    Partner(PartnerAction),
    /// Credential-signing secrets.
    #[command(subcommand)]
    Secret(SecretAction),
}

/// `admin partner …`.
#[derive(Debug, Subcommand)]
pub enum PartnerAction {
    /// Create a partner; prints its id and API key (shown once).
    Create {
        /// The partner's name.
        name: String,
        /// Allow this key to use the relay REST API (trusted tools).
        #[arg(long)]
        relay: bool,
    },
    /// Revoke a partner's key; its accounts can no longer log in.
    Revoke {
        /// Partner id (`prt_…`).
        id: String,
    },
}

/// `admin secret …`.
#[derive(Debug, Subcommand)]
pub enum SecretAction {
    /// Add a new signing secret; the previous one verifies until its tokens expire.
    Rotate,
}

/// `supernode demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Seconds of media.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// The `edge` executable (default: `$SUPERNODE_EDGE_BIN`, else next to `supernode`).
    #[arg(long)]
    pub edge: Option<PathBuf>,
    /// Keep the temporary data directory (database, supernode.log).
    #[arg(long)]
    pub keep_data: bool,
    /// Then headless Chromium (Debian's `/usr/bin/chromium`, or `$CHROMIUM_BIN`) calls a
    /// third party, an edge client, from the web client, driven by `web/tests/run.mjs`
    /// (node and `npm ci` in `web/tests`), and that call's reports are printed too.
    #[arg(long)]
    pub browser: bool,
    /// The web client's browser driver directory (default: `$SUPERNODE_WEB_TESTS`, else
    /// `web/tests` of the source tree this executable was built in).
    #[arg(long)]
    pub web_tests: Option<PathBuf>,
    /// Supernodes to start: more than one makes a local network (a `nats-server` with
    /// JetStream is started for it; Debian's package) and the call goes across two of them.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub nodes: u8,
}
