//! tally's collector: what turns bytes from producers into events in a [`tally_core::Engine`],
//! and (for `tally hub`) re-publishes them.
//!
//! # Layers
//!
//! Bottom first. A module uses only modules of the layers below its own, and its own
//! submodules; `tests/layers.rs` reads this list and checks every `crate::` path against it.
//!
//! 1. `backoff`, `bind`, `decode`, `health`, `logging`, `metrics`, `report`, `runtimes`: bytes
//!    to events ([`decode`], into a [`decode::Sink`] it knows nothing about), the counters
//!    sources report ([`health`]), the documents that describe a collector ([`report`]'s JSON,
//!    [`metrics`]' Prometheus text), and what inputs and outputs share (reconnecting's
//!    [`backoff`]).
//! 2. `encode`, `firehose`, `history`, `slots`: events back to bytes (the classic hub's JSON),
//!    which [`decode`] reads; the SSE firehose's numbered events; the history store (counts
//!    by hour, day and month, in SQLite); the connection slots every server takes, counted in
//!    its [`health`].
//! 3. `ingest`: the one batch loop every input calls, the sink that records and tees to the
//!    outputs, and the [`ingest::Output`] trait.
//! 4. `input`, `output`: one file per source ([`input::Source`]: udp, stream, http, demo, zmq, ws)
//!    and per output (zmq, ws, sse).
//! 5. `config`: defaults < file < flags.
//! 6. `collector`: builds the inputs and outputs from [`config::Settings`] and holds them.
//! 7. `stat`, `send`: the headless commands (`tally hub` is `stat` with outputs).

pub mod backoff;
pub mod bind;
pub mod collector;
pub mod config;
pub mod decode;
pub mod encode;
pub mod firehose;
pub mod health;
pub mod history;
pub mod ingest;
pub mod input;
pub mod logging;
pub mod metrics;
pub mod output;
pub mod report;
pub mod runtimes;
pub mod send;
pub mod slots;
pub mod stat;
