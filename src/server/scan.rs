//! Long read-only scans of a SQLite database, in batches.
//!
//! sqlx runs each SQLite connection on its own thread and hands every row to the async task
//! through a channel, waking the other side per row. For a statistics scan of 400,000 requests
//! that hand-off (thread switches, a copy and an allocation per value) was two thirds of the time
//! (BENCHMARKS.md, "From the database"). A scan here opens its own read-only connection on a
//! blocking thread, maps rows there, and passes them on `BATCH` at a time.
//!
//! The file is read, not mapped (`mmap_size`): mapping saved another 0.2 to 0.7 s of a 3 s scan
//! but put every page the scan touched into the process's resident set (1.25 GB for a 1.4 GB
//! file), which monitoring and the kernel's out-of-memory scoring count as the server's own.

use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, Row};
use std::path::PathBuf;
use std::time::Duration;

/// Rows passed from the scan's thread to the async task at a time.
const BATCH: usize = 1024;

/// Batches in flight: the scan reads ahead while the caller consumes.
const BATCHES_AHEAD: usize = 4;

/// Why a scan failed (logged by the caller; never shown to a browser).
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("statistics scan: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("statistics scan: {0}")]
    Stopped(String),
}

/// Runs `sql` with `binds` (`$1`, `$2`, … in order) on the SQLite file at `path`, maps each row
/// with `map` on the scan's thread, and calls `each` with them in order. Stops at the first
/// error, from the query, `map` or `each`.
pub async fn for_each_row<R, E>(
    path: PathBuf,
    sql: String,
    binds: Vec<Value>,
    map: fn(&Row<'_>) -> rusqlite::Result<R>,
    mut each: impl FnMut(R) -> Result<(), E>,
) -> Result<(), E>
where
    R: Send + 'static,
    E: From<ScanError>,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<R>, ScanError>>(BATCHES_AHEAD);
    let reader = tokio::task::spawn_blocking(move || {
        if let Err(e) = read(&path, &sql, &binds, map, &tx) {
            // The receiver may be gone already (the caller stopped); nothing else to tell.
            let _ = tx.blocking_send(Err(e));
        }
    });
    while let Some(batch) = rx.recv().await {
        for row in batch? {
            each(row)?;
        }
    }
    reader
        .await
        .map_err(|e| ScanError::Stopped(e.to_string()))?;
    Ok(())
}

fn read<R>(
    path: &std::path::Path,
    sql: &str,
    binds: &[Value],
    map: fn(&Row<'_>) -> rusqlite::Result<R>,
    tx: &tokio::sync::mpsc::Sender<Result<Vec<R>, ScanError>>,
) -> Result<(), ScanError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    let mut stmt = conn.prepare(sql)?;
    for (i, value) in binds.iter().enumerate() {
        let name = format!("${}", i + 1);
        let index = stmt
            .parameter_index(&name)?
            .ok_or_else(|| ScanError::Stopped(format!("the query has no parameter {name}")))?;
        stmt.raw_bind_parameter(index, value)?;
    }
    let mut rows = stmt.raw_query();
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(row) = rows.next()? {
        batch.push(map(row)?);
        if batch.len() == BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            if tx.blocking_send(Ok(full)).is_err() {
                return Ok(()); // the caller stopped
            }
        }
    }
    if !batch.is_empty() {
        let _ = tx.blocking_send(Ok(batch));
    }
    Ok(())
}
