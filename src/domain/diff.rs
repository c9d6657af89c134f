//! What a request would change: field-level differences between two JSON documents (nested
//! paths, arrays by index) and word-level differences inside long text, built with `similar`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One field's fate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FieldChange {
    Added {
        path: String,
        new: String,
    },
    Removed {
        path: String,
        old: String,
    },
    Changed {
        path: String,
        old: String,
        new: String,
        words: Option<Vec<Segment>>,
    },
    Unchanged {
        path: String,
        value: String,
    },
}

/// A run of words in a text diff.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Segment {
    Same(String),
    Deleted(String),
    Inserted(String),
}

/// Strings at least this long get a word-level diff as well.
const WORD_DIFF_MIN_CHARS: usize = 40;

fn leaves(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                let path = if !plain_key(k) {
                    // Quoted, so `{"a.b": 1}` and `{"a": {"b": 1}}` get different paths: a
                    // shared path would pair unrelated values and could hide a change.
                    format!("{prefix}[{}]", Value::String(k.clone()))
                } else if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(&path, child, out);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for (i, child) in a.iter().enumerate() {
                leaves(&format!("{prefix}[{i}]"), child, out);
            }
        }
        other => out.push((
            if prefix.is_empty() {
                "(value)".to_owned()
            } else {
                prefix.to_owned()
            },
            other.clone(),
        )),
    }
}

/// A key that reads unambiguously in a dotted path.
fn plain_key(k: &str) -> bool {
    !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Word-level differences between two texts.
pub fn word_diff(old: &str, new: &str) -> Vec<Segment> {
    let diff = similar::TextDiff::from_words(old, new);
    let mut out: Vec<Segment> = Vec::new();
    for change in diff.iter_all_changes() {
        let text = change.value().to_owned();
        let seg = match change.tag() {
            similar::ChangeTag::Equal => Segment::Same(text),
            similar::ChangeTag::Delete => Segment::Deleted(text),
            similar::ChangeTag::Insert => Segment::Inserted(text),
        };
        // Merge runs of the same kind so the markup stays small.
        match (out.last_mut(), seg) {
            (Some(Segment::Same(a)), Segment::Same(b))
            | (Some(Segment::Deleted(a)), Segment::Deleted(b))
            | (Some(Segment::Inserted(a)), Segment::Inserted(b)) => a.push_str(&b),
            (_, seg) => out.push(seg),
        }
    }
    out
}

/// Field-by-field differences from `before` to `after`, in path order.
pub fn field_diff(before: &Value, after: &Value) -> Vec<FieldChange> {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    leaves("", before, &mut a);
    leaves("", after, &mut b);
    let mut paths: Vec<&String> = a
        .iter()
        .map(|(p, _)| p)
        .chain(b.iter().map(|(p, _)| p))
        .collect();
    paths.sort();
    paths.dedup();
    paths
        .into_iter()
        .map(|path| {
            let old = a.iter().find(|(p, _)| p == path).map(|(_, v)| v);
            let new = b.iter().find(|(p, _)| p == path).map(|(_, v)| v);
            match (old, new) {
                (Some(o), Some(n)) if o == n => FieldChange::Unchanged {
                    path: path.clone(),
                    value: show(o),
                },
                (Some(o), Some(n)) => {
                    let words = match (o, n) {
                        (Value::String(x), Value::String(y))
                            if x.chars().count().max(y.chars().count()) >= WORD_DIFF_MIN_CHARS =>
                        {
                            Some(word_diff(x, y))
                        }
                        _ => None,
                    };
                    FieldChange::Changed {
                        path: path.clone(),
                        old: show(o),
                        new: show(n),
                        words,
                    }
                }
                (None, Some(n)) => FieldChange::Added {
                    path: path.clone(),
                    new: show(n),
                },
                (Some(o), None) => FieldChange::Removed {
                    path: path.clone(),
                    old: show(o),
                },
                (None, None) => unreachable!("every path comes from one side"),
            }
        })
        .collect()
}

/// One field across the three payloads of a dual-review conflict: the proposal and the two
/// reviewers' versions. `None` where that payload lacks the field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThreeWayRow {
    pub path: String,
    pub proposed: Option<String>,
    pub a: Option<String>,
    pub b: Option<String>,
    /// Word-level changes from the proposal, for long text a reviewer changed.
    pub a_words: Option<Vec<Segment>>,
    pub b_words: Option<Vec<Segment>>,
}

