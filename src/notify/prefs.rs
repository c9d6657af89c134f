//! Each person's choice, per event kind, of how notifications reach their own email: at once,
//! batched into a periodic digest, or not at all. Team and gate channels are shared, so these
//! choices do not apply to them. No stored choice means immediate.

use super::NotificationKind;
use crate::server::db::{Db, Tx};
use crate::{on_db, on_tx};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Immediate,
    Digest,
    Off,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Immediate, Mode::Digest, Mode::Off];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Immediate => "immediate",
            Mode::Digest => "digest",
            Mode::Off => "off",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

impl NotificationKind {
    pub fn parse(s: &str) -> Option<NotificationKind> {
        NotificationKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Every stored choice for `kind`, by person; no choice means immediate.
pub async fn modes_of_kind(
    tx: &mut Tx,
    kind: NotificationKind,
) -> Result<HashMap<String, Mode>, sqlx::Error> {
    let rows: Vec<(String, String)> = on_tx!(tx, |c| sqlx::query_as(
        "SELECT user_id, mode FROM notification_preferences WHERE kind = $1"
    )
    .bind(kind.as_str())
    .fetch_all(&mut *c)
    .await)?;
    Ok(rows
        .into_iter()
        .filter_map(|(u, m)| Mode::parse(&m).map(|m| (u, m)))
        .collect())
}

/// Every kind with `user_id`'s mode for it, in display order.
pub async fn load(db: &Db, user_id: &str) -> Result<Vec<(NotificationKind, Mode)>, sqlx::Error> {
    let rows: Vec<(String, String)> = on_db!(db, |p| sqlx::query_as(
        "SELECT kind, mode FROM notification_preferences WHERE user_id = $1"
    )
    .bind(user_id)
    .fetch_all(p)
    .await)?;
    Ok(NotificationKind::ALL
        .into_iter()
        .map(|k| {
            let mode = rows
                .iter()
                .find(|(kind, _)| kind == k.as_str())
                .and_then(|(_, m)| Mode::parse(m))
                .unwrap_or_default();
            (k, mode)
        })
        .collect())
}

/// Reads a submitted preferences form: one `kind = mode` pair per kind, each kind at most once.
/// Kinds left out keep their mode; an unknown kind or mode is refused, naming it.
pub fn parse_form(pairs: &[(String, String)]) -> Result<Vec<(NotificationKind, Mode)>, String> {
    let mut out: Vec<(NotificationKind, Mode)> = Vec::new();
    for (key, value) in pairs {
        let Some(kind) = NotificationKind::parse(key) else {
            return Err(format!(
                "{}: not a kind of notification",
                key.chars().take(60).collect::<String>()
            ));
        };
        let Some(mode) = Mode::parse(value) else {
            return Err(format!(
                "{key}: choose immediate, digest or off, not {:?}",
                value.chars().take(40).collect::<String>()
            ));
        };
        if out.iter().any(|(k, _)| *k == kind) {
            return Err(format!("{key}: given twice"));
        }
        out.push((kind, mode));
    }
    Ok(out)
}

/// Stores `changes` for `user_id` in the caller's transaction.
pub async fn save(
    tx: &mut Tx,
    user_id: &str,
    changes: &[(NotificationKind, Mode)],
    now: i64,
) -> Result<(), sqlx::Error> {
    for (kind, mode) in changes {
        on_tx!(tx, |c| sqlx::query(
            "INSERT INTO notification_preferences (user_id, kind, mode, updated_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, kind) \
             DO UPDATE SET mode = excluded.mode, updated_at = excluded.updated_at"
        )
        .bind(user_id)
        .bind(kind.as_str())
        .bind(mode.as_str())
        .bind(now)
        .execute(&mut *c)
        .await
        .map(|_| ()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn forms_name_what_is_wrong() {
        assert_eq!(
            parse_form(&pairs(&[("needs_review", "digest"), ("outcome", "off")])).unwrap(),
            vec![
                (NotificationKind::NeedsReview, Mode::Digest),
                (NotificationKind::Outcome, Mode::Off)
            ]
        );
        assert!(parse_form(&pairs(&[("needs_review", "loud")]))
            .unwrap_err()
            .starts_with("needs_review: choose immediate, digest or off"));
        assert!(parse_form(&pairs(&[("everything", "off")]))
            .unwrap_err()
            .contains("not a kind of notification"));
        assert!(
            parse_form(&pairs(&[("reminder", "off"), ("reminder", "digest")]))
                .unwrap_err()
                .contains("given twice")
        );
        for kind in NotificationKind::ALL {
            assert_eq!(NotificationKind::parse(kind.as_str()), Some(kind));
        }
    }
}
