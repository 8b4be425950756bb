//! Structured logging into the host's log.
//!
//! The host tags every event with the plugin name and the request id, and caps size and rate.
//! Never log secret values or tokens: the host cannot tell them apart from other text.
//!
//! Natively (unit tests), events are kept per thread; read them with
//! [`crate::testing::take_logs`].

/// Severity, as in the host's `tracing` levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something looks wrong but the call goes on.
    Warn,
    /// The call failed.
    Error,
}

/// Write one event: a message plus key-value fields.
pub fn log(level: Level, message: &str, fields: &[(&str, &str)]) {
    crate::host::log(level, message, fields);
}

/// Write a `trace` event.
pub fn trace(message: &str) {
    log(Level::Trace, message, &[]);
}

/// Write a `debug` event.
pub fn debug(message: &str) {
    log(Level::Debug, message, &[]);
}

/// Write an `info` event.
pub fn info(message: &str) {
    log(Level::Info, message, &[]);
}

/// Write a `warn` event.
pub fn warn(message: &str) {
    log(Level::Warn, message, &[]);
}

/// Write an `error` event.
pub fn error(message: &str) {
    log(Level::Error, message, &[]);
}
