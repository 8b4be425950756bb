//! Request-building rules, checked without a network.

use reqwest::header::{HeaderName, HeaderValue};

use super::*;
use crate::catalog::{ContentType, ParamLocation, Parameter, RequestBody, Safety, Tool};

fn param(name: &str, original: &str, location: ParamLocation, required: bool) -> Parameter {
    Parameter {
        name: name.into(),
        original_name: original.into(),
        location,
        required,
    }
}

fn tool(path: &str) -> Tool {
    Tool {
        id: "svc:op".into(),
        method: "GET".into(),
        path: path.into(),
        servers: vec!["https://api.example/v1/".into()],
        safety: Safety {
            idempotent: true,
            ..Safety::default()
        },
        ..Tool::default()
    }
}

fn args(path: &[&str]) -> ExecuteArgs {
    ExecuteArgs {
        path_args: path.iter().map(|s| s.to_string()).collect(),
        ..ExecuteArgs::default()
    }
}

fn url_of(req: &UpstreamRequest) -> String {
    req.url().map(|u| u.to_string()).unwrap_or_default()
}

#[test]
fn path_args_bind_to_path_params_in_declaration_order() {
    // `/a/{first}/b/{second}` declared `[second, first]`: the reference runtime (and its client,
    // which reads `pathParams` from the catalog) binds positional arguments in that order.
    let mut t = tool("/a/{first}/b/{second}");
    t.path_params = vec![
        param("second", "second", ParamLocation::Path, true),
        param("first", "first", ParamLocation::Path, true),
    ];
    let creds = AppliedCredentials::default();
    let req = build_request(&t, &args(&["two", "one"]), &creds).unwrap();
    assert_eq!(url_of(&req), "https://api.example/v1/a/one/b/two");
    // Too many or too few: refused, naming the parameters in binding order.
    for given in [&["two", "one", "extra"][..], &["two"][..]] {
        let err = build_request(&t, &args(given), &creds).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, RequestError::PathArgCount { expected: 2, .. })
                && text.contains("[second, first]")
                && text.contains(&format!("got {}", given.len())),
            "{text}"
        );
    }
}

#[test]
fn undeclared_and_repeated_placeholders_take_one_argument_each() {
    let mut t = tool("/a/{id}/b/{undeclared}/c/{id}");
    t.path_params = vec![param("id", "id", ParamLocation::Path, true)];
    let req = build_request(&t, &args(&["x", "y"]), &AppliedCredentials::default()).unwrap();
    assert_eq!(url_of(&req), "https://api.example/v1/a/x/b/y/c/x");
}

#[test]
fn path_arg_with_slash_query_and_hash_stays_in_its_segment() {
    let req = build_request(
        &tool("/files/{name}"),
        &args(&["a/b?c#d %"]),
        &AppliedCredentials::default(),
    )
    .unwrap();
    assert_eq!(
        url_of(&req),
        "https://api.example/v1/files/a%2Fb%3Fc%23d%20%25"
    );
}

#[test]
fn dot_segment_and_empty_path_args_are_refused() {
    let creds = AppliedCredentials::default();
    for bad in ["..", "."] {
        let err = build_request(&tool("/users/{id}/keys"), &args(&[bad]), &creds).unwrap_err();
        assert!(
            matches!(err, RequestError::DotSegment { .. }),
            "{bad}: {err}"
        );
    }
    let err = build_request(&tool("/users/{id}/keys"), &args(&[""]), &creds).unwrap_err();
    assert!(matches!(err, RequestError::EmptyPathArg { .. }), "{err}");
    // Dots inside a segment are harmless.
    let req = build_request(&tool("/files/{name}"), &args(&["..a"]), &creds).unwrap();
    assert!(url_of(&req).ends_with("/files/..a"));
}

#[test]
fn wrong_path_arg_count_names_the_expected_params() {
    let err = build_request(
        &tool("/repos/{owner}/{repo}"),
        &args(&["x"]),
        &AppliedCredentials::default(),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("owner, repo") && text.contains("got 1"),
        "{text}"
    );
}

