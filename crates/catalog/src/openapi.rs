//! OpenAPI 3.0.x / 3.1.x reading: bytes in, a [`Document`] with local `$ref` resolution out.
//!
//! Why not the `openapiv3` crate: it models 3.0 only and types every schema strictly, so many
//! real 3.1 documents (and plenty of sloppy 3.0 ones) fail to deserialize over parts the catalog
//! never looks at. Instead:
//!
//! 1. the document is parsed once into a `serde_json::Value` (`str::parse`, which runs the
//!    optimized parser inside `serde_json` even in dev builds). JSON is detected by content (the
//!    first non-space byte is `{`), anything else is read as YAML;
//! 2. the structural subset 3.0 and 3.1 share (path items, operations, parameters, request
//!    bodies, servers, security, `x-cli-*` extensions) is read from borrowed parts of that tree
//!    into the small serde structs below. Responses and component schemas are never visited;
//!    request-body schemas are kept as written, `$ref`s inside them included;
//! 3. a `$ref` on a parameter, request body, path item or security scheme is resolved as a local
//!    JSON pointer (`#/components/...`, `~0`/`~1` escapes, percent-encoding) against the same
//!    tree, following chains up to [`MAX_REF_HOPS`]; a cycle or a longer chain is an error.
//!    External references (another file or URL) are an error naming the reference.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use super::model::Safety;

/// Longest `$ref` chain followed before the reference is reported as a cycle.
pub const MAX_REF_HOPS: usize = 32;

/// Why a document could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// Not JSON or YAML.
    #[error("document is not valid {format}: {message}")]
    Syntax {
        /// `JSON` or `YAML`.
        format: &'static str,
        /// Parser message.
        message: String,
    },
    /// Not an OpenAPI 3.x document.
    #[error("not an OpenAPI 3.x document ({0})")]
    Version(String),
    /// A `$ref` that cannot be followed.
    #[error("cannot resolve $ref {reference:?}: {reason}")]
    Ref {
        /// The reference as written.
        reference: String,
        /// What went wrong.
        reason: &'static str,
    },
    /// A part of the document with the wrong shape.
    #[error("{at}: {message}")]
    Shape {
        /// Where (e.g. `paths./pets.get`).
        at: String,
        /// Deserializer message.
        message: String,
    },
}

/// A parsed document.
pub struct Document {
    /// The whole tree, used for `$ref` resolution.
    pub root: Value,
}

/// `servers[]` entry.
#[derive(Debug, Clone, Deserialize)]
pub struct Server {
    /// URL template.
    pub url: String,
    /// Template variables.
    #[serde(default)]
    pub variables: BTreeMap<String, ServerVariable>,
}

/// `servers[].variables.<name>`.
#[derive(Debug, Clone, Deserialize)]
pub struct ServerVariable {
    /// Default value (a string per the spec; numbers are accepted and printed).
    #[serde(default)]
    pub default: Option<Value>,
    /// Allowed values; each must be as safe as a default would have to be.
    #[serde(default, rename = "enum")]
    pub values: Option<Vec<Value>>,
}

/// One security requirement object: scheme name -> scopes, sorted by name.
pub type SecurityRequirement = BTreeMap<String, Vec<String>>;

/// A path item (after `$ref` resolution).
#[derive(Debug, Default, Deserialize)]
pub struct PathItem {
    /// Path-item servers.
    #[serde(default)]
    pub servers: Option<Vec<Server>>,
    /// Parameters shared by every operation.
    #[serde(default)]
    pub parameters: Vec<Value>,
}

/// An operation, reading only what the catalog uses.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    /// `operationId`.
    pub operation_id: Option<String>,
    /// Summary.
    pub summary: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Tags (the first one names the CLI group).
    #[serde(default)]
    pub tags: Vec<Value>,
    /// Parameters (possibly `$ref`s).
    #[serde(default)]
    pub parameters: Vec<Value>,
    /// Request body (possibly a `$ref`).
    pub request_body: Option<Value>,
    /// Operation servers.
    pub servers: Option<Vec<Server>>,
    /// Operation security (`Some(vec![])` means no auth).
    pub security: Option<Vec<SecurityRequirement>>,
    /// `x-cli-ignore`.
    #[serde(rename = "x-cli-ignore", default)]
    pub cli_ignore: bool,
    /// `x-cli-group`.
    #[serde(rename = "x-cli-group")]
    pub cli_group: Option<String>,
    /// `x-cli-name`.
    #[serde(rename = "x-cli-name")]
    pub cli_name: Option<String>,
    /// `x-cli-description`.
    #[serde(rename = "x-cli-description")]
    pub cli_description: Option<String>,
    /// `x-cli-aliases`.
    #[serde(rename = "x-cli-aliases", default)]
    pub cli_aliases: Vec<String>,
    /// `x-cli-hidden`.
    #[serde(rename = "x-cli-hidden", default)]
    pub cli_hidden: bool,
    /// `x-cli-safety` (partial overlay).
    #[serde(rename = "x-cli-safety")]
    pub cli_safety: Option<SafetyOverlay>,
    /// `x-cli-output`.
    #[serde(rename = "x-cli-output")]
    pub cli_output: Option<Value>,
    /// `x-cli-pagination`.
    #[serde(rename = "x-cli-pagination")]
    pub cli_pagination: Option<Value>,
    /// `x-cli-retry`.
    #[serde(rename = "x-cli-retry")]
    pub cli_retry: Option<Value>,
}

