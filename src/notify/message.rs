//! What a notification says: rendered once per event from a summary of the request, then shaped
//! for each channel by [`super::formats`]. Pure: no I/O, and the clock is a parameter.
//!
//! Links are scanner-safe: a notification only ever links to a page (`/inbox/{id}`, or `/admin`
//! for breakers). Opening it decides nothing; deciding is a signed-in POST on that page.

use super::text::{deadline_text, encode_segment, one_line, relative};
use crate::domain::status::Status;
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// The events people are told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// A new request waits for my review.
    NeedsReview,
    /// A request I can review is close to its deadline.
    Reminder,
    /// A request was escalated to me (a senior reviewer or the escalation group).
    Escalated,
    /// The two reviewers of a dual request disagreed; a senior reviewer decides.
    DualConflict,
    /// An agent's circuit breaker opened: the agent is paused until an admin closes it.
    BreakerOpened,
    /// To the requester / agent owner: the request was decided (or expired, or failed).
    Outcome,
}

impl NotificationKind {
    pub const ALL: [NotificationKind; 6] = [
        NotificationKind::NeedsReview,
        NotificationKind::Reminder,
        NotificationKind::Escalated,
        NotificationKind::DualConflict,
        NotificationKind::BreakerOpened,
        NotificationKind::Outcome,
    ];

    /// The stable name used in webhook event types (`notification.{name}`) and preferences.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::NeedsReview => "needs_review",
            NotificationKind::Reminder => "reminder",
            NotificationKind::Escalated => "escalated",
            NotificationKind::DualConflict => "dual_conflict",
            NotificationKind::BreakerOpened => "breaker_opened",
            NotificationKind::Outcome => "outcome",
        }
    }
}

/// What a notification needs to know about one request, loaded by the caller.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestSummary {
    pub id: String,
    /// The agent's one-line description, e.g. "Refund 83.51 EUR to Contoso".
    pub title: String,
    pub action_type: String,
    /// The agent's name.
    pub agent: String,
    /// Already formatted for people, e.g. "4,200.00 EUR" (`Money`'s `Display`).
    pub amount: Option<String>,
    pub counterparty: Option<String>,
    /// Why the gate asked for a human (the gating explanation).
    pub explanation: String,
    pub tier: String,
    pub deadline_at_ms: Option<i64>,
    /// The request's status as stored (`pending`, `rejected`, ...).
    pub status: String,
    /// The exact proposed payload. Only ever sent when a gate allows it, and then redacted.
    pub payload: serde_json::Value,
    /// Who decided (for [`NotificationKind::Outcome`]).
    pub decided_by: Option<String>,
    /// The "why" of the event: the rejection reason (outcome), the escalation cause, the two
    /// reviewers' decisions (dual conflict), or the condition that opened the breaker.
    pub reason: Option<String>,
}

/// One rendered notification, the same content for every channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub kind: NotificationKind,
    pub request_id: String,
    /// One line, no control characters.
    pub subject: String,
    /// The first sentence: what happened and what is expected of the reader.
    pub intro: String,
    /// The plain-text body (subject, intro, facts, link, and the note that links decide nothing).
    pub text: String,
    /// Absolute deep link to a page: `{base}/inbox/{id}`, or `{base}/admin` for breakers.
    pub link: String,
    /// Label and value pairs, in display order; every value is one line.
    pub facts: Vec<(String, String)>,
    /// The request's payload, for the channels and gates that may include it (redacted).
    pub payload: serde_json::Value,
    pub created_at_ms: i64,
}

/// Shown under every link: scanners and previews may open links, so links never act.
pub const LINK_NOTE: &str =
    "Opening this link changes nothing; decisions are made on the page, signed in.";

