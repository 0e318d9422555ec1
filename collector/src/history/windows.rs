//! The engine's windows in the state database, so that a restarted tally shows what it
//! showed: every series' rings, timing histograms and set registers, totals, gauges and apps,
//! and the engine's counters.
//!
//! Rings are stored in chunks of [`CHUNK`] buckets, and a checkpoint rewrites only the chunks
//! of the series that moved whose buckets changed (it remembers a hash of each chunk), and the
//! bodies updated since it last looked: a busy series costs a few small rows per checkpoint,
//! an idle one nothing. Buckets keep their epochs, which count from the engine's origin: the
//! origin is saved too, and a restarted engine built from it (with the same resolutions) takes
//! the buckets back as they were. Time tally was down is then simply buckets without events.

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use tally_core::{
    BodyCopy, CountersCopy, Engine, EngineConfig, NoticesCopy, Resolution, SavedBody, SavedBucket,
    SeriesCopy, Timestamp, WindowId,
};

/// The tables schema 2 added to the history's.
pub(super) const SCHEMA: &str = "
    CREATE TABLE engine (
        key TEXT PRIMARY KEY, -- origin and checkpoint (Unix ms), resolutions, counters, notices (JSON)
        value TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE series (
        id INTEGER PRIMARY KEY,
        account TEXT, type TEXT, -- NULL: all of them
        total INTEGER NOT NULL,
        last_active INTEGER, -- finest epoch of the latest event
        gauge REAL,
        apps TEXT NOT NULL DEFAULT '[]'
    );
    CREATE TABLE ring_chunks (
        series INTEGER NOT NULL, level INTEGER NOT NULL, chunk INTEGER NOT NULL,
        buckets BLOB NOT NULL, -- MessagePack [[epoch, count], ...]
        PRIMARY KEY (series, level, chunk)
    ) WITHOUT ROWID;
    CREATE TABLE bodies (
        series INTEGER NOT NULL, slot INTEGER NOT NULL, kind TEXT NOT NULL, -- timing, set
        epoch INTEGER NOT NULL,
        body BLOB NOT NULL, -- MessagePack
        PRIMARY KEY (series, kind, slot)
    ) WITHOUT ROWID;
";

/// Buckets of a ring stored (and rewritten) together.
const CHUNK: usize = 32;

/// What the database holds of an engine, as found at start.
#[derive(Debug, PartialEq)]
pub(super) enum Saved {
    Nothing,
    /// Windows an engine of this origin takes back, as of the last checkpoint.
    Windows {
        origin: Timestamp,
        checkpoint: Timestamp,
    },
    /// Totals, gauges and counters only: the windows cannot be read back (the reason why).
    TotalsOnly(String),
}

fn engine_value(db: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    db.query_row("SELECT value FROM engine WHERE key = ?1", [key], |row| row.get(0))
        .optional()
}

/// What the database holds of an engine configured as `config`, at `now`.
pub(super) fn saved(db: &Connection, config: &EngineConfig, now: Timestamp) -> rusqlite::Result<Saved> {
    let (Some(origin), Some(resolutions)) = (engine_value(db, "origin")?, engine_value(db, "resolutions")?)
    else {
        return Ok(Saved::Nothing);
    };
    let time = |value: Option<String>| value?.parse::<u64>().ok().map(Timestamp::from_millis);
    let origin = time(Some(origin));
    let checkpoint = time(engine_value(db, "checkpoint")?).unwrap_or(now);
    let resolutions: Option<Vec<Resolution>> = serde_json::from_str(&resolutions).ok();
    Ok(match (origin, resolutions) {
        (Some(origin), Some(saved)) if saved == config.resolutions && origin <= now => {
            Saved::Windows { origin, checkpoint }
        }
        (Some(origin), Some(_)) if origin <= now => Saved::TotalsOnly(
            "the windows were kept at other resolutions: they start empty (totals are kept)".to_owned(),
        ),
        (Some(_), Some(_)) => Saved::TotalsOnly(
            "the windows were saved at a later time than the clock says now: they start empty (totals are kept)"
                .to_owned(),
        ),
        _ => Saved::TotalsOnly("the saved windows' settings cannot be read: they start empty".to_owned()),
    })
}

/// What restoring gave: each series' row, and the series whose rows must be written anew.
#[derive(Debug, Default)]
pub(super) struct Restored {
    pub(super) rows: HashMap<WindowId, i64>,
    /// Series two saved ones went into (accounts past a lowered cap, into `(other)`): the
    /// second's rows are gone, so the first's must be written whole.
    pub(super) rewrite: HashSet<WindowId>,
}

/// Hands what the database holds back to `engine` (new, built from the saved origin when
/// `windows`; otherwise the saved rings and bodies are dropped and only totals go back).
pub(super) fn restore(db: &Connection, engine: &Engine, windows: bool) -> rusqlite::Result<Restored> {
    if !windows {
        db.execute_batch("DELETE FROM ring_chunks; DELETE FROM bodies;")?;
    }
    let mut restored = Restored::default();
    let mut series =
        db.prepare("SELECT id, account, type, total, last_active, gauge, apps FROM series ORDER BY id")?;
    let mut chunks = db.prepare("SELECT level, buckets FROM ring_chunks WHERE series = ?1")?;
    let mut bodies = db.prepare("SELECT slot, epoch, body FROM bodies WHERE series = ?1")?;
    let mut duplicates = vec![];
    let mut rows = series.query([])?;
    while let Some(row) = rows.next()? {
        let row_id: i64 = row.get(0)?;
        let (account, kind): (Option<String>, Option<String>) = (row.get(1)?, row.get(2)?);
        let mut copy = SeriesCopy {
            total: row.get::<_, i64>(3)? as u64,
            last_active: row
                .get::<_, Option<i64>>(4)?
                .filter(|_| windows)
                .map(|e| e as u64),
            gauge: row.get(5)?,
            apps: serde_json::from_str(&row.get::<_, String>(6)?).unwrap_or_default(),
            rings: vec![],
        };
        if windows {
            let levels = engine.config().resolutions.len();
            copy.rings = vec![vec![]; levels];
            let found = chunks.query_map([row_id], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?))
            })?;
            for chunk in found {
                let (level, blob) = chunk?;
                if let Some(ring) = copy.rings.get_mut(level as usize) {
                    ring.extend(decode(&blob));
                }
            }
        }
        let Some(id) = engine.restore_series(account.as_deref(), kind.as_deref(), &copy) else {
            continue;
        };
        if let WindowId::Type(series_id) = id {
            let found = bodies.query_map([row_id], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, Vec<u8>>(2)?,
                ))
            })?;
            for body in found {
                let (slot, epoch, blob) = body?;
                if let Ok(body) = rmp_serde::from_slice::<BodyCopy>(&blob) {
                    let saved = SavedBody {
                        slot: slot as usize,
                        epoch: epoch as u64,
                        body,
                    };
                    engine.restore_body(series_id, &saved);
                }
            }
        }
        match restored.rows.entry(id) {
            Entry::Occupied(_) => {
                duplicates.push(row_id);
                restored.rewrite.insert(id);
            }
            Entry::Vacant(vacant) => {
                vacant.insert(row_id);
            }
        }
    }
    for row_id in duplicates {
        for table in ["ring_chunks", "bodies"] {
            db.execute(&format!("DELETE FROM {table} WHERE series = ?1"), [row_id])?;
        }
        db.execute("DELETE FROM series WHERE id = ?1", [row_id])?;
    }
    if let Some(counters) = engine_value(db, "counters")?
        && let Ok(counters) = serde_json::from_str::<CountersCopy>(&counters)
    {
        engine.restore_counters(&counters);
    }
    if let Some(notices) = engine_value(db, "notices")?
        && let Ok(notices) = serde_json::from_str::<NoticesCopy>(&notices)
    {
        engine.restore_notices(notices);
    }
    Ok(restored)
}

