//! What a gate holds besides its rules: deadline and reminder, where it escalates, who may
//! review, the preset rejection reasons, a payload schema that edits must fit, how much of `auto`
//! is sampled for after-the-fact review, whether bulk approval is allowed, what stays out of chat, how dual review merges, and its
//! circuit breaker.
//!
//! Stored as JSON beside the [`GateDefinition`](super::policy::GateDefinition) of each gate
//! version. Every field has a default, so `{}` is a complete, sensible gate; unknown fields are
//! refused, because a misspelt `deadline_minuts` silently ignored would leave the default deadline
//! in force. [`GateSettings::validate`] refuses contradictory or unreachable settings at save
//! time, naming each field; [`check_escalation_cycles`] refuses escalation that never ends.

mod escalation;

pub use escalation::{check_escalation_cycles, CycleError};

use super::breaker::BreakerSettings;
use super::merge::MergeRules;
use super::payload_schema::{self, parse_pointer, CompiledSchema};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Roles that can review, in the order we list them. Auditors are read-only by design.
pub const REVIEWER_ROLES: [&str; 3] = ["reviewer", "senior_reviewer", "admin"];

/// The longest deadline we accept: a year. Longer is a typo, or a wish for no deadline (`null`).
pub const MAX_DEADLINE_MINUTES: u32 = 365 * 24 * 60;

/// What replaces a redacted field in a chat notification.
pub const REDACTED: &str = "[redacted]";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GateSettings {
    /// Minutes a request may wait for a decision; `null` for no deadline. When it passes, the
    /// request escalates, and is rejected once escalation is exhausted (a timeout never approves).
    pub deadline_minutes: Option<u32>,
    /// Remind the reviewers this many minutes before the deadline; `null` for no reminder.
    pub reminder_before_minutes: Option<u32>,
    /// The team an overdue or escalated request goes to.
    pub escalation_group: Option<String>,
    /// Who may review: someone holding one of these roles and, when `eligible_teams` is not
    /// empty, belonging to one of those teams (see [`GateSettings::is_eligible`]).
    pub eligible_roles: Vec<String>,
    pub eligible_teams: Vec<String>,
    /// Offered when rejecting; a free-text reason is always required as well.
    pub rejection_reasons: Vec<RejectionReason>,
    /// A schema (see [`payload_schema`]) the proposal and every edit must fit.
    pub payload_schema: Option<Value>,
    /// Share of `auto` requests queued for after-the-fact review, in [0, 1].
    pub auto_sample_rate: f64,
    /// Whether reviewers may approve this gate's `review`-tier requests several at a time from
    /// the inbox (each still its own decision). `dual` requests are never bulk-approved.
    pub bulk_approve: bool,
    /// Whether chat and webhook notifications about this gate's requests carry the payload
    /// (with `redact_fields_in_chat` blanked). Off by default: messages give the facts and a link.
    /// Email never carries the payload.
    pub include_payload_in_chat: bool,
    /// JSON pointers of payload fields kept out of chat notifications (`*` for every member or
    /// item, as in `/lines/*/iban`). Reviewers in the inbox still see them.
    pub redact_fields_in_chat: Vec<String>,
    pub merge_rules: MergeRules,
    /// `[team of half A, team of half B]` when dual review draws one reviewer from each team.
    pub dual_teams: Option<[String; 2]>,
    /// The breaker kept per agent at this gate.
    pub breaker: BreakerSettings,
}

/// A preset reason for rejecting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectionReason {
    /// Stable, slug-like (`wrong-amount`): statistics group by it, so it must not change.
    pub code: String,
    /// What reviewers see.
    pub label: String,
}

impl Default for GateSettings {
    fn default() -> Self {
        let reason = |code: &str, label: &str| RejectionReason {
            code: code.to_owned(),
            label: label.to_owned(),
        };
        GateSettings {
            deadline_minutes: Some(24 * 60),
            reminder_before_minutes: Some(60),
            escalation_group: None,
            eligible_roles: vec!["reviewer".to_owned(), "senior_reviewer".to_owned()],
            eligible_teams: Vec::new(),
            rejection_reasons: vec![
                reason("insufficient-evidence", "Insufficient evidence"),
                reason("wrong-amount", "Wrong amount"),
                reason("policy-violation", "Violates policy"),
            ],
            payload_schema: None,
            auto_sample_rate: 0.02,
            bulk_approve: true,
            include_payload_in_chat: false,
            redact_fields_in_chat: Vec::new(),
            merge_rules: MergeRules::default(),
            dual_teams: None,
            breaker: BreakerSettings::default(),
        }
    }
}

