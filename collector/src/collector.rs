//! The embedded collector: an engine, its listeners, and the demo, started from [`Settings`].

use crate::config::Settings;
use crate::demo::Demo;
use crate::hub::publish::{PublishError, Publishers};
use crate::hub::ws_client::WsSubscriber;
use crate::hub::zmq_client::ZmqSubscriber;
use crate::hub::{HubError, Intake};
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
    Hub(HubError),
    Publish(PublishError),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Engine(error) => write!(f, "bad resolutions in the configuration: {error}"),
            StartError::Bind(error) => error.fmt(f),
            StartError::Demo(error) => write!(f, "cannot start the demo: {error}"),
            StartError::Runtime(error) => write!(f, "cannot start the I/O runtime: {error}"),
            StartError::Hub(error) => error.fmt(f),
            StartError::Publish(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for StartError {}

/// Everything that feeds one engine (and, for `tally hub`, the publishers it feeds). Dropping
/// it without [`Collector::stop`] leaves the threads running until the process ends.
#[derive(Debug)]
pub struct Collector {
    engine: Arc<Engine>,
    udp: Vec<UdpListener>,
    streams: Vec<StreamListener>,
    zmq: Vec<ZmqSubscriber>,
    ws: Vec<WsSubscriber>,
    publishers: Option<Publishers>,
    /// Runs the stream listeners, WebSocket clients and server; only started when needed.
    runtime: Option<tokio::runtime::Runtime>,
    demo: Option<Demo>,
    stop: Arc<AtomicBool>,
}

impl Collector {
    pub fn start(settings: &Settings) -> Result<Self, StartError> {
        let engine = Engine::new(settings.engine.clone(), now()).map_err(StartError::Engine)?;
        let stop = Arc::new(AtomicBool::new(false));
        let addresses: Vec<StreamAddress> = (settings.tcp.iter().map(|&a| StreamAddress::Tcp(a)))
            .chain(settings.unix.iter().map(|p| StreamAddress::Unix(p.clone())))
            .collect();
        let needs_runtime = !addresses.is_empty() || !settings.ws.is_empty() || settings.publish.ws.is_some();
        let runtime = if !needs_runtime {
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
        // libzmq's I/O thread is only started when ZeroMQ is used.
        let context = (!settings.zmq.is_empty() || settings.publish.zmq.is_some()).then(zmq::Context::new);
        let publishers = if settings.publish.is_empty() {
            None
        } else {
            let context = context.as_ref().cloned().unwrap_or_default();
            let handle = runtime.as_ref().map(|r| r.handle());
            Some(Publishers::start(&settings.publish, &context, handle, &stop).map_err(StartError::Publish)?)
        };
        let mut udp_options = settings.udp_options.clone();
        udp_options.decode.republish = publishers.as_ref().map(|p| Arc::clone(&p.republisher));
        let decode = &udp_options.decode;
        let intake = Intake {
            engine: Arc::clone(&engine),
            decode: decode.clone(),
            limits: settings.hub_limits.clone(),
            stop: Arc::clone(&stop),
        };
        let zmq = match &context {
            Some(context) => (settings.zmq.iter())
                .map(|endpoint| ZmqSubscriber::start(context, endpoint, &settings.zmq_topics, &intake))
                .collect::<Result<Vec<_>, _>>()
                .map_err(StartError::Hub)?,
            None => vec![],
        };
        let ws = match &runtime {
            Some(runtime) => (settings.ws.iter())
                .map(|url| WsSubscriber::start(runtime.handle(), url, &settings.ws_headers, &intake))
                .collect::<Result<Vec<_>, _>>()
                .map_err(StartError::Hub)?,
            None => vec![],
        };
        let streams = match &runtime {
            Some(runtime) => addresses
                .iter()
                .map(|address| StreamListener::start(runtime.handle(), address, &engine, decode))
                .collect::<Result<Vec<_>, _>>()
                .map_err(StartError::Bind)?,
            None => vec![],
        };
        let mut udp = (settings.udp.iter())
            .map(|&address| UdpListener::start(address, &engine, &udp_options, &stop))
            .collect::<Result<Vec<_>, _>>()
            .map_err(StartError::Bind)?;
        let demo = if settings.demo {
            if udp.is_empty() {
                // --no-udp --demo: the demo still goes through a real socket, a private one.
                let private = "127.0.0.1:0".parse().expect("valid address");
                udp.push(
                    UdpListener::start(private, &engine, &udp_options, &stop).map_err(StartError::Bind)?,
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
            zmq,
            ws,
            publishers,
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
        let zmq = self.zmq.iter().map(|s| s.health().status(None));
        let ws = self.ws.iter().map(|s| s.health().status(None));
        let demo = self.demo.iter().map(|d| d.health().status(None));
        listeners
            .chain(streams)
            .chain(zmq)
            .chain(ws)
            .chain(demo)
            .collect()
    }

    /// Where events are re-published (`tally hub`), with what was sent and dropped.
    pub fn outputs(&self) -> Vec<SourceStatus> {
        let health = self.publishers.iter().flat_map(|p| p.health());
        health.map(|h| h.status(None)).collect()
    }

    /// The address WebSocket clients of `tally hub --serve-ws` connect to.
    pub fn ws_served(&self) -> Option<std::net::SocketAddr> {
        self.publishers.as_ref().and_then(Publishers::ws_local)
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
        for subscriber in self.zmq {
            subscriber.join();
        }
        if let Some(runtime) = self.runtime {
            // Open connections end here; their recorders flush as they are dropped.
            runtime.shutdown_timeout(std::time::Duration::from_secs(1));
        }
        for subscriber in self.ws {
            subscriber.join();
        }
        if let Some(publishers) = self.publishers {
            publishers.join();
        }
    }
}
