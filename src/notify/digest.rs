//! Digests: for people who chose them, notifications wait as items and go out together, one
//! email per person, one digest interval after the first item that waits (hourly by default).
//! A digest is an ordinary outbox message, so it is retried and logged like any other.
//!
//! Items keep the request summary of the moment the event happened; the digest is rendered when
//! it is sent, so deadlines read relative to then ("in 2h", "5m ago").

use super::formats::email_parts;
use super::message::{render, NotificationKind, RequestSummary, LINK_NOTE};
use super::text::html_escape;
use super::{Channel, Prepared};
use crate::on_tx;
use crate::server::ids::new_id;
use crate::server::{now_ms, AppState};

/// The kind digests are stored under in the outbox and shown as in the delivery log.
pub const DIGEST_KIND: &str = "digest";

/// One digest email: `(subject, text, html)` for `items`, in the order they happened.
pub fn render_digest(
    items: &[(NotificationKind, RequestSummary)],
    base_url: &str,
    now_ms: i64,
) -> (String, String, String) {
    let base = base_url.trim_end_matches('/');
    let settings = format!("{base}/account/notifications");
    let count = items.len();
    let title = format!(
        "Digest: {count} notification{}",
        if count == 1 { "" } else { "s" }
    );
    let rendered: Vec<_> = items
        .iter()
        .map(|(kind, summary)| render(*kind, summary, base, now_ms))
        .collect();
    let mut text = format!("{title}\n\n");
    let mut list = String::new();
    for (i, n) in rendered.iter().enumerate() {
        text.push_str(&format!("{}. {}\n", i + 1, n.subject));
        let mut rows = String::new();
        for (label, value) in &n.facts {
            text.push_str(&format!("   {label}: {value}\n"));
            rows.push_str(&format!(
                "<tr><th align=\"left\" style=\"padding:1px 12px 1px 0;vertical-align:top\">{}</th><td>{}</td></tr>",
                html_escape(label),
                html_escape(value)
            ));
        }
        text.push_str(&format!("   Open: {}\n\n", n.link));
        list.push_str(&format!(
            "<li style=\"margin-bottom:12px\"><a href=\"{link}\">{subject}</a>\n<table role=\"presentation\" style=\"border-collapse:collapse;font-size:13px\">{rows}</table></li>\n",
            link = html_escape(&n.link),
            subject = html_escape(&n.subject),
        ));
    }
    text.push_str(&format!(
        "{LINK_NOTE}\nChoose what you receive, and how: {settings}\n"
    ));
    let body = format!(
        "<h1 style=\"font-size:18px\">{title}</h1>\n<ol>\n{list}</ol>\n\
         <p style=\"color:#555;font-size:12px\">{note}<br><a href=\"{settings}\">Choose what you receive, and how</a></p>",
        title = html_escape(&title),
        note = html_escape(LINK_NOTE),
        settings = html_escape(&settings),
    );
    email_parts(&title, text, &body)
}

/// Sends every digest that is due: each person whose oldest waiting item is at least one digest
/// interval old gets one message with everything waiting for them. Returns how many were queued.
pub async fn send_due(state: &AppState) -> anyhow::Result<usize> {
    let now = now_ms();
    let cutoff = now - state.config.digest_interval.as_millis() as i64;
    let users: Vec<String> = crate::on_db!(&state.db, |p| sqlx::query_scalar(
        "SELECT user_id FROM digest_items WHERE sent_in IS NULL \
         GROUP BY user_id HAVING MIN(created_at) <= $1 ORDER BY user_id LIMIT 100"
    )
    .bind(cutoff)
    .fetch_all(p)
    .await)?;
    let mut sent = 0;
    for user_id in users {
        let mut tx = state.db.begin_write().await?;
        let id = new_id("ntf");
        // Claiming first means two server processes never put one item in two digests.
        let claimed = on_tx!(&mut tx, |c| sqlx::query(
            "UPDATE digest_items SET sent_in = $2 WHERE user_id = $1 AND sent_in IS NULL"
        )
        .bind(&user_id)
        .bind(&id)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))?;
        if claimed == 0 {
            continue;
        }
        let rows: Vec<(String, String)> = on_tx!(&mut tx, |c| sqlx::query_as(
            "SELECT kind, summary FROM digest_items WHERE sent_in = $1 ORDER BY created_at, id"
        )
        .bind(&id)
        .fetch_all(&mut *c)
        .await)?;
        let person: Option<(String, bool)> = on_tx!(&mut tx, |c| sqlx::query_as(
            "SELECT email, disabled FROM users WHERE id = $1"
        )
        .bind(&user_id)
        .fetch_optional(&mut *c)
        .await)?;
        let items: Vec<(NotificationKind, RequestSummary)> = rows
            .iter()
            .filter_map(|(k, s)| Some((NotificationKind::parse(k)?, serde_json::from_str(s).ok()?)))
            .collect();
        match person {
            // A disabled account's waiting items are dropped with it.
            Some((email, false)) if !items.is_empty() => {
                let (subject, text, html) = render_digest(&items, &state.config.public_url, now);
                let channel = Channel::Email { to: email };
                let prepared = Prepared::Email {
                    subject,
                    text,
                    html,
                };
                super::outbox::insert(
                    &mut tx,
                    &id,
                    DIGEST_KIND,
                    None,
                    Some(&user_id),
                    None,
                    &channel,
                    &prepared,
                    now,
                )
                .await?;
                sent += 1;
            }
            _ => {}
        }
        tx.commit().await?;
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_795_219_200_000; // 2026-11-21T00:00:00Z

    fn summary(id: &str, title: &str) -> RequestSummary {
        RequestSummary {
            id: id.into(),
            title: title.into(),
            action_type: "payment.refund".into(),
            agent: "refund-bot".into(),
            amount: Some("83.51 EUR".into()),
            counterparty: Some("Contoso <Ltd>".into()),
            explanation: "amount above 50.00 EUR".into(),
            tier: "review".into(),
            deadline_at_ms: Some(NOW + 7_200_000),
            status: "pending".into(),
            payload: json!(null),
            decided_by: None,
            reason: None,
        }
    }

    #[test]
    fn a_digest_lists_every_item_with_its_facts_and_link() {
        let items = vec![
            (NotificationKind::NeedsReview, summary("req_a", "Refund A")),
            (
                NotificationKind::Outcome,
                RequestSummary {
                    status: "rejected".into(),
                    decided_by: Some("Dana".into()),
                    reason: Some("Duplicate".into()),
                    ..summary("req_b", "Refund B")
                },
            ),
        ];
        let (subject, text, html) = render_digest(&items, "https://cs.example/", NOW);
        assert_eq!(subject, "[Countersign] Digest: 2 notifications");
        for needle in [
            "1. Review needed: Refund A",
            "2. Rejected: Refund B",
            "Amount: 83.51 EUR",
            "Counterparty: Contoso <Ltd>",
            "Why gated: amount above 50.00 EUR",
            "Deadline: 2026-11-21 02:00 UTC (in 2h)",
            "Reason: Duplicate",
            "Open: https://cs.example/inbox/req_a",
            "Open: https://cs.example/inbox/req_b",
            LINK_NOTE,
            "https://cs.example/account/notifications",
        ] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
        assert!(html.contains("Contoso &lt;Ltd&gt;"), "{html}");
        assert!(
            html.contains("<a href=\"https://cs.example/inbox/req_a\">Review needed: Refund A</a>")
        );
        assert!(!html.contains("<Ltd>"));
        let (one, _, _) = render_digest(&items[..1], "https://cs.example", NOW);
        assert_eq!(one, "[Countersign] Digest: 1 notification");
    }
}
