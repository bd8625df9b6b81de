//! One SeaORM connection for PostgreSQL and SQLite, migrations, and the write-transaction helper
//! every counter-moving feature uses.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, SqlErr, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use secrecy::ExposeSecret;

use crate::config::{DatabaseKind, DatabaseSettings};

/// Connects to the configured database. For SQLite the file and its folder are created if
/// missing, and every connection runs in WAL mode (readers never block the writer) with a busy
/// timeout (writers queue instead of failing) and foreign keys enforced.
pub async fn connect(settings: &DatabaseSettings) -> anyhow::Result<DatabaseConnection> {
    let url = settings.url.expose_secret().to_string();
    let mut opts = ConnectOptions::new(url.clone());
    opts.max_connections(settings.max_connections)
        .acquire_timeout(Duration::from_secs(settings.acquire_timeout_secs))
        .connect_timeout(Duration::from_secs(settings.acquire_timeout_secs))
        .sqlx_logging(false);

    if settings.kind()? == DatabaseKind::Sqlite {
        if let Some(parent) = sqlite_path(&url).and_then(|p| Path::new(p).parent()) {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(|e| {
                    anyhow::anyhow!("cannot create the folder {}: {e}", parent.display())
                })?;
            }
        }
        let busy = Duration::from_millis(settings.busy_timeout_ms);
        opts.map_sqlx_sqlite_opts(move |o: SqliteConnectOptions| {
            o.create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(busy)
                .foreign_keys(true)
        });
    }

    Database::connect(opts)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to {}: {e}", settings.display_url()))
}

/// The file path of a `sqlite://PATH?query` URL.
fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then_some(path)
}

/// Applies pending migrations; returns how many were applied.
pub async fn migrate(db: &DatabaseConnection) -> Result<usize, DbErr> {
    let pending = Migrator::get_pending_migrations(db).await?.len();
    Migrator::up(db, None).await?;
    Ok(pending)
}

/// Begins a transaction that will write. On SQLite it is `BEGIN IMMEDIATE`: the write lock is
/// taken up front, so concurrent writers wait their turn (busy timeout) instead of failing with
/// SQLITE_BUSY when a read inside the transaction is upgraded to a write. On PostgreSQL it is
/// a plain transaction; row locks and conditional statements arbitrate there.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    })
    .await
}

/// Runs `work` in a write transaction (see [`begin_write`]); commits on `Ok`, rolls back on
/// `Err`. The error type only needs to absorb `DbErr`, so handlers can use `ApiError` directly.
pub async fn write<T, E, F>(db: &DatabaseConnection, work: F) -> Result<T, E>
where
    F: for<'c> FnOnce(
            &'c DatabaseTransaction,
        ) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>
        + Send,
    E: From<DbErr>,
{
    let txn = begin_write(db).await?;
    match work(&txn).await {
        Ok(value) => {
            txn.commit().await?;
            Ok(value)
        }
        Err(err) => {
            // The caller's error is the one worth reporting; a failed rollback is logged and the
            // connection is discarded by the pool.
            if let Err(rollback) = txn.rollback().await {
                tracing::warn!(error = %rollback, "rollback failed");
            }
            Err(err)
        }
    }
}

/// True when a unique index refused the write: the arbiter of a race that another writer won.
pub fn is_unique_violation(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// A human description for the startup log, without credentials.
pub fn describe(db: &DatabaseConnection, settings: &DatabaseSettings) -> String {
    match db.get_database_backend() {
        DbBackend::Sqlite => format!(
            "SQLite at {} (WAL, busy timeout {} ms)",
            sqlite_path(settings.url.expose_secret()).unwrap_or("?"),
            settings.busy_timeout_ms
        ),
        DbBackend::Postgres => format!("PostgreSQL at {}", settings.display_url()),
        other => format!("{other:?}"),
    }
}

/// Answers when the database does; used by `/readyz`.
pub async fn ping(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.execute_unprepared("SELECT 1").await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::sqlite_path;

    #[test]
    fn sqlite_paths_are_read_from_urls() {
        assert_eq!(
            sqlite_path("sqlite://./data/memberhub.db"),
            Some("./data/memberhub.db")
        );
        assert_eq!(
            sqlite_path("sqlite:///tmp/x.db?mode=rwc"),
            Some("/tmp/x.db")
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
    }
}
