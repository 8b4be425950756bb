//! Security requirements: OpenAPI `security` -> ordered OR-alternatives of AND-requirements.
//!
//! | rule | behaviour |
//! |---|---|
//! | which list | operation `security` when present (`[]` = no auth), else the document's |
//! | alternatives | one per entry, in document order (OR) |
//! | requirements | one per scheme in an entry (AND), sorted by scheme name so application order is deterministic |
//! | `{}` entry | kept as an alternative with zero requirements: "no credentials needed" (optional auth) |
//! | unknown scheme | the whole alternative is dropped: it can never be satisfied |
//! | nothing left | when security was required but every alternative named an unknown scheme, `auth_alternatives` is empty and `auth` holds one requirement of type `unknown` naming the schemes, so execution fails closed instead of calling without credentials |
//!
//! `auth` (legacy) is the flattened list of every requirement, deduplicated by
//! `type|name|in|paramName|scheme`, in first-seen order.

use std::collections::HashMap;

use super::model::{AuthAlternative, AuthRequirement, OAuthFlow};
use super::openapi::{Document, DocumentError, SecurityRequirement, SecuritySchemeObject};

/// Type recorded for the fail-closed marker.
pub const UNKNOWN_SCHEME_TYPE: &str = "unknown";

/// Per-document cache of resolved schemes (`None` = not declared).
#[derive(Default)]
pub struct SchemeCache(HashMap<String, Option<SecuritySchemeObject>>);

/// Alternatives plus the legacy flat list for one operation.
pub fn extract(
    doc: &Document,
    cache: &mut SchemeCache,
    security: &[SecurityRequirement],
) -> Result<(Vec<AuthAlternative>, Vec<AuthRequirement>), DocumentError> {
    let mut alternatives = Vec::with_capacity(security.len());
    let mut unknown: Vec<&str> = Vec::new();
    'entries: for entry in security {
        let mut requirements = Vec::with_capacity(entry.len());
        // BTreeMap iteration is already sorted by scheme name.
        for (name, scopes) in entry {
            if !cache.0.contains_key(name) {
                let scheme = doc.security_scheme(name)?;
                cache.0.insert(name.clone(), scheme);
            }
            match cache.0.get(name).and_then(Option::as_ref) {
                Some(scheme) => requirements.push(requirement(name, scheme, scopes)),
                None => {
                    unknown.push(name);
                    continue 'entries;
                }
            }
        }
        alternatives.push(AuthAlternative { requirements });
    }
    let mut flat: Vec<AuthRequirement> = Vec::new();
    for req in alternatives.iter().flat_map(|a| &a.requirements) {
        if !flat.iter().any(|f| same_legacy_key(f, req)) {
            flat.push(req.clone());
        }
    }
    if alternatives.is_empty() && !security.is_empty() {
        unknown.sort_unstable();
        unknown.dedup();
        flat.push(AuthRequirement {
            name: unknown.join(","),
            kind: UNKNOWN_SCHEME_TYPE.to_owned(),
            ..AuthRequirement::default()
        });
    }
    Ok((alternatives, flat))
}

fn same_legacy_key(a: &AuthRequirement, b: &AuthRequirement) -> bool {
    a.kind == b.kind
        && a.name == b.name
        && a.location == b.location
        && a.param_name == b.param_name
        && a.scheme == b.scheme
}

fn requirement(name: &str, scheme: &SecuritySchemeObject, scopes: &[String]) -> AuthRequirement {
    let is_api_key = scheme.kind == "apiKey";
    AuthRequirement {
        name: name.to_owned(),
        kind: scheme.kind.clone(),
        // HTTP auth scheme names are case-insensitive (RFC 9110); `Bearer` and `bearer` are one.
        scheme: scheme
            .scheme
            .as_deref()
            .unwrap_or_default()
            .to_ascii_lowercase(),
        location: if is_api_key {
            scheme.location.clone().unwrap_or_default()
        } else {
            String::new()
        },
        param_name: if is_api_key {
            scheme.name.clone().unwrap_or_default()
        } else {
            String::new()
        },
        scopes: scopes.to_vec(),
        oauth_flows: scheme
            .flows
            .iter()
            .map(|(mode, flow)| OAuthFlow {
                mode: mode.clone(),
                authorization_url: flow.authorization_url.clone().unwrap_or_default(),
                token_url: flow.token_url.clone().unwrap_or_default(),
                refresh_url: flow.refresh_url.clone().unwrap_or_default(),
            })
            .collect(),
        open_id_connect_url: scheme.open_id_connect_url.clone().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openapi::parse;

    const DOC: &str = r#"{"openapi":"3.1.0","components":{"securitySchemes":{
        "zKey":{"type":"apiKey","in":"header","name":"X-Key"},
        "aBearer":{"type":"http","scheme":"Bearer"},
        "oauth":{"type":"oauth2","flows":{"clientCredentials":{"tokenUrl":"https://t"}}}}}}"#;

    fn run(security: &str) -> (Vec<AuthAlternative>, Vec<AuthRequirement>) {
        let doc = parse(DOC.as_bytes()).unwrap();
        let security: Vec<SecurityRequirement> = serde_json::from_str(security).unwrap();
        extract(&doc, &mut SchemeCache::default(), &security).unwrap()
    }

    fn names(alts: &[AuthAlternative]) -> Vec<Vec<&str>> {
        alts.iter()
            .map(|a| a.requirements.iter().map(|r| r.name.as_str()).collect())
            .collect()
    }

    #[test]
    fn the_optional_empty_alternative_is_kept() {
        let (alts, auth) = run(r#"[{}, {"zKey": []}]"#);
        assert_eq!(names(&alts), [vec![], vec!["zKey"]]);
        assert_eq!(auth.len(), 1);
    }

    #[test]
    fn and_requirements_are_sorted_by_scheme_name_and_alternatives_keep_order() {
        let (alts, auth) = run(r#"[{"zKey": [], "aBearer": []}, {"oauth": ["read"]}]"#);
        assert_eq!(names(&alts), [vec!["aBearer", "zKey"], vec!["oauth"]]);
        assert_eq!(alts[0].requirements[0].scheme, "bearer");
        assert_eq!(alts[0].requirements[1].param_name, "X-Key");
        assert_eq!(alts[1].requirements[0].scopes, ["read"]);
        assert_eq!(
            alts[1].requirements[0].oauth_flows[0].token_url,
            "https://t"
        );
        assert_eq!(auth.len(), 3);
    }

    #[test]
    fn alternatives_naming_unknown_schemes_are_dropped() {
        let (alts, _) = run(r#"[{"nope": [], "zKey": []}, {"aBearer": []}]"#);
        assert_eq!(names(&alts), [vec!["aBearer"]]);
    }

    #[test]
    fn only_unknown_schemes_leave_a_fail_closed_marker() {
        let (alts, auth) = run(r#"[{"nope": []}]"#);
        assert!(alts.is_empty());
        assert_eq!(auth.len(), 1);
        assert_eq!(auth[0].kind, UNKNOWN_SCHEME_TYPE);
        assert_eq!(auth[0].name, "nope");
    }

    #[test]
    fn an_empty_security_list_means_no_auth() {
        let (alts, auth) = run("[]");
        assert!(alts.is_empty() && auth.is_empty());
    }
}