/// One refused setting: `path` names the field, e.g. `settings.reminder_before_minutes`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct SettingsError {
    pub path: String,
    pub message: String,
}

/// Team names as the admin pages accept them: trimmed, not blank, at most 80 characters.
fn team_problem(name: &str) -> Option<&'static str> {
    if name.trim().is_empty() {
        Some("name a team")
    } else if name.trim() != name {
        Some("a team name has no leading or trailing spaces")
    } else if name.chars().count() > 80 || name.chars().any(char::is_control) {
        Some("not a team name: at most 80 characters, no control characters")
    } else {
        None
    }
}

fn is_code(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

struct Collector<'a> {
    prefix: &'a str,
    errors: Vec<SettingsError>,
}

impl Collector<'_> {
    fn fail(&mut self, field: impl AsRef<str>, message: impl Into<String>) {
        let field = field.as_ref();
        let path = if self.prefix.is_empty() {
            field.to_owned()
        } else {
            format!("{}.{field}", self.prefix)
        };
        self.errors.push(SettingsError {
            path,
            message: message.into(),
        });
    }

    fn teams<'t>(&mut self, field: &str, names: impl IntoIterator<Item = &'t String>) {
        let mut seen: Vec<&str> = Vec::new();
        for (i, name) in names.into_iter().enumerate() {
            if let Some(problem) = team_problem(name) {
                self.fail(format!("{field}[{i}]"), problem);
            } else if seen.contains(&name.as_str()) {
                self.fail(format!("{field}[{i}]"), format!("{name} is listed twice"));
            }
            seen.push(name);
        }
    }
}

impl GateSettings {
    /// Every problem with these settings, each with its path under `path_prefix` (e.g.
    /// `settings`; empty for bare field names). Checks only what these settings alone can show:
    /// whether the named teams exist, and escalation cycles across gates, need the stored teams.
    pub fn validate(&self, path_prefix: &str) -> Result<(), Vec<SettingsError>> {
        let mut c = Collector {
            prefix: path_prefix,
            errors: Vec::new(),
        };
        self.check_timing(&mut c);
        self.check_reviewers(&mut c);
        for (i, r) in self.rejection_reasons.iter().enumerate() {
            let at = format!("rejection_reasons[{i}]");
            if !is_code(&r.code) {
                c.fail(
                    format!("{at}.code"),
                    "use lower-case letters, digits, '-' or '_' (at most 64), e.g. wrong-amount",
                );
            } else if self.rejection_reasons[..i].iter().any(|o| o.code == r.code) {
                c.fail(format!("{at}.code"), format!("{} is used twice", r.code));
            }
            if r.label.trim().is_empty() || r.label.chars().count() > 200 {
                c.fail(
                    format!("{at}.label"),
                    "give a label reviewers will see, at most 200 characters",
                );
            }
        }
        // A pointer into the schema continues the field's path: `payload_schema/minimum`.
        let schema = self.payload_schema.as_ref().and_then(|s| {
            payload_schema::compile(s)
                .map_err(|e| c.fail(format!("payload_schema{}", e.path), e.message))
                .ok()
        });
        if !(0.0..=1.0).contains(&self.auto_sample_rate) {
            c.fail(
                "auto_sample_rate",
                "must be between 0 and 1 (0.02 samples 2% of auto requests)",
            );
        }
        self.check_redactions(&mut c, schema.as_ref());
        if let Err(errors) = self.breaker.validate() {
            for e in errors {
                c.fail(format!("breaker.{}", e.field), e.message);
            }
        }
        if c.errors.is_empty() {
            Ok(())
        } else {
            Err(c.errors)
        }
    }

    fn check_timing(&self, c: &mut Collector) {
        match self.deadline_minutes {
            Some(0) => c.fail(
                "deadline_minutes",
                "must be at least 1 minute; use null for no deadline",
            ),
            Some(d) if d > MAX_DEADLINE_MINUTES => c.fail(
                "deadline_minutes",
                format!("must be at most {MAX_DEADLINE_MINUTES} minutes (a year); use null for no deadline"),
            ),
            _ => {}
        }
        match (self.reminder_before_minutes, self.deadline_minutes) {
            (None, _) => {}
            (Some(0), _) => c.fail(
                "reminder_before_minutes",
                "must be at least 1 minute; use null for no reminder",
            ),
            (Some(_), None) => c.fail(
                "reminder_before_minutes",
                "a reminder counts back from the deadline, and this gate has none",
            ),
            (Some(r), Some(d)) if r >= d => c.fail(
                "reminder_before_minutes",
                format!("must be less than the deadline ({d} minutes), or the reminder would come before the request"),
            ),
            _ => {}
        }
    }

