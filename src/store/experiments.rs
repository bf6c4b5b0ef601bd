//! The experiment console's records: revisions of the configuration (each the whole document
//! as JSON, with its author and diff) and sticky-bucket documents. The store keeps text; what
//! the documents mean is `experiments::console`'s.

use sqlx::Row;

use super::{Store, StoreResult};
use crate::domain::Millis;

/// One stored revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevisionRecord {
    pub revision: i64,
    pub created_at: Millis,
    pub author: String,
    pub action: String,
    pub subject: String,
    /// The whole configuration after the change (JSON).
    pub config: String,
    /// What changed (JSON list of `{path, before, after}`).
    pub diff: String,
}

/// Most revisions the history answers with.
pub const MAX_HISTORY: usize = 200;
/// Most revisions of one phase the sample-ratio check reads (each is a whole configuration);
/// changes beyond them are not split into epochs.
pub const MAX_EPOCH_REVISIONS: usize = 1_000;

impl Store {
    /// The newest revision number (none yet: `None`). Cheap: the primary key's maximum; every
    /// replica polls it.
    pub async fn latest_experiment_revision(&self) -> StoreResult<Option<i64>> {
        let row = sqlx::query("SELECT MAX(revision) AS r FROM experiment_revisions")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<Option<i64>, _>("r")?)
    }

    /// The newest revision, whole.
    pub async fn current_experiment_config(&self) -> StoreResult<Option<RevisionRecord>> {
        let row = sqlx::query(
            "SELECT revision, created_at, author, action, subject, config, diff \
             FROM experiment_revisions ORDER BY revision DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(revision_from_row).transpose()
    }

    /// Appends revision `base + 1` (1 when `base` is `None`). `None` when `base` is no longer
    /// the newest revision — someone else changed the configuration meanwhile — and nothing
    /// was written.
    pub async fn append_experiment_revision(
        &self,
        base: Option<i64>,
        r: &RevisionRecord,
    ) -> StoreResult<Option<i64>> {
        let mut tx = self.begin_write().await?;
        let latest: Option<i64> =
            sqlx::query("SELECT MAX(revision) AS r FROM experiment_revisions")
                .fetch_one(&mut *tx)
                .await?
                .try_get("r")?;
        if latest != base {
            tx.rollback().await?;
            return Ok(None);
        }
        let revision = base.unwrap_or(0) + 1;
        // Two writers on the same base (PostgreSQL, READ COMMITTED): the second insert finds
        // the key taken and writes nothing.
        let n = sqlx::query(
            "INSERT INTO experiment_revisions (revision, created_at, author, action, subject, config, diff) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (revision) DO NOTHING",
        )
        .bind(revision)
        .bind(r.created_at)
        .bind(r.author.as_str())
        .bind(r.action.as_str())
        .bind(r.subject.as_str())
        .bind(r.config.as_str())
        .bind(r.diff.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n != 1 {
            tx.rollback().await?;
            return Ok(None);
        }
        tx.commit().await?;
        Ok(Some(revision))
    }

    /// Revisions about `subject` (any, when `None`), newest first, at most `limit`.
    pub async fn experiment_revisions(
        &self,
        subject: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<RevisionRecord>> {
        let rows = sqlx::query(
            "SELECT revision, created_at, author, action, subject, config, diff \
             FROM experiment_revisions WHERE ($1 = '' OR subject = $1 OR subject = '*') \
             ORDER BY revision DESC LIMIT $2",
        )
        .bind(subject.unwrap_or(""))
        .bind(limit.min(MAX_HISTORY) as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(revision_from_row).collect()
    }

    /// Revisions about `feature` or `experiment` (or an import, `*`) made at or after `from`,
    /// oldest first, at most `MAX_EPOCH_REVISIONS`: what the weight epochs of a phase that
    /// started at `from` are derived from. On the report pool.
    pub async fn experiment_revisions_since(
        &self,
        from: Millis,
        feature: &str,
        experiment: &str,
    ) -> StoreResult<Vec<RevisionRecord>> {
        let rows = sqlx::query(
            "SELECT revision, created_at, author, action, subject, config, diff \
             FROM experiment_revisions \
             WHERE created_at >= $1 AND (subject = $2 OR subject = $3 OR subject = '*') \
             ORDER BY revision LIMIT $4",
        )
        .bind(from)
        .bind(feature)
        .bind(experiment)
        .bind(MAX_EPOCH_REVISIONS as i64)
        .fetch_all(&self.reports)
        .await?;
        rows.iter().map(revision_from_row).collect()
    }

    /// The sticky-bucket documents (JSON) of these identities, as `(identity, document)`.
    pub async fn sticky_documents(
        &self,
        identities: &[String],
    ) -> StoreResult<Vec<(String, String)>> {
        if identities.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(reads) = &self.sqlite_reads {
            return reads.sticky_documents(identities);
        }
        let placeholders: Vec<String> = (1..=identities.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT identity, assignments FROM sticky_assignments WHERE identity IN ({})",
            placeholders.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in identities {
            q = q.bind(id.as_str());
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| Ok((r.try_get("identity")?, r.try_get("assignments")?)))
            .collect()
    }

    /// Creates or replaces sticky-bucket documents, `(identity, document)`.
    pub async fn save_sticky_documents(
        &self,
        docs: &[(String, String)],
        now: Millis,
    ) -> StoreResult<()> {
        if docs.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for (identity, doc) in docs {
            sqlx::query(
                "INSERT INTO sticky_assignments (identity, assignments, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (identity) DO UPDATE SET assignments = excluded.assignments, updated_at = excluded.updated_at",
            )
            .bind(identity.as_str())
            .bind(doc.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

fn revision_from_row(r: &sqlx::any::AnyRow) -> StoreResult<RevisionRecord> {
    Ok(RevisionRecord {
        revision: r.try_get("revision")?,
        created_at: r.try_get("created_at")?,
        author: r.try_get("author")?,
        action: r.try_get("action")?,
        subject: r.try_get("subject")?,
        config: r.try_get("config")?,
        diff: r.try_get("diff")?,
    })
}

/// What the pre-launch estimate reads: how many profiles were served a page in a window, and
/// how many of them played something from a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Traffic {
    pub profiles: i64,
    pub converted: i64,
}

impl Store {
    /// Profiles served a page in `[from, to]`, and those among them with a PLAY attributed
    /// to a page in that window (on the reports pool: a scan, never in a page's way).
    pub async fn traffic(&self, from: Millis, to: Millis) -> StoreResult<Traffic> {
        let profiles: i64 = sqlx::query(
            "SELECT COUNT(DISTINCT profile_id) AS n FROM page_views WHERE served_at >= $1 AND served_at <= $2",
        )
        .bind(from)
        .bind(to)
        .fetch_one(&self.reports)
        .await?
        .try_get("n")?;
        let converted: i64 = sqlx::query(
            "SELECT COUNT(DISTINCT e.profile_id) AS n FROM events e \
             JOIN page_views v ON v.request_id = e.request_id \
             WHERE e.kind = 'PLAY' AND v.served_at >= $1 AND v.served_at <= $2",
        )
        .bind(from)
        .bind(to)
        .fetch_one(&self.reports)
        .await?
        .try_get("n")?;
        Ok(Traffic {
            profiles,
            converted,
        })
    }
}
