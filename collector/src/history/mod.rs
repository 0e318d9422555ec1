//! The state directory's database: the history (events per hour, day and month of every
//! account x type, and of every type over all accounts under the account `all`, as the classic
//! aggregator filed them, kept for years) and the engine's windows (what a
//! restarted tally shows at once).
//!
//! A [`Checkpointer`] reads the engine's rings every few seconds, off the ingest path (one
//! atomic load per series, then a copy of the series that moved), and in one transaction adds
//! to the history what is new since it last looked and writes what changed in the windows.
//! So every event is counted once, a crash loses at most what arrived since the last
//! checkpoint, and after a restart the engine goes on from what was kept. Hours are UTC hours;
//! days and months are local dates in the clock's zone at the time of writing.
//!
//! The database is one file, [`DATABASE`], in WAL mode: `sqlite3` and `tally history` read it
//! while tally writes. One tally at a time writes to a directory (a lock file says which); a
//! file that is not a sound database is moved aside with the time in its name, never
//! overwritten; one written by a newer tally is left alone and not used.

pub mod classic;
mod windows;

use nix::fcntl::{Flock, FlockArg};
use rusqlite::{Connection, OpenFlags, params};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tally_core::{
    Clock, Engine, EngineConfig, HistoryView, LayoutError, SavedBody, SeriesId, Timestamp, WindowId, hour_of,
};

/// The database's name in the state directory.
pub const DATABASE: &str = "tally.db";
/// Held (`flock`) by the tally that writes the directory's database.
const LOCK: &str = "tally.lock";
/// The schema this tally writes; a database with a higher one is refused.
pub const SCHEMA_VERSION: i64 = 2;
/// The account each type over all accounts is filed under.
pub const ALL: &str = "all";

const SCHEMA: &str = "
    CREATE TABLE hours (
        account TEXT NOT NULL, type TEXT NOT NULL,
        hour INTEGER NOT NULL, -- Unix seconds at the start of the UTC hour
        count INTEGER NOT NULL,
        PRIMARY KEY (account, type, hour)
    ) WITHOUT ROWID;
    CREATE TABLE days (
        account TEXT NOT NULL, type TEXT NOT NULL,
        year INTEGER NOT NULL, month INTEGER NOT NULL, day INTEGER NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (account, type, year, month, day)
    ) WITHOUT ROWID;
    CREATE TABLE months (
        account TEXT NOT NULL, type TEXT NOT NULL,
        year INTEGER NOT NULL, month INTEGER NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (account, type, year, month)
    ) WITHOUT ROWID;
";

/// Where and how the history is kept (`--state`, `--checkpoint-interval`, `--keep-hours`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateSettings {
    pub dir: PathBuf,
    pub interval: std::time::Duration,
    pub keep_hours: std::time::Duration,
}

/// Why the state directory's database cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "{0} is in use by another tally: this one runs without history (give it a --state DIR of its own)"
    )]
    InUse(PathBuf),
    #[error(
        "{path} was written by a newer tally (schema {found}; this one knows {SCHEMA_VERSION}): left as it is, and not used"
    )]
    Newer { path: PathBuf, found: i64 },
    #[error("cannot use the state directory {path}: {error}")]
    Io {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
    #[error("{path}: {error}")]
    Database {
        path: PathBuf,
        #[source]
        error: rusqlite::Error,
    },
    #[error("no history in {0} (tally keeps it there while it runs, unless given --no-state)")]
    Missing(PathBuf),
    #[error("no resolution's buckets divide an hour: no state kept")]
    NoHours,
    #[error("bad resolutions in the configuration: {0}")]
    Layout(#[from] LayoutError),
}

/// What the history is counted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    Hour,
    Day,
    Month,
}

/// One stored count: the period (`2026-12-03 14:00` local, `2026-12-03`, `2026-12`), the
/// account, the type and the number of events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Count {
    pub period: String,
    pub account: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub count: u64,
}

/// New events of one series (an account's type, or a type under `all`) in one UTC hour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Added {
    pub account: Arc<str>,
    pub kind: Arc<str>,
    pub hour: Timestamp,
    pub count: u64,
    /// An account's own series (not a type's over all accounts, under `all`): what counts
    /// as events.
    pub own: bool,
}

/// The history database, open for writing (by one tally per directory) or for reading.
pub struct Store {
    db: Connection,
    path: PathBuf,
    /// The directory's lock, held while open for writing.
    _lock: Option<Flock<File>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// What opening an existing file found.
enum Found {
    Sound(Connection),
    Newer(i64),
    Broken(String),
}

fn examine(path: &Path) -> Found {
    let db = match Connection::open(path) {
        Ok(db) => db,
        Err(error) => return Found::Broken(error.to_string()),
    };
    let version = db.query_row("PRAGMA user_version", [], |row| row.get::<_, i64>(0));
    match version {
        Err(error) => return Found::Broken(error.to_string()),
        Ok(found) if found > SCHEMA_VERSION => return Found::Newer(found),
        Ok(_) => {}
    }
    match db.query_row("PRAGMA quick_check", [], |row| row.get::<_, String>(0)) {
        Ok(verdict) if verdict == "ok" => Found::Sound(db),
        Ok(verdict) => Found::Broken(verdict),
        Err(error) => Found::Broken(error.to_string()),
    }
}

impl Store {
    /// Opens the database in `dir` for writing, creating both if need be. A file that is not
    /// a sound database is moved aside (`tally.db.corrupt-20261203T101500Z`) and a new one
    /// begun: the returned warning says so.
    pub fn open(dir: &Path) -> Result<(Store, Option<String>), StateError> {
        let io = |error| StateError::Io {
            path: dir.to_owned(),
            error,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let lock_file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK))
            .map_err(io)?;
        let lock = Flock::lock(lock_file, FlockArg::LockExclusiveNonblock)
            .map_err(|_| StateError::InUse(dir.to_owned()))?;
        let path = dir.join(DATABASE);
        let mut warning = None;
        let db = match path.exists().then(|| examine(&path)) {
            Some(Found::Sound(db)) => db,
            Some(Found::Newer(found)) => return Err(StateError::Newer { path, found }),
            Some(Found::Broken(why)) => {
                let aside = move_aside(&path).map_err(io)?;
                warning = Some(format!(
                    "{} could not be read ({why}): moved aside to {}; the history starts afresh",
                    path.display(),
                    aside.display()
                ));
                Connection::open(&path).map_err(|error| database(&path, error))?
            }
            None => Connection::open(&path).map_err(|error| database(&path, error))?,
        };
        let store = Store {
            db,
            path,
            _lock: Some(lock),
        };
        store.prepare().map_err(|error| database(&store.path, error))?;
        Ok((store, warning))
    }

