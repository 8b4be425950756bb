//! `Mcp-Param-*` headers of a stateless (2026-07-28) `tools/call`, transport-free: a tool's input
//! schema may mark a property with `x-mcp-header: <token>`, and the client then repeats that
//! argument in `Mcp-Param-<token>` so an intermediary can route on it. What routes must be what
//! runs, so header and argument must agree.
//!
//! | rule | failure |
//! |---|---|
//! | only annotations reachable from the schema's root through `properties` alone, naming an RFC 9110 token, on a `string`, `integer` or `boolean` property, unique ignoring case, count; a schema with any other annotation validates nothing (conforming clients leave such a tool out) | - |
//! | the header appears at most once | [`HEADER_MISMATCH`] |
//! | an argument that is present (not `null`) and renders as a header value (string, number, boolean) has its header, and a header has its argument | [`HEADER_MISMATCH`] |
//! | the header (verbatim, or the payload of `=?base64?…?=`) equals the argument as rendered (`true`/`false`, the number's text, the string); an `integer` property compares numerically (`42` matches `42.0`) | [`HEADER_MISMATCH`] |
//!
//! The door answers a mismatch with HTTP 400 before the call runs.

use serde_json::{Map, Value};

use super::jsonrpc::{RpcError, HEADER_MISMATCH};
use super::revision::decode_header_value;

/// The annotation keyword.
const ANNOTATION: &str = "x-mcp-header";
/// The header prefix.
const PREFIX: &str = "Mcp-Param-";

/// One annotated property: its path of `properties` keys, its header token and its type.
struct Annotated<'s> {
    path: Vec<&'s str>,
    token: &'s str,
    kind: &'s str,
}

/// Check the `Mcp-Param-*` headers of a call of the tool with `schema`; `headers(name)` gives
/// every value of a header (lower-case name).
pub(crate) fn check(
    id: &Value,
    schema: &Value,
    arguments: &Map<String, Value>,
    headers: &dyn Fn(&str) -> Vec<String>,
) -> Result<(), RpcError> {
    let Some(annotated) = annotations(schema) else {
        return Ok(());
    };
    let mismatch = |message: String| RpcError::new(id.clone(), HEADER_MISMATCH, message);
    for property in annotated {
        let name = format!("{PREFIX}{}", property.token);
        let values = headers(&name.to_ascii_lowercase());
        if values.len() > 1 {
            return Err(mismatch(format!("{name} header appears more than once")));
        }
        let header = values.into_iter().next();
        let argument = property.path.join(".");
        let value = value_at(arguments, &property.path).filter(|v| !v.is_null());
        let rendered = value.and_then(render);
        match (rendered, header) {
            (None, None) => {}
            (None, Some(_)) => {
                return Err(mismatch(format!(
                "{name} header is present but the request body's {argument:?} argument is absent"
            )))
            }
            (Some(_), None) => {
                return Err(mismatch(format!(
                "{name} header is missing but the request body's {argument:?} argument is present"
            )))
            }
            (Some(rendered), Some(raw)) => {
                let Some(decoded) = decode_header_value(&raw) else {
                    return Err(mismatch(format!(
                        "{name} header carries a malformed base64 sentinel value"
                    )));
                };
                if !matches(property.kind, value, &rendered, &decoded) {
                    return Err(mismatch(format!(
                        "{name} header does not match the request body's {argument:?} argument"
                    )));
                }
            }
        }
    }
    Ok(())
}

/// The annotated properties of `schema`, or `None` when it has none or any invalid one.
fn annotations(schema: &Value) -> Option<Vec<Annotated<'_>>> {
    let mut found = Vec::new();
    if !collect(schema, &mut Vec::new(), &mut found) || found.is_empty() {
        return None;
    }
    let mut seen = std::collections::HashSet::new();
    let unique = found
        .iter()
        .all(|a| seen.insert(a.token.to_ascii_lowercase()));
    unique.then_some(found)
}

/// Walk `properties` chains; `false` when an annotation is invalid or off the chain.
fn collect<'s>(schema: &'s Value, path: &mut Vec<&'s str>, found: &mut Vec<Annotated<'s>>) -> bool {
    let Some(object) = schema.as_object() else {
        return true;
    };
    if let Some(token) = object.get(ANNOTATION) {
        let (Some(token), Some(kind)) =
            (token.as_str(), object.get("type").and_then(Value::as_str))
        else {
            return false;
        };
        let token_ok = !token.is_empty()
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if path.is_empty() || !token_ok || !matches!(kind, "string" | "integer" | "boolean") {
            return false;
        }
        found.push(Annotated {
            path: path.clone(),
            token,
            kind,
        });
    }
    for (keyword, value) in object {
        let ok = match (keyword.as_str(), value) {
            ("properties", Value::Object(properties)) => properties.iter().all(|(name, sub)| {
                path.push(name);
                let ok = collect(sub, path, found);
                path.pop();
                ok
            }),
            // Any other place an annotation could hide is off the chain: its presence there
            // makes the schema invalid for header mirroring.
            (ANNOTATION | "type" | "properties", _) => true,
            (_, other) => !mentions_annotation(other),
        };
        if !ok {
            return false;
        }
    }
    true
}

