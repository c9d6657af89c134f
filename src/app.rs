//! The document shell, the router and the navigation every screen shares.

use crate::accounts::pages::{LoginPage, SetupPage};
use crate::admin::AdminPage;
use crate::inbox::InboxPage;
use crate::shell::TopNav;
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, Link, Meta, MetaTags, Stylesheet, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    path, SsrMode,
};

/// The HTML document around every page. Only islands hydrate (see `hydrate` in lib.rs), so
/// every page is complete server HTML and works without JavaScript.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <HydrationScripts options islands=true/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // The page's one inline script (the island loader) carries this response's nonce; the
    // Content-Security-Policy allows exactly that script and our own files.
    #[cfg(feature = "ssr")]
    if let (Some(nonce), Some(response)) = (
        leptos::nonce::use_nonce(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) {
        if let Ok(value) =
            axum::http::HeaderValue::from_str(&crate::server::security::page_csp(&nonce))
        {
            response.insert_header(axum::http::header::CONTENT_SECURITY_POLICY, value);
        }
    }
    view! {
        <Stylesheet id="countersign" href="/pkg/countersign.css"/>
        <Link rel="icon" type_="image/svg+xml" href="/favicon.svg"/>
        <Meta name="description" content="Countersign: the approval inbox for AI-agent actions"/>
        <Title formatter=|page: String| format!("{page} · Countersign")/>
        <Router>
            <TopNav/>
            <main id="main">
                <Routes fallback=|| view! { <NotFound/> }>
                    <Route path=path!("/") view=InboxPage ssr=SsrMode::Async/>
                    <Route path=path!("/inbox") view=InboxPage ssr=SsrMode::Async/>
                    <Route path=path!("/inbox/after") view=crate::inbox::after_fact::AfterFactPage ssr=SsrMode::Async/>
                    <Route path=path!("/inbox/:id") view=crate::inbox::detail::RequestPage ssr=SsrMode::Async/>
                    <Route path=path!("/login") view=LoginPage ssr=SsrMode::Async/>
                    <Route path=path!("/setup") view=SetupPage ssr=SsrMode::Async/>
                    <Route path=path!("/admin") view=AdminPage ssr=SsrMode::Async/>
                    <Route path=path!("/account/notifications") view=crate::accounts::notifications::NotificationsPage ssr=SsrMode::Async/>
                    <Route path=path!("/audit") view=crate::audit::explorer::AuditExplorer ssr=SsrMode::Async/>
                    <Route path=path!("/audit/requests/:id") view=crate::audit::timeline::TimelinePage ssr=SsrMode::Async/>
                    <Route path=path!("/gates") view=crate::gates::page::GatesPage ssr=SsrMode::Async/>
                    <Route path=path!("/gates/:key") view=crate::gates::page::GatePage ssr=SsrMode::Async/>
                    <Route path=path!("/stats") view=crate::stats::page::StatsPage ssr=SsrMode::Async/>
                    <Route path=path!("/stats/gates/:key") view=crate::stats::tune::TunePage ssr=SsrMode::Async/>
                </Routes>
            </main>
        </Router>
    }
}

#[component]
fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
            resp.set_status(axum::http::StatusCode::NOT_FOUND);
        }
    }
    view! {
        <Title text="Not found"/>
        <section class="empty-state">
            <h1>"Page not found"</h1>
            <p>"There is nothing at this address. "<a href="/inbox">"Go to the inbox"</a>"."</p>
        </section>
    }
}
