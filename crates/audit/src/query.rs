//! Filters and cursor paging for `GET /v1/audit/events` and `portcullis audit tail`.
//!
//! Filters (all optional, combined with AND): `from` (alias `since`, inclusive) and `to`
//! (exclusive) as RFC 3339 instants, `principal`, `toolId`, `eventType` exact, `decision`
//! (`allowed`, `denied` or `error`). Write-ahead `tool_execution_intent` records are left out
//! unless `eventType=tool_execution_intent` asks for them, so the default view has one record per
//! decision.
//!
//! Paging: a cursor names the last record a page examined (by `seq`, which never changes once
//! written), so pages are stable while records are appended. With a cursor (`cursor=` empty
//! starts at the first record) a page holds the next `limit` matches after it, oldest first.
//! Without one (the open-cli form) a page holds the most recent `limit` matches, oldest first,
//! and its cursor resumes after the newest record, so polling with it returns only new records.
//! A page reads at most [`MAX_SCAN`] records; when it stops early `hasMore` is true and the cursor
//! continues the scan. Pages seek through the writer's in-memory index ([`super::index`]), so no
//! page reads the whole file.

use std::fs::File;
use std::sync::RwLock;

use base64::Engine as _;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::index::Index;
use super::{AuditDecision, AuditEvent};

const DEFAULT_LIMIT: usize = 1000;
const MAX_LIMIT: usize = 10_000;
/// Most records one page examines (the bound on a page's cost with selective filters).
pub const MAX_SCAN: u64 = 100_000;
/// Most records read per seek (a page of `limit` reads blocks of `limit`, at least 16).
const BLOCK: u64 = 512;
const INTENT: &str = "tool_execution_intent";
const CURSOR_PREFIX: &str = "seq:";

/// Raw query parameters, as received.
#[derive(Debug, Default, Clone, Copy)]
pub struct QueryParams<'a> {
    /// Page size.
    pub limit: Option<&'a str>,
    /// Legacy name of `from`.
    pub since: Option<&'a str>,
    /// Inclusive lower time bound.
    pub from: Option<&'a str>,
    /// Exclusive upper time bound.
    pub to: Option<&'a str>,
    /// Exact principal.
    pub principal: Option<&'a str>,
    /// Exact tool id.
    pub tool_id: Option<&'a str>,
    /// Exact event type.
    pub event_type: Option<&'a str>,
    /// `allowed`, `denied` or `error`.
    pub decision: Option<&'a str>,
    /// Opaque cursor from a previous page (empty: from the start).
    pub cursor: Option<&'a str>,
}

/// A validated audit query.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    limit: Option<usize>,
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
    principal: Option<String>,
    tool_id: Option<String>,
    event_type: Option<String>,
    decision: Option<AuditDecision>,
    /// `Some(n)`: page forward after seq `n` (0 = from the start).
    after: Option<u64>,
    /// Byte strings a matching line must contain (the JSON text of exact-match filters), checked
    /// before a line is parsed.
    needles: Vec<Vec<u8>>,
}

/// A query parameter that could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QueryError {
    /// `limit` is not a positive integer.
    #[error("limit must be an integer between 1 and {MAX_LIMIT}")]
    Limit,
    /// A time bound is not RFC 3339.
    #[error("{0} must be an RFC 3339 timestamp, e.g. 2026-01-02T03:04:05Z")]
    Time(&'static str),
    /// `since` and `from` are the same bound.
    #[error("give either since or from, not both")]
    SinceAndFrom,
    /// `decision` is not one of the three.
    #[error("decision must be allowed, denied or error")]
    Decision,
    /// The cursor was not made by this server.
    #[error("cursor is not valid; start again without one or with cursor= (empty)")]
    Cursor,
}

/// One page of records.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Page {
    /// Matching records, oldest first.
    pub events: Vec<AuditEvent>,
    /// Resume after the last record this page examined.
    pub next_cursor: String,
    /// The page stopped before the end of the log (limit or scan bound reached).
    pub has_more: bool,
}

/// The opaque cursor for "after seq `seq`".
pub fn encode_cursor(seq: u64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{seq}"))
}

fn decode_cursor(cursor: &str) -> Result<u64, QueryError> {
    if cursor.is_empty() {
        return Ok(0);
    }
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| QueryError::Cursor)?;
    std::str::from_utf8(&raw)
        .ok()
        .and_then(|s| s.strip_prefix(CURSOR_PREFIX))
        .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|digits| digits.parse().ok())
        .ok_or(QueryError::Cursor)
}

fn instant(raw: Option<&str>, name: &'static str) -> Result<Option<OffsetDateTime>, QueryError> {
    raw.map(|s| OffsetDateTime::parse(s, &Rfc3339).map_err(|_| QueryError::Time(name)))
        .transpose()
}