/// `x-cli-safety`: each present field replaces the method default.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SafetyOverlay {
    /// Destructive.
    pub destructive: Option<bool>,
    /// Read-only.
    pub read_only: Option<bool>,
    /// Requires approval.
    pub requires_approval: Option<bool>,
    /// Idempotent.
    pub idempotent: Option<bool>,
}

impl SafetyOverlay {
    /// `base` with each field this overlay sets replaced.
    pub fn apply(self, base: Safety) -> Safety {
        Safety {
            destructive: self.destructive.unwrap_or(base.destructive),
            read_only: self.read_only.unwrap_or(base.read_only),
            requires_approval: self.requires_approval.unwrap_or(base.requires_approval),
            idempotent: self.idempotent.unwrap_or(base.idempotent),
        }
    }
}

/// A parameter object (after `$ref` resolution).
#[derive(Debug, Deserialize)]
pub struct ParameterObject {
    /// Wire name.
    pub name: String,
    /// `path`, `query`, `header` or `cookie`.
    #[serde(rename = "in")]
    pub location: String,
    /// Required (always true for path parameters).
    #[serde(default)]
    pub required: bool,
    /// `x-cli-name`.
    #[serde(rename = "x-cli-name")]
    pub cli_name: Option<String>,
}

/// A request body (after `$ref` resolution).
#[derive(Debug, Deserialize)]
pub struct RequestBodyObject {
    /// Required.
    #[serde(default)]
    pub required: bool,
    /// Media type -> media type object, sorted by media type.
    #[serde(default)]
    pub content: BTreeMap<String, MediaTypeObject>,
}

/// A media type object.
#[derive(Debug, Deserialize)]
pub struct MediaTypeObject {
    /// The schema as written.
    pub schema: Option<Value>,
}

/// A security scheme (after `$ref` resolution).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecuritySchemeObject {
    /// `apiKey`, `http`, `oauth2`, `openIdConnect`, `mutualTLS`.
    #[serde(rename = "type")]
    pub kind: String,
    /// apiKey: parameter name.
    pub name: Option<String>,
    /// apiKey: location.
    #[serde(rename = "in")]
    pub location: Option<String>,
    /// http: scheme.
    pub scheme: Option<String>,
    /// oauth2: flows.
    #[serde(default)]
    pub flows: BTreeMap<String, OAuthFlowObject>,
    /// openIdConnect: discovery URL.
    pub open_id_connect_url: Option<String>,
}

/// An OAuth flow object.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OAuthFlowObject {
    /// Authorization endpoint.
    pub authorization_url: Option<String>,
    /// Token endpoint.
    pub token_url: Option<String>,
    /// Refresh endpoint.
    pub refresh_url: Option<String>,
}

/// The eight OpenAPI methods, in the order their tools are read.
pub const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

/// Parse bytes into a document (JSON or YAML by content) and check the version; the catalog
/// build uses [`parse_tree`] and [`Document::new`] with overlays applied in between (tests and
/// the fuzz targets call this).
pub fn parse(bytes: &[u8]) -> Result<Document, DocumentError> {
    Document::new(parse_tree(bytes)?)
}

/// Parse bytes into a JSON tree (JSON or YAML by content), before any overlay is applied.
pub fn parse_tree(bytes: &[u8]) -> Result<Value, DocumentError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
    let root: Value = if first == Some(b'{') {
        let text = std::str::from_utf8(bytes).map_err(|e| DocumentError::Syntax {
            format: "JSON",
            message: e.to_string(),
        })?;
        text.parse()
            .map_err(|e: serde_json::Error| DocumentError::Syntax {
                format: "JSON",
                message: e.to_string(),
            })?
    } else {
        serde_yaml_ng::from_slice(bytes).map_err(|e| DocumentError::Syntax {
            format: "YAML",
            message: e.to_string(),
        })?
    };
    Ok(root)
}

