//! PostgreSQL bulk import of a MovieLens directory, for datasets too large for `Store::import`
//! (which holds every interaction in memory and sends 400-row INSERTs): 50M interactions.
//!
//! The `.inter` file is read twice, never held. The first pass checks every line (the same
//! checks and `file:line` messages as `movielens::read_dir`) and collects what is small:
//! the users, each title's first interaction, item ids no `.item` file defines. Nothing is
//! written before it succeeds. Then, in one transaction on a connection of its own:
//! titles, people, accounts and profiles go through COPY into temporary staging tables and
//! `INSERT … SELECT … ON CONFLICT`, with the same conflict rules as `Store::import`; the
//! second pass streams the interactions through COPY in batches of `BATCH_LINES` into a
//! staging table, each batch moved into `events` by one `INSERT … SELECT … ON CONFLICT DO
//! NOTHING` (same client event ids as `Store::import`, so re-importing adds nothing, and
//! events get ids in file order); watch state is rebuilt in SQL for every profile the file
//! touches (`WATCH_STATE_FROM_EVENTS`, the set-based form of `WatchState::apply`). A failure
//! anywhere rolls everything back: a failed import leaves nothing half-done.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection, Row};

use super::import::{ImportOptions, ImportSummary, Progress, has_kids_profile};
use super::{Backend, Store};
use crate::domain::{Millis, Title};
use crate::engine::filters::DEFAULT_KIDS_LIMIT;
use crate::engine::history::imported_event;
use crate::ingest::movielens::{self, Dataset, InteractionLine};

/// Interactions per COPY batch: large enough that per-statement costs vanish, small enough
/// that a batch's staging table and the pending foreign-key checks of its INSERT stay small.
const BATCH_LINES: usize = 500_000;

/// What the checking pass over the `.inter` file collects.
#[derive(Debug, Default)]
struct Scan {
    /// Every user of an interaction, in order of first appearance.
    users: Vec<String>,
    /// Earliest interaction per item id.
    first_seen: HashMap<String, Millis>,
    /// Item ids no `.item` title defines, with the line that first uses them.
    external: HashMap<String, usize>,
    lines: u64,
}

impl Store {
    /// Imports a MovieLens directory whose metadata (`movielens::read_metadata`) is `meta`
    /// and whose interactions are streamed from `inter`, into PostgreSQL (see the module
    /// documentation). The result is the same as `Store::import` of the whole directory.
    pub async fn import_bulk(
        &self,
        mut meta: Dataset,
        inter: &Path,
        opts: &ImportOptions,
        progress: Progress<'_>,
    ) -> Result<ImportSummary> {
        if self.backend != Backend::Postgres {
            bail!("the COPY import needs PostgreSQL");
        }
        let scan = scan_interactions(inter, &meta.titles, progress).await?;
        movielens::set_added_at(&mut meta.titles, |id| {
            scan.first_seen.get(id.as_str()).copied()
        });

        // Its statements run for seconds by design: no slow-statement warnings.
        let options = PgConnectOptions::from_str(&self.url.0)?.disable_statement_logging();
        let mut conn = PgConnection::connect_with(&options)
            .await
            .context("cannot open a connection for the import")?;
        // Staging tables are temporary (never WAL-logged); give them room in memory. The
        // watch-state aggregate over every event of the touched profiles sorts or hashes
        // tens of millions of rows: more memory than the default 4 MB spills less.
        sqlx::raw_sql("SET temp_buffers = '256MB'; SET work_mem = '256MB'")
            .execute(&mut conn)
            .await?;
        let mut tx = conn.begin().await?;
        let fast = fast_load(&mut tx).await?;
        check_external_items(&mut tx, &scan, inter).await?;
        upsert_titles(&mut tx, &meta.titles, progress).await?;
        let title_entities = replace_title_entities(&mut tx, &meta, progress).await?;
        let (profiles, kids_profiles) =
            insert_profiles(&mut tx, &meta, &scan, opts, progress).await?;
        let events_new = insert_events(&mut tx, inter, scan.lines, opts, progress).await?;
        for (i, definition) in fast.dropped_indexes.iter().enumerate() {
            progress("event indexes", i as u64, fast.dropped_indexes.len() as u64);
            sqlx::raw_sql(sqlx::AssertSqlSafe(definition.clone()))
                .execute(&mut *tx)
                .await?;
        }
        rebuild_watch_state(&mut tx, &scan.users, progress).await?;
        progress("committing", 0, 1);
        tx.commit().await?;
        // As `import`: rebuilt states do not change the stamps of kept histories.
        self.forget_histories();
        // Fresh statistics, so that page queries plan for the tables' new sizes at once.
        progress("analyzing", 0, 1);
        sqlx::raw_sql("ANALYZE titles; ANALYZE profiles; ANALYZE events; ANALYZE watch_state")
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        Ok(ImportSummary {
            titles: meta.titles.len(),
            title_entities,
            profiles,
            kids_profiles,
            events_new,
            events_already_present: scan.lines - events_new,
        })
    }
}

