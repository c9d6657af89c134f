//! The Admin page's notification channels: Slack-compatible incoming webhooks, signed JSON
//! webhooks and shared mailboxes attached to a team or a gate. URLs are credentials: after saving
//! they are only shown shortened, and a webhook's signing secret is shown once.

use super::ChannelLine;
use crate::accounts::notifications::EVENT_KINDS;
use leptos::prelude::*;

#[component]
pub fn ChannelsSection(
    channels: Vec<ChannelLine>,
    /// (id, name)
    teams: Vec<(String, String)>,
    /// (id, key)
    gates: Vec<(String, String)>,
) -> impl IntoView {
    // The table says briefly which events a channel gets; the form below has the full labels.
    let events_text = |events: &[String]| {
        if EVENT_KINDS
            .iter()
            .all(|(k, _, _)| events.iter().any(|e| e == k))
        {
            return "all events".to_owned();
        }
        events
            .iter()
            .map(|e| e.replace('_', " "))
            .collect::<Vec<_>>()
            .join(", ")
    };
    view! {
        <section data-testid="channels-section">
        <h2 id="channels">"Notification channels"</h2>
        <p class="muted">"Besides each person's own email: a Slack-compatible incoming webhook, a signed JSON webhook or a shared mailbox. "
            "A team's channels receive events addressed to its members; a gate's channels receive events about its requests. "
            "Whether chat messages carry the payload is a gate setting (off by default)."</p>
        {if channels.is_empty() {
            view! { <p class="muted" data-testid="no-channels">"No channels yet. Add one below to post reviews, escalations and outcomes to a team's chat."</p> }.into_any()
        } else {
            view! {
                <table class="inbox" data-testid="channels-table">
                    <thead><tr><th scope="col">"Attached to"</th><th scope="col">"Destination"</th><th scope="col">"Events"</th><th scope="col"></th></tr></thead>
                    <tbody>
                        {channels.into_iter().map(|c| {
                            let events = events_text(&c.events);
                            let action = format!("/admin/channels/{}/remove", c.id);
                            view! {
                                <tr data-channel=c.id.clone()>
                                    <td>{c.scope}</td>
                                    <td class="url"><code>{c.display}</code></td>
                                    <td class="channel-events">{events}</td>
                                    <td><form method="post" action=action><button type="submit" class="small danger">"Remove"</button></form></td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            }.into_any()
        }}
        <details class="card add-form" data-testid="add-channel">
            <summary>"Add a channel"</summary>
            <form method="post" action="/admin/channels" class="stack">
                <label>"Attached to"
                    <select name="scope" required>
                        <optgroup label="Teams">
                            {teams.into_iter().map(|(id, name)| view! { <option value=format!("team:{id}")>{format!("Team: {name}")}</option> }).collect_view()}
                        </optgroup>
                        <optgroup label="Gates">
                            {gates.into_iter().map(|(id, key)| view! { <option value=format!("gate:{id}")>{format!("Gate: {key}")}</option> }).collect_view()}
                        </optgroup>
                    </select>
                </label>
                <label>"Type"
                    <select name="kind">
                        <option value="slack">"Slack-compatible incoming webhook"</option>
                        <option value="webhook">"JSON webhook (signed)"</option>
                        <option value="email">"Shared mailbox (email)"</option>
                    </select>
                </label>
                <label>"Webhook URL or email address"<input type="text" name="target" required maxlength="2000" autocomplete="off" placeholder="https://hooks.slack.com/services/…"/></label>
                <fieldset class="event-choice"><legend>"Events"</legend>
                    {EVENT_KINDS.into_iter().map(|(kind, label, _)| view! {
                        <label class="check"><input type="checkbox" name=format!("ev_{kind}") checked=true/>{label}</label>
                    }).collect_view()}
                </fieldset>
                <button type="submit">"Add channel"</button>
            </form>
        </details>
        </section>
    }
    .into_any()
}
