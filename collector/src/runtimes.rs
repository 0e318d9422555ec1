//! The I/O runtimes that inputs and outputs share, each started only when one needs it: a
//! tokio runtime (streams, WebSocket clients and server) and a libzmq context (its I/O
//! thread serves every ZeroMQ socket).

use std::sync::OnceLock;
use std::time::Duration;
use tokio::runtime::{Handle, Runtime};

#[derive(Default)]
pub struct Runtimes {
    tokio: OnceLock<Runtime>,
    zmq: OnceLock<zmq::Context>,
}

impl std::fmt::Debug for Runtimes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtimes")
            .field("tokio", &self.tokio.get().is_some())
            .field("zmq", &self.zmq.get().is_some())
            .finish()
    }
}

impl Runtimes {
    /// The tokio runtime, started on first use.
    pub fn tokio(&self) -> std::io::Result<&Handle> {
        if let Some(runtime) = self.tokio.get() {
            return Ok(runtime.handle());
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tally-io")
            .enable_all()
            .build()?;
        Ok(self.tokio.get_or_init(|| runtime).handle())
    }

    /// The libzmq context, made on first use.
    pub fn zmq(&self) -> &zmq::Context {
        self.zmq.get_or_init(zmq::Context::new)
    }

    /// Ends the tasks still running (open connections, whose recorders flush as they drop).
    pub fn shutdown(mut self) {
        if let Some(runtime) = self.tokio.take() {
            runtime.shutdown_timeout(Duration::from_secs(1));
        }
    }
}
