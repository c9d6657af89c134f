//! The OpenAPI 3.1 document for `/api/v1`, served at `/api/v1/openapi.json`. Tests check it
//! against the code: the request and response types' fields, and every documented route.

use serde_json::{json, Value};

/// Every documented operation, as (method, path template).
pub const OPERATIONS: &[(&str, &str)] = &[
    ("post", "/api/v1/actions"),
    ("get", "/api/v1/actions/{id}"),
    ("post", "/api/v1/actions/{id}/withdraw"),
    ("post", "/api/v1/actions/{id}/revise"),
    ("post", "/api/v1/actions/{id}/execution"),
];

fn problem_responses(codes: &[&str]) -> Value {
    let mut out = serde_json::Map::new();
    for code in codes {
        out.insert(
            (*code).to_owned(),
            json!({"description": "Problem details naming the offending field", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}),
        );
    }
    Value::Object(out)
}

fn with(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    base
}

pub fn document() -> Value {
    let view = json!({"description": "The action request as the agent sees it", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ActionView"}}}});
    let id_param =
        json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string"}});
    let opt_string = json!({"type": ["string", "null"]});
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Countersign agent API",
            "version": "1.0.0",
            "description": "Submit proposed actions, learn the human decision (long-poll or signed webhook), withdraw, and report execution with the single-use approval token."
        },
        "servers": [{"url": "/"}],
        "security": [{"agentToken": []}],
        "paths": {
            "/api/v1/actions": {"post": {
                "operationId": "submitAction",
                "summary": "Submit a checkpoint; the gate answers synchronously with tier and status",
                "parameters": [{"name": "Idempotency-Key", "in": "header", "required": true, "schema": {"type": "string", "minLength": 1, "maxLength": 255}, "description": "Unique per action; retries with the same key and body get the stored response"}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Checkpoint"}}}},
                "responses": with(json!({"201": view.clone()}), problem_responses(&["400", "401", "409", "413", "422", "500"]))
            }},
            "/api/v1/actions/{id}": {"get": {
                "operationId": "getAction",
                "summary": "Status and decision; with wait, answers as soon as the request is decided",
                "parameters": [id_param.clone(), {"name": "wait", "in": "query", "required": false, "schema": {"type": "string", "pattern": "^(([0-5]?[0-9]{1,4}|60000)ms|([0-5]?[0-9]|60)s?|[01]m)$"}, "description": "Long-poll up to this long (at most 60s), e.g. 30s"}],
                "responses": with(json!({"200": view.clone()}), problem_responses(&["400", "401", "404", "500"]))
            }},
            "/api/v1/actions/{id}/withdraw": {"post": {
                "operationId": "withdrawAction",
                "summary": "Withdraw an open request",
                "parameters": [id_param.clone()],
                "responses": with(json!({"200": view.clone()}), problem_responses(&["401", "404", "409", "500"]))
            }},
            "/api/v1/actions/{id}/revise": {"post": {
                "operationId": "reviseAction",
                "summary": "Revise an open request: a new payload (and optionally title, reasoning, current_state, inputs, alternatives) becomes a new state version; reviewers who loaded the older one must look again",
                "parameters": [id_param.clone()],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "additionalProperties": false, "required": ["payload"], "properties": {
                    "payload": {}, "title": {"type": "string"}, "reasoning": {"type": "string"},
                    "current_state": {}, "inputs": {}, "alternatives": {}}}}}},
                "responses": with(json!({"200": view.clone()}), problem_responses(&["400", "401", "404", "409", "500"]))
            }},
            "/api/v1/actions/{id}/execution": {"post": {
                "operationId": "reportExecution",
                "summary": "Report execution with the approval token and the payload actually executed",
                "parameters": [id_param],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ExecutionReport"}}}},
                "responses": with(json!({"200": view}), problem_responses(&["400", "401", "403", "404", "500"]))
            }}
        },
        "components": {
            "securitySchemes": {"agentToken": {"type": "http", "scheme": "bearer", "description": "Per-agent token from `countersign agent add` or `countersign agent token`"}},
            "schemas": {
                "Amount": {"type": "object", "additionalProperties": false, "required": ["value", "currency"], "properties": {
                    "value": {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?$", "description": "Decimal string, never a float"},
                    "currency": {"type": "string", "pattern": "^[A-Z]{3}$", "description": "ISO 4217 code"}
                }},
                "Checkpoint": {"type": "object", "additionalProperties": false, "required": ["action_type", "payload"], "properties": {
                    "action_type": {"type": "string", "pattern": "^[a-z0-9_-]+(\\.[a-z0-9_-]+)+$", "maxLength": 128},
                    "title": {"type": ["string", "null"], "maxLength": 200},
                    "payload": {"not": {"type": "null"}, "description": "The exact action the agent would execute (max 128 KiB)"},
                    "current_state": {"description": "The record as it is now, for diffs"},
                    "inputs": {"description": "What led the agent here"},
                    "reasoning": {"type": ["string", "null"], "maxLength": 20000},
                    "alternatives": {"description": "Options the agent considered"},
                    "confidence": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
                    "amount": {"oneOf": [{"$ref": "#/components/schemas/Amount"}, {"type": "null"}]},
                    "counterparty": opt_string.clone(),
                    "customer_tier": opt_string.clone(),
                    "record_count": {"type": ["integer", "null"], "minimum": 0, "maximum": 1_000_000_000_000i64},
                    "recipient_count": {"type": ["integer", "null"], "minimum": 0, "maximum": 1_000_000_000_000i64},
                    "risk_class": opt_string.clone(),
                    "acting_for": {"type": ["string", "null"], "description": "User id or email the agent acts for; that person cannot review it"},
                    "tenant": opt_string.clone(),
                    "callback_url": {"type": ["string", "null"], "format": "uri", "description": "Receives signed webhooks (Standard Webhooks) on every terminal transition. Must reach a public address: private, loopback and link-local hosts are refused unless the server runs with --allow-private-callbacks"},
                    "deadline": {"type": ["string", "null"], "format": "date-time"},
                    "supersedes": {"type": ["string", "null"], "description": "Id of an earlier request this one replaces"}
                }},
                "ExecutionReport": {"type": "object", "additionalProperties": false, "required": ["approval_token", "payload", "outcome"], "properties": {
                    "approval_token": {"type": "string"},
                    "payload": {"description": "Exactly the approved (possibly edited) payload"},
                    "outcome": {"type": "string", "enum": ["succeeded", "failed"]},
                    "detail": opt_string.clone()
                }},
                "GateRef": {"type": "object", "properties": {"key": {"type": "string"}, "name": {"type": "string"}, "version": {"type": "integer"}}},
                "Reviewer": {"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string"}}},
                "Decision": {"type": "object", "properties": {
                    "kind": {"type": "string", "enum": ["approve", "approve_with_edit", "reject", "expire"]},
                    "reason_code": opt_string.clone(),
                    "reason": opt_string.clone(),
                    "decided_by": {"type": "array", "items": {"$ref": "#/components/schemas/Reviewer"}},
                    "decided_at": {"type": "string", "format": "date-time"},
                    "reasons": {"type": "array", "description": "Every rejection behind the outcome (both reviewers' when both rejected a dual review)", "items": {"$ref": "#/components/schemas/Reason"}}
                }},
                "Reason": {"type": "object", "properties": {
                    "reviewer": {"oneOf": [{"$ref": "#/components/schemas/Reviewer"}, {"type": "null"}]},
                    "reason_code": opt_string.clone(),
                    "reason": opt_string.clone()
                }},
                "ActionView": {"type": "object", "properties": {
                    "id": {"type": "string"},
                    "status": {"type": "string", "enum": ["pending", "in_review", "escalated", "approved", "approved_with_edit", "rejected", "expired", "withdrawn", "executed", "execution_failed"]},
                    "tier": {"type": "string", "enum": ["auto", "log", "review", "dual", "block"]},
                    "action_type": {"type": "string"},
                    "gate": {"oneOf": [{"$ref": "#/components/schemas/GateRef"}, {"type": "null"}]},
                    "matched_rules": {"type": "array", "items": {"type": "string"}},
                    "explanation": {"type": "string"},
                    "created_at": {"type": "string", "format": "date-time"},
                    "deadline": {"type": ["string", "null"], "format": "date-time"},
                    "decision": {"oneOf": [{"$ref": "#/components/schemas/Decision"}, {"type": "null"}]},
                    "approved_payload": {"description": "What may be executed; the edited payload after approve-with-edit"},
                    "approved_payload_sha256": opt_string.clone(),
                    "approval_token": {"type": ["string", "null"], "description": "Single use; bound to approved_payload_sha256"},
                    "status_url": {"type": "string"}
                }},
                "Problem": {"type": "object", "required": ["type", "title", "status", "detail"], "properties": {
                    "type": {"type": "string"},
                    "title": {"type": "string"},
                    "status": {"type": "integer"},
                    "detail": {"type": "string"},
                    "field": {"type": "string"}
                }}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::checkpoint::{AmountBody, CheckpointBody};
    use std::collections::BTreeSet;

    fn schema_props(doc: &Value, name: &str) -> BTreeSet<String> {
        doc["components"]["schemas"][name]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("schema {name}"))
            .keys()
            .cloned()
            .collect()
    }

    fn keys(v: &Value) -> BTreeSet<String> {
        v.as_object().unwrap().keys().cloned().collect()
    }

    #[test]
    fn checkpoint_schema_matches_the_type() {
        let full = CheckpointBody {
            action_type: "a.b".into(),
            title: Some(String::new()),
            payload: json!({}),
            current_state: Some(json!({})),
            inputs: Some(json!({})),
            reasoning: Some(String::new()),
            alternatives: Some(json!([])),
            confidence: Some(0.5),
            amount: Some(AmountBody {
                value: "1".into(),
                currency: "EUR".into(),
            }),
            counterparty: Some(String::new()),
            customer_tier: Some(String::new()),
            record_count: Some(1),
            recipient_count: Some(1),
            risk_class: Some(String::new()),
            acting_for: Some(String::new()),
            tenant: Some(String::new()),
            callback_url: Some(String::new()),
            deadline: Some(String::new()),
            supersedes: Some(String::new()),
        };
        let doc = document();
        assert_eq!(
            schema_props(&doc, "Checkpoint"),
            keys(&serde_json::to_value(&full).unwrap())
        );
        assert_eq!(
            schema_props(&doc, "Amount"),
            keys(&serde_json::to_value(full.amount.unwrap()).unwrap())
        );
        // Exactly the fields without a default are required.
        let minimal: CheckpointBody =
            serde_json::from_value(json!({"action_type": "a.b", "payload": 1})).unwrap();
        assert_eq!(minimal.title, None);
        let required: BTreeSet<String> = doc["components"]["schemas"]["Checkpoint"]["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            required,
            ["action_type", "payload"].map(String::from).into()
        );
    }

    #[test]
    fn response_schemas_match_the_types() {
        let doc = document();
        let view = crate::api::view::ActionView {
            id: String::new(),
            status: String::new(),
            tier: String::new(),
            action_type: String::new(),
            gate: None,
            matched_rules: vec![],
            explanation: String::new(),
            created_at: String::new(),
            deadline: None,
            decision: None,
            approved_payload: None,
            approved_payload_sha256: None,
            approval_token: None,
            status_url: String::new(),
        };
        assert_eq!(
            schema_props(&doc, "ActionView"),
            keys(&serde_json::to_value(&view).unwrap())
        );
        let decision = crate::api::view::DecisionView {
            kind: String::new(),
            reason_code: None,
            reason: None,
            decided_by: vec![],
            decided_at: String::new(),
            reasons: vec![],
        };
        assert_eq!(
            schema_props(&doc, "Decision"),
            keys(&serde_json::to_value(&decision).unwrap())
        );
        let mut problem =
            serde_json::to_value(crate::api::problem::Problem::invalid("f", "d")).unwrap();
        assert_eq!(schema_props(&doc, "Problem"), keys(&problem));
        problem.as_object_mut().unwrap().remove("field");
    }

    #[test]
    fn every_operation_is_documented_once() {
        let doc = document();
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                documented.insert((method.clone(), path.clone()));
            }
        }
        let listed: BTreeSet<(String, String)> = OPERATIONS
            .iter()
            .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
            .collect();
        assert_eq!(documented, listed);
    }
}
