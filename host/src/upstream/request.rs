//! Building one upstream request from a tool and the caller's arguments.
//!
//! | input | rule | failure |
//! |---|---|---|
//! | base URL | `servers[0]`, trailing `/` trimmed; must be absolute `http(s)` | `missing_base_url` / `invalid_upstream_url` (deferred to `send`, so they map to 502) |
//! | path args | bound by position to the tool's `pathParams` (declaration order, as the reference runtime does; see [`path_arg_names`]), each replacing its `{placeholder}`; a count other than the number of names is refused, naming them (the reference ignores extra arguments); every byte outside RFC 3986 unreserved is percent-encoded, so `/ ? # %` cannot change the path; empty args and `.`/`..` segments are refused | [`RequestError`] |
//! | flags | key = param `name` or `originalName`; query → `originalName=value`, header → set, cookie → one `Cookie` header; unknown keys and missing required flags are refused | [`RequestError`] |
//! | body | sent as-is; `Content-Type` = the single declared media type, else `application/json` if declared or none declared, else the first declared | missing required body → [`RequestError`] |
//! | credentials | applied last: they replace same-named caller headers, query params and cookies | — |
//!
//! The URL is built in one `String` and parsed once.

use bytes::Bytes;
use percent_encoding::utf8_percent_encode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, COOKIE};
use reqwest::Method;
use url::Url;

use super::error::{RequestError, UpstreamError};
use super::ExecuteArgs;
use crate::catalog::{ParamLocation, Tool};
use crate::redact::redact_url;
use crate::secrets::{AppliedCredentials, COMPONENT, COOKIE_VALUE};

/// A request ready to send. Fields are read-only so a built request cannot drift from the
/// rules above; its `Debug` shows header names only and the URL without its query.
pub struct UpstreamRequest {
    pub(crate) method: Method,
    pub(crate) target: Result<Url, UpstreamError>,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Option<Bytes>,
    pub(crate) idempotent: bool,
    pub(crate) credentialed: bool,
}

impl UpstreamRequest {
    /// HTTP method.
    pub fn method(&self) -> &Method {
        &self.method
    }
    /// The target URL, or `None` when the base URL is missing or invalid (`send` reports why).
    pub fn url(&self) -> Option<&Url> {
        self.target.as_ref().ok()
    }
    /// Request headers (caller flags, then credentials).
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }
    /// Request body.
    pub fn body(&self) -> Option<&Bytes> {
        self.body.as_ref()
    }
    /// Whether the tool is safe to retry.
    pub fn idempotent(&self) -> bool {
        self.idempotent
    }
    /// Whether credentials were applied (selects the client that never follows redirects).
    pub fn credentialed(&self) -> bool {
        self.credentialed
    }
}

impl std::fmt::Debug for UpstreamRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamRequest")
            .field("method", &self.method)
            .field("url", &self.target.as_ref().map(redact_url).ok())
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("body_len", &self.body.as_ref().map(Bytes::len))
            .field("idempotent", &self.idempotent)
            .field("credentialed", &self.credentialed)
            .finish()
    }
}

/// Build the request for `tool` with the caller's `args` and the applied `creds`.
pub fn build_request(
    tool: &Tool,
    args: &ExecuteArgs,
    creds: &AppliedCredentials,
) -> Result<UpstreamRequest, RequestError> {
    let tool_id = || tool.id.clone();
    let method = Method::from_bytes(tool.method.as_bytes())
        .map_err(|_| RequestError::InvalidMethod { tool: tool_id() })?;

    let base = tool.servers.first().map(|s| s.trim_end_matches('/'));
    let base_str = base.unwrap_or("");
    let mut url = String::with_capacity(base_str.len() + tool.path.len() + 64);
    url.push_str(base_str);
    push_path(&mut url, tool, &args.path_args)?;
    let mut has_query = url[base_str.len()..].contains('?');

    let mut headers = HeaderMap::new();
    let mut cookie = String::new();
    let mut used = vec![false; tool.flags.len()];
    let mut unknown: Vec<&str> = Vec::new();
    for (key, value) in &args.flags {
        let Some(i) = tool
            .flags
            .iter()
            .position(|p| p.name == *key || p.original_name == *key)
        else {
            unknown.push(key);
            continue;
        };
        let param = &tool.flags[i];
        if used[i] {
            return Err(RequestError::DuplicateFlag {
                tool: tool_id(),
                flag: param.name.clone(),
            });
        }
        used[i] = true;
        let wire = param.original_name.as_str();
        match param.location {
            ParamLocation::Query => {
                if !creds.query.iter().any(|(k, _)| k == wire) {
                    push_query(&mut url, &mut has_query, wire, value);
                }
            }
            ParamLocation::Header => {
                let name = HeaderName::from_bytes(wire.as_bytes()).map_err(|_| {
                    RequestError::InvalidHeaderName {
                        tool: tool_id(),
                        flag: param.name.clone(),
                    }
                })?;
                let value =
                    HeaderValue::from_str(value).map_err(|_| RequestError::InvalidHeaderValue {
                        tool: tool_id(),
                        flag: param.name.clone(),
                    })?;
                headers.insert(name, value);
            }
            ParamLocation::Cookie => {
                if !creds.cookies.iter().any(|(k, _)| k == wire) {
                    push_cookie(&mut cookie, wire, value);
                }
            }
            ParamLocation::Path => {
                return Err(RequestError::PathParamAsFlag {
                    tool: tool_id(),
                    flag: param.name.clone(),
                });
            }
        }
    }
    if !unknown.is_empty() {
        let unknown = unknown
            .iter()
            .map(|k| format!("{k:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(RequestError::UnknownFlags {
            tool: tool_id(),
            unknown,
        });
    }
    if let Some(p) = tool
        .flags
        .iter()
        .zip(&used)
        .find_map(|(p, u)| (p.required && !u).then_some(p))
    {
        return Err(RequestError::MissingFlag {
            tool: tool_id(),
            flag: p.name.clone(),
        });
    }

    let body = args.body.clone();
    if let Some(rb) = &tool.request_body {
        if rb.required && body.is_none() {
            return Err(RequestError::MissingBody { tool: tool_id() });
        }
    }
    if body.is_some() {
        headers.insert(CONTENT_TYPE, content_type(tool));
    }

    // Credentials last: they replace anything of the same name the caller supplied.
    for (k, v) in &creds.query {
        push_query(&mut url, &mut has_query, k, v);
    }
    for (k, v) in &creds.cookies {
        push_cookie(&mut cookie, k, v);
    }
    if !cookie.is_empty() {
        // Every control byte was percent-encoded, so this cannot fail; skip rather than panic.
        if let Ok(v) = HeaderValue::try_from(cookie) {
            headers.insert(COOKIE, v);
        }
    }
    for (name, _) in &creds.headers {
        headers.remove(name);
    }
    for (name, value) in &creds.headers {
        headers.append(name.clone(), value.clone());
    }

    let target = match base {
        None => Err(UpstreamError::MissingBaseUrl { tool: tool_id() }),
        Some(_) => parse_target(&url, &tool.id),
    };
    Ok(UpstreamRequest {
        method,
        target,
        headers,
        body,
        idempotent: tool.safety.idempotent,
        credentialed: !creds.is_empty(),
    })
}

