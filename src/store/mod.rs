//! Persistence: SQLite (embedded default) or PostgreSQL, chosen by the database URL.
//!
//! Both backends go through `sqlx::Any` with the same SQL: `$n` placeholders (SQLite accepts
//! them too), BIGINT milliseconds and 0/1 integers instead of dialect-specific types. The few
//! real differences (row locking, advisory locks) are behind `Backend`.
//!
//! Failures come back as `StoreError`, already classified: `Unavailable` (the database is
//! down, restarting, full, not writable, too busy — retry) or `Internal`.

mod bulk_import;
mod error;
pub mod experiments;
mod import;
pub mod logging;
mod metadata;
mod models;
pub mod outbox;
mod pool;
pub mod records;
pub mod sessions;
mod sqlite_reads;

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use sqlx::any::AnyRow;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Row, SqlSafeStr};

use crate::domain::{
    AccountId, CastMember, Country, MaturityRating, Millis, Profile, ProfileId, Title,
    TitleDetails, TitleId,
};
use crate::engine::history::{History, Thumbs, WatchState};
use crate::engine::model::content::TitleEntity;

pub use error::{StoreError, StoreResult};
pub use import::{ImportMethod, ImportOptions, ImportSummary};
pub use models::ModelRecord;
pub(crate) use pool::WriteTx;
use pool::{ConnectionHealth, pool_options};
pub use records::RecordSummary;
use sqlite_reads::SqliteReads;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub struct Store {
    /// Page serving and every write.
    pool: AnyPool,
    /// Experiment reports only: a report can never hold a connection page serving needs.
    reports: AnyPool,
    backend: Backend,
    health: Arc<ConnectionHealth>,
    probe: Arc<WriteProbe>,
    /// Where the pools connect, for work that needs a connection of its own outside them
    /// (the PostgreSQL bulk import's COPY).
    url: DatabaseUrl,
    /// The watch state `viewer` last read per profile, with the profile's number of stored
    /// events then (`KnownHistories`).
    histories: KnownHistories,
    /// On a SQLite file: the reads a page waits for, made on the request's thread.
    sqlite_reads: Option<Arc<SqliteReads>>,
}

/// Histories kept between reads, by profile id, with the profile's event count when read.
/// The count is the history's stamp: events are only ever added (never deleted), and the
/// watch state only changes in the transaction that adds the events that change it
/// (`record_events`, the imports), so a count read in the same statement as the states names
/// them, and a later read that finds the same count would find the same states. (The largest
/// event id would not do on PostgreSQL, where ids may commit out of order.) A read that finds
/// the count unchanged skips the states: on SQLite, building and parsing their JSON was about
/// a tenth of a warm page's instructions.
type KnownHistories = moka::future::Cache<String, (i64, History)>;

/// Watch states `KnownHistories` may hold in all (each about 160 bytes with its map entry, so
/// about 80 MB): the histories of the recently active profiles, not of every profile.
const KNOWN_STATES: u64 = 500_000;

fn known_histories() -> KnownHistories {
    moka::future::Cache::builder()
        .max_capacity(KNOWN_STATES)
        .weigher(|_: &String, (_, h): &(i64, History)| {
            u32::try_from(h.len() + 1).unwrap_or(u32::MAX)
        })
        // A bound on how long a state changed without a new event (an import run by another
        // process, see `forget_histories`) can be served; an import in this one forgets them.
        .time_to_live(std::time::Duration::from_secs(10 * 60))
        .build()
}

/// A database URL, which may hold a password: `Debug` shows it without (`display_url`).
#[derive(Clone)]
struct DatabaseUrl(Arc<str>);

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&display_url(&self.0))
    }
}

/// How long a request waits for a connection. The pool keeps retrying a refused connection
/// until then, so this is also how long a request waits for a database that is down before it
/// answers `UNAVAILABLE`: short, because clients retry and a hung request helps nobody. SQLite
/// is never "down", but its few connections can all be held by writers waiting out a busy
/// lock, so it gets longer.
const ACQUIRE_TIMEOUT_POSTGRES: Duration = Duration::from_millis(1500);
const ACQUIRE_TIMEOUT_SQLITE: Duration = Duration::from_secs(3);
/// Reports may queue for the report pool's connections a little longer.
const REPORT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// The readiness probe's result is reused for this long, so probes cannot load the database.
const PROBE_TTL: Duration = Duration::from_secs(1);
/// A probe that takes longer than this counts as a failure.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The last write probe, shared by the clones of a `Store`.
#[derive(Debug, Default)]
struct WriteProbe {
    /// Held across a probe, so concurrent readiness checks wait for one probe, not start many.
    last: tokio::sync::Mutex<Option<(Instant, Result<(), String>)>>,
}