/// Renders `kind` for `r`. `base_url` is the public address of the server (`https://cs.example`).
pub fn render(
    kind: NotificationKind,
    r: &RequestSummary,
    base_url: &str,
    now_ms: i64,
) -> Notification {
    use NotificationKind::*;
    let title = one_line(&r.title, 120);
    let agent = one_line(&r.agent, 80);
    let action = one_line(&r.action_type, 120);
    let deadline = r.deadline_at_ms.map(|d| deadline_text(d, now_ms));
    let reason = r.reason.as_deref().map(|t| one_line(t, 500));
    let status = status_label(&r.status);

    let subject = match kind {
        NeedsReview => format!("Review needed: {title}"),
        Reminder => match r.deadline_at_ms {
            Some(d) if d < now_ms => format!("Reminder: {title} is overdue"),
            Some(d) => format!("Reminder: {title} is due {}", relative(d, now_ms)),
            None => format!("Reminder: {title} waits for a decision"),
        },
        Escalated => format!("Escalated to you: {title}"),
        DualConflict => format!("Reviewers disagree: {title}"),
        BreakerOpened => format!("Breaker opened: agent {agent} is paused"),
        Outcome => format!("{status}: {title}"),
    };
    let intro = match kind {
        NeedsReview if r.tier == "dual" => format!(
            "{agent} proposes {action} and waits for two independent reviewers; you are one of them."
        ),
        NeedsReview => format!("{agent} proposes {action} and waits for your decision."),
        Reminder => match &deadline {
            Some(d) => format!(
                "This request still waits for a decision. Its deadline is {d}; after that it is escalated."
            ),
            None => "This request still waits for a decision.".to_owned(),
        },
        Escalated => format!("A request from {agent} was escalated to you and waits for your decision."),
        DualConflict => "The two reviewers of this dual-review request disagreed; a senior reviewer decides.".to_owned(),
        BreakerOpened => format!(
            "The circuit breaker for agent {agent} opened. The agent is paused until an admin closes the breaker."
        ),
        Outcome => match &r.decided_by {
            Some(who) => format!("Your request was {} by {}.", status.to_lowercase(), one_line(who, 120)),
            None => format!("Your request is now {}.", status.to_lowercase()),
        },
    };

    let mut facts: Vec<(String, String)> = Vec::new();
    let mut fact = |label: &str, value: String| facts.push((label.to_owned(), value));
    if kind == BreakerOpened {
        fact("Agent", agent.clone());
        if let Some(why) = &reason {
            fact("Why it opened", why.clone());
        }
        fact("Last request", title.clone());
    } else {
        fact("Request", title.clone());
        fact("Agent", agent.clone());
    }
    fact("Action", action);
    if let Some(a) = &r.amount {
        fact("Amount", one_line(a, 60));
    }
    if let Some(c) = &r.counterparty {
        fact("Counterparty", one_line(c, 200));
    }
    if !r.explanation.trim().is_empty() {
        fact("Why gated", one_line(&r.explanation, 1000));
    }
    fact("Tier", one_line(&r.tier, 20));
    match kind {
        Outcome => {
            fact("Outcome", status.clone());
            if let Some(who) = &r.decided_by {
                fact("Decided by", one_line(who, 120));
            }
            if let Some(why) = &reason {
                fact("Reason", why.clone());
            }
        }
        BreakerOpened => {}
        _ => {
            if let Some(d) = &deadline {
                fact("Deadline", d.clone());
            }
            match (kind, &reason) {
                (Escalated, Some(why)) => fact("Why escalated", why.clone()),
                (DualConflict, Some(why)) => fact("Decisions", why.clone()),
                (_, Some(why)) => fact("Note", why.clone()),
                _ => {}
            }
        }
    }

    let base = base_url.trim_end_matches('/');
    let link = match kind {
        BreakerOpened => format!("{base}/admin"),
        _ => format!("{base}/inbox/{}", encode_segment(&r.id)),
    };
    let text = plain_text(&subject, &intro, &facts, &link);
    Notification {
        kind,
        request_id: r.id.clone(),
        subject,
        intro,
        text,
        link,
        facts,
        payload: r.payload.clone(),
        created_at_ms: now_ms,
    }
}

fn plain_text(subject: &str, intro: &str, facts: &[(String, String)], link: &str) -> String {
    let width = facts.iter().map(|(l, _)| l.len()).max().unwrap_or(0) + 1;
    let mut out = format!("{subject}\n\n{intro}\n\n");
    for (label, value) in facts {
        out.push_str(&format!("{:<width$} {value}\n", format!("{label}:")));
    }
    out.push_str(&format!("\nOpen in Countersign: {link}\n\n{LINK_NOTE}\n"));
    out
}

