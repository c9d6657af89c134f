//! Split-and-merge dual review, stored: taking a half, submitting it blind, merging the two
//! halves with the gate's rules and a senior reviewer settling a conflict. The rules themselves
//! are pure and live in [`crate::domain::merge`]; this module loads, stores and records.
//!
//! Blindness: a submitted half is kept in `review_halves`, not in `decisions`, and its audit
//! event carries only a SHA-256 of the verdict, so nobody who can read the request or the audit
//! trail learns the verdict before both halves are in. The merge event then discloses both
//! verdicts, and anyone can check them against the hashes recorded at submission.

use super::lifecycle::{canonical_json, conclude, Concluded};
use super::repo::{self as requests, sha256_hex, NewDecision};
use crate::accounts::{CurrentUser, Role};
use crate::audit::repo::{append, Actor};
use crate::domain::gate_settings::GateSettings;
use crate::domain::merge::{
    self, check_assignment, Conflict, DualRequest, Half, MergeOutcome, Person, Resolution, Review,
    ReviewVerdict,
};
use crate::domain::status::Status;
use crate::error::AppError;
use crate::server::db::{Db, Tx};
use crate::server::{ids, AppState};
use crate::{on_db, on_tx};
use serde_json::{json, Value};

/// A half of one round of a dual review, as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HalfRow {
    pub half: String,
    pub reviewer_id: String,
    pub reviewer_name: Option<String>,
    pub verdict: Option<String>,
    pub submitted_at: Option<i64>,
}

impl HalfRow {
    pub fn submitted(&self) -> bool {
        self.verdict.is_some()
    }

    fn review(&self) -> Result<Option<Review>, AppError> {
        let Some(v) = &self.verdict else {
            return Ok(None);
        };
        let verdict: ReviewVerdict = serde_json::from_str(v).map_err(crate::error::internal)?;
        Ok(Some(Review {
            reviewer_id: self.reviewer_id.clone(),
            verdict,
        }))
    }
}

const HALVES: &str = "SELECT h.half, h.reviewer_id, u.display_name AS reviewer_name, h.verdict, \
     h.submitted_at FROM review_halves h LEFT JOIN users u ON u.id = h.reviewer_id \
     WHERE h.request_id = $1 AND h.state_version = $2 ORDER BY h.half";

/// The halves of one round (at most two, `a` first).
pub async fn halves(db: &Db, request_id: &str, round: i64) -> Result<Vec<HalfRow>, sqlx::Error> {
    on_db!(db, |p| sqlx::query_as(HALVES)
        .bind(request_id)
        .bind(round)
        .fetch_all(p)
        .await)
}

/// [`halves`] inside a transaction.
pub async fn halves_tx(
    tx: &mut Tx,
    request_id: &str,
    round: i64,
) -> Result<Vec<HalfRow>, sqlx::Error> {
    on_tx!(tx, |c| sqlx::query_as(HALVES)
        .bind(request_id)
        .bind(round)
        .fetch_all(&mut *c)
        .await)
}

/// What deciding a dual request needs to know about it.
pub struct DualContext<'a> {
    pub request_id: &'a str,
    pub status: Status,
    pub round: i64,
    pub proposed: &'a Value,
    pub acting_for: Option<&'a str>,
    pub callback_url: Option<&'a str>,
    pub settings: &'a GateSettings,
}

/// The person who runs the agent that made the request: they may not review it either.
async fn requester(tx: &mut Tx, request_id: &str) -> Result<Option<String>, AppError> {
    let owner: Option<Option<String>> = on_tx!(tx, |c| {
        sqlx::query_scalar(
        "SELECT a.owner_user_id FROM action_requests r JOIN agents a ON a.id = r.agent_id WHERE r.id = $1"
    )
    .bind(request_id)
    .fetch_optional(&mut *c)
    .await
    })?;
    Ok(owner.flatten())
}

fn half_name(h: Half) -> &'static str {
    match h {
        Half::A => "a",
        Half::B => "b",
    }
}

fn verdict_hash(verdict: &ReviewVerdict) -> String {
    let v = serde_json::to_value(verdict).unwrap_or(Value::Null);
    sha256_hex(canonical_json(&v).as_bytes())
}

