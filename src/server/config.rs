//! Configuration from flags and environment, validated up front so that a bad value stops the
//! process with one line naming the problem instead of failing later.

use crate::accounts::session::SessionSettings;
use anyhow::{bail, Context as _};
use sha2::Digest as _;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone)]
pub enum DatabaseTarget {
    Sqlite {
        path: PathBuf,
    },
    Postgres {
        url: String,
        /// The URL with any password replaced, safe to print.
        display: String,
    },
}

/// A shared secret a client presents as `Authorization: Bearer …`. Never printed, and compared
/// by its SHA-256 so the comparison's time says nothing about the secret.
#[derive(Clone)]
pub struct BearerToken {
    sha256: [u8; 32],
}

/// The shortest token accepted: a guessable secret guards nothing.
pub const MIN_TOKEN_CHARS: usize = 16;

impl BearerToken {
    pub fn new(secret: &str) -> Result<BearerToken, String> {
        if secret.chars().count() < MIN_TOKEN_CHARS || secret.chars().any(char::is_whitespace) {
            return Err(format!(
                "must be at least {MIN_TOKEN_CHARS} characters without spaces"
            ));
        }
        Ok(BearerToken {
            sha256: sha2::Sha256::digest(secret.as_bytes()).into(),
        })
    }

    /// Whether an `Authorization` header value presents this token.
    pub fn admits(&self, authorization: Option<&str>) -> bool {
        let Some(given) = authorization.and_then(|a| a.strip_prefix("Bearer ")) else {
            return false;
        };
        let given: [u8; 32] = sha2::Sha256::digest(given.trim().as_bytes()).into();
        given == self.sha256
    }
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(redacted)")
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub database: DatabaseTarget,
    pub data_dir: PathBuf,
    pub bind: SocketAddr,
    pub site_root: PathBuf,
    pub session: SessionSettings,
    /// Proxies whose `X-Forwarded-For` is believed; empty means the TCP peer is the client.
    pub trusted_proxies: Vec<IpAddr>,
    /// Delays before each webhook delivery attempt; after the last, delivery gives up.
    pub webhook_schedule: Vec<Duration>,
    /// Whether agents' callbacks may reach non-public addresses (see `server::outbound`).
    pub allow_private_callbacks: bool,
    /// When set, `GET /metrics` answers only a request bearing this token.
    pub metrics_token: Option<BearerToken>,
    /// How often background jobs look for work when nothing wakes them.
    pub job_interval: Duration,
    /// After a request's deadline passes it is escalated; this long later it expires (rejected).
    pub escalation_window: Duration,
    /// The Ed25519 key that signs audit checkpoints and evidence bundles.
    pub audit_key_file: PathBuf,
    /// A signed checkpoint is written after this many new audit events...
    pub checkpoint_every_events: i64,
    /// ...or this long after the last one, whichever comes first (only when events were added).
    pub checkpoint_every: Duration,
    /// How long audit events are meant to be kept; `None` (the default) is forever. Countersign
    /// never deletes events itself: past this age they are only reported, for archiving.
    pub audit_retention_days: Option<u32>,
    /// The address people reach this server at, for links in notifications.
    pub public_url: String,
    /// Where email notifications are sent from: `smtp://host:port` (or `smtps://…`); `None`
    /// keeps them in the outbox, marked undeliverable, visible in the delivery log.
    pub smtp_url: Option<String>,
    pub smtp_from: String,
    /// A digest goes out this long after the first item waiting for it.
    pub digest_interval: Duration,
}

/// How long an escalated request waits for the escalation group before it expires.
pub const DEFAULT_ESCALATION_WINDOW: Duration = Duration::from_secs(4 * 3600);

/// Webhook retries: immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h.
pub fn default_webhook_schedule() -> Vec<Duration> {
    [0, 5, 300, 1800, 7200, 18_000, 36_000, 36_000]
        .into_iter()
        .map(Duration::from_secs)
        .collect()
}

impl Config {
    /// Production defaults for everything but where to store and listen.
    pub fn new(
        database: DatabaseTarget,
        data_dir: PathBuf,
        bind: SocketAddr,
        site_root: PathBuf,
    ) -> Config {
        Config {
            database,
            data_dir: data_dir.clone(),
            bind,
            site_root,
            session: SessionSettings {
                idle_timeout: Duration::from_secs(30 * 60),
                absolute_timeout: Duration::from_secs(12 * 3600),
                secure_cookie: true,
            },
            trusted_proxies: Vec::new(),
            webhook_schedule: default_webhook_schedule(),
            allow_private_callbacks: false,
            metrics_token: None,
            job_interval: Duration::from_secs(1),
            escalation_window: DEFAULT_ESCALATION_WINDOW,
            audit_key_file: data_dir.join("audit-signing.key"),
            checkpoint_every_events: 1_000,
            checkpoint_every: Duration::from_secs(10 * 60),
            audit_retention_days: None,
            public_url: format!("http://{bind}"),
            smtp_url: None,
            smtp_from: "countersign@localhost".to_owned(),
            digest_interval: Duration::from_secs(3600),
        }
    }
}

/// Plain-HTTP (non-Secure) cookies are only for a server that nobody else can reach.
pub fn check_insecure_cookies(insecure: bool, bind: &SocketAddr) -> anyhow::Result<()> {
    if insecure && !bind.ip().is_loopback() {
        bail!(
            "--insecure-cookies is only allowed when listening on a loopback address, not {bind}; \
             serve over HTTPS (or behind a TLS proxy) instead"
        );
    }
    Ok(())
}

