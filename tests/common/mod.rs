//! Test support: fresh databases on SQLite and PostgreSQL, and the real server on a random port.
#![allow(dead_code)]

use countersign::server::cli::DemoArgs;
use countersign::server::config::{Config, DatabaseTarget};
use countersign::server::{demo, http, Db};
use std::net::SocketAddr;
use std::path::PathBuf;
use tempfile::TempDir;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A migrated, empty database that lives as long as this value.
pub struct TestDb {
    pub db: Db,
    pub target: DatabaseTarget,
    pub dir: TempDir,
}

/// The PostgreSQL server the test command started (an admin URL), if any.
fn pg_admin_url() -> Option<String> {
    match std::env::var("COUNTERSIGN_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("COUNTERSIGN_REQUIRE_PG").is_ok() {
                panic!("COUNTERSIGN_REQUIRE_PG is set but COUNTERSIGN_TEST_PG_URL is not");
            }
            None
        }
    }
}

/// A fresh database on `engine`, or `None` (with a note) when PostgreSQL is not available and
/// not required. The test command (`./dev test`) always provides and requires it.
pub async fn fresh_db(engine: Engine) -> Option<TestDb> {
    let dir = tempfile::tempdir().expect("temp dir");
    let target = match engine {
        Engine::Sqlite => DatabaseTarget::Sqlite {
            path: dir.path().join("countersign.db"),
        },
        Engine::Postgres => {
            let Some(admin) = pg_admin_url() else {
                eprintln!("skipping PostgreSQL variant: COUNTERSIGN_TEST_PG_URL is not set");
                return None;
            };
            let name = format!("cs_test_{}", uuid_like());
            let admin_db = Db::connect(&DatabaseTarget::Postgres {
                url: admin.clone(),
                display: "test admin".into(),
            })
            .await
            .expect("connect to the test PostgreSQL server");
            if let Db::Postgres(p) = &admin_db {
                drop_abandoned_test_databases(p).await;
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(p)
                    .await
                    .expect("create test database");
            }
            admin_db.close().await;
            let url = match admin.rfind('/') {
                Some(i) => format!("{}/{name}", &admin[..i]),
                None => panic!("COUNTERSIGN_TEST_PG_URL must end in /DATABASE"),
            };
            DatabaseTarget::Postgres { url, display: name }
        }
    };
    let db = Db::connect(&target)
        .await
        .expect("connect to fresh database");
    db.migrate().await.expect("migrate fresh database");
    Some(TestDb { db, target, dir })
}

