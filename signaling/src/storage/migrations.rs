//! Embedded migrations: each is portable SQL compiled into the binary and applied once, in
//! order, recorded in `schema_migrations`.

use sqlx::{AnyPool, Row};

use crate::error::StorageError;

/// `(version, SQL)` in order.
pub const MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("../../migrations/0001_initial.sql"))];

/// Applies the migrations not yet recorded.
pub async fn run(pool: &AnyPool) -> Result<(), StorageError> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )
    .execute(pool)
    .await?;
    let rows = sqlx::query("SELECT version FROM schema_migrations")
        .fetch_all(pool)
        .await?;
    let mut done = Vec::with_capacity(rows.len());
    for r in &rows {
        done.push(r.try_get::<i64, _>("version")?);
    }
    for (version, sql) in MIGRATIONS {
        if done.contains(version) {
            continue;
        }
        let mut tx = pool.begin().await?;
        for stmt in sql
            .split(';')
            .map(str::trim)
            .filter(|s| !strip_comments(s).is_empty())
        {
            sqlx::query(stmt).execute(&mut *tx).await?;
        }
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
            .bind(*version)
            .bind(crate::timefmt::unix_now())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    Ok(())
}

fn strip_comments(s: &str) -> String {
    s.lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_owned()
}
