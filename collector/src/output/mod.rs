//! Where `tally hub` re-publishes accepted events: one file per kind of output, each an
//! [`Output`] that the ingest layer tees every accepted event to; and the history, which
//! reads the engine instead.
//!
//! Publishing never blocks an input: each output queues into a bounded buffer of its own and
//! counts what it has to drop. Adding an output is one file here, one line in
//! `Collector::start` that starts it, and its flag.

pub mod graphite;
pub mod history;
pub mod periodic;
pub mod redis;
pub mod sse;
pub mod ws;
pub mod zmq;

use crate::bind::BindError;
pub use crate::ingest::Output;

/// Why an output could not start.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(
        "ZeroMQ {0} is already in use (another hub?): publish elsewhere with --publish-zmq tcp://127.0.0.1:PORT"
    )]
    ZmqInUse(String),
    #[error("cannot publish on ZeroMQ {endpoint}: {error} (expected e.g. tcp://127.0.0.1:6000)")]
    Zmq {
        endpoint: String,
        #[source]
        error: ::zmq::Error,
    },
    #[error(transparent)]
    Ws(#[from] BindError),
    #[error("cannot start the publisher: {0}")]
    Thread(#[source] std::io::Error),
}