/// A hash of each chunk of each ring, finest ring first.
pub(super) fn chunk_hashes(rings: &[Vec<SavedBucket>]) -> Vec<u64> {
    let hasher = foldhash::fast::FixedState::with_seed(0x7a11);
    (rings.iter())
        .flat_map(|ring| ring.chunks(CHUNK))
        .map(|chunk| hasher.hash_one(chunk))
        .collect()
}

fn encode(chunk: &[SavedBucket]) -> Vec<u8> {
    let buckets: Vec<(u64, u64)> = (chunk.iter())
        .filter(|b| b.count > 0)
        .map(|b| (b.epoch, b.count))
        .collect();
    rmp_serde::to_vec(&buckets).expect("a list of integer pairs always encodes")
}

/// A chunk's buckets (none from a chunk that cannot be read: its buckets start empty).
fn decode(blob: &[u8]) -> Vec<SavedBucket> {
    let buckets: Vec<(u64, u64)> = rmp_serde::from_slice(blob).unwrap_or_default();
    (buckets.into_iter())
        .map(|(epoch, count)| SavedBucket { epoch, count })
        .collect()
}

/// Adds a row for a series first seen, returning its id.
pub(super) fn insert_series(
    tx: &Transaction<'_>,
    account: Option<&str>,
    kind: Option<&str>,
) -> rusqlite::Result<i64> {
    let mut insert = tx.prepare_cached("INSERT INTO series (account, type, total) VALUES (?1, ?2, 0)")?;
    insert.execute(params![account, kind])?;
    Ok(tx.last_insert_rowid())
}

