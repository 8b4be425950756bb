//! `{{name}}`: a Portcullis auth profile.
//!
//! Starting point: asks an OAuth 2.0 introspection endpoint (RFC 7662) about the token. The
//! operator grants the endpoint's origin with `plugins.{{name}}.grants.http`. An inactive token
//! is rejected (401); an unreachable or failing endpoint is "unavailable" (503).

use portcullis_sdk::http::{self, Request};
use portcullis_sdk::{
    AuthError, AuthProfile, AuthRequest, Identity, InitError, Metadata, Plugin,
};
use serde::Deserialize;

/// The `plugins.{{name}}.config` object; keep `config.schema.json` in step.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    introspection_url: String,
}

/// The fields of an introspection response this profile uses.
#[derive(Debug, Deserialize)]
struct Introspection {
    active: bool,
    sub: Option<String>,
    scope: Option<String>,
    exp: Option<u64>,
    aud: Option<serde_json::Value>,
}

pub struct {{type_name}} {
    introspection_url: String,
}

impl Plugin for {{type_name}} {
    type Config = Config;

    fn metadata() -> Metadata {
        Metadata::new("{{name}}", env!("CARGO_PKG_VERSION"), "Bearer tokens checked by OAuth introspection")
            .with_config_schema(include_str!("../config.schema.json"))
    }

    fn init(config: Config) -> Result<Self, InitError> {
        if !config.introspection_url.starts_with("https://")
            && !config.introspection_url.starts_with("http://")
        {
            return Err(InitError::InvalidConfig("`introspectionUrl` must be an http(s) URL".to_owned()));
        }
        Ok(Self { introspection_url: config.introspection_url })
    }
}

impl AuthProfile for {{type_name}} {
    fn validate(&self, request: &AuthRequest) -> Result<Identity, AuthError> {
        let body = format!("token={}", form_encode(request.token.expose()));
        let response = http::fetch(
            &Request::post(&self.introspection_url, body)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("accept", "application/json"),
        )
        .map_err(|error| AuthError::Unavailable(format!("introspection: {error}")))?;
        if !response.is_success() {
            return Err(AuthError::Unavailable(format!("introspection answered {}", response.status)));
        }
        let answer: Introspection = serde_json::from_slice(&response.body)
            .map_err(|error| AuthError::Unavailable(format!("introspection answer: {error}")))?;
        if !answer.active {
            return Err(AuthError::Rejected("token is not active".to_owned()));
        }
        let audience_ok = match &answer.aud {
            None => true,
            Some(serde_json::Value::String(aud)) => *aud == request.audience,
            Some(serde_json::Value::Array(auds)) => auds.iter().any(|aud| aud.as_str() == Some(&request.audience)),
            Some(_) => false,
        };
        if !audience_ok {
            return Err(AuthError::Rejected("token is meant for another audience".to_owned()));
        }
        let principal = answer
            .sub
            .filter(|sub| !sub.is_empty())
            .ok_or_else(|| AuthError::Rejected("token has no subject".to_owned()))?;
        Ok(Identity {
            principal,
            scopes: answer.scope.unwrap_or_default().split_whitespace().map(str::to_owned).collect(),
            lineage: Vec::new(),
            expires_at: answer.exp,
        })
    }
}

portcullis_sdk::export_auth_profile!({{type_name}});

/// `application/x-www-form-urlencoded` value encoding.
fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (byte as char).to_string(),
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_sdk::testing;

    fn plugin() -> {{type_name}} {
        portcullis_sdk::init_from_json(r#"{"introspectionUrl": "https://idp.example:443/introspect"}"#).unwrap()
    }

    #[test]
    fn an_active_token_becomes_an_identity() {
        testing::set_http_handler(|request| {
            assert_eq!(request.body.as_deref(), Some(&b"token=abc%2B1"[..]));
            Ok(http::Response {
                status: 200,
                headers: vec![],
                body: br#"{"active": true, "sub": "alice", "scope": "bundle:tickets", "exp": 4102444800}"#.to_vec(),
            })
        });
        let identity = plugin().validate(&AuthRequest::for_token("abc+1")).unwrap();
        assert_eq!(identity.principal, "alice");
        assert_eq!(identity.scopes, ["bundle:tickets"]);
    }

    #[test]
    fn an_inactive_token_is_rejected_and_a_failing_endpoint_is_unavailable() {
        testing::set_http_handler(|_| Ok(http::Response { status: 200, headers: vec![], body: br#"{"active": false}"#.to_vec() }));
        assert!(matches!(plugin().validate(&AuthRequest::for_token("t")), Err(AuthError::Rejected(_))));
        testing::set_http_handler(|_| Err(http::HttpError::Timeout));
        assert!(matches!(plugin().validate(&AuthRequest::for_token("t")), Err(AuthError::Unavailable(_))));
    }
}
