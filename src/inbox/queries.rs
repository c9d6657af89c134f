//! Inbox reads (both engines).

use crate::error::AppError;
use crate::on_db;
use crate::server::db::Db;

#[derive(sqlx::FromRow)]
struct DetailRow {
    id: String,
    title: String,
    action_type: String,
    agent_name: String,
    status: String,
    tier: String,
    gate_name: Option<String>,
    gate_version: Option<i64>,
    explanation: String,
    amount_minor: Option<i64>,
    currency: Option<String>,
    counterparty: Option<String>,
    customer_tier: Option<String>,
    record_count: Option<i64>,
    recipient_count: Option<i64>,
    risk_class: Option<String>,
    acting_for: Option<String>,
    acting_for_name: Option<String>,
    confidence: Option<f64>,
    reasoning: String,
    payload: String,
    current_state: Option<String>,
    inputs: Option<String>,
    alternatives: Option<String>,
    created_at: i64,
    deadline_at: Option<i64>,
    state_version: i64,
}

/// One request with its decisions, and whether `user` may decide it.
pub async fn request_detail(
    db: &Db,
    id: &str,
    user: &crate::accounts::CurrentUser,
) -> Result<super::detail::RequestDetail, AppError> {
    let row: Option<DetailRow> = on_db!(db, |p| {
        sqlx::query_as(
        "SELECT r.id, r.title, r.action_type, a.name AS agent_name, r.status, r.tier, g.name AS gate_name, \
         r.gate_version, r.explanation, r.amount_minor, r.currency, r.counterparty, r.customer_tier, \
         r.record_count, r.recipient_count, r.risk_class, r.acting_for, \
         (SELECT u.display_name FROM users u WHERE u.id = r.acting_for OR LOWER(u.email) = LOWER(r.acting_for)) AS acting_for_name, \
         r.confidence, r.reasoning, r.payload, \
         r.current_state, r.inputs, r.alternatives, r.created_at, r.deadline_at, r.state_version \
         FROM action_requests r JOIN agents a ON a.id = r.agent_id LEFT JOIN gates g ON g.id = r.gate_id \
         WHERE r.id = $1"
    )
    .bind(id)
    .fetch_optional(p)
    .await
    })?;
    let r = row.ok_or(AppError::NotFound)?;
    let decisions: Vec<(String, Option<String>, Option<String>, i64)> = on_db!(db, |p| {
        sqlx::query_as(
        "SELECT d.kind, u.display_name, d.reason_text, d.created_at FROM decisions d \
         LEFT JOIN users u ON u.id = d.reviewer_id WHERE d.request_id = $1 ORDER BY d.created_at, d.id"
    )
    .bind(id)
    .fetch_all(p)
    .await
    })?;
    let amount = crate::domain::policy::money_fact(r.amount_minor, r.currency.as_deref())
        .map(|m| m.to_string());
    let acting_for_me = r
        .acting_for
        .as_deref()
        .is_some_and(|a| a == user.id || a.eq_ignore_ascii_case(&user.email));
    let settings = crate::gates::eligibility::settings_of(db, id).await?;
    let teams = crate::gates::eligibility::teams_of(db, &user.id).await?;
    let ineligible = crate::gates::eligibility::why_not(&settings, user, &teams);
    let cannot_decide = if !user.may_decide() {
        Some("You can read this request; your role does not decide.".to_owned())
    } else if acting_for_me {
        Some("This request acts on your behalf, so someone else must review it.".to_owned())
    } else {
        ineligible
    };
    let open = r
        .status
        .parse::<crate::domain::status::Status>()
        .is_ok_and(|s| s.is_open());
    let dual = if r.tier == "dual" {
        Some(
            super::dual_view::load(
                db,
                user,
                &r.id,
                r.state_version,
                &r.payload,
                open,
                &settings,
            )
            .await?,
        )
    } else {
        None
    };
    let cannot_decide = cannot_decide.or_else(|| {
        let dual = dual.as_ref()?;
        if dual.conflict.is_some() {
            Some("Both reviews are in and they disagree; a senior reviewer settles it.".to_owned())
        } else if dual.taken_by_others {
            Some("Both halves of this dual review are held by other reviewers.".to_owned())
        } else if dual.my_verdict.is_some() {
            Some(
                "Your review is in. The request waits for the second, independent review."
                    .to_owned(),
            )
        } else {
            None
        }
    });
    Ok(super::detail::RequestDetail {
        id: r.id,
        title: r.title,
        action_type: r.action_type,
        agent_name: r.agent_name,
        status: r.status,
        tier: r.tier,
        gate: match (r.gate_name, r.gate_version) {
            (Some(n), Some(v)) => Some(format!("Gate {n}, version {v}")),
            _ => None,
        },
        explanation: r.explanation,
        amount,
        counterparty: r.counterparty,
        customer_tier: r.customer_tier,
        record_count: r.record_count,
        recipient_count: r.recipient_count,
        risk_class: r.risk_class,
        acting_for: r.acting_for_name.or(r.acting_for),
        confidence: r.confidence,
        reasoning: r.reasoning,
        payload: r.payload,
        current_state: r.current_state,
        inputs: r.inputs,
        alternatives: r.alternatives,
        created_at: r.created_at,
        deadline_at: r.deadline_at,
        state_version: r.state_version,
        dual,
        decisions: decisions
            .into_iter()
            .map(|(kind, by, reason, at)| super::detail::DecisionLine {
                kind,
                by,
                reason,
                at,
            })
            .collect(),
        cannot_decide,
        rejection_reasons: settings
            .rejection_reasons
            .into_iter()
            .map(|r| (r.code, r.label))
            .collect(),
        now: crate::server::now_ms(),
        flash_error: None,
    })
}

/// Invariant 6: who saw which state version of a request, and when (and from where).
pub async fn record_view(
    db: &Db,
    user: &crate::accounts::CurrentUser,
    detail: &super::detail::RequestDetail,
    ip: Option<&str>,
    user_agent: &str,
) -> Result<(), AppError> {
    let now = crate::server::now_ms();
    let mut tx = db.begin_write().await?;
    crate::audit::repo::append(
        &mut tx,
        &crate::audit::repo::Actor::User(user.id.clone()),
        "request_viewed",
        Some(&detail.id),
        serde_json::json!({
            "state_version": detail.state_version,
            "status": detail.status,
            "ip": ip,
            "user_agent": user_agent,
            // Dual review is blind: record how much of it this person could see.
            "dual_reviews_in": detail.dual.as_ref().map(|d| d.reviews_in),
            "saw_other_review": detail.dual.as_ref().map(|d| d.conflict.is_some()),
        }),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
