//! Split-and-merge dual review: who may take each half of a `dual` request, how the two
//! independent reviews merge into one decision, and how a conflict between them is settled.
//!
//! Every rule here serves one invariant: a payload is approved only when two different people,
//! neither the requester nor the person the agent acts for, approved exactly that payload.
//! - A rejection is a veto. Dual review adds a second pair of eyes; it must never let one
//!   reviewer outvote the other into approving what they refused.
//! - An approval counts for the payload its reviewer approved and nothing else: approving the
//!   proposal as it stands is not approving someone's edit of it.
//! - An edit is never approved by its own author alone. So there is no rule that takes the one
//!   edit when the other reviewer approved the proposal unchanged, and a resolver who writes a
//!   payload of their own sends it back to both reviewers instead of approving it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What one reviewer decided about their half.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ReviewVerdict {
    Approve,
    /// Approve a changed payload. A "change" equal to the proposal is an approval as proposed.
    ApproveWithEdit {
        payload: Value,
    },
    Reject {
        reason_code: Option<String>,
        reason_text: String,
    },
}

/// One half of a dual review, as submitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    pub reviewer_id: String,
    pub verdict: ReviewVerdict,
}

/// How a gate merges the two halves. `{}` gives the defaults.
///
/// Deliberately not configurable, because every alternative would break the invariant above or
/// silently drop a reviewer's edit: a rejection always wins, two equal edits always approve that
/// edit, and two different edits always need a resolver (sending one back would drop the other).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MergeRules {
    /// One reviewer edited, the other approved the proposal unchanged.
    pub lone_edit: LoneEdit,
}

/// What happens to an edit only one reviewer made. Approving it outright is not an option: the
/// other reviewer approved the proposal, not the edit, so the edit would stand on its author alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoneEdit {
    /// A conflict for a senior reviewer to settle.
    #[default]
    Escalate,
    /// No senior needed: the edit becomes a new state version that both reviewers approve again.
    SendBack,
}

/// A rejection passed on to the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    pub reviewer_id: String,
    pub reason_code: Option<String>,
    pub reason_text: String,
}

/// One reviewer's candidate in a conflict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Side {
    pub reviewer_id: String,
    /// The payload they approved; `None` for the proposal as it stands.
    pub edit: Option<Value>,
}

/// Two approvals of different payloads, waiting for a resolver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conflict {
    pub proposed: Value,
    pub a: Side,
    pub b: Side,
}

/// The decision two reviews (or a resolver) reach.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum MergeOutcome {
    Approved,
    ApprovedWithEdit {
        payload: Value,
    },
    /// Every rejection, in review order: one, or both when both rejected.
    Rejected {
        reasons: Vec<Rejection>,
    },
    Conflict(Conflict),
    /// `payload` becomes the proposal of a new state version; the same two reviewers review it
    /// again from scratch, so whoever wrote it is never its only approver.
    SentBack {
        payload: Value,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    #[error("both reviews are by {0}; dual review needs two different people")]
    SameReviewer(String),
}

/// The payload a review approves as an edit; `None` when it approves the proposal as it stands
/// (or rejects, which [`merge`] handles first).
fn edit_of<'a>(proposed: &Value, review: &'a Review) -> Option<&'a Value> {
    match &review.verdict {
        // `Value` equality ignores object key order, so a reordered proposal is no edit.
        ReviewVerdict::ApproveWithEdit { payload } if payload != proposed => Some(payload),
        _ => None,
    }
}

fn rejection(review: &Review) -> Option<Rejection> {
    match &review.verdict {
        ReviewVerdict::Reject {
            reason_code,
            reason_text,
        } => Some(Rejection {
            reviewer_id: review.reviewer_id.clone(),
            reason_code: reason_code.clone(),
            reason_text: reason_text.clone(),
        }),
        _ => None,
    }
}

