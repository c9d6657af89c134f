//! The HTTP server: routes, middleware and graceful shutdown.

use super::config::Config;
use super::{security, AppState, Db};
use crate::accounts::session;
use crate::app::{shell, App};
use axum::middleware;
use axum::routing::get;
use axum::Router;
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tokio::net::TcpListener;
use tower_http::compression::CompressionLayer;

pub fn leptos_options(config: &Config) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("countersign")
        .site_root(config.site_root.to_string_lossy().into_owned())
        .site_pkg_dir("pkg")
        .site_addr(config.bind)
        .build()
}

/// The app's routes, generated once per process. Generating them renders the app with resource
/// loading suppressed by a process-global flag, so a render running at the same moment in
/// another router of this process would hang (leptos issue #4773); once is also all it takes.
fn route_list() -> Vec<leptos_axum::AxumRouteListing> {
    static ROUTES: std::sync::OnceLock<Vec<leptos_axum::AxumRouteListing>> =
        std::sync::OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

/// The whole application as an axum router.
pub fn router(state: AppState) -> Router {
    let leptos_options = state.leptos_options.clone();
    let routes = route_list();
    let context = {
        let state = state.clone();
        move || provide_context(state.clone())
    };
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(super::metrics::ready))
        .route("/metrics", get(super::metrics::metrics))
        .merge(crate::accounts::handlers::routes())
        .merge(crate::api::routes())
        .merge(crate::inbox::handlers::routes())
        .merge(crate::inbox::views::routes())
        .merge(crate::inbox::after_fact::handlers::routes().merge(crate::inbox::bulk::routes()))
        .merge(crate::admin::handlers::routes())
        .merge(crate::audit::handlers::routes())
        .merge(crate::audit::export::routes())
        .merge(crate::gates::handlers::routes())
        .merge(crate::stats::handlers::routes())
        .merge(crate::notify::handlers::routes())
        .merge(super::live::routes())
        .leptos_routes_with_context(&state, routes, context.clone(), {
            let options = leptos_options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(context, shell))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            session::attach_user,
        ));
    // Layers run outside-in in reverse order of adding: headers, CSRF check, session, user.
    session::apply(app, &state.db, &state.config.session)
        .layer(middleware::from_fn(security::csrf_guard))
        .layer(middleware::from_fn(security::security_headers))
        .layer(CompressionLayer::new())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            super::metrics::track,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// Binds the configured address, with a one-line error when that is impossible.
pub async fn bind(config: &Config) -> anyhow::Result<TcpListener> {
    TcpListener::bind(config.bind)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.bind))
}

/// Serves until `shutdown` completes, then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

/// Creates a one-time link for creating the first admin, valid for 24 hours; returns the token.
pub async fn new_setup_link(db: &Db) -> anyhow::Result<String> {
    let token = super::ids::random_token();
    let now = super::now_ms();
    crate::accounts::repo::insert_setup_token(
        db,
        &crate::requests::repo::sha256_hex(token.as_bytes()),
        now,
        now + 24 * 3_600_000,
    )
    .await?;
    Ok(token)
}
