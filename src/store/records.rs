//! Writing events and keeping the watch-state projection in step with them.

use std::collections::{HashMap, HashSet};

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, AssertSqlSafe, Row};

use super::logging::{count_attributed, page_titles};
use super::outbox::StreamEvent;
use super::{Backend, Store, StoreResult, watch_state_from_row};
use crate::domain::{EventAction, EventKind, Millis, ProfileId, TitleId};
use crate::engine::history::WatchState;
use futures_util::TryStreamExt;

use crate::engine::catalog::Catalog;
use crate::engine::training_set::{TrainingSet, TrainingSetBuilder};

/// A bind parameter for the dynamic multi-row statements below.
#[derive(Debug, Clone)]
pub(super) enum Param {
    Text(String),
    OptText(Option<String>),
    Int(i64),
    OptInt(Option<i64>),
    OptFloat(Option<f64>),
}

/// A NULL that PostgreSQL sees as `double precision`. sqlx 0.9's `Any` driver maps a NULL of
/// `f64` to `float4` and a NULL of `f32` to `float8` (the two are swapped); a statement first
/// prepared with a `float4` NULL then rejects real `f64` values ("incorrect binary data format").
pub(super) const NULL_DOUBLE: Option<f32> = None;

/// `items` in chunks of a few sizes only: `max` (a power of two) while that many are left,
/// then powers of two, largest first. A statement over a chunk has one text per size, and sqlx
/// keeps prepared statements by text: with a chunk of any size, the impression writer's
/// batches (whose sizes follow the traffic) prepared their statements anew almost every time,
/// at a few hundred thousand instructions each — more than the extra statements cost.
pub(super) fn shaped_chunks<T>(items: &[T], max: usize) -> Vec<&[T]> {
    debug_assert!(max.is_power_of_two());
    let mut chunks = Vec::new();
    let mut rest = items;
    while !rest.is_empty() {
        let size = if rest.len() >= max {
            max
        } else {
            1 << rest.len().ilog2()
        };
        let (chunk, after) = rest.split_at(size);
        chunks.push(chunk);
        rest = after;
    }
    chunks
}

/// `$first,…,$(first + n − 1)`: the bind placeholders of `n` consecutive values.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A statement with one `IN (…)` list: `{list}` in `sql` becomes the placeholders of
/// `values`, which are bound to them in order.
pub(super) fn with_in_list<'q>(sql: &str, values: &[&str]) -> Query<'q, Any, AnyArguments> {
    let sql = sql.replace("{list}", &placeholders(1, values.len()));
    values.iter().fold(sqlx::query(AssertSqlSafe(sql)), |q, v| {
        q.bind(v.to_string())
    })
}

/// `<head> VALUES (…), (…) … <tail>` for many rows at once: a multi-row `INSERT`, or a
/// statement over a `WITH name (…) AS (VALUES …)` table. `None` without rows.
pub(super) fn with_values(
    head: &str,
    tail: &str,
    rows: Vec<Vec<Param>>,
) -> Option<Query<'static, Any, AnyArguments>> {
    let width = rows.first().map(Vec::len)?;
    let values: Vec<String> = (0..rows.len())
        .map(|r| format!("({})", placeholders(r * width + 1, width)))
        .collect();
    let sql = format!("{head} VALUES {} {tail}", values.join(","));
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for p in rows.into_iter().flatten() {
        q = match p {
            Param::Text(v) => q.bind(v),
            Param::OptText(v) => q.bind(v),
            Param::Int(v) => q.bind(v),
            Param::OptInt(v) => q.bind(v),
            Param::OptFloat(Some(v)) => q.bind(v),
            Param::OptFloat(None) => q.bind(NULL_DOUBLE),
        };
    }
    Some(q)
}

/// `INSERT … VALUES (…), (…) … <on_conflict>` for many rows at once; returns rows affected.
pub(super) async fn insert_many(
    tx: &mut AnyConnection,
    insert: &str,
    on_conflict: &str,
    rows: Vec<Vec<Param>>,
) -> StoreResult<u64> {
    match with_values(insert, on_conflict, rows) {
        Some(q) => Ok(q.execute(&mut *tx).await?.rows_affected()),
        None => Ok(0),
    }
}

