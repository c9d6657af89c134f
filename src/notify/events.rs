//! The events that notify people, each called in the transaction of the change that causes it, so
//! a notification is queued exactly when its cause commits:
//!
//! - [`submitted_all`]: new requests wait for review -> everyone who may decide each;
//! - [`decided`]: a request reached its outcome (decided or expired) -> the person it was made
//!   for and the agent's owner;
//! - [`dual_conflict`]: the two reviewers of a dual request disagreed -> senior reviewers.
//!
//! Reminders and escalations are sent by the deadline job, breaker alerts by the decision that
//! opened the breaker; all go through [`super::outbox::enqueue`], which applies each person's
//! preferences and the team and gate channels.

use super::audience::{store, Audience};
use super::outbox::{enqueue, senior_reviewers, summary_of, Recipient};
use super::NotificationKind;
use super::RequestSummary;
use crate::domain::gate_settings::GateSettings;
use crate::on_tx;
use crate::server::db::Tx;
use crate::server::AppState;

/// (reviewer id, reviewer name, reason code, reason text) of a request's latest decision.
type LastDecision = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// The person a request was made for (`acting_for`, an id or an email) and the agent's owner,
/// as active users.
async fn requesters(tx: &mut Tx, request_id: &str) -> Result<Vec<Recipient>, sqlx::Error> {
    let rows: Vec<(String, String)> = on_tx!(tx, |c| sqlx::query_as(
        "SELECT u.id, u.email FROM action_requests r JOIN users u \
         ON u.id = r.acting_for OR LOWER(u.email) = LOWER(r.acting_for) \
         WHERE r.id = $1 AND u.disabled = FALSE \
         UNION SELECT u.id, u.email FROM action_requests r JOIN agents a ON a.id = r.agent_id \
         JOIN users u ON u.id = a.owner_user_id WHERE r.id = $1 AND u.disabled = FALSE"
    )
    .bind(request_id)
    .fetch_all(&mut *c)
    .await)?;
    let mut out: Vec<Recipient> = Vec::new();
    for r in rows {
        if !out.iter().any(|(id, _)| *id == r.0) {
            out.push(r);
        }
    }
    out.sort();
    Ok(out)
}

/// The user a request is made for, if that is one of ours: they may not review it.
async fn acting_for_user(tx: &mut Tx, request_id: &str) -> Result<Vec<String>, sqlx::Error> {
    on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT u.id FROM action_requests r JOIN users u \
         ON u.id = r.acting_for OR LOWER(u.email) = LOWER(r.acting_for) WHERE r.id = $1"
    )
    .bind(request_id)
    .fetch_all(&mut *c)
    .await)
}

/// A request that waits for review, as its submission is about to store it: what
/// [`submitted_all`] needs to tell its reviewers without reading it back.
pub struct NewPending {
    pub summary: RequestSummary,
    /// The gate that gated it, and that gate version's settings (defaults without one).
    pub gate_id: Option<String>,
    pub settings: GateSettings,
    /// Whom it is made for (a user id or an email), who may not review it.
    pub acting_for: Option<String>,
    pub at: i64,
}

/// New requests wait for review (one submission, or a group committed together): everyone
/// eligible under the gate version that gated each is told, except the person it is made for.
/// Who may be told, and how, is read once for all of them.
pub async fn submitted_all(
    tx: &mut Tx,
    state: &AppState,
    new: &[&NewPending],
) -> Result<usize, sqlx::Error> {
    if new.is_empty() {
        return Ok(0);
    }
    let audience = Audience::load(tx, NotificationKind::NeedsReview).await?;
    let mut outgoing = Vec::new();
    for n in new {
        let excluded = audience.named_by(n.acting_for.as_deref());
        let to: Vec<Recipient> = audience
            .eligible(&n.settings)
            .into_iter()
            .filter(|(id, _)| !excluded.contains(id))
            .collect();
        outgoing.extend(audience.messages(
            &n.summary,
            &to,
            n.gate_id.as_deref(),
            &n.settings,
            &state.config.public_url,
            n.at,
        ));
    }
    store(tx, &outgoing).await
}