impl AuditQuery {
    /// Validate raw query parameters.
    pub fn parse(params: QueryParams<'_>) -> Result<Self, QueryError> {
        let limit = params
            .limit
            .map(|l| {
                l.parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or(QueryError::Limit)
            })
            .transpose()?;
        if params.since.is_some() && params.from.is_some() {
            return Err(QueryError::SinceAndFrom);
        }
        let from = match params.from {
            Some(from) => instant(Some(from), "from")?,
            None => instant(params.since, "since")?,
        };
        let decision = params
            .decision
            .map(|d| match d {
                "allowed" => Ok(AuditDecision::Allowed),
                "denied" => Ok(AuditDecision::Denied),
                "error" => Ok(AuditDecision::Error),
                _ => Err(QueryError::Decision),
            })
            .transpose()?;
        let needles = [params.principal, params.tool_id, params.event_type]
            .into_iter()
            .flatten()
            .filter_map(|value| serde_json::to_vec(value).ok())
            .map(|json| super::sanitize::escape_controls(&json).into_owned())
            .collect();
        Ok(Self {
            needles,
            limit,
            from,
            to: instant(params.to, "to")?,
            principal: params.principal.map(str::to_owned),
            tool_id: params.tool_id.map(str::to_owned),
            event_type: params.event_type.map(str::to_owned),
            decision,
            after: params.cursor.map(decode_cursor).transpose()?,
        })
    }

    /// Whether the caller paged with a cursor (the response is then a page object).
    pub fn is_paged(&self) -> bool {
        self.after.is_some()
    }

    /// Whether `event` passes every filter.
    pub fn keeps(&self, event: &AuditEvent) -> bool {
        if event.event_type == INTENT && self.event_type.as_deref() != Some(INTENT) {
            return false;
        }
        let differs =
            |want: &Option<String>, have: &str| want.as_deref().is_some_and(|w| w != have);
        if differs(&self.tool_id, &event.tool_id)
            || differs(&self.event_type, &event.event_type)
            || self.decision.is_some_and(|d| d != event.decision)
        {
            return false;
        }
        if let Some(principal) = &self.principal {
            if event.principal.as_deref() != Some(principal.as_str()) {
                return false;
            }
        }
        if self.from.is_some() || self.to.is_some() {
            let Ok(at) = OffsetDateTime::parse(&event.timestamp, &Rfc3339) else {
                return false;
            };
            if self.from.is_some_and(|from| at < from) || self.to.is_some_and(|to| at >= to) {
                return false;
            }
        }
        true
    }

    /// Keep the matching events, most recent `limit` of them, oldest first (no index).
    pub fn apply(&self, events: impl Iterator<Item = AuditEvent>) -> Vec<AuditEvent> {
        let mut kept: Vec<AuditEvent> = events.filter(|e| self.keeps(e)).collect();
        let limit = self.limit();
        if kept.len() > limit {
            kept.drain(..kept.len() - limit);
        }
        kept
    }

    fn limit(&self) -> usize {
        self.limit.unwrap_or(DEFAULT_LIMIT)
    }

