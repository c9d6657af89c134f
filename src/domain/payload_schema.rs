//! Payload schemas: a small, documented subset of JSON Schema that a gate may hold, so that a
//! reviewer's edit (and the agent's proposal) can be checked before anyone approves it.
//!
//! A full JSON Schema implementation would bring a regular-expression engine, format validators
//! and reference resolution into the browser bundle for keywords no gate needs, so this is a
//! subset, compiled once at save time and again wherever a payload is checked:
//! - `type`: `object`, `string`, `number`, `integer`, `boolean`, `array`, `null`, or a list of
//!   them. `integer` accepts any number without a fractional part (`3` and `3.0`).
//! - `properties`, `required`, `additionalProperties` (`true` or `false` only).
//! - `enum` (numbers compare by value, so `1` equals `1.0`).
//! - `minimum`, `maximum` (inclusive).
//! - `minLength`, `maxLength` (in Unicode characters, as JSON Schema counts them).
//! - `items` (one schema for every item).
//! - Annotations, which must be strings and are otherwise ignored: `title`, `description`,
//!   `$comment`, `$schema`.
//!
//! Anything else is refused by name, never silently ignored: an admin who writes `pattern` or
//! `exclusiveMinimum` believes it is enforced. So is a schema that contradicts itself (a
//! `minLength` on a schema of type `number`, `minimum` above `maximum`, a required property that
//! `additionalProperties: false` forbids, an `enum` value of the wrong type): it could never
//! accept what its author meant. As in JSON Schema, a keyword without a `type` applies only to
//! values of its own kind (`minimum` does not constrain a string).
//!
//! Paths are JSON pointers (`/items/0/amount`): into the schema for [`SchemaError`], into the
//! payload for [`SchemaViolation`].

use serde_json::{Number, Value};
use std::cmp::Ordering;
use std::fmt;

mod compile;

pub use compile::compile;

/// How deeply schemas may nest. Validation recurses along the schema, so this bounds its stack
/// whatever the payload; real payload schemas are a handful of levels deep.
pub const MAX_DEPTH: usize = 32;

/// Why a schema was refused: `path` points into the schema (empty for the schema itself).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SchemaError {
    pub path: String,
    pub message: String,
}

/// One way a payload does not fit: `path` points into the payload (empty for the whole payload).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SchemaViolation {
    pub path: String,
    pub message: String,
}

fn display_at(f: &mut fmt::Formatter<'_>, path: &str, message: &str) -> fmt::Result {
    if path.is_empty() {
        f.write_str(message)
    } else {
        write!(f, "{path}: {message}")
    }
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        display_at(f, &self.path, &self.message)
    }
}

impl fmt::Display for SchemaViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        display_at(f, &self.path, &self.message)
    }
}

/// A schema that compiled: ready for [`validate`].
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledSchema {
    root: Node,
}

/// A set of JSON types, one bit each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Types(u8);

const TYPE_NAMES: [&str; 7] = [
    "object", "string", "number", "integer", "boolean", "array", "null",
];
const OBJECT: u8 = 1;
const STRING: u8 = 1 << 1;
const NUMBER: u8 = 1 << 2;
const INTEGER: u8 = 1 << 3;
const BOOLEAN: u8 = 1 << 4;
const ARRAY: u8 = 1 << 5;
const NULL: u8 = 1 << 6;

impl Types {
    /// The bits a value has: an integral number is both a `number` and an `integer`.
    fn of(value: &Value) -> u8 {
        match value {
            Value::Object(_) => OBJECT,
            Value::String(_) => STRING,
            Value::Number(n) if is_integral(n) => NUMBER | INTEGER,
            Value::Number(_) => NUMBER,
            Value::Bool(_) => BOOLEAN,
            Value::Array(_) => ARRAY,
            Value::Null => NULL,
        }
    }

    fn admits(self, value: &Value) -> bool {
        self.0 & Types::of(value) != 0
    }

    fn names(self) -> String {
        let names: Vec<&str> = (0..TYPE_NAMES.len())
            .filter(|i| self.0 & (1 << i) != 0)
            .map(|i| TYPE_NAMES[i])
            .collect();
        names.join(" or ")
    }
}