fn status_label(status: &str) -> String {
    Status::from_str(status)
        .map(|s| s.label().to_owned())
        .unwrap_or_else(|_| one_line(status, 40))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_795_219_200_000; // 2026-11-21T00:00:00Z
    const HOUR: i64 = 3_600_000;

    pub(crate) fn sample() -> RequestSummary {
        RequestSummary {
            id: "req_01".into(),
            title: "Pay invoice INV-7 to Globex".into(),
            action_type: "payment.wire".into(),
            agent: "payables-bot".into(),
            amount: Some("4,200.00 EUR".into()),
            counterparty: Some("Globex GmbH".into()),
            explanation: "amount above 1,000.00 EUR (gate payments v3, rule 2)".into(),
            tier: "review".into(),
            deadline_at_ms: Some(NOW + 3 * HOUR + 9 * 60_000),
            status: "pending".into(),
            payload: json!({"iban": "DE89 3704 0044 0532 0130 00", "amount": "4200.00"}),
            decided_by: None,
            reason: None,
        }
    }

    fn fact<'a>(n: &'a Notification, label: &str) -> Option<&'a str> {
        n.facts
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn needs_review_says_what_how_much_to_whom_why_and_by_when() {
        let n = render(
            NotificationKind::NeedsReview,
            &sample(),
            "https://cs.example/",
            NOW,
        );
        assert_eq!(n.subject, "Review needed: Pay invoice INV-7 to Globex");
        assert_eq!(n.link, "https://cs.example/inbox/req_01");
        assert_eq!(fact(&n, "Amount"), Some("4,200.00 EUR"));
        assert_eq!(fact(&n, "Counterparty"), Some("Globex GmbH"));
        assert_eq!(fact(&n, "Action"), Some("payment.wire"));
        assert_eq!(fact(&n, "Deadline"), Some("2026-11-21 03:09 UTC (in 3h)"));
        assert!(fact(&n, "Why gated")
            .unwrap()
            .contains("above 1,000.00 EUR"));
        for needle in [
            "4,200.00 EUR",
            "Globex GmbH",
            "gate payments v3",
            "03:09 UTC (in 3h)",
            &n.link,
            LINK_NOTE,
        ] {
            assert!(
                n.text.contains(needle),
                "{needle} missing from:\n{}",
                n.text
            );
        }
        assert!(n.intro.contains("waits for your decision"));
        let dual = render(
            NotificationKind::NeedsReview,
            &RequestSummary {
                tier: "dual".into(),
                ..sample()
            },
            "https://cs.example",
            NOW,
        );
        assert!(
            dual.intro.contains("two independent reviewers"),
            "{}",
            dual.intro
        );
    }

    #[test]
    fn reminder_names_the_time_left() {
        let n = render(
            NotificationKind::Reminder,
            &sample(),
            "https://cs.example",
            NOW,
        );
        assert_eq!(
            n.subject,
            "Reminder: Pay invoice INV-7 to Globex is due in 3h"
        );
        assert!(
            n.intro.contains("2026-11-21 03:09 UTC (in 3h)"),
            "{}",
            n.intro
        );
        let late = RequestSummary {
            deadline_at_ms: Some(NOW - 60_000),
            ..sample()
        };
        let n = render(NotificationKind::Reminder, &late, "https://cs.example", NOW);
        assert_eq!(
            n.subject,
            "Reminder: Pay invoice INV-7 to Globex is overdue"
        );
        let none = RequestSummary {
            deadline_at_ms: None,
            ..sample()
        };
        let n = render(NotificationKind::Reminder, &none, "https://cs.example", NOW);
        assert!(n.subject.ends_with("waits for a decision"));
        assert_eq!(fact(&n, "Deadline"), None);
    }

    #[test]
    fn escalation_says_why() {
        let r = RequestSummary {
            status: "escalated".into(),
            reason: Some("No decision by the deadline".into()),
            deadline_at_ms: Some(NOW - 5 * 60_000),
            ..sample()
        };
        let n = render(NotificationKind::Escalated, &r, "https://cs.example", NOW);
        assert_eq!(n.subject, "Escalated to you: Pay invoice INV-7 to Globex");
        assert_eq!(
            fact(&n, "Why escalated"),
            Some("No decision by the deadline")
        );
        assert_eq!(fact(&n, "Deadline"), Some("2026-11-20 23:55 UTC (5m ago)"));
    }

    #[test]
    fn dual_conflict_shows_both_decisions() {
        let r = RequestSummary {
            tier: "dual".into(),
            reason: Some("Ana approved; Ben rejected: wrong IBAN".into()),
            ..sample()
        };
        let n = render(
            NotificationKind::DualConflict,
            &r,
            "https://cs.example",
            NOW,
        );
        assert_eq!(n.subject, "Reviewers disagree: Pay invoice INV-7 to Globex");
        assert_eq!(
            fact(&n, "Decisions"),
            Some("Ana approved; Ben rejected: wrong IBAN")
        );
        assert!(n.intro.contains("senior reviewer"));
    }

    #[test]
    fn breaker_links_to_admin_and_names_the_agent() {
        let r = RequestSummary {
            reason: Some("7 of 40 requests rejected in the last hour (17.5% > 15%)".into()),
            ..sample()
        };
        let n = render(
            NotificationKind::BreakerOpened,
            &r,
            "https://cs.example",
            NOW,
        );
        assert_eq!(n.subject, "Breaker opened: agent payables-bot is paused");
        assert_eq!(n.link, "https://cs.example/admin");
        assert_eq!(fact(&n, "Agent"), Some("payables-bot"));
        assert!(fact(&n, "Why it opened").unwrap().contains("17.5%"));
        assert_eq!(
            fact(&n, "Last request"),
            Some("Pay invoice INV-7 to Globex")
        );
        assert_eq!(fact(&n, "Deadline"), None);
    }

    #[test]
    fn outcome_tells_the_requester_who_decided_and_why() {
        let r = RequestSummary {
            status: "rejected".into(),
            decided_by: Some("Dana Reviewer".into()),
            reason: Some("Duplicate of INV-6".into()),
            ..sample()
        };
        let n = render(NotificationKind::Outcome, &r, "https://cs.example", NOW);
        assert_eq!(n.subject, "Rejected: Pay invoice INV-7 to Globex");
        assert_eq!(n.intro, "Your request was rejected by Dana Reviewer.");
        assert_eq!(fact(&n, "Outcome"), Some("Rejected"));
        assert_eq!(fact(&n, "Reason"), Some("Duplicate of INV-6"));
        assert_eq!(fact(&n, "Deadline"), None);
        let expired = RequestSummary {
            status: "expired".into(),
            ..sample()
        };
        let n = render(
            NotificationKind::Outcome,
            &expired,
            "https://cs.example",
            NOW,
        );
        assert_eq!(n.subject, "Expired: Pay invoice INV-7 to Globex");
        assert_eq!(n.intro, "Your request is now expired.");
    }

    #[test]
    fn links_are_plain_get_paths_that_carry_no_decision() {
        let hostile = RequestSummary {
            id: "req_1?approve=1&decision=approve#x/../y".into(),
            ..sample()
        };
        for kind in NotificationKind::ALL {
            for r in [sample(), hostile.clone()] {
                let n = render(kind, &r, "https://cs.example/", NOW);
                for word in ["approve", "reject", "decide", "token"] {
                    assert!(!n.link.contains(&format!("{word}=")), "{}", n.link);
                }
                // Exactly one page path: /admin, or /inbox/ and one encoded segment, no query.
                let path = n.link.strip_prefix("https://cs.example").unwrap();
                let segment = match path.strip_prefix("/inbox/") {
                    Some(segment) => segment,
                    None => {
                        assert_eq!(path, "/admin", "{kind:?}");
                        continue;
                    }
                };
                assert!(
                    !segment.contains(['?', '#', '&', '=', '/']),
                    "{kind:?}: {}",
                    n.link
                );
            }
        }
        let n = render(
            NotificationKind::NeedsReview,
            &hostile,
            "https://cs.example",
            NOW,
        );
        assert_eq!(
            n.link,
            "https://cs.example/inbox/req_1%3Fapprove%3D1%26decision%3Dapprove%23x%2F..%2Fy"
        );
    }

    #[test]
    fn every_kind_renders_one_line_subjects_and_the_link_note() {
        let r = RequestSummary {
            title: "Line one\r\nBcc: attacker@example.com\u{7}".into(),
            ..sample()
        };
        for kind in NotificationKind::ALL {
            let n = render(kind, &r, "https://cs.example", NOW);
            assert!(
                !n.subject.contains(['\r', '\n', '\u{7}']),
                "{:?}",
                n.subject
            );
            assert!(n.facts.iter().all(|(_, v)| !v.contains('\n')));
            assert!(n.text.contains(LINK_NOTE));
            assert!(n.text.contains(&n.link));
            assert_eq!(n.request_id, "req_01");
            assert_eq!(n.payload, r.payload);
        }
    }
}
