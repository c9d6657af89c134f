//! The proposed action as a card a finance person can read: the payload's fields with plain
//! labels, short values as facts, long text (an email body, a contract clause) as text blocks,
//! nested records as groups. The raw JSON stays one click away.

use super::edit_form::humanize;
use crate::domain::diff::{FieldChange, Segment};
use leptos::prelude::*;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum CardItem {
    Fact { label: String, value: String },
    Text { label: String, text: String },
    Group { label: String, items: Vec<CardItem> },
}

/// Text longer than this, or with a line break, reads as a block rather than a fact.
const BLOCK: usize = 90;

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "(none)".to_owned(),
        Value::Bool(true) => "yes".to_owned(),
        Value::Bool(false) => "no".to_owned(),
        other => other.to_string(),
    }
}

/// The card's items, facts first then text blocks then groups, each in key order.
pub fn items(payload: &Value) -> Vec<CardItem> {
    items_at(payload, 0)
}

fn items_at(v: &Value, depth: usize) -> Vec<CardItem> {
    let Some(obj) = v.as_object() else {
        return vec![item("Value", v, depth)];
    };
    let mut all: Vec<CardItem> = obj
        .iter()
        .map(|(k, v)| item(&humanize(k), v, depth))
        .collect();
    all.sort_by_key(|i| match i {
        CardItem::Fact { .. } => 0,
        CardItem::Text { .. } => 1,
        CardItem::Group { .. } => 2,
    });
    all
}

fn item(label: &str, v: &Value, depth: usize) -> CardItem {
    match v {
        Value::String(s) if s.chars().count() > BLOCK || s.contains('\n') => CardItem::Text {
            label: label.to_owned(),
            text: s.clone(),
        },
        Value::Object(_) if depth < 3 => CardItem::Group {
            label: label.to_owned(),
            items: items_at(v, depth + 1),
        },
        Value::Array(a) if a.iter().all(|x| !x.is_object() && !x.is_array()) => CardItem::Fact {
            label: label.to_owned(),
            value: if a.is_empty() {
                "(none)".to_owned()
            } else {
                a.iter().map(scalar).collect::<Vec<_>>().join(", ")
            },
        },
        Value::Array(a) if depth < 3 => CardItem::Group {
            label: label.to_owned(),
            items: a
                .iter()
                .enumerate()
                .map(|(i, x)| item(&format!("{} {}", label, i + 1), x, depth + 1))
                .collect(),
        },
        Value::Object(_) | Value::Array(_) => CardItem::Fact {
            label: label.to_owned(),
            value: v.to_string(),
        },
        other => CardItem::Fact {
            label: label.to_owned(),
            value: scalar(other),
        },
    }
}

#[component]
pub fn ActionCard(payload: String) -> impl IntoView {
    let v = serde_json::from_str::<Value>(&payload).unwrap_or(Value::Null);
    view! { <div class="action-card" data-testid="action-card">{render(items(&v))}</div> }
}

fn render(items: Vec<CardItem>) -> AnyView {
    let facts: Vec<CardItem> = items
        .iter()
        .filter(|i| matches!(i, CardItem::Fact { .. }))
        .cloned()
        .collect();
    let rest: Vec<CardItem> = items
        .into_iter()
        .filter(|i| !matches!(i, CardItem::Fact { .. }))
        .collect();
    view! {
        {(!facts.is_empty()).then(|| view! {
            <dl class="facts-list">
                {facts.into_iter().map(|f| match f {
                    CardItem::Fact { label, value } => view! { <dt>{label}</dt><dd>{value}</dd> }.into_any(),
                    _ => ().into_any(),
                }).collect_view()}
            </dl>
        })}
        {rest.into_iter().map(|i| match i {
            CardItem::Text { label, text } => view! {
                <div class="text-block"><h4>{label}</h4><p class="prose">{text}</p></div>
            }.into_any(),
            CardItem::Group { label, items } => view! {
                <div class="card-group"><h4>{label}</h4>{render(items)}</div>
            }.into_any(),
            CardItem::Fact { .. } => ().into_any(),
        }).collect_view()}
    }
    .into_any()
}

