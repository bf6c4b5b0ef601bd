//! Who may use which profile. Every profile-scoped request goes through `owned_profile` (or
//! `owned_viewer`; the home page checks the account where it reads the profile): a profile of
//! another account answers exactly like a missing one (`ProfileNotFound`), so ids cannot be
//! enumerated; a session locked to a kids profile sees no other profile. Accounts manage their
//! own profiles here (create, rename, remove), a session selects the profile it watches as,
//! and a PM's preview of another profile's page is audited.

use super::home::{HomePage, HomeRequest};
use super::{AppError, AppState};
use crate::auth::{Caller, Role, SessionProfile};
use crate::domain::{self, MaturityRating, Profile, ProfileId};
use crate::engine::filters;
use crate::engine::history::History;
use crate::store::sessions::PreviewRecord;

/// Most profiles an account may have.
pub const MAX_PROFILES_PER_ACCOUNT: usize = 10;

/// A session locked to a kids profile may use no other: `ProfileNotFound`, as for a missing
/// profile.
fn session_may_use(caller: &Caller, id: &ProfileId) -> Result<(), AppError> {
    match caller.policy_profile() {
        Some(locked) if locked != id => Err(AppError::ProfileNotFound(id.clone())),
        _ => Ok(()),
    }
}

/// A new profile, as an account asks for it.
pub struct NewProfile {
    pub id: ProfileId,
    pub name: String,
    pub is_kids: bool,
    pub maturity_limit: Option<MaturityRating>,
    pub country: Option<domain::Country>,
    pub onboarding_genres: Vec<String>,
}

impl AppState {
    /// The caller's profile `id`. `ProfileNotFound` when there is none, when another account
    /// owns it, and when the caller's session is locked to another (kids) profile.
    pub async fn owned_profile(
        &self,
        caller: &Caller,
        id: &ProfileId,
    ) -> Result<Profile, AppError> {
        session_may_use(caller, id)?;
        match self.store.profile(id).await? {
            Some(p) if p.account_id == caller.account => Ok(p),
            _ => Err(AppError::ProfileNotFound(id.clone())),
        }
    }

    /// The caller's profile with its history: what a personalised or filtered answer is for.
    pub async fn owned_viewer(
        &self,
        caller: &Caller,
        id: &ProfileId,
    ) -> Result<(Profile, History), AppError> {
        session_may_use(caller, id)?;
        match self.store.viewer(id).await? {
            Some((profile, history)) if profile.account_id == caller.account => {
                Ok((profile, history))
            }
            _ => Err(AppError::ProfileNotFound(id.clone())),
        }
    }

    /// The profiles the caller may pick: its account's (only the locked one in a kids
    /// session).
    pub async fn caller_profiles(&self, caller: &Caller) -> Result<Vec<Profile>, AppError> {
        let mut profiles = self.store.profiles_of(&caller.account).await?;
        if let Some(locked) = caller.policy_profile() {
            profiles.retain(|p| &p.id == locked);
        }
        Ok(profiles)
    }

    /// The home page of one of the caller's profiles.
    pub async fn caller_home(
        &self,
        caller: &Caller,
        request: HomeRequest,
    ) -> Result<HomePage, AppError> {
        if !request.forced_variations.is_empty() && !caller.has(Role::Pm) {
            return Err(AppError::Forbidden(
                "forcedVariations needs the pm role".into(),
            ));
        }
        // A kids session sees no other profile. Whether the profile is the caller's account's
        // is checked where the page reads it (`home_page_for`: one read of the profile, not
        // two), with the same answer for another account's profile as for a missing one.
        // While the database is down the page is served from what this replica remembers of
        // the caller's profile, or kids-safe, and marked degraded.
        session_may_use(caller, &request.profile_id)?;
        let database = self.serving.database.allows();
        let id = request.profile_id.clone();
        self.home_page_for(request, Some(&caller.account), database)
            .await?
            .ok_or(AppError::ProfileNotFound(id))
    }

    /// A PM's preview of any profile's page: served like the page, logged as no view, and
    /// audited (who previewed whom, when).
    pub async fn preview_home(
        &self,
        caller: &Caller,
        mut request: HomeRequest,
    ) -> Result<HomePage, AppError> {
        if !caller.has(Role::Pm) {
            return Err(AppError::Forbidden("previews need the pm role".into()));
        }
        request.preview = true;
        let id = request.profile_id.clone();
        let page = self
            .home_page(request)
            .await?
            .ok_or_else(|| AppError::ProfileNotFound(id.clone()))?;
        self.store
            .record_preview(&PreviewRecord {
                // When it really happened, not the serving clock (which may replay 1998).
                previewed_at: crate::clock::Clock::System.now(),
                viewer_account: caller.account.to_string(),
                viewer_subject: caller.subject.clone(),
                profile_id: id.to_string(),
                request_id: page.request_id.clone(),
            })
            .await?;
        Ok(page)
    }