/// Records `reviewer`'s half of the current round; when it is the second half, merges the two.
/// The caller read the request with `lifecycle::current` in `tx`, which holds its row,
/// so two halves submitted at once are taken one after the other.
pub async fn submit(
    tx: &mut Tx,
    state: &AppState,
    reviewer: &CurrentUser,
    teams: &[String],
    ctx: &DualContext<'_>,
    verdict: ReviewVerdict,
    now: i64,
) -> Result<Status, AppError> {
    let rows = halves_tx(tx, ctx.request_id, ctx.round).await?;
    let mine = rows.iter().find(|h| h.reviewer_id == reviewer.id);
    if mine.is_some_and(HalfRow::submitted) {
        return Err(AppError::Conflict(
            "Your review of this version is already in; dual review needs a second, different reviewer.".into(),
        ));
    }
    if rows.iter().filter(|h| h.submitted()).count() == 2 {
        return Err(AppError::Conflict(
            "Both reviews are in and they disagree; a senior reviewer settles it.".into(),
        ));
    }
    let requester = requester(tx, ctx.request_id).await?;
    let request = DualRequest {
        requester: requester.as_deref(),
        acting_for: ctx.acting_for,
        teams: ctx
            .settings
            .dual_teams
            .as_ref()
            .map(|[a, b]| [a.as_str(), b.as_str()]),
    };
    let person = Person {
        id: &reviewer.id,
        email: &reviewer.email,
        teams,
    };
    let holder = |h: Half| rows.iter().find(|r| r.half == half_name(h));
    let half = match mine {
        Some(row) => {
            if row.half == "a" {
                Half::A
            } else {
                Half::B
            }
        }
        None => {
            // The first free half this person may take; with named teams, the half of their team.
            let mut refusal = None;
            let mut chosen = None;
            for h in [Half::A, Half::B] {
                if holder(h).is_some() {
                    continue;
                }
                let other = holder(if h == Half::A { Half::B } else { Half::A })
                    .map(|r| r.reviewer_id.as_str());
                match check_assignment(&person, h, other, &request) {
                    Ok(()) => {
                        chosen = Some(h);
                        break;
                    }
                    Err(e) => refusal = Some(e),
                }
            }
            match (chosen, refusal) {
                (Some(h), _) => h,
                (None, Some(e)) => {
                    return Err(AppError::Conflict(format!(
                        "You cannot take a half of this dual review: {e}."
                    )))
                }
                (None, None) => {
                    return Err(AppError::Conflict(
                        "Both halves of this dual review are taken by other reviewers.".into(),
                    ))
                }
            }
        }
    };
    let verdict_json = serde_json::to_string(&verdict).map_err(crate::error::internal)?;
    on_tx!(tx, |c| {
        if mine.is_some() {
            sqlx::query(
                "UPDATE review_halves SET verdict = $4, submitted_at = $5 \
                 WHERE request_id = $1 AND state_version = $2 AND half = $3",
            )
            .bind(ctx.request_id)
            .bind(ctx.round)
            .bind(half_name(half))
            .bind(&verdict_json)
            .bind(now)
            .execute(&mut *c)
            .await
            .map(|_| ())
        } else {
            sqlx::query(
                "INSERT INTO review_halves (request_id, state_version, half, reviewer_id, assigned_at, verdict, submitted_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $5)",
            )
            .bind(ctx.request_id)
            .bind(ctx.round)
            .bind(half_name(half))
            .bind(&reviewer.id)
            .bind(now)
            .bind(&verdict_json)
            .execute(&mut *c)
            .await
            .map(|_| ())
        }
    })?;
    let reviews_in = rows.iter().filter(|h| h.submitted()).count() + 1;
    append(
        tx,
        &Actor::User(reviewer.id.clone()),
        "dual_review_submitted",
        Some(ctx.request_id),
        json!({
            "state_version": ctx.round,
            "half": half_name(half),
            "verdict_sha256": verdict_hash(&verdict),
            "reviews_in": reviews_in,
            // Blind review: the other half's verdict was withheld from this reviewer.
            "saw_other_review": false,
        }),
        now,
    )
    .await?;
    if reviews_in < 2 {
        // An escalated request stays escalated (its deadline is the escalation window's).
        if ctx.status == Status::Pending {
            requests::set_status(tx, ctx.request_id, Status::InReview.as_str(), now, false).await?;
            return Ok(Status::InReview);
        }
        return Ok(ctx.status);
    }
    // Both are in: the other half as read above, and this one as just stored.
    let Some(other) = rows
        .iter()
        .find(|h| h.submitted() && h.reviewer_id != reviewer.id)
        .map(HalfRow::review)
        .transpose()?
        .flatten()
    else {
        return Err(crate::error::internal("the other half has no verdict"));
    };
    let this = Review {
        reviewer_id: reviewer.id.clone(),
        verdict,
    };
    let (a, b) = if half == Half::A {
        (this, other)
    } else {
        (other, this)
    };
    let outcome = merge::merge(ctx.proposed, &a, &b, &ctx.settings.merge_rules)
        .map_err(|e| AppError::Conflict(e.to_string()))?;
    append(
        tx,
        &Actor::System,
        "dual_merged",
        Some(ctx.request_id),
        json!({"state_version": ctx.round, "a": a, "b": b, "outcome": outcome}),
        now,
    )
    .await?;
    // Both verdicts become decisions now, approvals first so that a rejection, which decides
    // the outcome, is the last word the agent reads.
    let mut reviews = [a, b];
    reviews.sort_by_key(|r| matches!(r.verdict, ReviewVerdict::Reject { .. }));
    for r in &reviews {
        record_verdict(tx, ctx, r, now).await?;
    }
    apply(
        tx,
        state,
        ctx,
        outcome,
        &[&reviews[0].reviewer_id, &reviews[1].reviewer_id],
        now,
    )
    .await
}