/// Drops the databases earlier test processes created and left behind (a test process ends
/// without dropping its own), once per process: on a long-lived PostgreSQL server they would
/// otherwise fill the disk. A database is abandoned when the process named in it is gone.
async fn drop_abandoned_test_databases(admin: &sqlx::PgPool) {
    static ONCE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    ONCE.get_or_init(|| async {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT datname FROM pg_database WHERE datname LIKE 'cs\\_test\\_%'",
        )
        .fetch_all(admin)
        .await
        .unwrap_or_default();
        for name in names {
            let pid = name
                .strip_prefix("cs_test_")
                .and_then(|rest| rest.split('_').next())
                .and_then(|pid| pid.parse::<u32>().ok());
            let abandoned = pid.is_some_and(|pid| {
                pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
            });
            if abandoned {
                // Best effort: another process may be dropping it at the same moment.
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(admin)
                    .await;
            }
        }
    })
    .await;
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{}_{}_{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn demo_args(seed: u64, days: u32, per_day: u32) -> DemoArgs {
    DemoArgs {
        seed,
        days,
        per_day,
        force: false,
    }
}

/// The real server (the same router `countersign serve` runs) on a random loopback port.
pub struct TestServer {
    pub base: String,
    pub db: TestDb,
    pub state: countersign::server::AppState,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    jobs: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    pub async fn start(db: TestDb) -> TestServer {
        TestServer::start_with(db, |_| {}).await
    }

    /// Starts with a configuration adjusted by `tweak` (short timeouts, secure cookies...).
    pub async fn start_with(db: TestDb, tweak: impl FnOnce(&mut Config)) -> TestServer {
        let mut config = Config::new(
            db.target.clone(),
            db.dir.path().to_path_buf(),
            "127.0.0.1:0".parse::<SocketAddr>().unwrap(),
            PathBuf::from("target/site"),
        );
        // The test client speaks plain HTTP on loopback, as `--insecure-cookies` allows.
        config.session.secure_cookie = false;
        // Test webhook receivers listen on loopback; `callbacks_must_be_public` covers the default.
        config.allow_private_callbacks = true;
        tweak(&mut config);
        let listener = http::bind(&config).await.expect("bind random port");
        let addr = listener.local_addr().unwrap();
        config.public_url = format!("http://{addr}");
        let state = countersign::server::AppState::new(db.db.clone(), config).expect("app state");
        let app = http::router(state.clone());
        let jobs = countersign::server::jobs::spawn(state.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            http::serve(listener, app, async {
                let _ = rx.await;
            })
            .await
            .expect("server runs");
        });
        TestServer {
            base: format!("http://{addr}"),
            db,
            state,
            shutdown: Some(tx),
            task: Some(task),
            jobs: Some(jobs),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A browser-like client: keeps cookies, does not follow redirects (tests look at them),
    /// and sends the `Origin` a browser would send from our own pages.
    pub fn client(&self) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::ORIGIN, self.base.parse().unwrap());
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(headers)
            .build()
            .unwrap()
    }

    /// Signs `client` in; returns the redirect target.
    pub async fn sign_in(&self, client: &reqwest::Client, email: &str, password: &str) -> String {
        let res = client
            .post(self.url("/auth/login"))
            .form(&[("email", email), ("password", password), ("next", "/inbox")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303, "sign-in answers with a redirect");
        res.headers()["location"].to_str().unwrap().to_owned()
    }

    /// A client signed in as a demo person (the demo must be loaded).
    pub async fn signed_in(&self, email: &str) -> reqwest::Client {
        let client = self.client();
        let to = self
            .sign_in(&client, email, countersign::server::demo::DEMO_PASSWORD)
            .await;
        assert_eq!(to, "/inbox", "{email} signs in");
        client
    }

    pub async fn stop(mut self) {
        self.state.begin_shutdown();
        if let Some(jobs) = self.jobs.take() {
            jobs.abort();
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(std::time::Duration::from_secs(10), task)
                .await
                .is_err()
            {
                eprintln!("server did not shut down within 10 s; aborting it");
                abort.abort();
            }
        }
    }
}

/// Loads demo data with a fixed end time, so results are reproducible.
pub async fn load_demo(db: &Db, seed: u64, days: u32, per_day: u32, now: i64) -> demo::DemoSummary {
    demo::load(db, &demo_args(seed, days, per_day), now)
        .await
        .expect("demo loads")
        .expect("database was empty")
}

/// Fails a test that hangs instead of letting it stall the whole suite.
pub async fn within_time_limit(test: impl std::future::Future<Output = ()>) {
    if let Ok(filter) = std::env::var("TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
    if tokio::time::timeout(std::time::Duration::from_secs(120), test)
        .await
        .is_err()
    {
        panic!("test did not finish within 120 s");
    }
}

/// `SELECT COUNT(*) FROM {from_where}`, with `args` bound to `$1`, `$2`, ... in order.
pub async fn count(db: &Db, from_where: &str, args: &[&str]) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {from_where}");
    countersign::on_db!(db, |p| {
        let mut q = sqlx::query_scalar::<_, i64>(&sql);
        for a in args {
            q = q.bind(*a);
        }
        q.fetch_one(p).await.expect("count query runs")
    })
}

/// A server on a fresh database holding a demo history (`seed`, `days`, `per_day`).
pub async fn with_demo(engine: Engine, seed: u64, days: u32, per_day: u32) -> Option<TestServer> {
    with_demo_and(engine, seed, days, per_day, |_| {}).await
}

/// [`with_demo`] with the server's configuration adjusted by `tweak`.
pub async fn with_demo_and(
    engine: Engine,
    seed: u64,
    days: u32,
    per_day: u32,
    tweak: impl FnOnce(&mut Config),
) -> Option<TestServer> {
    let t = fresh_db(engine).await?;
    load_demo(&t.db, seed, days, per_day, countersign::server::now_ms()).await;
    Some(TestServer::start_with(t, tweak).await)
}

/// Generates `#[tokio::test]`s named `sqlite` and `postgres` that run `$body(engine)`.
#[macro_export]
macro_rules! on_both_engines {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::common::within_time_limit(super::$body($crate::common::Engine::Sqlite))
                    .await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::common::within_time_limit(super::$body($crate::common::Engine::Postgres))
                    .await
            }
        }
    };
}