    /// Opens the database in `dir` for reading (while a tally may be writing it).
    pub fn open_read_only(dir: &Path) -> Result<Store, StateError> {
        let path = dir.join(DATABASE);
        if !path.exists() {
            return Err(StateError::Missing(dir.to_owned()));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let db = Connection::open_with_flags(&path, flags).map_err(|error| database(&path, error))?;
        let version: i64 = (db.query_row("PRAGMA user_version", [], |row| row.get(0)))
            .map_err(|error| database(&path, error))?;
        if version > SCHEMA_VERSION {
            return Err(StateError::Newer { path, found: version });
        }
        Ok(Store {
            db,
            path,
            _lock: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn prepare(&self) -> rusqlite::Result<()> {
        // WAL: readers never wait for the writer; NORMAL: a commit survives tally crashing
        // (only a power cut may lose the last ones).
        self.db.pragma_update(None, "journal_mode", "WAL")?;
        self.db.pragma_update(None, "synchronous", "NORMAL")?;
        let version: i64 = self.db.query_row("PRAGMA user_version", [], |row| row.get(0))?;
        // Schema 1 kept the history alone; 2 adds the windows.
        if version < SCHEMA_VERSION {
            let history = if version == 0 { SCHEMA } else { "" };
            let windows = windows::SCHEMA;
            self.db.execute_batch(&format!(
                "BEGIN; {history} {windows} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            ))?;
        }
        Ok(())
    }

    /// Adds `added` to the hours, days and months (in the checkpoint's transaction).
    fn add(transaction: &rusqlite::Transaction<'_>, added: &[Added], clock: &Clock) -> rusqlite::Result<()> {
        {
            let mut hours = transaction.prepare_cached(
                "INSERT INTO hours VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT DO UPDATE SET count = count + excluded.count",
            )?;
            let mut days = transaction.prepare_cached(
                "INSERT INTO days VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT DO UPDATE SET count = count + excluded.count",
            )?;
            let mut months = transaction.prepare_cached(
                "INSERT INTO months VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT DO UPDATE SET count = count + excluded.count",
            )?;
            for row in added {
                let (account, kind, count) = (&*row.account, &*row.kind, row.count as i64);
                let local = clock.civil_hour(row.hour);
                let hour = (row.hour.as_millis() / 1000) as i64;
                hours.execute(params![account, kind, hour, count])?;
                days.execute(params![account, kind, local.year, local.month, local.day, count])?;
                months.execute(params![account, kind, local.year, local.month, count])?;
            }
        }
        Ok(())
    }

    /// Forgets the hours before `before` (days and months are kept for ever).
    fn prune_hours(&self, before: Timestamp) -> rusqlite::Result<usize> {
        let before = (before.as_millis() / 1000) as i64;
        self.db.execute("DELETE FROM hours WHERE hour < ?1", [before])
    }

    /// The stored counts of `account` (and of `kind` alone, if given) by `period`, from the
    /// period that `since` is in; oldest first, then by type.
    pub fn counts(
        &self,
        account: &str,
        kind: Option<&str>,
        period: Period,
        since: Timestamp,
        clock: &Clock,
    ) -> rusqlite::Result<Vec<Count>> {
        let from = clock.civil_hour(since);
        let (sql, key): (&str, i64) = match period {
            Period::Hour => (
                "SELECT hour, 0, 0, type, count FROM hours
                 WHERE account = ?1 AND (?2 IS NULL OR type = ?2) AND hour >= ?3 ORDER BY hour, type",
                (hour_of(since).as_millis() / 1000) as i64,
            ),
            Period::Day => (
                "SELECT year, month, day, type, count FROM days
                 WHERE account = ?1 AND (?2 IS NULL OR type = ?2) AND (year * 10000 + month * 100 + day) >= ?3
                 ORDER BY year, month, day, type",
                i64::from(from.year) * 10_000 + i64::from(from.month) * 100 + i64::from(from.day),
            ),
            Period::Month => (
                "SELECT year, month, 0, type, count FROM months
                 WHERE account = ?1 AND (?2 IS NULL OR type = ?2) AND (year * 100 + month) >= ?3
                 ORDER BY year, month, type",
                i64::from(from.year) * 100 + i64::from(from.month),
            ),
        };
        let mut statement = self.db.prepare_cached(sql)?;
        let rows = statement.query_map(params![account, kind, key], |row| {
            let (a, b, c): (i64, i64, i64) = (row.get(0)?, row.get(1)?, row.get(2)?);
            let period = match period {
                Period::Hour => {
                    let local = clock.civil_hour(Timestamp::from_millis(a as u64 * 1000));
                    let (y, m, d, h) = (local.year, local.month, local.day, local.hour);
                    format!("{y:04}-{m:02}-{d:02} {h:02}:00")
                }
                Period::Day => format!("{a:04}-{b:02}-{c:02}"),
                Period::Month => format!("{a:04}-{b:02}"),
            };
            Ok(Count {
                period,
                account: account.to_owned(),
                kind: row.get(3)?,
                count: row.get::<_, i64>(4)? as u64,
            })
        })?;
        rows.collect()
    }

    /// Bytes each table takes in the database file (SQLite's `dbstat`), largest first.
    pub fn table_bytes(&self) -> rusqlite::Result<Vec<(String, u64)>> {
        let mut statement = self
            .db
            .prepare("SELECT name, SUM(pgsize) AS bytes FROM dbstat GROUP BY name ORDER BY bytes DESC")?;
        let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get::<_, i64>(1)? as u64)))?;
        rows.collect()
    }

    /// The accounts with history, `all` among them.
    pub fn accounts(&self) -> rusqlite::Result<Vec<String>> {
        let mut statement = self
            .db
            .prepare_cached("SELECT DISTINCT account FROM months ORDER BY account")?;
        statement.query_map([], |row| row.get(0))?.collect()
    }

    /// The types `account` has history of.
    pub fn types(&self, account: &str) -> rusqlite::Result<Vec<String>> {
        let mut statement = self
            .db
            .prepare_cached("SELECT DISTINCT type FROM months WHERE account = ?1 ORDER BY type")?;
        statement.query_map([account], |row| row.get(0))?.collect()
    }

    /// The years `account` has history of `kind` in.
    pub fn years(&self, account: &str, kind: &str) -> rusqlite::Result<Vec<i16>> {
        let mut statement = self.db.prepare_cached(
            "SELECT DISTINCT year FROM months WHERE account = ?1 AND type = ?2 ORDER BY year",
        )?;
        statement.query_map([account, kind], |row| row.get(0))?.collect()
    }

    /// The events of each month of `year` (months without events left out).
    pub fn months_of(&self, account: &str, kind: &str, year: i16) -> rusqlite::Result<BTreeMap<i8, u64>> {
        let mut statement = self.db.prepare_cached(
            "SELECT month, count FROM months WHERE account = ?1 AND type = ?2 AND year = ?3",
        )?;
        statement
            .query_map(params![account, kind, year], |row| {
                Ok((row.get(0)?, row.get::<_, i64>(1)? as u64))
            })?
            .collect()
    }

    /// The events of each day of a month.
    pub fn days_of(
        &self,
        account: &str,
        kind: &str,
        year: i16,
        month: i8,
    ) -> rusqlite::Result<BTreeMap<i8, u64>> {
        let mut statement = self.db.prepare_cached(
            "SELECT day, count FROM days WHERE account = ?1 AND type = ?2 AND year = ?3 AND month = ?4",
        )?;
        statement
            .query_map(params![account, kind, year, month], |row| {
                Ok((row.get(0)?, row.get::<_, i64>(1)? as u64))
            })?
            .collect()
    }

    /// The events of each local hour (0-23) of a day, while its hours are kept.
    pub fn hours_of(
        &self,
        account: &str,
        kind: &str,
        (year, month, day): (i16, i8, i8),
        clock: &Clock,
    ) -> rusqlite::Result<BTreeMap<i8, u64>> {
        let Some((start, end)) = clock.day_span(year, month, day) else {
            return Ok(BTreeMap::new());
        };
        let seconds = |t: Timestamp| (t.as_millis() / 1000) as i64;
        let mut statement = self.db.prepare_cached(
            "SELECT hour, count FROM hours WHERE account = ?1 AND type = ?2 AND hour >= ?3 AND hour < ?4",
        )?;
        let rows = statement.query_map(params![account, kind, seconds(start), seconds(end)], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)? as u64))
        })?;
        let mut hours = BTreeMap::new();
        for row in rows {
            let (hour, count) = row?;
            let local = clock.civil_hour(Timestamp::from_millis(hour as u64 * 1000));
            *hours.entry(local.hour).or_default() += count;
        }
        Ok(hours)
    }
}