/// What `fast_load` changed for this transaction.
struct FastLoad {
    /// `CREATE INDEX` statements of the event indexes dropped, to run once events are in.
    dropped_indexes: Vec<String>,
}

/// Two shortcuts of bulk loading, both limited to this transaction:
///
/// - Into an empty `events` table (a first load), the indexes no constraint needs are
///   dropped and built again after the last batch: one sort per index instead of tens of
///   millions of random insertions. The `DROP` holds `events` exclusively until commit,
///   which on an empty table delays nobody's reads for long. The unique index that
///   `ON CONFLICT` needs stays.
/// - When the role may (a superuser), `session_replication_role = replica` skips the
///   per-row foreign-key triggers of events and watch state: every profile and title they
///   refer to is inserted (or checked present, for items no `.item` file defines) earlier in
///   this same transaction, so the checks could not fail. They cost a third of the time.
async fn fast_load(conn: &mut PgConnection) -> Result<FastLoad> {
    let superuser: bool =
        sqlx::query_scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            .fetch_optional(&mut *conn)
            .await?
            .unwrap_or(false);
    if superuser {
        sqlx::raw_sql("SET LOCAL session_replication_role = replica")
            .execute(&mut *conn)
            .await?;
    }
    let empty: bool = sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM events)")
        .fetch_one(&mut *conn)
        .await?;
    let mut dropped_indexes = Vec::new();
    if empty {
        let rows = sqlx::query(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i \
             WHERE i.schemaname = current_schema() AND i.tablename = 'events' \
               AND NOT EXISTS (SELECT 1 FROM pg_constraint c \
                               WHERE c.conname = i.indexname AND c.connamespace = \
                                     (SELECT oid FROM pg_namespace WHERE nspname = current_schema()))",
        )
        .fetch_all(&mut *conn)
        .await?;
        for r in rows {
            let name: String = r.try_get("indexname")?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP INDEX \"{name}\"")))
                .execute(&mut *conn)
                .await?;
            dropped_indexes.push(r.try_get("indexdef")?);
        }
        // Index builds sort in memory up to this.
        sqlx::raw_sql("SET LOCAL maintenance_work_mem = '512MB'")
            .execute(&mut *conn)
            .await?;
    }
    Ok(FastLoad { dropped_indexes })
}

/// Runs blocking `work` on a thread while reporting `read` bytes of `total` as `stage`.
async fn with_progress<T: Send + 'static>(
    stage: &str,
    total: u64,
    read: Arc<AtomicU64>,
    progress: Progress<'_>,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    let mut task = tokio::task::spawn_blocking(work);
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            done = &mut task => return Ok(done?),
            _ = tick.tick() => progress(stage, read.load(Ordering::Relaxed).min(total), total),
        }
    }
}

