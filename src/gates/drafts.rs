//! Editing policy: a gate's draft version is changed, checked against the whole live policy (a
//! draft never breaks the live version), then published at once when the change only tightens,
//! or submitted for a second admin's approval when it may loosen (maker-checker on policy).
//! Every step is audited with a diff.

use crate::audit::repo::{append, Actor};
use crate::domain::diff::{field_diff, FieldChange};
use crate::domain::policy::{compile, GateDefinition};
use crate::domain::policy_change::{loosenings, loosenings_of_new};
use crate::server::db::{Db, Tx};
use crate::{on_db, on_tx};
use serde_json::json;

/// Why a draft operation was refused; shown to the admin as is.
#[derive(Debug, thiserror::Error)]
pub enum DraftError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

fn refused(why: impl Into<String>) -> DraftError {
    DraftError::Refused(why.into())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VersionRow {
    pub gate_id: String,
    pub version: i64,
    pub definition: String,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub published_by: Option<String>,
    pub published_at: Option<i64>,
    pub submitted_by: Option<String>,
    pub submitted_at: Option<i64>,
    pub loosenings: Option<String>,
}

impl VersionRow {
    pub fn parsed(&self) -> Result<GateDefinition, DraftError> {
        serde_json::from_str(&self.definition).map_err(|e| {
            refused(format!(
                "stored version {} is unreadable: {e}",
                self.version
            ))
        })
    }
}

const COLUMNS: &str = "v.gate_id, v.version, v.definition, v.created_by, v.created_at, \
     v.published_by, v.published_at, v.submitted_by, v.submitted_at, v.loosenings";

/// Every version of the gate `key`, newest first.
pub async fn versions(db: &Db, key: &str) -> Result<Vec<VersionRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM gate_versions v JOIN gates g ON g.id = v.gate_id \
         WHERE g.key = $1 ORDER BY v.version DESC"
    );
    on_db!(db, |p| sqlx::query_as(&sql).bind(key).fetch_all(p).await)
}

async fn versions_tx(tx: &mut Tx, key: &str) -> Result<Vec<VersionRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM gate_versions v JOIN gates g ON g.id = v.gate_id \
         WHERE g.key = $1 ORDER BY v.version DESC"
    );
    on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(key)
        .fetch_all(&mut *c)
        .await)
}

/// The newest published version and the draft (unpublished), if any.
fn split(rows: &[VersionRow]) -> (Option<&VersionRow>, Option<&VersionRow>) {
    let live = rows.iter().find(|r| r.published_at.is_some());
    let draft = rows.iter().find(|r| r.published_at.is_none());
    (live, draft)
}

/// Checks `candidate` as it would be published: the live policy with it in place must compile.
async fn check_against_live(tx: &mut Tx, candidate: &GateDefinition) -> Result<(), DraftError> {
    let rows: Vec<(String, i64)> = on_tx!(tx, |c| sqlx::query_as(
        "SELECT v.definition, v.version FROM gate_versions v WHERE v.published_at IS NOT NULL \
         AND v.version = (SELECT MAX(w.version) FROM gate_versions w WHERE w.gate_id = v.gate_id \
         AND w.published_at IS NOT NULL)"
    )
    .fetch_all(&mut *c)
    .await)?;
    let mut gates = Vec::with_capacity(rows.len() + 1);
    for (text, version) in rows {
        let d: GateDefinition = serde_json::from_str(&text)
            .map_err(|e| refused(format!("a live gate is unreadable: {e}")))?;
        if d.key != candidate.key {
            gates.push((d, version));
        }
    }
    gates.push((candidate.clone(), 0));
    compile(gates)
        .map(|_| ())
        .map_err(|e| refused(e.to_string()))
}

fn diff_json(before: Option<&GateDefinition>, after: &GateDefinition) -> serde_json::Value {
    let before = before
        .map(|b| serde_json::to_value(b).unwrap_or_default())
        .unwrap_or(serde_json::Value::Null);
    let after = serde_json::to_value(after).unwrap_or_default();
    let changes: Vec<FieldChange> = field_diff(&before, &after)
        .into_iter()
        .filter(|c| !matches!(c, FieldChange::Unchanged { .. }))
        .collect();
    serde_json::to_value(changes).unwrap_or_default()
}