/// What the dashboards' history views show: `account`'s last 30 days and 12 months as of
/// `now`, from the store in `dir` (none: the history is not kept).
pub fn view(dir: Option<&Path>, account: &str, clock: &Clock, now: Timestamp) -> Result<HistoryView, String> {
    const DAY_MS: u64 = 86_400_000;
    let dir =
        dir.ok_or("no history is kept: tally was started with --no-state, or with --demo and no --state")?;
    let store = Store::open_read_only(dir).map_err(|e| e.to_string())?;
    let rows = |period, days: u64| {
        let since = now.saturating_sub_millis(days * DAY_MS);
        let counts = (store.counts(account, None, period, since, clock))
            .map_err(|e| format!("{}: {e}", store.path().display()))?;
        Ok::<_, String>(
            counts
                .into_iter()
                .map(|c| (c.period, c.kind, c.count))
                .collect::<Vec<_>>(),
        )
    };
    Ok(HistoryView::new(
        account,
        &rows(Period::Day, 29)?,
        &rows(Period::Month, 335)?,
    ))
}

fn database(path: &Path, error: rusqlite::Error) -> StateError {
    StateError::Database {
        path: path.to_owned(),
        error,
    }
}

/// Renames `path` (and its WAL files) to `path.corrupt-<UTC time>`, returning the new name.
fn move_aside(path: &Path) -> std::io::Result<PathBuf> {
    let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ").to_string();
    let aside = PathBuf::from(format!("{}.corrupt-{stamp}", path.display()));
    std::fs::rename(path, &aside)?;
    for suffix in ["-wal", "-shm"] {
        let (from, to) = (
            format!("{}{suffix}", path.display()),
            format!("{}{suffix}", aside.display()),
        );
        if Path::new(&from).exists() {
            std::fs::rename(from, to)?;
        }
    }
    Ok(aside)
}