    /// Creates a profile for the caller's account (never another's).
    pub async fn create_profile(
        &self,
        caller: &Caller,
        new: NewProfile,
    ) -> Result<Profile, AppError> {
        if caller.policy_profile().is_some() {
            return Err(AppError::Forbidden(
                "a kids session cannot manage profiles; sign in again".into(),
            ));
        }
        let name = valid_name(&new.name)?;
        let maturity_limit = valid_limit(new.is_kids, new.maturity_limit)?;
        if self.store.profiles_of(&caller.account).await?.len() >= MAX_PROFILES_PER_ACCOUNT {
            return Err(AppError::BadInput(format!(
                "an account has at most {MAX_PROFILES_PER_ACCOUNT} profiles"
            )));
        }
        let profile = Profile {
            id: new.id,
            account_id: caller.account.clone(),
            name,
            is_kids: new.is_kids,
            maturity_limit,
            country: new.country,
            onboarding_genres: new.onboarding_genres,
        };
        if !self
            .store
            .create_profile(&profile, self.clock.now())
            .await?
        {
            return Err(AppError::BadInput(format!(
                "profile id {} is taken",
                profile.id
            )));
        }
        Ok(profile)
    }

    pub async fn rename_profile(
        &self,
        caller: &Caller,
        id: &ProfileId,
        name: &str,
    ) -> Result<Profile, AppError> {
        let name = valid_name(name)?;
        self.owned_profile(caller, id).await?;
        if caller.policy_profile().is_some() {
            return Err(AppError::Forbidden(
                "a kids session cannot manage profiles; sign in again".into(),
            ));
        }
        if !self
            .store
            .rename_profile(&caller.account, id, &name)
            .await?
        {
            return Err(AppError::ProfileNotFound(id.clone()));
        }
        self.owned_profile(caller, id).await
    }

    pub async fn remove_profile(&self, caller: &Caller, id: &ProfileId) -> Result<(), AppError> {
        self.owned_profile(caller, id).await?;
        if caller.policy_profile().is_some() {
            return Err(AppError::Forbidden(
                "a kids session cannot manage profiles; sign in again".into(),
            ));
        }
        if !self
            .store
            .remove_profile(&caller.account, id, self.clock.now())
            .await?
        {
            return Err(AppError::ProfileNotFound(id.clone()));
        }
        Ok(())
    }

    /// Makes `id` the profile the caller's browser session watches as. A session locked to a
    /// kids profile cannot leave it (sign out and in again to switch).
    pub async fn select_profile(
        &self,
        caller: &Caller,
        id: &ProfileId,
    ) -> Result<(Profile, SessionProfile), AppError> {
        let Some(session) = caller.session_key.as_deref() else {
            return Err(AppError::BadInput(
                "selectProfile is for browser sessions; token clients name profileId per call"
                    .into(),
            ));
        };
        if let Some(locked) = caller.policy_profile()
            && locked != id
        {
            return Err(AppError::Forbidden(
                "this session is locked to a kids profile; sign in again to switch".into(),
            ));
        }
        let profile = self.owned_profile(caller, id).await?;
        let selected = SessionProfile {
            profile: id.clone(),
            kids_locked: profile.is_kids,
        };
        self.store
            .select_session_profile(session, id, profile.is_kids)
            .await?;
        Ok((profile, selected))
    }
}

/// A profile name under the one rule for it (`domain::ProfileName`).
fn valid_name(name: &str) -> Result<String, AppError> {
    domain::ProfileName::parse(name)
        .map(domain::ProfileName::into_string)
        .map_err(|e| AppError::BadInput(e.0))
}

/// A maturity limit under the one rule for kids profiles (`filters::check_maturity_limit`).
fn valid_limit(
    is_kids: bool,
    limit: Option<MaturityRating>,
) -> Result<Option<MaturityRating>, AppError> {
    filters::check_maturity_limit(is_kids, limit)
        .map(|()| limit)
        .map_err(|e| AppError::BadInput(format!("maturityLimit: {}", e.0)))
}