/// The checking pass: every line as `read_dir` checks it; nothing is written.
async fn scan_interactions(inter: &Path, titles: &[Title], progress: Progress<'_>) -> Result<Scan> {
    let total = std::fs::metadata(inter)
        .with_context(|| format!("{}", inter.display()))?
        .len();
    let known: HashSet<String> = titles.iter().map(|t| t.id.to_string()).collect();
    let read = Arc::new(AtomicU64::new(0));
    let path = inter.to_owned();
    let counter = read.clone();
    let scan = with_progress("checking", total, read, progress, move || {
        let mut scan = Scan::default();
        let mut seen: HashSet<String> = HashSet::new();
        movielens::stream_interactions(&path, |l: &InteractionLine<'_>| {
            if !seen.contains(l.user) {
                seen.insert(l.user.to_owned());
                scan.users.push(l.user.to_owned());
            }
            match scan.first_seen.get_mut(l.item) {
                Some(at) => *at = (*at).min(l.at),
                None => {
                    scan.first_seen.insert(l.item.to_owned(), l.at);
                }
            }
            if !known.contains(l.item) && !scan.external.contains_key(l.item) {
                scan.external.insert(l.item.to_owned(), l.line);
            }
            counter.store(l.bytes_read, Ordering::Relaxed);
            Ok(())
        })
        .map(|n| {
            scan.lines = n as u64;
            scan
        })
    })
    .await??;
    Ok(scan)
}

/// Appends `s` to a COPY text-format row, escaped.
fn field(out: &mut Vec<u8>, s: &str) {
    for b in s.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

fn opt_field(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => field(out, s),
        None => out.extend_from_slice(b"\\N"),
    }
}

/// Ends a COPY row (`fields` tab-separated already).
fn end_row(out: &mut Vec<u8>) {
    out.push(b'\n');
}

async fn copy(conn: &mut PgConnection, statement: &str, data: &[u8]) -> Result<u64> {
    let mut copy = conn.copy_in_raw(statement).await?;
    if let Err(e) = copy.send(data).await {
        let _ = copy.abort("import failed").await;
        return Err(e.into());
    }
    Ok(copy.finish().await?)
}

/// Interactions may refer to titles imported earlier; anything else is an error that names
/// the first line using it.
async fn check_external_items(conn: &mut PgConnection, scan: &Scan, inter: &Path) -> Result<()> {
    if scan.external.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = scan.external.keys().cloned().collect();
    let present: HashSet<String> = sqlx::query("SELECT id FROM titles WHERE id = ANY($1)")
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>("id"))
        .collect::<Result<_, _>>()?;
    let mut missing: Vec<(&String, &usize)> = scan
        .external
        .iter()
        .filter(|(id, _)| !present.contains(*id))
        .collect();
    // The earliest line, as `Store::import` reports the smallest id's first line: either
    // names a line that is wrong.
    missing.sort_by_key(|(id, line)| (**line, (*id).clone()));
    if let Some((id, line)) = missing.first() {
        bail!(
            "{}:{line}: unknown item_id {id}: not in the .item file nor in the database",
            inter.display()
        );
    }
    Ok(())
}

/// As `Store::import`: new titles are added; known ones take the file's metadata, keeping a
/// maturity rating or overview the file lacks and the earliest time the title was added.
async fn upsert_titles(
    conn: &mut PgConnection,
    titles: &[Title],
    progress: Progress<'_>,
) -> Result<()> {
    progress("titles", 0, titles.len() as u64);
    sqlx::raw_sql(
        "CREATE TEMP TABLE import_titles (id TEXT, name TEXT, release_year BIGINT, genres TEXT, \
         maturity_rating TEXT, overview TEXT, added_at BIGINT, countries TEXT) ON COMMIT DROP",
    )
    .execute(&mut *conn)
    .await?;
    let mut data = Vec::new();
    for t in titles {
        field(&mut data, t.id.as_str());
        data.push(b'\t');
        field(&mut data, &t.name);
        data.push(b'\t');
        opt_field(&mut data, t.year.map(|y| y.to_string()).as_deref());
        data.push(b'\t');
        field(&mut data, &t.genres.join(" "));
        data.push(b'\t');
        opt_field(&mut data, t.maturity.as_ref().map(|m| m.as_str()));
        data.push(b'\t');
        opt_field(&mut data, t.overview.as_deref());
        data.push(b'\t');
        field(&mut data, &t.added_at.to_string());
        data.push(b'\t');
        let countries = t
            .countries
            .as_ref()
            .map(|cs| cs.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(" "));
        opt_field(&mut data, countries.as_deref());
        end_row(&mut data);
    }
    copy(conn, "COPY import_titles FROM STDIN", &data).await?;
    sqlx::raw_sql(
        "INSERT INTO titles (id, name, release_year, genres, maturity_rating, overview, added_at, countries) \
         SELECT id, name, release_year, genres, maturity_rating, overview, added_at, countries FROM import_titles \
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, release_year = excluded.release_year, \
         genres = excluded.genres, \
         maturity_rating = COALESCE(excluded.maturity_rating, titles.maturity_rating), \
         overview = COALESCE(excluded.overview, titles.overview), \
         added_at = CASE WHEN excluded.added_at < titles.added_at THEN excluded.added_at ELSE titles.added_at END, \
         countries = excluded.countries",
    )
    .execute(&mut *conn)
    .await?;
    progress("titles", titles.len() as u64, titles.len() as u64);
    Ok(())
}