#[test]
fn no_servers_and_relative_server_are_deferred_upstream_errors() {
    let mut t = tool("/x");
    t.servers.clear();
    let req = build_request(&t, &args(&[]), &AppliedCredentials::default()).unwrap();
    assert_eq!(
        req.target.as_ref().unwrap_err().reason(),
        "missing_base_url"
    );
    t.servers = vec!["/api".into()];
    let req = build_request(&t, &args(&[]), &AppliedCredentials::default()).unwrap();
    assert_eq!(
        req.target.as_ref().unwrap_err().reason(),
        "invalid_upstream_url"
    );
}

#[test]
fn header_flag_with_crlf_is_refused_without_echoing_it() {
    let mut t = tool("/x");
    t.flags = vec![param("trace", "X-Trace", ParamLocation::Header, false)];
    let mut a = args(&[]);
    a.flags
        .insert("trace".into(), "ok\r\nInjected: EVIL".into());
    let err = build_request(&t, &a, &AppliedCredentials::default()).unwrap_err();
    assert!(matches!(err, RequestError::InvalidHeaderValue { .. }));
    assert!(!err.to_string().contains("EVIL"));
}

#[test]
fn credentials_replace_same_named_query_and_cookie() {
    let mut t = tool("/x");
    t.flags = vec![
        param("key", "api_key", ParamLocation::Query, false),
        param("sid", "sid", ParamLocation::Cookie, false),
    ];
    let mut a = args(&[]);
    a.flags.insert("key".into(), "caller".into());
    a.flags.insert("sid".into(), "caller; admin=1".into());
    let creds = AppliedCredentials {
        query: vec![("api_key".into(), "secret".into())],
        cookies: vec![("sid".into(), "real".into())],
        ..AppliedCredentials::default()
    };
    let req = build_request(&t, &a, &creds).unwrap();
    assert_eq!(req.url().unwrap().query(), Some("api_key=secret"));
    assert_eq!(req.headers()["cookie"], "sid=real");
    assert!(req.credentialed());
}

#[test]
fn cookie_flag_cannot_inject_a_second_cookie() {
    let mut t = tool("/x");
    t.flags = vec![param("sid", "sid", ParamLocation::Cookie, false)];
    let mut a = args(&[]);
    a.flags.insert("sid".into(), "v; admin=1".into());
    let req = build_request(&t, &a, &AppliedCredentials::default()).unwrap();
    assert_eq!(req.headers()["cookie"], "sid=v%3B%20admin=1");
}

#[test]
fn content_type_follows_declared_media_types() {
    let mut t = tool("/x");
    let mut a = args(&[]);
    a.body = Some(Bytes::from_static(b"x"));
    let ct = |t: &Tool, a: &ExecuteArgs| {
        build_request(t, a, &AppliedCredentials::default())
            .unwrap()
            .headers()["content-type"]
            .clone()
    };
    assert_eq!(ct(&t, &a), "application/json");
    let media = |m: &str| ContentType {
        media_type: m.into(),
        schema: None,
    };
    t.request_body = Some(RequestBody {
        required: true,
        content_types: vec![media("text/plain")],
    });
    assert_eq!(ct(&t, &a), "text/plain");
    t.request_body = Some(RequestBody {
        required: true,
        content_types: vec![media("application/json"), media("application/xml")],
    });
    assert_eq!(ct(&t, &a), "application/json");
    a.body = None;
    assert!(matches!(
        build_request(&t, &a, &AppliedCredentials::default()),
        Err(RequestError::MissingBody { .. })
    ));
}

#[test]
fn debug_output_hides_secrets() {
    let creds = AppliedCredentials {
        headers: vec![(
            HeaderName::from_static("authorization"),
            HeaderValue::from_static("Bearer CANARY"),
        )],
        query: vec![("api_key".into(), "CANARY".into())],
        cookies: vec![("sid".into(), "CANARY".into())],
        values: vec![crate::redact::SecretValue::new("CANARY".into())],
    };
    assert!(!format!("{creds:?}").contains("CANARY"));
    let req = build_request(&tool("/x"), &args(&[]), &creds).unwrap();
    assert!(!format!("{req:?}").contains("CANARY"));
}
