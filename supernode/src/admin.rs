//! `supernode admin`: partners and signing secrets, on the database of the configuration.

use anyhow::Context;
use supernode_signaling::{Store, admin};

use crate::cli::{AdminAction, AdminArgs, Common, PartnerAction, SecretAction};
use crate::config::Config;

/// Runs one admin action and prints its JSON result on stdout.
pub fn run(common: &Common, args: AdminArgs) -> anyhow::Result<()> {
    let cfg = Config::load(common, None)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async move {
        let store = Store::connect(&cfg.database_url()?)
            .await
            .context("opening the database")?;
        let now = supernode_signaling::timefmt::unix_now();
        let out = match args.action {
            AdminAction::Partner(PartnerAction::Create { name, relay }) => {
                serde_json::to_value(admin::create_partner(&store, &name, relay, now).await?)?
            }
            AdminAction::Partner(PartnerAction::Revoke { id }) => {
                admin::revoke_partner(&store, &id, now).await?;
                serde_json::json!({ "id": id, "revoked": true })
            }
            AdminAction::Secret(SecretAction::Rotate) => {
                let ttl = i64::try_from(cfg.max_credential_ttl_seconds).unwrap_or(i64::MAX);
                serde_json::to_value(admin::rotate_secret(&store, now, ttl).await?)?
            }
        };
        println!("{out}");
        store.close().await;
        Ok(())
    })
}
