//! The lifecycle of an action request.
//!
//! `received -> gated -> (auto|log: approved) | (block: rejected) | (review|dual: pending)`,
//! `pending -> in_review -> approved | approved_with_edit | rejected | escalated -> ... | expired`,
//! `approved* -> executed | execution_failed`. Terminal states never change.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    InReview,
    Escalated,
    Approved,
    ApprovedWithEdit,
    Rejected,
    Expired,
    Withdrawn,
    Executed,
    ExecutionFailed,
}

impl Status {
    pub const ALL: [Status; 10] = [
        Status::Pending,
        Status::InReview,
        Status::Escalated,
        Status::Approved,
        Status::ApprovedWithEdit,
        Status::Rejected,
        Status::Expired,
        Status::Withdrawn,
        Status::Executed,
        Status::ExecutionFailed,
    ];

    /// States in which a human may still decide.
    pub const OPEN: [Status; 3] = [Status::Pending, Status::InReview, Status::Escalated];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::InReview => "in_review",
            Status::Escalated => "escalated",
            Status::Approved => "approved",
            Status::ApprovedWithEdit => "approved_with_edit",
            Status::Rejected => "rejected",
            Status::Expired => "expired",
            Status::Withdrawn => "withdrawn",
            Status::Executed => "executed",
            Status::ExecutionFailed => "execution_failed",
        }
    }

    /// A human-readable label for the inbox.
    pub fn label(self) -> &'static str {
        match self {
            Status::Pending => "Pending",
            Status::InReview => "In review",
            Status::Escalated => "Escalated",
            Status::Approved => "Approved",
            Status::ApprovedWithEdit => "Approved with edit",
            Status::Rejected => "Rejected",
            Status::Expired => "Expired",
            Status::Withdrawn => "Withdrawn",
            Status::Executed => "Executed",
            Status::ExecutionFailed => "Execution failed",
        }
    }

    pub fn is_open(self) -> bool {
        Status::OPEN.contains(&self)
    }

    /// Whether the agent may execute: only approvals that were not yet executed.
    pub fn is_approval(self) -> bool {
        matches!(self, Status::Approved | Status::ApprovedWithEdit)
    }

    /// Whether the lifecycle allows moving from `self` to `next`.
    pub fn can_become(self, next: Status) -> bool {
        use Status::*;
        match self {
            Pending => matches!(
                next,
                InReview | Escalated | Approved | ApprovedWithEdit | Rejected | Expired | Withdrawn
            ),
            InReview => matches!(
                next,
                Pending | Escalated | Approved | ApprovedWithEdit | Rejected | Expired | Withdrawn
            ),
            Escalated => matches!(
                next,
                InReview | Approved | ApprovedWithEdit | Rejected | Expired | Withdrawn
            ),
            Approved | ApprovedWithEdit => matches!(next, Executed | ExecutionFailed),
            Rejected | Expired | Withdrawn | Executed | ExecutionFailed => false,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status {0:?}")]
pub struct UnknownStatus(pub String);

impl FromStr for Status {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>(), Ok(s));
        }
        assert!("approved ".parse::<Status>().is_err());
    }

    #[test]
    fn terminal_states_never_change() {
        for s in [
            Status::Rejected,
            Status::Expired,
            Status::Withdrawn,
            Status::Executed,
            Status::ExecutionFailed,
        ] {
            for next in Status::ALL {
                assert!(!s.can_become(next), "{s} must not become {next}");
            }
        }
    }

    #[test]
    fn approvals_only_move_to_execution_outcomes() {
        for s in [Status::Approved, Status::ApprovedWithEdit] {
            let nexts: Vec<_> = Status::ALL
                .into_iter()
                .filter(|n| s.can_become(*n))
                .collect();
            assert_eq!(nexts, vec![Status::Executed, Status::ExecutionFailed]);
        }
    }

    #[test]
    fn open_states_can_be_decided_and_withdrawn() {
        for s in Status::OPEN {
            assert!(s.is_open());
            for next in [
                Status::Approved,
                Status::Rejected,
                Status::Expired,
                Status::Withdrawn,
            ] {
                assert!(s.can_become(next), "{s} -> {next}");
            }
            assert!(
                !s.can_become(Status::Executed),
                "nothing executes without a decision"
            );
        }
    }
}
