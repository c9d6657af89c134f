//! People and machine principals: users, roles, teams and agents.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Reviewer,
    SeniorReviewer,
    Admin,
    Auditor,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reviewer => "reviewer",
            Role::SeniorReviewer => "senior_reviewer",
            Role::Admin => "admin",
            Role::Auditor => "auditor",
        }
    }
}

#[cfg(feature = "ssr")]
pub mod repo;
