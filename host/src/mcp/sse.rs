//! A server-sent events decoder (WHATWG `text/event-stream`), shared by the streamable-http
//! transport (responses streamed as SSE) and the legacy SSE transport.
//!
//! Only what MCP uses: `event`, `data` (multi-line joined with `\n`) and the blank line that
//! ends an event; `id`, `retry` and comments are ignored. Lines end in LF, CRLF or CR. A single
//! event larger than [`MAX_EVENT_BYTES`] fails the stream instead of growing without bound.

use bytes::{Buf, BytesMut};

/// Largest event accepted (a `tools/list` page of a large server fits comfortably).
pub const MAX_EVENT_BYTES: usize = 16 << 20;

/// One decoded event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `event:` field; empty means the default `message`.
    pub name: String,
    /// `data:` lines joined by `\n`.
    pub data: String,
}

/// The event stream was malformed.
#[derive(Debug, thiserror::Error)]
pub enum SseError {
    /// An event exceeded [`MAX_EVENT_BYTES`].
    #[error("server-sent event larger than {MAX_EVENT_BYTES} bytes")]
    TooLarge,
    /// A line was not UTF-8.
    #[error("server-sent event is not UTF-8")]
    NotUtf8,
}

/// Incremental decoder: feed chunks, take complete events.
#[derive(Debug, Default)]
pub struct Decoder {
    buffer: BytesMut,
    name: String,
    data: String,
    has_data: bool,
}

impl Decoder {
    /// Add a chunk and return every event it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<Event>, SseError> {
        self.buffer.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some(end) = self.buffer.iter().position(|&b| b == b'\n' || b == b'\r') {
            // A CR at the very end may be the first half of CRLF: wait for the next chunk.
            if self.buffer[end] == b'\r' && end + 1 == self.buffer.len() {
                break;
            }
            let line = self.buffer.split_to(end);
            let terminator = if self.buffer.starts_with(b"\r\n") {
                2
            } else {
                1
            };
            self.buffer.advance(terminator);
            let line = std::str::from_utf8(&line).map_err(|_| SseError::NotUtf8)?;
            if let Some(event) = self.line(line) {
                events.push(event);
            }
        }
        if self.buffer.len() + self.data.len() > MAX_EVENT_BYTES {
            return Err(SseError::TooLarge);
        }
        Ok(events)
    }

    fn line(&mut self, line: &str) -> Option<Event> {
        if line.is_empty() {
            let event = self.has_data.then(|| Event {
                name: std::mem::take(&mut self.name),
                data: std::mem::take(&mut self.data),
            });
            self.name.clear();
            self.data.clear();
            self.has_data = false;
            return event;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.name = value.to_owned(),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_and_line_endings_decode() {
        let mut d = Decoder::default();
        assert!(d
            .feed(b"event: endpoint\r\ndata: /message?s")
            .unwrap()
            .is_empty());
        let events = d
            .feed(b"=1\r\n\r\n: comment\ndata: {\"a\":\ndata: 1}\n\n")
            .unwrap();
        assert_eq!(
            events,
            [
                Event {
                    name: "endpoint".into(),
                    data: "/message?s=1".into()
                },
                Event {
                    name: String::new(),
                    data: "{\"a\":\n1}".into()
                },
            ]
        );
    }

    #[test]
    fn a_cr_at_a_chunk_boundary_is_not_a_blank_line() {
        let mut d = Decoder::default();
        assert!(d.feed(b"data: x\r").unwrap().is_empty());
        assert_eq!(d.feed(b"\n\r\n").unwrap().len(), 1);
    }
}
