use super::*;
use proptest::prelude::*;
use serde_json::{json, Map};

fn schema(v: Value) -> CompiledSchema {
    compile(&v).unwrap_or_else(|e| panic!("{v} should compile: {e}"))
}

fn refused(v: Value) -> SchemaError {
    compile(&v).expect_err(&format!("{v} should be refused"))
}

/// The violations of `payload`, as `path: message` strings.
fn problems(s: &CompiledSchema, payload: Value) -> Vec<String> {
    match validate(s, &payload) {
        Ok(()) => Vec::new(),
        Err(v) => v.iter().map(ToString::to_string).collect(),
    }
}

fn refund() -> CompiledSchema {
    schema(json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Refund",
        "type": "object",
        "properties": {
            "amount": {"type": "number", "minimum": 0.01, "maximum": 5000},
            "currency": {"type": "string", "enum": ["EUR", "USD"]},
            "memo": {"type": ["string", "null"], "maxLength": 140, "description": "shown to the customer"},
            "customer": {
                "type": "object",
                "properties": {"id": {"type": "string", "minLength": 3}, "vip": {"type": "boolean"}},
                "required": ["id"],
                "additionalProperties": false
            },
            "lines": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"sku": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}},
                    "required": ["sku", "qty"]
                }
            }
        },
        "required": ["amount", "currency", "customer"],
        "additionalProperties": false
    }))
}

fn good_refund() -> Value {
    json!({
        "amount": 120.5, "currency": "EUR", "memo": null,
        "customer": {"id": "c-42", "vip": true},
        "lines": [{"sku": "A1", "qty": 2}, {"sku": "B2", "qty": 1.0, "note": "extra fields allowed here"}]
    })
}

#[test]
fn a_fitting_payload_passes() {
    assert_eq!(problems(&refund(), good_refund()), Vec::<String>::new());
}

#[test]
fn every_problem_is_reported_with_its_pointer_members_by_name() {
    let mut bad = good_refund();
    bad["amount"] = json!(0);
    bad["currency"] = json!("GBP");
    bad["memo"] = json!("x".repeat(141));
    bad["customer"] = json!({"vip": "yes", "colour": "red"});
    bad["lines"][1]["qty"] = json!(0);
    bad["lines"][0] = json!({"qty": 1.5});
    bad["extra"] = json!(true);
    assert_eq!(
        problems(&refund(), bad),
        vec![
            "/amount: must be at least 0.01",
            "/currency: must be one of \"EUR\", \"USD\"",
            "/customer/id: is required",
            "/customer/colour: is not an allowed property here",
            "/customer/vip: expected boolean, got string",
            "/extra: is not an allowed property here",
            "/lines/0/sku: is required",
            "/lines/0/qty: expected integer, got number",
            "/lines/1/qty: must be at least 1",
            "/memo: must be at most 140 characters long",
        ]
    );
}

#[test]
fn type_accepts_one_or_several_kinds_and_integer_means_no_fraction() {
    let int = schema(json!({"type": "integer"}));
    for ok in [json!(3), json!(-3), json!(3.0), json!(u64::MAX)] {
        assert!(validate(&int, &ok).is_ok(), "{ok}");
    }
    assert_eq!(
        problems(&int, json!(3.5)),
        vec!["expected integer, got number"]
    );
    let num = schema(json!({"type": "number"}));
    assert!(validate(&num, &json!(3)).is_ok(), "an integer is a number");
    let either = schema(json!({"type": ["string", "null"]}));
    assert!(validate(&either, &json!(null)).is_ok());
    assert_eq!(
        problems(&either, json!([])),
        vec!["expected string or null, got array"]
    );
    for (t, v) in [
        ("object", json!({})),
        ("string", json!("")),
        ("boolean", json!(false)),
        ("array", json!([])),
        ("null", json!(null)),
    ] {
        let s = schema(json!({ "type": t }));
        assert!(validate(&s, &v).is_ok(), "{t}");
        assert!(validate(&s, &json!(1)).is_err(), "{t}");
    }
}