/// Merges the two halves of a dual review of `proposed`.
pub fn merge(
    proposed: &Value,
    a: &Review,
    b: &Review,
    rules: &MergeRules,
) -> Result<MergeOutcome, MergeError> {
    if a.reviewer_id == b.reviewer_id {
        return Err(MergeError::SameReviewer(a.reviewer_id.clone()));
    }
    let reasons: Vec<Rejection> = [a, b].into_iter().filter_map(rejection).collect();
    if !reasons.is_empty() {
        return Ok(MergeOutcome::Rejected { reasons });
    }
    Ok(match (edit_of(proposed, a), edit_of(proposed, b)) {
        (None, None) => MergeOutcome::Approved,
        (Some(x), Some(y)) if x == y => MergeOutcome::ApprovedWithEdit { payload: x.clone() },
        (Some(x), None) | (None, Some(x)) if rules.lone_edit == LoneEdit::SendBack => {
            MergeOutcome::SentBack { payload: x.clone() }
        }
        (ea, eb) => MergeOutcome::Conflict(Conflict {
            proposed: proposed.clone(),
            a: Side {
                reviewer_id: a.reviewer_id.clone(),
                edit: ea.cloned(),
            },
            b: Side {
                reviewer_id: b.reviewer_id.clone(),
                edit: eb.cloned(),
            },
        }),
    })
}

/// Someone who would take part in a dual review.
#[derive(Debug, Clone, Copy)]
pub struct Person<'a> {
    pub id: &'a str,
    /// Agents may name the person they act for by email rather than by id.
    pub email: &'a str,
    pub teams: &'a [String],
}

impl Person<'_> {
    /// Whether `reference`, a user id or an email (ASCII case folded, as SQL `LOWER` does on
    /// SQLite), names this person.
    pub fn is(&self, reference: &str) -> bool {
        reference == self.id
            || (!self.email.is_empty() && reference.eq_ignore_ascii_case(self.email))
    }
}

/// What a dual request's reviewers must be independent of.
#[derive(Debug, Clone, Copy, Default)]
pub struct DualRequest<'a> {
    pub requester: Option<&'a str>,
    pub acting_for: Option<&'a str>,
    /// `[team of half A, team of half B]` when the gate draws one reviewer from each of two teams.
    pub teams: Option<[&'a str; 2]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Half {
    A,
    B,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssignmentError {
    #[error(
        "you already hold the other half of this review; dual review needs two different people"
    )]
    HoldsOtherHalf,
    #[error("you made this request, so you cannot review it")]
    IsRequester,
    #[error("this request was made on your behalf, so you cannot review it")]
    IsActingFor,
    #[error("this half is reviewed by a member of team {0:?}")]
    NotInTeam(String),
}

fn check_independent(person: &Person, request: &DualRequest) -> Result<(), AssignmentError> {
    if request.requester.is_some_and(|r| person.is(r)) {
        return Err(AssignmentError::IsRequester);
    }
    if request.acting_for.is_some_and(|r| person.is(r)) {
        return Err(AssignmentError::IsActingFor);
    }
    Ok(())
}

/// Whether `person` may take `half` of `request`, the other half being held by `other_half`.
pub fn check_assignment(
    person: &Person,
    half: Half,
    other_half: Option<&str>,
    request: &DualRequest,
) -> Result<(), AssignmentError> {
    if other_half == Some(person.id) {
        return Err(AssignmentError::HoldsOtherHalf);
    }
    check_independent(person, request)?;
    if let Some([team_a, team_b]) = request.teams {
        let team = if half == Half::A { team_a } else { team_b };
        if !person.teams.iter().any(|t| t == team) {
            return Err(AssignmentError::NotInTeam(team.to_owned()));
        }
    }
    Ok(())
}

/// What a resolver does with a conflict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Resolution {
    /// Approve the proposal as it stands; only if a reviewer approved it too.
    PickProposed,
    /// Approve what reviewer A approved; A and the resolver are its two approvers.
    PickA,
    PickB,
    /// Send a payload back to both reviewers as a new state version: a combination the resolver
    /// wrote (which, as its author, they cannot approve alone), or a side they would rather not
    /// settle themselves.
    SendBack {
        payload: Value,
    },
    Reject {
        reason_code: Option<String>,
        reason_text: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("you reviewed one half of this request; its conflict is settled by someone else")]
    ResolverReviewed,
    #[error(transparent)]
    Ineligible(#[from] AssignmentError),
    #[error("neither reviewer approved the proposal as it stands; pick an edit or send one back")]
    ProposalUnapproved,
}

