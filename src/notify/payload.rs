//! Whether a request's payload goes into a message, and which of its fields are blanked first.
//!
//! By default no payload leaves Countersign in a notification: chat messages and webhooks carry
//! the summary facts and a link. A gate can opt in with `include_payload`, and list fields to
//! redact as JSON Pointers (RFC 6901), e.g. `/iban` or `/beneficiary/account`:
//! - each pointer's value (string, number, object, array: whatever it is) becomes `"[redacted]"`;
//! - a `*` segment matches every member of an object or element of an array at that level,
//!   so `/lines/*/card` redacts `card` in every line;
//! - a pointer that matches nothing changes nothing; `""` (the whole document) redacts it all;
//! - a malformed pointer fails closed: the whole payload is redacted, never sent in the clear.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What replaces a redacted value.
pub const REDACTED: &str = "[redacted]";

/// A gate's choice for chat and webhook messages. The default sends no payload at all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayloadPolicy {
    pub include_payload: bool,
    /// JSON Pointers of fields to replace with [`REDACTED`] when the payload is included.
    #[serde(default)]
    pub redact: Vec<String>,
}

/// Checks a redaction pointer when a gate is saved, so a typo is refused with a clear message.
pub fn validate_pointer(pointer: &str) -> Result<(), String> {
    parse_pointer(pointer).map(|_| ()).ok_or_else(|| {
        format!(
            "{:?} is not a JSON Pointer; use a path such as /iban or /lines/*/card",
            pointer.chars().take(80).collect::<String>()
        )
    })
}

/// A copy of `payload` with every field named by `redact` replaced by [`REDACTED`].
pub fn redacted(payload: &Value, redact: &[String]) -> Value {
    let mut out = payload.clone();
    for pointer in redact {
        match parse_pointer(pointer) {
            Some(tokens) => redact_at(&mut out, &tokens),
            None => return Value::String(REDACTED.into()),
        }
    }
    out
}

/// The unescaped reference tokens of a pointer; `None` when it is malformed.
fn parse_pointer(pointer: &str) -> Option<Vec<String>> {
    if pointer.is_empty() {
        return Some(Vec::new());
    }
    let rest = pointer.strip_prefix('/')?;
    rest.split('/').map(unescape).collect()
}

/// `~1` is `/` and `~0` is `~`; any other `~` is an error.
fn unescape(token: &str) -> Option<String> {
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

fn redact_at(value: &mut Value, tokens: &[String]) {
    let Some((first, rest)) = tokens.split_first() else {
        *value = Value::String(REDACTED.into());
        return;
    };
    match value {
        Value::Object(map) => {
            if first == "*" {
                for child in map.values_mut() {
                    redact_at(child, rest);
                }
            } else if let Some(child) = map.get_mut(first.as_str()) {
                redact_at(child, rest);
            }
        }
        Value::Array(items) => {
            if first == "*" {
                for child in items.iter_mut() {
                    redact_at(child, rest);
                }
            } else if let Some(child) = array_index(first).and_then(|i| items.get_mut(i)) {
                redact_at(child, rest);
            }
        }
        _ => {}
    }
}

/// RFC 6901 array indexes: decimal digits without leading zeros.
fn array_index(token: &str) -> Option<usize> {
    let ok = !token.is_empty()
        && token.bytes().all(|b| b.is_ascii_digit())
        && (token == "0" || !token.starts_with('0'));
    ok.then(|| token.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(payload: Value, pointers: &[&str]) -> Value {
        let list: Vec<String> = pointers.iter().map(|p| p.to_string()).collect();
        redacted(&payload, &list)
    }

    #[test]
    fn named_fields_are_replaced_whatever_their_type() {
        let p = json!({"iban": "DE89", "amount": "10.00", "beneficiary": {"name": "Globex", "account": {"no": 1}}});
        assert_eq!(
            r(p.clone(), &["/iban", "/beneficiary/account"]),
            json!({"iban": "[redacted]", "amount": "10.00", "beneficiary": {"name": "Globex", "account": "[redacted]"}})
        );
        assert_eq!(r(p.clone(), &[]), p);
    }

    #[test]
    fn missing_paths_change_nothing() {
        let p = json!({"a": [1, 2], "b": "x"});
        assert_eq!(r(p.clone(), &["/nope", "/a/7", "/a/01", "/b/c", "/a/-"]), p);
    }

    #[test]
    fn wildcards_and_indexes_reach_into_arrays() {
        let p = json!({"lines": [{"card": "4111", "sku": "A"}, {"card": "5500", "sku": "B"}], "cc": ["x", "y"]});
        assert_eq!(
            r(p, &["/lines/*/card", "/cc/1"]),
            json!({"lines": [{"card": "[redacted]", "sku": "A"}, {"card": "[redacted]", "sku": "B"}], "cc": ["x", "[redacted]"]})
        );
    }

    #[test]
    fn escaped_tokens_name_keys_with_slashes_and_tildes() {
        let p = json!({"a/b": 1, "m~n": 2, "": 3});
        assert_eq!(
            r(p, &["/a~1b", "/m~0n", "/"]),
            json!({"a/b": "[redacted]", "m~n": "[redacted]", "": "[redacted]"})
        );
    }

    #[test]
    fn the_whole_document_and_malformed_pointers_redact_everything() {
        let p = json!({"iban": "DE89"});
        assert_eq!(r(p.clone(), &[""]), json!("[redacted]"));
        for bad in ["iban", "/a~2", "/a~"] {
            assert_eq!(r(p.clone(), &["/x", bad]), json!("[redacted]"), "{bad}");
            assert!(validate_pointer(bad)
                .unwrap_err()
                .contains("not a JSON Pointer"));
        }
        for good in ["", "/", "/iban", "/lines/*/card", "/a~1b"] {
            validate_pointer(good).unwrap();
        }
    }

    #[test]
    fn the_default_policy_sends_no_payload() {
        let p = PayloadPolicy::default();
        assert!(!p.include_payload);
        assert!(p.redact.is_empty());
        let parsed: PayloadPolicy = serde_json::from_str(r#"{"include_payload": true}"#).unwrap();
        assert!(parsed.include_payload);
    }
}