/// As `Store::import`: people from the knowledge graph replace what earlier imports stored
/// for these titles; without a knowledge graph stored people are left alone.
async fn replace_title_entities(
    conn: &mut PgConnection,
    meta: &Dataset,
    progress: Progress<'_>,
) -> Result<usize> {
    let Some(entities) = &meta.entities else {
        return Ok(0);
    };
    let total = entities.len() as u64;
    progress("title entities", 0, total);
    sqlx::raw_sql(
        "DELETE FROM title_entities WHERE title_id IN (SELECT id FROM import_titles); \
         CREATE TEMP TABLE import_entities (title_id TEXT, relation TEXT, entity_id TEXT) ON COMMIT DROP",
    )
    .execute(&mut *conn)
    .await?;
    let mut data = Vec::new();
    for e in entities {
        field(&mut data, e.title.as_str());
        data.push(b'\t');
        field(&mut data, &e.relation);
        data.push(b'\t');
        field(&mut data, &e.entity);
        end_row(&mut data);
    }
    copy(conn, "COPY import_entities FROM STDIN", &data).await?;
    sqlx::raw_sql(
        "INSERT INTO title_entities (title_id, relation, entity_id) \
         SELECT title_id, relation, entity_id FROM import_entities \
         ON CONFLICT (title_id, relation, entity_id) DO NOTHING",
    )
    .execute(&mut *conn)
    .await?;
    progress("title entities", total, total);
    Ok(entities.len())
}

/// As `Store::import`: every user of the `.user` file or of an interaction becomes an
/// account with a main profile, some also a kids profile; existing ones are left as they
/// are. Returns (users, kids profiles).
async fn insert_profiles(
    conn: &mut PgConnection,
    meta: &Dataset,
    scan: &Scan,
    opts: &ImportOptions,
    progress: Progress<'_>,
) -> Result<(usize, usize)> {
    let mut users: Vec<(&str, Option<&str>)> = meta
        .users
        .iter()
        .map(|u| (u.id.as_str(), u.country.as_ref().map(|c| c.as_str())))
        .collect();
    let in_file: HashSet<&str> = users.iter().map(|(id, _)| *id).collect();
    users.extend(
        scan.users
            .iter()
            .filter(|u| !in_file.contains(u.as_str()))
            .map(|u| (u.as_str(), None)),
    );
    let total = users.len() as u64;
    progress("profiles", 0, total);
    sqlx::raw_sql(
        "CREATE TEMP TABLE import_users (id TEXT, country TEXT, kids BOOLEAN) ON COMMIT DROP",
    )
    .execute(&mut *conn)
    .await?;
    let mut kids = 0;
    let mut data = Vec::new();
    for (id, country) in &users {
        let with_kids = has_kids_profile(id, opts.kids_every);
        kids += usize::from(with_kids);
        field(&mut data, id);
        data.push(b'\t');
        opt_field(&mut data, *country);
        data.push(b'\t');
        data.extend_from_slice(if with_kids { b"t" } else { b"f" });
        end_row(&mut data);
    }
    copy(conn, "COPY import_users FROM STDIN", &data).await?;
    drop(data);
    sqlx::query(
        "INSERT INTO accounts (id, name, created_at) \
         SELECT id, 'Account ' || id, $1 FROM import_users ON CONFLICT (id) DO NOTHING",
    )
    .bind(opts.received_at)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO profiles (id, account_id, name, is_kids, maturity_limit, country, created_at) \
         SELECT id, id, 'Member ' || id, 0, NULL, country, $1 FROM import_users \
         UNION ALL \
         SELECT id || '-kids', id, 'Kids', 1, $2, country, $1 FROM import_users WHERE kids \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(opts.received_at)
    .bind(DEFAULT_KIDS_LIMIT.as_str())
    .execute(&mut *conn)
    .await?;
    progress("profiles", total, total);
    Ok((users.len(), kids))
}

