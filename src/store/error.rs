//! What went wrong in the store, classified once so that callers decide on the class, not on
//! message text: a transient fault (the database is unreachable, restarting, out of space,
//! its files not writable, or too busy) is worth retrying and maps to `UNAVAILABLE`; anything
//! else is a defect or bad data and maps to `INTERNAL`.

use sqlx::error::DatabaseError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot do this right now; the same request may succeed in a moment.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    /// The database was not asked because it failed a moment ago (the serving layer's
    /// breaker): transient, like the pool's own "no connection in time", which it reports.
    pub fn not_asked() -> Self {
        StoreError::Unavailable(Box::new(sqlx::Error::PoolTimedOut))
    }

    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }

    /// Whether `e` (or anything it wraps) is a transient store error.
    pub fn is_transient_cause(e: &anyhow::Error) -> bool {
        e.chain().any(|c| {
            c.downcast_ref::<StoreError>()
                .is_some_and(StoreError::is_transient)
        })
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if is_transient(&e) {
            StoreError::Unavailable(Box::new(e))
        } else {
            StoreError::Internal(e.into())
        }
    }
}

/// The page's reads on SQLite (`sqlite_reads`): classified by the same result codes as
/// sqlx's SQLite errors.
impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        if e.sqlite_error()
            .is_some_and(|f| sqlite_transient(f.extended_code))
        {
            StoreError::Unavailable(Box::new(e))
        } else {
            StoreError::Internal(e.into())
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Internal(e.into())
    }
}

impl From<crate::domain::ParseError> for StoreError {
    fn from(e: crate::domain::ParseError) -> Self {
        StoreError::Internal(e.into())
    }
}

/// Faults of the connection or the storage under it, not of the statement.
fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        // The pool found no working connection in time (server down, or every connection
        // busy), or the connection broke: nothing about the statement was wrong.
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed
        // A transaction could not be started; the connection it was tried on is discarded
        // on release (see `Store::open`), so a retry gets a clean one.
        | sqlx::Error::BeginFailed
        | sqlx::Error::InvalidSavePointStatement => true,
        sqlx::Error::Database(db) => transient_database_error(db.as_ref()),
        _ => false,
    }
}

fn transient_database_error(db: &dyn DatabaseError) -> bool {
    if let Some(e) = db.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
        // Extended result codes carry the primary code in their low byte.
        return e
            .code()
            .and_then(|c| c.parse::<i32>().ok())
            .is_some_and(sqlite_transient);
    }
    if let Some(e) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        let code = e.code();
        return code.starts_with("08") // connection exception
            || code.starts_with("53") // insufficient resources: disk full, out of memory, too many connections
            || code.starts_with("57P") // admin_shutdown, crash_shutdown, cannot_connect_now
            || code.starts_with("58") // system error: I/O
            || matches!(
                code,
                "40001" // serialization_failure
                | "40P01" // deadlock_detected
                | "55P03" // lock_not_available
                | "57014" // query_canceled (statement timeout)
                | "25006" // read_only_sql_transaction: a standby during failover
            );
    }
    false
}

/// Whether a SQLite result code (extended codes carry the primary one in their low byte) is
/// a fault of the storage, not of the statement.
fn sqlite_transient(code: i32) -> bool {
    matches!(
        code & 0xff,
        5 // SQLITE_BUSY: another writer holds the lock beyond the busy timeout
        | 6 // SQLITE_LOCKED
        | 7 // SQLITE_NOMEM
        | 8 // SQLITE_READONLY: the file (or its directory) is not writable
        | 9 // SQLITE_INTERRUPT
        | 10 // SQLITE_IOERR: the OS refused a read, write or sync
        | 13 // SQLITE_FULL: the disk is full
        | 14 // SQLITE_CANTOPEN
        | 15 // SQLITE_PROTOCOL: WAL lock protocol race
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_faults_are_transient_and_bad_statements_are_not() {
        assert!(StoreError::from(sqlx::Error::PoolTimedOut).is_transient());
        assert!(
            StoreError::from(sqlx::Error::Io(std::io::Error::from(
                std::io::ErrorKind::ConnectionRefused
            )))
            .is_transient()
        );
        assert!(!StoreError::from(sqlx::Error::RowNotFound).is_transient());
        assert!(!StoreError::from(sqlx::Error::ColumnNotFound("x".into())).is_transient());
        let wrapped = anyhow::Error::from(StoreError::from(sqlx::Error::PoolTimedOut))
            .context("loading the page");
        assert!(StoreError::is_transient_cause(&wrapped));
        assert!(!StoreError::is_transient_cause(&anyhow::anyhow!(
            "database unavailable"
        )));
    }
}