/// A request reached an outcome (approved, approved with an edit, rejected, expired): the person
/// it was made for and the agent's owner are told who decided and why. The one who decided is
/// not told what they just did.
pub async fn decided(
    tx: &mut Tx,
    state: &AppState,
    request_id: &str,
    now: i64,
) -> Result<usize, sqlx::Error> {
    let mut summary = summary_of(tx, request_id).await?;
    let last: Option<LastDecision> = on_tx!(tx, |c| sqlx::query_as(
        "SELECT d.reviewer_id, u.display_name, d.reason_code, d.reason_text FROM decisions d \
             LEFT JOIN users u ON u.id = d.reviewer_id WHERE d.request_id = $1 \
             ORDER BY d.created_at DESC, d.id DESC LIMIT 1"
    )
    .bind(request_id)
    .fetch_optional(&mut *c)
    .await)?;
    let (decider, name, code, text) = last.unwrap_or((None, None, None, None));
    summary.decided_by = name;
    summary.reason = match (code, text) {
        (_, Some(t)) if !t.trim().is_empty() => Some(t),
        (Some(c), _) => Some(c),
        _ => None,
    };
    let to: Vec<Recipient> = requesters(tx, request_id)
        .await?
        .into_iter()
        .filter(|(id, _)| Some(id) != decider.as_ref())
        .collect();
    enqueue(tx, state, NotificationKind::Outcome, &summary, &to, now).await
}

/// The two reviewers of a dual-review request disagreed: every active senior reviewer who is
/// neither of them nor the person the request is made for is asked to decide. The message names
/// both decisions ("Ana Lopez: approve; Ben Ode: reject (wrong IBAN)"), from the decisions
/// recorded on the request so far. Call it in the transaction that records the second decision.
pub async fn dual_conflict(
    tx: &mut Tx,
    state: &AppState,
    request_id: &str,
    now: i64,
) -> Result<usize, sqlx::Error> {
    let mut summary = summary_of(tx, request_id).await?;
    let decisions: Vec<(String, String, String, Option<String>)> = on_tx!(tx, |c| sqlx::query_as(
        "SELECT d.reviewer_id, u.display_name, d.kind, d.reason_text FROM decisions d \
         JOIN users u ON u.id = d.reviewer_id WHERE d.request_id = $1 \
         ORDER BY d.created_at, d.id"
    )
    .bind(request_id)
    .fetch_all(&mut *c)
    .await)?;
    let reviewers: Vec<&String> = decisions.iter().map(|(id, ..)| id).collect();
    summary.reason = Some(conflict_text(decisions.iter().map(
        |(_, name, kind, reason)| (name.as_str(), kind.as_str(), reason.as_deref()),
    )))
    .filter(|t| !t.is_empty());
    let excluded = acting_for_user(tx, request_id).await?;
    let to: Vec<Recipient> = senior_reviewers(tx)
        .await?
        .into_iter()
        .filter(|(id, _)| !reviewers.contains(&id) && !excluded.contains(id))
        .collect();
    enqueue(
        tx,
        state,
        NotificationKind::DualConflict,
        &summary,
        &to,
        now,
    )
    .await
}

/// "Ana Lopez: approve; Ben Ode: reject (wrong IBAN)".
pub fn conflict_text<'a>(
    decisions: impl Iterator<Item = (&'a str, &'a str, Option<&'a str>)>,
) -> String {
    decisions
        .map(|(name, kind, reason)| {
            let verb = kind.replace('_', " ");
            match reason.map(str::trim).filter(|r| !r.is_empty()) {
                Some(r) => format!("{name}: {verb} ({r})"),
                None => format!("{name}: {verb}"),
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::{render, RequestSummary};

    #[test]
    fn a_dual_conflict_names_both_decisions() {
        let text = conflict_text(
            [
                ("Ana Lopez", "approve", None),
                ("Ben Ode", "reject", Some(" wrong IBAN ")),
            ]
            .into_iter(),
        );
        assert_eq!(text, "Ana Lopez: approve; Ben Ode: reject (wrong IBAN)");
        let with_edit = conflict_text([("Ana", "approve_with_edit", Some(""))].into_iter());
        assert_eq!(with_edit, "Ana: approve with edit");
        let summary = RequestSummary {
            id: "req_d".into(),
            title: "Wire 12,000.00 EUR to Initech".into(),
            action_type: "payment.wire".into(),
            agent: "payables-bot".into(),
            amount: Some("12,000.00 EUR".into()),
            counterparty: Some("Initech".into()),
            explanation: "amount above 10,000.00 EUR (dual)".into(),
            tier: "dual".into(),
            status: "in_review".into(),
            reason: Some(text),
            ..RequestSummary::default()
        };
        let n = render(
            NotificationKind::DualConflict,
            &summary,
            "https://cs.example",
            0,
        );
        assert_eq!(
            n.subject,
            "Reviewers disagree: Wire 12,000.00 EUR to Initech"
        );
        assert!(n.intro.contains("senior reviewer decides"), "{}", n.intro);
        for needle in [
            "Decisions:    Ana Lopez: approve; Ben Ode: reject (wrong IBAN)",
            "Amount:",
            "12,000.00 EUR",
            "Counterparty:",
            "Initech",
            "Why gated:",
            "https://cs.example/inbox/req_d",
        ] {
            assert!(
                n.text.contains(needle),
                "{needle} missing from:\n{}",
                n.text
            );
        }
    }
}
