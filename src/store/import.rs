//! Bulk import of a MovieLens dataset in one transaction.

use std::collections::{BTreeSet, HashSet};

use anyhow::{Result, bail};
use sqlx::{AnyConnection, Row};

use super::records::{Param, insert_many, rebuild_watch_state, with_in_list};
use super::{Store, StoreResult};
use crate::domain::{Millis, ProfileId};
use crate::engine::filters::DEFAULT_KIDS_LIMIT;
use crate::engine::history::imported_event;
use crate::ingest::movielens::Dataset;
use crate::rng::fnv1a32;

/// How `marquee import movielens` writes into the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImportMethod {
    /// `Copy` on PostgreSQL, `Rows` on SQLite.
    #[default]
    Auto,
    /// Multi-row INSERTs through the shared pool, the whole dataset read into memory first
    /// (`Store::import`); both backends.
    Rows,
    /// PostgreSQL only: the interactions streamed from the file through COPY into staging
    /// tables, then set-based SQL (`Store::import_bulk`).
    Copy,
}

#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Accounts whose id hashes to 0 modulo this get a kids profile (0 = none).
    pub kids_every: u32,
    pub received_at: Millis,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportSummary {
    pub titles: usize,
    pub title_entities: usize,
    pub profiles: usize,
    pub kids_profiles: usize,
    pub events_new: u64,
    pub events_already_present: u64,
}

/// Whether an imported account gets a kids profile: a stable hash of its id, so the choice is
/// the same on every machine and every re-import.
pub fn has_kids_profile(account: &str, kids_every: u32) -> bool {
    kids_every > 0 && fnv1a32(account.bytes()).is_multiple_of(kids_every)
}

const CHUNK: usize = 400;

/// Reports progress: (stage, done, total).
pub(super) type Progress<'a> = &'a (dyn Fn(&str, u64, u64) + Sync);

impl Store {
    /// Imports `data` in one transaction, phase by phase: check the titles interactions refer
    /// to, titles, their people, accounts and profiles, events, and the watch state of every
    /// profile touched. Re-importing the same files changes nothing.
    pub async fn import(
        &self,
        data: &Dataset,
        opts: &ImportOptions,
        progress: Progress<'_>,
    ) -> Result<ImportSummary> {
        let mut tx = self.begin_write().await?;
        check_external_items(&mut tx, data).await?;
        upsert_titles(&mut tx, data, progress).await?;
        let title_entities = replace_title_entities(&mut tx, data, progress).await?;
        let (profiles, kids_profiles) = insert_profiles(&mut tx, data, opts, progress).await?;
        let events_new = insert_events(&mut tx, data, opts, progress).await?;
        rebuild_touched_watch_state(&mut tx, data, progress).await?;
        tx.commit().await?;
        // A rebuilt state may differ from the live one without a new event (events applied
        // out of order live, in time order here): the kept histories' stamps cannot tell.
        self.forget_histories();
        Ok(ImportSummary {
            titles: data.titles.len(),
            title_entities,
            profiles,
            kids_profiles,
            events_new,
            events_already_present: data.interactions.len() as u64 - events_new,
        })
    }
}

/// Interactions may refer to titles imported earlier (e.g. a held-out split without an .item
/// file); anything else is an error that names the first line using it.
async fn check_external_items(tx: &mut AnyConnection, data: &Dataset) -> Result<()> {
    let external: Vec<&str> = data
        .external_items
        .iter()
        .map(|(id, _)| id.as_str())
        .collect();
    let mut present = BTreeSet::new();
    for chunk in external.chunks(CHUNK) {
        let q = with_in_list("SELECT id FROM titles WHERE id IN ({list})", chunk);
        for row in q.fetch_all(&mut *tx).await? {
            present.insert(row.try_get::<String, _>("id")?);
        }
    }
    if let Some((id, at)) = data
        .external_items
        .iter()
        .find(|(id, _)| !present.contains(id.as_str()))
    {
        bail!("{at}: unknown item_id {id}: not in the .item file nor in the database");
    }
    Ok(())
}