const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "foundation",
        include_str!("../../migrations/sqlite/0001_foundation.sql"),
    ),
    (
        2,
        "exposures impressions",
        include_str!("../../migrations/sqlite/0002_exposures_impressions.sql"),
    ),
    (
        3,
        "title entities",
        include_str!("../../migrations/sqlite/0003_title_entities.sql"),
    ),
    (
        4,
        "store robustness",
        include_str!("../../migrations/sqlite/0004_store_robustness.sql"),
    ),
    (
        5,
        "identity",
        include_str!("../../migrations/sqlite/0005_identity.sql"),
    ),
    (
        6,
        "experiment console",
        include_str!("../../migrations/sqlite/0006_experiment_console.sql"),
    ),
    (
        7,
        "outbox",
        include_str!("../../migrations/sqlite/0007_outbox.sql"),
    ),
    (
        8,
        "title metadata",
        include_str!("../../migrations/sqlite/0008_title_metadata.sql"),
    ),
    (
        9,
        "experiment phases",
        include_str!("../../migrations/sqlite/0009_experiment_phases.sql"),
    ),
    (
        10,
        "preview audit",
        include_str!("../../migrations/sqlite/0010_preview_audit.sql"),
    ),
];
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "foundation",
        include_str!("../../migrations/postgres/0001_foundation.sql"),
    ),
    (
        2,
        "exposures impressions",
        include_str!("../../migrations/postgres/0002_exposures_impressions.sql"),
    ),
    (
        3,
        "title entities",
        include_str!("../../migrations/postgres/0003_title_entities.sql"),
    ),
    (
        4,
        "store robustness",
        include_str!("../../migrations/postgres/0004_store_robustness.sql"),
    ),
    (
        5,
        "identity",
        include_str!("../../migrations/postgres/0005_identity.sql"),
    ),
    (
        6,
        "experiment console",
        include_str!("../../migrations/postgres/0006_experiment_console.sql"),
    ),
    (
        7,
        "outbox",
        include_str!("../../migrations/postgres/0007_outbox.sql"),
    ),
    (
        8,
        "title metadata",
        include_str!("../../migrations/postgres/0008_title_metadata.sql"),
    ),
    (
        9,
        "experiment phases",
        include_str!("../../migrations/postgres/0009_experiment_phases.sql"),
    ),
    (
        10,
        "preview audit",
        include_str!("../../migrations/postgres/0010_preview_audit.sql"),
    ),
];

/// The default database: a SQLite file in the data directory.
pub fn sqlite_url(data_dir: &Path) -> String {
    format!(
        "sqlite://{}?mode=rwc",
        data_dir.join("marquee.db").display()
    )
}

