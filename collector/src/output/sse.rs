//! The SSE firehose as an output: what ingest tees every accepted event to (see
//! [`crate::firehose`] for the clients' side).

use super::Output;
use crate::encode::Outgoing;
use crate::firehose::Firehose;
use std::sync::Arc;
use tally_core::{OutputKind, OutputStatus, SourceState};

impl Output for Firehose {
    fn kind(&self) -> OutputKind {
        OutputKind::ServeSse
    }

    fn publish(&self, event: &mut Outgoing<'_>) {
        Firehose::publish(self, Arc::from(event.hub_json()));
    }

    fn status(&self) -> OutputStatus {
        self.health().output_status(self.kind())
    }

    /// Clients are served until the runtime shuts down.
    fn stop(&self) {
        self.health().set_state(SourceState::Stopped);
    }
}