/// Append the template with each placeholder replaced by the encoded arg bound to its name
/// ([`path_arg_names`]).
fn push_path(url: &mut String, tool: &Tool, args: &[String]) -> Result<(), RequestError> {
    let template = tool.path.as_str();
    let names = path_arg_names(tool);
    if names.len() != args.len() {
        return Err(RequestError::PathArgCount {
            tool: tool.id.clone(),
            expected: names.len(),
            got: args.len(),
            params: names.join(", "),
        });
    }
    let start = url.len();
    if !template.starts_with('/') {
        url.push('/');
    }
    let mut rest = 0;
    for (open, name, close) in placeholders(template) {
        // Every placeholder is in `names` by construction.
        let Some(arg) = names.iter().position(|n| *n == name).map(|i| &args[i]) else {
            continue;
        };
        if arg.is_empty() {
            return Err(RequestError::EmptyPathArg {
                tool: tool.id.clone(),
                param: name.to_owned(),
            });
        }
        url.push_str(&template[rest..open]);
        url.extend(utf8_percent_encode(arg, COMPONENT));
        rest = close + 1;
    }
    url.push_str(&template[rest..]);
    let path = url[start..].split(['?', '#']).next().unwrap_or("");
    if path.split('/').any(|s| s == "." || s == "..") {
        return Err(RequestError::DotSegment {
            tool: tool.id.clone(),
        });
    }
    Ok(())
}

/// The names positional `pathArgs` bind to, in order: the tool's `pathParams` (the catalog's
/// order, which is the document's declaration order, as in the reference runtime), then any
/// template placeholder they do not name. A name repeated in the template takes one argument.
pub fn path_arg_names(tool: &Tool) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::with_capacity(tool.path_params.len());
    let declared = tool.path_params.iter().map(|p| p.original_name.as_str());
    let template = placeholders(&tool.path).map(|(_, name, _)| name);
    for name in declared.chain(template) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// `(index of '{', name, index of '}')` for each `{name}` in the template.
fn placeholders(template: &str) -> impl Iterator<Item = (usize, &str, usize)> {
    let mut from = 0;
    std::iter::from_fn(move || {
        let open = from + template.get(from..)?.find('{')?;
        let close = open + template[open..].find('}')?;
        from = close + 1;
        Some((open, &template[open + 1..close], close))
    })
}

fn push_query(url: &mut String, has_query: &mut bool, name: &str, value: &str) {
    url.push(if *has_query { '&' } else { '?' });
    *has_query = true;
    url.extend(utf8_percent_encode(name, COMPONENT));
    url.push('=');
    url.extend(utf8_percent_encode(value, COMPONENT));
}

fn push_cookie(cookie: &mut String, name: &str, value: &str) {
    if !cookie.is_empty() {
        cookie.push_str("; ");
    }
    cookie.extend(utf8_percent_encode(name, COMPONENT));
    cookie.push('=');
    cookie.extend(utf8_percent_encode(value, COOKIE_VALUE));
}

fn content_type(tool: &Tool) -> HeaderValue {
    let json = || HeaderValue::from_static("application/json");
    let declared = tool
        .request_body
        .as_ref()
        .map(|rb| rb.content_types.as_slice())
        .unwrap_or_default();
    let chosen = match declared {
        [] => return json(),
        [one] => one.media_type.as_str(),
        many if many.iter().any(|c| c.media_type == "application/json") => return json(),
        [first, ..] => first.media_type.as_str(),
    };
    if chosen.contains('*') {
        return HeaderValue::from_static("application/octet-stream");
    }
    HeaderValue::from_str(chosen).unwrap_or_else(|_| json())
}

fn parse_target(url: &str, tool: &str) -> Result<Url, UpstreamError> {
    let invalid = |detail: String| UpstreamError::InvalidUrl {
        tool: tool.to_owned(),
        detail,
    };
    let parsed = Url::parse(url).map_err(|e| invalid(e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid(format!(
            "scheme `{}` is not http or https",
            parsed.scheme()
        )));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid("no host".to_owned()));
    }
    Ok(parsed)
}
