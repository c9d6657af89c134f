//! Administration (admins only): people and their roles, teams, agents and their tokens.

use crate::accounts::pages::{take_flash, Messages};
use crate::accounts::Role;
use crate::error::AppError;
use crate::shell::ErrorNotice;
use leptos::prelude::*;
use leptos_meta::Title;
use serde::{Deserialize, Serialize};

mod channels;
#[cfg(feature = "ssr")]
pub mod handlers;
#[cfg(feature = "ssr")]
mod queries;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserLine {
    pub id: String,
    pub display_name: String,
    pub email: String,
    pub roles: Vec<Role>,
    pub teams: Vec<String>,
    pub disabled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeamLine {
    pub id: String,
    pub name: String,
    /// (user id, display name)
    pub members: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentLine {
    pub name: String,
    pub description: String,
    pub requests: i64,
    /// The first characters of each active token, to tell them apart.
    pub active_tokens: Vec<String>,
    /// The agent's circuit breaker history, newest first, from the audit trail.
    pub breaker_history: Vec<String>,
}

/// One outgoing webhook message and how its delivery went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookLine {
    pub id: String,
    pub request_id: String,
    pub url: String,
    /// delivered, retrying or gave up
    pub state: String,
    pub attempts: i64,
    pub last_result: Option<String>,
    pub created_at: i64,
}

/// One notification to a person and how its delivery went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationLine {
    pub kind: String,
    pub to: String,
    pub request_id: Option<String>,
    /// delivered, retrying or gave up
    pub state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
}

/// A Slack, webhook or mailbox channel attached to a team or a gate. `display` hides the URL's
/// token; the full URL and the signing secret never leave the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelLine {
    pub id: String,
    /// "team Finance" or "gate refunds".
    pub scope: String,
    pub display: String,
    pub events: Vec<String>,
}

/// An open circuit breaker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BreakerLine {
    pub agent: String,
    /// Empty for the agent-wide breaker.
    pub gate: String,
    pub since: i64,
    pub decisions: i64,
    pub corrections: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminData {
    pub users: Vec<UserLine>,
    pub teams: Vec<TeamLine>,
    pub agents: Vec<AgentLine>,
    pub webhooks: Vec<WebhookLine>,
    pub breakers: Vec<BreakerLine>,
    pub notifications: Vec<NotificationLine>,
    pub channels: Vec<ChannelLine>,
    /// (id, key) of every gate, to attach channels to.
    pub gates: Vec<(String, String)>,
}

#[server]
pub async fn admin_overview() -> Result<AdminData, AppError> {
    crate::accounts::session::require_any_role(&[Role::Admin])?;
    let state = crate::server::state()?;
    queries::overview(&state.db).await
}

