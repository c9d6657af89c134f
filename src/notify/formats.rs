//! One [`Notification`] shaped for each channel: a Slack incoming-webhook message, a generic
//! JSON webhook body (Standard Webhooks envelope), and an email with plain-text and HTML parts.
//! Everything that came from an agent or a person is escaped for the format it lands in.

use super::message::{Notification, RequestSummary, LINK_NOTE};
use super::payload::redacted;
use super::text::html_escape;
use super::text::{cut, slack_escape, slack_link_escape};
use crate::domain::time::iso_utc;
use serde_json::{json, Value};

/// Slack's limits: header text 150 characters, section text 3,000, ten fields per section.
const SLACK_HEADER_MAX: usize = 150;
const SLACK_TEXT_MAX: usize = 3000;
const SLACK_FIELDS_PER_SECTION: usize = 10;

/// A Slack incoming-webhook message (`text` for notifications and old clients, plus `blocks`).
/// The payload is left out unless `include_payload`; then the fields in `redact` are blanked.
pub fn slack_payload(n: &Notification, include_payload: bool, redact: &[String]) -> Value {
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": cut(&n.subject, SLACK_HEADER_MAX), "emoji": false}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(&slack_escape(&n.intro), SLACK_TEXT_MAX)}}),
    ];
    for chunk in n.facts.chunks(SLACK_FIELDS_PER_SECTION) {
        let fields: Vec<Value> = chunk
            .iter()
            .map(|(label, value)| {
                json!({"type": "mrkdwn", "text": cut(&format!("*{}*\n{}", slack_escape(label), slack_escape(value)), 2000)})
            })
            .collect();
        blocks.push(json!({"type": "section", "fields": fields}));
    }
    if include_payload {
        let pretty = serde_json::to_string_pretty(&redacted(&n.payload, redact))
            .unwrap_or_else(|_| "null".into());
        let body = cut(&slack_escape(&pretty), SLACK_TEXT_MAX - 40);
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("*Payload*\n```{body}```")}}));
    }
    blocks.push(json!({"type": "actions", "elements": [{
        "type": "button",
        "text": {"type": "plain_text", "text": "Open in Countersign"},
        "url": n.link,
    }]}));
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": LINK_NOTE}]}));
    json!({
        "text": format!("{} <{}|Open in Countersign>", slack_escape(&n.subject), slack_link_escape(&n.link)),
        "blocks": blocks,
        "unfurl_links": false,
        "unfurl_media": false,
    })
}

/// The body of a generic JSON webhook: `{"type": "notification.{kind}", "timestamp", "data"}`,
/// the same envelope as agent callbacks. The payload is left out unless `include_payload`.
pub fn json_webhook_body(
    n: &Notification,
    r: &RequestSummary,
    include_payload: bool,
    redact: &[String],
) -> Value {
    let mut request = json!({
        "id": r.id,
        "title": r.title,
        "action_type": r.action_type,
        "agent": r.agent,
        "amount": r.amount,
        "counterparty": r.counterparty,
        "explanation": r.explanation,
        "tier": r.tier,
        "status": r.status,
        "deadline_at": r.deadline_at_ms.map(iso_utc),
        "deadline_at_ms": r.deadline_at_ms,
        "decided_by": r.decided_by,
        "reason": r.reason,
        "payload_included": include_payload,
    });
    if include_payload {
        request["payload"] = redacted(&r.payload, redact);
    }
    let facts: Vec<Value> = n
        .facts
        .iter()
        .map(|(label, value)| json!({"label": label, "value": value}))
        .collect();
    json!({
        "type": format!("notification.{}", n.kind.as_str()),
        "timestamp": iso_utc(n.created_at_ms),
        "data": {
            "kind": n.kind.as_str(),
            "subject": n.subject,
            "intro": n.intro,
            "text": n.text,
            "link": n.link,
            "facts": facts,
            "request": request,
        },
    })
}

/// `(subject, plain text body, HTML body)`. Email never carries the payload: only the facts
/// and the link.
pub fn email(n: &Notification) -> (String, String, String) {
    let subject = format!("[Countersign] {}", n.subject);
    let mut rows = String::new();
    for (label, value) in &n.facts {
        rows.push_str(&format!(
            "<tr><th align=\"left\" style=\"padding:2px 12px 2px 0;vertical-align:top\">{}</th><td style=\"padding:2px 0\">{}</td></tr>\n",
            html_escape(label),
            html_escape(value)
        ));
    }
    let html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n\
         <body style=\"font-family:sans-serif;font-size:14px;color:#1a1a1a\">\n\
         <h1 style=\"font-size:18px\">{title}</h1>\n<p>{intro}</p>\n\
         <table role=\"presentation\" style=\"border-collapse:collapse\">\n{rows}</table>\n\
         <p><a href=\"{link}\">Open in Countersign</a></p>\n\
         <p style=\"color:#555;font-size:12px\">{note}<br>{link_text}</p>\n</body></html>\n",
        title = html_escape(&n.subject),
        intro = html_escape(&n.intro),
        link = html_escape(&n.link),
        note = html_escape(LINK_NOTE),
        link_text = html_escape(&n.link),
    );
    (subject, n.text.clone(), html)
}

