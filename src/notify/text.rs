//! Small text helpers shared by the renderer and the channel formats: one-line values,
//! deadlines, path segments and escaping for HTML and Slack.

use crate::domain::time::{compact_duration, iso_utc};

/// "2026-11-21 09:30 UTC (in 3h)": the absolute time in UTC and how far away it is.
pub fn deadline_text(deadline_ms: i64, now_ms: i64) -> String {
    let iso = iso_utc(deadline_ms);
    // "2026-11-21T09:30:00Z" -> "2026-11-21 09:30 UTC"
    let (date, time) = iso.split_once('T').unwrap_or((&iso, ""));
    let hh_mm = time.get(..5).unwrap_or(time);
    format!("{date} {hh_mm} UTC ({})", relative(deadline_ms, now_ms))
}

/// "in 3h" for a future instant, "5m ago" for a past one.
pub fn relative(at_ms: i64, now_ms: i64) -> String {
    let delta = at_ms.saturating_sub(now_ms);
    if delta >= 0 {
        format!("in {}", compact_duration(delta))
    } else {
        format!("{} ago", compact_duration(delta.saturating_neg()))
    }
}

/// Collapses whitespace (newlines included) and drops control characters, so a value can sit in
/// a subject line or a table cell; longer than `max` characters ends in "…".
pub fn one_line(text: &str, max: usize) -> String {
    let cleaned: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    cut(&cleaned, max)
}

/// Percent-encodes everything but RFC 3986 unreserved characters, for one path segment.
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Escapes text for HTML element content and double- or single-quoted attributes.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Slack's mrkdwn control characters, so agent text cannot mention `@channel` (`<!channel>`)
/// or hide a link (`<https://x|y>`).
pub fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A URL inside `<url|label>`: `|` and `>` would end it early.
pub fn slack_link_escape(url: &str) -> String {
    slack_escape(url).replace('|', "%7C")
}

/// At most `max` characters, ending in "…" when cut.
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_219_200_000; // 2026-11-21T00:00:00Z

    #[test]
    fn long_values_are_cut() {
        assert_eq!(one_line(&"x".repeat(10), 5), "xxxx…");
        assert_eq!(one_line("  a \n b\t", 5), "a b");
        assert_eq!(relative(NOW + 2 * 86_400_000, NOW), "in 2d");
        assert_eq!(relative(NOW - 1000, NOW), "1s ago");
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("abc", 4), "abc");
    }

    #[test]
    fn deadlines_show_utc_and_distance() {
        assert_eq!(
            deadline_text(NOW + 90 * 60_000, NOW),
            "2026-11-21 01:30 UTC (in 1h)"
        );
        assert_eq!(
            deadline_text(NOW - 30_000, NOW),
            "2026-11-20 23:59 UTC (30s ago)"
        );
    }

    #[test]
    fn escaping() {
        assert_eq!(html_escape("a&b<c>\"d'"), "a&amp;b&lt;c&gt;&quot;d&#39;");
        assert_eq!(
            slack_escape("<!channel> & <https://x|y>"),
            "&lt;!channel&gt; &amp; &lt;https://x|y&gt;"
        );
        assert_eq!(slack_link_escape("https://x/a|b>"), "https://x/a%7Cb&gt;");
        assert_eq!(encode_segment("req_1?a=b/c d"), "req_1%3Fa%3Db%2Fc%20d");
    }
}
