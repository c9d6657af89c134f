//! Pieces of the app frame shared by every screen.

use crate::error::AppError;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_location;

const SECTIONS: [(&str, &str); 6] = [
    ("/inbox", "Inbox"),
    ("/inbox/after", "After the fact"),
    ("/audit", "Audit"),
    ("/gates", "Gates"),
    ("/stats", "Stats"),
    ("/admin", "Admin"),
];

#[component]
pub fn TopNav() -> impl IntoView {
    let user = Resource::new(|| (), |_| crate::accounts::pages::whoami());
    let location = use_location();
    let current = move |href: &str| {
        let path = location.pathname.get();
        path == href
            || (href == "/inbox" && path == "/")
            || (path.starts_with(&format!("{href}/"))
                && !(href == "/inbox" && path.starts_with("/inbox/after")))
    };
    view! {
        <header class="topbar">
            <a class="skip" href="#main">"Skip to content"</a>
            <a class="brand" href="/inbox" aria-label="Countersign home">
                <span class="brand-mark" aria-hidden="true">"✓✓"</span>
                "Countersign"
            </a>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let user = user.await.ok().flatten();
                    let nav = user.is_some().then(|| view! {
                        <nav aria-label="Main">
                            <ul>
                                {SECTIONS
                                    .into_iter()
                                    .map(|(href, label)| {
                                        view! {
                                            <li>
                                                <a href=href aria-current=move || current(href).then_some("page")>
                                                    {label}
                                                </a>
                                            </li>
                                        }
                                    })
                                    .collect_view()}
                            </ul>
                        </nav>
                    });
                    view! {
                        {nav}
                        <div class="user-slot" data-testid="user-slot">
                            <crate::accounts::pages::UserSlot user/>
                        </div>
                    }
                })}
            </Suspense>
        </header>
    }
}

/// An honest placeholder for a section whose screen has not been built yet.
#[component]
pub fn NotBuiltYet(title: &'static str, what: &'static str) -> impl IntoView {
    view! {
        <Title text=title/>
        <section class="empty-state">
            <h1>{title}</h1>
            <p>{what}</p>
            <p class="muted">"This screen is not built yet. The inbox is ready: "<a href="/inbox">"open it"</a>"."</p>
        </section>
    }
}

/// Shows an error where a page's content would be, and gives the server-rendered response the
/// matching HTTP status.
#[component]
pub fn ErrorNotice(error: AppError) -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        if let Ok(status) = axum::http::StatusCode::from_u16(error.http_status()) {
            response.set_status(status);
        }
    }
    view! { <p class="error" role="alert">{error.to_string()}</p> }
}

/// Percent-encodes a value for a URL query string (for links built in components, which also
/// compile to WebAssembly where the `url` crate is not included).
pub fn query_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_values_are_escaped() {
        assert_eq!(super::query_escape("usr_dana"), "usr_dana");
        assert_eq!(super::query_escape("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }
}
