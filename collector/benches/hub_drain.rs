//! Events per second through a hub subscription into the aggregator, against a bare receive
//! loop on the same transport in the same run (docs/PERFORMANCE.md).
//!
//! A publisher thread sends N pre-encoded classic-hub events flat out over loopback, faster
//! than either side reads, so a backlog builds in libzmq's (or TCP's) queues; the figure is N
//! over the time from the first send to the last event counted. Queues are unbounded here so
//! that nothing is dropped: the bench measures speed, the tests measure the bounds.
//!
//! `cargo bench -p tally-collector --bench hub_drain [-- EVENTS]`

use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tally_collector::decode::DecodeOptions;
use tally_collector::health::now;
use tally_collector::ingest::Ingest;
use tally_collector::input::Source;
use tally_collector::input::hub::HubLimits;
use tally_collector::input::ws::WsSubscriber;
use tally_collector::input::zmq::ZmqSubscriber;
use tally_core::{Engine, EngineConfig};
use tokio_tungstenite::tungstenite::Message;

fn events(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                r#"{{"data":{{"account":"account-{}","app":"shop"}},"time":"2014-03-09T19:17:27.5Z","type":"pageview"}}"#,
                i % 100
            )
        })
        .collect()
}

/// A fresh engine, and queues that never drop.
fn unbounded(n: usize) -> (Ingest, HubLimits) {
    let engine = Engine::new(EngineConfig::default(), now()).expect("engine");
    let limits = HubLimits {
        queue_messages: n,
        queue_bytes: usize::MAX / 2,
        receive_hwm: 0,
        ..HubLimits::default()
    };
    (Ingest::new(engine, DecodeOptions::default()), limits)
}

/// Waits until `source` has counted `n` events; returns when it did.
fn counted(source: &dyn Source, n: u64) -> Instant {
    while source.status().events < n {
        std::thread::sleep(Duration::from_micros(200));
    }
    Instant::now()
}

fn zmq_publisher(context: &zmq::Context, frames: Arc<Vec<Vec<u8>>>) -> (String, std::thread::JoinHandle<()>) {
    let publisher = context.socket(zmq::PUB).expect("socket");
    publisher.set_sndhwm(0).expect("hwm");
    publisher.bind("tcp://127.0.0.1:*").expect("bind");
    let endpoint = publisher.get_last_endpoint().expect("endpoint").expect("utf-8");
    let thread = std::thread::spawn(move || {
        // Wait for the subscription to arrive (a probe nobody counts), then send everything.
        std::thread::sleep(Duration::from_millis(300));
        for frame in frames.iter() {
            publisher.send(&frame[..], 0).expect("send");
        }
        std::thread::sleep(Duration::from_secs(30));
    });
    (endpoint, thread)
}

fn zmq_bare(frames: &Arc<Vec<Vec<u8>>>) -> f64 {
    let context = zmq::Context::new();
    let (endpoint, _publisher) = zmq_publisher(&context, Arc::clone(frames));
    let subscriber = context.socket(zmq::SUB).expect("socket");
    subscriber.set_rcvhwm(0).expect("hwm");
    subscriber.set_subscribe(b"").expect("subscribe");
    subscriber.connect(&endpoint).expect("connect");
    let mut message = zmq::Message::new();
    subscriber.recv(&mut message, 0).expect("first");
    let start = Instant::now();
    for _ in 1..frames.len() {
        subscriber.recv(&mut message, 0).expect("recv");
    }
    frames.len() as f64 / start.elapsed().as_secs_f64()
}

fn zmq_tally(frames: &Arc<Vec<Vec<u8>>>) -> f64 {
    let context = zmq::Context::new();
    let (endpoint, _publisher) = zmq_publisher(&context, Arc::clone(frames));
    let (ingest, limits) = unbounded(frames.len());
    let subscriber = ZmqSubscriber::start(&context, &endpoint, &[], &ingest, &limits).expect("subscribes");
    while subscriber.status().received == 0 && subscriber.status().events == 0 {
        std::thread::sleep(Duration::from_micros(100));
    }
    let start = Instant::now();
    let end = counted(&subscriber, frames.len() as u64);
    let rate = (frames.len() - 1) as f64 / (end - start).as_secs_f64();
    ingest.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    Box::new(subscriber).stop();
    rate
}

/// A WebSocket server sending every event as a text frame to its one client.
async fn ws_server(listener: tokio::net::TcpListener, events: Arc<Vec<String>>) {
    let (stream, _) = listener.accept().await.expect("accept");
    let mut client = tokio_tungstenite::accept_async(stream).await.expect("handshake");
    for event in events.iter() {
        client.feed(Message::text(event.as_str())).await.expect("send");
    }
    client.flush().await.expect("flush");
    std::future::pending::<()>().await;
}

fn ws_bare(runtime: &tokio::runtime::Runtime, events: &Arc<Vec<String>>) -> f64 {
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("ws://{}/ws", listener.local_addr().expect("address"));
        tokio::spawn(ws_server(listener, Arc::clone(events)));
        let (mut client, _) = tokio_tungstenite::connect_async(url).await.expect("connects");
        let start = Instant::now();
        for _ in 0..events.len() {
            client.next().await.expect("open").expect("frame");
        }
        events.len() as f64 / start.elapsed().as_secs_f64()
    })
}

fn ws_tally(runtime: &tokio::runtime::Runtime, events: &Arc<Vec<String>>) -> f64 {
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let url = format!("ws://{}/ws", listener.local_addr().expect("address"));
    runtime.spawn(ws_server(listener, Arc::clone(events)));
    let (ingest, limits) = unbounded(events.len());
    let start = Instant::now();
    let subscriber = WsSubscriber::start(runtime.handle(), &url, &[], &ingest, &limits).expect("subscribes");
    let end = counted(&subscriber, events.len() as u64);
    events.len() as f64 / (end - start).as_secs_f64()
}

fn main() {
    // `cargo bench` passes `--bench`; the first number given is the event count.
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let events = Arc::new(events(n));
    let frames: Arc<Vec<Vec<u8>>> = Arc::new(
        events
            .iter()
            .map(|e| format!("pageview {e}").into_bytes())
            .collect(),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!("{n} events of {} bytes, loopback", frames[0].len());
    let (bare, tally) = (zmq_bare(&frames), zmq_tally(&frames));
    println!(
        "zeromq     bare SUB loop {:>10.0} events/s   tally subscription {:>10.0} events/s   ratio {:.2}",
        bare,
        tally,
        tally / bare
    );
    let (bare, tally) = (ws_bare(&runtime, &events), ws_tally(&runtime, &events));
    println!(
        "websocket  bare reader   {:>10.0} events/s   tally subscription {:>10.0} events/s   ratio {:.2}",
        bare,
        tally,
        tally / bare
    );
    // The publisher threads sleep on; they end with the process.
    std::process::exit(0);
}
