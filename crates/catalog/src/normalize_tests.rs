//! Tests for [`super::normalize`]: naming, parameters, safety, servers, duplicates.

use super::*;
use crate::openapi::parse;

fn tools(doc: &str) -> Vec<Tool> {
    normalize(&parse(doc.as_bytes()).unwrap(), "svc", None)
        .unwrap()
        .tools
}

fn error(doc: &str) -> String {
    normalize(&parse(doc.as_bytes()).unwrap(), "svc", None)
        .err()
        .unwrap()
        .to_string()
}

fn names(params: &[Parameter]) -> Vec<&str> {
    params.iter().map(|p| p.original_name.as_str()).collect()
}

#[test]
fn every_method_becomes_a_tool_and_head_options_trace_are_read_only() {
    let t = tools(
        r#"{"openapi":"3.1.0","paths":{"/t":{"get":{},"put":{},"post":{},"delete":{},"patch":{},
            "head":{},"options":{},"trace":{}}}}"#,
    );
    let methods: Vec<_> = t.iter().map(|t| t.method.as_str()).collect();
    assert_eq!(
        methods,
        ["GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE"]
    );
    for tool in &t[5..] {
        assert!(
            tool.safety.read_only && tool.safety.idempotent,
            "{}",
            tool.method
        );
    }
    assert!(t[3].safety.destructive && t[3].safety.idempotent);
    assert!(!t[2].safety.idempotent && !t[2].safety.read_only);
}

#[test]
fn fallback_operation_id_and_command_and_group() {
    let t = tools(r#"{"openapi":"3.0.0","paths":{"/tickets/{id}":{"get":{}}}}"#);
    assert_eq!(t[0].id, "svc:get:/tickets/{id}");
    assert_eq!(t[0].operation_id, "get:/tickets/{id}");
    assert_eq!(t[0].command, "get-tickets-id");
    assert_eq!(t[0].group, "tickets");
}

#[test]
fn cli_extensions_override_names_and_safety() {
    let t = tools(
        r#"{"openapi":"3.0.0","paths":{"/{x}":{"delete":{"operationId":"wipeAll","tags":["Big Things"],
            "x-cli-name":"wipe","x-cli-group":"ops","x-cli-aliases":["rm"],"x-cli-hidden":true,
            "x-cli-description":"better","description":"worse","x-cli-safety":{"requiresApproval":true,"idempotent":false},
            "x-cli-output":{"defaultFields":["id"]},"x-cli-pagination":{"style":"cursor"},"x-cli-retry":{"recommended":true},
            "x-open-cli-backend":{"kind":"mcp"}},
          "get":{"operationId":"getThing","tags":["Big Things"]}},
          "/{y}/z":{"get":{"x-cli-ignore":true}}}}"#,
    );
    assert_eq!(t.len(), 2);
    let wipe = t.iter().find(|t| t.operation_id == "wipeAll").unwrap();
    assert_eq!(
        (wipe.command.as_str(), wipe.group.as_str()),
        ("wipe", "ops")
    );
    assert_eq!(wipe.aliases, ["rm"]);
    assert!(wipe.hidden);
    assert_eq!(wipe.description, "better");
    assert_eq!(
        wipe.safety,
        Safety {
            destructive: true,
            read_only: false,
            requires_approval: true,
            idempotent: false
        }
    );
    assert!(wipe.output.is_some() && wipe.pagination.is_some() && wipe.retry.is_some());
    assert!(
        wipe.backend.is_http(),
        "forged backend metadata must be ignored"
    );
    let get = t.iter().find(|t| t.operation_id == "getThing").unwrap();
    assert_eq!(
        (get.command.as_str(), get.group.as_str()),
        ("get-thing", "big-things")
    );
}

#[test]
fn path_params_follow_the_declaration_order_not_the_template() {
    let t = tools(
        r#"{"openapi":"3.0.0","paths":{"/repos/{owner}/{repo}/issues/{number}":{
            "parameters":[{"name":"number","in":"path","required":true}],
            "get":{"parameters":[{"name":"repo","in":"path","required":true},
                                 {"name":"owner","in":"path","required":true},
                                 {"name":"X-Trace-Id","in":"header"},
                                 {"name":"Accept","in":"header"}]}}}}"#,
    );
    // The reference runtime's order: path-item parameters, then the operation's, as declared.
    assert_eq!(names(&t[0].path_params), ["number", "repo", "owner"]);
    assert_eq!(t[0].flags.len(), 1);
    assert_eq!(t[0].flags[0].name, "x-trace-id");
}

#[test]
fn undeclared_template_variables_get_a_required_path_param() {
    let t = tools(
        r#"{"openapi":"3.0.0","paths":{"/a/{itemId}/b/{x}/c/{other}":{"get":{
            "parameters":[{"name":"x","in":"path","required":true}]}}}}"#,
    );
    // Declared first, then the undeclared ones in template order.
    assert_eq!(names(&t[0].path_params), ["x", "itemId", "other"]);
    assert_eq!(t[0].path_params[1].name, "item-id");
    assert!(t[0].path_params.iter().all(|p| p.required));
}