#[component]
pub fn AdminPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| admin_overview());
    let flash = Resource::new(|| (), |_| take_flash());
    view! {
        <Title text="Admin"/>
        <div class="page-head"><h1>"Admin"</h1></div>
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let messages = flash.await.unwrap_or_default();
                match data.await {
                    Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                    Ok(o) => view! { <Messages view=messages/><Admin o/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn RoleChecks(prefix: String, roles: Vec<Role>) -> impl IntoView {
    Role::ALL
        .into_iter()
        .map(|r| {
            let id = format!("{prefix}-{}", r.as_str());
            let for_id = id.clone();
            view! {
                <label class="check" for=for_id>
                    <input type="checkbox" id=id name=format!("role_{}", r.as_str()) checked=roles.contains(&r)/>
                    {r.label()}
                </label>
            }
        })
        .collect_view()
}

#[component]
fn Admin(o: AdminData) -> impl IntoView {
    let people: Vec<(String, String)> = o
        .users
        .iter()
        .map(|u| (u.id.clone(), u.display_name.clone()))
        .collect();
    let breakers = o.breakers.clone();
    let channel_teams: Vec<(String, String)> = o
        .teams
        .iter()
        .map(|t| (t.id.clone(), t.name.clone()))
        .collect();
    let channels = view! { <channels::ChannelsSection channels=o.channels.clone() teams=channel_teams gates=o.gates.clone()/> };
    view! {
        {(!breakers.is_empty()).then(|| view! {
            <section class="card alert" data-testid="breakers" role="alert">
                <h2>"Circuit breakers open"</h2>
                <p class="muted">"These agents' requests that would run on their own now wait for a reviewer (or are refused, where the gate says so). The full history is in the audit trail (breaker_opened, breaker_rearmed)."</p>
                <ul>
                    {breakers.into_iter().map(|b| view! {
                        <li>
                            <strong>{b.agent.clone()}</strong>
                            {if b.gate.is_empty() { " (all gates)".to_owned() } else { format!(" at gate {}", b.gate) }}
                            {format!(": {} of {} decisions rejected or edited; open since {}", b.corrections, b.decisions, crate::domain::time::iso_utc(b.since))}
                            <form method="post" action="/admin/breakers/rearm" class="inline-form">
                                <input type="hidden" name="agent" value=b.agent.clone()/>
                                <input type="hidden" name="gate" value=b.gate.clone()/>
                                <button type="submit">"Re-arm"</button>
                            </form>
                        </li>
                    }).collect_view()}
                </ul>
            </section>
        })}
        <h2>"People"</h2>
        <table class="inbox" data-testid="users-table">
            <thead><tr><th scope="col">"Name"</th><th scope="col">"Email"</th><th scope="col">"Teams"</th><th scope="col">"Roles and status"</th></tr></thead>
            <tbody>
                {o.users.into_iter().map(|u| {
                    let action = format!("/admin/users/{}", u.id);
                    let prefix = format!("u-{}", u.id);
                    let email = u.email.clone();
                    view! {
                        <tr data-email=email>
                            <td>{u.display_name}</td>
                            <td>{u.email}</td>
                            <td>{u.teams.join(", ")}</td>
                            <td>
                                <form method="post" action=action class="inline-form">
                                    <RoleChecks prefix=prefix.clone() roles=u.roles/>
                                    <label class="check"><input type="checkbox" name="disabled" checked=u.disabled/>"Disabled"</label>
                                    <button type="submit" class="small">"Save"</button>
                                </form>
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
        <details class="card add-form">
            <summary>"Add a person"</summary>
            <form method="post" action="/admin/users" class="stack">
                <label>"Email"<input type="email" name="email" required/></label>
                <label>"Name"<input type="text" name="display_name" required maxlength="100"/></label>
                <label>"Initial password (at least 12 characters; they sign in with it)"<input type="password" name="password" required minlength="12" autocomplete="new-password"/></label>
                <fieldset><legend>"Roles"</legend><RoleChecks prefix="new".to_owned() roles=vec![Role::Reviewer]/></fieldset>
                <button type="submit">"Add person"</button>
            </form>
        </details>

        <h2>"Teams"</h2>
        <table class="inbox" data-testid="teams-table">
            <thead><tr><th scope="col">"Team"</th><th scope="col">"Members"</th><th scope="col">"Add a member"</th></tr></thead>
            <tbody>
                {o.teams.into_iter().map(|t| {
                    let action = format!("/admin/teams/{}/members", t.id);
                    let people = people.clone();
                    view! {
                        <tr>
                            <td>{t.name}</td>
                            <td>
                                {t.members.into_iter().map(|(uid, name)| view! {
                                    <form method="post" action=action.clone() class="chip">
                                        <input type="hidden" name="user_id" value=uid/>
                                        <input type="hidden" name="change" value="remove"/>
                                        {name.clone()}
                                        <button type="submit" class="link" aria-label=format!("Remove {name}")>"×"</button>
                                    </form>
                                }).collect_view()}
                            </td>
                            <td>
                                <form method="post" action=action.clone() class="inline-form">
                                    <input type="hidden" name="change" value="add"/>
                                    <select name="user_id" aria-label="Person">
                                        {people.into_iter().map(|(id, name)| view! { <option value=id>{name}</option> }).collect_view()}
                                    </select>
                                    <button type="submit" class="small">"Add"</button>
                                </form>
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
        <form method="post" action="/admin/teams" class="inline-form add-form">
            <label>"New team "<input type="text" name="name" required maxlength="80"/></label>
            <button type="submit" class="small">"Create team"</button>
        </form>

        <h2>"Agents"</h2>
        <table class="inbox" data-testid="agents-table">
            <thead><tr><th scope="col">"Agent"</th><th scope="col">"What it does"</th><th scope="col">"Requests"</th><th scope="col">"Active tokens"</th><th scope="col">"Credentials"</th></tr></thead>
            <tbody>
                {o.agents.into_iter().map(|a| {
                    let base = format!("/admin/agents/{}", a.name);
                    let agent = a.name.clone();
                    view! {
                        <tr data-agent=agent>
                            <td><code>{a.name}</code>
                                {(!a.breaker_history.is_empty()).then(|| view! {
                                    <details class="breaker-history"><summary>"Breaker history"</summary>
                                        <ul>{a.breaker_history.iter().map(|h| view! { <li>{h.clone()}</li> }).collect_view()}</ul>
                                    </details>
                                })}
                            </td>
                            <td>{a.description}</td>
                            <td>{crate::inbox::group_digits(a.requests)}</td>
                            <td>{if a.active_tokens.is_empty() { "none".to_owned() } else { a.active_tokens.iter().map(|p| format!("{p}…")).collect::<Vec<_>>().join(", ") }}</td>
                            <td class="actions">
                                <form method="post" action=format!("{base}/token")><input type="hidden" name="revoke_others" value="1"/><button type="submit" class="small">"Rotate token"</button></form>
                                <form method="post" action=format!("{base}/revoke")><button type="submit" class="small danger">"Revoke tokens"</button></form>
                                <form method="post" action=format!("{base}/secret")><button type="submit" class="small">"New webhook secret"</button></form>
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
        <details class="card add-form">
            <summary>"Register an agent"</summary>
            <form method="post" action="/admin/agents" class="stack">
                <label>"Name (lower case, e.g. refund-bot)"<input type="text" name="name" required pattern="[a-z0-9_-]{1,64}"/></label>
                <label>"What it does"<input type="text" name="description" maxlength="200"/></label>
                <button type="submit">"Register agent"</button>
            </form>
        </details>

        {channels}
        <h2>"Notifications"</h2>
        {if o.notifications.is_empty() {
            view! { <p class="muted">"No notifications yet. New reviews, reminders, escalations, outcomes and digests appear here with their delivery state."</p> }.into_any()
        } else {
            view! {
                <table class="inbox" data-testid="notifications-table">
                    <thead><tr><th scope="col">"When (UTC)"</th><th scope="col">"What"</th><th scope="col">"To"</th><th scope="col">"Request"</th><th scope="col">"Delivery"</th></tr></thead>
                    <tbody>
                        {o.notifications.clone().into_iter().map(|n| view! {
                            <tr>
                                <td>{crate::domain::time::iso_utc(n.created_at)}</td>
                                <td>{n.kind.replace('_', " ")}</td>
                                <td>{n.to}</td>
                                <td>{n.request_id.map(|id| view! { <a href=format!("/inbox/{id}")>{id.clone()}</a> })}</td>
                                <td>{format!("{} after {} attempt(s)", n.state, n.attempts)}{n.last_error.map(|e| format!(": {e}"))}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            }.into_any()
        }}
        <h2>"Webhook deliveries"</h2>
        {if o.webhooks.is_empty() {
            view! { <p class="muted">"No webhooks sent yet. Agents that give a callback_url get one for every decision."</p> }.into_any()
        } else {
            view! {
                <table class="inbox" data-testid="webhooks-table">
                    <thead><tr><th scope="col">"Sent"</th><th scope="col">"Request"</th><th scope="col">"To"</th><th scope="col">"State"</th><th scope="col">"Attempts"</th><th scope="col">"Last result"</th><th scope="col"></th></tr></thead>
                    <tbody>
                        {o.webhooks.into_iter().map(|w| {
                            let iso = crate::domain::time::iso_utc(w.created_at);
                            let action = format!("/admin/webhooks/{}/redeliver", w.id);
                            let state_class = format!("delivery {}", w.state.replace(' ', "-"));
                            view! {
                                <tr data-message=w.id.clone()>
                                    <td><time datetime=iso.clone()>{iso.clone()}</time></td>
                                    <td><a href=format!("/inbox/{}", w.request_id)>{w.request_id.clone()}</a></td>
                                    <td class="url">{w.url}</td>
                                    <td><span class=state_class>{w.state}</span></td>
                                    <td>{w.attempts}</td>
                                    <td>{w.last_result.unwrap_or_default()}</td>
                                    <td><form method="post" action=action><button type="submit" class="small">"Redeliver"</button></form></td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            }.into_any()
        }}
    }
}