/// An email around an already escaped HTML fragment: the subject `[Countersign] {title}`, the
/// plain text as given, and a complete HTML document.
pub fn email_parts(title: &str, text: String, body_html: &str) -> (String, String, String) {
    let html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n\
         <body style=\"font-family:sans-serif;font-size:14px;color:#1a1a1a\">\n{body_html}\n</body></html>\n",
        title = html_escape(title),
    );
    (format!("[Countersign] {title}"), text, html)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::message::{render, NotificationKind};
    use serde_json::json;

    const NOW: i64 = 1_795_219_200_000;

    fn summary() -> RequestSummary {
        RequestSummary {
            id: "req_9".into(),
            title: "Wire <b>4,200.00 EUR</b> to <!channel> & co".into(),
            action_type: "payment.wire".into(),
            agent: "payables-bot".into(),
            amount: Some("4,200.00 EUR".into()),
            counterparty: Some("O'Hara & Sons \"Ltd\"".into()),
            explanation: "amount above 1,000.00 EUR".into(),
            tier: "review".into(),
            deadline_at_ms: Some(NOW + 7_200_000),
            status: "pending".into(),
            payload: json!({"iban": "DE89 3704", "amount": "4200.00", "note": "<script>"}),
            decided_by: None,
            reason: None,
        }
    }

    fn all_text(v: &Value) -> String {
        v.to_string()
    }

    #[test]
    fn slack_leaves_the_payload_out_by_default() {
        for kind in NotificationKind::ALL {
            let n = render(kind, &summary(), "https://cs.example", NOW);
            let msg = slack_payload(&n, false, &[]);
            let text = all_text(&msg);
            assert!(!text.contains("DE89"), "{text}");
            assert!(!text.contains("Payload"));
            assert!(text.contains("4,200.00 EUR"));
            assert!(msg["text"].as_str().unwrap().contains(&n.link));
            let blocks = msg["blocks"].as_array().unwrap();
            assert_eq!(blocks[0]["type"], "header");
            assert!(blocks
                .iter()
                .any(|b| b["elements"][0]["url"] == n.link.as_str()));
        }
    }

    #[test]
    fn slack_includes_a_redacted_payload_when_the_gate_allows_it() {
        let n = render(
            NotificationKind::NeedsReview,
            &summary(),
            "https://cs.example",
            NOW,
        );
        let text = all_text(&slack_payload(&n, true, &["/iban".to_string()]));
        assert!(text.contains("[redacted]"), "{text}");
        assert!(!text.contains("DE89"));
        assert!(text.contains("4200.00"));
        assert!(text.contains("&lt;script&gt;"), "{text}");
    }

    #[test]
    fn slack_text_cannot_mention_the_channel_or_hide_links() {
        let n = render(
            NotificationKind::NeedsReview,
            &summary(),
            "https://cs.example",
            NOW,
        );
        let msg = slack_payload(&n, false, &[]);
        let fallback = msg["text"].as_str().unwrap();
        assert!(
            fallback.starts_with(
                "Review needed: Wire &lt;b&gt;4,200.00 EUR&lt;/b&gt; to &lt;!channel&gt; &amp; co"
            ),
            "{fallback}"
        );
        for block in msg["blocks"].as_array().unwrap().iter().skip(1) {
            assert!(!block.to_string().contains("<!channel>"), "{block}");
        }
        // The header is plain text, which Slack never parses for mentions or links.
        assert_eq!(msg["blocks"][0]["text"]["type"], "plain_text");
    }

    #[test]
    fn webhook_body_is_structured_and_payload_free_by_default() {
        let r = summary();
        let n = render(NotificationKind::Reminder, &r, "https://cs.example", NOW);
        let body = json_webhook_body(&n, &r, false, &[]);
        assert_eq!(body["type"], "notification.reminder");
        assert_eq!(body["timestamp"], "2026-11-21T00:00:00Z");
        assert_eq!(body["data"]["link"], "https://cs.example/inbox/req_9");
        assert_eq!(body["data"]["request"]["amount"], "4,200.00 EUR");
        assert_eq!(
            body["data"]["request"]["deadline_at"],
            "2026-11-21T02:00:00Z"
        );
        assert_eq!(body["data"]["request"]["payload_included"], false);
        assert!(body["data"]["request"].get("payload").is_none());
        let with = json_webhook_body(&n, &r, true, &["/iban".into()]);
        assert_eq!(with["data"]["request"]["payload"]["iban"], "[redacted]");
        assert_eq!(with["data"]["request"]["payload"]["amount"], "4200.00");
    }

    #[test]
    fn email_escapes_html_and_keeps_text_plain() {
        let n = render(
            NotificationKind::NeedsReview,
            &summary(),
            "https://cs.example",
            NOW,
        );
        let (subject, text, html) = email(&n);
        assert_eq!(subject, format!("[Countersign] {}", n.subject));
        assert!(text.contains("O'Hara & Sons \"Ltd\""));
        assert!(
            html.contains("O&#39;Hara &amp; Sons &quot;Ltd&quot;"),
            "{html}"
        );
        assert!(html.contains("Wire &lt;b&gt;4,200.00 EUR&lt;/b&gt;"));
        assert!(!html.contains("<b>") && !html.contains("<script>"));
        assert!(html.contains("<a href=\"https://cs.example/inbox/req_9\">"));
        assert!(!text.contains("DE89") && !html.contains("DE89"));
        assert!(html.contains("2026-11-21 02:00 UTC (in 2h)"));
    }

    #[test]
    fn long_subjects_fit_slack_headers() {
        let r = RequestSummary {
            title: "x".repeat(400),
            ..summary()
        };
        let n = render(NotificationKind::Escalated, &r, "https://cs.example", NOW);
        let msg = slack_payload(&n, false, &[]);
        let header = msg["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(header.chars().count() <= SLACK_HEADER_MAX);
        assert!(header.ends_with('…'));
    }
}
