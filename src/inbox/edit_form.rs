//! The edit form generated from a gate's payload schema: one typed input per property (nested
//! objects flattened to JSON pointers), and the way back from the posted fields to a payload.
//! Pure (no I/O), used by the page to draw the form and by the handler to read it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FieldKind {
    Text,
    /// Long text (an email body, a clause): a text area.
    LongText,
    Number,
    Integer,
    Boolean,
    /// One of these values (as JSON text).
    Choice(Vec<String>),
    /// Anything else (arrays, untyped values): JSON text.
    Json,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FormField {
    /// JSON pointer into the payload (`/amount`, `/address/city`); the input is named `f` + it.
    pub pointer: String,
    pub label: String,
    pub kind: FieldKind,
    pub required: bool,
    /// The proposal's value, as the input shows it.
    pub value: String,
    pub description: Option<String>,
}

/// Strings longer than this, or with a line break, get a text area.
const LONG_TEXT: usize = 80;

/// "note_to_customer" -> "Note to customer"; "iban" -> "IBAN".
pub fn humanize(key: &str) -> String {
    const UPPER: [&str; 6] = ["iban", "id", "url", "po", "vat", "sku"];
    let words: Vec<String> = key
        .split(['_', '-', '.'])
        .filter(|w| !w.is_empty())
        .enumerate()
        .map(|(i, w)| {
            if UPPER.contains(&w.to_ascii_lowercase().as_str()) {
                w.to_ascii_uppercase()
            } else if i == 0 {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                    .unwrap_or_default()
            } else {
                w.to_owned()
            }
        })
        .collect();
    words.join(" ")
}

fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn types_of(schema: &Value) -> Vec<String> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

fn show(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// The fields of a form for `schema` (an object schema with `properties`), filled with the
/// proposal's values; empty when the schema does not describe an object's properties, in which
/// case the page offers the JSON editor instead.
pub fn fields_of(schema: Option<&Value>, proposal: &Value) -> Vec<FormField> {
    let mut out = Vec::new();
    if let Some(s) = schema {
        walk(s, proposal, "", &mut out, 0);
    }
    out
}

fn walk(schema: &Value, value: &Value, prefix: &str, out: &mut Vec<FormField>, depth: usize) {
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for (key, sub) in props {
        let pointer = format!("{prefix}/{}", escape_pointer(key));
        let current = value.get(key);
        let types = types_of(sub);
        let is = |t: &str| types.iter().any(|x| x == t);
        if is("object") && sub.get("properties").is_some() && depth < 4 {
            walk(
                sub,
                current.unwrap_or(&Value::Null),
                &pointer,
                out,
                depth + 1,
            );
            continue;
        }
        let kind = if let Some(options) = sub.get("enum").and_then(Value::as_array) {
            FieldKind::Choice(options.iter().map(|o| o.to_string()).collect())
        } else if is("boolean") && types.len() <= 2 {
            FieldKind::Boolean
        } else if is("integer") && !is("string") {
            FieldKind::Integer
        } else if is("number") && !is("string") {
            FieldKind::Number
        } else if is("string") && types.len() <= 2 {
            let long = sub
                .get("maxLength")
                .and_then(Value::as_u64)
                .is_some_and(|m| m as usize > 4 * LONG_TEXT)
                || current
                    .and_then(Value::as_str)
                    .is_some_and(|s| s.chars().count() > LONG_TEXT || s.contains('\n'));
            if long {
                FieldKind::LongText
            } else {
                FieldKind::Text
            }
        } else {
            FieldKind::Json
        };
        let value = match (&kind, current) {
            (FieldKind::Choice(_), Some(v)) => v.to_string(),
            (FieldKind::Json, Some(v)) => v.to_string(),
            _ => show(current),
        };
        out.push(FormField {
            label: sub
                .get("title")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| humanize(key)),
            description: sub
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_owned),
            pointer,
            kind,
            required: required.contains(&key.as_str()),
            value,
        });
    }
}

fn set_at(root: &mut Value, pointer: &str, value: Option<Value>) {
    let keys: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|k| k.replace("~1", "/").replace("~0", "~"))
        .collect();
    let mut node = root;
    for (i, k) in keys.iter().enumerate() {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        let obj = node.as_object_mut().expect("made an object above");
        if i + 1 == keys.len() {
            match value {
                Some(v) => {
                    obj.insert(k.clone(), v);
                }
                None => {
                    obj.remove(k);
                }
            }
            return;
        }
        node = obj.entry(k.clone()).or_insert(Value::Object(Map::new()));
    }
}

