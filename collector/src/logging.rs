//! The log filter of every tally binary.

use tracing_subscriber::EnvFilter;

/// `TALLY_LOG` (default `warn`), except that the WebSocket library never logs below `info`:
/// at `trace` it writes whole handshakes, whose headers may carry secrets (`--ws-header`).
pub fn filter() -> EnvFilter {
    let filter = EnvFilter::try_from_env("TALLY_LOG").unwrap_or_else(|_| "warn".into());
    ["tungstenite=info", "tokio_tungstenite=info"]
        .into_iter()
        .fold(filter, |filter, quiet| {
            filter.add_directive(quiet.parse().expect("valid directive"))
        })
}
