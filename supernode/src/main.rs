//! The `supernode` host binary.
//!
//! * `supernode run [--config FILE] [--listen IP:PORT] [--data-dir DIR]` serves the
//!   signaling service (REST under `/v1`, `/v1/openapi.json`, the WebSocket `/v1/ws`) plus
//!   `/healthz` and `/readyz` on one HTTP port, and prints the address it listens on.
//! * `supernode admin [--config FILE] [--data-dir DIR] partner create NAME [--relay]`,
//!   `partner revoke ID`, `secret rotate`: operator actions on the same database; each prints
//!   one JSON object.
//! * `supernode demo`: not built yet (the end-to-end issue builds it); says so, exits 2.
//!
//! Configuration: a TOML file in which every key has a working default ([`config`]), then
//! `SUPERNODE_*` environment variables, then flags. The composition lives in small files so
//! the relay and metrics can be added beside the signaling service: [`serve`] builds the
//! router, [`health`] the probes, [`admin`] the operator commands.
//!
//! Not wired yet: the relay. Calls are signaled (browsers negotiate peer-to-peer through the
//! `negotiate` messages) but carry no relay legs until the relay issue's `RelayAccess`
//! implementation is passed to the signaling service in [`serve`].
#![forbid(unsafe_code)]

mod admin;
mod cli;
mod config;
mod health;
mod serve;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli.command {
        cli::Command::Demo => {
            eprintln!(
                "supernode demo: not built yet — the end-to-end call demo (relay + edge \
                 clients) lands with the host/edge issue. `supernode run` and \
                 `supernode admin` work today."
            );
            ExitCode::from(2)
        }
        cli::Command::Run(args) => report(serve::run(args)),
        cli::Command::Admin(args) => report(admin::run(args)),
    }
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