async fn record_verdict(
    tx: &mut Tx,
    ctx: &DualContext<'_>,
    review: &Review,
    now: i64,
) -> Result<(), AppError> {
    let (kind, edited, code, text) = match &review.verdict {
        ReviewVerdict::Approve => ("approve", None, None, None),
        ReviewVerdict::ApproveWithEdit { payload } if payload != ctx.proposed => {
            ("approve_with_edit", Some(payload.to_string()), None, None)
        }
        ReviewVerdict::ApproveWithEdit { .. } => ("approve", None, None, None),
        ReviewVerdict::Reject {
            reason_code,
            reason_text,
        } => (
            "reject",
            None,
            reason_code.clone(),
            Some(reason_text.clone()).filter(|t| !t.is_empty()),
        ),
    };
    let decision_id = ids::new_id("dec");
    requests::insert_decision(
        tx,
        &NewDecision {
            id: decision_id.clone(),
            request_id: ctx.request_id.to_owned(),
            reviewer_id: Some(review.reviewer_id.clone()),
            kind,
            state_version: ctx.round,
            edited_payload: edited.clone(),
            reason_code: code,
            reason_text: text,
            created_at: now,
        },
    )
    .await?;
    // Each half's edit is kept apart as a single reviewer's is (training signal for the agent),
    // whichever edit the merge settles on.
    if let (Some(_), ReviewVerdict::ApproveWithEdit { payload }) = (&edited, &review.verdict) {
        super::edits::record(
            tx,
            &super::edits::NewEdit {
                request_id: ctx.request_id,
                decision_id: &decision_id,
                reviewer_id: &review.reviewer_id,
                state_version: ctx.round,
                original: ctx.proposed,
                edited: payload,
            },
            now,
        )
        .await?;
    }
    Ok(())
}