#[test]
fn an_empty_schema_accepts_anything_and_untyped_keywords_apply_to_their_own_kind() {
    let any = schema(json!({}));
    for v in [json!(null), json!({"a": [1, 2]}), json!("x")] {
        assert!(validate(&any, &v).is_ok());
    }
    let untyped = schema(json!({"minimum": 5, "maxLength": 2}));
    assert!(validate(&untyped, &json!("ab")).is_ok());
    assert!(validate(&untyped, &json!(7)).is_ok());
    assert_eq!(problems(&untyped, json!(4)), vec!["must be at least 5"]);
    assert_eq!(
        problems(&untyped, json!("abc")),
        vec!["must be at most 2 characters long"]
    );
}

#[test]
fn bounds_are_inclusive_and_exact_for_large_integers() {
    let s = schema(
        json!({"type": "integer", "minimum": 9007199254740993_u64, "maximum": 9007199254740995_u64}),
    );
    assert!(validate(&s, &json!(9007199254740993_u64)).is_ok());
    assert!(validate(&s, &json!(9007199254740995_u64)).is_ok());
    assert_eq!(
        problems(&s, json!(9007199254740992_u64)),
        vec!["must be at least 9007199254740993"]
    );
    assert_eq!(
        problems(&s, json!(9007199254740996_u64)),
        vec!["must be at most 9007199254740995"]
    );
    let neg = schema(json!({"minimum": -1.5, "maximum": 0}));
    assert!(validate(&neg, &json!(-1.5)).is_ok());
    assert!(validate(&neg, &json!(-2)).is_err());
}

#[test]
fn lengths_count_characters_not_bytes() {
    let s = schema(json!({"type": "string", "minLength": 2, "maxLength": 3}));
    assert!(validate(&s, &json!("żółw".chars().take(3).collect::<String>())).is_ok());
    assert!(validate(&s, &json!("€€")).is_ok());
    assert_eq!(
        problems(&s, json!("é")),
        vec!["must be at least 2 characters long"]
    );
    assert!(validate(&s, &json!("€€€€")).is_err());
}

