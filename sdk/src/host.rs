//! The one place that calls host imports. In a component (`wasm32`) they are the real imports;
//! natively (unit tests) they are the per-thread test doubles of [`crate::testing`], because the
//! generated import functions only exist inside a component.

#[cfg(target_arch = "wasm32")]
mod imp {
    use crate::bindings::base::portcullis::plugin::{clock, log, outbound_http};
    use crate::http::{HttpError, Request, Response};
    use crate::log::Level;

    pub fn log(level: Level, message: &str, fields: &[(&str, &str)]) {
        let level = match level {
            Level::Trace => log::Level::Trace,
            Level::Debug => log::Level::Debug,
            Level::Info => log::Level::Info,
            Level::Warn => log::Level::Warn,
            Level::Error => log::Level::Error,
        };
        let fields: Vec<(String, String)> = fields
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
        log::log(level, message, &fields);
    }

    pub fn now_unix_ms() -> u64 {
        clock::now_unix_ms()
    }

    pub fn fetch(request: &Request) -> Result<Response, HttpError> {
        let request = outbound_http::Request {
            method: request.method.clone(),
            url: request.url.clone(),
            headers: request.headers.clone(),
            body: request.body.clone(),
            timeout_ms: request.timeout_ms,
        };
        match outbound_http::fetch(&request) {
            Ok(response) => Ok(Response {
                status: response.status,
                headers: response.headers,
                body: response.body,
            }),
            Err(outbound_http::HttpError::NotAllowed(message)) => {
                Err(HttpError::NotAllowed(message))
            }
            Err(outbound_http::HttpError::Timeout) => Err(HttpError::Timeout),
            Err(outbound_http::HttpError::TooLarge) => Err(HttpError::TooLarge),
            Err(outbound_http::HttpError::Transport(message)) => Err(HttpError::Transport(message)),
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    pub(crate) use crate::testing::{fetch, log, now_unix_ms};
}

pub(crate) use imp::{fetch, log, now_unix_ms};