/// The payload the posted form describes: the proposal with each form field set from
/// `posted` (`f/pointer` = text). A blank optional field is left out; a value of the wrong
/// kind is refused as (field, message).
pub fn apply(
    form: &[FormField],
    proposal: &Value,
    posted: &[(String, String)],
) -> Result<Value, (String, String)> {
    let mut out = proposal.clone();
    for f in form {
        let name = format!("f{}", f.pointer);
        // A checkbox posts a hidden "false" then "true" when ticked: the last value wins.
        let Some(text) = posted
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.trim_end_matches('\r'))
        else {
            continue;
        };
        let field = format!("payload{}", f.pointer);
        let blank = text.trim().is_empty();
        let value = match &f.kind {
            _ if blank && !matches!(f.kind, FieldKind::Text | FieldKind::LongText) => None,
            _ if blank && !f.required => None,
            FieldKind::Text | FieldKind::LongText => {
                Some(Value::String(text.replace("\r\n", "\n")))
            }
            FieldKind::Number => Some(
                text.trim()
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
                    .ok_or((field.clone(), "must be a number".to_owned()))?,
            ),
            FieldKind::Integer => {
                Some(Value::from(text.trim().parse::<i64>().map_err(|_| {
                    (field.clone(), "must be a whole number".to_owned())
                })?))
            }
            FieldKind::Boolean => Some(Value::Bool(text == "true")),
            FieldKind::Choice(options) => {
                if !options.iter().any(|o| o == text) {
                    return Err((field, "choose one of the listed values".to_owned()));
                }
                Some(
                    serde_json::from_str(text)
                        .map_err(|_| (field.clone(), "is not valid".to_owned()))?,
                )
            }
            FieldKind::Json => Some(
                serde_json::from_str(text)
                    .map_err(|e| (field.clone(), format!("is not JSON: {e}")))?,
            ),
        };
        set_at(&mut out, &f.pointer, value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "required": ["order_id", "amount"], "properties": {
            "order_id": {"type": "string"},
            "amount": {"type": "string", "title": "Amount to refund"},
            "express": {"type": "boolean"},
            "lines": {"type": "integer", "minimum": 1},
            "method": {"enum": ["original_payment", "store_credit"]},
            "note": {"type": "string", "maxLength": 2000},
            "address": {"type": "object", "properties": {"city": {"type": "string"}}},
            "tags": {"type": "array", "items": {"type": "string"}}
        }})
    }

    #[test]
    fn a_schema_becomes_typed_fields_filled_with_the_proposal() {
        let p = json!({"order_id": "ORD-1", "amount": "12.00", "express": true, "lines": 2,
            "method": "store_credit", "note": "hi", "address": {"city": "Berlin"}, "tags": ["a"]});
        let f = fields_of(Some(&schema()), &p);
        let by = |ptr: &str| f.iter().find(|x| x.pointer == ptr).unwrap().clone();
        assert_eq!(by("/amount").label, "Amount to refund");
        assert!(by("/amount").required && !by("/note").required);
        assert_eq!(by("/express").kind, FieldKind::Boolean);
        assert_eq!(by("/lines").kind, FieldKind::Integer);
        assert_eq!(by("/note").kind, FieldKind::LongText);
        assert_eq!(by("/address/city").value, "Berlin");
        assert_eq!(by("/tags").kind, FieldKind::Json);
        assert_eq!(by("/method").value, "\"store_credit\"");
        assert!(fields_of(None, &p).is_empty());
        assert!(fields_of(Some(&json!({"type": "string"})), &p).is_empty());
    }

    #[test]
    fn posted_fields_become_the_edited_payload_and_bad_values_name_the_field() {
        let p = json!({"order_id": "ORD-1", "amount": "12.00", "express": true, "lines": 2,
            "extra": "kept", "address": {"city": "Berlin"}});
        let f = fields_of(Some(&schema()), &p);
        let post = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let out = apply(
            &f,
            &p,
            &post(&[
                ("f/amount", "10.00"),
                ("f/express", "false"),
                ("f/lines", "3"),
                ("f/address/city", "Munich"),
                ("f/method", "\"original_payment\""),
                ("f/note", ""),
            ]),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"order_id": "ORD-1", "amount": "10.00", "express": false, "lines": 3,
                "extra": "kept", "address": {"city": "Munich"}, "method": "original_payment"})
        );
        let ticked = apply(
            &f,
            &p,
            &post(&[("f/express", "false"), ("f/express", "true")]),
        );
        assert_eq!(ticked.unwrap()["express"], json!(true));
        assert_eq!(
            apply(&f, &p, &post(&[("f/lines", "three")])).unwrap_err().0,
            "payload/lines"
        );
        assert_eq!(
            apply(&f, &p, &post(&[("f/method", "\"cash\"")]))
                .unwrap_err()
                .0,
            "payload/method"
        );
    }

    #[test]
    fn keys_read_as_words() {
        assert_eq!(humanize("note_to_customer"), "Note to customer");
        assert_eq!(humanize("iban"), "IBAN");
        assert_eq!(humanize("execute_on"), "Execute on");
    }
}