/// Like `insert_many`, with a `RETURNING` clause in `tail`: the rows it returns (with
/// `ON CONFLICT DO NOTHING`, only the rows actually inserted).
pub(super) async fn insert_many_returning(
    tx: &mut AnyConnection,
    insert: &str,
    tail: &str,
    rows: Vec<Vec<Param>>,
) -> StoreResult<Vec<AnyRow>> {
    match with_values(insert, tail, rows) {
        Some(q) => Ok(q.fetch_all(&mut *tx).await?),
        None => Ok(vec![]),
    }
}

fn watch_state_params(profile: &ProfileId, s: &WatchState) -> Vec<Param> {
    vec![
        Param::Text(profile.to_string()),
        Param::Text(s.title_id.to_string()),
        Param::OptFloat(Some(s.progress.get())),
        Param::Int(i64::from(s.completed)),
        Param::OptInt(s.last_watched_at),
        Param::OptFloat(s.rating.map(|r| r.get())),
        Param::OptInt(s.rated_at),
        Param::Int(s.thumbs.as_i64()),
        Param::OptInt(s.thumbs_at),
    ]
}

const WATCH_STATE_INSERT: &str = "INSERT INTO watch_state \
    (profile_id, title_id, progress, completed, last_watched_at, rating, rated_at, thumbs, thumbs_at)";
const WATCH_STATE_UPSERT: &str = "ON CONFLICT (profile_id, title_id) DO UPDATE SET \
    progress = excluded.progress, completed = excluded.completed, \
    last_watched_at = excluded.last_watched_at, rating = excluded.rating, \
    rated_at = excluded.rated_at, thumbs = excluded.thumbs, thumbs_at = excluded.thumbs_at";

/// Recomputes the watch state of `profiles` from their whole event log.
pub(super) async fn rebuild_watch_state(
    tx: &mut AnyConnection,
    profiles: &[ProfileId],
) -> StoreResult<()> {
    if profiles.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = profiles.iter().map(ProfileId::as_str).collect();
    let select = with_in_list(
        "SELECT profile_id, title_id, kind, value, occurred_at FROM events \
         WHERE profile_id IN ({list}) ORDER BY occurred_at, id",
        &ids,
    );
    let mut states: HashMap<(String, String), WatchState> = HashMap::new();
    for row in select.fetch_all(&mut *tx).await? {
        let profile: String = row.try_get("profile_id")?;
        let title: String = row.try_get("title_id")?;
        let kind: EventKind = row.try_get::<String, _>("kind")?.parse()?;
        let action = EventAction::from_parts(kind, row.try_get("value")?)?;
        let at: i64 = row.try_get("occurred_at")?;
        let title_id = TitleId::parse(&title)?;
        states
            .entry((profile, title))
            .or_insert_with(|| WatchState::new(title_id))
            .apply(action, at);
    }
    with_in_list("DELETE FROM watch_state WHERE profile_id IN ({list})", &ids)
        .execute(&mut *tx)
        .await?;
    let mut rows = Vec::with_capacity(states.len());
    for ((profile, _), state) in states {
        rows.push(watch_state_params(&ProfileId::parse(&profile)?, &state));
    }
    for chunk in rows.chunks(300) {
        insert_many(tx, WATCH_STATE_INSERT, "", chunk.to_vec()).await?;
    }
    Ok(())
}

