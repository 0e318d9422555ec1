//! Why an address could not be listened on, worded for the person who typed it.

use std::io;
use std::net::SocketAddr;
use std::path::Path;

/// Connections the kernel queues for a TCP listener before they are accepted (capped by
/// `net.core.somaxconn`). The standard library asks for 128, which a burst of clients
/// overflows, and each connection dropped there waits a second for its SYN to be resent.
const LISTEN_BACKLOG: u32 = 4096;

/// A TCP listener on `address` with room for a burst of connections. Call it within a
/// runtime.
pub fn listen_tcp(address: SocketAddr) -> io::Result<tokio::net::TcpListener> {
    let socket = match address {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
    }?;
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
}

#[derive(Debug, thiserror::Error)]
#[error("{}", self.message())]
pub struct BindError {
    /// `UDP`, `TCP` or `Unix socket`.
    pub kind: &'static str,
    pub address: String,
    /// The flag that sets such an address, for the hint.
    pub flag: &'static str,
    #[source]
    pub error: io::Error,
}

impl BindError {
    pub fn udp(address: std::net::SocketAddr, error: io::Error) -> Self {
        BindError {
            kind: "UDP",
            address: address.to_string(),
            flag: "--udp 127.0.0.1:PORT (or none: --no-udp)",
            error,
        }
    }

    pub fn tcp(address: std::net::SocketAddr, error: io::Error) -> Self {
        BindError {
            kind: "TCP",
            address: address.to_string(),
            flag: "--tcp 127.0.0.1:PORT",
            error,
        }
    }

    pub fn http(address: std::net::SocketAddr, error: io::Error) -> Self {
        BindError {
            kind: "HTTP",
            address: address.to_string(),
            flag: "--http 127.0.0.1:PORT",
            error,
        }
    }

    pub fn unix(path: &Path, error: io::Error) -> Self {
        BindError {
            kind: "Unix socket",
            address: path.display().to_string(),
            flag: "--unix PATH",
            error,
        }
    }

    fn message(&self) -> String {
        let BindError {
            kind, address, flag, ..
        } = self;
        match self.error.kind() {
            io::ErrorKind::AddrInUse => format!(
                "{kind} {address} is already in use (another collector?): stop it, or listen elsewhere with {flag}"
            ),
            io::ErrorKind::AddrNotAvailable => format!(
                "{kind} {address} is not an address of this machine: use 127.0.0.1, 0.0.0.0, [::1] or one of its interfaces"
            ),
            io::ErrorKind::PermissionDenied => format!(
                "{kind} {address}: permission denied (ports below 1024 need privileges; a socket path needs a writable directory)"
            ),
            _ => format!("{kind} {address}: {}", self.error),
        }
    }
}
