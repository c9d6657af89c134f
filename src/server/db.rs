//! Storage: one repository layer over SQLite (embedded default) and PostgreSQL.
//!
//! How SQL stays single-sourced: every query is written once, in the SQL both engines accept
//! (`$1` placeholders, `ON CONFLICT`, `RETURNING`, integers for times, TEXT for JSON), and runs on
//! whichever pool [`Db`] holds through the [`on_db!`](crate::on_db) and [`on_tx!`](crate::on_tx)
//! macros, which expand the same code once per driver. Row types derive `sqlx::FromRow` for
//! both. Only migrations (DDL differs) and the few engine-specific features (SQLite's
//! `BEGIN IMMEDIATE`, PostgreSQL's `LISTEN`/`NOTIFY`, `SKIP LOCKED`) are written per dialect.

use anyhow::Context as _;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Postgres, Sqlite, Transaction};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex as StdMutex, OnceLock};
use std::time::Duration;

use super::config::DatabaseTarget;

#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A write transaction on either engine.
pub enum Tx {
    Sqlite(SqliteWrite),
    Postgres(Transaction<'static, Postgres>),
}

/// A SQLite write transaction and this process's turn to write (see `writer_turn`). Derefs to
/// the connection, like a `Transaction`; the turn passes on when it is committed or dropped.
pub struct SqliteWrite {
    tx: Transaction<'static, Sqlite>,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl std::ops::Deref for SqliteWrite {
    type Target = sqlx::SqliteConnection;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for SqliteWrite {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

/// How long a writer waits for its turn in this process before it falls back to SQLite's own
/// busy handling (the same as the connection's busy timeout).
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The queue of this process's writers to one SQLite file. SQLite has a single writer; when
/// several connections race for it, the losers sleep in SQLite's busy handler (1, 2, 5, 10 ...
/// 100 ms), which under load made a few writes wait hundreds of milliseconds while the lock was
/// free most of the time. Waiting in a fair async queue instead hands the lock over at once.
/// Other processes on the same file still meet SQLite's busy handler, as before.
fn writer_turn(pool: &SqlitePool) -> Arc<tokio::sync::Mutex<()>> {
    static QUEUES: OnceLock<StdMutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>> =
        OnceLock::new();
    let path = pool.connect_options().get_filename().to_path_buf();
    let mut queues = QUEUES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    queues.entry(path).or_default().clone()
}

/// Runs `$body` with `$pool` bound to the concrete pool of a [`Db`].
#[macro_export]
macro_rules! on_db {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::server::db::Db::Sqlite($pool) => $body,
            $crate::server::db::Db::Postgres($pool) => $body,
        }
    };
}

/// Runs `$body` with `$conn` bound to the concrete connection of a [`Tx`].
#[macro_export]
macro_rules! on_tx {
    ($tx:expr, |$conn:ident| $body:expr) => {
        match $tx {
            $crate::server::db::Tx::Sqlite(t) => {
                let $conn = &mut **t;
                $body
            }
            $crate::server::db::Tx::Postgres(t) => {
                let $conn = &mut **t;
                $body
            }
        }
    };
}

impl Db {
    pub async fn connect(target: &DatabaseTarget) -> anyhow::Result<Db> {
        match target {
            DatabaseTarget::Sqlite { path } => connect_sqlite(path).await,
            DatabaseTarget::Postgres { url, display } => {
                let options = PgConnectOptions::from_str(url).with_context(|| {
                    format!("DATABASE_URL {display} is not a valid PostgreSQL URL")
                })?;
                let pool = PgPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect_with(options)
                    .await
                    .map_err(|e| {
                        anyhow::anyhow!(
                            "cannot connect to PostgreSQL at {display}: {}",
                            one_line(&e)
                        )
                    })?;
                Ok(Db::Postgres(pool))
            }
        }
    }

    pub fn engine(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// Applies pending migrations for this engine.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self {
            Db::Sqlite(p) => sqlx::migrate!("migrations/sqlite").run(p).await,
            Db::Postgres(p) => sqlx::migrate!("migrations/postgres").run(p).await,
        }
        .map_err(|e| anyhow::anyhow!("database migration failed: {}", one_line(&e)))
    }

    /// Starts a write transaction. On SQLite this is `BEGIN IMMEDIATE`, which takes the write
    /// lock up front so a read-then-write transaction waits (busy timeout) instead of failing
    /// with "database is locked" when another writer commits first.
    pub async fn begin_write(&self) -> Result<Tx, sqlx::Error> {
        Ok(match self {
            Db::Sqlite(p) => {
                // A writer that cannot get its turn in time (a nested write in one task would
                // wait forever) goes ahead and meets SQLite's busy timeout as before.
                let turn = tokio::time::timeout(SQLITE_BUSY_TIMEOUT, writer_turn(p).lock_owned())
                    .await
                    .ok();
                Tx::Sqlite(SqliteWrite {
                    tx: p.begin_with("BEGIN IMMEDIATE").await?,
                    _turn: turn,
                })
            }
            Db::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }

    pub async fn close(&self) {
        on_db!(self, |p| p.close().await)
    }
}

impl Tx {
    /// The clause that locks the rows a read-then-write transaction selects until it commits.
    /// PostgreSQL at READ COMMITTED lets two transactions read the same open request and both
    /// act on it; `FOR UPDATE` makes the second wait and then read the first one's result.
    /// SQLite needs nothing: `BEGIN IMMEDIATE` already made this the only writer.
    pub fn row_lock(&self) -> &'static str {
        match self {
            Tx::Sqlite(_) => "",
            Tx::Postgres(_) => " FOR UPDATE",
        }
    }

    /// The placeholders generated statements use on this engine.
    pub fn placeholders(&self) -> super::rows::Placeholders {
        match self {
            Tx::Sqlite(_) => super::rows::Placeholders::Anonymous,
            Tx::Postgres(_) => super::rows::Placeholders::Numbered,
        }
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(t) => t.tx.commit().await,
            Tx::Postgres(t) => t.commit().await,
        }
    }
}

async fn connect_sqlite(path: &Path) -> anyhow::Result<Db> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // FULL: an acknowledged decision survives power loss, not only a process crash.
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(SQLITE_BUSY_TIMEOUT);
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot open SQLite database {}: {}",
                path.display(),
                one_line(&e)
            )
        })?;
    Ok(Db::Sqlite(pool))
}

/// Error text on one line, so every start-up failure is a single readable line.
pub fn one_line(e: &dyn std::fmt::Display) -> String {
    e.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
