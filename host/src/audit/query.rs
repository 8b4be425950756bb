//! Filters for `GET /v1/audit/events`.
//!
//! `since` keeps records at or after an RFC 3339 instant, `toolId` and `eventType` match
//! exactly, and `limit` (default 1000, at most 10000) keeps the most recent matching records,
//! returned oldest first. Write-ahead `tool_execution_intent` records are left out unless
//! `eventType=tool_execution_intent` asks for them, so the default view has one record per
//! decision.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::AuditEvent;

const DEFAULT_LIMIT: usize = 1000;
const MAX_LIMIT: usize = 10_000;
const INTENT: &str = "tool_execution_intent";

/// A validated audit query.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    limit: Option<usize>,
    since: Option<OffsetDateTime>,
    tool_id: Option<String>,
    event_type: Option<String>,
}

/// A query parameter that could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QueryError {
    /// `limit` is not a positive integer.
    #[error("limit must be an integer between 1 and {MAX_LIMIT}")]
    Limit,
    /// `since` is not RFC 3339.
    #[error("since must be an RFC 3339 timestamp, e.g. 2026-01-02T03:04:05Z")]
    Since,
}

impl AuditQuery {
    /// Validate raw query parameters.
    pub fn parse(
        limit: Option<&str>,
        since: Option<&str>,
        tool_id: Option<&str>,
        event_type: Option<&str>,
    ) -> Result<Self, QueryError> {
        let limit = limit
            .map(|l| {
                l.parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or(QueryError::Limit)
            })
            .transpose()?;
        let since = since
            .map(|s| OffsetDateTime::parse(s, &Rfc3339).map_err(|_| QueryError::Since))
            .transpose()?;
        Ok(Self {
            limit,
            since,
            tool_id: tool_id.map(str::to_owned),
            event_type: event_type.map(str::to_owned),
        })
    }

    fn keeps(&self, event: &AuditEvent) -> bool {
        if event.event_type == INTENT && self.event_type.as_deref() != Some(INTENT) {
            return false;
        }
        if self.tool_id.as_deref().is_some_and(|t| t != event.tool_id) {
            return false;
        }
        if self
            .event_type
            .as_deref()
            .is_some_and(|t| t != event.event_type)
        {
            return false;
        }
        if let Some(since) = self.since {
            match OffsetDateTime::parse(&event.timestamp, &Rfc3339) {
                Ok(at) if at >= since => {}
                _ => return false,
            }
        }
        true
    }

    /// Keep the matching events, most recent `limit` of them, oldest first.
    pub fn apply(&self, events: impl Iterator<Item = AuditEvent>) -> Vec<AuditEvent> {
        let mut kept: Vec<AuditEvent> = events.filter(|e| self.keeps(e)).collect();
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if kept.len() > limit {
            kept.drain(..kept.len() - limit);
        }
        kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditDecision;

    fn event(ts: &str, tool: &str, kind: &str) -> AuditEvent {
        let mut e = AuditEvent::new(kind, tool, AuditDecision::Allowed, "allowed");
        e.timestamp = ts.to_owned();
        e
    }

    #[test]
    fn filters_combine_and_limit_keeps_the_most_recent() {
        let events = vec![
            event("2026-01-01T00:00:00Z", "a:x", "tool_execution"),
            event("2026-01-02T00:00:00Z", "a:x", "authz_denial"),
            event("2026-01-03T00:00:00Z", "a:x", "tool_execution"),
            event("2026-01-04T00:00:00Z", "b:y", "tool_execution"),
        ];
        let q = AuditQuery::parse(
            Some("1"),
            Some("2026-01-01T12:00:00Z"),
            Some("a:x"),
            Some("tool_execution"),
        )
        .unwrap();
        let kept = q.apply(events.into_iter());
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].timestamp, "2026-01-03T00:00:00Z");
    }

    #[test]
    fn bad_parameters_are_rejected() {
        assert_eq!(
            AuditQuery::parse(Some("0"), None, None, None).unwrap_err(),
            QueryError::Limit
        );
        assert_eq!(
            AuditQuery::parse(Some("x"), None, None, None).unwrap_err(),
            QueryError::Limit
        );
        assert_eq!(
            AuditQuery::parse(None, Some("yesterday"), None, None).unwrap_err(),
            QueryError::Since
        );
    }
}