/// Carries out a merge or resolution outcome. `reviewers` are the two people of this round, who
/// review a sent-back payload again.
async fn apply(
    tx: &mut Tx,
    state: &AppState,
    ctx: &DualContext<'_>,
    outcome: MergeOutcome,
    reviewers: &[&str; 2],
    now: i64,
) -> Result<Status, AppError> {
    let (next, payload) = match outcome {
        MergeOutcome::Approved => (Status::Approved, ctx.proposed.clone()),
        MergeOutcome::ApprovedWithEdit { payload } => (Status::ApprovedWithEdit, payload),
        MergeOutcome::Rejected { .. } => (Status::Rejected, Value::Null),
        MergeOutcome::Conflict(_) => {
            if ctx.status == Status::Pending {
                requests::set_status(tx, ctx.request_id, Status::InReview.as_str(), now, false)
                    .await?;
            }
            // Senior reviewers other than the two hear about it; the request stays open.
            crate::notify::dual_conflict(tx, state, ctx.request_id, now).await?;
            return Ok(Status::InReview);
        }
        MergeOutcome::SentBack { payload } => {
            send_back(tx, ctx, &payload, reviewers, now).await?;
            return Ok(if ctx.status == Status::Escalated {
                Status::Escalated
            } else {
                Status::InReview
            });
        }
    };
    let approved = next.is_approval().then_some(&payload);
    let Concluded { opened } = conclude(
        tx,
        state,
        ctx.request_id,
        next,
        approved,
        ctx.callback_url,
        ctx.settings.breaker,
        now,
    )
    .await?;
    for alert in opened {
        tracing::warn!("{alert}");
    }
    Ok(next)
}

/// Makes `payload` the proposal of a new state version, reviewed again by the same two people.
async fn send_back(
    tx: &mut Tx,
    ctx: &DualContext<'_>,
    payload: &Value,
    reviewers: &[&str; 2],
    now: i64,
) -> Result<(), AppError> {
    let next = ctx.round + 1;
    let previous: String = on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT snapshot FROM request_states WHERE request_id = $1 AND version = $2"
    )
    .bind(ctx.request_id)
    .bind(ctx.round)
    .fetch_one(&mut *c)
    .await)?;
    let mut snapshot: Value = serde_json::from_str(&previous).map_err(crate::error::internal)?;
    snapshot["payload"] = payload.clone();
    let snapshot = snapshot.to_string();
    on_tx!(tx, |c| {
        sqlx::query(
            "UPDATE action_requests SET payload = $2, state_version = $3, updated_at = $4, \
             status = CASE WHEN status = 'pending' THEN 'in_review' ELSE status END WHERE id = $1",
        )
        .bind(ctx.request_id)
        .bind(payload.to_string())
        .bind(next)
        .bind(now)
        .execute(&mut *c)
        .await?;
        sqlx::query(
            "INSERT INTO request_states (request_id, version, content_sha256, snapshot, cause, created_at) \
             VALUES ($1, $2, $3, $4, 'dual_send_back', $5)",
        )
        .bind(ctx.request_id)
        .bind(next)
        .bind(sha256_hex(snapshot.as_bytes()))
        .bind(&snapshot)
        .bind(now)
        .execute(&mut *c)
        .await?;
        for (half, reviewer) in ["a", "b"].iter().zip(reviewers) {
            sqlx::query(
                "INSERT INTO review_halves (request_id, state_version, half, reviewer_id, assigned_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(ctx.request_id)
            .bind(next)
            .bind(half)
            .bind(reviewer)
            .bind(now)
            .execute(&mut *c)
            .await?;
        }
        Ok::<_, sqlx::Error>(())
    })?;
    append(
        tx,
        &Actor::System,
        "dual_sent_back",
        Some(ctx.request_id),
        json!({"from_version": ctx.round, "state_version": next, "payload": payload, "reviewers": reviewers}),
        now,
    )
    .await?;
    Ok(())
}

/// The conflict waiting in the current round, if both halves are in and disagree.
pub fn conflict_of(
    proposed: &Value,
    rows: &[HalfRow],
    settings: &GateSettings,
) -> Result<Option<Conflict>, AppError> {
    let (Some(a), Some(b)) = (
        rows.first().map(HalfRow::review).transpose()?.flatten(),
        rows.get(1).map(HalfRow::review).transpose()?.flatten(),
    ) else {
        return Ok(None);
    };
    Ok(
        match merge::merge(proposed, &a, &b, &settings.merge_rules) {
            Ok(MergeOutcome::Conflict(c)) => Some(c),
            _ => None,
        },
    )
}

