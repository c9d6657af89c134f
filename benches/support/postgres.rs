//! The benchmarks' PostgreSQL side: the same generated data as on SQLite, loaded into a
//! database on the server named by `COUNTERSIGN_BENCH_PG_URL` (a URL to an existing database,
//! by a role that may create databases).
//!
//! The fixtures are generated once into SQLite (`support/history.rs`, the export bench's
//! chain) and copied table by table with `COPY … FROM STDIN` into a freshly migrated PostgreSQL
//! database, which is kept as a template for later runs; each run works on its own copy
//! (`CREATE DATABASE … TEMPLATE`, a file copy on the server), so what a run writes never piles
//! up in the fixture.

#![allow(dead_code)]

use countersign::server::config::DatabaseTarget;
use countersign::server::Db;
use sqlx::{Connection, Executor, PgConnection};
use std::path::Path;
use std::time::Instant;

/// The PostgreSQL server to report on, if any.
pub fn url() -> Option<String> {
    std::env::var("COUNTERSIGN_BENCH_PG_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// The URL of database `name` on the server of `admin`.
pub fn database_url(admin: &str, name: &str) -> String {
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(admin);
    format!("{base}/{name}")
}

pub fn target(admin: &str, name: &str) -> DatabaseTarget {
    DatabaseTarget::Postgres {
        url: database_url(admin, name),
        display: name.to_owned(),
    }
}

async fn admin(url: &str) -> PgConnection {
    PgConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to COUNTERSIGN_BENCH_PG_URL: {e}"))
}

async fn comment_of(c: &mut PgConnection, name: &str) -> Option<String> {
    sqlx::query_scalar(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
    )
    .bind(name)
    .fetch_optional(&mut *c)
    .await
    .unwrap()
    .flatten()
}

/// A template database `name` holding the rows of the SQLite file `sqlite`, loaded on first use
/// and again whenever the file changes (its size and modification time are kept in the
/// database's comment, written last).
pub async fn template_of(admin_url: &str, name: &str, sqlite: &Path) -> String {
    let meta = std::fs::metadata(sqlite).unwrap();
    let stamp = format!("complete {} {:?}", meta.len(), meta.modified().unwrap());
    let mut c = admin(admin_url).await;
    if comment_of(&mut c, name).await.as_deref() == Some(stamp.as_str()) {
        return name.to_owned();
    }
    c.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await
        .unwrap();
    c.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    let started = Instant::now();
    let rows = copy_all(&database_url(admin_url, name), sqlite).await;
    c.execute(format!("COMMENT ON DATABASE {name} IS '{stamp}'").as_str())
        .await
        .unwrap();
    c.close().await.unwrap();
    println!(
        "loaded {rows} rows into PostgreSQL database {name} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    name.to_owned()
}

/// A new database `name` copied from `template` (dropped first if a run left it behind).
pub async fn copy_of(admin_url: &str, template: &str, name: &str) -> DatabaseTarget {
    let mut c = admin(admin_url).await;
    c.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await
        .unwrap();
    c.execute(format!("CREATE DATABASE {name} TEMPLATE {template}").as_str())
        .await
        .unwrap();
    c.close().await.unwrap();
    target(admin_url, name)
}

pub async fn drop_database(admin_url: &str, name: &str) {
    let mut c = admin(admin_url).await;
    let _ = c
        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await;
    let _ = c.close().await;
}

/// Migrates the empty database at `url` and copies every row of the SQLite file into it; the
/// rows copied.
async fn copy_all(url: &str, sqlite: &Path) -> u64 {
    let db = Db::connect(&DatabaseTarget::Postgres {
        url: url.to_owned(),
        display: "bench".into(),
    })
    .await
    .unwrap();
    db.migrate().await.unwrap();
    db.close().await;
    let mut pg = PgConnection::connect(url).await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' \
         AND tablename <> '_sqlx_migrations' ORDER BY tablename",
    )
    .fetch_all(&mut pg)
    .await
    .unwrap();
    // The copy is whole and consistent; checking each row's references on the way in only
    // makes it slower (and would need the tables in dependency order). The setting also keeps
    // the trail's append-only triggers from refusing the truncation of a fresh database.
    pg.execute("SET session_replication_role = replica")
        .await
        .unwrap();
    // What the migrations seeded is in the SQLite file too; the copy replaces it.
    pg.execute(format!("TRUNCATE {}", tables.join(", ")).as_str())
        .await
        .unwrap();
    let lite = rusqlite::Connection::open_with_flags(
        sqlite,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .unwrap();
    let mut total = 0;
    for table in &tables {
        let columns: Vec<String> = sqlx::query_scalar(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position",
        )
        .bind(table)
        .fetch_all(&mut pg)
        .await
        .unwrap();
        total += copy_table(&lite, &mut pg, table, &columns).await;
    }
    // As autovacuum leaves a table that has been in use for a while: statistics, and the
    // visibility map that lets the inbox counts read their covering indexes alone.
    pg.execute("VACUUM (ANALYZE)").await.unwrap();
    pg.close().await.unwrap();
    total
}

/// Bytes sent to the server per `COPY` message.
const CHUNK: usize = 1 << 20;

async fn copy_table(
    lite: &rusqlite::Connection,
    pg: &mut PgConnection,
    table: &str,
    columns: &[String],
) -> u64 {
    let exists: bool = lite
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [table],
            |r| r.get(0),
        )
        .unwrap();
    if !exists {
        return 0;
    }
    let list = columns
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let mut select = lite
        .prepare(&format!("SELECT {list} FROM \"{table}\""))
        .unwrap();
    let mut rows = select.query([]).unwrap();
    let mut copy = pg
        .copy_in_raw(&format!("COPY \"{table}\" ({list}) FROM STDIN"))
        .await
        .unwrap();
    let mut buffer = Vec::with_capacity(CHUNK + 64 * 1024);
    let mut n = 0;
    while let Some(row) = rows.next().unwrap() {
        for i in 0..columns.len() {
            if i > 0 {
                buffer.push(b'\t');
            }
            copy_text(&mut buffer, row.get_ref(i).unwrap());
        }
        buffer.push(b'\n');
        n += 1;
        if buffer.len() >= CHUNK {
            copy.send(std::mem::take(&mut buffer)).await.unwrap();
            buffer.reserve(CHUNK + 64 * 1024);
        }
    }
    if !buffer.is_empty() {
        copy.send(buffer).await.unwrap();
    }
    copy.finish().await.unwrap();
    n
}

/// One value in `COPY`'s text format: `\N` for NULL, backslash escapes for the separators.
fn copy_text(out: &mut Vec<u8>, value: rusqlite::types::ValueRef<'_>) {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Null => out.extend_from_slice(b"\\N"),
        ValueRef::Integer(i) => out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes()),
        ValueRef::Real(f) => out.extend_from_slice(f.to_string().as_bytes()),
        ValueRef::Text(t) => {
            for &b in t {
                match b {
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b'\r' => out.extend_from_slice(b"\\r"),
                    b'\t' => out.extend_from_slice(b"\\t"),
                    _ => out.push(b),
                }
            }
        }
        ValueRef::Blob(b) => {
            out.extend_from_slice(b"\\\\x");
            out.extend_from_slice(hex::encode(b).as_bytes());
        }
    }
}
