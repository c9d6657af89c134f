//! Server-only code: configuration, storage, HTTP, the command line and demo data.

pub mod cli;
pub mod config;
pub mod db;
pub mod demo;
pub mod http;
pub mod ids;
pub mod jobs;
pub mod live;
pub mod metrics;
pub mod outbound;
pub mod rows;
pub mod scan;
pub mod security;

pub use db::Db;

use leptos::config::LeptosOptions;
use std::sync::Arc;

/// What every request handler and server function can reach.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub leptos_options: LeptosOptions,
    pub config: Arc<config::Config>,
    /// Bumped whenever a request changes state in this process, to wake long-polls and workers.
    changes: Arc<tokio::sync::watch::Sender<u64>>,
    /// Outgoing HTTP to notification channels (set up by admins); one per server, so its
    /// connections live on the server's runtime.
    pub http: reqwest::Client,
    /// Outgoing HTTP to agents' callback URLs: public addresses only unless configured
    /// otherwise (`outbound::callback_client`).
    pub callbacks: reqwest::Client,
    /// Signs audit checkpoints and evidence bundles.
    pub audit_key: Arc<crate::audit::signing::AuditKey>,
    /// Sends email notifications, when SMTP is configured.
    pub mailer: Option<Arc<crate::notify::Mailer>>,
    /// Request counts and latencies of this process, for `/metrics`.
    pub http_metrics: Arc<metrics::HttpMetrics>,
    /// Live inbox updates for browsers, relayed between processes on PostgreSQL.
    pub live: live::LiveHub,
    /// The inbox's per-group counts until the open requests change.
    pub inbox_counts: Arc<crate::inbox::count_cache::CountCache>,
    /// Agent submissions waiting for their group commit.
    pub submissions: Arc<crate::api::group_commit::SubmissionQueue>,
    /// Set once when the process begins a graceful shutdown.
    closing: Arc<tokio::sync::watch::Sender<bool>>,
}

impl AppState {
    /// Fails when the audit signing key cannot be read or created.
    pub fn new(db: Db, config: config::Config) -> anyhow::Result<AppState> {
        let audit_key = crate::audit::signing::AuditKey::load_or_create(&config.audit_key_file)?;
        let mailer = match &config.smtp_url {
            Some(url) => Some(Arc::new(crate::notify::Mailer::new(
                url,
                &config.smtp_from,
            )?)),
            None => None,
        };
        let callbacks = outbound::callback_client(config.allow_private_callbacks);
        Ok(AppState {
            db,
            leptos_options: http::leptos_options(&config),
            config: Arc::new(config),
            changes: Arc::new(tokio::sync::watch::channel(0).0),
            http: jobs::webhook_client(),
            callbacks,
            audit_key: Arc::new(audit_key),
            mailer,
            http_metrics: Arc::default(),
            live: live::LiveHub::default(),
            inbox_counts: Arc::default(),
            submissions: Arc::default(),
            closing: Arc::new(tokio::sync::watch::channel(false).0),
        })
    }

    pub fn notify_changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Grows whenever this process changes a request or hears that another process did.
    pub fn change_generation(&self) -> u64 {
        self.changes.borrow().wrapping_add(self.live.seen())
    }

    /// Starts a graceful shutdown: `/readyz` answers 503, event streams and long-polls end, and
    /// the job loop stops after the item it is working on, so it leaves no lease behind.
    pub fn begin_shutdown(&self) {
        self.closing.send_replace(true);
        self.notify_changed();
    }

    pub fn is_closing(&self) -> bool {
        *self.closing.borrow()
    }

    /// Resolves once [`AppState::begin_shutdown`] has been called.
    pub async fn closed(&self) {
        let mut rx = self.closing.subscribe();
        let _ = rx.wait_for(|closing| *closing).await;
    }

    /// A receiver that resolves `changed()` after the next state change.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

impl axum::extract::FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

/// The app state for the current server function or page render.
pub fn state() -> Result<AppState, crate::error::AppError> {
    leptos::prelude::use_context::<AppState>()
        .ok_or_else(|| crate::error::internal("AppState missing from the Leptos context"))
}

/// Milliseconds since the Unix epoch, the unit every stored time uses.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