#[test]
fn enum_compares_numbers_by_value_and_any_json() {
    let s = schema(json!({"enum": [1, "one", null, {"a": [1]}]}));
    for ok in [json!(1.0), json!("one"), json!(null), json!({"a": [1.0]})] {
        assert!(validate(&s, &ok).is_ok(), "{ok}");
    }
    assert_eq!(
        problems(&s, json!(2)),
        vec![r#"must be one of 1, "one", null, {"a":[1]}"#]
    );
}

#[test]
fn open_objects_allow_unknown_properties_but_still_check_known_ones() {
    let s = schema(json!({"properties": {"a": {"type": "string"}}, "required": ["b"]}));
    assert_eq!(
        problems(&s, json!({"a": 1, "z": 2})),
        vec!["/b: is required", "/a: expected string, got integer"]
    );
}

#[test]
fn arrays_check_every_item_and_pointers_escape_names() {
    let s = schema(json!({
        "type": "array",
        "items": {"type": "object", "properties": {"a/b": {"type": "string"}, "c~d": {"type": "string"}}}
    }));
    assert_eq!(
        problems(&s, json!([{"a/b": "ok"}, {"a/b": 1, "c~d": 2}])),
        vec![
            "/1/a~1b: expected string, got integer",
            "/1/c~0d: expected string, got integer"
        ]
    );
    let any_items = schema(json!({"type": "array"}));
    assert!(validate(&any_items, &json!([1, "x", null])).is_ok());
}

#[test]
fn unknown_keywords_are_refused_by_name() {
    for keyword in [
        "pattern",
        "exclusiveMinimum",
        "oneOf",
        "$ref",
        "format",
        "default",
    ] {
        let e = refused(json!({"type": "string", keyword: 1}));
        assert_eq!(e.path, format!("/{keyword}"));
        assert!(e.message.contains(&format!("{keyword:?}")), "{e}");
    }
    let nested = refused(json!({"properties": {"a": {"items": {"typ": "string"}}}}));
    assert_eq!(nested.path, "/properties/a/items/typ");
    assert!(
        nested
            .to_string()
            .starts_with("/properties/a/items/typ: unknown"),
        "{nested}"
    );
}

#[test]
fn keywords_of_the_wrong_type_are_refused_with_their_path() {
    let cases = [
        (
            json!({"minimum": "5"}),
            "/minimum",
            "must be a number, not string",
        ),
        (json!({"maximum": null}), "/maximum", "must be a number"),
        (json!({"minLength": -1}), "/minLength", "whole number"),
        (json!({"maxLength": 2.5}), "/maxLength", "whole number"),
        (json!({"type": "text"}), "/type", "\"text\" is not a type"),
        (json!({"type": ["string", 3]}), "/type/1", "3 is not a type"),
        (
            json!({"type": ["string", "string"]}),
            "/type/1",
            "appears twice",
        ),
        (json!({"type": []}), "/type", "allows nothing"),
        (json!({"enum": []}), "/enum", "allows nothing"),
        (json!({"enum": "EUR"}), "/enum", "list"),
        (json!({"enum": [1, 1.0]}), "/enum/1", "appears twice"),
        (json!({"required": "a"}), "/required", "list"),
        (
            json!({"required": ["a", 1]}),
            "/required/1",
            "property name",
        ),
        (
            json!({"required": ["a", "a"]}),
            "/required/1",
            "appears twice",
        ),
        (json!({"properties": []}), "/properties", "object"),
        (
            json!({"properties": {"a": "string"}}),
            "/properties/a",
            "must be an object",
        ),
        (
            json!({"additionalProperties": "no"}),
            "/additionalProperties",
            "true or false",
        ),
        (
            json!({"additionalProperties": {}}),
            "/additionalProperties",
            "only true or false",
        ),
        (
            json!({"items": [{}]}),
            "/items",
            "one schema for every item",
        ),
        (json!({"items": true}), "/items", "schema"),
        (json!({"title": 5}), "/title", "must be a string"),
        (json!(true), "", "must be an object"),
    ];
    for (s, path, message) in cases {
        let e = refused(s.clone());
        assert_eq!(e.path, path, "{s}: {e}");
        assert!(e.message.contains(message), "{s}: {e}");
    }
}

#[test]
fn contradictory_schemas_are_refused() {
    let cases = [
        (
            json!({"type": "number", "minLength": 1}),
            "/minLength",
            "applies to strings, but type allows only number",
        ),
        (
            json!({"type": "string", "maximum": 1}),
            "/maximum",
            "applies to numbers",
        ),
        (
            json!({"type": "array", "properties": {}}),
            "/properties",
            "applies to objects",
        ),
        (
            json!({"type": ["object", "null"], "items": {}}),
            "/items",
            "only object or null",
        ),
        (
            json!({"minimum": 10, "maximum": 5}),
            "/minimum",
            "above maximum 5",
        ),
        (
            json!({"minLength": 4, "maxLength": 3}),
            "/minLength",
            "above maxLength 3",
        ),
        (
            json!({"type": "string", "enum": ["a", 2]}),
            "/enum/1",
            "is integer, but type allows only string",
        ),
        (
            json!({"properties": {"a": {}}, "required": ["a", "b"], "additionalProperties": false}),
            "/required/1",
            "\"b\" is required, but additionalProperties is false",
        ),
    ];
    for (s, path, message) in cases {
        let e = refused(s.clone());
        assert_eq!(e.path, path, "{s}: {e}");
        assert!(e.message.contains(message), "{s}: {e}");
    }
    // Numbers are numbers and integers: both bound keywords fit either type.
    assert!(compile(&json!({"type": "integer", "minimum": 0.5, "enum": [1, 2.0]})).is_ok());
}

#[test]
fn deep_nesting_is_refused_before_it_can_hurt() {
    let mut s = json!({"type": "string"});
    for _ in 0..=MAX_DEPTH {
        s = json!({"items": s});
    }
    let e = refused(s);
    assert!(e.message.contains("nest at most"), "{e}");
    let mut ok = json!({});
    for _ in 0..MAX_DEPTH {
        ok = json!({"properties": {"x": ok}});
    }
    assert!(compile(&ok).is_ok());
}

#[test]
fn pointers_parse_with_escapes_and_refuse_bad_ones() {
    assert_eq!(parse_pointer("").unwrap(), Vec::<String>::new());
    assert_eq!(
        parse_pointer("/a~1b/c~0d/0").unwrap(),
        vec!["a/b", "c~d", "0"]
    );
    assert_eq!(parse_pointer("/").unwrap(), vec![""]);
    assert!(parse_pointer("a/b")
        .unwrap_err()
        .contains("start it with '/'"));
    assert!(parse_pointer("/a~2").unwrap_err().contains("'~'"));
    assert!(parse_pointer("/a~").is_err());
    assert_eq!(escape_segment("a/b~c"), "a~1b~0c");
}

#[test]
fn admitted_paths_follow_properties_items_and_wildcards() {
    let s = refund();
    let ok = |p: &str| s.admits_path(&parse_pointer(p).unwrap());
    assert!(ok("/customer/id"));
    assert!(ok("/lines/3/sku"));
    assert!(ok("/lines/*/anything"), "line items are open objects");
    assert!(ok("/*/id"));
    assert!(!ok("/customer/iban"), "customer is closed");
    assert!(!ok("/costumer"), "a typo");
    assert!(!ok("/amount/x"), "a number has no fields");
    assert!(!ok("/lines/x"), "an array has no named fields");
    assert!(schema(json!({})).admits_path(&parse_pointer("/any/0/thing").unwrap()));
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e9f64..1e9).prop_map(|f| json!(f)),
        "[a-z~/é]{0,6}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 40, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map("[a-z~/]{1,4}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// The tightest schema of the subset that `v` fits: every type, bound, length and property.
fn tight_schema(v: &Value) -> Value {
    match v {
        Value::Object(m) => json!({
            "type": "object",
            "properties": m.iter().map(|(k, v)| (k.clone(), tight_schema(v))).collect::<Map<_, _>>(),
            "required": m.keys().collect::<Vec<_>>(),
            "additionalProperties": false,
        }),
        Value::Array(items) => match items.first() {
            // Items of different shapes: only the type is checked.
            Some(first) if items.iter().all(|i| tight_schema(i) == tight_schema(first)) => {
                json!({"type": "array", "items": tight_schema(first)})
            }
            _ => json!({"type": "array"}),
        },
        Value::String(s) => {
            let n = s.chars().count();
            json!({"type": "string", "minLength": n, "maxLength": n, "enum": [s]})
        }
        Value::Number(n) => json!({"type": kind_name(v), "minimum": n, "maximum": n}),
        Value::Bool(_) => json!({"type": "boolean", "enum": [v]}),
        Value::Null => json!({"type": "null"}),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_value_fits_its_own_tightest_schema(v in any_json()) {
        let s = compile(&tight_schema(&v)).unwrap();
        prop_assert_eq!(validate(&s, &v), Ok(()));
    }

    #[test]
    fn compiling_and_validating_arbitrary_json_never_panics_and_paths_are_pointers(
        s in any_json(), v in any_json()
    ) {
        if let Ok(c) = compile(&s) {
            if let Err(violations) = validate(&c, &v) {
                for x in violations {
                    let segments = parse_pointer(&x.path);
                    prop_assert!(segments.is_ok(), "{}", x.path);
                    // Every violation points at a value in the payload, or a missing property.
                    prop_assert!(
                        v.pointer(&x.path).is_some() || x.message == "is required",
                        "{}", x
                    );
                }
            }
        } else {
            prop_assert!(parse_pointer(&compile(&s).unwrap_err().path).is_ok());
        }
    }
}