impl Document {
    /// Check the version of a parsed tree (overlays already applied).
    pub fn new(root: Value) -> Result<Self, DocumentError> {
        let version = root
            .get("openapi")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !(version.starts_with("3.0") || version.starts_with("3.1")) {
            let found = match root.get("swagger").and_then(Value::as_str) {
                Some(v) => format!("found swagger {v}"),
                None if version.is_empty() => "no `openapi` field".to_owned(),
                None => format!("found openapi {version}"),
            };
            return Err(DocumentError::Version(found));
        }
        Ok(Document { root })
    }
    /// `info.title`, or empty.
    pub fn title(&self) -> &str {
        self.root
            .pointer("/info/title")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// `paths` in document order, without `x-` extension keys (allowed in the Paths Object).
    pub fn paths(&self) -> impl Iterator<Item = (&String, &Value)> {
        let paths = self
            .root
            .get("paths")
            .and_then(Value::as_object)
            .into_iter()
            .flatten();
        paths.filter(|(key, _)| !key.starts_with("x-"))
    }

    /// Follow `$ref`s from `value` until a non-reference object is reached.
    pub fn resolve<'a>(&'a self, mut value: &'a Value) -> Result<&'a Value, DocumentError> {
        for _ in 0..MAX_REF_HOPS {
            let Some(reference) = value.get("$ref").and_then(Value::as_str) else {
                return Ok(value);
            };
            value = self.pointer(reference)?;
        }
        let reference = value
            .get("$ref")
            .and_then(Value::as_str)
            .unwrap_or_default();
        Err(DocumentError::Ref {
            reference: reference.to_owned(),
            reason: "reference cycle or chain longer than 32 hops",
        })
    }

    /// Resolve `value` and deserialize it as `T`, naming `at` on failure.
    pub fn read<T: DeserializeOwned>(
        &self,
        value: &Value,
        at: &dyn Fn() -> String,
    ) -> Result<T, DocumentError> {
        let target = self.resolve(value)?;
        T::deserialize(target).map_err(|e| DocumentError::Shape {
            at: at(),
            message: e.to_string(),
        })
    }

    /// Look up a local reference `#/a/b~1c`.
    fn pointer(&self, reference: &str) -> Result<&Value, DocumentError> {
        let fail = |reason| DocumentError::Ref {
            reference: reference.to_owned(),
            reason,
        };
        let Some(fragment) = reference.strip_prefix('#') else {
            return Err(fail("only local references (#/...) are supported"));
        };
        let decoded = percent_encoding::percent_decode_str(fragment)
            .decode_utf8()
            .map_err(|_| fail("reference is not valid UTF-8 after percent-decoding"))?;
        self.root
            .pointer(&decoded)
            .ok_or_else(|| fail("no such location in the document"))
    }

    /// A security scheme by name, `None` when the document does not declare it.
    pub fn security_scheme(
        &self,
        name: &str,
    ) -> Result<Option<SecuritySchemeObject>, DocumentError> {
        let Some(raw) = self
            .root
            .get("components")
            .and_then(|c| c.get("securitySchemes"))
            .and_then(|s| s.get(name))
        else {
            return Ok(None);
        };
        self.read(raw, &|| format!("components.securitySchemes.{name}"))
            .map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_documents_are_detected_by_content() {
        let doc = parse(b"openapi: 3.1.0\ninfo: {title: Pets}\npaths: {}\n").unwrap();
        assert_eq!(doc.title(), "Pets");
        let doc = parse(b"  {\"openapi\":\"3.0.3\",\"info\":{\"title\":\"J\"}}").unwrap();
        assert_eq!(doc.title(), "J");
    }

    #[test]
    fn swagger_2_is_refused_with_its_version() {
        let err = parse(br#"{"swagger":"2.0"}"#).err().unwrap().to_string();
        assert!(err.contains("swagger 2.0"), "{err}");
    }

    #[test]
    fn refs_resolve_with_pointer_escapes_and_chains() {
        let doc = parse(
            br##"{"openapi":"3.0.0","components":{"parameters":{
                "a/b":{"$ref":"#/components/parameters/c~0d"},
                "c~d":{"name":"x","in":"query"}}},
              "x":{"$ref":"#/components/parameters/a~1b"}}"##,
        )
        .unwrap();
        let p: ParameterObject = doc.read(&doc.root["x"], &|| "x".into()).unwrap();
        assert_eq!(p.name, "x");
    }

    #[test]
    fn ref_cycles_and_external_refs_are_errors() {
        let doc = parse(
            br##"{"openapi":"3.1.0","components":{"parameters":{
                "a":{"$ref":"#/components/parameters/b"},"b":{"$ref":"#/components/parameters/a"}}},
              "x":{"$ref":"#/components/parameters/a"},"y":{"$ref":"other.yaml#/p"}}"##,
        )
        .unwrap();
        let err = doc.resolve(&doc.root["x"]).err().unwrap().to_string();
        assert!(err.contains("cycle"), "{err}");
        let err = doc.resolve(&doc.root["y"]).err().unwrap().to_string();
        assert!(err.contains("local"), "{err}");
    }
}
