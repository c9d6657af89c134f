//! Sign-in and first-admin setup pages, and the signed-in user's slot in the top bar.

use super::CurrentUser;
use crate::error::AppError;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

#[server]
pub async fn whoami() -> Result<Option<CurrentUser>, AppError> {
    Ok(super::session::current_user())
}

/// What the sign-in page shows: the one-time message left by the last attempt, if any.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FlashView {
    pub error: Option<String>,
    pub notice: Option<String>,
    pub email: Option<String>,
    pub signed_in_as: Option<String>,
    pub reveal: Vec<(String, String)>,
}

#[server]
pub async fn take_flash() -> Result<FlashView, AppError> {
    use super::session::{Flash, KEY_FLASH};
    let session: tower_sessions::Session = leptos_axum::extract()
        .await
        .map_err(|_| crate::error::internal("session layer missing"))?;
    // Removing marks the session changed, which costs a database write when the response
    // goes out; most page views have no message, so look before taking.
    let flash: Flash = match session.get::<Flash>(KEY_FLASH).await.ok().flatten() {
        Some(_) => session
            .remove(KEY_FLASH)
            .await
            .ok()
            .flatten()
            .unwrap_or_default(),
        None => Flash::default(),
    };
    Ok(FlashView {
        error: flash.error,
        notice: flash.notice,
        email: flash.email,
        signed_in_as: super::session::current_user().map(|u| u.display_name),
        reveal: flash.reveal,
    })
}

/// The one-time messages a form post left for this page.
#[component]
pub fn Messages(view: FlashView) -> impl IntoView {
    view! {
        {view.error.map(|e| view! { <p class="error" role="alert">{e}</p> })}
        {view.notice.map(|n| view! { <p class="notice" role="status">{n}</p> })}
        {(!view.reveal.is_empty()).then(|| view! {
            <div class="reveal" data-testid="reveal">
                <p><strong>"Copy these now: they are shown only once."</strong></p>
                <dl>
                    {view.reveal.into_iter().map(|(label, value)| view! {
                        <dt>{label}</dt><dd><code>{value}</code></dd>
                    }).collect_view()}
                </dl>
            </div>
        })}
    }
}

#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let next = move || query.read().get("next").unwrap_or_default();
    let flash = Resource::new(|| (), |_| take_flash());
    view! {
        <Title text="Sign in"/>
        <section class="auth-card">
            <h1>"Sign in"</h1>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let view = flash.await.unwrap_or_default();
                    let email = view.email.clone().unwrap_or_default();
                    let signed_in = view.signed_in_as.clone();
                    view! {
                        <Messages view/>
                        {signed_in.map(|name| view! {
                            <p class="notice">"You are signed in as "{name}". "<a href="/inbox">"Open the inbox"</a></p>
                        })}
                        <form method="post" action="/auth/login" class="stack">
                            <input type="hidden" name="next" value=next/>
                            <label>"Email"<input type="email" name="email" autocomplete="username" required value=email/></label>
                            <label>"Password"<input type="password" name="password" autocomplete="current-password" required/></label>
                            <button type="submit">"Sign in"</button>
                        </form>
                    }
                })}
            </Suspense>
        </section>
    }
}

#[server]
pub async fn setup_link_valid(token: String) -> Result<bool, AppError> {
    let state = crate::server::state()?;
    let hash = crate::requests::repo::sha256_hex(token.as_bytes());
    Ok(super::repo::setup_token_valid(&state.db, &hash, crate::server::now_ms()).await?)
}

#[component]
pub fn SetupPage() -> impl IntoView {
    let query = use_query_map();
    let token = move || query.read().get("token").unwrap_or_default();
    let valid = Resource::new(token, setup_link_valid);
    let flash = Resource::new(|| (), |_| take_flash());
    view! {
        <Title text="Set up Countersign"/>
        <section class="auth-card">
            <h1>"Create the first admin"</h1>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let ok = valid.await.unwrap_or(false);
                    let view = flash.await.unwrap_or_default();
                    if !ok {
                        return view! {
                            <p class="error" role="alert">"This setup link is used, expired or wrong. An admin can be created with "<code>"countersign user add --admin EMAIL"</code>"."</p>
                        }.into_any();
                    }
                    let email = view.email.clone().unwrap_or_default();
                    view! {
                        <Messages view/>
                        <form method="post" action="/auth/setup" class="stack">
                            <input type="hidden" name="token" value=token/>
                            <label>"Email"<input type="email" name="email" autocomplete="username" required value=email/></label>
                            <label>"Name"<input type="text" name="display_name" autocomplete="name" required maxlength="100"/></label>
                            <label>"Password (at least 12 characters)"<input type="password" name="password" autocomplete="new-password" required minlength="12"/></label>
                            <button type="submit">"Create admin"</button>
                        </form>
                    }.into_any()
                })}
            </Suspense>
        </section>
    }
}

/// The top bar's user slot: who is signed in, and the ways out. Plain forms, so signing out
/// works without JavaScript.
#[component]
pub fn UserSlot(user: Option<CurrentUser>) -> impl IntoView {
    match user {
        None => view! { <a href="/login">"Sign in"</a> }.into_any(),
        Some(u) => {
            let roles = u
                .roles
                .iter()
                .map(|r| r.label())
                .collect::<Vec<_>>()
                .join(", ");
            view! {
                <details class="user-menu">
                    <summary data-testid="signed-in-user">{u.display_name.clone()}</summary>
                    <div class="user-menu-panel">
                        <p class="muted">{u.email.clone()}<br/>{roles}</p>
                        <a href="/account/notifications">"Notification settings"</a>
                        <form method="post" action="/auth/logout"><button type="submit">"Sign out"</button></form>
                        <form method="post" action="/auth/logout-everywhere"><button type="submit" class="secondary">"Sign out everywhere"</button></form>
                    </div>
                </details>
            }
            .into_any()
        }
    }
}
