//! Why the embedded stack cannot start or go on.

use std::path::PathBuf;

use alleycat_ports::PortError;

/// A failure of the stack itself (not of one record): a port in use, an unreadable data
/// directory, a database error. Every message says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The embedded database failed.
    #[error("database {path}: {source}")]
    Db {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A listener could not be opened (most often: the port is in use).
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Which listener (MQTT, WebSocket, HTTP).
        what: &'static str,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The configuration cannot work (names the setting).
    #[error("{0}")]
    Config(String),
    /// The MQTT broker failed.
    #[error("MQTT broker: {0}")]
    Broker(String),
}

/// Maps a database error onto the ports' classification: a busy or locked database may pass,
/// anything else is permanent.
pub fn port_error(error: &rusqlite::Error) -> PortError {
    match error.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            PortError::Transient(error.to_string())
        }
        _ => PortError::Permanent(error.to_string()),
    }
}