/// Redacts the password of a database URL for messages.
pub fn display_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &creds[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// A profile by id (not removed), as `profile_from_columns` reads it. The page's reads are
/// the same statements on either driver (`sqlite_reads` binds `$1` by position too).
const PROFILE_BY_ID: &str = "SELECT id, account_id, name, is_kids, maturity_limit, country, \
     onboarding_genres FROM profiles WHERE id = $1 AND removed_at IS NULL";
/// `PROFILE_BY_ID` with the profile's number of stored events, `KnownHistories`' stamp.
const PROFILE_WITH_EVENTS: &str = "SELECT id, account_id, name, is_kids, maturity_limit, \
     country, onboarding_genres, (SELECT COUNT(*) FROM events WHERE profile_id = $1) AS events \
     FROM profiles WHERE id = $1 AND removed_at IS NULL";
/// A profile's watch states, as `watch_state_from_columns` reads them, each row with the
/// profile's number of stored events read in the states' snapshot.
const STATES_WITH_EVENTS: &str = "SELECT title_id, progress, completed, last_watched_at, \
     rating, rated_at, thumbs, thumbs_at, \
     (SELECT COUNT(*) FROM events WHERE profile_id = $1) AS events \
     FROM watch_state WHERE profile_id = $1";

impl Store {
    /// Connects and brings the schema up to date.
    pub async fn open(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            anyhow::bail!(
                "unsupported DATABASE_URL {:?}: expected sqlite:// or postgres://",
                display_url(url)
            );
        };
        let health = Arc::new(ConnectionHealth::new(backend == Backend::Sqlite));
        let pool = pool_options(
            match backend {
                // SQLite serialises writers anyway; a few readers are plenty.
                Backend::Sqlite => 4,
                Backend::Postgres => 16,
            },
            match backend {
                Backend::Sqlite => ACQUIRE_TIMEOUT_SQLITE,
                Backend::Postgres => ACQUIRE_TIMEOUT_POSTGRES,
            },
            &health,
        )
        .connect(url)
        .await
        .with_context(|| format!("cannot connect to {}", display_url(url)))?;
        // Connects lazily: commands that never report do not open it.
        let reports = pool_options(2, REPORT_ACQUIRE_TIMEOUT, &health)
            .connect_lazy(url)
            .with_context(|| format!("cannot connect to {}", display_url(url)))?;
        let mut store = Store {
            pool,
            reports,
            backend,
            health,
            probe: Arc::default(),
            url: DatabaseUrl(url.into()),
            histories: known_histories(),
            sqlite_reads: None,
        };
        if backend == Backend::Sqlite {
            // WAL lets page requests read while an import or event batch writes.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&store.pool)
                .await?;
        }
        store.migrate().await?;
        if backend == Backend::Sqlite {
            // A database in memory is the pool's own: other connections cannot see it.
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)?;
            let file = options.get_filename();
            if std::fs::metadata(file).is_ok_and(|m| m.is_file()) {
                store.sqlite_reads = Some(Arc::new(SqliteReads::new(file)));
            }
        }
        Ok(store)
    }

    async fn migrate(&self) -> Result<()> {
        let list = match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS,
            Backend::Postgres => POSTGRES_MIGRATIONS,
        };
        let migrations = list
            .iter()
            .map(|(version, name, sql)| {
                Migration::new(
                    *version,
                    (*name).into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect();
        Migrator::with_migrations(migrations)
            .run(&self.pool)
            .await
            .context("database migration failed")?;
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the database takes writes right now: a one-row heartbeat upsert, committed
    /// (on SQLite only a commit touches the WAL file, so a rolled-back probe would miss
    /// unwritable files), stamped `now`. The result is reused for `PROBE_TTL`.
    pub async fn writable(&self, now: Millis) -> Result<(), String> {
        let mut last = self.probe.last.lock().await;
        if let Some((at, result)) = last.as_ref()
            && at.elapsed() < PROBE_TTL
        {
            return result.clone();
        }
        let result = match tokio::time::timeout(PROBE_TIMEOUT, self.heartbeat(now)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {PROBE_TIMEOUT:?}")),
        };
        *last = Some((Instant::now(), result.clone()));
        result
    }

    async fn heartbeat(&self, now: Millis) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO store_heartbeat (id, beat_at) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET beat_at = excluded.beat_at",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
        self.reports.close().await;
        if let Some(reads) = &self.sqlite_reads {
            reads.close();
        }
    }

    /// The catalogue, with TMDb metadata where `marquee import tmdb` stored some. Precedence
    /// (see `Title`): the dataset's rating and overview first, TMDb's where it has none.
    pub async fn titles(&self) -> StoreResult<Vec<Title>> {
        let rows = sqlx::query(
            "SELECT t.id, t.name, t.release_year, t.genres, t.maturity_rating, t.overview, t.added_at, t.countries, \
             m.title_id AS meta_id, m.overview AS meta_overview, m.certification, m.tagline, m.runtime_minutes, \
             m.original_language, m.poster_url, m.backdrop_url \
             FROM titles t LEFT JOIN title_metadata m ON m.title_id = t.id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut people = self.title_people().await?;
        rows.iter()
            .map(|r| -> StoreResult<Title> {
                let mut title = title_from_row(r)?;
                if r.try_get::<Option<String>, _>("meta_id")?.is_some() {
                    let (cast, directors) = people.remove(title.id.as_str()).unwrap_or_default();
                    title.maturity = crate::domain::effective_maturity(
                        title.maturity,
                        parse_opt::<MaturityRating>(r.try_get("certification")?)?,
                    );
                    if title.overview.is_none() {
                        title.overview = r.try_get("meta_overview")?;
                    }
                    title.details = Some(Arc::new(TitleDetails {
                        tagline: r.try_get("tagline")?,
                        runtime_minutes: r
                            .try_get::<Option<i64>, _>("runtime_minutes")?
                            .and_then(|m| u32::try_from(m).ok()),
                        original_language: r.try_get("original_language")?,
                        poster_url: r.try_get("poster_url")?,
                        backdrop_url: r.try_get("backdrop_url")?,
                        cast,
                        directors,
                    }));
                }
                Ok(title)
            })
            .collect()
    }

    /// TMDb cast (billing order) and directors per title.
    async fn title_people(&self) -> StoreResult<HashMap<String, (Vec<CastMember>, Vec<String>)>> {
        let rows = sqlx::query(
            "SELECT title_id, role, name, character_name FROM title_people \
             ORDER BY title_id, role, credit_order",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out: HashMap<String, (Vec<CastMember>, Vec<String>)> = HashMap::new();
        for r in &rows {
            let entry = out.entry(r.try_get("title_id")?).or_default();
            let name: String = r.try_get("name")?;
            match r.try_get::<String, _>("role")?.as_str() {
                "director" => entry.1.push(name),
                _ => entry.0.push(CastMember {
                    name,
                    character: r.try_get("character_name")?,
                }),
            }
        }
        Ok(out)
    }

    /// The people of every title, in a stable order: the knowledge graph's (see
    /// `movielens::read_dir`) and TMDb's credits as entities `tmdb:<person id>`. Both count:
    /// titles the knowledge graph does not cover get people from TMDb, and a TMDb-only title
    /// shares entities with every other title TMDb credits the same person on.
    pub async fn title_entities(&self) -> StoreResult<Vec<TitleEntity>> {
        let rows = sqlx::query(
            "SELECT title_id, relation, entity_id FROM title_entities \
             UNION ALL \
             SELECT title_id, role AS relation, 'tmdb:' || CAST(person_id AS TEXT) AS entity_id FROM title_people \
             ORDER BY title_id, relation, entity_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TitleEntity {
                    title: TitleId::parse(&r.try_get::<String, _>("title_id")?)?,
                    relation: r.try_get("relation")?,
                    entity: r.try_get("entity_id")?,
                })
            })
            .collect()
    }

    pub async fn profile(&self, id: &ProfileId) -> StoreResult<Option<Profile>> {
        if let Some(reads) = &self.sqlite_reads {
            return reads.profile(id);
        }
        let row = sqlx::query(PROFILE_BY_ID)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(profile_from_row).transpose()?)
    }

    /// Drops every kept history (`KnownHistories`): after an import, whose rebuilt watch
    /// states may differ from the live ones without a new event.
    pub(crate) fn forget_histories(&self) {
        self.histories.invalidate_all();
    }

    /// A profile with its watch state; `None` when there is no such profile. The profile
    /// comes with its number of stored events, the stamp of the history kept from the last
    /// read (`KnownHistories`); only when the count moved are the states read, each row with
    /// the count again, in the states' own snapshot. On a SQLite file both statements run on
    /// the calling thread (`SqliteReads`).
    pub async fn viewer(&self, id: &ProfileId) -> StoreResult<Option<(Profile, History)>> {
        let (profile, events) = match &self.sqlite_reads {
            Some(reads) => match reads.profile_and_events(id)? {
                Some(found) => found,
                None => return Ok(None),
            },
            None => {
                let row = sqlx::query(PROFILE_WITH_EVENTS)
                    .bind(id.as_str())
                    .fetch_optional(&self.pool)
                    .await?;
                let Some(row) = row else {
                    return Ok(None);
                };
                (profile_from_row(&row)?, row.try_get::<i64, _>("events")?)
            }
        };
        if let Some((known, history)) = self.histories.get(id.as_str()).await
            && known == events
        {
            return Ok(Some((profile, history)));
        }
        let (states, events) = self.states(id).await?;
        let history = History::new(states);
        // Without a state there is no row to read the count from; such a history is not kept.
        if let Some(events) = events {
            self.histories
                .insert(id.to_string(), (events, history.clone()))
                .await;
        }
        Ok(Some((profile, history)))
    }

    /// A profile's watch states, with the profile's event count read in the same statement
    /// (`None` without a state: no row to read it from).
    async fn states(&self, profile: &ProfileId) -> StoreResult<(Vec<WatchState>, Option<i64>)> {
        if let Some(reads) = &self.sqlite_reads {
            return reads.states(profile);
        }
        let rows = sqlx::query(STATES_WITH_EVENTS)
            .bind(profile.as_str())
            .fetch_all(&self.pool)
            .await?;
        let states = rows
            .iter()
            .map(watch_state_from_row)
            .collect::<Result<Vec<_>>>()?;
        let events = rows.first().map(|r| r.try_get("events")).transpose()?;
        Ok((states, events))
    }

    /// Profiles of an account, the account's main profile first.
    pub async fn profiles_of(&self, account: &AccountId) -> StoreResult<Vec<Profile>> {
        let rows = sqlx::query(
            "SELECT id, account_id, name, is_kids, maturity_limit, country, onboarding_genres \
             FROM profiles WHERE account_id = $1 AND removed_at IS NULL ORDER BY is_kids, id",
        )
        .bind(account.as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(profile_from_row).collect::<Result<_>>()?)
    }

    /// Begins a transaction that will write; every write transaction starts here. On SQLite it
    /// takes the write lock up front (`BEGIN IMMEDIATE`): a deferred transaction that reads
    /// first and writes later cannot wait for a busy writer (SQLite fails it at once with
    /// "database is locked", since its snapshot is stale), while an immediate one waits out
    /// the busy timeout. The connection comes from a pool that never hands out one whose
    /// transaction state is unknown (see `ConnectionHealth`), so a failed write cannot poison
    /// later ones.
    pub(crate) async fn begin_write(&self) -> StoreResult<WriteTx> {
        let begun = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        };
        match begun {
            Ok(tx) => Ok(WriteTx::new(tx, self.health.clone())),
            Err(e) => {
                // A failed BEGIN is a failed write too: a SQLite connection opened read-only
                // while its file was unwritable fails here (`BEGIN IMMEDIATE` takes the write
                // lock), and must be retired like one that failed mid-transaction.
                self.health.write_failed();
                Err(e.into())
            }
        }
    }

    /// Creates a profile (and its account if new). Fails when the profile id is taken.
    pub async fn create_profile(&self, p: &Profile, created_at: Millis) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO accounts (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
        )
        .bind(p.account_id.as_str())
        .bind(format!("Account {}", p.account_id))
        .bind(created_at)
        .execute(&mut *tx)
        .await?;
        let inserted = sqlx::query(
            "INSERT INTO profiles (id, account_id, name, is_kids, maturity_limit, country, onboarding_genres, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING",
        )
        .bind(p.id.as_str())
        .bind(p.account_id.as_str())
        .bind(p.name.as_str())
        .bind(i64::from(p.is_kids))
        .bind(p.maturity_limit.map(|m| m.as_str()))
        .bind(p.country.as_ref().map(|c| c.as_str()))
        .bind(p.onboarding_genres.join(" "))
        .bind(created_at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(inserted == 1)
    }

    /// Profiles in id order (main profiles of numeric MovieLens ids sort numerically), for
    /// pickers; `kids` narrows to kids or grown-up profiles.
    pub async fn list_profiles(
        &self,
        kids: Option<bool>,
        limit: usize,
    ) -> StoreResult<Vec<Profile>> {
        let rows = sqlx::query(
            "SELECT id, account_id, name, is_kids, maturity_limit, country, onboarding_genres \
             FROM profiles WHERE ($1 < 0 OR is_kids = $1) AND removed_at IS NULL ORDER BY LENGTH(account_id), account_id, is_kids, id LIMIT $2",
        )
        .bind(kids.map_or(-1i64, i64::from))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(profile_from_row).collect::<Result<_>>()?)
    }

    /// Every profile id, in a stable order (for benchmarks and examples).
    pub async fn profile_ids(&self) -> StoreResult<Vec<(ProfileId, bool)>> {
        let rows =
            sqlx::query("SELECT id, is_kids FROM profiles WHERE removed_at IS NULL ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    ProfileId::parse(&r.try_get::<String, _>("id")?)?,
                    r.try_get::<i64, _>("is_kids")? != 0,
                ))
            })
            .collect()
    }

    pub async fn history(&self, profile: &ProfileId) -> StoreResult<History> {
        Ok(History::new(self.states(profile).await?.0))
    }

    /// Time of the newest event between `earliest` and `latest`, the natural "now" for
    /// replayed data.
    pub async fn last_event_at(
        &self,
        earliest: Millis,
        latest: Millis,
    ) -> StoreResult<Option<Millis>> {
        let row = sqlx::query(
            "SELECT MAX(occurred_at) AS t FROM events WHERE occurred_at >= $1 AND occurred_at <= $2",
        )
        .bind(earliest)
        .bind(latest)
        .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<Option<i64>, _>("t")?)
    }

    pub async fn count(&self, table: Table) -> StoreResult<i64> {
        let sql = match table {
            Table::Titles => "SELECT COUNT(*) AS n FROM titles",
            Table::TitleMetadata => "SELECT COUNT(*) AS n FROM title_metadata",
            Table::Profiles => "SELECT COUNT(*) AS n FROM profiles",
            Table::Events => "SELECT COUNT(*) AS n FROM events",
            Table::WatchState => "SELECT COUNT(*) AS n FROM watch_state",
        };
        Ok(sqlx::query(sql).fetch_one(&self.pool).await?.try_get("n")?)
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Table {
    Titles,
    /// Titles with TMDb metadata.
    TitleMetadata,
    Profiles,
    Events,
    WatchState,
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

fn parse_opt<T: FromStr>(raw: Option<String>) -> Result<Option<T>>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    raw.filter(|s| !s.is_empty())
        .map(|s| s.parse::<T>())
        .transpose()
        .map_err(Into::into)
}

fn title_from_row(r: &AnyRow) -> Result<Title> {
    let countries: Option<String> = r.try_get("countries")?;
    Ok(Title {
        id: TitleId::parse(&r.try_get::<String, _>("id")?)?,
        name: r.try_get("name")?,
        year: r
            .try_get::<Option<i64>, _>("release_year")?
            .map(|y| y as i32),
        genres: words(&r.try_get::<String, _>("genres")?),
        maturity: parse_opt::<MaturityRating>(r.try_get("maturity_rating")?)?,
        overview: r.try_get("overview")?,
        added_at: r.try_get("added_at")?,
        countries: countries
            .map(|c| {
                c.split_whitespace()
                    .map(Country::parse)
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?,
        details: None,
    })
}

/// A profile's columns: id, account_id, name, is_kids, maturity_limit, country,
/// onboarding_genres — as every profile query selects them, on either driver.
type ProfileColumns = (
    String,
    String,
    String,
    i64,
    Option<String>,
    Option<String>,
    String,
);

fn profile_from_row(r: &AnyRow) -> Result<Profile> {
    profile_from_columns((
        r.try_get("id")?,
        r.try_get("account_id")?,
        r.try_get("name")?,
        r.try_get("is_kids")?,
        r.try_get("maturity_limit")?,
        r.try_get("country")?,
        r.try_get("onboarding_genres")?,
    ))
}

fn profile_from_columns(
    (id, account, name, is_kids, maturity_limit, country, onboarding): ProfileColumns,
) -> Result<Profile> {
    Ok(Profile {
        id: ProfileId::parse(&id)?,
        account_id: AccountId::parse(&account)?,
        name,
        is_kids: is_kids != 0,
        maturity_limit: parse_opt::<MaturityRating>(maturity_limit)?,
        country: country.map(|c| Country::parse(&c)).transpose()?,
        onboarding_genres: words(&onboarding),
    })
}

/// A watch state's columns: title_id, progress, completed, last_watched_at, rating,
/// rated_at, thumbs, thumbs_at.
type WatchStateColumns = (
    String,
    f64,
    i64,
    Option<i64>,
    Option<f64>,
    Option<i64>,
    i64,
    Option<i64>,
);

fn watch_state_from_row(r: &AnyRow) -> Result<WatchState> {
    watch_state_from_columns((
        r.try_get("title_id")?,
        r.try_get("progress")?,
        r.try_get("completed")?,
        r.try_get("last_watched_at")?,
        r.try_get("rating")?,
        r.try_get("rated_at")?,
        r.try_get("thumbs")?,
        r.try_get("thumbs_at")?,
    ))
}

fn watch_state_from_columns(
    (title, progress, completed, last_watched_at, rating, rated_at, thumbs, thumbs_at): WatchStateColumns,
) -> Result<WatchState> {
    use crate::domain::{Progress, StarRating};
    Ok(WatchState {
        title_id: TitleId::parse(&title)?,
        progress: Progress::new(progress)?,
        completed: completed != 0,
        last_watched_at,
        rating: rating.map(StarRating::new).transpose()?,
        rated_at,
        thumbs: Thumbs::from_i64(thumbs),
        thumbs_at,
    })
}