impl ThreeWayRow {
    /// Whether the two reviewers left this field in different states.
    pub fn disputed(&self) -> bool {
        self.a != self.b
    }

    /// Whether either reviewer changed this field.
    pub fn changed(&self) -> bool {
        self.a != self.proposed || self.b != self.proposed
    }
}

/// Field-by-field comparison of a proposal with two reviewers' versions of it, in path order.
pub fn three_way(proposed: &Value, a: &Value, b: &Value) -> Vec<ThreeWayRow> {
    let (mut p, mut x, mut y) = (Vec::new(), Vec::new(), Vec::new());
    leaves("", proposed, &mut p);
    leaves("", a, &mut x);
    leaves("", b, &mut y);
    let mut paths: Vec<&String> = p.iter().chain(&x).chain(&y).map(|(k, _)| k).collect();
    paths.sort();
    paths.dedup();
    let find = |side: &[(String, Value)], path: &str| {
        side.iter().find(|(k, _)| k == path).map(|(_, v)| v.clone())
    };
    let words = |from: &Option<Value>, to: &Option<Value>| match (from, to) {
        (Some(Value::String(o)), Some(Value::String(n)))
            if o != n && o.chars().count().max(n.chars().count()) >= WORD_DIFF_MIN_CHARS =>
        {
            Some(word_diff(o, n))
        }
        _ => None,
    };
    paths
        .into_iter()
        .map(|path| {
            let (pv, av, bv) = (find(&p, path), find(&x, path), find(&y, path));
            ThreeWayRow {
                path: path.clone(),
                a_words: words(&pv, &av),
                b_words: words(&pv, &bv),
                proposed: pv.as_ref().map(show),
                a: av.as_ref().map(show),
                b: bv.as_ref().map(show),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_with_dots_or_brackets_do_not_share_a_path_with_nested_fields() {
        let before = json!({"a.b": 1, "a": {"b": 1}, "x[0]": 1, "x": [1], "(value)": 1});
        let mut after = before.clone();
        after["a.b"] = json!(2);
        after["x[0]"] = json!(2);
        let changed: Vec<String> = field_diff(&before, &after)
            .into_iter()
            .filter_map(|c| match c {
                FieldChange::Changed { path, .. } => Some(path),
                _ => None,
            })
            .collect();
        assert_eq!(changed, vec![r#"["a.b"]"#, r#"["x[0]"]"#]);
        assert!(field_diff(&json!(1), &json!({"(value)": 1}))
            .iter()
            .any(|c| !matches!(c, FieldChange::Unchanged { .. })));
    }

    #[test]
    fn fields_are_added_removed_changed_or_kept_with_nested_paths() {
        let before = json!({"status": "delivered", "refunded": "0.00", "address": {"city": "Berlin", "zip": "10115"}, "tags": ["a"]});
        let after = json!({"status": "refunded", "refunded": "0.00", "address": {"city": "Munich"}, "tags": ["a", "b"], "note": "x"});
        let d = field_diff(&before, &after);
        assert_eq!(
            d,
            vec![
                FieldChange::Changed {
                    path: "address.city".into(),
                    old: "Berlin".into(),
                    new: "Munich".into(),
                    words: None
                },
                FieldChange::Removed {
                    path: "address.zip".into(),
                    old: "10115".into()
                },
                FieldChange::Added {
                    path: "note".into(),
                    new: "x".into()
                },
                FieldChange::Unchanged {
                    path: "refunded".into(),
                    value: "0.00".into()
                },
                FieldChange::Changed {
                    path: "status".into(),
                    old: "delivered".into(),
                    new: "refunded".into(),
                    words: None
                },
                FieldChange::Unchanged {
                    path: "tags[0]".into(),
                    value: "a".into()
                },
                FieldChange::Added {
                    path: "tags[1]".into(),
                    new: "b".into()
                },
            ]
        );
    }

    #[test]
    fn identical_documents_have_no_changes_and_types_matter() {
        let v = json!({"a": 1, "b": [true, null]});
        assert!(field_diff(&v, &v)
            .iter()
            .all(|c| matches!(c, FieldChange::Unchanged { .. })));
        let d = field_diff(&json!({"n": 1}), &json!({"n": "1"}));
        assert!(
            matches!(&d[0], FieldChange::Changed { .. }),
            "a number and a string differ"
        );
        assert_eq!(
            field_diff(&json!(1), &json!(2)).len(),
            1,
            "scalars diff as one value"
        );
    }

    #[test]
    fn long_text_gets_a_word_level_diff() {
        let old =
            "Either party may terminate this Agreement for convenience on 90 days' written notice.";
        let new =
            "Either party may terminate this Agreement for convenience on 30 days' written notice.";
        let d = field_diff(&json!({"text": old}), &json!({"text": new}));
        let FieldChange::Changed {
            words: Some(words), ..
        } = &d[0]
        else {
            panic!("{d:?}")
        };
        assert!(words.contains(&Segment::Deleted("90".into())), "{words:?}");
        assert!(words.contains(&Segment::Inserted("30".into())), "{words:?}");
        let rebuilt_old: String = words
            .iter()
            .filter_map(|s| match s {
                Segment::Same(t) | Segment::Deleted(t) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        let rebuilt_new: String = words
            .iter()
            .filter_map(|s| match s {
                Segment::Same(t) | Segment::Inserted(t) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!((rebuilt_old.as_str(), rebuilt_new.as_str()), (old, new));
    }

    #[test]
    fn three_way_lines_up_each_field_of_the_proposal_and_both_edits() {
        let proposed = json!({"amount": "120.00", "memo": "Refund for the late delivery of order 1234, as agreed", "to": "acct-1"});
        let a = json!({"amount": "100.00", "memo": "Refund for the late delivery of order 1234, as agreed", "to": "acct-1"});
        let b = json!({"amount": "120.00", "memo": "Partial refund for the late delivery of order 1234, as agreed", "to": "acct-1", "note": "x"});
        let rows = three_way(&proposed, &a, &b);
        let paths: Vec<&str> = rows.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(paths, ["amount", "memo", "note", "to"]);
        let amount = &rows[0];
        assert_eq!(
            (
                amount.proposed.as_deref(),
                amount.a.as_deref(),
                amount.b.as_deref()
            ),
            (Some("120.00"), Some("100.00"), Some("120.00"))
        );
        assert!(amount.disputed() && amount.changed());
        assert!(amount.a_words.is_none(), "short values get no word diff");
        let memo = &rows[1];
        assert!(memo.a_words.is_none(), "A left the memo alone");
        let words = memo.b_words.as_ref().expect("B changed the long memo");
        assert!(words
            .iter()
            .any(|w| matches!(w, Segment::Inserted(t) if t.contains("Partial"))));
        assert!(words
            .iter()
            .any(|w| matches!(w, Segment::Same(t) if t.contains("late delivery"))));
        assert_eq!(
            (rows[2].proposed.as_ref(), rows[2].a.as_ref()),
            (None, None)
        );
        assert_eq!(rows[2].b.as_deref(), Some("x"));
        assert!(!rows[3].changed() && !rows[3].disputed());
    }
}
