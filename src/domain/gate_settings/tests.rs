use super::*;
use crate::domain::breaker::OnOpen;
use crate::domain::merge::LoneEdit;
use proptest::prelude::*;
use serde_json::json;

fn parse(v: Value) -> GateSettings {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{v}: {e}"))
}

/// The refused paths, in the order reported.
fn paths(s: &GateSettings) -> Vec<String> {
    s.validate("settings")
        .unwrap_err()
        .into_iter()
        .map(|e| e.path)
        .collect()
}

fn one_error(s: &GateSettings) -> String {
    let errors = s.validate("settings").unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    errors[0].to_string()
}

#[test]
fn an_empty_object_is_the_documented_default_and_valid() {
    let d = parse(json!({}));
    assert_eq!(d, GateSettings::default());
    assert_eq!(d.deadline_minutes, Some(1440));
    assert_eq!(d.reminder_before_minutes, Some(60));
    assert_eq!(d.eligible_roles, vec!["reviewer", "senior_reviewer"]);
    assert_eq!(d.auto_sample_rate, 0.02);
    assert!(
        d.bulk_approve,
        "bulk approval is allowed unless a gate turns it off"
    );
    let codes: Vec<_> = d
        .rejection_reasons
        .iter()
        .map(|r| r.code.as_str())
        .collect();
    assert_eq!(
        codes,
        vec!["insufficient-evidence", "wrong-amount", "policy-violation"]
    );
    assert_eq!(d.validate("settings"), Ok(()));
    // It survives a round trip through storage.
    assert_eq!(parse(serde_json::to_value(&d).unwrap()), d);
}

#[test]
fn null_means_none_and_everything_can_be_set() {
    let s = parse(json!({
        "deadline_minutes": null,
        "reminder_before_minutes": null,
        "escalation_group": "Finance leads",
        "eligible_roles": ["senior_reviewer"],
        "eligible_teams": ["Finance", "Finance leads"],
        "rejection_reasons": [{"code": "dup", "label": "Duplicate refund"}],
        "payload_schema": {"type": "object", "properties": {"iban": {"type": "string"}}},
        "auto_sample_rate": 1,
        "bulk_approve": false,
        "redact_fields_in_chat": ["/iban"],
        "merge_rules": {"lone_edit": "send_back"},
        "dual_teams": ["Finance", "Finance leads"],
        "breaker": {"rate": 0.3, "on_open": "refuse_all"}
    }));
    assert_eq!(s.deadline_minutes, None);
    assert!(!s.bulk_approve);
    assert_eq!(s.merge_rules.lone_edit, LoneEdit::SendBack);
    assert_eq!(s.breaker.on_open, OnOpen::RefuseAll);
    assert_eq!(s.breaker.min_decisions, 20, "breaker defaults fill in");
    assert_eq!(s.validate("settings"), Ok(()));
}