/// The events in `added`: each is in its account's series and in its type's over all
/// accounts.
pub fn events(added: &[Added]) -> u64 {
    added.iter().filter(|a| a.own).map(|a| a.count).sum()
}

/// What a checkpoint wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// What was added to each hour (and its day and month), for mirrors of the history.
    pub added: Vec<Added>,
    /// Series of the windows written, and their ring chunks and bodies that changed.
    pub series: usize,
    pub chunks: usize,
    pub bodies: usize,
}

impl Written {
    /// The events written (each also counted under `all`).
    pub fn events(&self) -> u64 {
        events(&self.added)
    }
}

/// What the checkpointer last saw and wrote of a series.
struct Seen {
    /// Its row in the `series` table.
    row: i64,
    total: u64,
    /// The total moved at the last look: look again, in case the rings were still being
    /// written (a recorder adds to the total just before the buckets).
    recheck: bool,
    /// Hashes of its rings' chunks as written.
    chunks: Vec<u64>,
    /// A type's series (of an account, or over all of them): what its hours hold.
    hours: Option<SeenHours>,
}

/// The hours of a type's series as last counted into the history.
struct SeenHours {
    /// Its names, made once (`all` for a type over all accounts).
    account: Arc<str>,
    kind: Arc<str>,
    buckets: Vec<(Timestamp, u64)>,
}

/// Keeps the history and the engine's windows in the store: every checkpoint adds the events
/// counted since the last one to the history, and writes what changed in the windows, in one
/// transaction.
pub struct Checkpointer {
    engine: Arc<Engine>,
    store: Store,
    clock: Clock,
    /// How long hours are kept.
    keep_hours_ms: u64,
    seen: HashMap<WindowId, Seen>,
    /// Bodies taken from the engine by a checkpoint that could not be written, by row.
    unwritten_bodies: HashMap<i64, Vec<SavedBody>>,
    pruned_hour: Option<Timestamp>,
    /// The engine's count of notices when they were last written (see `Engine::notices_copy`).
    notices_written: u64,
}

