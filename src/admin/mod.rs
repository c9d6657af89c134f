//! Administration: the people and agents of this installation (admins only).

use crate::accounts::Role;
use crate::error::AppError;
use crate::shell::ErrorNotice;
use leptos::prelude::*;
use leptos_meta::Title;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
mod queries;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserLine {
    pub display_name: String,
    pub email: String,
    pub roles: Vec<Role>,
    pub teams: Vec<String>,
    pub disabled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentLine {
    pub name: String,
    pub description: String,
    pub requests: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminData {
    pub users: Vec<UserLine>,
    pub agents: Vec<AgentLine>,
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
    view! {
        <Title text="Admin"/>
        <div class="page-head"><h1>"Admin"</h1></div>
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                    Ok(o) => view! {
                        <h2>"People"</h2>
                        <table class="inbox" data-testid="users-table">
                            <thead><tr><th scope="col">"Name"</th><th scope="col">"Email"</th><th scope="col">"Roles"</th><th scope="col">"Teams"</th><th scope="col">"Status"</th></tr></thead>
                            <tbody>
                                {o.users.into_iter().map(|u| view! {
                                    <tr>
                                        <td>{u.display_name}</td>
                                        <td>{u.email}</td>
                                        <td>{u.roles.iter().map(|r| r.label()).collect::<Vec<_>>().join(", ")}</td>
                                        <td>{u.teams.join(", ")}</td>
                                        <td>{if u.disabled { "Disabled" } else { "Active" }}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                        <h2>"Agents"</h2>
                        <table class="inbox" data-testid="agents-table">
                            <thead><tr><th scope="col">"Agent"</th><th scope="col">"What it does"</th><th scope="col">"Requests"</th></tr></thead>
                            <tbody>
                                {o.agents.into_iter().map(|a| view! {
                                    <tr><td><code>{a.name}</code></td><td>{a.description}</td><td>{crate::inbox::group_digits(a.requests)}</td></tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}