#[test]
fn operation_params_override_path_item_params_instead_of_duplicating() {
    let t = tools(
        r##"{"openapi":"3.0.0","components":{"parameters":{"Limit":{"name":"limit","in":"query","required":true,"x-cli-name":"max"}}},
          "paths":{"/a":{"parameters":[{"name":"limit","in":"query"},{"name":"limit","in":"header"}],
            "get":{"parameters":[{"$ref":"#/components/parameters/Limit"}]}}}}"##,
    );
    let flags = &t[0].flags;
    assert_eq!(flags.len(), 2);
    assert_eq!(
        (flags[0].location, flags[0].required),
        (ParamLocation::Header, false)
    );
    assert_eq!(
        (flags[1].name.as_str(), flags[1].location, flags[1].required),
        ("max", ParamLocation::Query, true)
    );
}

#[test]
fn request_body_refs_resolve_and_content_types_are_sorted_with_schemas_as_written() {
    let t = tools(
        r##"{"openapi":"3.1.0","components":{"requestBodies":{"B":{"required":true,"content":{
              "text/plain":{},"application/json":{"schema":{"$ref":"#/components/schemas/Pet"}}}}}},
          "paths":{"/p":{"post":{"requestBody":{"$ref":"#/components/requestBodies/B"}}}}}"##,
    );
    let body = t[0].request_body.as_ref().unwrap();
    assert!(body.required);
    let types: Vec<_> = body
        .content_types
        .iter()
        .map(|c| c.media_type.as_str())
        .collect();
    assert_eq!(types, ["application/json", "text/plain"]);
    assert_eq!(
        body.content_types[0].schema,
        Some(serde_json::json!({"$ref":"#/components/schemas/Pet"}))
    );
}

#[test]
fn path_item_refs_resolve_and_cycles_fail() {
    let t = tools(
        r##"{"openapi":"3.1.0","components":{"pathItems":{"P":{"get":{"operationId":"viaRef"}}}},
          "paths":{"/p":{"$ref":"#/components/pathItems/P"}}}"##,
    );
    assert_eq!(t[0].id, "svc:viaRef");
    let err = error(
        r##"{"openapi":"3.1.0","components":{"pathItems":{"P":{"$ref":"#/components/pathItems/Q"},"Q":{"$ref":"#/components/pathItems/P"}}},
          "paths":{"/p":{"$ref":"#/components/pathItems/P"}}}"##,
    );
    assert!(err.contains("cycle"), "{err}");
}

#[test]
fn server_precedence_is_operation_then_path_item_then_document() {
    let t = tools(
        r#"{"openapi":"3.0.0","servers":[{"url":"https://doc"}],"paths":{
            "/a":{"servers":[{"url":"https://item"}],"get":{"servers":[{"url":"https://op"}]},"put":{}},
            "/b":{"get":{"servers":[]}}}}"#,
    );
    let servers: Vec<_> = t.iter().map(|t| t.servers[0].as_str()).collect();
    assert_eq!(servers, ["https://op", "https://item", "https://doc"]);
}

#[test]
fn security_uses_operation_list_over_document_list() {
    let t = tools(
        r#"{"openapi":"3.0.0","security":[{"k":[]}],"components":{"securitySchemes":{"k":{"type":"apiKey","in":"query","name":"key"}}},
          "paths":{"/a":{"get":{},"put":{"security":[]},"post":{"security":[{},{"k":[]}]}}}}"#,
    );
    assert_eq!(t[0].auth_alternatives.len(), 1);
    assert!(t[1].auth_alternatives.is_empty() && t[1].auth.is_empty());
    assert!(t[2].auth_alternatives[0].requirements.is_empty());
}

#[test]
fn duplicate_operation_ids_are_an_error_naming_both_operations() {
    let err = error(
        r#"{"openapi":"3.0.0","paths":{"/a":{"get":{"operationId":"x"}},"/b":{"post":{"operationId":"x"}}}}"#,
    );
    assert!(err.contains("GET /a") && err.contains("POST /b"), "{err}");
}

#[test]
fn whitespace_in_operation_ids_becomes_underscores_in_tool_ids() {
    let t = tools(
        r#"{"openapi":"3.0.0","paths":{"/a":{"get":{"operationId":" List  all\tthings "}}}}"#,
    );
    assert_eq!(t[0].id, "svc:List_all_things");
    assert_eq!(t[0].operation_id, " List  all\tthings ");
    assert_eq!(t[0].command, "list-all-things");
}

#[test]
fn ids_with_stars_or_control_characters_are_refused() {
    for id in ["get*", "bell\u{7}"] {
        let doc = format!(
            r#"{{"openapi":"3.0.0","paths":{{"/a":{{"get":{{"operationId":{}}}}}}}}}"#,
            serde_json::json!(id)
        );
        assert!(error(&doc).contains("invalid tool id"), "{id}");
    }
}