impl std::fmt::Debug for Checkpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointer")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Checkpointer {
    /// Opens the state in `settings.dir` and builds the engine it restores: the saved
    /// windows, totals and counters put back (before any event is recorded), the time tally
    /// was down left empty. Also returns warnings for the log (a file moved aside, windows that
    /// could not be taken back).
    pub fn open(
        settings: &StateSettings,
        config: &EngineConfig,
        clock: Clock,
        now: Timestamp,
    ) -> Result<(Checkpointer, Vec<String>), StateError> {
        let (store, warning) = Store::open(&settings.dir)?;
        let mut warnings: Vec<String> = warning.into_iter().collect();
        let path = store.path.clone();
        let db_error = |error| database(&path, error);
        let saved = windows::saved(&store.db, config, now).map_err(db_error)?;
        // Hours are primed as the last checkpoint saw them: it counted buckets up to its time.
        let (start, primed_at) = match &saved {
            windows::Saved::Windows { origin, checkpoint } => (*origin, *checkpoint),
            windows::Saved::Nothing | windows::Saved::TotalsOnly(_) => (now, now),
        };
        let engine = Engine::new(config.clone(), start)?;
        if !engine.keeps_hours() {
            return Err(StateError::NoHours);
        }
        if let windows::Saved::TotalsOnly(why) = &saved {
            warnings.push(format!("{}: {why}", path.display()));
        }
        let restored = windows::restore(
            &store.db,
            &engine,
            matches!(saved, windows::Saved::Windows { .. }),
        )
        .map_err(db_error)?;
        let mut checkpointer = Checkpointer {
            engine,
            store,
            clock,
            keep_hours_ms: settings.keep_hours.as_millis() as u64,
            seen: HashMap::new(),
            unwritten_bodies: HashMap::new(),
            pruned_hour: None,
            notices_written: 0,
        };
        // What was restored is what the database holds.
        checkpointer.notices_written =
            (checkpointer.engine.notices_copy(0)).map_or(0, |(changes, _)| changes);
        checkpointer.prime(&restored, primed_at);
        Ok((checkpointer, warnings))
    }

    /// Remembers what the restored series hold as written, so that the first checkpoint
    /// neither counts it again into the history nor writes it again.
    fn prime(&mut self, restored: &windows::Restored, now: Timestamp) {
        let engine = Arc::clone(&self.engine);
        engine.windows(|id, account, kind, total| {
            let (Some(&row), Some(copy)) = (restored.rows.get(&id), engine.copy_series(id)) else {
                return;
            };
            let rewrite = restored.rewrite.contains(&id);
            let hours = kind
                .filter(|_| matches!(id, WindowId::Type(_)))
                .map(|kind| SeenHours {
                    account: Arc::from(account.unwrap_or(ALL)),
                    kind: Arc::from(kind),
                    buckets: engine.hour_buckets(&copy, now),
                });
            let seen = Seen {
                row,
                total,
                recheck: rewrite,
                chunks: if rewrite {
                    vec![]
                } else {
                    windows::chunk_hashes(&copy.rings)
                },
                hours,
            };
            self.seen.insert(id, seen);
        });
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Adds the events counted since the last checkpoint to the history, and writes what
    /// changed in the windows, as of `now`.
    pub fn checkpoint(&mut self, now: Timestamp) -> rusqlite::Result<Written> {
        let mut moved = vec![];
        self.engine
            .windows(|id, account, kind, total| match self.seen.get(&id) {
                Some(seen) if seen.total == total && !seen.recheck => {}
                Some(_) => moved.push((id, None, total)),
                None => moved.push((
                    id,
                    Some((account.map(Arc::<str>::from), kind.map(Arc::<str>::from))),
                    total,
                )),
            });
        let transaction = self.store.db.transaction()?;
        let mut added: HashMap<(WindowId, Timestamp), Added> = HashMap::new();
        let mut looked = Vec::with_capacity(moved.len());
        let mut taken_bodies = std::mem::take(&mut self.unwritten_bodies);
        let mut chunks_written = 0;
        let outcome = (|| {
            for (id, names, total) in moved {
                let Some(copy) = self.engine.copy_series(id) else {
                    continue;
                };
                let before = self.seen.get(&id);
                let row = match (before, &names) {
                    (Some(seen), _) => seen.row,
                    (None, Some((account, kind))) => {
                        windows::insert_series(&transaction, account.as_deref(), kind.as_deref())?
                    }
                    (None, None) => continue,
                };
                let kept = before.map_or(&[][..], |seen| &seen.chunks);
                let (chunks, written) = windows::write_series(&transaction, row, &copy, kept)?;
                chunks_written += written;
                let mut hours = None;
                if let WindowId::Type(series) = id {
                    let bodies = taken_bodies.entry(row).or_default();
                    self.engine.take_changed_bodies(series, |body| bodies.push(body));
                    let names = match (before.and_then(|seen| seen.hours.as_ref()), &names) {
                        (Some(seen), _) => (Arc::clone(&seen.account), Arc::clone(&seen.kind)),
                        (None, Some((account, kind))) => (
                            account.clone().unwrap_or_else(|| Arc::from(ALL)),
                            kind.clone().unwrap_or_else(|| Arc::from(tally_core::OTHER)),
                        ),
                        (None, None) => continue,
                    };
                    let buckets = self.engine.hour_buckets(&copy, now);
                    let old_buckets = before
                        .and_then(|seen| seen.hours.as_ref())
                        .map(|h| &h.buckets[..]);
                    count_new(&mut added, id, &names, &buckets, old_buckets.unwrap_or_default());
                    hours = Some(SeenHours {
                        account: names.0,
                        kind: names.1,
                        buckets,
                    });
                }
                let recheck = before.is_none_or(|seen| seen.total != total);
                looked.push((
                    id,
                    Seen {
                        row,
                        total,
                        recheck,
                        chunks,
                        hours,
                    },
                ));
            }
            for (row, bodies) in &taken_bodies {
                windows::write_bodies(&transaction, *row, bodies)?;
            }
            let added: Vec<Added> = added.into_values().collect();
            Store::add(&transaction, &added, &self.clock)?;
            windows::write_engine(&transaction, &self.engine, now)?;
            let notices = self.engine.notices_copy(self.notices_written);
            if let Some((_, copy)) = &notices {
                windows::write_notices(&transaction, copy)?;
            }
            transaction.commit()?;
            if let Some((changes, _)) = notices {
                self.notices_written = changes;
            }
            Ok(added)
        })();
        let bodies = taken_bodies.values().map(Vec::len).sum();
        let written = match outcome {
            Ok(added) => Written {
                added,
                series: looked.len(),
                chunks: chunks_written,
                bodies,
            },
            Err(error) => {
                // The rings are read again next time; the bodies taken from the engine are not.
                taken_bodies.retain(|_, bodies| !bodies.is_empty());
                self.unwritten_bodies = taken_bodies;
                return Err(error);
            }
        };
        for (id, seen) in looked {
            self.seen.insert(id, seen);
        }
        self.forget_settled(now);
        self.prune(now)?;
        Ok(written)
    }

    /// Lets go of the hours of series whose buckets have all left their rings: nothing can
    /// change there any more. Their totals stay, so that they are not read again until they
    /// move.
    fn forget_settled(&mut self, now: Timestamp) {
        let span = self.engine.hours_span_ms() + 3_600_000;
        for seen in self.seen.values_mut() {
            let Some(hours) = seen.hours.as_mut().filter(|_| !seen.recheck) else {
                continue;
            };
            let settled =
                (hours.buckets.last()).is_some_and(|(start, _)| start.as_millis() + span <= now.as_millis());
            if settled {
                hours.buckets = Vec::new();
            }
        }
    }

    /// Once an hour, drops hours older than they are kept.
    fn prune(&mut self, now: Timestamp) -> rusqlite::Result<()> {
        let hour = hour_of(now);
        if self.pruned_hour == Some(hour) {
            return Ok(());
        }
        self.store
            .prune_hours(now.saturating_sub_millis(self.keep_hours_ms))?;
        self.pruned_hour = Some(hour);
        Ok(())
    }
}

