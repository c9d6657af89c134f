//! The agent's checkpoint as submitted to `POST /api/v1/actions`, and its validation.
//!
//! Parsing is strict: unknown fields are refused, amounts are decimal strings (never binary
//! floats), and every problem names the offending field, so an integrator can fix a request
//! from the error alone.

use crate::domain::money::Money;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The largest request body accepted, in bytes (documented in the OpenAPI document).
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// The largest serialized `payload`, in bytes.
pub const MAX_PAYLOAD_BYTES: usize = 128 * 1024;
/// The longest idempotency key.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmountBody {
    /// Decimal string, e.g. "4200.00".
    pub value: String,
    /// ISO 4217 code, e.g. "EUR".
    pub currency: String,
}

/// The submission body. Every field but `action_type` and `payload` is optional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointBody {
    pub action_type: String,
    #[serde(default)]
    pub title: Option<String>,
    pub payload: Value,
    #[serde(default)]
    pub current_state: Option<Value>,
    #[serde(default)]
    pub inputs: Option<Value>,
    #[serde(default)]
    pub reasoning: Option<String>,
    #[serde(default)]
    pub alternatives: Option<Value>,
    #[serde(default)]
    pub confidence: Option<f64>,
    #[serde(default)]
    pub amount: Option<AmountBody>,
    #[serde(default)]
    pub counterparty: Option<String>,
    #[serde(default)]
    pub customer_tier: Option<String>,
    #[serde(default)]
    pub record_count: Option<i64>,
    #[serde(default)]
    pub recipient_count: Option<i64>,
    #[serde(default)]
    pub risk_class: Option<String>,
    #[serde(default)]
    pub acting_for: Option<String>,
    #[serde(default)]
    pub tenant: Option<String>,
    #[serde(default)]
    pub callback_url: Option<String>,
    /// RFC 3339 instant by which a human must decide, e.g. "2026-11-23T17:00:00Z".
    #[serde(default)]
    pub deadline: Option<String>,
    /// The id of an earlier request this one replaces (a new attempt is a new request).
    #[serde(default)]
    pub supersedes: Option<String>,
}

/// A problem with one field of the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: String,
    pub detail: String,
}

fn problem(field: &str, detail: impl Into<String>) -> FieldProblem {
    FieldProblem {
        field: field.to_owned(),
        detail: detail.into(),
    }
}

/// A checkpoint that passed validation, with its parsed values.
#[derive(Debug, Clone)]
pub struct ValidCheckpoint {
    pub body: CheckpointBody,
    pub amount: Option<Money>,
    pub deadline_at: Option<i64>,
    /// `body.callback_url`, parsed.
    pub callback: Option<url::Url>,
}

/// Parses and validates a raw body. `now` bounds the deadline.
pub fn parse(bytes: &[u8], now: i64) -> Result<ValidCheckpoint, FieldProblem> {
    if bytes.len() > MAX_BODY_BYTES {
        return Err(problem(
            "body",
            format!("is larger than {MAX_BODY_BYTES} bytes"),
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        problem(
            "body",
            format!("is not valid UTF-8 (at byte {})", e.valid_up_to()),
        )
    })?;
    let mut de = serde_json::Deserializer::from_str(text);
    let body: CheckpointBody = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let malformed = matches!(
            inner.classify(),
            serde_json::error::Category::Syntax
                | serde_json::error::Category::Eof
                | serde_json::error::Category::Io
        );
        let field = if malformed {
            "body".to_owned()
        } else if path == "." || path == "?" || path.is_empty() {
            unknown_field_name(&inner.to_string()).unwrap_or_else(|| "body".to_owned())
        } else {
            path
        };
        problem(&field, strip_position(&inner.to_string()))
    })?;
    de.end()
        .map_err(|_| problem("body", "has trailing characters after the JSON object"))?;
    validate(body, now)
}

/// serde reports an unknown or missing top-level field in its message, not in the path.
fn unknown_field_name(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    // An empty key (`{"": 1}`) would make a problem without a field name; the body is at fault.
    Some(message[start..end].to_owned()).filter(|name| !name.is_empty())
}

fn strip_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

fn check_text(field: &str, value: &Option<String>, max_chars: usize) -> Result<(), FieldProblem> {
    if let Some(v) = value {
        if v.chars().count() > max_chars {
            return Err(problem(
                field,
                format!("is longer than {max_chars} characters"),
            ));
        }
        if v.chars()
            .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
        {
            return Err(problem(field, "contains control characters"));
        }
    }
    Ok(())
}