#[test]
fn unknown_fields_and_wrong_types_are_refused_when_parsing() {
    for bad in [
        json!({"deadline_minuts": 60}),
        json!({"deadline_minutes": "24h"}),
        json!({"deadline_minutes": -5}),
        json!({"auto_sample_rate": "2%"}),
        json!({"bulk_approve": "yes"}),
        json!({"bulk_aprove": false}),
        json!({"dual_teams": ["only one"]}),
        json!({"rejection_reasons": [{"code": "x", "label": "X", "colour": "red"}]}),
        json!({"breaker": {"treshold": 0.2}}),
        json!({"merge_rules": {"lone_edit": "approve"}}),
    ] {
        assert!(
            serde_json::from_value::<GateSettings>(bad.clone()).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn deadlines_and_reminders_must_make_sense_together() {
    let with = |deadline, reminder| GateSettings {
        deadline_minutes: deadline,
        reminder_before_minutes: reminder,
        ..GateSettings::default()
    };
    assert_eq!(with(Some(60), Some(59)).validate("settings"), Ok(()));
    assert_eq!(with(None, None).validate("settings"), Ok(()));
    assert_eq!(
        one_error(&with(Some(60), Some(60))),
        "settings.reminder_before_minutes: must be less than the deadline (60 minutes), or the reminder would come before the request"
    );
    assert_eq!(
        one_error(&with(None, Some(10))),
        "settings.reminder_before_minutes: a reminder counts back from the deadline, and this gate has none"
    );
    assert!(one_error(&with(Some(0), None)).contains("use null for no deadline"));
    assert!(one_error(&with(Some(60), Some(0))).contains("use null for no reminder"));
    assert!(one_error(&with(Some(MAX_DEADLINE_MINUTES + 1), None)).contains("a year"));
}

#[test]
fn reviewers_must_be_reachable() {
    let s = GateSettings {
        eligible_roles: vec![
            "reviewer".into(),
            "auditor".into(),
            "boss".into(),
            "reviewer".into(),
        ],
        eligible_teams: vec!["Finance".into(), " Ops".into(), "Finance".into(), "".into()],
        escalation_group: Some("   ".into()),
        dual_teams: Some(["Finance".into(), "Legal".into()]),
        ..GateSettings::default()
    };
    let errors = s.validate("settings").unwrap_err();
    let got: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        vec![
            "settings.escalation_group: name a team",
            "settings.eligible_roles[1]: auditors are read-only and never review",
            "settings.eligible_roles[2]: unknown role \"boss\"; use reviewer, senior_reviewer or admin",
            "settings.eligible_roles[3]: reviewer is listed twice",
            "settings.eligible_teams[1]: a team name has no leading or trailing spaces",
            "settings.eligible_teams[2]: Finance is listed twice",
            "settings.eligible_teams[3]: name a team",
            "settings.dual_teams[1]: Legal is not among eligible_teams, so nobody could take this half",
        ]
    );
    let nobody = GateSettings {
        eligible_roles: vec![],
        ..GateSettings::default()
    };
    assert!(one_error(&nobody).contains("nobody could review"));
    let same = GateSettings {
        dual_teams: Some(["Ops".into(), "Ops".into()]),
        ..GateSettings::default()
    };
    assert_eq!(
        one_error(&same),
        "settings.dual_teams[1]: Ops is listed twice"
    );
}

#[test]
fn eligibility_needs_a_role_and_when_teams_are_listed_a_team() {
    let open = GateSettings::default();
    assert!(open.is_eligible(&["reviewer"], &[]));
    assert!(!open.is_eligible(&["auditor", "admin"], &["Ops"]));
    let teams = GateSettings {
        eligible_teams: vec!["Finance".into()],
        ..GateSettings::default()
    };
    assert!(teams.is_eligible(&["senior_reviewer"], &["Ops", "Finance"]));
    assert!(!teams.is_eligible(&["senior_reviewer"], &["Ops"]));
    assert!(
        !teams.is_eligible(&["auditor"], &["Finance"]),
        "a team does not make an auditor a reviewer"
    );
}

#[test]
fn rejection_reasons_need_unique_slug_codes_and_labels() {
    let reason = |code: &str, label: &str| RejectionReason {
        code: code.into(),
        label: label.into(),
    };
    let s = GateSettings {
        rejection_reasons: vec![
            reason("ok", "Fine"),
            reason("Wrong Amount", "x"),
            reason("ok", " "),
            reason("", &"y".repeat(201)),
        ],
        ..GateSettings::default()
    };
    assert_eq!(
        paths(&s),
        vec![
            "settings.rejection_reasons[1].code",
            "settings.rejection_reasons[2].code",
            "settings.rejection_reasons[2].label",
            "settings.rejection_reasons[3].code",
            "settings.rejection_reasons[3].label",
        ]
    );
    let none = GateSettings {
        rejection_reasons: vec![],
        ..GateSettings::default()
    };
    assert_eq!(
        none.validate("settings"),
        Ok(()),
        "free text is always there"
    );
}

#[test]
fn a_schema_that_does_not_compile_is_refused_at_its_keyword() {
    let s = GateSettings {
        payload_schema: Some(json!({"properties": {"amount": {"minimum": "5"}}})),
        ..GateSettings::default()
    };
    assert_eq!(
        one_error(&s),
        "settings.payload_schema/properties/amount/minimum: must be a number, not string"
    );
    let s = GateSettings {
        payload_schema: Some(json!("object")),
        ..GateSettings::default()
    };
    assert!(one_error(&s).starts_with("settings.payload_schema: a schema must be an object"));
}

#[test]
fn sample_rates_and_breakers_are_checked_under_their_own_paths() {
    let s = GateSettings {
        auto_sample_rate: 1.5,
        breaker: BreakerSettings {
            rate: 0.0,
            min_decisions: 0,
            ..BreakerSettings::default()
        },
        ..GateSettings::default()
    };
    assert_eq!(
        paths(&s),
        vec![
            "settings.auto_sample_rate",
            "settings.breaker.rate",
            "settings.breaker.min_decisions"
        ]
    );
    let nan = GateSettings {
        auto_sample_rate: f64::NAN,
        ..GateSettings::default()
    };
    assert_eq!(paths(&nan), vec!["settings.auto_sample_rate"]);
    for edge in [0.0, 1.0] {
        let s = GateSettings {
            auto_sample_rate: edge,
            ..GateSettings::default()
        };
        assert_eq!(s.validate(""), Ok(()));
    }
}

#[test]
fn redaction_paths_are_pointers_the_schema_allows() {
    let s = GateSettings {
        redact_fields_in_chat: vec![
            "/customer/iban".into(),
            "customer.iban".into(),
            "/customer/iban".into(),
            "/a~2".into(),
            "".into(),
            "/custmer/iban".into(),
        ],
        payload_schema: Some(json!({
            "type": "object",
            "properties": {"customer": {"type": "object"}},
            "additionalProperties": false
        })),
        ..GateSettings::default()
    };
    let errors = s.validate("").unwrap_err();
    let got: Vec<(&str, bool)> = errors
        .iter()
        .map(|e| (e.path.as_str(), e.message.contains("spelling")))
        .collect();
    assert_eq!(
        got,
        vec![
            ("redact_fields_in_chat[1]", false),
            ("redact_fields_in_chat[2]", false),
            ("redact_fields_in_chat[3]", false),
            ("redact_fields_in_chat[4]", false),
            ("redact_fields_in_chat[5]", true),
        ]
    );
    let no_schema = GateSettings {
        redact_fields_in_chat: vec!["/anything/*/at-all".into()],
        ..GateSettings::default()
    };
    assert_eq!(
        no_schema.validate(""),
        Ok(()),
        "without a schema, any pointer"
    );
}

#[test]
fn redaction_hides_named_fields_items_and_wildcards_and_nothing_else() {
    let s = GateSettings {
        redact_fields_in_chat: vec![
            "/customer/iban".into(),
            "/lines/*/email".into(),
            "/notes/1".into(),
            "/missing/field".into(),
            "/a~1b".into(),
        ],
        ..GateSettings::default()
    };
    let payload = json!({
        "amount": "120.00",
        "customer": {"iban": "DE89 3704", "name": "Ada"},
        "lines": [{"email": "a@x", "qty": 1}, {"qty": 2}, "not an object"],
        "notes": ["keep", "hide"],
        "a/b": {"nested": true}
    });
    assert_eq!(
        s.redact_for_chat(&payload),
        json!({
            "amount": "120.00",
            "customer": {"iban": REDACTED, "name": "Ada"},
            "lines": [{"email": REDACTED, "qty": 1}, {"qty": 2}, "not an object"],
            "notes": ["keep", REDACTED],
            "a/b": REDACTED
        })
    );
    assert_eq!(GateSettings::default().redact_for_chat(&payload), payload);
}

proptest! {
    #[test]
    fn every_reported_path_starts_with_the_prefix_and_valid_settings_have_none(
        deadline in prop::option::of(0u32..3000),
        reminder in prop::option::of(0u32..3000),
        rate in -1.0f64..2.0,
        roles in prop::collection::vec(prop::sample::select(vec!["reviewer", "admin", "auditor", "x"]), 0..3),
    ) {
        let s = GateSettings {
            deadline_minutes: deadline,
            reminder_before_minutes: reminder,
            auto_sample_rate: rate,
            eligible_roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            ..GateSettings::default()
        };
        let sound = deadline != Some(0)
            && match reminder {
                None => true,
                Some(r) => r > 0 && deadline.is_some_and(|d| r < d),
            }
            && (0.0..=1.0).contains(&rate)
            && !roles.is_empty()
            && roles.iter().all(|r| *r == "reviewer" || *r == "admin")
            && !(roles.len() == 2 && roles[0] == roles[1]);
        match s.validate("gates[refunds].settings") {
            Ok(()) => prop_assert!(sound),
            Err(errors) => {
                prop_assert!(!sound);
                for e in errors {
                    prop_assert!(e.path.starts_with("gates[refunds].settings."), "{}", e.path);
                }
            }
        }
    }
}
