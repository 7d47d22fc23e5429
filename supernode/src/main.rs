//! The `supernode` host binary.
//!
//! * `supernode run [--config FILE] [--listen IP:PORT] [--data-dir DIR]` runs the relay
//!   (worker threads, SRTP legs for calls) and serves on one HTTP port the signaling service
//!   (REST under `/v1`, `/v1/openapi.json`, the WebSocket `/v1/ws`), relay REST for trusted
//!   tools (`/v1/relay/sessions`, [`relay_rest`]), WHIP/WHEP (`/v1/whip/{stream}`,
//!   `/v1/whep/{stream}`, [`whip`]), Prometheus `/metrics` ([`metrics`]),
//!   `/healthz` and `/readyz`; it prints the addresses it listens on. SIGTERM drains
//!   ([`serve`]).
//! * `supernode admin [--config FILE] [--data-dir DIR] partner create NAME [--relay]`,
//!   `partner revoke ID`, `secret rotate`: operator actions on the same database; each prints
//!   one JSON object.
//! * `supernode demo`: a 10-second audio+video call between two `edge` processes through a
//!   fresh supernode on loopback ([`demo`]).
//! * `supernode drain [--migrate] [--config FILE] [--data-dir DIR]`: drains the supernode
//!   running with that data directory (SIGTERM through its pid file); `--migrate` also moves
//!   its endpoints and their calls to other nodes (SIGUSR1; [`signals`]).
//!
//! Configuration: a TOML file in which every key has a working default ([`config`]), then
//! `SUPERNODE_*` environment variables, then flags. The composition lives in small files:
//! [`serve`] builds the router and runs the drain, [`relay_host`] implements the signaling
//! service's `RelayAccess` with the relay, [`health`] the probes, [`admin`] the operator
//! commands, [`network`] the node's membership of a network of supernodes (`nats_url`).
#![forbid(unsafe_code)]

mod admin;
mod body_deadline;
mod call_quality;
mod cli;
#[cfg_attr(not(test), allow(dead_code))]
mod conference_host;
mod config;
mod demo;
mod demo_network;
mod demo_partner;
mod health;
mod http_server;
// The conference MCUs' threads; the relay has no processor transport to feed them yet.
#[cfg_attr(not(test), allow(dead_code))]
mod media_threads;
mod metrics;
mod network;
mod relay_books;
mod relay_host;
mod relay_rest;
mod serve;
mod signals;
mod tls;
mod web_client;
mod whip;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli.command {
        cli::Command::Demo(args) => report(demo::run(args)),
        cli::Command::Run(args) => report(serve::run(&cli.common, args)),
        cli::Command::Admin(args) => report(admin::run(&cli.common, args)),
        cli::Command::Drain(args) => report(drain(&cli.common, &args)),
    }
}

/// `supernode drain [--migrate]`: signals the supernode of this config's data directory.
fn drain(common: &cli::Common, args: &cli::DrainArgs) -> anyhow::Result<()> {
    let cfg = config::Config::load(common, None)?;
    signals::send(&cfg.data_dir, args.migrate)
}

fn report(r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("supernode: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
