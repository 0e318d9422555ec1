//! tally's core: the event model, per-account rolling windows in rings read without locks, timing
//! histograms, distinct counts, and the [`Snapshot`]s that the terminal view, the desktop app
//! and `tally stat` draw; with them, the rest of the plain data every view draws: what
//! sources and outputs report ([`status`]), number and duration formatting
//! ([`format`](mod@format)), and how accounts are ordered ([`AccountSort`]); and what is not a
//! metric, DogStatsD events and service checks ([`Annotation`], [`ServiceCheck`]). The UIs
//! depend on this crate alone.
//!
//! No I/O, no threads of its own, no async runtime, no clock: callers pass time in, so
//! everything here is plain data and maths, testable with unit and property tests.
//!
//! The path of one event: a decoder builds an [`Event`] borrowing from its buffer, the ingest
//! thread's [`Recorder`] resolves the account and type (a cached hash lookup), adds counts up
//! and publishes them every few dozen milliseconds into lap-tagged 4-byte buckets at every
//! resolution, under each series' write lock. A UI calls [`Engine::snapshot`] a few times a
//! second; it reads the same buckets without locks.

mod account;
mod bodies;
mod budget;
mod engine;
mod event;
pub mod format;
pub mod histogram;
mod history_view;
pub mod hll;
mod hours;
mod notice;
pub mod palette;
mod plan;
mod rejection;
mod ring;
mod snapshot;
mod sort;
pub mod status;
mod sync;
mod table;
mod time;
mod windows;

pub use budget::BudgetError;
/// The name type of a snapshot's rows (see [`AccountStats::name`]).
pub use compact_str::CompactString;
pub use engine::{Engine, EngineConfig, PUBLISH_EVERY_MS, Recorder};
pub use event::{Event, MAX_COUNT, MAX_NAME_BYTES, OTHER, SampleError, Value, clamp_name, scale_sampled};
pub use format::{human_duration, is_unprintable, printable, short_number};
pub use histogram::{TimingCopy, TimingSummary};
pub use history_view::{HistoryView, PeriodCounts};
pub use hours::{SeriesId, hour_of};
pub use notice::{
    AlertType, Annotation, CheckStatus, MAX_ANNOTATIONS, MAX_CHECKS, Notice, NoticesCopy, Priority,
    ServiceCheck,
};
pub use rejection::{KEPT_SAMPLES, RejectSample, Rejection, escape};
pub use ring::LayoutError;
pub use snapshot::{
    AccountDetail, AccountStats, Fingerprint, Layer, RejectionCount, Snapshot, SnapshotRequest, Stack,
    Totals, TypeStats, Window, WindowInfo,
};
pub use sort::AccountSort;
pub use status::{OutputKind, OutputStatus, SourceKind, SourceState, SourceStatus};
pub use time::{CivilHour, Clock, Resolution, Timestamp};
pub use windows::{BodyCopy, CountersCopy, SavedBody, SavedBucket, SeriesCopy, WindowId};