fn check_label(field: &str, value: &Option<String>) -> Result<(), FieldProblem> {
    check_text(field, value, 200)?;
    if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
        return Err(problem(field, "must not be blank; leave it out instead"));
    }
    Ok(())
}

pub fn validate(body: CheckpointBody, now: i64) -> Result<ValidCheckpoint, FieldProblem> {
    let at = &body.action_type;
    if at.is_empty()
        || at.len() > 128
        || !at.contains('.')
        || at.starts_with('.')
        || at.ends_with('.')
        || !at.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_' || b == b'-'
        })
    {
        return Err(problem(
            "action_type",
            "must look like domain.verb in lower case, e.g. payment.refund",
        ));
    }
    if body.payload.is_null() {
        return Err(problem(
            "payload",
            "is required: the exact action the agent would execute",
        ));
    }
    if body.payload.to_string().len() > MAX_PAYLOAD_BYTES {
        return Err(problem(
            "payload",
            format!("is larger than {MAX_PAYLOAD_BYTES} bytes"),
        ));
    }
    check_label("title", &body.title)?;
    check_text("reasoning", &body.reasoning, 20_000)?;
    for (field, value) in [
        ("counterparty", &body.counterparty),
        ("customer_tier", &body.customer_tier),
        ("risk_class", &body.risk_class),
        ("acting_for", &body.acting_for),
        ("tenant", &body.tenant),
        ("supersedes", &body.supersedes),
    ] {
        check_label(field, value)?;
    }
    if let Some(c) = body.confidence {
        if !(0.0..=1.0).contains(&c) {
            return Err(problem("confidence", "must be between 0 and 1"));
        }
    }
    for (field, value) in [
        ("record_count", body.record_count),
        ("recipient_count", body.recipient_count),
    ] {
        if let Some(n) = value {
            if !(0..=1_000_000_000_000).contains(&n) {
                return Err(problem(field, "must be a whole number from 0 to 10^12"));
            }
        }
    }
    let amount = match &body.amount {
        None => None,
        Some(a) => Some(Money::parse(&a.value, &a.currency).map_err(|e| {
            let field = if matches!(e, crate::domain::money::MoneyError::UnknownCurrency(_)) {
                "amount.currency"
            } else {
                "amount.value"
            };
            problem(field, e.to_string())
        })?),
    };
    let callback = match &body.callback_url {
        None => None,
        Some(url) => {
            let parsed = url::Url::parse(url)
                .map_err(|e| problem("callback_url", format!("is not a URL: {e}")))?;
            if !matches!(parsed.scheme(), "https" | "http")
                || parsed.host_str().is_none()
                || url.len() > 2048
            {
                return Err(problem(
                    "callback_url",
                    "must be an http(s) URL with a host, at most 2048 characters",
                ));
            }
            Some(parsed)
        }
    };
    let deadline_at = match &body.deadline {
        None => None,
        Some(d) => {
            let t = time::OffsetDateTime::parse(d, &time::format_description::well_known::Rfc3339)
                .map_err(|_| {
                    problem(
                        "deadline",
                        "must be an RFC 3339 time such as 2026-11-23T17:00:00Z",
                    )
                })?;
            let ms = (t.unix_timestamp_nanos() / 1_000_000) as i64;
            if ms <= now {
                return Err(problem("deadline", "is in the past"));
            }
            if ms > now + 365 * 86_400_000 {
                return Err(problem("deadline", "is more than a year away"));
            }
            Some(ms)
        }
    };
    Ok(ValidCheckpoint {
        body,
        amount,
        deadline_at,
        callback,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_unknown_key_is_blamed_on_the_body() {
        let p = parse(br#"{"":null}"#, NOW).unwrap_err();
        assert_eq!(p.field, "body");
        assert!(p.detail.contains("unknown field"), "{}", p.detail);
    }

    const NOW: i64 = 1_795_219_200_000; // 2026-11-21T00:00:00Z

    fn ok(json: &str) -> ValidCheckpoint {
        parse(json.as_bytes(), NOW).unwrap_or_else(|p| panic!("{json}: {p:?}"))
    }

    fn err(json: &[u8]) -> FieldProblem {
        parse(json, NOW).expect_err("should be refused")
    }

    #[test]
    fn a_full_checkpoint_parses() {
        let v = ok(
            r#"{"action_type":"payment.refund","title":"Refund","payload":{"order":"A1"},
            "current_state":{"refunded":"0"},"inputs":{"ticket":"T1"},"reasoning":"because",
            "alternatives":["credit"],"confidence":0.82,"amount":{"value":"4200.00","currency":"EUR"},
            "counterparty":"Contoso","customer_tier":"enterprise","record_count":1,"recipient_count":0,
            "risk_class":"low","acting_for":"usr_dana","tenant":"acme","callback_url":"https://agent.example/hook",
            "deadline":"2026-11-22T09:00:00Z","supersedes":"req_1"}"#,
        );
        assert_eq!(v.amount.unwrap().minor, 420_000);
        assert_eq!(v.deadline_at, Some(NOW + 9 * 3_600_000 + 86_400_000));
        ok(r#"{"action_type":"crm.bulk_update","payload":[1,2]}"#);
    }

    #[test]
    fn every_problem_names_its_field() {
        let cases: &[(&[u8], &str)] = &[
            (b"{", "body"),
            (b"[]", "body"),
            (b"\xff\xfe", "body"),
            (br#"{"action_type":"payment.refund","payload":{}} x"#, "body"),
            (br#"{"payload":{}}"#, "action_type"),
            (br#"{"action_type":"payment.refund"}"#, "payload"),
            (br#"{"action_type":"payment.refund","payload":null}"#, "payload"),
            (br#"{"action_type":"Payment Refund","payload":{}}"#, "action_type"),
            (br#"{"action_type":"refund","payload":{}}"#, "action_type"),
            (br#"{"action_type":"payment.refund","payload":{},"colour":"red"}"#, "colour"),
            (br#"{"action_type":"payment.refund","payload":{},"confidence":"high"}"#, "confidence"),
            (br#"{"action_type":"payment.refund","payload":{},"confidence":1.5}"#, "confidence"),
            (br#"{"action_type":"payment.refund","payload":{},"record_count":-1}"#, "record_count"),
            (br#"{"action_type":"payment.refund","payload":{},"record_count":1e300}"#, "record_count"),
            (br#"{"action_type":"payment.refund","payload":{},"amount":{"value":"-5","currency":"EUR"}}"#, "amount.value"),
            (br#"{"action_type":"payment.refund","payload":{},"amount":{"value":"5","currency":"EUX"}}"#, "amount.currency"),
            (br#"{"action_type":"payment.refund","payload":{},"amount":{"value":"1e99","currency":"EUR"}}"#, "amount.value"),
            (br#"{"action_type":"payment.refund","payload":{},"amount":{"value":5,"currency":"EUR"}}"#, "amount.value"),
            (br#"{"action_type":"payment.refund","payload":{},"amount":{"value":"5","currency":"EUR","fx":1}}"#, "amount.fx"),
            (br#"{"action_type":"payment.refund","payload":{},"callback_url":"ftp://x/y"}"#, "callback_url"),
            (br#"{"action_type":"payment.refund","payload":{},"callback_url":"not a url"}"#, "callback_url"),
            (br#"{"action_type":"payment.refund","payload":{},"deadline":"tomorrow"}"#, "deadline"),
            (br#"{"action_type":"payment.refund","payload":{},"deadline":"2020-01-01T00:00:00Z"}"#, "deadline"),
            (br#"{"action_type":"payment.refund","payload":{},"title":"  "}"#, "title"),
            (br#"{"action_type":"payment.refund","payload":{},"title":"a\u0000b"}"#, "title"),
        ];
        for (body, field) in cases {
            let p = err(body);
            assert_eq!(p.field, *field, "{}: {p:?}", String::from_utf8_lossy(body));
            assert!(
                !p.detail.contains("line 1"),
                "no parser positions: {}",
                p.detail
            );
        }
    }

    #[test]
    fn oversize_bodies_and_payloads_are_refused() {
        let big = format!(
            r#"{{"action_type":"a.b","payload":"{}"}}"#,
            "x".repeat(MAX_PAYLOAD_BYTES)
        );
        assert_eq!(err(big.as_bytes()).field, "payload");
        let huge = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(err(&huge).field, "body");
    }
}