/// New titles are added; known ones take the file's metadata, keeping a maturity rating or
/// overview the file lacks and the earliest time the title was added.
async fn upsert_titles(
    tx: &mut AnyConnection,
    data: &Dataset,
    progress: Progress<'_>,
) -> StoreResult<()> {
    progress("titles", 0, data.titles.len() as u64);
    for chunk in data.titles.chunks(CHUNK) {
        let rows = chunk
            .iter()
            .map(|t| {
                vec![
                    Param::Text(t.id.to_string()),
                    Param::Text(t.name.clone()),
                    Param::OptInt(t.year.map(i64::from)),
                    Param::Text(t.genres.join(" ")),
                    Param::OptText(t.maturity.map(|m| m.as_str().to_owned())),
                    Param::OptText(t.overview.clone()),
                    Param::Int(t.added_at),
                    Param::OptText(
                        t.countries
                            .as_ref()
                            .map(|cs| cs.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(" ")),
                    ),
                ]
            })
            .collect();
        insert_many(
            tx,
            "INSERT INTO titles (id, name, release_year, genres, maturity_rating, overview, added_at, countries)",
            "ON CONFLICT (id) DO UPDATE SET name = excluded.name, release_year = excluded.release_year, \
             genres = excluded.genres, \
             maturity_rating = COALESCE(excluded.maturity_rating, titles.maturity_rating), \
             overview = COALESCE(excluded.overview, titles.overview), \
             added_at = CASE WHEN excluded.added_at < titles.added_at THEN excluded.added_at ELSE titles.added_at END, \
             countries = excluded.countries",
            rows,
        )
        .await?;
    }
    Ok(())
}

/// People from the knowledge graph replace what earlier imports stored for these titles.
/// Returns how many links were imported (0 without a knowledge graph, which leaves stored
/// people alone).
async fn replace_title_entities(
    tx: &mut AnyConnection,
    data: &Dataset,
    progress: Progress<'_>,
) -> StoreResult<usize> {
    let Some(entities) = &data.entities else {
        return Ok(0);
    };
    let total = entities.len() as u64;
    progress("title entities", 0, total);
    for chunk in data.titles.chunks(CHUNK) {
        let ids: Vec<&str> = chunk.iter().map(|t| t.id.as_str()).collect();
        with_in_list(
            "DELETE FROM title_entities WHERE title_id IN ({list})",
            &ids,
        )
        .execute(&mut *tx)
        .await?;
    }
    for chunk in entities.chunks(CHUNK) {
        let rows = chunk
            .iter()
            .map(|e| {
                vec![
                    Param::Text(e.title.to_string()),
                    Param::Text(e.relation.clone()),
                    Param::Text(e.entity.clone()),
                ]
            })
            .collect();
        insert_many(
            tx,
            "INSERT INTO title_entities (title_id, relation, entity_id)",
            "ON CONFLICT (title_id, relation, entity_id) DO NOTHING",
            rows,
        )
        .await?;
    }
    progress("title entities", total, total);
    Ok(entities.len())
}

