//! Native test doubles for the host imports (only on non-wasm targets).
//!
//! A plugin's unit tests run on the build machine (`cargo test`), where there is no host: the SDK
//! routes [`crate::log`], [`crate::clock`] and [`crate::http`] here instead. Every double is
//! per thread, so parallel tests do not see each other's logs, clock or HTTP handler.
//!
//! ```
//! use portcullis_sdk::{http, testing};
//!
//! testing::set_http_handler(|request| {
//!     assert_eq!(request.url, "https://vault.example:443/v1/secret");
//!     Ok(http::Response { status: 200, headers: vec![], body: b"s3cret".to_vec() })
//! });
//! let response = http::fetch(&http::Request::get("https://vault.example:443/v1/secret")).unwrap();
//! assert_eq!(response.body, b"s3cret");
//! ```

use std::cell::{Cell, RefCell};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::http::{HttpError, Request, Response};
use crate::log::Level;

/// One log event captured natively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent {
    /// Severity.
    pub level: Level,
    /// The message.
    pub message: String,
    /// Key-value fields.
    pub fields: Vec<(String, String)>,
}

type HttpHandler = Box<dyn Fn(&Request) -> Result<Response, HttpError>>;

thread_local! {
    static LOGS: RefCell<Vec<LogEvent>> = const { RefCell::new(Vec::new()) };
    static NOW_UNIX_MS: Cell<Option<u64>> = const { Cell::new(None) };
    static HTTP: RefCell<Option<HttpHandler>> = const { RefCell::new(None) };
}

/// Take (and clear) the events this thread logged.
pub fn take_logs() -> Vec<LogEvent> {
    LOGS.with(|logs| std::mem::take(&mut *logs.borrow_mut()))
}

/// Fix the clock for this thread (`None`: back to the system clock).
pub fn set_now_unix_ms(now: Option<u64>) {
    NOW_UNIX_MS.with(|cell| cell.set(now));
}

/// Answer this thread's [`crate::http::fetch`] calls with `handler`.
pub fn set_http_handler(handler: impl Fn(&Request) -> Result<Response, HttpError> + 'static) {
    HTTP.with(|slot| *slot.borrow_mut() = Some(Box::new(handler)));
}

/// Remove this thread's HTTP handler: fetches fail with [`HttpError::NotAllowed`] again.
pub fn clear_http_handler() {
    HTTP.with(|slot| *slot.borrow_mut() = None);
}

pub(crate) fn log(level: Level, message: &str, fields: &[(&str, &str)]) {
    let event = LogEvent {
        level,
        message: message.to_owned(),
        fields: fields
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect(),
    };
    LOGS.with(|logs| logs.borrow_mut().push(event));
}

pub(crate) fn now_unix_ms() -> u64 {
    NOW_UNIX_MS.with(Cell::get).unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis() as u64)
    })
}

pub(crate) fn fetch(request: &Request) -> Result<Response, HttpError> {
    HTTP.with(|slot| match slot.borrow().as_ref() {
        Some(handler) => handler(request),
        None => Err(HttpError::NotAllowed(format!(
            "no test HTTP handler installed (portcullis_sdk::testing::set_http_handler) for {}",
            request.url
        ))),
    })
}
