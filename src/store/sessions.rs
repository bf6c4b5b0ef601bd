//! Identity records: browser sessions (by the hash of their id), profile renames and
//! removals, and the audit of PM previews.

use sqlx::Row;

use super::{Store, StoreResult};
use crate::domain::{AccountId, Millis, ProfileId};

/// A stored browser session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub account: AccountId,
    pub subject: String,
    /// Role names, space-separated, as the token carried them.
    pub roles: String,
    pub profile: Option<ProfileId>,
    pub kids_locked: bool,
    pub expires_at: Millis,
}

/// One PM preview of another profile's page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewRecord {
    pub previewed_at: Millis,
    pub viewer_account: String,
    pub viewer_subject: String,
    pub profile_id: String,
    pub request_id: String,
}

impl Store {
    /// Stores a new session; expired sessions are deleted on the way.
    pub async fn create_session(
        &self,
        id_hash: &str,
        s: &SessionRecord,
        now: Millis,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO sessions (id_hash, account_id, subject, roles, profile_id, kids_locked, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id_hash)
        .bind(s.account.as_str())
        .bind(s.subject.as_str())
        .bind(s.roles.as_str())
        .bind(s.profile.as_ref().map(|p| p.as_str().to_owned()))
        .bind(i64::from(s.kids_locked))
        .bind(now)
        .bind(s.expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The session with this id hash, unless it has expired.
    pub async fn session(&self, id_hash: &str, now: Millis) -> StoreResult<Option<SessionRecord>> {
        let row = sqlx::query(
            "SELECT account_id, subject, roles, profile_id, kids_locked, expires_at \
             FROM sessions WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(SessionRecord {
            account: AccountId::parse(&r.try_get::<String, _>("account_id")?)?,
            subject: r.try_get("subject")?,
            roles: r.try_get("roles")?,
            profile: r
                .try_get::<Option<String>, _>("profile_id")?
                .map(|p| ProfileId::parse(&p))
                .transpose()?,
            kids_locked: r.try_get::<i64, _>("kids_locked")? != 0,
            expires_at: r.try_get("expires_at")?,
        }))
    }

    /// Sets the profile a session watches as.
    pub async fn select_session_profile(
        &self,
        id_hash: &str,
        profile: &ProfileId,
        kids_locked: bool,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE sessions SET profile_id = $1, kids_locked = $2 WHERE id_hash = $3")
            .bind(profile.as_str())
            .bind(i64::from(kids_locked))
            .bind(id_hash)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_session(&self, id_hash: &str) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Renames a profile of `account`; false when it has no such profile.
    pub async fn rename_profile(
        &self,
        account: &AccountId,
        profile: &ProfileId,
        name: &str,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE profiles SET name = $1 WHERE id = $2 AND account_id = $3 AND removed_at IS NULL",
        )
        .bind(name)
        .bind(profile.as_str())
        .bind(account.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Removes a profile of `account` (its history stays for reports); false when it has no
    /// such profile. Sessions watching as it lose their selection.
    pub async fn remove_profile(
        &self,
        account: &AccountId,
        profile: &ProfileId,
        now: Millis,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE profiles SET removed_at = $1 WHERE id = $2 AND account_id = $3 AND removed_at IS NULL",
        )
        .bind(now)
        .bind(profile.as_str())
        .bind(account.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("UPDATE sessions SET profile_id = NULL, kids_locked = 0 WHERE profile_id = $1")
            .bind(profile.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Records that `viewer` previewed `profile`'s page.
    pub async fn record_preview(&self, p: &PreviewRecord) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO preview_audit (previewed_at, viewer_account, viewer_subject, profile_id, request_id) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(p.previewed_at)
        .bind(p.viewer_account.as_str())
        .bind(p.viewer_subject.as_str())
        .bind(p.profile_id.as_str())
        .bind(p.request_id.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The newest previews, newest first.
    pub async fn previews(&self, limit: usize) -> StoreResult<Vec<PreviewRecord>> {
        let rows = sqlx::query(
            "SELECT previewed_at, viewer_account, viewer_subject, profile_id, request_id \
             FROM preview_audit ORDER BY previewed_at DESC, request_id DESC LIMIT $1",
        )
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PreviewRecord {
                    previewed_at: r.try_get("previewed_at")?,
                    viewer_account: r.try_get("viewer_account")?,
                    viewer_subject: r.try_get("viewer_subject")?,
                    profile_id: r.try_get("profile_id")?,
                    request_id: r.try_get("request_id")?,
                })
            })
            .collect()
    }
}
