//! Where events come from: one file per kind of source, each a [`Source`] that receives in
//! its own threads or tasks and goes into the engine through [`crate::ingest`].
//!
//! Adding a source is one file here (a `start` that takes the [`crate::ingest::Ingest`] and
//! its own settings, and returns something that implements [`Source`]), one line in
//! `Collector::start` that starts it, and its flags in the configuration's `SourceArgs`.

pub mod demo;
pub mod http;
pub mod hub;
pub mod sse;
pub mod stream;
pub mod udp;
pub mod ws;
pub mod zmq;

use crate::health::Health;
use std::fmt;
use std::sync::RwLock;
use tally_core::{SourceKind, SourceStatus};

/// A running source.
pub trait Source: Send + Sync + fmt::Debug {
    fn kind(&self) -> SourceKind;
    fn health(&self) -> &Health;
    fn status(&self) -> SourceStatus {
        self.health().source_status(self.kind())
    }
    /// Waits for the source's threads to end (the stop flag is set first), finishing what it
    /// received, and marks it stopped.
    fn stop(self: Box<Self>);
}

/// A collector's sources, shared with what reports on them (the HTTP API's read routes):
/// added as they start, read at any time, taken out to be stopped.
#[derive(Debug, Default)]
pub struct SourceList(RwLock<Vec<Box<dyn Source>>>);

impl SourceList {
    pub fn push(&self, source: Box<dyn Source>) {
        self.0.write().unwrap_or_else(|p| p.into_inner()).push(source);
    }

    /// Every source's status, in the order they started.
    pub fn statuses(&self) -> Vec<SourceStatus> {
        let sources = self.0.read().unwrap_or_else(|p| p.into_inner());
        sources.iter().map(|s| s.status()).collect()
    }

    /// Every source, in the order they started, leaving none.
    pub fn take(&self) -> Vec<Box<dyn Source>> {
        std::mem::take(&mut *self.0.write().unwrap_or_else(|p| p.into_inner()))
    }
}
