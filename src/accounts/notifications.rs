//! The signed-in person's notification settings: for each kind of event, whether it reaches
//! their email at once, in a periodic digest, or not at all. A plain page and a plain form post,
//! so it works without JavaScript.

use super::pages::{take_flash, Messages};
use crate::error::AppError;
use crate::shell::ErrorNotice;
use leptos::prelude::*;
use leptos_meta::Title;
use serde::{Deserialize, Serialize};

/// Every kind of notification: (stable name, what it is, who receives it).
pub const EVENT_KINDS: [(&str, &str, &str); 6] = [
    (
        "needs_review",
        "A new request needs my review",
        "People who may decide the request",
    ),
    (
        "reminder",
        "Reminder before a deadline",
        "People who may decide the request",
    ),
    (
        "escalated",
        "A request is escalated to me",
        "The gate's escalation team, or senior reviewers",
    ),
    (
        "dual_conflict",
        "Dual reviewers disagree",
        "Senior reviewers",
    ),
    (
        "breaker_opened",
        "An agent's circuit breaker opened",
        "Admins",
    ),
    (
        "outcome",
        "The outcome of a request made for me or by an agent I own",
        "The person a request is made for, and the agent's owner",
    ),
];

/// Ways a notification reaches a person: (stable name, label).
pub const MODES: [(&str, &str); 3] = [
    ("immediate", "At once"),
    ("digest", "In a digest"),
    ("off", "Off"),
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreferenceLine {
    pub kind: String,
    pub mode: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreferencesView {
    pub email: String,
    pub lines: Vec<PreferenceLine>,
    /// Minutes between a first waiting item and its digest.
    pub digest_minutes: i64,
    /// Whether this server sends email at all.
    pub email_configured: bool,
}

#[server]
pub async fn notification_preferences() -> Result<PreferencesView, AppError> {
    let user = super::session::require_user()?;
    let state = crate::server::state()?;
    let lines = crate::notify::prefs::load(&state.db, &user.id)
        .await?
        .into_iter()
        .map(|(k, m)| PreferenceLine {
            kind: k.as_str().to_owned(),
            mode: m.as_str().to_owned(),
        })
        .collect();
    Ok(PreferencesView {
        email: user.email,
        lines,
        digest_minutes: (state.config.digest_interval.as_secs() / 60) as i64,
        email_configured: state.mailer.is_some(),
    })
}

#[component]
pub fn NotificationsPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| notification_preferences());
    let flash = Resource::new(|| (), |_| take_flash());
    view! {
        <Title text="Notifications"/>
        <div class="page-head"><h1>"Notifications"</h1></div>
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let messages = flash.await.unwrap_or_default();
                match data.await {
                    Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                    Ok(v) => view! { <Messages view=messages/><Preferences v/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Preferences(v: PreferencesView) -> impl IntoView {
    let digest = if v.digest_minutes % 60 == 0 {
        let h = v.digest_minutes / 60;
        if h == 1 {
            "every hour".to_owned()
        } else {
            format!("every {h} hours")
        }
    } else {
        format!("every {} minutes", v.digest_minutes)
    };
    view! {
        <section class="card prefs">
            <p>"Choose how each kind of event reaches you at "<strong>{v.email.clone()}</strong>". "
               "A digest collects them into one email, sent "{digest}" after the first one waits. "
               "Team and gate channels (Slack, webhooks) are set by admins and are not affected."</p>
            {(!v.email_configured).then(|| view! {
                <p class="muted" data-testid="no-smtp">"This server has no mail server configured yet: your choices are kept, and emails wait in the delivery log until an admin sets one up."</p>
            })}
            <form method="post" action="/account/notifications/save" data-testid="preferences-form">
                <table class="prefs-table">
                    <thead><tr><th scope="col">"Event"</th>
                        {MODES.into_iter().map(|(_, label)| view! { <th scope="col" class="mode">{label}</th> }).collect_view()}
                    </tr></thead>
                    <tbody>
                        {v.lines.into_iter().map(|line| {
                            let (label, who) = EVENT_KINDS
                                .iter()
                                .find(|(k, _, _)| *k == line.kind)
                                .map(|(_, l, w)| (*l, *w))
                                .unwrap_or(("", ""));
                            let kind = line.kind.clone();
                            view! {
                                <tr data-kind=kind.clone()>
                                    <th scope="row">{label}<span class="who">{who}</span></th>
                                    {MODES.into_iter().map(|(mode, mode_label)| {
                                        let id = format!("pref-{kind}-{mode}");
                                        view! {
                                            <td class="mode">
                                                <input type="radio" id=id.clone() name=kind.clone() value=mode checked={line.mode == mode}/>
                                                <label for=id class="visually-hidden">{format!("{label}: {mode_label}")}</label>
                                            </td>
                                        }
                                    }).collect_view()}
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
                <button type="submit">"Save notification settings"</button>
            </form>
            <p class="muted">"Links in notifications only open pages: nothing is decided by following one, so mail scanners that open links cannot approve anything."</p>
        </section>
    }
    .into_any()
}