    fn check_reviewers(&self, c: &mut Collector) {
        if let Some(group) = &self.escalation_group {
            if let Some(problem) = team_problem(group) {
                c.fail("escalation_group", problem);
            }
        }
        if self.eligible_roles.is_empty() {
            c.fail(
                "eligible_roles",
                "list at least one of reviewer, senior_reviewer, admin, or nobody could review",
            );
        }
        for (i, role) in self.eligible_roles.iter().enumerate() {
            let at = format!("eligible_roles[{i}]");
            if role == "auditor" {
                c.fail(at, "auditors are read-only and never review");
            } else if !REVIEWER_ROLES.contains(&role.as_str()) {
                c.fail(
                    at,
                    format!("unknown role {role:?}; use reviewer, senior_reviewer or admin"),
                );
            } else if self.eligible_roles[..i].contains(role) {
                c.fail(at, format!("{role} is listed twice"));
            }
        }
        c.teams("eligible_teams", &self.eligible_teams);
        if let Some(pair) = &self.dual_teams {
            c.teams("dual_teams", pair);
            for (i, team) in pair.iter().enumerate() {
                if !self.eligible_teams.is_empty() && !self.eligible_teams.contains(team) {
                    c.fail(
                        format!("dual_teams[{i}]"),
                        format!(
                            "{team} is not among eligible_teams, so nobody could take this half"
                        ),
                    );
                }
            }
        }
    }

    fn check_redactions(&self, c: &mut Collector, schema: Option<&CompiledSchema>) {
        for (i, pointer) in self.redact_fields_in_chat.iter().enumerate() {
            let at = format!("redact_fields_in_chat[{i}]");
            if pointer.is_empty() || pointer.len() > 256 {
                c.fail(
                    at,
                    "give the JSON pointer of a payload field, e.g. /customer/iban",
                );
                continue;
            }
            match parse_pointer(pointer) {
                Err(message) => c.fail(at, message),
                Ok(_) if self.redact_fields_in_chat[..i].contains(pointer) => {
                    c.fail(at, format!("{pointer} is listed twice"))
                }
                Ok(segments) if schema.is_some_and(|s| !s.admits_path(&segments)) => c.fail(
                    at,
                    format!("the payload schema allows no field at {pointer}; check the spelling, or this field would reach chat"),
                ),
                Ok(_) => {}
            }
        }
    }

    /// Whether someone with `roles` in `teams` may review under this gate. Independence from the
    /// requester and the acting-for user is checked separately, per request.
    pub fn is_eligible(&self, roles: &[&str], teams: &[&str]) -> bool {
        roles
            .iter()
            .any(|r| self.eligible_roles.iter().any(|e| e == r))
            && (self.eligible_teams.is_empty()
                || teams
                    .iter()
                    .any(|t| self.eligible_teams.iter().any(|e| e == t)))
    }

    /// `payload` as a chat notification may show it: every field named in
    /// `redact_fields_in_chat` replaced by [`REDACTED`]. Paths that match nothing change nothing.
    pub fn redact_for_chat(&self, payload: &Value) -> Value {
        let mut out = payload.clone();
        for pointer in &self.redact_fields_in_chat {
            // Validated at save; a stored path that no longer parses hides nothing rather than all.
            if let Ok(segments) = parse_pointer(pointer) {
                if !segments.is_empty() {
                    redact(&mut out, &segments);
                }
            }
        }
        out
    }
}

fn redact(value: &mut Value, segments: &[String]) {
    let Some((seg, rest)) = segments.split_first() else {
        *value = Value::String(REDACTED.to_owned());
        return;
    };
    match value {
        Value::Object(map) if seg == "*" => map.values_mut().for_each(|v| redact(v, rest)),
        Value::Object(map) => {
            if let Some(v) = map.get_mut(seg) {
                redact(v, rest);
            }
        }
        Value::Array(items) if seg == "*" => items.iter_mut().for_each(|v| redact(v, rest)),
        Value::Array(items) => {
            if let Some(v) = seg.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                redact(v, rest);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