/// Differences between two JSON documents, field by field with long text word by word, side by
/// side (two columns) or unified (one column, removals then additions inline).
#[component]
pub fn DiffView(
    changes: Vec<FieldChange>,
    unified: bool,
    before: &'static str,
    after: &'static str,
    testid: &'static str,
) -> impl IntoView {
    let unchanged = changes
        .iter()
        .filter(|c| matches!(c, FieldChange::Unchanged { .. }))
        .count();
    let changes: Vec<FieldChange> = changes
        .into_iter()
        .filter(|c| !matches!(c, FieldChange::Unchanged { .. }))
        .collect();
    if changes.is_empty() {
        return view! { <p class="muted" data-testid=testid>"No differences."</p> }.into_any();
    }
    let words = |ws: &[Segment], keep_del: bool, keep_ins: bool| {
        ws.iter()
            .filter_map(|w| match w {
                Segment::Same(t) => Some(view! { <span>{t.clone()}</span> }.into_any()),
                Segment::Deleted(t) if keep_del => {
                    Some(view! { <del>{t.clone()}</del> }.into_any())
                }
                Segment::Inserted(t) if keep_ins => {
                    Some(view! { <ins>{t.clone()}</ins> }.into_any())
                }
                _ => None,
            })
            .collect_view()
    };
    let label = |c: &FieldChange| match c {
        FieldChange::Added { path, .. }
        | FieldChange::Removed { path, .. }
        | FieldChange::Changed { path, .. }
        | FieldChange::Unchanged { path, .. } => humanize_path(path),
    };
    let rows = if unified {
        changes
            .into_iter()
            .map(|c| {
                let name = label(&c);
                let body = match c {
                    FieldChange::Added { new, .. } => {
                        view! { <span class="tag">"added"</span>" "<ins>{new}</ins> }.into_any()
                    }
                    FieldChange::Removed { old, .. } => {
                        view! { <span class="tag">"removed"</span>" "<del>{old}</del> }.into_any()
                    }
                    FieldChange::Changed {
                        old,
                        new,
                        words: None,
                        ..
                    } => view! { <del>{old}</del>" → "<ins>{new}</ins> }.into_any(),
                    FieldChange::Changed {
                        words: Some(ws), ..
                    } => view! { <span class="words">{words(&ws, true, true)}</span> }.into_any(),
                    FieldChange::Unchanged { .. } => ().into_any(),
                };
                view! { <tr><th scope="row">{name}</th><td>{body}</td></tr> }
            })
            .collect_view()
            .into_any()
    } else {
        changes
            .into_iter()
            .map(|c| {
                let name = label(&c);
                match c {
                    FieldChange::Added { new, .. } => view! {
                        <tr class="added"><th scope="row">{name}</th><td class="muted">"(none)"</td><td><ins>{new}</ins></td></tr>
                    }.into_any(),
                    FieldChange::Removed { old, .. } => view! {
                        <tr class="removed"><th scope="row">{name}</th><td><del>{old}</del></td><td class="muted">"(removed)"</td></tr>
                    }.into_any(),
                    FieldChange::Changed { old, new, words: None, .. } => view! {
                        <tr class="changed"><th scope="row">{name}</th><td><del>{old}</del></td><td><ins>{new}</ins></td></tr>
                    }.into_any(),
                    FieldChange::Changed { words: Some(ws), .. } => view! {
                        <tr class="changed"><th scope="row">{name}</th>
                            <td class="words">{words(&ws, true, false)}</td>
                            <td class="words">{words(&ws, false, true)}</td></tr>
                    }.into_any(),
                    FieldChange::Unchanged { .. } => ().into_any(),
                }
            })
            .collect_view()
            .into_any()
    };
    let head = if unified {
        view! { <tr><th scope="col">"Field"</th><th scope="col">{format!("{before} → {after}")}</th></tr> }.into_any()
    } else {
        view! { <tr><th scope="col">"Field"</th><th scope="col">{before}</th><th scope="col">{after}</th></tr> }.into_any()
    };
    view! {
        <div class="diff-wrap">
            <table class={if unified { "diff unified" } else { "diff split" }} data-testid=testid data-mode={if unified { "unified" } else { "side-by-side" }}>
                <thead>{head}</thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
        {(unchanged > 0).then(|| view! { <p class="muted">{format!("{unchanged} field(s) unchanged")}</p> })}
    }
    .into_any()
}

/// `"address.city"` -> `"Address › city"`; `"lines[0].amount"` keeps its index.
pub fn humanize_path(path: &str) -> String {
    path.split('.')
        .map(|p| match p.split_once('[') {
            Some((k, rest)) => format!("{}[{rest}", humanize(k)),
            None => humanize(p),
        })
        .collect::<Vec<_>>()
        .join(" › ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn short_values_are_facts_long_text_is_a_block_nested_records_are_groups() {
        let p = json!({"amount": "12.00", "body": "Hi,\n\nthanks", "set": {"country": "Germany"},
            "tags": ["a", "b"], "express": true});
        let got = items(&p);
        assert_eq!(
            got[0],
            CardItem::Fact {
                label: "Amount".into(),
                value: "12.00".into()
            }
        );
        assert!(got.contains(&CardItem::Fact {
            label: "Tags".into(),
            value: "a, b".into()
        }));
        assert!(got.contains(&CardItem::Fact {
            label: "Express".into(),
            value: "yes".into()
        }));
        assert!(matches!(&got[3], CardItem::Text { label, .. } if label == "Body"));
        assert!(matches!(&got[4], CardItem::Group { label, .. } if label == "Set"));
        assert_eq!(humanize_path("set.country_code"), "Set › Country code");
        assert_eq!(humanize_path("lines[0].amount"), "Lines[0] › Amount");
    }
}