/// Interprets `DATABASE_URL`. Unset means the embedded SQLite file under the data dir.
pub fn database_target(url: Option<&str>, data_dir: &Path) -> anyhow::Result<DatabaseTarget> {
    let Some(url) = url.map(str::trim).filter(|u| !u.is_empty()) else {
        return Ok(DatabaseTarget::Sqlite {
            path: data_dir.join("countersign.db"),
        });
    };
    if let Some(rest) = url.strip_prefix("sqlite:") {
        let rest = rest.trim_start_matches("//");
        let path = rest.split('?').next().unwrap_or_default();
        if path.is_empty() || path == ":memory:" {
            bail!(
                "DATABASE_URL {url:?} must name a SQLite file, e.g. sqlite://data/countersign.db"
            );
        }
        return Ok(DatabaseTarget::Sqlite {
            path: PathBuf::from(path),
        });
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let mut parsed = url::Url::parse(url)
            .map_err(|e| anyhow::anyhow!("DATABASE_URL is not a valid PostgreSQL URL: {e}"))?;
        if parsed.host_str().is_none_or(str::is_empty) {
            bail!("DATABASE_URL has no host; expected postgres://user:password@host:port/database");
        }
        if parsed.password().is_some() {
            let _ = parsed.set_password(Some("***"));
        }
        return Ok(DatabaseTarget::Postgres {
            url: url.to_owned(),
            display: parsed.to_string(),
        });
    }
    let scheme: String = url
        .split(':')
        .next()
        .unwrap_or_default()
        .chars()
        .take(20)
        .collect();
    bail!("DATABASE_URL scheme {scheme:?} is not supported; use sqlite://PATH or postgres://...")
}

/// Creates the data dir if needed and proves it is writable.
pub fn prepare_data_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("data dir {} cannot be created", dir.display()))?;
    let probe = dir.join(".countersign-write-test");
    std::fs::write(&probe, b"ok")
        .with_context(|| format!("data dir {} is not writable", dir.display()))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// Makes sure the parent directory of a SQLite file exists and is writable.
pub fn prepare_sqlite_path(path: &Path) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        prepare_data_dir(parent)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bearer_token_admits_only_itself_and_is_never_printed() {
        let token = BearerToken::new("s3cret-metrics-token").unwrap();
        assert!(token.admits(Some("Bearer s3cret-metrics-token")));
        for refused in [
            None,
            Some(""),
            Some("Bearer "),
            Some("Bearer s3cret-metrics-toke"),
            Some("Bearer s3cret-metrics-token2"),
            Some("Basic s3cret-metrics-token"),
            Some("s3cret-metrics-token"),
        ] {
            assert!(!token.admits(refused), "{refused:?}");
        }
        assert!(!format!("{token:?}").contains("s3cret"));
        for weak in ["", "short", "fifteen-chars-x", "sixteen chars  x"] {
            assert!(BearerToken::new(weak).is_err(), "{weak:?} is refused");
        }
    }

    #[test]
    fn unset_url_means_sqlite_in_the_data_dir() {
        match database_target(None, Path::new("/srv/cs")).unwrap() {
            DatabaseTarget::Sqlite { path } => {
                assert_eq!(path, PathBuf::from("/srv/cs/countersign.db"))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            database_target(Some("  "), Path::new("d")).unwrap(),
            DatabaseTarget::Sqlite { .. }
        ));
    }

    #[test]
    fn sqlite_urls_name_a_file() {
        match database_target(Some("sqlite://x/y.db?mode=rwc"), Path::new("d")).unwrap() {
            DatabaseTarget::Sqlite { path } => assert_eq!(path, PathBuf::from("x/y.db")),
            other => panic!("{other:?}"),
        }
        assert!(database_target(Some("sqlite::memory:"), Path::new("d")).is_err());
    }

    #[test]
    fn postgres_urls_hide_the_password() {
        match database_target(Some("postgres://app:hunter2@db:5432/cs"), Path::new("d")).unwrap() {
            DatabaseTarget::Postgres { display, url } => {
                assert!(!display.contains("hunter2"), "{display}");
                assert!(url.contains("hunter2"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_urls_are_refused_with_one_line() {
        for bad in [
            "mysql://x/y",
            "postgres://",
            "postgres://:5432/x",
            "nonsense",
        ] {
            let e = database_target(Some(bad), Path::new("d"))
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("DATABASE_URL"), "{bad}: {e}");
            assert!(!e.contains('\n'));
        }
    }

    #[test]
    fn insecure_cookies_only_on_loopback() {
        assert!(check_insecure_cookies(true, &"127.0.0.1:3000".parse().unwrap()).is_ok());
        assert!(check_insecure_cookies(true, &"[::1]:3000".parse().unwrap()).is_ok());
        assert!(check_insecure_cookies(false, &"0.0.0.0:3000".parse().unwrap()).is_ok());
        let e = check_insecure_cookies(true, &"0.0.0.0:3000".parse().unwrap()).unwrap_err();
        assert!(e
            .to_string()
            .contains("only allowed when listening on a loopback address"));
    }

    #[test]
    fn a_data_dir_under_a_file_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("plain-file");
        std::fs::write(&file, b"x").unwrap();
        let e = prepare_data_dir(&file.join("sub")).unwrap_err();
        assert!(format!("{e:#}").contains("cannot be created"), "{e:#}");
        prepare_data_dir(&tmp.path().join("fresh")).unwrap();
    }
}