/// Whether an `x-mcp-header` key appears anywhere under `value`.
fn mentions_annotation(value: &Value) -> bool {
    match value {
        Value::Object(object) => object
            .iter()
            .any(|(k, v)| k == ANNOTATION || mentions_annotation(v)),
        Value::Array(items) => items.iter().any(mentions_annotation),
        _ => false,
    }
}

fn value_at<'a>(arguments: &'a Map<String, Value>, path: &[&str]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    rest.iter()
        .try_fold(arguments.get(*first)?, |node, key| node.get(*key))
}

/// The argument as a client mirrors it into a header.
fn render(value: &Value) -> Option<String> {
    match value {
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

fn matches(kind: &str, value: Option<&Value>, rendered: &str, decoded: &str) -> bool {
    let integral = value.and_then(Value::as_f64).filter(|f| f.fract() == 0.0);
    if kind == "integer" && integral.is_some() && !matches!(value, Some(Value::Bool(_))) {
        let (whole, fraction) = decoded.split_once('.').unwrap_or((decoded, ""));
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let whole_ok = digits(whole.strip_prefix('-').unwrap_or(whole));
        if whole_ok && (fraction.is_empty() || fraction.bytes().all(|b| b == b'0')) {
            return whole.parse::<i128>().ok()
                == value.and_then(|v| {
                    v.as_i64()
                        .map(i128::from)
                        .or_else(|| v.as_u64().map(i128::from))
                        .or_else(|| integral.map(|f| f as i128))
                });
        }
        return false;
    }
    decoded == rendered
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(schema: Value, arguments: Value, headers: &[(&str, &str)]) -> Result<(), i64> {
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), (*v).to_owned()))
            .collect();
        let lookup = |name: &str| {
            headers
                .iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .collect()
        };
        check(
            &Value::from(1),
            &schema,
            arguments.as_object().unwrap(),
            &lookup,
        )
        .map_err(|e| e.code)
    }

    fn schema() -> Value {
        json!({ "type": "object", "properties": {
            "region": { "type": "string", "x-mcp-header": "Region" },
            "count": { "type": "integer", "x-mcp-header": "Count" },
            "nested": { "type": "object", "properties": {
                "flag": { "type": "boolean", "x-mcp-header": "Flag" } } },
            "free": { "type": "string" }
        } })
    }

    #[test]
    fn headers_must_mirror_annotated_arguments() {
        let all = [
            ("Mcp-Param-Region", "eu-west"),
            ("Mcp-Param-Count", "42"),
            ("Mcp-Param-Flag", "true"),
        ];
        let args =
            json!({ "region": "eu-west", "count": 42, "nested": { "flag": true }, "free": "x" });
        assert_eq!(run(schema(), args.clone(), &all), Ok(()));
        // Numeric comparison for integers, base64 sentinel decoding.
        let spelled = [
            ("mcp-param-region", "=?base64?ZXUtd2VzdA==?="),
            ("Mcp-Param-Count", "42.0"),
            ("Mcp-Param-Flag", "true"),
        ];
        assert_eq!(run(schema(), args.clone(), &spelled), Ok(()));
        let cases: Vec<Vec<(&str, &str)>> = vec![
            vec![("Mcp-Param-Region", "us-east"), all[1], all[2]],
            vec![all[1], all[2]],
            vec![all[0], all[0], all[1], all[2]],
            vec![all[0], ("Mcp-Param-Count", "43"), all[2]],
            vec![all[0], all[1], ("Mcp-Param-Flag", "false")],
            vec![("Mcp-Param-Region", "=?base64?!!?="), all[1], all[2]],
        ];
        for headers in cases {
            assert_eq!(
                run(schema(), args.clone(), &headers),
                Err(HEADER_MISMATCH),
                "{headers:?}"
            );
        }
        // A header without its argument.
        let partial = json!({ "count": 42, "nested": { "flag": true } });
        assert_eq!(run(schema(), partial, &all), Err(HEADER_MISMATCH));
    }

    #[test]
    fn schemas_without_valid_annotations_validate_nothing() {
        let args = json!({ "region": "eu" });
        let header = [("Mcp-Param-Region", "other")];
        for schema in [
            json!({ "type": "object", "properties": { "region": { "type": "string" } } }),
            json!({ "type": "object", "properties": { "region": { "type": "number", "x-mcp-header": "Region" } } }),
            json!({ "type": "object", "properties": { "region": { "type": "string", "x-mcp-header": "Bad Token" } } }),
            json!({ "type": "object", "properties": {
                "region": { "type": "string", "x-mcp-header": "R" },
                "other": { "type": "string", "x-mcp-header": "r" } } }),
            json!({ "type": "object", "anyOf": [{ "properties": { "region": { "type": "string", "x-mcp-header": "Region" } } }] }),
        ] {
            assert_eq!(
                run(schema.clone(), args.clone(), &header),
                Ok(()),
                "{schema}"
            );
        }
    }
}