/// Creates a gate whose first version is a draft. The key must be new.
pub async fn create_gate(
    db: &Db,
    by: &str,
    definition: &GateDefinition,
    now: i64,
) -> Result<(), DraftError> {
    let mut tx = db.begin_write().await?;
    let exists: Option<String> = on_tx!(&mut tx, |c| sqlx::query_scalar(
        "SELECT id FROM gates WHERE key = $1"
    )
    .bind(&definition.key)
    .fetch_optional(&mut *c)
    .await)?;
    if exists.is_some() {
        return Err(refused(format!(
            "a gate with key {} exists",
            definition.key
        )));
    }
    check_against_live(&mut tx, definition).await?;
    let id = crate::server::ids::new_id("gate");
    let json = serde_json::to_string(definition).expect("gate definitions serialise");
    on_tx!(&mut tx, |c| {
        sqlx::query("INSERT INTO gates (id, key, name, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&id)
            .bind(&definition.key)
            .bind(&definition.name)
            .bind(now)
            .execute(&mut *c)
            .await?;
        sqlx::query(
            "INSERT INTO gate_versions (gate_id, version, definition, created_by, created_at) \
             VALUES ($1, 1, $2, $3, $4)",
        )
        .bind(&id)
        .bind(&json)
        .bind(by)
        .bind(now)
        .execute(&mut *c)
        .await
        .map(|_| ())
    })?;
    append(
        &mut tx,
        &Actor::User(by.to_owned()),
        "gate_draft_saved",
        None,
        json!({"gate": definition.key, "version": 1, "changes": diff_json(None, definition)}),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Applies `change` to the gate's draft (starting one from the live version if there is none),
/// checks it and saves it. Editing a draft that awaits approval withdraws the submission.
pub async fn edit_draft(
    db: &Db,
    by: &str,
    key: &str,
    change: impl FnOnce(&mut GateDefinition) -> Result<(), String>,
    now: i64,
) -> Result<i64, DraftError> {
    let mut tx = db.begin_write().await?;
    let rows = versions_tx(&mut tx, key).await?;
    let (live, draft) = split(&rows);
    let Some(base) = draft.or(live) else {
        return Err(refused(format!("there is no gate {key}")));
    };
    let before = base.parsed()?;
    let mut after = before.clone();
    change(&mut after).map_err(refused)?;
    if after.key != key {
        return Err(refused(
            "a gate's key cannot change; create a new gate instead",
        ));
    }
    check_against_live(&mut tx, &after).await?;
    let json = serde_json::to_string(&after).expect("gate definitions serialise");
    let version = match draft {
        Some(d) => {
            on_tx!(&mut tx, |c| sqlx::query(
                "UPDATE gate_versions SET definition = $3, created_by = $4, created_at = $5, \
                 submitted_by = NULL, submitted_at = NULL, loosenings = NULL \
                 WHERE gate_id = $1 AND version = $2 AND published_at IS NULL"
            )
            .bind(&d.gate_id)
            .bind(d.version)
            .bind(&json)
            .bind(by)
            .bind(now)
            .execute(&mut *c)
            .await
            .map(|_| ()))?;
            d.version
        }
        None => {
            let next = rows.first().map_or(1, |r| r.version + 1);
            on_tx!(&mut tx, |c| sqlx::query(
                "INSERT INTO gate_versions (gate_id, version, definition, created_by, created_at) \
                 VALUES ($1, $2, $3, $4, $5)"
            )
            .bind(&base.gate_id)
            .bind(next)
            .bind(&json)
            .bind(by)
            .bind(now)
            .execute(&mut *c)
            .await
            .map(|_| ()))?;
            next
        }
    };
    append(
        &mut tx,
        &Actor::User(by.to_owned()),
        "gate_draft_saved",
        None,
        json!({"gate": key, "version": version, "changes": diff_json(Some(&before), &after)}),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(version)
}

/// What asking to publish did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishOutcome {
    Published { version: i64 },
    AwaitingApproval { version: i64, reasons: Vec<String> },
}

async fn publish(
    tx: &mut Tx,
    draft: &VersionRow,
    publisher: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    on_tx!(tx, |c| sqlx::query(
        "UPDATE gate_versions SET published_by = $3, published_at = $4 \
         WHERE gate_id = $1 AND version = $2 AND published_at IS NULL"
    )
    .bind(&draft.gate_id)
    .bind(draft.version)
    .bind(publisher)
    .bind(now)
    .execute(&mut *c)
    .await
    .map(|_| ()))
}

/// Publishes the draft when it only tightens; otherwise submits it for a second admin.
pub async fn request_publish(
    db: &Db,
    by: &str,
    key: &str,
    now: i64,
) -> Result<PublishOutcome, DraftError> {
    let mut tx = db.begin_write().await?;
    let rows = versions_tx(&mut tx, key).await?;
    let (live, draft) = split(&rows);
    let Some(draft) = draft else {
        return Err(refused("there is no draft to publish"));
    };
    let after = draft.parsed()?;
    check_against_live(&mut tx, &after).await?;
    let before = live.map(VersionRow::parsed).transpose()?;
    let reasons = match &before {
        Some(b) => loosenings(b, &after),
        None => loosenings_of_new(&after),
    };
    let diff = diff_json(before.as_ref(), &after);
    let outcome = if reasons.is_empty() {
        publish(&mut tx, draft, by, now).await?;
        append(
            &mut tx,
            &Actor::User(by.to_owned()),
            "gate_published",
            None,
            json!({"gate": key, "version": draft.version, "approval": "not needed: the change only tightens", "changes": diff}),
            now,
        )
        .await?;
        PublishOutcome::Published {
            version: draft.version,
        }
    } else {
        on_tx!(&mut tx, |c| sqlx::query(
            "UPDATE gate_versions SET submitted_by = $3, submitted_at = $4, loosenings = $5 \
             WHERE gate_id = $1 AND version = $2 AND published_at IS NULL"
        )
        .bind(&draft.gate_id)
        .bind(draft.version)
        .bind(by)
        .bind(now)
        .bind(serde_json::to_string(&reasons).unwrap_or_default())
        .execute(&mut *c)
        .await
        .map(|_| ()))?;
        append(
            &mut tx,
            &Actor::User(by.to_owned()),
            "gate_publish_requested",
            None,
            json!({"gate": key, "version": draft.version, "loosenings": reasons, "changes": diff}),
            now,
        )
        .await?;
        PublishOutcome::AwaitingApproval {
            version: draft.version,
            reasons,
        }
    };
    tx.commit().await?;
    Ok(outcome)
}

/// A second admin approves a submitted draft, which publishes it. Neither the admin who
/// submitted it nor its last editor may approve it.
pub async fn approve(db: &Db, by: &str, key: &str, now: i64) -> Result<i64, DraftError> {
    let mut tx = db.begin_write().await?;
    let rows = versions_tx(&mut tx, key).await?;
    let (live, draft) = split(&rows);
    let Some(draft) = draft.filter(|d| d.submitted_at.is_some()) else {
        return Err(refused("there is no draft awaiting approval"));
    };
    if draft.submitted_by.as_deref() == Some(by) || draft.created_by.as_deref() == Some(by) {
        return Err(refused(
            "a second admin must approve: you made or submitted this change",
        ));
    }
    let after = draft.parsed()?;
    check_against_live(&mut tx, &after).await?;
    let before = live.map(VersionRow::parsed).transpose()?;
    publish(&mut tx, draft, by, now).await?;
    append(
        &mut tx,
        &Actor::User(by.to_owned()),
        "gate_published",
        None,
        json!({
            "gate": key, "version": draft.version, "approval": "second admin",
            "submitted_by": draft.submitted_by, "edited_by": draft.created_by,
            "loosenings": draft.loosenings.as_deref().and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok()),
            "changes": diff_json(before.as_ref(), &after),
        }),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(draft.version)
}

/// Throws the draft away. A gate that was never published goes with it.
pub async fn discard(db: &Db, by: &str, key: &str, now: i64) -> Result<(), DraftError> {
    let mut tx = db.begin_write().await?;
    let rows = versions_tx(&mut tx, key).await?;
    let (live, draft) = split(&rows);
    let Some(draft) = draft else {
        return Err(refused("there is no draft to discard"));
    };
    on_tx!(&mut tx, |c| {
        sqlx::query("DELETE FROM gate_versions WHERE gate_id = $1 AND version = $2 AND published_at IS NULL")
            .bind(&draft.gate_id)
            .bind(draft.version)
            .execute(&mut *c)
            .await?;
        if live.is_none() {
            sqlx::query("DELETE FROM gates WHERE id = $1")
                .bind(&draft.gate_id)
                .execute(&mut *c)
                .await?;
        }
        Ok::<(), sqlx::Error>(())
    })?;
    append(
        &mut tx,
        &Actor::User(by.to_owned()),
        "gate_draft_discarded",
        None,
        json!({"gate": key, "version": draft.version, "definition": draft.parsed()?}),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