impl Conflict {
    /// Settles the conflict as `resolver` chose. Never yields another conflict.
    pub fn resolve(
        &self,
        resolver: &Person,
        request: &DualRequest,
        resolution: Resolution,
    ) -> Result<MergeOutcome, ResolveError> {
        if resolver.id == self.a.reviewer_id || resolver.id == self.b.reviewer_id {
            return Err(ResolveError::ResolverReviewed);
        }
        check_independent(resolver, request)?;
        // Sides made by `merge` never hold an edit equal to the proposal; stored ones might.
        let edit = |side: &Side| side.edit.clone().filter(|p| *p != self.proposed);
        let pick = |side: &Side| match edit(side) {
            None => MergeOutcome::Approved,
            Some(payload) => MergeOutcome::ApprovedWithEdit { payload },
        };
        Ok(match resolution {
            Resolution::PickA => pick(&self.a),
            Resolution::PickB => pick(&self.b),
            Resolution::PickProposed => {
                if edit(&self.a).is_some() && edit(&self.b).is_some() {
                    return Err(ResolveError::ProposalUnapproved);
                }
                MergeOutcome::Approved
            }
            Resolution::SendBack { payload } => MergeOutcome::SentBack { payload },
            Resolution::Reject {
                reason_code,
                reason_text,
            } => MergeOutcome::Rejected {
                reasons: vec![Rejection {
                    reviewer_id: resolver.id.to_owned(),
                    reason_code,
                    reason_text,
                }],
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn proposed() -> Value {
        json!({"amount": "120.00", "to": "acct-1", "memo": "refund"})
    }
    fn x() -> Value {
        json!({"amount": "100.00", "to": "acct-1", "memo": "refund"})
    }
    fn y() -> Value {
        json!({"amount": "120.00", "to": "acct-2", "memo": "refund"})
    }

    #[derive(Debug, Clone, Copy)]
    enum K {
        Approve,
        EditX,
        EditY,
        EditSame,
        Reject,
    }

    fn review(id: &str, k: K) -> Review {
        let edit = |payload| ReviewVerdict::ApproveWithEdit { payload };
        let verdict = match k {
            K::Approve => ReviewVerdict::Approve,
            K::EditX => edit(x()),
            K::EditY => edit(y()),
            // The proposal with its keys in another order: still no edit.
            K::EditSame => edit(
                serde_json::from_str(r#"{"memo":"refund","to":"acct-1","amount":"120.00"}"#)
                    .unwrap(),
            ),
            K::Reject => ReviewVerdict::Reject {
                reason_code: Some(format!("code-{id}")),
                reason_text: format!("why {id}"),
            },
        };
        Review {
            reviewer_id: id.into(),
            verdict,
        }
    }

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum P {
        Proposal,
        X,
        Y,
    }

    fn candidate(p: P) -> Option<Value> {
        match p {
            P::Proposal => None,
            P::X => Some(x()),
            P::Y => Some(y()),
        }
    }

    enum Want {
        Approved,
        With(P),
        Rejected(&'static [&'static str]),
        Conflict(P, P),
    }

    fn expected(want: &Want) -> MergeOutcome {
        match want {
            Want::Approved => MergeOutcome::Approved,
            Want::With(p) => MergeOutcome::ApprovedWithEdit {
                payload: candidate(*p).unwrap(),
            },
            Want::Rejected(ids) => MergeOutcome::Rejected {
                reasons: ids
                    .iter()
                    .map(|id| rejection(&review(id, K::Reject)).unwrap())
                    .collect(),
            },
            Want::Conflict(a, b) => MergeOutcome::Conflict(Conflict {
                proposed: proposed(),
                a: Side {
                    reviewer_id: "usr_a".into(),
                    edit: candidate(*a),
                },
                b: Side {
                    reviewer_id: "usr_b".into(),
                    edit: candidate(*b),
                },
            }),
        }
    }

    fn merge_kinds(ka: K, kb: K, rules: &MergeRules) -> Result<MergeOutcome, MergeError> {
        merge(
            &proposed(),
            &review("usr_a", ka),
            &review("usr_b", kb),
            rules,
        )
    }

    /// Every combination of A's verdict and B's verdict, under the default rules.
    #[rustfmt::skip]
    fn table() -> Vec<(K, K, Want)> {
        use K::*;
        use P::{Proposal as Pr, X as Ex, Y as Ey};
        const A: &[&str] = &["usr_a"];
        const B: &[&str] = &["usr_b"];
        vec![
            (Approve, Approve, Want::Approved),         (Approve, EditX, Want::Conflict(Pr, Ex)),
            (Approve, EditY, Want::Conflict(Pr, Ey)),   (Approve, EditSame, Want::Approved),
            (Approve, Reject, Want::Rejected(B)),
            (EditX, Approve, Want::Conflict(Ex, Pr)),   (EditX, EditX, Want::With(Ex)),
            (EditX, EditY, Want::Conflict(Ex, Ey)),     (EditX, EditSame, Want::Conflict(Ex, Pr)),
            (EditX, Reject, Want::Rejected(B)),
            (EditY, Approve, Want::Conflict(Ey, Pr)),   (EditY, EditX, Want::Conflict(Ey, Ex)),
            (EditY, EditY, Want::With(Ey)),             (EditY, EditSame, Want::Conflict(Ey, Pr)),
            (EditY, Reject, Want::Rejected(B)),
            (EditSame, Approve, Want::Approved),        (EditSame, EditX, Want::Conflict(Pr, Ex)),
            (EditSame, EditY, Want::Conflict(Pr, Ey)),  (EditSame, EditSame, Want::Approved),
            (EditSame, Reject, Want::Rejected(B)),
            (Reject, Approve, Want::Rejected(A)),       (Reject, EditX, Want::Rejected(A)),
            (Reject, EditY, Want::Rejected(A)),         (Reject, EditSame, Want::Rejected(A)),
            (Reject, Reject, Want::Rejected(&["usr_a", "usr_b"])),
        ]
    }

    #[test]
    fn every_combination_merges_as_the_default_rules_say() {
        let rows = table();
        assert_eq!(rows.len(), 25);
        for (ka, kb, want) in rows {
            let got = merge_kinds(ka, kb, &MergeRules::default());
            assert_eq!(got, Ok(expected(&want)), "A {ka:?}, B {kb:?}");
        }
    }

    #[test]
    fn send_back_rules_send_a_lone_edit_back_and_change_nothing_else() {
        let rules = MergeRules {
            lone_edit: LoneEdit::SendBack,
        };
        for (ka, kb, want) in table() {
            let want = match want {
                Want::Conflict(P::Proposal, e) | Want::Conflict(e, P::Proposal) => {
                    MergeOutcome::SentBack {
                        payload: candidate(e).unwrap(),
                    }
                }
                other => expected(&other),
            };
            assert_eq!(merge_kinds(ka, kb, &rules), Ok(want), "A {ka:?}, B {kb:?}");
        }
    }

    #[test]
    fn the_same_person_cannot_be_both_halves() {
        let a = review("usr_a", K::Approve);
        assert_eq!(
            merge(&proposed(), &a, &a, &MergeRules::default()),
            Err(MergeError::SameReviewer("usr_a".into()))
        );
    }

    #[test]
    fn rules_default_from_an_empty_object_and_refuse_taking_a_lone_edit() {
        let parse = serde_json::from_str::<MergeRules>;
        assert_eq!(parse("{}").unwrap(), MergeRules::default());
        assert_eq!(
            parse(r#"{"lone_edit":"send_back"}"#).unwrap().lone_edit,
            LoneEdit::SendBack
        );
        assert!(parse(r#"{"lone_edit":"take_edit"}"#).is_err());
        assert!(
            parse(r#"{"on_reject":"escalate"}"#).is_err(),
            "the veto is not configurable"
        );
    }

    fn person<'a>(id: &'a str, teams: &'a [String]) -> Person<'a> {
        Person {
            id,
            email: "",
            teams,
        }
    }

    #[test]
    fn assignment_refuses_the_other_half_the_requester_and_the_acting_for_user() {
        let dana = Person {
            email: "Dana@Example.com",
            ..person("usr_dana", &[])
        };
        let request = |requester, acting_for| DualRequest {
            requester,
            acting_for,
            teams: None,
        };
        let (others, me) = (Some("usr_ravi"), Some("usr_dana"));
        let cases = [
            (others, request(others, others), Ok(())),
            (
                me,
                request(None, None),
                Err(AssignmentError::HoldsOtherHalf),
            ),
            (None, request(me, None), Err(AssignmentError::IsRequester)),
            (None, request(None, me), Err(AssignmentError::IsActingFor)),
            (
                None,
                request(None, Some("dana@example.com")),
                Err(AssignmentError::IsActingFor),
            ),
        ];
        for (other_half, request, want) in cases {
            assert_eq!(check_assignment(&dana, Half::B, other_half, &request), want);
        }
    }

    #[test]
    fn a_gate_with_two_teams_takes_each_half_from_its_team() {
        let request = DualRequest {
            teams: Some(["finance", "risk"]),
            ..DualRequest::default()
        };
        let finance = ["finance".to_owned()];
        let both = ["risk".to_owned(), "finance".to_owned()];
        let (f, fr) = (person("usr_f", &finance), person("usr_fr", &both));
        assert_eq!(check_assignment(&f, Half::A, None, &request), Ok(()));
        assert_eq!(
            check_assignment(&f, Half::B, Some("usr_x"), &request),
            Err(AssignmentError::NotInTeam("risk".into()))
        );
        assert_eq!(
            check_assignment(&fr, Half::B, Some("usr_f"), &request),
            Ok(())
        );
        assert_eq!(
            check_assignment(&fr, Half::B, Some("usr_fr"), &request),
            Err(AssignmentError::HoldsOtherHalf),
            "being in both teams does not make one person two"
        );
    }

    fn conflict(ka: K, kb: K) -> Conflict {
        match merge_kinds(ka, kb, &MergeRules::default()) {
            Ok(MergeOutcome::Conflict(c)) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_resolver_picks_a_side_that_someone_else_approved() {
        let senior = person("usr_senior", &[]);
        let any = DualRequest::default();
        let c = conflict(K::EditX, K::Approve);
        let with_x = MergeOutcome::ApprovedWithEdit { payload: x() };
        assert_eq!(c.resolve(&senior, &any, Resolution::PickA), Ok(with_x));
        assert_eq!(
            c.resolve(&senior, &any, Resolution::PickB),
            Ok(MergeOutcome::Approved)
        );
        assert_eq!(
            c.resolve(&senior, &any, Resolution::PickProposed),
            Ok(MergeOutcome::Approved)
        );
        assert_eq!(
            conflict(K::EditX, K::EditY).resolve(&senior, &any, Resolution::PickProposed),
            Err(ResolveError::ProposalUnapproved)
        );
    }

    #[test]
    fn a_resolver_s_own_payload_goes_back_to_both_and_a_rejection_goes_to_the_agent() {
        let senior = person("usr_senior", &[]);
        let any = DualRequest::default();
        let c = conflict(K::EditX, K::EditY);
        let payload = json!({"amount": "100.00", "to": "acct-2", "memo": "refund"});
        let send_back = Resolution::SendBack {
            payload: payload.clone(),
        };
        let sent = c.resolve(&senior, &any, send_back);
        assert_eq!(sent, Ok(MergeOutcome::SentBack { payload }));
        let reject = Resolution::Reject {
            reason_code: None,
            reason_text: "neither amount is right".into(),
        };
        let Ok(MergeOutcome::Rejected { reasons }) = c.resolve(&senior, &any, reject) else {
            panic!()
        };
        assert_eq!(reasons[0].reviewer_id, "usr_senior");
    }

    #[test]
    fn a_resolver_is_neither_reviewer_nor_the_acting_for_user() {
        let c = conflict(K::EditX, K::Approve);
        let any = DualRequest::default();
        for id in ["usr_a", "usr_b"] {
            let got = c.resolve(&person(id, &[]), &any, Resolution::PickA);
            assert_eq!(got, Err(ResolveError::ResolverReviewed));
        }
        let on_behalf = DualRequest {
            acting_for: Some("usr_senior"),
            ..any
        };
        assert_eq!(
            c.resolve(&person("usr_senior", &[]), &on_behalf, Resolution::PickA),
            Err(ResolveError::Ineligible(AssignmentError::IsActingFor))
        );
    }

    fn small_payload() -> impl Strategy<Value = Value> {
        (0u8..3, 0u8..2).prop_map(|(amount, to)| json!({"amount": amount, "to": to}))
    }

    fn any_review() -> impl Strategy<Value = Review> {
        let verdict = prop_oneof![
            Just(ReviewVerdict::Approve),
            small_payload().prop_map(|payload| ReviewVerdict::ApproveWithEdit { payload }),
            "[a-z]{0,3}".prop_map(|t| ReviewVerdict::Reject {
                reason_code: None,
                reason_text: t
            }),
        ];
        let id = prop::sample::select(vec!["usr_a", "usr_b", "usr_c"]);
        (id, verdict).prop_map(|(id, verdict)| Review {
            reviewer_id: id.into(),
            verdict,
        })
    }

    fn any_rules() -> impl Strategy<Value = MergeRules> {
        prop_oneof![Just(LoneEdit::Escalate), Just(LoneEdit::SendBack)]
            .prop_map(|lone_edit| MergeRules { lone_edit })
    }

    /// Whether `r` approved `payload` (the proposal counting as approved by a plain approval).
    fn approved(r: &Review, proposed: &Value, payload: &Value) -> bool {
        match &r.verdict {
            ReviewVerdict::Approve => payload == proposed,
            ReviewVerdict::ApproveWithEdit { payload: p } => p == payload,
            ReviewVerdict::Reject { .. } => false,
        }
    }

    fn mirrored(o: MergeOutcome) -> MergeOutcome {
        match o {
            MergeOutcome::Rejected { mut reasons } => {
                reasons.reverse();
                MergeOutcome::Rejected { reasons }
            }
            MergeOutcome::Conflict(Conflict { proposed, a, b }) => {
                MergeOutcome::Conflict(Conflict {
                    proposed,
                    a: b,
                    b: a,
                })
            }
            other => other,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn a_rejection_always_rejects(p in small_payload(), a in any_review(), b in any_review(), rules in any_rules()) {
            if let Ok(outcome) = merge(&p, &a, &b, &rules) {
                let n = [&a, &b].iter().filter(|r| rejection(r).is_some()).count();
                if n > 0 {
                    prop_assert!(matches!(&outcome, MergeOutcome::Rejected { reasons } if reasons.len() == n), "{outcome:?}");
                }
            }
        }

        #[test]
        fn an_approved_payload_was_approved_by_both(p in small_payload(), a in any_review(), b in any_review(), rules in any_rules()) {
            let approved_payload = match merge(&p, &a, &b, &rules) {
                Ok(MergeOutcome::Approved) => p.clone(),
                Ok(MergeOutcome::ApprovedWithEdit { payload }) => {
                    prop_assert_ne!(&payload, &p);
                    payload
                }
                _ => return Ok(()),
            };
            prop_assert!(a.reviewer_id != b.reviewer_id);
            prop_assert!(approved(&a, &p, &approved_payload) && approved(&b, &p, &approved_payload));
        }

        #[test]
        fn merging_is_symmetric(p in small_payload(), a in any_review(), b in any_review(), rules in any_rules()) {
            prop_assert_eq!(merge(&p, &a, &b, &rules).map(mirrored), merge(&p, &b, &a, &rules));
        }

        #[test]
        fn the_same_reviewer_is_always_refused(p in small_payload(), a in any_review(), b in any_review(), rules in any_rules()) {
            let b = Review { reviewer_id: a.reviewer_id.clone(), ..b };
            prop_assert_eq!(merge(&p, &a, &b, &rules), Err(MergeError::SameReviewer(a.reviewer_id.clone())));
        }

        #[test]
        fn a_resolution_approves_only_what_a_reviewer_other_than_the_resolver_approved(
            p in small_payload(), a in any_review(), b in any_review(),
            resolver in prop::sample::select(vec!["usr_a", "usr_b", "usr_c", "usr_d"]),
            pick in prop::sample::select(vec![Resolution::PickProposed, Resolution::PickA, Resolution::PickB]),
        ) {
            let Ok(MergeOutcome::Conflict(c)) = merge(&p, &a, &b, &MergeRules::default()) else { return Ok(()) };
            let approved_payload = match c.resolve(&person(resolver, &[]), &DualRequest::default(), pick) {
                Ok(MergeOutcome::Approved) => p.clone(),
                Ok(MergeOutcome::ApprovedWithEdit { payload }) => payload,
                other => {
                    prop_assert!(other.is_err(), "a pick approves or is refused: {other:?}");
                    return Ok(());
                }
            };
            prop_assert!(resolver != a.reviewer_id && resolver != b.reviewer_id);
            prop_assert!(approved(&a, &p, &approved_payload) || approved(&b, &p, &approved_payload));
        }
    }
}