fn kind_name(value: &Value) -> &'static str {
    match value {
        Value::Object(_) => "object",
        Value::String(_) => "string",
        Value::Number(n) if is_integral(n) => "integer",
        Value::Number(_) => "number",
        Value::Bool(_) => "boolean",
        Value::Array(_) => "array",
        Value::Null => "null",
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
struct Node {
    /// `None`: any type.
    types: Option<Types>,
    enumeration: Option<Vec<Value>>,
    minimum: Option<Number>,
    maximum: Option<Number>,
    min_length: Option<u64>,
    max_length: Option<u64>,
    /// Sorted by name, for lookup.
    properties: Vec<(String, Node)>,
    required: Vec<String>,
    /// `additionalProperties`; JSON Schema's default is `true`.
    closed: bool,
    items: Option<Box<Node>>,
}

fn is_integral(n: &Number) -> bool {
    n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
}

/// Compares two JSON numbers by value: exactly when both are integers, else as `f64`.
fn compare(a: &Number, b: &Number) -> Ordering {
    let int = |n: &Number| {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    };
    match (int(a), int(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        // serde_json numbers are finite, so this never falls back.
        _ => a
            .as_f64()
            .partial_cmp(&b.as_f64())
            .unwrap_or(Ordering::Equal),
    }
}

/// JSON equality with numbers compared by value, as `enum` requires.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => compare(x, y) == Ordering::Equal,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// Escapes one JSON pointer segment (`~` as `~0`, `/` as `~1`).
pub fn escape_segment(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// The segments of a JSON pointer such as `/customer/iban` or `/lines/0/note`; the empty pointer
/// (the whole document) has none.
pub fn parse_pointer(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(format!(
            "{pointer:?} is not a JSON pointer; start it with '/'"
        ));
    };
    rest.split('/')
        .map(|seg| {
            let mut out = String::with_capacity(seg.len());
            let mut chars = seg.chars();
            while let Some(c) = chars.next() {
                if c != '~' {
                    out.push(c);
                    continue;
                }
                match chars.next() {
                    Some('0') => out.push('~'),
                    Some('1') => out.push('/'),
                    _ => return Err(format!("in {pointer:?}, '~' must be followed by 0 or 1")),
                }
            }
            Ok(out)
        })
        .collect()
}

impl Node {
    fn property(&self, name: &str) -> Option<&Node> {
        self.properties
            .binary_search_by(|(k, _)| k.as_str().cmp(name))
            .ok()
            .map(|i| &self.properties[i].1)
    }

    fn check(&self, value: &Value, path: &mut String, out: &mut Vec<SchemaViolation>) {
        let mut fail = |path: &str, message: String| {
            out.push(SchemaViolation {
                path: path.to_owned(),
                message,
            })
        };
        if let Some(types) = self.types {
            if !types.admits(value) {
                let got = kind_name(value);
                return fail(path, format!("expected {}, got {got}", types.names()));
            }
        }
        if let Some(values) = &self.enumeration {
            if !values.iter().any(|v| same(v, value)) {
                let shown: Vec<String> = values.iter().take(10).map(Value::to_string).collect();
                let more = if values.len() > 10 { ", ..." } else { "" };
                fail(path, format!("must be one of {}{more}", shown.join(", ")));
            }
        }
        match value {
            Value::Number(n) => {
                if let Some(lo) = self.minimum.as_ref().filter(|lo| compare(n, lo).is_lt()) {
                    fail(path, format!("must be at least {lo}"));
                }
                if let Some(hi) = self.maximum.as_ref().filter(|hi| compare(n, hi).is_gt()) {
                    fail(path, format!("must be at most {hi}"));
                }
            }
            Value::String(s) => {
                let chars = s.chars().count() as u64;
                if let Some(lo) = self.min_length.filter(|lo| chars < *lo) {
                    fail(path, format!("must be at least {lo} characters long"));
                }
                if let Some(hi) = self.max_length.filter(|hi| chars > *hi) {
                    fail(path, format!("must be at most {hi} characters long"));
                }
            }
            Value::Object(map) => {
                for name in &self.required {
                    if !map.contains_key(name) {
                        fail(
                            &format!("{path}/{}", escape_segment(name)),
                            "is required".into(),
                        );
                    }
                }
                for (name, v) in map {
                    let len = path.len();
                    path.push('/');
                    path.push_str(&escape_segment(name));
                    match self.property(name) {
                        Some(schema) => schema.check(v, path, out),
                        None if self.closed => out.push(SchemaViolation {
                            path: path.clone(),
                            message: "is not an allowed property here".into(),
                        }),
                        None => {}
                    }
                    path.truncate(len);
                }
            }
            Value::Array(items) => {
                if let Some(schema) = &self.items {
                    for (i, v) in items.iter().enumerate() {
                        let len = path.len();
                        path.push('/');
                        path.push_str(&i.to_string());
                        schema.check(v, path, out);
                        path.truncate(len);
                    }
                }
            }
            Value::Bool(_) | Value::Null => {}
        }
    }

    fn could_be(&self, bits: u8) -> bool {
        self.types.is_none_or(|t| t.0 & bits != 0)
    }

    fn admits_path(&self, segments: &[String]) -> bool {
        let Some((seg, rest)) = segments.split_first() else {
            return true;
        };
        let via_object = self.could_be(OBJECT)
            && if seg == "*" {
                !self.closed || self.properties.iter().any(|(_, n)| n.admits_path(rest))
            } else {
                match self.property(seg) {
                    Some(n) => n.admits_path(rest),
                    None => !self.closed,
                }
            };
        let via_array = self.could_be(ARRAY)
            && (seg == "*" || seg.parse::<usize>().is_ok())
            && self.items.as_ref().is_none_or(|n| n.admits_path(rest));
        via_object || via_array
    }
}

/// Every way `payload` does not fit `schema` (members by name, items by index); `Ok` when it
/// fits.
pub fn validate(schema: &CompiledSchema, payload: &Value) -> Result<(), Vec<SchemaViolation>> {
    let mut out = Vec::new();
    schema.root.check(payload, &mut String::new(), &mut out);
    if out.is_empty() {
        Ok(())
    } else {
        Err(out)
    }
}

impl CompiledSchema {
    /// Whether a payload that fits this schema could have a value at `segments` (from
    /// [`parse_pointer`]; `*` stands for any member or item). Used to refuse a redaction path
    /// that names no field the schema allows, which is almost always a typo that would leak the
    /// field it meant.
    pub fn admits_path(&self, segments: &[String]) -> bool {
        self.root.admits_path(segments)
    }
}

#[cfg(test)]
mod tests;