/// Adds to `added` what each hour of series `id` gained since `before`.
fn count_new(
    added: &mut HashMap<(WindowId, Timestamp), Added>,
    id: WindowId,
    (account, kind): &(Arc<str>, Arc<str>),
    buckets: &[(Timestamp, u64)],
    before: &[(Timestamp, u64)],
) {
    for &(start, count) in buckets {
        let old = (before.iter().find(|(s, _)| *s == start)).map_or(0, |&(_, count)| count);
        if count > old {
            let hour = hour_of(start);
            let entry = added.entry((id, hour)).or_insert_with(|| Added {
                account: Arc::clone(account),
                kind: Arc::clone(kind),
                hour,
                count: 0,
                own: matches!(id, WindowId::Type(SeriesId::Account { .. })),
            });
            entry.count += count - old;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_core::{EngineConfig, Event, Value};

    const HOUR: u64 = 3_600_000;
    const DAY: u64 = 24 * HOUR;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tally-history-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn record(engine: &Arc<Engine>, account: &str, kind: &str, at: u64, n: u64) {
        engine.recorder().record(&Event {
            account,
            event_type: kind,
            app: None,
            value: Value::Count(n),
            time: Timestamp::from_millis(at),
        });
    }

    /// 2025-01-01 00:00 UTC.
    const START: u64 = 1_735_689_600_000;

    /// The state in `dir` and the engine it restores, at `now_ms`.
    fn open(dir: &Path, clock: Clock, keep_hours_ms: u64, now_ms: u64) -> (Checkpointer, Vec<String>) {
        let settings = StateSettings {
            dir: dir.to_owned(),
            interval: std::time::Duration::from_secs(5),
            keep_hours: std::time::Duration::from_millis(keep_hours_ms),
        };
        let now = Timestamp::from_millis(now_ms);
        Checkpointer::open(&settings, &EngineConfig::default(), clock, now).expect("opens")
    }

    #[test]
    fn four_hundred_days_are_counted_exactly_by_hour_day_and_month() {
        let dir = temp_dir("long");
        let (mut checkpointer, warnings) = open(&dir, Clock::utc(), 90 * DAY, START);
        assert_eq!(warnings, Vec::<String>::new());
        let engine = Arc::clone(checkpointer.engine());
        let mut by_day: BTreeMap<String, u64> = BTreeMap::new();
        let mut by_month: BTreeMap<String, u64> = BTreeMap::new();
        let mut last_hours: BTreeMap<String, u64> = BTreeMap::new();
        let clock = Clock::utc();
        for day in 0..400u64 {
            // A few events at hours that vary with the day, checkpointed every 6 hours.
            for (i, hour) in [1u64, 7, 13, 19].into_iter().enumerate() {
                let at = START + day * DAY + (hour + day % 5) * HOUR + 17_000;
                let n = 1 + (day + i as u64) % 4;
                record(&engine, "acme", "pageview", at, n);
                record(&engine, "globex", "pageview", at, 1);
                let local = clock.civil_hour(Timestamp::from_millis(at));
                let (y, m, d, h) = (local.year, local.month, local.day, local.hour);
                *by_day.entry(format!("{y:04}-{m:02}-{d:02}")).or_default() += n;
                *by_month.entry(format!("{y:04}-{m:02}")).or_default() += n;
                if day >= 399 {
                    *last_hours
                        .entry(format!("{y:04}-{m:02}-{d:02} {h:02}:00"))
                        .or_default() += n;
                }
                checkpointer
                    .checkpoint(Timestamp::from_millis(at + 6 * HOUR - 20_000))
                    .expect("writes");
            }
        }
        let now = Timestamp::from_millis(START + 400 * DAY);
        checkpointer.checkpoint(now).expect("writes");
        let store = checkpointer.store();
        let counts = |period, since| {
            let rows = store
                .counts("acme", Some("pageview"), period, since, &clock)
                .expect("reads");
            rows.into_iter()
                .map(|c| (c.period, c.count))
                .collect::<BTreeMap<_, _>>()
        };
        assert_eq!(counts(Period::Day, Timestamp::from_millis(START)), by_day);
        assert_eq!(counts(Period::Month, Timestamp::from_millis(START)), by_month);
        let last_day = Timestamp::from_millis(START + 399 * DAY);
        assert_eq!(counts(Period::Hour, last_day), last_hours);
        // Hours older than 90 days are gone; days and months are not.
        assert!(counts(Period::Hour, Timestamp::from_millis(START)).len() <= 91 * 4);
        let all = store.counts(ALL, None, Period::Month, Timestamp::from_millis(START), &clock);
        let all_total: u64 = all.expect("reads").iter().map(|c| c.count).sum();
        assert_eq!(
            all_total,
            by_month.values().sum::<u64>() + 400 * 4,
            "acme's and globex's"
        );
        // The classic API's views of the same rows.
        let months = store.months_of("acme", "pageview", 2025).expect("reads");
        assert_eq!(months.get(&3).copied(), by_month.get("2025-03").copied());
        let days = store.days_of("acme", "pageview", 2026, 1).expect("reads");
        assert_eq!(days.get(&31).copied(), by_day.get("2026-01-31").copied());
        assert_eq!(store.accounts().expect("reads"), ["acme", "all", "globex"]);
        assert_eq!(store.types("acme").expect("reads"), ["pageview"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_restart_counts_on_top_and_a_repeated_checkpoint_adds_nothing() {
        let dir = temp_dir("restart");
        let clock = Clock::utc();
        let at = |ms| Timestamp::from_millis(START + ms);
        for run in 0..2 {
            let (mut checkpointer, _) = open(&dir, clock.clone(), DAY, START);
            let engine = Arc::clone(checkpointer.engine());
            record(&engine, "acme", "view", START + HOUR + run * 60_000, 5);
            assert_eq!(
                checkpointer
                    .checkpoint(at(HOUR + 120_000))
                    .expect("writes")
                    .events(),
                5
            );
            assert_eq!(
                checkpointer
                    .checkpoint(at(HOUR + 125_000))
                    .expect("writes")
                    .events(),
                0
            );
            // A late event, into an hour the ring still holds.
            record(&engine, "acme", "view", START + 30 * 60_000, 1);
            assert_eq!(
                checkpointer
                    .checkpoint(at(HOUR + 130_000))
                    .expect("writes")
                    .events(),
                1
            );
        }
        let store = Store::open_read_only(&dir).expect("reads");
        let hours = store
            .counts("acme", None, Period::Hour, at(0), &clock)
            .expect("reads");
        let hours: Vec<(&str, u64)> = hours.iter().map(|c| (c.period.as_str(), c.count)).collect();
        assert_eq!(hours, [("2025-01-01 00:00", 2), ("2025-01-01 01:00", 10)]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Every window the dashboards show, in full detail, with the examples of rejected input.
    fn views(engine: &Engine, now: Timestamp) -> Vec<tally_core::Snapshot> {
        [(0, 300), (1, 60), (2, 24)]
            .into_iter()
            .map(|(level, buckets)| {
                let request = tally_core::SnapshotRequest {
                    window: tally_core::Window { level, buckets },
                    detail: 100,
                    all_types: true,
                    ..tally_core::SnapshotRequest::default()
                };
                engine.snapshot(&request, now)
            })
            .collect()
    }

    /// Counts, timings, a set, a gauge and a rejection, for `accounts` accounts at `at_ms`.
    fn mix(engine: &Arc<Engine>, accounts: usize, at_ms: u64) {
        let mut recorder = engine.recorder();
        for i in 0..accounts {
            let account = format!("acct{i}");
            let values = [
                ("view", Value::Count(1 + i as u64)),
                (
                    "latency",
                    Value::Timing {
                        ms: 3.5 * i as f64,
                        count: 1,
                    },
                ),
                ("users", Value::SetMember(["ann", "bob", "cy"][i % 3])),
                ("temp", Value::Gauge(i as f64)),
            ];
            for (n, (kind, value)) in values.into_iter().enumerate() {
                recorder.record(&Event {
                    account: &account,
                    event_type: kind,
                    app: Some("web"),
                    value,
                    time: Timestamp::from_millis(at_ms + n as u64 * 700),
                });
            }
        }
        engine.reject(
            tally_core::Rejection::Statsd,
            "bad",
            b"x",
            Timestamp::from_millis(at_ms),
        );
    }

    #[test]
    fn windows_survive_a_restart_with_the_downtime_left_empty() {
        let dir = temp_dir("windows");
        let never_stopped =
            Engine::new(EngineConfig::default(), Timestamp::from_millis(START)).expect("engine");
        let (mut checkpointer, _) = open(&dir, Clock::utc(), DAY, START);
        for minute in [0, 1, 5, 20, 58] {
            for engine in [&never_stopped, checkpointer.engine()] {
                mix(engine, 12, START + minute * 60_000);
            }
            checkpointer
                .checkpoint(Timestamp::from_millis(START + minute * 60_000 + 9_000))
                .expect("writes");
        }
        drop(checkpointer);
        // Down from 58:09 to 61:00.
        let (checkpointer, warnings) = open(&dir, Clock::utc(), DAY, START + 61 * 60_000);
        assert_eq!(warnings, Vec::<String>::new());
        let restarted = checkpointer.engine();
        assert_eq!(restarted.origin(), never_stopped.origin());
        for engine in [&never_stopped, restarted] {
            mix(engine, 5, START + 61 * 60_000);
        }
        let now = Timestamp::from_millis(START + 62 * 60_000);
        let (before, after) = (views(&never_stopped, now), views(restarted, now));
        assert_eq!(after, before);
        // The last hour by minute, from minute 3: minute 58 (before the stop), 59 and 60
        // (down), 61 (after).
        let minutes = &after[1].stack.totals;
        assert_eq!(minutes[55..59], [114, 0, 0, 30], "{minutes:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn annotations_and_checks_survive_a_restart() {
        use tally_core::{Annotation, CheckStatus, Notice, ServiceCheck, SnapshotRequest, Window};
        let dir = temp_dir("notices");
        let at = Timestamp::from_millis;
        let (mut checkpointer, _) = open(&dir, Clock::utc(), DAY, START);
        let deploy = Annotation {
            time: at(START + 1_000),
            title: "deploy v2".into(),
            ..Annotation::default()
        };
        let database = ServiceCheck {
            name: "db.up".into(),
            status: CheckStatus::Critical,
            time: at(START + 2_000),
            host: None,
            message: Some("no answer".into()),
            tags: vec![],
        };
        checkpointer.engine().notice(Notice::Annotation(deploy.clone()));
        checkpointer.engine().notice(Notice::Check(database.clone()));
        checkpointer.checkpoint(at(START + 5_000)).expect("writes");
        drop(checkpointer);
        let (checkpointer, warnings) = open(&dir, Clock::utc(), DAY, START + 60_000);
        assert_eq!(warnings, Vec::<String>::new());
        let request = SnapshotRequest {
            window: Window {
                level: 1,
                buckets: 60,
            },
            ..SnapshotRequest::default()
        };
        let snapshot = checkpointer.engine().snapshot(&request, at(START + 60_000));
        assert_eq!(snapshot.annotations, [deploy]);
        assert_eq!(snapshot.checks, [database]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_checkpoint_writes_only_what_changed() {
        let dir = temp_dir("incremental");
        let (mut checkpointer, _) = open(&dir, Clock::utc(), DAY, START);
        let engine = Arc::clone(checkpointer.engine());
        mix(&engine, 50, START + 1_000);
        let first = checkpointer
            .checkpoint(Timestamp::from_millis(START + 5_000))
            .expect("writes");
        // all, 50 accounts, their 200 types, 4 types over all accounts.
        assert_eq!(first.series, 1 + 50 + 200 + 4);
        // One chunk of each ring of each (empty chunks need no row).
        assert_eq!(first.chunks, first.series * 3, "{first:?}");
        assert!(first.bodies > 0, "{first:?}");
        let again = checkpointer
            .checkpoint(Timestamp::from_millis(START + 6_000))
            .expect("writes");
        assert_eq!((again.chunks, again.bodies), (0, 0), "{again:?}");
        // One more event for one account's timing: its series, the account's, the type's over
        // all and `all` move, one chunk of each ring of each, and the timing's body at each
        // resolution.
        record(&engine, "acct3", "view", START + 7_000, 1);
        let timing = Event {
            account: "acct3",
            event_type: "latency",
            app: None,
            value: Value::Timing { ms: 9.0, count: 1 },
            time: Timestamp::from_millis(START + 7_000),
        };
        engine.recorder().record(&timing);
        let one = checkpointer
            .checkpoint(Timestamp::from_millis(START + 8_000))
            .expect("writes");
        assert_eq!(one.series, 6, "{one:?}");
        assert_eq!(one.chunks, 6 * 3, "{one:?}");
        assert_eq!(one.bodies, 2 * 3, "{one:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn other_resolutions_keep_the_totals_but_not_the_windows() {
        let dir = temp_dir("resolutions");
        let (mut checkpointer, _) = open(&dir, Clock::utc(), DAY, START);
        mix(checkpointer.engine(), 3, START + 1_000);
        checkpointer
            .checkpoint(Timestamp::from_millis(START + 5_000))
            .expect("writes");
        drop(checkpointer);
        let settings = StateSettings {
            dir: dir.clone(),
            interval: std::time::Duration::from_secs(5),
            keep_hours: std::time::Duration::from_millis(DAY),
        };
        let config = EngineConfig {
            resolutions: vec![tally_core::Resolution::new(10_000, 360)],
            ..EngineConfig::default()
        };
        let now = Timestamp::from_millis(START + 6_000);
        let (checkpointer, warnings) =
            Checkpointer::open(&settings, &config, Clock::utc(), now).expect("opens");
        assert!(
            warnings.iter().any(|w| w.contains("other resolutions")),
            "{warnings:?}"
        );
        let snapshot = &views(checkpointer.engine(), now)[0];
        assert_eq!(snapshot.totals.total, 3 * 4 + 3, "totals kept");
        assert_eq!(snapshot.totals.window_total, 0, "windows start empty");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_history_of_schema_1_is_taken_on_as_it_is() {
        let dir = temp_dir("schema1");
        std::fs::create_dir_all(&dir).expect("dir");
        let old = Connection::open(dir.join(DATABASE)).expect("creates");
        old.execute_batch(SCHEMA).expect("schema 1");
        old.execute("INSERT INTO months VALUES ('acme', 'view', 2025, 1, 42)", [])
            .expect("a row");
        old.pragma_update(None, "user_version", 1).expect("version 1");
        drop(old);
        let (mut checkpointer, warnings) = open(&dir, Clock::utc(), DAY, START);
        assert_eq!(warnings, Vec::<String>::new());
        record(checkpointer.engine(), "acme", "view", START + 1_000, 1);
        checkpointer
            .checkpoint(Timestamp::from_millis(START + 2_000))
            .expect("writes");
        let version: i64 = (checkpointer.store().db)
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .expect("reads");
        assert_eq!(version, SCHEMA_VERSION);
        let months = checkpointer
            .store()
            .months_of("acme", "view", 2025)
            .expect("reads");
        assert_eq!(
            months.get(&1),
            Some(&43),
            "the old count, and the new event on top"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_second_writer_is_refused_and_a_newer_schema_left_alone() {
        let dir = temp_dir("lock");
        let (first, _) = Store::open(&dir).expect("opens");
        assert!(matches!(Store::open(&dir), Err(StateError::InUse(_))));
        first
            .db
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .expect("sets");
        drop(first);
        let refused = Store::open(&dir).expect_err("newer");
        assert!(
            refused.to_string().contains("written by a newer tally"),
            "{refused}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_broken_file_is_moved_aside_not_overwritten() {
        let dir = temp_dir("broken");
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join(DATABASE), b"not a database at all, but someone's notes").expect("writes");
        let (store, warning) = Store::open(&dir).expect("opens afresh");
        let warning = warning.expect("a warning");
        assert!(warning.contains("moved aside to"), "{warning}");
        assert!(store.accounts().expect("reads").is_empty());
        let aside: Vec<_> = (std::fs::read_dir(&dir).expect("lists").flatten())
            .filter(|entry| {
                entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with("tally.db.corrupt-")
            })
            .collect();
        assert_eq!(aside.len(), 1);
        assert_eq!(
            std::fs::read(aside[0].path()).expect("kept"),
            b"not a database at all, but someone's notes"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
