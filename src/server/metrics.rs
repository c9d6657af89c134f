//! Operations endpoints: `/readyz` (the database answers) and `/metrics` (Prometheus text
//! format): HTTP request counts and latencies from this process, and queue depths and pending
//! work from the database, which every process sees alike. Counts only: no payloads, no people.

use super::AppState;
use crate::on_db;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Upper bounds of the latency histogram, in milliseconds.
const BUCKETS_MS: [u64; 9] = [5, 10, 25, 50, 100, 250, 500, 1000, 5000];

/// Request counters for this process.
#[derive(Default)]
pub struct HttpMetrics {
    /// By status class: 1xx..5xx at index 0..4.
    by_class: [AtomicU64; 5],
    /// Cumulative counts per bucket, and the +Inf bucket last.
    buckets: [AtomicU64; BUCKETS_MS.len() + 1],
    sum_micros: AtomicU64,
    /// Requests being answered right now (what a graceful shutdown waits for).
    in_flight: AtomicU64,
}

impl HttpMetrics {
    fn record(&self, status: StatusCode, elapsed_micros: u64) {
        let class = (status.as_u16() / 100).clamp(1, 5) as usize - 1;
        self.by_class[class].fetch_add(1, Ordering::Relaxed);
        let ms = elapsed_micros / 1000;
        for (i, bound) in BUCKETS_MS.iter().enumerate() {
            if ms <= *bound {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.buckets[BUCKETS_MS.len()].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(elapsed_micros, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String) {
        out.push_str("# HELP countersign_http_requests_total HTTP requests answered by this process, by status class.\n# TYPE countersign_http_requests_total counter\n");
        for (i, c) in self.by_class.iter().enumerate() {
            let _ = writeln!(
                out,
                "countersign_http_requests_total{{class=\"{}xx\"}} {}",
                i + 1,
                c.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP countersign_http_requests_in_flight Requests this process is answering now.\n\
             # TYPE countersign_http_requests_in_flight gauge\n\
             countersign_http_requests_in_flight {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        out.push_str("# HELP countersign_http_request_duration_seconds Time to answer, by this process.\n# TYPE countersign_http_request_duration_seconds histogram\n");
        for (i, bound) in BUCKETS_MS.iter().enumerate() {
            let _ = writeln!(
                out,
                "countersign_http_request_duration_seconds_bucket{{le=\"{}\"}} {}",
                *bound as f64 / 1000.0,
                self.buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.buckets[BUCKETS_MS.len()].load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "countersign_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}\n\
             countersign_http_request_duration_seconds_sum {}\n\
             countersign_http_request_duration_seconds_count {count}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
    }
}

/// Middleware: counts every answered request and its time.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    state.http_metrics.in_flight.fetch_add(1, Ordering::Relaxed);
    let response = next.run(request).await;
    state.http_metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
    state
        .http_metrics
        .record(response.status(), started.elapsed().as_micros() as u64);
    response
}

/// `GET /readyz`: 200 when the database answers and the process is not shutting down, 503
/// otherwise.
pub async fn ready(State(state): State<AppState>) -> Response {
    if state.is_closing() {
        // A load balancer stops sending new work here while in-flight requests finish.
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    let ok: Result<i64, sqlx::Error> = on_db!(&state.db, |p| sqlx::query_scalar(
        "SELECT CAST(1 AS BIGINT)"
    )
    .fetch_one(p)
    .await);
    match ok {
        Ok(_) => (StatusCode::OK, "ready").into_response(),
        Err(e) => {
            tracing::warn!("not ready: {e}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the database does not answer",
            )
                .into_response()
        }
    }
}

fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', " ")
}

/// `GET /metrics`: Prometheus text format; with a configured token, only for a request that
/// bears it.
pub async fn metrics(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    if let Some(token) = &state.config.metrics_token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if !token.admits(given) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer realm=\"metrics\"")],
                "/metrics needs the bearer token the server was started with (COUNTERSIGN_METRICS_TOKEN)\n",
            )
                .into_response();
        }
    }
    let mut out = String::new();
    state.http_metrics.render(&mut out);
    state.submissions.render_metrics(&mut out);
    let gauges = async {
        let pending: Vec<(String, i64)> = on_db!(&state.db, |p| sqlx::query_as(
            "SELECT COALESCE(g.key, '(none)'), COUNT(*) FROM action_requests r \
             LEFT JOIN gates g ON g.id = r.gate_id \
             WHERE r.status IN ('pending', 'in_review', 'escalated') GROUP BY COALESCE(g.key, '(none)')"
        )
        .fetch_all(p)
        .await)?;
        let scalars: Vec<(&str, &str, &str)> = vec![
            ("countersign_webhooks_waiting", "Webhook messages not yet delivered and not given up.", "SELECT COUNT(*) FROM webhook_outbox WHERE delivered_at IS NULL AND gave_up_at IS NULL"),
            ("countersign_webhooks_given_up", "Webhook messages given up after every retry.", "SELECT COUNT(*) FROM webhook_outbox WHERE gave_up_at IS NOT NULL"),
            ("countersign_webhook_failed_attempts", "Webhook delivery attempts that failed.", "SELECT COUNT(*) FROM webhook_attempts WHERE status_code IS NULL OR status_code < 200 OR status_code >= 300"),
            ("countersign_webhooks_oldest_waiting_seconds", "Age of the oldest webhook message not yet delivered (0 when none waits).", "SELECT CAST(COALESCE(($1 - MIN(created_at)) / 1000, 0) AS BIGINT) FROM webhook_outbox WHERE delivered_at IS NULL AND gave_up_at IS NULL"),
            ("countersign_webhooks_leased", "Webhook messages a process is delivering now (leased).", "SELECT COUNT(*) FROM webhook_outbox WHERE delivered_at IS NULL AND locked_until IS NOT NULL AND locked_until >= $1"),
            ("countersign_notifications_waiting", "Notifications not yet delivered and not given up.", "SELECT COUNT(*) FROM notifications WHERE delivered_at IS NULL AND gave_up_at IS NULL"),
            ("countersign_notifications_given_up", "Notifications given up.", "SELECT COUNT(*) FROM notifications WHERE gave_up_at IS NOT NULL"),
            ("countersign_breakers_open", "Open circuit breakers.", "SELECT COUNT(*) FROM breakers WHERE state = 'open'"),
            ("countersign_audit_events", "Events in the audit trail (its head sequence number).", "SELECT COALESCE(MAX(seq), 0) FROM audit_events"),
        ];
        let mut values = Vec::with_capacity(scalars.len());
        for (name, help, sql) in scalars {
            // A query that uses $1 gets the current time (PostgreSQL refuses unused binds).
            let v: i64 = on_db!(&state.db, |p| {
                let q = sqlx::query_scalar(sql);
                let q = if sql.contains("$1") {
                    q.bind(super::now_ms())
                } else {
                    q
                };
                q.fetch_one(p).await
            })?;
            values.push((name, help, v));
        }
        Ok::<_, sqlx::Error>((pending, values))
    }
    .await;
    match gauges {
        Err(e) => {
            tracing::warn!("metrics: {e}");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "the database does not answer",
            )
                .into_response();
        }
        Ok((pending, values)) => {
            out.push_str("# HELP countersign_pending_requests Open requests waiting for people, by gate.\n# TYPE countersign_pending_requests gauge\n");
            for (gate, n) in pending {
                let _ = writeln!(
                    out,
                    "countersign_pending_requests{{gate=\"{}\"}} {n}",
                    label(&gate)
                );
            }
            let _ = writeln!(
                out,
                "# HELP countersign_live_subscribers Open inbox event streams on this process.\n\
                 # TYPE countersign_live_subscribers gauge\n\
                 countersign_live_subscribers {}",
                state.live.subscribers()
            );
            for (name, help, v) in values {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
            }
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}
