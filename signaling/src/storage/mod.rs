//! Storage of partners, accounts and signing keys through `sqlx`.
//!
//! One code path serves SQLite (the default: a file in the data directory, created on first
//! start) and PostgreSQL (when the URL is `postgres://…`): [`Store`] wraps an `sqlx::AnyPool`.
//! We chose `sqlx::Any` over a trait with two implementations because the schema is small and
//! written in the SQL both databases share (text ids, `BIGINT` Unix seconds, `$N`
//! placeholders, `ON CONFLICT DO NOTHING`), so one implementation is tested against both
//! databases instead of two implementations each against one. Migrations are embedded
//! ([`migrations`]) and run on [`Store::connect`].

mod migrations;
mod rows;

use std::str::FromStr;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Row};

pub use self::rows::{Account, Partner, SigningKeyRow};
use crate::error::StorageError;
use crate::ids::{AccountId, PartnerId};

/// Which database a [`Store`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (file).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// The signaling database.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Connects to `url` (`sqlite://PATH` — the file is created if missing — or
    /// `postgres://…`) and runs the embedded migrations.
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StorageError::UnsupportedUrl);
        };
        let url = if backend == Backend::Sqlite && !url.contains("mode=") {
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}mode=rwc")
        } else {
            url.to_owned()
        };
        let opts = AnyConnectOptions::from_str(&url)?;
        let max = if backend == Backend::Sqlite { 4 } else { 8 };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .connect_with(opts)
            .await?;
        let store = Self { pool, backend };
        if backend == Backend::Sqlite {
            // WAL lets readers run beside the one writer; foreign keys are off by default.
            sqlx::query("PRAGMA journal_mode=WAL")
                .execute(&store.pool)
                .await?;
        }
        migrations::run(&store.pool).await?;
        Ok(store)
    }

    /// The database in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A cheap round trip, for readiness checks.
    pub async fn ping(&self) -> Result<(), StorageError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Inserts a partner.
    pub async fn insert_partner(&self, p: &Partner, key_hash: &str) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO partners (id, name, key_hash, relay, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(p.id.as_str())
        .bind(p.name.as_str())
        .bind(key_hash)
        .bind(i64::from(p.relay))
        .bind(p.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks a partner revoked; `false` if there is no such (unrevoked) partner.
    pub async fn revoke_partner(&self, id: &PartnerId, now: i64) -> Result<bool, StorageError> {
        let r =
            sqlx::query("UPDATE partners SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now)
                .bind(id.as_str())
                .execute(&self.pool)
                .await?;
        Ok(r.rows_affected() > 0)
    }

    /// The unrevoked partner whose API key hashes to `key_hash`, with the stored hash.
    pub async fn partner_by_key_hash(
        &self,
        key_hash: &str,
    ) -> Result<Option<(Partner, String)>, StorageError> {
        let row = sqlx::query(
            "SELECT id, name, relay, created_at, key_hash FROM partners \
             WHERE key_hash = $1 AND revoked_at IS NULL",
        )
        .bind(key_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let p = rows::partner(&r)?;
            let h: String = r.try_get("key_hash")?;
            Ok((p, h))
        })
        .transpose()
    }

    /// Creates an account, or — when `external_id` is set and already used by this partner —
    /// returns the existing one. The flag is `true` when a new account was made.
    pub async fn create_account(
        &self,
        partner: &PartnerId,
        display_name: Option<&str>,
        external_id: Option<&str>,
        now: i64,
    ) -> Result<(Account, bool), StorageError> {
        let id = AccountId::random();
        let inserted = sqlx::query(
            "INSERT INTO accounts (id, partner_id, display_name, external_id, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (partner_id, external_id) DO NOTHING",
        )
        .bind(id.as_str())
        .bind(partner.as_str())
        .bind(display_name)
        .bind(external_id)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected()
            > 0;
        if inserted {
            return Ok((
                Account {
                    id,
                    partner: partner.clone(),
                    display_name: display_name.map(str::to_owned),
                    external_id: external_id.map(str::to_owned),
                    created_at: now,
                },
                true,
            ));
        }
        let ext = external_id.ok_or(StorageError::Conflict)?;
        let row = sqlx::query(
            "SELECT id, partner_id, display_name, external_id, created_at FROM accounts \
             WHERE partner_id = $1 AND external_id = $2",
        )
        .bind(partner.as_str())
        .bind(ext)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StorageError::Conflict)?;
        Ok((rows::account(&row)?, false))
    }

    /// The account `id` if it belongs to `partner`.
    pub async fn get_account(
        &self,
        partner: &PartnerId,
        id: &AccountId,
    ) -> Result<Option<Account>, StorageError> {
        let row = sqlx::query(
            "SELECT id, partner_id, display_name, external_id, created_at FROM accounts \
             WHERE id = $1 AND partner_id = $2",
        )
        .bind(id.as_str())
        .bind(partner.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| rows::account(&r)).transpose()
    }

    /// Deletes the account `id` if it belongs to `partner`; `false` if it did not exist.
    pub async fn delete_account(
        &self,
        partner: &PartnerId,
        id: &AccountId,
    ) -> Result<bool, StorageError> {
        let r = sqlx::query("DELETE FROM accounts WHERE id = $1 AND partner_id = $2")
            .bind(id.as_str())
            .bind(partner.as_str())
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// The partner of a live account (it exists and its partner is not revoked): the check a
    /// WebSocket login makes after the token's signature.
    pub async fn live_account_partner(
        &self,
        id: &AccountId,
    ) -> Result<Option<PartnerId>, StorageError> {
        let row = sqlx::query(
            "SELECT a.partner_id AS partner_id FROM accounts a JOIN partners p ON p.id = a.partner_id \
             WHERE a.id = $1 AND p.revoked_at IS NULL",
        )
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        match row {
            None => Ok(None),
            Some(r) => {
                let s: String = r.try_get("partner_id")?;
                Ok(Some(PartnerId(s)))
            }
        }
    }

    /// Every signing key, oldest first.
    pub async fn signing_keys(&self) -> Result<Vec<SigningKeyRow>, StorageError> {
        let rows = sqlx::query(
            "SELECT kid, secret_hex, created_at FROM signing_keys ORDER BY created_at, kid",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::signing_key).collect()
    }

    /// Adds a signing key.
    pub async fn insert_signing_key(&self, k: &SigningKeyRow) -> Result<(), StorageError> {
        sqlx::query("INSERT INTO signing_keys (kid, secret_hex, created_at) VALUES ($1, $2, $3)")
            .bind(k.kid.as_str())
            .bind(k.secret_hex.as_str())
            .bind(k.created_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes a signing key.
    pub async fn delete_signing_key(&self, kid: &str) -> Result<(), StorageError> {
        sqlx::query("DELETE FROM signing_keys WHERE kid = $1")
            .bind(kid)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Closes the pool (waits for connections to be returned).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
