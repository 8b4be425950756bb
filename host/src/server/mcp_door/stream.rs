//! The answer to a `POST /mcp` whose client accepts `text/event-stream`: plain JSON unless a
//! notification of the call ([`crate::mcp::relay`]) arrives before the answer is ready; then
//! an SSE stream (`200`, `text/event-stream`) of those notifications, in order, and the answer
//! as its last event, after which the stream ends.
//!
//! Once streaming, the request runs on in its own task, so its deadline (the MCP source's call
//! timeout) and its audit records are those of the call; a client that goes away ends only the
//! stream. Bounds are the relay's (count, size, buffer).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::mcp::relay::{Notifications, BUFFERED};

/// Largest final answer read into the stream (the door's answers are bounded JSON already;
/// this only guards the conversion).
const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

/// Whether the client accepts an SSE answer.
pub(super) fn accepts_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.split(';').next().unwrap_or_default().trim())
        .any(|media| media.eq_ignore_ascii_case("text/event-stream"))
}

type Answer = Pin<Box<dyn Future<Output = Response> + Send>>;

/// Answer with `answer`, as JSON or, once a notification arrived first, as an SSE stream.
pub(super) async fn respond(mut answer: Answer, mut notifications: Notifications) -> Response {
    let first = tokio::select! {
        biased;
        response = &mut answer => {
            // Notifications that arrived with the answer still go first.
            let pending: Vec<Bytes> = std::iter::from_fn(|| notifications.try_recv().ok()).collect();
            if pending.is_empty() {
                return response;
            }
            return stream(pending, None, Some(response), notifications);
        }
        Some(first) = notifications.recv() => first,
    };
    let running = tokio::spawn(answer);
    stream(vec![first], Some(running), None, notifications)
}

/// The SSE response: `pending`, then further notifications until the answer is ready, then
/// the answer.
fn stream(
    pending: Vec<Bytes>,
    running: Option<tokio::task::JoinHandle<Response>>,
    ready: Option<Response>,
    mut notifications: Notifications,
) -> Response {
    let (events, body) = mpsc::channel::<Bytes>(BUFFERED);
    tokio::spawn(async move {
        for data in pending {
            if events.send(event(&data)).await.is_err() {
                return;
            }
        }
        let response = match (ready, running) {
            (Some(response), _) => response,
            (None, Some(mut running)) => loop {
                tokio::select! {
                    biased;
                    Some(data) = notifications.recv() => {
                        // A client that went away stops the stream, not the call.
                        let _ = events.send(event(&data)).await;
                    }
                    joined = &mut running => break joined.unwrap_or_else(|_| {
                        StatusCode::INTERNAL_SERVER_ERROR.into_response()
                    }),
                }
            },
            (None, None) => return,
        };
        while let Ok(data) = notifications.try_recv() {
            let _ = events.send(event(&data)).await;
        }
        if let Ok(answer) = axum::body::to_bytes(response.into_body(), MAX_ANSWER_BYTES).await {
            let _ = events.send(event(&answer)).await;
        }
    });
    let body = futures_util::stream::unfold(body, |mut body| async move {
        body.recv().await.map(|b| (Ok::<_, Infallible>(b), body))
    });
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

/// One SSE `message` event carrying `data` (compact JSON: one line).
fn event(data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(data.len() + 24);
    out.extend_from_slice(b"event: message\ndata: ");
    out.extend(data.iter().map(|&b| if b == b'\n' { b' ' } else { b }));
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(response: Response) -> (String, String) {
        let kind = response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (kind, String::from_utf8(body.to_vec()).unwrap())
    }

    fn json(body: &'static str) -> Response {
        ([(header::CONTENT_TYPE, "application/json")], body).into_response()
    }

    #[tokio::test]
    async fn without_notifications_the_answer_is_plain_json() {
        let (sender, notifications) = crate::mcp::relay::channel();
        let answer: Answer = Box::pin(async move {
            drop(sender);
            json(r#"{"result":{}}"#)
        });
        let (kind, body) = read(respond(answer, notifications).await).await;
        assert_eq!(kind, "application/json");
        assert_eq!(body, r#"{"result":{}}"#);
    }

    #[tokio::test]
    async fn notifications_stream_first_and_the_answer_ends_the_stream() {
        let (sender, notifications) = crate::mcp::relay::channel();
        let answer: Answer = Box::pin(async move {
            sender.send(Bytes::from_static(b"{\"n\":1}")).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            sender.send(Bytes::from_static(b"{\"n\":2}")).await.unwrap();
            json(r#"{"result":{}}"#)
        });
        let (kind, body) = read(respond(answer, notifications).await).await;
        assert_eq!(kind, "text/event-stream");
        assert_eq!(
            body,
            "event: message\ndata: {\"n\":1}\n\nevent: message\ndata: {\"n\":2}\n\nevent: message\ndata: {\"result\":{}}\n\n"
        );
    }

    #[test]
    fn event_stream_acceptance_is_read_from_every_accept_value() {
        let with = |accept: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT, accept.parse().unwrap());
            accepts_event_stream(&headers)
        };
        assert!(with("application/json, text/event-stream"));
        assert!(with("text/event-stream;q=0.5"));
        assert!(!with("application/json"));
        assert!(!accepts_event_stream(&HeaderMap::new()));
    }
}