    /// Read one page from `file` through `index`.
    pub fn page(&self, file: &File, index: &RwLock<Index>) -> std::io::Result<Page> {
        let (first, last) = {
            let index = index.read().unwrap_or_else(|p| p.into_inner());
            (index.first_seq(), index.last_seq())
        };
        let limit = self.limit();
        let block = (limit as u64).clamp(16, BLOCK);
        let mut events = Vec::new();
        let mut has_more = false;
        match self.after {
            Some(after) => {
                // Forward from the cursor.
                let mut next = after.saturating_add(1).max(first);
                let mut examined_to = after.max(first.saturating_sub(1));
                let scan_end = last.min(next.saturating_add(MAX_SCAN - 1));
                'blocks: while next <= scan_end {
                    let to = scan_end.min(next + block - 1);
                    for (seq, event) in self.read_block(file, index, next, to)? {
                        examined_to = seq;
                        let Some(event) = event.filter(|e| self.keeps(e)) else {
                            continue;
                        };
                        events.push(event);
                        if events.len() == limit {
                            break 'blocks;
                        }
                    }
                    next = to + 1;
                }
                has_more = examined_to < last;
                Ok(Page {
                    events,
                    next_cursor: encode_cursor(examined_to),
                    has_more,
                })
            }
            None => {
                // Backward from the newest record; the cursor resumes after the newest.
                let floor = first.max(last.saturating_sub(MAX_SCAN - 1));
                let mut upper = last;
                'back: while upper >= floor && upper >= first && last >= first {
                    let from = floor.max(upper.saturating_sub(block - 1));
                    let records = self.read_block(file, index, from, upper)?;
                    for (_, event) in records.into_iter().rev() {
                        if let Some(event) = event.filter(|e| self.keeps(e)) {
                            events.push(event);
                            if events.len() == limit {
                                has_more = true;
                                break 'back;
                            }
                        }
                    }
                    if from == floor {
                        has_more = floor > first;
                        break;
                    }
                    upper = from - 1;
                }
                events.reverse();
                Ok(Page {
                    events,
                    next_cursor: encode_cursor(last.max(first.saturating_sub(1))),
                    has_more,
                })
            }
        }
    }

    /// Records `from..=to` that can match: lines missing an exact-match filter's JSON text are
    /// not parsed, and lines that do not parse count as non-matching (`audit verify` reports
    /// them). Every examined seq is returned, so a cursor advances past skipped lines.
    fn read_block(
        &self,
        file: &File,
        index: &RwLock<Index>,
        from: u64,
        to: u64,
    ) -> std::io::Result<Vec<(u64, Option<AuditEvent>)>> {
        let span = index
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .span(from, to);
        let Some((start, end)) = span else {
            return Ok(Vec::new());
        };
        let mut bytes = vec![0u8; (end - start) as usize];
        read_exact_at(file, &mut bytes, start)?;
        let mut out = Vec::new();
        let lines = bytes.split(|&b| b == b'\n').filter(|line| !line.is_empty());
        for (seq, line) in (from..=to).zip(lines) {
            let candidate = self
                .needles
                .iter()
                .all(|needle| memchr::memmem::find(line, needle).is_some());
            let parsed = candidate
                .then(|| serde_json::from_slice::<AuditEvent>(line).ok())
                .flatten();
            out.push((seq, parsed));
        }
        Ok(out)
    }
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(not(unix))]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = file;
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(ts: &str, tool: &str, kind: &str) -> AuditEvent {
        let mut e = AuditEvent::new(kind, tool, AuditDecision::Allowed, "allowed");
        e.timestamp = ts.to_owned();
        e
    }

    fn params<'a>() -> QueryParams<'a> {
        QueryParams::default()
    }

    #[test]
    fn filters_combine_and_limit_keeps_the_most_recent() {
        let mut denied = event("2026-01-02T00:00:00Z", "a:x", "authz_denial");
        denied.decision = AuditDecision::Denied;
        denied.principal = Some("alice".into());
        let events = vec![
            event("2026-01-01T00:00:00Z", "a:x", "tool_execution"),
            denied,
            event("2026-01-03T00:00:00Z", "a:x", "tool_execution"),
            event("2026-01-04T00:00:00Z", "b:y", "tool_execution"),
        ];
        let q = AuditQuery::parse(QueryParams {
            limit: Some("1"),
            since: Some("2026-01-01T12:00:00Z"),
            tool_id: Some("a:x"),
            event_type: Some("tool_execution"),
            ..params()
        })
        .unwrap();
        let kept = q.apply(events.clone().into_iter());
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].timestamp, "2026-01-03T00:00:00Z");
        let q = AuditQuery::parse(QueryParams {
            decision: Some("denied"),
            principal: Some("alice"),
            ..params()
        })
        .unwrap();
        assert_eq!(q.apply(events.clone().into_iter()).len(), 1);
        let q = AuditQuery::parse(QueryParams {
            from: Some("2026-01-02T00:00:00Z"),
            to: Some("2026-01-04T00:00:00Z"),
            ..params()
        })
        .unwrap();
        let kept = q.apply(events.into_iter());
        assert_eq!(kept.len(), 2, "from is inclusive, to exclusive");
    }

    #[test]
    fn bad_parameters_are_rejected() {
        let parse = |p: QueryParams<'_>| AuditQuery::parse(p).unwrap_err();
        assert_eq!(
            parse(QueryParams {
                limit: Some("0"),
                ..params()
            }),
            QueryError::Limit
        );
        assert_eq!(
            parse(QueryParams {
                limit: Some("x"),
                ..params()
            }),
            QueryError::Limit
        );
        assert_eq!(
            parse(QueryParams {
                since: Some("yesterday"),
                ..params()
            }),
            QueryError::Time("since")
        );
        assert_eq!(
            parse(QueryParams {
                to: Some("soon"),
                ..params()
            }),
            QueryError::Time("to")
        );
        assert_eq!(
            parse(QueryParams {
                decision: Some("maybe"),
                ..params()
            }),
            QueryError::Decision
        );
        for bad in ["xyz", "c2VxOg", "c2VxOi0x", "!!"] {
            assert_eq!(
                parse(QueryParams {
                    cursor: Some(bad),
                    ..params()
                }),
                QueryError::Cursor,
                "{bad}"
            );
        }
    }

    #[test]
    fn cursors_round_trip() {
        for seq in [0, 1, 42, u64::MAX] {
            assert_eq!(decode_cursor(&encode_cursor(seq)), Ok(seq));
        }
        assert_eq!(decode_cursor(""), Ok(0));
    }
}