/// A senior reviewer settles the conflict of the current round.
pub async fn resolve(
    state: &AppState,
    resolver: &CurrentUser,
    request_id: &str,
    round: i64,
    resolution: Resolution,
) -> Result<Status, AppError> {
    if !resolver.has(Role::SeniorReviewer) {
        return Err(AppError::Forbidden);
    }
    let now = crate::server::now_ms();
    let mut tx = state.db.begin_write().await?;
    // `current` holds the request's row until this transaction ends.
    let super::lifecycle::Current {
        status,
        tier,
        payload,
        acting_for,
        state_version: version,
        callback_url,
    } = super::lifecycle::current(&mut tx, request_id).await?;
    let status: Status = status.parse().map_err(crate::error::internal)?;
    if !status.is_open() || tier != "dual" {
        return Err(AppError::Conflict(
            "This request has no dual-review conflict to settle.".into(),
        ));
    }
    if version != round {
        return Err(AppError::Conflict(
            "This request changed since you opened it. Review the new version before deciding."
                .into(),
        ));
    }
    let settings = crate::gates::eligibility::settings_of_tx(&mut tx, request_id).await?;
    let proposed: Value = serde_json::from_str(&payload).map_err(crate::error::internal)?;
    let rows = halves_tx(&mut tx, request_id, round).await?;
    let Some(conflict) = conflict_of(&proposed, &rows, &settings)? else {
        return Err(AppError::Conflict(
            "This request has no dual-review conflict to settle.".into(),
        ));
    };
    match &resolution {
        Resolution::SendBack { payload } => {
            super::lifecycle::check_edit(&settings, &proposed, payload)?;
        }
        Resolution::Reject {
            reason_code,
            reason_text,
        } => super::lifecycle::check_rejection(&settings, reason_code.as_ref(), reason_text)?,
        _ => {}
    }
    let teams = crate::gates::eligibility::teams_of_tx(&mut tx, &resolver.id).await?;
    let requester = requester(&mut tx, request_id).await?;
    let request = DualRequest {
        requester: requester.as_deref(),
        acting_for: acting_for.as_deref(),
        teams: None,
    };
    let person = Person {
        id: &resolver.id,
        email: &resolver.email,
        teams: &teams,
    };
    let outcome = conflict
        .resolve(&person, &request, resolution.clone())
        .map_err(|e| AppError::Conflict(format!("You cannot settle this conflict: {e}.")))?;
    append(
        &mut tx,
        &Actor::User(resolver.id.clone()),
        "dual_resolved",
        Some(request_id),
        json!({"state_version": round, "resolution": resolution, "outcome": outcome}),
        now,
    )
    .await?;
    let ctx = DualContext {
        request_id,
        status,
        round,
        proposed: &proposed,
        acting_for: acting_for.as_deref(),
        callback_url: callback_url.as_deref(),
        settings: &settings,
    };
    // The resolver's own decision, last, so the agent reads it as the outcome.
    let review = Review {
        reviewer_id: resolver.id.clone(),
        verdict: match &outcome {
            MergeOutcome::Approved | MergeOutcome::SentBack { .. } | MergeOutcome::Conflict(_) => {
                ReviewVerdict::Approve
            }
            MergeOutcome::ApprovedWithEdit { payload } => ReviewVerdict::ApproveWithEdit {
                payload: payload.clone(),
            },
            MergeOutcome::Rejected { reasons } => ReviewVerdict::Reject {
                reason_code: reasons[0].reason_code.clone(),
                reason_text: reasons[0].reason_text.clone(),
            },
        },
    };
    if !matches!(outcome, MergeOutcome::SentBack { .. }) {
        record_verdict(&mut tx, &ctx, &review, now).await?;
    }
    let pair = [
        conflict.a.reviewer_id.as_str(),
        conflict.b.reviewer_id.as_str(),
    ];
    let next = apply(&mut tx, state, &ctx, outcome, &pair, now).await?;
    crate::inbox::claims::release_all(&mut tx, request_id).await?;
    tx.commit().await?;
    state.notify_changed();
    crate::server::live::publish(state, crate::server::live::LiveEvent::decided(request_id));
    Ok(next)
}
