//! The embedded collector: an engine, its listeners, and the demo, started from [`Settings`].

use crate::config::Settings;
use crate::demo::Demo;
use crate::source::{BindError, SourceStatus, now};
use crate::stream::{StreamAddress, StreamListener};
use crate::udp::UdpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use tally_core::{Engine, LayoutError};

#[derive(Debug)]
pub enum StartError {
    Engine(LayoutError),
    Bind(BindError),
    Demo(std::io::Error),
    Runtime(std::io::Error),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Engine(error) => write!(f, "bad resolutions in the configuration: {error}"),
            StartError::Bind(error) => error.fmt(f),
            StartError::Demo(error) => write!(f, "cannot start the demo: {error}"),
            StartError::Runtime(error) => write!(f, "cannot start the I/O runtime: {error}"),
        }
    }
}

impl std::error::Error for StartError {}

/// Everything that feeds one engine. Dropping it without [`Collector::stop`] leaves the
/// threads running until the process ends.
#[derive(Debug)]
pub struct Collector {
    engine: Arc<Engine>,
    udp: Vec<UdpListener>,
    streams: Vec<StreamListener>,
    /// Runs the stream listeners (and, later, hub clients); only started when needed.
    runtime: Option<tokio::runtime::Runtime>,
    demo: Option<Demo>,
    stop: Arc<AtomicBool>,
}

impl Collector {
    pub fn start(settings: &Settings) -> Result<Self, StartError> {
        let engine = Engine::new(settings.engine.clone(), now()).map_err(StartError::Engine)?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut udp = settings
            .udp
            .iter()
            .map(|&address| UdpListener::start(address, &engine, &settings.udp_options, &stop))
            .collect::<Result<Vec<_>, _>>()
            .map_err(StartError::Bind)?;
        let addresses: Vec<StreamAddress> = (settings.tcp.iter().map(|&a| StreamAddress::Tcp(a)))
            .chain(settings.unix.iter().map(|p| StreamAddress::Unix(p.clone())))
            .collect();
        let runtime = if addresses.is_empty() {
            None
        } else {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("tally-io")
                .enable_all()
                .build()
                .map_err(StartError::Runtime)?;
            Some(runtime)
        };
        let decode = &settings.udp_options.decode;
        let streams = match &runtime {
            Some(runtime) => addresses
                .iter()
                .map(|address| StreamListener::start(runtime.handle(), address, &engine, decode))
                .collect::<Result<Vec<_>, _>>()
                .map_err(StartError::Bind)?,
            None => vec![],
        };
        let demo = if settings.demo {
            if udp.is_empty() {
                // --no-udp --demo: the demo still goes through a real socket, a private one.
                let private = "127.0.0.1:0".parse().expect("valid address");
                udp.push(
                    UdpListener::start(private, &engine, &settings.udp_options, &stop)
                        .map_err(StartError::Bind)?,
                );
            }
            Some(Demo::start(udp[0].local_addr(), &stop).map_err(StartError::Demo)?)
        } else {
            None
        };
        Ok(Collector {
            engine,
            udp,
            streams,
            runtime,
            demo,
            stop,
        })
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    pub fn udp(&self) -> &[UdpListener] {
        &self.udp
    }

    pub fn streams(&self) -> &[StreamListener] {
        &self.streams
    }

    pub fn sources(&self) -> Vec<SourceStatus> {
        let listeners = self.udp.iter().map(|l| l.health().status(l.kernel_drops()));
        let streams = self.streams.iter().map(|l| l.health().status(None));
        let demo = self.demo.iter().map(|d| d.health().status(None));
        listeners.chain(streams).chain(demo).collect()
    }

    /// Stops every thread and waits for them.
    pub fn stop(self) {
        self.stop.store(true, Relaxed);
        if let Some(demo) = self.demo {
            demo.join();
        }
        for listener in self.udp {
            listener.join();
        }
        for listener in self.streams {
            listener.stop();
        }
        if let Some(runtime) = self.runtime {
            // Open connections end here; their recorders flush as they are dropped.
            runtime.shutdown_timeout(std::time::Duration::from_secs(1));
        }
    }
}