/// Writes a series' totals and the chunks of its rings whose hashes differ from `kept`'s
/// (none kept: a series not written before, whose empty chunks need no row); returns the new
/// hashes and the chunks written.
pub(super) fn write_series(
    tx: &Transaction<'_>,
    row: i64,
    copy: &SeriesCopy,
    kept: &[u64],
) -> rusqlite::Result<(Vec<u64>, usize)> {
    let mut update = tx.prepare_cached(
        "UPDATE series SET total = ?2, last_active = ?3, gauge = ?4, apps = ?5 WHERE id = ?1",
    )?;
    let apps = serde_json::to_string(&copy.apps).expect("names always encode");
    let last_active = copy.last_active.map(|e| e as i64);
    update.execute(params![row, copy.total as i64, last_active, copy.gauge, apps])?;
    let mut upsert = tx.prepare_cached("INSERT OR REPLACE INTO ring_chunks VALUES (?1, ?2, ?3, ?4)")?;
    let hashes = chunk_hashes(&copy.rings);
    let empty;
    let kept = if kept.is_empty() {
        let rings: Vec<Vec<SavedBucket>> = (copy.rings.iter())
            .map(|ring| vec![SavedBucket::default(); ring.len()])
            .collect();
        empty = chunk_hashes(&rings);
        &empty
    } else {
        kept
    };
    let chunks = (copy.rings.iter().enumerate())
        .flat_map(|(level, ring)| ring.chunks(CHUNK).enumerate().map(move |(i, c)| (level, i, c)));
    let mut written = 0;
    for (index, ((level, chunk, buckets), hash)) in chunks.zip(&hashes).enumerate() {
        if kept.get(index) != Some(hash) {
            upsert.execute(params![row, level as i64, chunk as i64, encode(buckets)])?;
            written += 1;
        }
    }
    Ok((hashes, written))
}

/// Writes bodies updated since the last checkpoint.
pub(super) fn write_bodies(tx: &Transaction<'_>, row: i64, bodies: &[SavedBody]) -> rusqlite::Result<()> {
    let mut upsert = tx.prepare_cached("INSERT OR REPLACE INTO bodies VALUES (?1, ?2, ?3, ?4, ?5)")?;
    for saved in bodies {
        let kind = match saved.body {
            BodyCopy::Timing(_) => "timing",
            BodyCopy::Set(_) => "set",
        };
        let blob = rmp_serde::to_vec(&saved.body).expect("a body always encodes");
        upsert.execute(params![row, saved.slot as i64, kind, saved.epoch as i64, blob])?;
    }
    Ok(())
}

/// Writes the annotations and checks (bounded by the engine: at most a few MiB, and only
/// after one came).
pub(super) fn write_notices(tx: &Transaction<'_>, notices: &NoticesCopy) -> rusqlite::Result<()> {
    let json = serde_json::to_string(notices).expect("notices always encode");
    tx.prepare_cached("INSERT OR REPLACE INTO engine VALUES ('notices', ?1)")?
        .execute([json])?;
    Ok(())
}

/// Writes the engine's origin, resolutions and counters, and the checkpoint's time.
pub(super) fn write_engine(tx: &Transaction<'_>, engine: &Engine, now: Timestamp) -> rusqlite::Result<()> {
    let mut upsert = tx.prepare_cached("INSERT OR REPLACE INTO engine VALUES (?1, ?2)")?;
    let resolutions = serde_json::to_string(&engine.config().resolutions).expect("resolutions always encode");
    let counters = serde_json::to_string(&engine.counters_copy()).expect("counters always encode");
    upsert.execute(params!["origin", engine.origin().as_millis().to_string()])?;
    upsert.execute(params!["resolutions", resolutions])?;
    upsert.execute(params!["counters", counters])?;
    upsert.execute(params!["checkpoint", now.as_millis().to_string()])?;
    Ok(())
}
