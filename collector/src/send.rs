//! `tally send`: a producer for tests, benchmarks and the README's examples. Event `i` goes to
//! account `i % accounts` and type `(i / accounts) % types`, so what each account received is
//! known from the count alone.

use crate::input::demo::ACCOUNTS;
use serde::Serialize;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Classic hub JSON: `{"type":"pageview","data":{"account":"acme"}}`
    Json,
    /// StatsD counters: `acme.pageview:1|c`
    Statsd,
    /// The hub JSON shape, as msgpack (UDP only: msgpack has no line framing)
    Msgpack,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    Udp,
    Tcp,
}

/// What `tally send` sends, and where (its flags).
#[derive(Clone, Debug, clap::Args)]
pub struct SendOptions {
    /// Where to send
    #[arg(long, default_value = "127.0.0.1:8125")]
    pub to: SocketAddr,
    #[arg(long, value_enum, default_value = "udp")]
    pub transport: Transport,
    #[arg(long, value_enum, default_value = "statsd")]
    pub format: Format,
    /// Events to send
    #[arg(long, default_value_t = 1000)]
    pub count: u64,
    /// Events per second (default: as fast as possible)
    #[arg(long)]
    pub rate: Option<f64>,
    /// Accounts to spread the events over (event i goes to account i % N)
    #[arg(long, default_value_t = 5)]
    pub accounts: usize,
    /// Event types per account
    #[arg(long, default_value_t = 3)]
    pub types: usize,
    /// StatsD lines per datagram (other formats: one event per datagram)
    #[arg(long, default_value_t = 1)]
    pub per_datagram: usize,
}

/// What was sent: printed by `tally send`, compared by the tests.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SendReport {
    pub events: u64,
    pub datagrams: u64,
    pub bytes: u64,
    pub seconds: f64,
    /// Events per account, in account order.
    pub accounts: Vec<(String, u64)>,
}

pub fn account_name(i: usize) -> String {
    ACCOUNTS
        .get(i)
        .map_or_else(|| format!("account-{i}"), |name| (*name).to_owned())
}

pub fn type_name(i: usize) -> String {
    const TYPES: [&str; 6] = [
        "pageview",
        "order.create",
        "order.update",
        "signup",
        "request",
        "apievent",
    ];
    TYPES
        .get(i)
        .map_or_else(|| format!("type-{i}"), |name| (*name).to_owned())
}

#[derive(Serialize)]
struct Data<'a> {
    account: &'a str,
}

#[derive(Serialize)]
struct HubEvent<'a> {
    #[serde(rename = "type")]
    event_type: &'a str,
    data: Data<'a>,
}

enum Output {
    Udp(UdpSocket),
    Tcp(io::BufWriter<TcpStream>),
}

impl Output {
    fn send(&mut self, payload: &[u8]) -> io::Result<()> {
        match self {
            Output::Udp(socket) => socket.send(payload).map(drop),
            Output::Tcp(stream) => {
                stream.write_all(payload)?;
                stream.write_all(b"\n")
            }
        }
    }
}

pub fn send(options: &SendOptions) -> io::Result<SendReport> {
    let accounts = options.accounts.max(1);
    let types = options.types.max(1);
    let account_names: Vec<String> = (0..accounts).map(account_name).collect();
    let type_names: Vec<String> = (0..types).map(type_name).collect();
    let mut output = match options.transport {
        Transport::Udp => {
            let local = if options.to.is_ipv6() {
                "[::]:0"
            } else {
                "0.0.0.0:0"
            };
            let socket = UdpSocket::bind(local)?;
            socket.connect(options.to)?;
            Output::Udp(socket)
        }
        Transport::Tcp if options.format == Format::Msgpack => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "msgpack has no line framing: send it over UDP",
            ));
        }
        Transport::Tcp => Output::Tcp(io::BufWriter::new(TcpStream::connect(options.to)?)),
    };
    let per_datagram = if options.format == Format::Statsd {
        options.per_datagram.max(1)
    } else {
        1
    };
    let mut report = SendReport {
        events: 0,
        datagrams: 0,
        bytes: 0,
        seconds: 0.0,
        accounts: account_names.iter().map(|a| (a.clone(), 0)).collect(),
    };
    let start = Instant::now();
    let mut payload = Vec::with_capacity(1500);
    let mut line = String::with_capacity(128);
    let mut i = 0u64;
    while i < options.count {
        if let Some(rate) = options.rate.filter(|r| *r > 0.0) {
            let due = start + Duration::from_secs_f64(i as f64 / rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        payload.clear();
        let batch = (per_datagram as u64).min(options.count - i);
        for k in 0..batch {
            let n = (i + k) as usize;
            let (account, event_type) = (n % accounts, (n / accounts) % types);
            report.accounts[account].1 += 1;
            let event = HubEvent {
                event_type: &type_names[event_type],
                data: Data {
                    account: &account_names[account],
                },
            };
            match options.format {
                Format::Json => serde_json::to_writer(&mut payload, &event).map_err(io::Error::other)?,
                Format::Msgpack => {
                    rmp_serde::encode::write_named(&mut payload, &event).map_err(io::Error::other)?
                }
                Format::Statsd => {
                    line.clear();
                    let _ = write!(line, "{}.{}:1|c", account_names[account], type_names[event_type]);
                    if k > 0 {
                        payload.push(b'\n');
                    }
                    payload.extend_from_slice(line.as_bytes());
                }
            }
        }
        output.send(&payload)?;
        report.events += batch;
        report.datagrams += 1;
        report.bytes += payload.len() as u64;
        i += batch;
    }
    if let Output::Tcp(stream) = &mut output {
        stream.flush()?;
    }
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}
