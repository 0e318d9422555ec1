//! The embedded collector: an engine, its listeners, and the demo, started from [`Settings`].

use crate::config::Settings;
use crate::demo::Demo;
use crate::source::{SourceStatus, now};
use crate::udp::{BindError, UdpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use tally_core::{Engine, LayoutError};

#[derive(Debug)]
pub enum StartError {
    Engine(LayoutError),
    Bind(BindError),
    Demo(std::io::Error),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Engine(error) => write!(f, "bad resolutions in the configuration: {error}"),
            StartError::Bind(error) => error.fmt(f),
            StartError::Demo(error) => write!(f, "cannot start the demo: {error}"),
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

    pub fn sources(&self) -> Vec<SourceStatus> {
        let listeners = self.udp.iter().map(|l| l.health().status(l.kernel_drops()));
        let demo = self.demo.iter().map(|d| d.health().status(None));
        listeners.chain(demo).collect()
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
    }
}
