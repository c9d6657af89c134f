//! People and machine principals: users, roles, teams and agents; sign-in and sessions.

use serde::{Deserialize, Serialize};

pub mod notifications;
pub mod pages;
pub mod password_policy;

#[cfg(feature = "ssr")]
pub mod handlers;
#[cfg(feature = "ssr")]
pub mod password;
#[cfg(feature = "ssr")]
pub mod repo;
#[cfg(feature = "ssr")]
pub mod session;
#[cfg(feature = "ssr")]
pub mod throttle;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Reviewer,
    SeniorReviewer,
    Admin,
    Auditor,
}

impl Role {
    pub const ALL: [Role; 4] = [
        Role::Reviewer,
        Role::SeniorReviewer,
        Role::Admin,
        Role::Auditor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reviewer => "reviewer",
            Role::SeniorReviewer => "senior_reviewer",
            Role::Admin => "admin",
            Role::Auditor => "auditor",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Role::Reviewer => "Reviewer",
            Role::SeniorReviewer => "Senior reviewer",
            Role::Admin => "Admin",
            Role::Auditor => "Auditor",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// The signed-in person, as every page and server function sees them. Deliberately holds no
/// secret: the password hash never leaves the repository layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentUser {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub roles: Vec<Role>,
}

impl CurrentUser {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Reviewers, senior reviewers and admins may decide; auditors only read.
    pub fn may_decide(&self) -> bool {
        self.has(Role::Reviewer) || self.has(Role::SeniorReviewer) || self.has(Role::Admin)
    }
}