/// Every user of the .user file or of an interaction becomes an account with a main profile;
/// some accounts also get a kids profile (`has_kids_profile`). Existing profiles are left as
/// they are. Returns (users, kids profiles).
async fn insert_profiles(
    tx: &mut AnyConnection,
    data: &Dataset,
    opts: &ImportOptions,
    progress: Progress<'_>,
) -> StoreResult<(usize, usize)> {
    let mut users: Vec<(ProfileId, Option<String>)> = data
        .users
        .iter()
        .map(|u| (u.id.clone(), u.country.as_ref().map(|c| c.to_string())))
        .collect();
    let mut known: HashSet<ProfileId> = users.iter().map(|(id, _)| id.clone()).collect();
    for i in &data.interactions {
        if known.insert(i.user.clone()) {
            users.push((i.user.clone(), None));
        }
    }
    let mut kids = 0;
    progress("profiles", 0, users.len() as u64);
    for chunk in users.chunks(CHUNK) {
        let accounts = chunk
            .iter()
            .map(|(id, _)| {
                vec![
                    Param::Text(id.to_string()),
                    Param::Text(format!("Account {id}")),
                    Param::Int(opts.received_at),
                ]
            })
            .collect();
        insert_many(
            tx,
            "INSERT INTO accounts (id, name, created_at)",
            "ON CONFLICT (id) DO NOTHING",
            accounts,
        )
        .await?;
        let mut profiles = Vec::new();
        for (id, country) in chunk {
            profiles.push(vec![
                Param::Text(id.to_string()),
                Param::Text(id.to_string()),
                Param::Text(format!("Member {id}")),
                Param::Int(0),
                Param::OptText(None),
                Param::OptText(country.clone()),
                Param::Int(opts.received_at),
            ]);
            if has_kids_profile(id.as_str(), opts.kids_every) {
                kids += 1;
                profiles.push(vec![
                    Param::Text(format!("{id}-kids")),
                    Param::Text(id.to_string()),
                    Param::Text("Kids".into()),
                    Param::Int(1),
                    Param::OptText(Some(DEFAULT_KIDS_LIMIT.as_str().into())),
                    Param::OptText(country.clone()),
                    Param::Int(opts.received_at),
                ]);
            }
        }
        insert_many(
            tx,
            "INSERT INTO profiles (id, account_id, name, is_kids, maturity_limit, country, created_at)",
            "ON CONFLICT (id) DO NOTHING",
            profiles,
        )
        .await?;
    }
    Ok((users.len(), kids))
}

/// Each interaction becomes the event it stands for (`imported_event`), at its original time.
/// The client event id makes re-importing the same file a no-op. Returns the events new to
/// the database.
async fn insert_events(
    tx: &mut AnyConnection,
    data: &Dataset,
    opts: &ImportOptions,
    progress: Progress<'_>,
) -> StoreResult<u64> {
    let total = data.interactions.len() as u64;
    let mut inserted = 0u64;
    for (n, chunk) in data.interactions.chunks(CHUNK).enumerate() {
        progress("events", (n * CHUNK) as u64, total);
        let rows = chunk
            .iter()
            .map(|i| {
                let action = imported_event(i.rating);
                vec![
                    Param::Text(i.user.to_string()),
                    Param::Text(i.item.to_string()),
                    Param::Text(action.kind().as_str().into()),
                    Param::OptFloat(action.value()),
                    Param::Int(i.at),
                    Param::Int(opts.received_at),
                    Param::Text(format!(
                        "import:{}:{}:{}",
                        action.kind().as_str(),
                        i.item,
                        i.at
                    )),
                    Param::OptText(None),
                ]
            })
            .collect();
        inserted += insert_many(
            tx,
            "INSERT INTO events (profile_id, title_id, kind, value, occurred_at, received_at, client_event_id, request_id)",
            "ON CONFLICT (profile_id, client_event_id) DO NOTHING",
            rows,
        )
        .await?;
    }
    progress("events", total, total);
    Ok(inserted)
}

/// Watch state is a projection of the whole event log, so it is rebuilt for every profile
/// this import touched (their live events included).
async fn rebuild_touched_watch_state(
    tx: &mut AnyConnection,
    data: &Dataset,
    progress: Progress<'_>,
) -> StoreResult<()> {
    let mut touched: Vec<ProfileId> = data.interactions.iter().map(|i| i.user.clone()).collect();
    touched.sort();
    touched.dedup();
    let total = touched.len() as u64;
    progress("watch state", 0, total);
    for chunk in touched.chunks(CHUNK) {
        rebuild_watch_state(tx, chunk).await?;
    }
    progress("watch state", total, total);
    Ok(())
}
