//! The embedded collector: an engine, its inputs and (for `tally hub`) its outputs, started
//! from [`Settings`] and held as lists.

use crate::bind::BindError;
use crate::config::Settings;
use crate::firehose::Firehose;
use crate::health::now;
use crate::history::{Checkpointer, StateError};
use crate::ingest::{Ingest, Output};
use crate::input::demo::Demo;
use crate::input::http::{HttpServer, Routes};
use crate::input::hub::HubError;
use crate::input::sse::SseSubscriber;
use crate::input::stream::{StreamAddress, StreamListener};
use crate::input::udp::UdpListener;
use crate::input::ws::WsSubscriber;
use crate::input::zmq::ZmqSubscriber;
use crate::input::{Source, SourceList};
use crate::output::PublishError;
use crate::output::graphite::GraphiteWriter;
use crate::output::history::HistoryWriter;
use crate::output::redis::RedisMirror;
use crate::output::ws::WsServer;
use crate::output::zmq::ZmqPublisher;
use crate::runtimes::Runtimes;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use tally_core::{Engine, LayoutError, OutputStatus, SourceStatus};

/// Raises the open-file limit, and says so in the log when even the raised one is below
/// what the connection servers may hold at their caps.
fn warn_if_short_of_files(settings: &Settings) {
    let servers = settings.tcp.len()
        + settings.unix.len()
        + usize::from(settings.http.is_some())
        + usize::from(settings.sse_listen.is_some())
        + usize::from(settings.publish.ws.is_some());
    let wanted = (servers * settings.connections.max) as u64 + 256;
    match crate::slots::raise_open_file_limit() {
        Some(limit) if servers > 0 && limit < wanted => tracing::warn!(
            "the open-file limit is {limit}, below the {wanted} that {servers} server(s) at \
             --max-connections {} may need: raise it (ulimit -n) or lower the cap",
            settings.connections.max
        ),
        _ => {}
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("bad resolutions in the configuration: {0}")]
    Engine(#[from] LayoutError),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("cannot start the demo: {0}")]
    Demo(#[source] std::io::Error),
    #[error("cannot start the I/O runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error(transparent)]
    Hub(#[from] HubError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error("{0}")]
    Redis(String),
}

/// Everything that feeds one engine, and what it publishes to. Dropping it without
/// [`Collector::stop`] leaves the threads running until the process ends.
#[derive(Debug)]
pub struct Collector {
    ingest: Ingest,
    /// In the order they were started; stopped in reverse. Shared with the HTTP API.
    sources: Arc<SourceList>,
    outputs: Vec<Arc<dyn Output>>,
    runtimes: Runtimes,
}

impl Collector {
    pub fn start(settings: &Settings) -> Result<Self, StartError> {
        // The state first: the engine is what it restores.
        let state = (settings.state.as_ref()).map(|state| {
            (
                state,
                Checkpointer::open(state, &settings.engine, settings.clock.clone(), now()),
            )
        });
        let engine = match &state {
            Some((_, Ok((checkpointer, _)))) => Arc::clone(checkpointer.engine()),
            Some((_, Err(StateError::Layout(error)))) => return Err(StartError::Engine(error.clone())),
            Some((_, Err(_))) | None => Engine::new(settings.engine.clone(), now())?,
        };
        let mut ingest = Ingest::new(engine, settings.decode.clone());
        let runtimes = Runtimes::default();
        let tokio = || runtimes.tokio().map_err(StartError::Runtime);
        warn_if_short_of_files(settings);

        let mut outputs: Vec<Arc<dyn Output>> = vec![];
        if let Some(endpoint) = &settings.publish.zmq {
            let max_subscribers = settings.connections.max;
            let publisher = ZmqPublisher::start(runtimes.zmq(), endpoint, max_subscribers, &ingest.stop)?;
            outputs.push(Arc::new(publisher));
        }
        if let Some(address) = settings.publish.ws {
            let server = WsServer::start(tokio()?, address, &settings.publish.ws_options)?;
            outputs.push(Arc::new(server));
        }
        let served = (settings.http.as_ref()).filter(|_| settings.serve_sse);
        let firehose = (served.or(settings.sse_listen.as_ref()))
            .map(|http| Arc::new(Firehose::new(&http.address.to_string())));
        if let Some(firehose) = &firehose {
            outputs.push(Arc::clone(firehose) as Arc<dyn Output>);
        }
        ingest.outputs = outputs.iter().cloned().collect();

        let mut udp = vec![];
        for &address in &settings.udp {
            udp.push(UdpListener::start(address, &ingest, &settings.udp_options)?);
        }
        if settings.demo && udp.is_empty() {
            // --no-udp --demo: the demo still goes through a real socket, a private one.
            let private = "127.0.0.1:0".parse().expect("valid address");
            udp.push(UdpListener::start(private, &ingest, &settings.udp_options)?);
        }
        let demo_target = udp.first().map(UdpListener::local_addr).filter(|_| settings.demo);
        let mut sources: Vec<Box<dyn Source>> = (udp.into_iter())
            .map(|listener| Box::new(listener) as Box<dyn Source>)
            .collect();
        let streams = (settings.tcp.iter().map(|&a| StreamAddress::Tcp(a)))
            .chain(settings.unix.iter().map(|p| StreamAddress::Unix(p.clone())));
        for address in streams {
            let listener = StreamListener::start(tokio()?, &address, &ingest, settings.connections)?;
            sources.push(Box::new(listener));
        }
        for endpoint in &settings.zmq {
            let (topics, limits) = (&settings.zmq_topics, &settings.hub_limits);
            let subscriber = ZmqSubscriber::start(runtimes.zmq(), endpoint, topics, &ingest, limits)?;
            sources.push(Box::new(subscriber));
        }
        for url in &settings.ws {
            let (headers, limits) = (&settings.ws_headers, &settings.hub_limits);
            sources.push(Box::new(WsSubscriber::start(
                tokio()?,
                url,
                headers,
                &ingest,
                limits,
            )?));
        }
        for url in &settings.sse {
            let (headers, limits) = (&settings.sse_headers, &settings.hub_limits);
            let subscriber = SseSubscriber::start(tokio()?, url, headers, &ingest, limits)?;
            sources.push(Box::new(subscriber));
        }
        if let Some(target) = demo_target {
            sources.push(Box::new(
                Demo::start(target, &ingest.stop).map_err(StartError::Demo)?,
            ));
        }
        let list = Arc::new(SourceList::default());
        for source in sources {
            list.push(source);
        }
        // Last: its read routes report on every other source (and on itself).
        let limits = settings.connections;
        if let Some(http) = &settings.http {
            let firehose = firehose.clone().filter(|_| settings.serve_sse);
            let server = HttpServer::start(tokio()?, http, &ingest, limits, &list, firehose, Routes::All)?;
            list.push(Box::new(server));
        }
        if let (Some(own), Some(firehose)) = (&settings.sse_listen, firehose) {
            let routes = Routes::FirehoseOnly;
            let server = HttpServer::start(tokio()?, own, &ingest, limits, &list, Some(firehose), routes)?;
            list.push(Box::new(server));
        }
        let sources = list;
        // Last, once every address is bound: a tally that cannot start writes nothing to the
        // state directory.
        if let Some((settings_of_state, opened)) = state {
            let mirror = match &settings.redis {
                Some(url) => {
                    Some(RedisMirror::start(url, settings.clock.clone()).map_err(StartError::Redis)?)
                }
                None => None,
            };
            let (mirror, feed) = mirror.unzip();
            let writer = HistoryWriter::start(opened, settings_of_state, feed);
            // In this order: the history's last checkpoint feeds the mirror's last send.
            outputs.push(Arc::new(writer));
            if let Some(mirror) = mirror {
                outputs.push(Arc::new(mirror));
            }
        }
        if let Some(graphite) = &settings.graphite {
            let writer = GraphiteWriter::start(&ingest.engine, graphite).map_err(StartError::Runtime)?;
            outputs.push(Arc::new(writer));
        }
        Ok(Collector {
            ingest,
            sources,
            outputs,
            runtimes,
        })
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.ingest.engine
    }

    pub fn sources(&self) -> Vec<SourceStatus> {
        self.sources.statuses()
    }

    /// Where events are re-published (`tally hub`), with what was sent and dropped, and the
    /// history.
    pub fn outputs(&self) -> Vec<OutputStatus> {
        self.outputs.iter().map(|o| o.status()).collect()
    }

    /// Stops every thread and waits for them: the sources (newest first, so the demo stops
    /// before the listener it sends to), then open connections, then the outputs.
    pub fn stop(self) {
        self.ingest.stop.store(true, Relaxed);
        for source in self.sources.take().into_iter().rev() {
            source.stop();
        }
        self.runtimes.shutdown();
        for output in &self.outputs {
            output.stop();
        }
    }
}
