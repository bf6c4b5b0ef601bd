//! `Caller`: the identity a request is made with, after its token or session was validated.

use std::collections::BTreeSet;

use crate::domain::{AccountId, ProfileId};

/// What a caller may do beyond using its own profiles. Roles come from a configurable token
/// claim; every authenticated caller is a viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Uses the profiles of its own account.
    Viewer,
    /// Product manager: experiment reports, previews of other profiles' pages (audited).
    Pm,
    /// Operator: models and everything a PM may do.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Pm, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Pm => "pm",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "pm" => Some(Role::Pm),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Role::parse(s).ok_or_else(|| format!("role must be viewer, pm or admin, got {s:?}"))
    }
}

/// The profile a browser session has selected. A kids profile locks the session: it cannot
/// switch to a grown-up profile without signing in again, and every answer is made for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionProfile {
    pub profile: ProfileId,
    pub kids_locked: bool,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub account: AccountId,
    /// The token's subject, for audit records.
    pub subject: String,
    roles: BTreeSet<Role>,
    /// Set for browser sessions (`selectProfile`); bearer-token callers name profiles per call.
    pub session_profile: Option<SessionProfile>,
    /// The browser session this caller came with, if any (its id's hash, never the id).
    pub session_key: Option<String>,
}

impl Caller {
    pub fn new(account: AccountId, subject: String, roles: impl IntoIterator<Item = Role>) -> Self {
        let mut roles: BTreeSet<Role> = roles.into_iter().collect();
        // An admin may do everything a PM may; everyone signed in is a viewer.
        if roles.contains(&Role::Admin) {
            roles.insert(Role::Pm);
        }
        roles.insert(Role::Viewer);
        Caller {
            account,
            subject,
            roles,
            session_profile: None,
            session_key: None,
        }
    }

    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    pub fn roles(&self) -> impl Iterator<Item = Role> + '_ {
        self.roles.iter().copied()
    }

    /// The profile whose policy governs every answer of this request regardless of the
    /// `profileId` it names: the kids profile a locked session selected. `None` when the
    /// caller is not locked to a kids profile.
    pub fn policy_profile(&self) -> Option<&ProfileId> {
        self.session_profile
            .as_ref()
            .filter(|s| s.kids_locked)
            .map(|s| &s.profile)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_implies_pm_and_everyone_is_a_viewer() {
        let a = Caller::new(AccountId::parse("1").unwrap(), "1".into(), [Role::Admin]);
        assert!(a.has(Role::Pm) && a.has(Role::Viewer) && a.has(Role::Admin));
        let v = Caller::new(AccountId::parse("2").unwrap(), "2".into(), []);
        assert!(v.has(Role::Viewer) && !v.has(Role::Pm) && !v.has(Role::Admin));
    }

    #[test]
    fn only_a_kids_lock_sets_the_policy_profile() {
        let mut c = Caller::new(AccountId::parse("1").unwrap(), "1".into(), []);
        c.session_profile = Some(SessionProfile {
            profile: ProfileId::parse("1").unwrap(),
            kids_locked: false,
        });
        assert_eq!(c.policy_profile(), None);
        c.session_profile = Some(SessionProfile {
            profile: ProfileId::parse("1-kids").unwrap(),
            kids_locked: true,
        });
        assert_eq!(c.policy_profile().map(|p| p.as_str()), Some("1-kids"));
    }
}
