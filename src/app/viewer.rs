//! The profile a request is made for. Every request that names a profile (a home page, a
//! filtered catalogue query, recorded events) looks it up here, so "no such profile" is one
//! decision with one error, which the API reports as `NOT_FOUND`.

use super::AppState;
use crate::domain::{Profile, ProfileId, TitleId};
use crate::engine::history::History;
use crate::store::StoreError;

/// A failed request to the app layer: something it names does not exist (the client's
/// mistake), or the service failed (logged; the client learns no details). A store failure
/// keeps its class, so that the API can tell a database briefly out of reach (`UNAVAILABLE`,
/// worth retrying) from a defect (`INTERNAL`).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("no profile {0}")]
    ProfileNotFound(ProfileId),
    #[error("no title {0}")]
    TitleNotFound(TitleId),
    /// The request's profile may not see this title (`policy`): the API's `FORBIDDEN_TITLE`.
    #[error("title {0} is not available to this profile")]
    ForbiddenTitle(TitleId),
    /// The caller is signed in but its role or session does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// The request is invalid (a bad name, a maturity limit outside the allowed set).
    #[error("{0}")]
    BadInput(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AppState {
    /// The profile `id`; `AppError::ProfileNotFound` when there is none.
    pub async fn profile(&self, id: &ProfileId) -> Result<Profile, AppError> {
        self.store
            .profile(id)
            .await?
            .ok_or_else(|| AppError::ProfileNotFound(id.clone()))
    }

    /// The profile with its viewing history: what a personalised or policy-filtered answer is
    /// made for.
    pub async fn viewer(&self, id: &ProfileId) -> Result<(Profile, History), AppError> {
        self.store
            .viewer(id)
            .await?
            .ok_or_else(|| AppError::ProfileNotFound(id.clone()))
    }
}