/// Counts newly stored PLAY/COMPLETE events (request id, kind, title) towards the experiment
/// outcomes of the page they name, when that page is stored and showed the title. A page the
/// impression log has not written yet counts them when it is written (`logging.rs`).
async fn attribute_to_pages(
    tx: &mut AnyConnection,
    profile: &ProfileId,
    events: &[(&str, &str, &TitleId)],
) -> StoreResult<()> {
    let mut pages: HashMap<&str, Option<(Millis, HashSet<String>)>> = HashMap::new();
    for (request, kind, title) in events {
        if !pages.contains_key(request) {
            let row = sqlx::query(
                "SELECT served_at, items FROM page_views WHERE request_id = $1 AND profile_id = $2",
            )
            .bind(*request)
            .bind(profile.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            let page = match row {
                Some(r) => Some((
                    r.try_get::<i64, _>("served_at")?,
                    page_titles(&r.try_get::<String, _>("items")?)?,
                )),
                None => None,
            };
            pages.insert(request, page);
        }
        if let Some(Some((served_at, titles))) = pages.get(request)
            && titles.contains(title.as_str())
        {
            count_attributed(tx, profile.as_str(), *served_at, kind, 1).await?;
        }
    }
    Ok(())
}

/// An event that passed validation and is ready to be stored.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub title_id: TitleId,
    pub action: EventAction,
    pub occurred_at: Millis,
    pub client_event_id: String,
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordSummary {
    pub accepted: usize,
    pub duplicates: usize,
}

impl Store {
    /// Stores a batch of events for one profile and updates its watch state, atomically.
    /// An event whose client id the profile already used is skipped (and counted).
    pub async fn record_events(
        &self,
        profile: &ProfileId,
        events: &[NewEvent],
        received_at: Millis,
    ) -> StoreResult<RecordSummary> {
        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            // Serialise writers per profile so that two concurrent batches cannot both read
            // the same watch state and overwrite each other's update.
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))::TEXT AS locked")
                .bind(profile.as_str())
                .fetch_one(&mut *tx)
                .await?;
        }
        // Trending counts an event under the profile's country at the time it happened.
        let country: Option<String> = sqlx::query("SELECT country FROM profiles WHERE id = $1")
            .bind(profile.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get("country"))
            .transpose()?
            .flatten();
        let mut streamed: Vec<StreamEvent> = Vec::new();
        let mut summary = RecordSummary::default();
        let mut changed: HashMap<TitleId, WatchState> = HashMap::new();
        let mut attributable: Vec<(&str, &str, &TitleId)> = Vec::new();
        for e in events {
            let insert = sqlx::query(
                "INSERT INTO events (profile_id, title_id, kind, value, occurred_at, received_at, client_event_id, request_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (profile_id, client_event_id) DO NOTHING",
            )
            .bind(profile.as_str())
            .bind(e.title_id.as_str())
            .bind(e.action.kind().as_str());
            let insert = match e.action.value() {
                Some(v) => insert.bind(v),
                None => insert.bind(NULL_DOUBLE),
            };
            let inserted = insert
                .bind(e.occurred_at)
                .bind(received_at)
                .bind(e.client_event_id.as_str())
                .bind(e.request_id.as_deref())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if inserted == 0 {
                summary.duplicates += 1;
                continue;
            }
            summary.accepted += 1;
            streamed.push(StreamEvent {
                profile_id: profile.to_string(),
                country: country.clone(),
                title_id: e.title_id.to_string(),
                kind: e.action.kind().as_str().to_owned(),
                value: e.action.value(),
                occurred_at: e.occurred_at,
                client_event_id: e.client_event_id.clone(),
            });
            if let Some(request) = e.request_id.as_deref()
                && matches!(e.action.kind(), EventKind::Play | EventKind::Complete)
            {
                attributable.push((request, e.action.kind().as_str(), &e.title_id));
            }
            if !changed.contains_key(&e.title_id) {
                let row = sqlx::query(
                    "SELECT title_id, progress, completed, last_watched_at, rating, rated_at, thumbs, thumbs_at \
                     FROM watch_state WHERE profile_id = $1 AND title_id = $2",
                )
                .bind(profile.as_str())
                .bind(e.title_id.as_str())
                .fetch_optional(&mut *tx)
                .await?;
                let state = match row {
                    Some(r) => watch_state_from_row(&r)?,
                    None => WatchState::new(e.title_id.clone()),
                };
                changed.insert(e.title_id.clone(), state);
            }
            if let Some(state) = changed.get_mut(&e.title_id) {
                state.apply(e.action, e.occurred_at);
            }
        }
        let rows: Vec<Vec<Param>> = changed
            .values()
            .map(|s| watch_state_params(profile, s))
            .collect();
        for chunk in shaped_chunks(&rows, 256) {
            insert_many(
                &mut tx,
                WATCH_STATE_INSERT,
                WATCH_STATE_UPSERT,
                chunk.to_vec(),
            )
            .await?;
        }
        attribute_to_pages(&mut tx, profile, &attributable).await?;
        // The outbox rows commit with the events: acknowledged means on its way to the stream.
        super::outbox::enqueue(&mut tx, &streamed, received_at).await?;
        tx.commit().await?;
        Ok(summary)
    }

    /// Per title, how many profiles have a watch state for it (the popularity fallback when a
    /// model artifact cannot be read).
    pub async fn title_interaction_counts(&self) -> StoreResult<Vec<(TitleId, i64)>> {
        let rows = sqlx::query("SELECT title_id, COUNT(*) AS n FROM watch_state GROUP BY title_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    TitleId::parse(&r.try_get::<String, _>("title_id")?)?,
                    r.try_get::<i64, _>("n")?,
                ))
            })
            .collect()
    }

    /// Profiles with events since `since`, most recently active first, at most `limit`: whose
    /// lists `marquee precompute` warms.
    pub async fn recently_active_profiles(
        &self,
        since: Millis,
        limit: i64,
    ) -> StoreResult<Vec<ProfileId>> {
        let rows = sqlx::query(
            "SELECT profile_id, MAX(occurred_at) AS last FROM events WHERE occurred_at >= $1 \
             GROUP BY profile_id ORDER BY last DESC, profile_id LIMIT $2",
        )
        .bind(since)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok(ProfileId::parse(&r.try_get::<String, _>("profile_id")?)?))
            .collect()
    }

    /// Every (profile, title) relation with a positive or neutral signal, for training, in the
    /// compact form training reads. Rows are streamed, never all held as records: at 50M
    /// relations owned ids alone would be several gigabytes. Titles the catalogue does not
    /// have are skipped.
    pub async fn training_set(&self, catalog: &Catalog) -> StoreResult<TrainingSet> {
        // Ordered so that profile numbering, and so training, does not depend on the order
        // the database happens to return rows in.
        let mut rows = sqlx::query(
            "SELECT w.profile_id, w.title_id, w.progress, w.completed, w.last_watched_at, w.rating, \
                    w.rated_at, w.thumbs, w.thumbs_at, p.country \
             FROM watch_state w JOIN profiles p ON p.id = w.profile_id \
             ORDER BY w.profile_id, w.title_id",
        )
        .fetch(&self.pool);
        let mut builder = TrainingSetBuilder::default();
        while let Some(r) = rows.try_next().await? {
            let state = watch_state_from_row(&r)?;
            let Some(title) = catalog.idx(&state.title_id) else {
                continue;
            };
            let country = r
                .try_get::<Option<String>, _>("country")?
                .map(|c| crate::domain::Country::parse(&c))
                .transpose()?;
            builder.push_state(
                &r.try_get::<String, _>("profile_id")?,
                title,
                &state,
                country.as_ref(),
            );
        }
        Ok(builder.finish())
    }

    /// A cheap description of the data a model is trained on: event count, newest event id
    /// and time, and — once TMDb metadata is stored — how many titles have it and when it was
    /// last fetched (its people feed the content neighbours). Two trainings with the same
    /// fingerprint saw the same data.
    pub async fn data_fingerprint(&self) -> StoreResult<String> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MAX(id) AS last_id, MAX(occurred_at) AS last_at FROM events",
        )
        .fetch_one(&self.pool)
        .await?;
        let mut fingerprint = format!(
            "events={};last_id={};last_at={}",
            row.try_get::<i64, _>("n")?,
            row.try_get::<Option<i64>, _>("last_id")?.unwrap_or(0),
            row.try_get::<Option<i64>, _>("last_at")?.unwrap_or(0)
        );
        let meta = sqlx::query("SELECT COUNT(*) AS n, MAX(fetched_at) AS at FROM title_metadata")
            .fetch_one(&self.pool)
            .await?;
        let titles: i64 = meta.try_get("n")?;
        // Absent without metadata, so fingerprints of earlier models stay valid.
        if titles > 0 {
            fingerprint.push_str(&format!(
                ";metadata={titles}@{}",
                meta.try_get::<Option<i64>, _>("at")?.unwrap_or(0)
            ));
        }
        Ok(fingerprint)
    }
}

#[cfg(test)]
mod tests {
    use super::shaped_chunks;
    use proptest::prelude::*;

    proptest! {
        /// Every item once, in order, in chunks of at most `max`, each a power of two.
        #[test]
        fn shaped_chunks_cover_everything_in_few_sizes(len in 0usize..600, max_log in 0u32..9) {
            let max = 1usize << max_log;
            let items: Vec<usize> = (0..len).collect();
            let chunks = shaped_chunks(&items, max);
            let joined: Vec<usize> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
            prop_assert_eq!(&joined, &items);
            for c in &chunks {
                prop_assert!(c.len().is_power_of_two() && c.len() <= max);
            }
            // Full chunks first, then at most one chunk of each smaller size.
            let small: Vec<usize> = chunks.iter().map(|c| c.len()).filter(|&n| n < max).collect();
            prop_assert!(small.windows(2).all(|w| w[0] > w[1]));
        }
    }
}