/// The second pass: each interaction becomes the event it stands for (`imported_event`), at
/// its original time, with `Store::import`'s client event id. Returns the events new to the
/// database.
async fn insert_events(
    conn: &mut PgConnection,
    inter: &Path,
    lines: u64,
    opts: &ImportOptions,
    progress: Progress<'_>,
) -> Result<u64> {
    sqlx::raw_sql(
        "CREATE TEMP TABLE import_events (profile_id TEXT, title_id TEXT, kind TEXT, \
         value DOUBLE PRECISION, occurred_at BIGINT, client_event_id TEXT) ON COMMIT DROP",
    )
    .execute(&mut *conn)
    .await?;
    // The reader runs on its own thread, a batch ahead of the database.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(Vec<u8>, u64)>(2);
    let path: PathBuf = inter.to_owned();
    let reader = tokio::task::spawn_blocking(move || -> Result<()> {
        let mut data = Vec::with_capacity(64 << 20);
        let mut in_batch = 0u64;
        let mut value = String::new();
        let send = |data: &mut Vec<u8>, n: &mut u64| {
            let full = std::mem::replace(data, Vec::with_capacity(64 << 20));
            let sent = tx.blocking_send((full, *n)).is_ok();
            *n = 0;
            sent
        };
        movielens::stream_interactions(&path, |l: &InteractionLine<'_>| {
            let action = imported_event(l.rating);
            let kind = action.kind().as_str();
            field(&mut data, l.user);
            data.push(b'\t');
            field(&mut data, l.item);
            data.push(b'\t');
            data.extend_from_slice(kind.as_bytes());
            data.push(b'\t');
            value.clear();
            // `{}` of an f64 is the shortest text that reads back as the same number.
            if let Some(v) = action.value() {
                use std::fmt::Write;
                let _ = write!(value, "{v}");
            }
            opt_field(&mut data, action.value().map(|_| value.as_str()));
            data.push(b'\t');
            data.extend_from_slice(l.at.to_string().as_bytes());
            data.push(b'\t');
            data.extend_from_slice(b"import:");
            data.extend_from_slice(kind.as_bytes());
            data.push(b':');
            field(&mut data, l.item);
            data.push(b':');
            data.extend_from_slice(l.at.to_string().as_bytes());
            end_row(&mut data);
            in_batch += 1;
            if in_batch as usize == BATCH_LINES && !send(&mut data, &mut in_batch) {
                return Err("the import stopped".into());
            }
            Ok(())
        })?;
        if in_batch > 0 {
            send(&mut data, &mut in_batch);
        }
        Ok(())
    });
    let mut done = 0u64;
    let mut inserted = 0u64;
    progress("events", 0, lines);
    while let Some((data, n)) = rx.recv().await {
        copy(conn, "COPY import_events FROM STDIN", &data).await?;
        drop(data);
        // A temporary table is read in the order it was written (no synchronized scans of
        // local buffers), so events get ids in file order, as with `Store::import`.
        inserted += sqlx::query(
            "INSERT INTO events (profile_id, title_id, kind, value, occurred_at, received_at, client_event_id, request_id) \
             SELECT profile_id, title_id, kind, value, occurred_at, $1, client_event_id, NULL FROM import_events \
             ON CONFLICT (profile_id, client_event_id) DO NOTHING",
        )
        .bind(opts.received_at)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        sqlx::raw_sql("TRUNCATE import_events")
            .execute(&mut *conn)
            .await?;
        done += n;
        progress("events", done, lines);
    }
    reader.await??;
    Ok(inserted)
}

