//! TMDb metadata: what `marquee import tmdb` looks up, and storing what it found — a batch in
//! one transaction, replacing what an earlier run stored for those titles.

use anyhow::Result;
use sqlx::Row;

use super::Store;
use super::records::{Param, insert_many, with_in_list};
use crate::domain::{MaturityRating, Millis, TitleId};
use crate::ingest::tmdb::{Match, MatchMethod, TitleMetadata, TmdbId, WorkItem};

/// Rows per multi-row statement (PostgreSQL allows 65,535 parameters; 15 columns × 400).
const CHUNK: usize = 400;

impl Store {
    /// Every catalogue title in id order, with its dataset rating and any stored match.
    pub async fn tmdb_work(&self) -> Result<Vec<WorkItem>> {
        let rows = sqlx::query(
            "SELECT t.id, t.name, t.release_year, t.maturity_rating, m.tmdb_id, m.match_method, m.match_score \
             FROM titles t LEFT JOIN title_metadata m ON m.title_id = t.id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut items = rows
            .iter()
            .map(|r| {
                let stored = match (
                    r.try_get::<Option<i64>, _>("tmdb_id")?,
                    r.try_get::<Option<String>, _>("match_method")?,
                    r.try_get::<Option<f64>, _>("match_score")?,
                ) {
                    (Some(id), Some(method), Some(score)) => Some((
                        TmdbId(u64::try_from(id)?),
                        Match {
                            method: MatchMethod::parse(&method).ok_or_else(|| {
                                anyhow::anyhow!("title_metadata: unknown match_method {method:?}")
                            })?,
                            score,
                        },
                    )),
                    _ => None,
                };
                Ok(WorkItem {
                    title: TitleId::parse(&r.try_get::<String, _>("id")?)?,
                    name: r.try_get("name")?,
                    year: r
                        .try_get::<Option<i64>, _>("release_year")?
                        .and_then(|y| i32::try_from(y).ok()),
                    dataset_maturity: super::parse_opt::<MaturityRating>(
                        r.try_get("maturity_rating")?,
                    )?,
                    stored,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        items.sort_by(|a, b| {
            crate::engine::catalog::natural_cmp(a.title.as_str(), b.title.as_str())
        });
        Ok(items)
    }

    /// Stores a batch fetched at `fetched_at` in one transaction: metadata rows are upserted,
    /// people replaced. Storing the same batch twice leaves the same rows (only `fetched_at`
    /// moves).
    pub async fn upsert_title_metadata(
        &self,
        batch: &[TitleMetadata],
        fetched_at: Millis,
    ) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for chunk in batch.chunks(CHUNK) {
            let rows = chunk
                .iter()
                .map(|m| {
                    vec![
                        Param::Text(m.title.to_string()),
                        Param::Int(m.tmdb_id.0 as i64),
                        Param::Text(m.matched.method.as_str().into()),
                        Param::OptFloat(Some(m.matched.score)),
                        Param::OptText(m.overview.clone()),
                        Param::OptText(m.tagline.clone()),
                        Param::OptInt(m.runtime_minutes.map(i64::from)),
                        Param::OptText(m.original_language.clone()),
                        Param::Text(m.genres.join("|")),
                        Param::OptText(m.certification.map(|c| c.as_str().to_owned())),
                        Param::OptText(m.poster_url.clone()),
                        Param::OptText(m.backdrop_url.clone()),
                        Param::Int(fetched_at),
                    ]
                })
                .collect();
            insert_many(
                &mut tx,
                "INSERT INTO title_metadata (title_id, tmdb_id, match_method, match_score, overview, tagline, \
                 runtime_minutes, original_language, genres, certification, poster_url, backdrop_url, fetched_at)",
                "ON CONFLICT (title_id) DO UPDATE SET tmdb_id = excluded.tmdb_id, \
                 match_method = excluded.match_method, match_score = excluded.match_score, \
                 overview = excluded.overview, tagline = excluded.tagline, \
                 runtime_minutes = excluded.runtime_minutes, original_language = excluded.original_language, \
                 genres = excluded.genres, certification = excluded.certification, \
                 poster_url = excluded.poster_url, backdrop_url = excluded.backdrop_url, \
                 fetched_at = excluded.fetched_at",
                rows,
            )
            .await?;
            let titles: Vec<&str> = chunk.iter().map(|m| m.title.as_str()).collect();
            with_in_list(
                "DELETE FROM title_people WHERE title_id IN ({list})",
                &titles,
            )
            .execute(&mut *tx)
            .await?;
        }
        let people: Vec<Vec<Param>> = batch
            .iter()
            .flat_map(|m| {
                let actors = m
                    .cast
                    .iter()
                    .enumerate()
                    .map(move |(i, p)| (m, "actor", i, p));
                let directors = m
                    .directors
                    .iter()
                    .enumerate()
                    .map(move |(i, p)| (m, "director", i, p));
                actors.chain(directors)
            })
            .map(|(m, role, order, p)| {
                vec![
                    Param::Text(m.title.to_string()),
                    Param::Text(role.into()),
                    Param::Int(p.id as i64),
                    Param::Int(order as i64),
                    Param::Text(p.name.clone()),
                    Param::OptText(p.character.clone()),
                ]
            })
            .collect();
        for chunk in people.chunks(CHUNK) {
            insert_many(
                &mut tx,
                "INSERT INTO title_people (title_id, role, person_id, credit_order, name, character_name)",
                // A person listed twice in one role keeps the first billing.
                "ON CONFLICT (title_id, role, person_id) DO NOTHING",
                chunk.to_vec(),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
