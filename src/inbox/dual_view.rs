//! The dual-review panel of a request: how many of the two blind reviews are in, the reviewer's
//! own half, and once the two disagree, the three-way reconciliation view (proposal, reviewer A,
//! reviewer B, field by field and word by word) with the senior reviewer's resolution form.

use crate::domain::diff::{Segment, ThreeWayRow};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DualState {
    /// The state version the two reviews are of.
    pub round: i64,
    /// Of two. Blind review shows nothing more about the other half.
    pub reviews_in: usize,
    /// The half the signed-in person holds ("A" or "B"), and their own verdict if submitted.
    pub my_half: Option<String>,
    pub my_verdict: Option<String>,
    /// `[team of half A, team of half B]` when the gate draws one reviewer from each.
    pub teams: Option<[String; 2]>,
    /// Present once both reviews are in and they disagree; never before.
    pub conflict: Option<ConflictView>,
    /// Why the signed-in person may not settle the conflict; `None` when they may.
    pub cannot_resolve: Option<String>,
    /// Both halves of this round are held by other people (a sent-back round is reviewed
    /// again by the same two), so the signed-in person cannot take one.
    pub taken_by_others: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConflictView {
    pub a_name: String,
    pub b_name: String,
    /// Pretty JSON of each side's edit; `None` where that reviewer approved the proposal.
    pub a_edit: Option<String>,
    pub b_edit: Option<String>,
    pub rows: Vec<ThreeWayRow>,
}

/// A reviewer's verdict in a sentence, for their own eyes.
#[cfg(feature = "ssr")]
fn describe(verdict: &crate::domain::merge::ReviewVerdict) -> String {
    use crate::domain::merge::ReviewVerdict;
    match verdict {
        ReviewVerdict::Approve => "You approved it as proposed.".into(),
        ReviewVerdict::ApproveWithEdit { .. } => "You approved it with an edit.".into(),
        ReviewVerdict::Reject { reason_text, .. } => format!("You rejected it: {reason_text}"),
    }
}

/// What the signed-in person may see of the dual review of `request_id` in round `round`.
#[cfg(feature = "ssr")]
pub async fn load(
    db: &crate::server::Db,
    user: &crate::accounts::CurrentUser,
    request_id: &str,
    round: i64,
    proposed: &str,
    open: bool,
    settings: &crate::domain::gate_settings::GateSettings,
) -> Result<DualState, crate::error::AppError> {
    use crate::accounts::Role;
    use crate::requests::dual::{conflict_of, halves};
    let rows = halves(db, request_id, round).await?;
    let mine = rows.iter().find(|h| h.reviewer_id == user.id);
    let my_verdict = match mine.and_then(|h| h.verdict.as_deref()) {
        Some(v) => Some(describe(
            &serde_json::from_str(v).map_err(crate::error::internal)?,
        )),
        None => None,
    };
    let proposed: serde_json::Value =
        serde_json::from_str(proposed).map_err(crate::error::internal)?;
    let conflict = if open {
        conflict_of(&proposed, &rows, settings)?
    } else {
        None
    };
    let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
    let name = |i: usize| {
        rows.get(i)
            .and_then(|h| h.reviewer_name.clone())
            .unwrap_or_else(|| "Reviewer".into())
    };
    let cannot_resolve = conflict.as_ref().and_then(|c| {
        if !user.has(Role::SeniorReviewer) {
            Some("A senior reviewer settles it.".to_owned())
        } else if c.a.reviewer_id == user.id || c.b.reviewer_id == user.id {
            Some("You reviewed one half, so another senior reviewer settles it.".to_owned())
        } else {
            None
        }
    });
    let conflict = conflict.map(|c| {
        let side = |edit: &Option<serde_json::Value>| edit.clone().unwrap_or(proposed.clone());
        ConflictView {
            a_name: name(0),
            b_name: name(1),
            rows: crate::domain::diff::three_way(&proposed, &side(&c.a.edit), &side(&c.b.edit)),
            a_edit: c.a.edit.as_ref().map(pretty),
            b_edit: c.b.edit.as_ref().map(pretty),
        }
    });
    Ok(DualState {
        round,
        reviews_in: rows.iter().filter(|h| h.submitted()).count(),
        my_half: mine.map(|h| h.half.to_uppercase()),
        my_verdict,
        teams: settings.dual_teams.clone(),
        taken_by_others: mine.is_none() && rows.len() == 2,
        conflict,
        cannot_resolve,
    })
}

#[component]
fn Words(words: Option<Vec<Segment>>, plain: Option<String>) -> impl IntoView {
    match words {
        Some(words) => words
            .into_iter()
            .map(|w| match w {
                Segment::Same(t) => view! { <span>{t}</span> }.into_any(),
                Segment::Deleted(t) => view! { <del>{t}</del> }.into_any(),
                Segment::Inserted(t) => view! { <ins>{t}</ins> }.into_any(),
            })
            .collect_view()
            .into_any(),
        None => view! { <span>{plain.unwrap_or_else(|| "(none)".into())}</span> }.into_any(),
    }
}

/// The status line of a dual review, shown above the decision forms.
#[component]
pub fn DualStatus(dual: DualState) -> impl IntoView {
    let teams = dual
        .teams
        .clone()
        .map(|[a, b]| format!(" One reviewer from {a}, one from {b}."));
    view! {
        <div class="dual-status" data-testid="dual-status">
            <p><strong>{format!("Dual review: {} of 2 reviews in.", dual.reviews_in)}</strong>
                " Two different people review independently; neither sees the other's review until both are in."
                {teams}</p>
            {dual.my_half.clone().map(|h| view! {
                <p>{format!("You hold half {h}. ")}{dual.my_verdict.clone()}</p>
            })}
        </div>
    }
}

/// The reconciliation view: proposal, reviewer A and reviewer B side by side, and the
/// resolution form for an eligible senior reviewer.
#[component]
pub fn ConflictPanel(request_id: String, dual: DualState) -> impl IntoView {
    let Some(c) = dual.conflict.clone() else {
        return ().into_any();
    };
    let action = format!("/inbox/{request_id}/resolve");
    let round = dual.round.to_string();
    let label = |edit: &Option<String>| {
        if edit.is_some() {
            "approved with an edit"
        } else {
            "approved as proposed"
        }
    };
    let rows = c
        .rows
        .iter()
        .filter(|r| r.changed())
        .map(|r| {
            view! {
                <tr class:disputed=r.disputed()>
                    <th scope="row">{r.path.clone()}</th>
                    <td>{r.proposed.clone().unwrap_or_else(|| "(none)".into())}</td>
                    <td class:changed=r.a != r.proposed><Words words=r.a_words.clone() plain=r.a.clone()/></td>
                    <td class:changed=r.b != r.proposed><Words words=r.b_words.clone() plain=r.b.clone()/></td>
                </tr>
            }
        })
        .collect_view();
    let send_back_default = c.a_edit.clone().or(c.b_edit.clone()).unwrap_or_default();
    view! {
        <section class="card conflict" data-testid="conflict">
            <h2>"The two reviews disagree"</h2>
            <p>{format!("{} {}; {} {}.", c.a_name, label(&c.a_edit), c.b_name, label(&c.b_edit))}
                " Nothing is approved until this is settled: pick one version, send a version back to both reviewers, or reject."</p>
            <div class="table-scroll">
            <table class="diff three-way" data-testid="three-way">
                <thead><tr>
                    <th scope="col">"Field"</th><th scope="col">"Proposed"</th>
                    <th scope="col">{format!("A: {}", c.a_name)}</th><th scope="col">{format!("B: {}", c.b_name)}</th>
                </tr></thead>
                <tbody>{rows}</tbody>
            </table>
            </div>
            {match dual.cannot_resolve.clone() {
                Some(why) => view! { <p class="notice" data-testid="cannot-resolve">{why}</p> }.into_any(),
                None => view! {
                    <form method="post" action=action.clone() class="stack decide">
                        <input type="hidden" name="state_version" value=round.clone()/>
                        <div class="row">
                            <button type="submit" name="resolution" value="pick_a">{format!("Approve A's version ({})", c.a_name)}</button>
                            <button type="submit" name="resolution" value="pick_b">{format!("Approve B's version ({})", c.b_name)}</button>
                            {(c.a_edit.is_none() || c.b_edit.is_none()).then(|| view! {
                                <button type="submit" name="resolution" value="pick_proposed">"Approve the proposal as is"</button>
                            })}
                        </div>
                    </form>
                    <details class="edit">
                        <summary>"Combine, then send back to both reviewers"</summary>
                        <form method="post" action=action.clone() class="stack decide">
                            <input type="hidden" name="state_version" value=round.clone()/>
                            <label>"Payload both reviewers approve again"
                                <textarea name="payload" rows="10" class="json">{send_back_default}</textarea>
                            </label>
                            <button type="submit" name="resolution" value="send_back">"Send back to both"</button>
                        </form>
                    </details>
                    <form method="post" action=action class="stack decide">
                        <input type="hidden" name="state_version" value=round/>
                        <label>"Reason for rejecting (sent to the agent)"
                            <textarea name="reason" rows="2" maxlength="2000"></textarea>
                        </label>
                        <button type="submit" name="resolution" value="reject" class="danger">"Reject"</button>
                    </form>
                }.into_any(),
            }}
        </section>
    }
    .into_any()
}
