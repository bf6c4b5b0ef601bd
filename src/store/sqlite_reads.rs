//! The reads a page waits for, on SQLite, made on the request's own thread (`SqliteReads`).
//!
//! sqlx runs every SQLite connection on a thread of its own: a statement is sent to that
//! thread, its rows come back through a channel, the `Any` driver copies each row into values
//! of its own, and returning the connection to the pool pings it — another round trip, in a
//! task of its own. For a page's two small indexed reads (the profile with its history's
//! stamp, the sticky-bucket documents) those hand-offs were most of its context switches.
//! Here they run where the request runs, on rusqlite connections to the same file, taken from
//! a free list. SQLite in WAL mode never makes a reader wait for a writer, so a read holds its
//! thread for the statement alone — tens of microseconds, less than the hand-offs it saves.
//! Writes, imports and every other read stay on sqlx; PostgreSQL is untouched.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::{
    PROFILE_BY_ID, PROFILE_WITH_EVENTS, ProfileColumns, STATES_WITH_EVENTS, StoreResult,
    WatchStateColumns, profile_from_columns, watch_state_from_columns,
};
use crate::domain::{Profile, ProfileId};
use crate::engine::history::WatchState;

/// How long a read waits for a lock. A WAL reader only meets one while another connection
/// recovers the WAL after a crash; the read blocks its thread meanwhile, so the wait is
/// short and then the read fails as `UNAVAILABLE` (the page falls back, as for a database
/// that is down).
const BUSY_TIMEOUT: Duration = Duration::from_millis(250);

/// Idle connections kept. A connection is out only for one synchronous read, so at most one
/// per thread that reads at once (the runtime's workers) is ever out; more would sit idle.
const MAX_IDLE: usize = 8;

/// Read-only connections to one SQLite file, made on demand and reused.
pub(super) struct SqliteReads {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for SqliteReads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteReads")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteReads {
    /// Reads of the database file at `path`, which sqlx has opened (and migrated) already.
    pub(super) fn new(path: &Path) -> Self {
        SqliteReads {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
        }
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        // Not `SQLITE_OPEN_READ_ONLY`: a read-only connection cannot create the WAL index
        // when it is the first to open the file since the last one closed. `query_only`
        // refuses writes instead.
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "query_only", true)?;
        Ok(conn)
    }

    /// Runs `read` on an idle connection (or a new one). A connection whose read failed is
    /// closed, not kept: the next read opens a fresh one, so a fault cannot linger in it.
    fn with<T>(&self, read: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> StoreResult<T> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.open()?,
        };
        let result = read(&conn)?;
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
        Ok(result)
    }

    /// Closes the idle connections (`Store::close`, e.g. before a file is replaced). A read
    /// after it would open a new one where sqlx's closed pools refuse; nothing reads then.
    pub(super) fn close(&self) {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// A profile (not removed) with its number of stored events, `KnownHistories`' stamp.
    pub(super) fn profile_and_events(&self, id: &ProfileId) -> StoreResult<Option<(Profile, i64)>> {
        // A tuple of columns is read from the row's first columns, in order (rusqlite's
        // `TryFrom<&Row>`): `ProfileColumns`, then the count after them.
        let row = self.with(|conn| {
            conn.prepare_cached(PROFILE_WITH_EVENTS)?
                .query_row([id.as_str()], |r| {
                    Ok((ProfileColumns::try_from(r)?, r.get(7)?))
                })
                .optional()
        })?;
        row.map(|(columns, events)| Ok((profile_from_columns(columns)?, events)))
            .transpose()
    }

    /// A profile (not removed).
    pub(super) fn profile(&self, id: &ProfileId) -> StoreResult<Option<Profile>> {
        let row = self.with(|conn| {
            conn.prepare_cached(PROFILE_BY_ID)?
                .query_row([id.as_str()], |r| ProfileColumns::try_from(r))
                .optional()
        })?;
        Ok(row.map(profile_from_columns).transpose()?)
    }

    /// A profile's watch states, with its number of stored events read in the same statement
    /// (`None` without a state: there is no row to read it from).
    pub(super) fn states(&self, id: &ProfileId) -> StoreResult<(Vec<WatchState>, Option<i64>)> {
        let mut events = None;
        let rows = self.with(|conn| {
            let mut statement = conn.prepare_cached(STATES_WITH_EVENTS)?;
            let mut rows = statement.query([id.as_str()])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                events = Some(r.get(8)?);
                out.push(WatchStateColumns::try_from(r)?);
            }
            Ok(out)
        })?;
        let states = rows
            .into_iter()
            .map(watch_state_from_columns)
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok((states, events))
    }

    /// The sticky-bucket documents `(identity, document)` of those of `identities` that have
    /// one.
    pub(super) fn sticky_documents(
        &self,
        identities: &[String],
    ) -> StoreResult<Vec<(String, String)>> {
        self.with(|conn| {
            let mut statement = conn
                .prepare_cached("SELECT assignments FROM sticky_assignments WHERE identity = ?1")?;
            let mut out = Vec::new();
            // One indexed lookup per identity (a page has one or two): one statement to
            // prepare and cache, whatever their number.
            for identity in identities {
                if let Some(doc) = statement
                    .query_row([identity.as_str()], |r| r.get::<_, String>(0))
                    .optional()?
                {
                    out.push((identity.clone(), doc));
                }
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::AccountId;
    use crate::store::Store;

    #[test]
    fn a_database_that_cannot_be_opened_is_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let reads = SqliteReads::new(&dir.path().join("gone.db"));
        let err = reads.profile(&ProfileId::parse("1").unwrap()).unwrap_err();
        assert!(err.is_transient(), "{err}");
    }

    /// What the request's thread reads is what sqlx wrote, on the same file.
    #[tokio::test]
    async fn reads_what_the_store_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store = Store::open(&url).await.unwrap();
        assert!(store.sqlite_reads.is_some());
        let id = ProfileId::parse("7").unwrap();
        let profile = Profile {
            id: id.clone(),
            account_id: AccountId::parse("a7").unwrap(),
            name: "Seven".into(),
            is_kids: true,
            maturity_limit: None,
            country: None,
            onboarding_genres: vec!["Comedy".into(), "Drama".into()],
        };
        assert!(store.create_profile(&profile, 1).await.unwrap());
        let (read, events) = store
            .sqlite_reads
            .as_ref()
            .unwrap()
            .profile_and_events(&id)
            .unwrap()
            .unwrap();
        assert_eq!(read, profile);
        assert_eq!(events, 0);
        assert_eq!(
            store
                .profile(&ProfileId::parse("8").unwrap())
                .await
                .unwrap(),
            None
        );

        let docs = vec![
            ("id||7".to_owned(), r#"{"a":1}"#.to_owned()),
            ("device||x".to_owned(), r#"{"b":2}"#.to_owned()),
        ];
        store.save_sticky_documents(&docs, 5).await.unwrap();
        let asked = ["id||7", "id||none", "device||x"].map(str::to_owned);
        assert_eq!(store.sticky_documents(&asked).await.unwrap(), docs);
    }
}