/// `WatchState::apply` over a (profile, title)'s events in (occurred_at, id) order, set-based.
/// In that order every event is "newer" than the state before it, so each field is that of
/// the last event of its kinds: progress of the last PROGRESS or COMPLETE (COMPLETE: 1),
/// rating and thumbs of the last RATING and THUMBS_*; `last_watched_at` is the latest
/// PLAY/PROGRESS/COMPLETE, `completed` whether any COMPLETE. "Last" is the greatest
/// [occurred_at, id, value] array (float8 holds both integers exactly below 2^53). A
/// (profile, title) with events of other kinds only (CLICK) still gets its default row.
/// `tests/import.rs` checks it against `rebuild_watch_state` on the same events.
const WATCH_STATE_FROM_EVENTS: &str = "INSERT INTO watch_state \
    (profile_id, title_id, progress, completed, last_watched_at, rating, rated_at, thumbs, thumbs_at) \
    SELECT e.profile_id, e.title_id, \
      COALESCE((MAX(ARRAY[e.occurred_at::float8, e.id::float8, \
                 CASE WHEN e.kind = 'COMPLETE' THEN 1.0::float8 ELSE e.value END]) \
               FILTER (WHERE e.kind IN ('PROGRESS', 'COMPLETE')))[3], 0), \
      MAX(CASE WHEN e.kind = 'COMPLETE' THEN 1 ELSE 0 END), \
      MAX(e.occurred_at) FILTER (WHERE e.kind IN ('PLAY', 'PROGRESS', 'COMPLETE')), \
      (MAX(ARRAY[e.occurred_at::float8, e.id::float8, e.value]) \
        FILTER (WHERE e.kind = 'RATING'))[3], \
      MAX(e.occurred_at) FILTER (WHERE e.kind = 'RATING'), \
      COALESCE((MAX(ARRAY[e.occurred_at, e.id, CASE WHEN e.kind = 'THUMBS_UP' THEN 1 ELSE -1 END]) \
               FILTER (WHERE e.kind IN ('THUMBS_UP', 'THUMBS_DOWN')))[3], 0), \
      MAX(e.occurred_at) FILTER (WHERE e.kind IN ('THUMBS_UP', 'THUMBS_DOWN')) \
    FROM events e JOIN import_touched t ON t.profile_id = e.profile_id \
    GROUP BY e.profile_id, e.title_id";

/// Watch state is a projection of the whole event log, so it is rebuilt for every profile
/// this import touched (their live events included), as `Store::import` does.
async fn rebuild_watch_state(
    conn: &mut PgConnection,
    touched: &[String],
    progress: Progress<'_>,
) -> Result<()> {
    let total = touched.len() as u64;
    progress("watch state", 0, total);
    sqlx::raw_sql("CREATE TEMP TABLE import_touched (profile_id TEXT PRIMARY KEY) ON COMMIT DROP")
        .execute(&mut *conn)
        .await?;
    let mut data = Vec::new();
    for p in touched {
        field(&mut data, p);
        end_row(&mut data);
    }
    copy(conn, "COPY import_touched FROM STDIN", &data).await?;
    drop(data);
    sqlx::raw_sql(
        "ANALYZE import_touched; \
         DELETE FROM watch_state WHERE profile_id IN (SELECT profile_id FROM import_touched)",
    )
    .execute(&mut *conn)
    .await?;
    sqlx::raw_sql(WATCH_STATE_FROM_EVENTS)
        .execute(&mut *conn)
        .await?;
    progress("watch state", total, total);
    Ok(())
}
