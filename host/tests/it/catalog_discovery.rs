//! Discovery sources against a real HTTP server on loopback: `serviceRoot` (RFC 8631 `Link`
//! headers, `service-meta` linkset) and `apiCatalog` (RFC 9727 linksets, flat and RFC 9264
//! forms, nested catalogs) build the same tools an `openapi` source would, with provenance and
//! ETag revalidation; hostile catalogs fail closed or are skipped with a warning.
//! Fixtures: `tests/fixtures/discovery/` (the reference conformance linksets' shapes).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use portcullis::catalog::{build, BuildOptions, BuildOutcome};
use portcullis::config::{Config, LoadedConfig};

/// One page of the test site: status, headers and body; `{origin}` is replaced by the site's
/// `http://127.0.0.1:port`.
#[derive(Clone, Default)]
struct Page {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

fn page(body: &str) -> Page {
    Page {
        status: 200,
        headers: vec![("etag", "\"v1\"".to_owned())],
        body: body.to_owned(),
    }
}

fn with_header(mut p: Page, name: &'static str, value: &str) -> Page {
    p.headers.push((name, value.to_owned()));
    p
}

#[derive(Default)]
struct Site {
    pages: Mutex<HashMap<String, Page>>,
    /// `METHOD path accept` of every request, in order.
    log: Mutex<Vec<String>>,
}

impl Site {
    fn set(&self, path: &str, p: Page) {
        self.pages.lock().unwrap().insert(path.to_owned(), p);
    }
    fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

async fn serve(site: Arc<Site>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let origin = format!("http://{}", listener.local_addr().expect("addr"));
    let base = origin.clone();
    let handler = move |method: Method, uri: Uri, headers: HeaderMap| {
        let (site, base) = (site.clone(), base.clone());
        async move {
            let accept = headers
                .get("accept")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            site.log
                .lock()
                .unwrap()
                .push(format!("{method} {} {accept}", uri.path()));
            let Some(p) = site.pages.lock().unwrap().get(uri.path()).cloned() else {
                return StatusCode::NOT_FOUND.into_response();
            };
            let fill = |s: &str| s.replace("{origin}", &base);
            let etag = p.headers.iter().find(|(n, _)| *n == "etag");
            let matched = etag.is_some_and(|(_, v)| {
                headers
                    .get("if-none-match")
                    .is_some_and(|h| h == v.as_str())
            });
            let mut response: Response = if matched {
                StatusCode::NOT_MODIFIED.into_response()
            } else {
                (StatusCode::from_u16(p.status).unwrap(), fill(&p.body)).into_response()
            };
            for (name, value) in &p.headers {
                response
                    .headers_mut()
                    .append(*name, fill(value).parse().unwrap());
            }
            response
        }
    };
    let app = axum::Router::new().fallback(handler);
    tokio::spawn(async move { axum::serve(listener, app).await });
    origin
}

const TICKETS: &str = r#"{"openapi":"3.1.0","info":{"title":"Tickets API","version":"1"},
  "paths":{"/tickets":{"get":{"operationId":"listTickets"}},
           "/tickets/admin":{"delete":{"operationId":"purgeTickets"}}}}"#;
const BILLING_YAML: &str = "openapi: 3.0.3\ninfo: {title: Billing, version: '1'}\npaths:\n  /invoices:\n    get: {operationId: listInvoices}\n";
const HIDE_ADMIN: &str = r#"{"overlay":"1.0.0","info":{"title":"hide","version":"1"},
  "actions":[{"target":"$.paths['/tickets/admin'].delete","update":{"x-cli-ignore":true}}]}"#;

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/discovery")
        .join(name);
    std::fs::read_to_string(&path).expect("fixture")
}

/// A service root at `/v1` whose `Link` header names the document and a `service-meta`
/// linkset (relative targets), which lists an overlay hiding the admin tool.
fn tickets_site(site: &Site) {
    let links = r#"<tickets.openapi.json>; rel="service-desc"; type="application/openapi+json", </v1/meta/linkset.json>; rel="service-meta", </docs>; rel="service-doc""#;
    site.set("/v1", with_header(page(""), "link", links));
    site.set("/tickets.openapi.json", page(TICKETS));
    site.set(
        "/v1/meta/linkset.json",
        page(&fixture("service-meta.linkset.json")),
    );
    site.set("/v1/overlays/hide-admin.json", page(HIDE_ADMIN));
}

async fn run(
    sources: serde_json::Value,
    services: serde_json::Value,
    cache: &Path,
) -> BuildOutcome {
    let config: Config = serde_json::from_value(serde_json::json!({
        "sources": sources, "services": services
    }))
    .expect("valid config");
    let loaded = LoadedConfig {
        config,
        base_dir: cache.to_path_buf(),
        project_path: cache.join(".cli.json"),
        files: Vec::new(),
    };
    let options = BuildOptions {
        cache_dir: Some(cache.to_path_buf()),
        ..BuildOptions::default()
    };
    build(&loaded, &options).await
}

fn tool_ids(b: &BuildOutcome) -> Vec<&str> {
    b.catalog.tools.iter().map(|t| t.id.as_str()).collect()
}

fn catalog_json(b: &BuildOutcome) -> serde_json::Value {
    serde_json::to_value(&b.catalog).expect("catalog json")
}

fn errors(b: &BuildOutcome) -> String {
    b.errors
        .iter()
        .map(|e| format!("{}: {}\n", e.source_id, e.message))
        .collect()
}

fn warnings(b: &BuildOutcome) -> String {
    b.warnings
        .iter()
        .map(|e| format!("{}: {}\n", e.source_id, e.message))
        .collect()
}

#[tokio::test]
async fn a_service_root_builds_its_service_desc_with_meta_overlays_and_provenance() {
    let site = Arc::new(Site::default());
    let origin = serve(site.clone()).await;
    tickets_site(&site);
    let dir = tempfile::tempdir().expect("tempdir");
    let sources =
        serde_json::json!({"root": {"type": "serviceRoot", "uri": format!("{origin}/v1")}});
    let services = serde_json::json!({"helpdesk": {"source": "root"}});

    let first = run(sources.clone(), services.clone(), dir.path()).await;
    assert!(first.errors.is_empty(), "{}", errors(&first));
    assert_eq!(
        tool_ids(&first),
        ["helpdesk:listTickets"],
        "service id from `services`; the meta overlay hides purgeTickets"
    );
    assert_eq!(
        first.catalog.services[0].servers,
        [origin.as_str()],
        "origin fallback of the service-desc URL"
    );
    let warned = warnings(&first);
    assert!(
        warned.contains("skill-manifest") && warned.contains("/v1/meta/tickets.skill.json"),
        "{warned}"
    );

    let json = catalog_json(&first);
    let source = &json["sources"][0];
    assert_eq!(source["type"], "serviceRoot");
    assert_eq!(source["provenance"]["method"], "rfc8631");
    let fetches = source["provenance"]["fetches"].as_array().expect("fetches");
    let urls: Vec<_> = fetches
        .iter()
        .map(|f| f["url"].as_str().unwrap().replace(&origin, ""))
        .collect();
    assert_eq!(
        urls,
        [
            "/v1",
            "/v1/meta/linkset.json",
            "/tickets.openapi.json",
            "/v1/overlays/hide-admin.json"
        ]
    );
    for f in fetches {
        assert_eq!(f["cacheOutcome"], "miss", "{f}");
        assert_eq!(f["etag"], "\"v1\"", "{f}");
        assert_eq!(f["method"], "rfc8631", "{f}");
        assert!(
            f["fetchedAt"].as_str().is_some_and(|t| t.contains('T')),
            "{f}"
        );
    }
    assert_eq!(fetches[0]["requestMethod"], "HEAD");
    assert_eq!(source["provenance"]["at"], fetches[0]["fetchedAt"]);

    let second = run(sources, services, dir.path()).await;
    assert_eq!(tool_ids(&second), ["helpdesk:listTickets"]);
    let json = catalog_json(&second);
    for f in json["sources"][0]["provenance"]["fetches"]
        .as_array()
        .unwrap()
    {
        assert_eq!(
            f["cacheOutcome"], "revalidated_hit",
            "ETag revalidation: {f}"
        );
        assert_eq!(f["statusCode"], 304, "{f}");
    }
}

#[tokio::test]
async fn an_api_catalog_lists_service_roots_and_documents_with_derived_ids() {
    let site = Arc::new(Site::default());
    let origin = serve(site.clone()).await;
    tickets_site(&site);
    // The reference fixture's flat form, with a nested RFC 9264 catalog that links back (a cycle).
    let top = fixture("api-catalog.linkset.json").replace(
        "\"linkset\": [",
        r#""linkset": [{"href": "/nested", "rel": "api-catalog"},"#,
    );
    site.set(
        "/.well-known/api-catalog",
        with_header(page(&top), "content-type", "application/linkset+json"),
    );
    site.set(
        "/nested",
        page(r#"{"linkset":[{"anchor":"/billing",
            "service-desc":[{"href":"/billing.html","type":"text/html"},{"href":"/billing.yaml","type":"application/yaml"}]},
            {"anchor":"/nested","api-catalog":[{"href":"/.well-known/api-catalog"}]},
            {"anchor":"/nested","item":[{"href":"/v1"}]}]}"#),
    );
    site.set("/billing.yaml", page(BILLING_YAML));
    let dir = tempfile::tempdir().expect("tempdir");
    let sources = serde_json::json!({"publisher": {"type": "apiCatalog", "uri": format!("{origin}/.well-known/api-catalog")}});

    let first = run(sources.clone(), serde_json::json!({}), dir.path()).await;
    assert!(first.errors.is_empty(), "{}", errors(&first));
    assert_eq!(
        tool_ids(&first),
        ["invoices:listInvoices", "tickets:listTickets"],
        "derived ids; `/v1` listed twice is built once"
    );
    let warned = warnings(&first);
    assert!(warned.contains("already read"), "cycle reported: {warned}");
    assert!(
        warned.contains("text/html"),
        "non-OpenAPI media type skipped: {warned}"
    );
    assert!(
        site.requests()
            .iter()
            .any(|r| r == "GET /.well-known/api-catalog application/linkset+json"),
        "{:?}",
        site.requests()
    );
    let json = catalog_json(&first);
    let source = &json["sources"][0];
    assert_eq!(
        (
            source["type"].as_str(),
            source["provenance"]["method"].as_str()
        ),
        (Some("apiCatalog"), Some("rfc9727"))
    );
    assert!(json["services"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["sourceId"] == "publisher"));
    let outcomes: Vec<_> = source["provenance"]["fetches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["cacheOutcome"].clone())
        .collect();
    assert!(
        outcomes.len() >= 6 && outcomes.iter().all(|o| o == "miss"),
        "{outcomes:?}"
    );

    let second = run(sources, serde_json::json!({}), dir.path()).await;
    assert_eq!(tool_ids(&second).len(), 2);
    let json = catalog_json(&second);
    let fetches = json["sources"][0]["provenance"]["fetches"]
        .as_array()
        .unwrap();
    assert!(
        fetches
            .iter()
            .all(|f| f["cacheOutcome"] == "revalidated_hit"),
        "{fetches:?}"
    );
}

/// Build one unbound source of `kind` at `path` on a fresh site prepared by `prepare`.
async fn hostile(
    kind: &str,
    path: &str,
    prepare: impl FnOnce(&Site, &str),
) -> (BuildOutcome, Arc<Site>) {
    let site = Arc::new(Site::default());
    let origin = serve(site.clone()).await;
    tickets_site(&site);
    prepare(&site, &origin);
    let dir = tempfile::tempdir().expect("tempdir");
    let sources = serde_json::json!({"s": {"type": kind, "uri": format!("{origin}{path}")}});
    (run(sources, serde_json::json!({}), dir.path()).await, site)
}

fn catalog_of(items: &[&str]) -> Page {
    let links: Vec<_> = items
        .iter()
        .map(|h| serde_json::json!({"href": h, "rel": "item"}))
        .collect();
    page(&serde_json::json!({ "linkset": links }).to_string())
}

#[tokio::test]
async fn internal_addresses_named_by_a_catalog_are_refused_and_the_rest_still_loads() {
    let (b, site) = hostile("apiCatalog", "/cat", |site, _| {
        site.set(
            "/cat",
            catalog_of(&[
                "/v1",
                "http://u:pw@169.254.169.254/latest?token=CANARY",
                "http://10.0.0.5/api",
                "file:///etc/passwd",
            ]),
        );
    })
    .await;
    assert_eq!(
        tool_ids(&b),
        ["tickets:listTickets"],
        "the loopback service still loads"
    );
    let text = errors(&b);
    assert!(
        text.contains("http://169.254.169.254/latest") && text.contains("link-local"),
        "{text}"
    );
    assert!(
        text.contains("http://10.0.0.5/api") && text.contains("private"),
        "{text}"
    );
    assert!(
        text.contains("file:///etc/passwd") && text.contains("http or https"),
        "{text}"
    );
    assert!(!text.contains("CANARY") && !text.contains("pw@"), "{text}");
    assert!(
        text.lines().all(|l| l.starts_with("s: ")),
        "each error names the source: {text}"
    );
    assert!(site.requests().iter().all(|r| !r.contains("latest")));
}

#[tokio::test]
async fn a_service_desc_or_server_pointing_at_cloud_metadata_is_refused() {
    let (b, _) = hostile("serviceRoot", "/root", |site, _| {
        site.set(
            "/root",
            with_header(
                page(""),
                "link",
                "<http://169.254.169.254/openapi.json>; rel=\"service-desc\"",
            ),
        );
    })
    .await;
    assert!(b.catalog.tools.is_empty());
    assert!(errors(&b).contains("link-local"), "{}", errors(&b));

    let (b, _) = hostile("serviceRoot", "/root", |site, _| {
        site.set("/root", with_header(page(""), "link", "</evil.json>; rel=\"service-desc\""));
        site.set("/evil.json", page(r#"{"openapi":"3.1.0","info":{"title":"e","version":"1"},"servers":[{"url":"http://169.254.169.254"}],"paths":{"/x":{"get":{}}}}"#));
    })
    .await;
    assert!(b.catalog.tools.is_empty());
    assert!(
        errors(&b).contains("server http://169.254.169.254/") && errors(&b).contains("link-local"),
        "{}",
        errors(&b)
    );
}

#[tokio::test]
async fn redirect_loops_and_cross_origin_redirects_fail_with_the_url() {
    let (b, _) = hostile("apiCatalog", "/loop", |site, origin| {
        site.set(
            "/loop",
            Page {
                status: 302,
                headers: vec![("location", format!("{origin}/loop"))],
                body: String::new(),
            },
        );
    })
    .await;
    let text = errors(&b);
    assert!(
        text.contains("/loop") && text.contains("redirect"),
        "{text}"
    );

    let (b, _) = hostile("apiCatalog", "/cat", |site, origin| {
        site.set("/cat", catalog_of(&["/hop"]));
        let elsewhere = origin.replace("127.0.0.1", "localhost");
        site.set(
            "/hop",
            Page {
                status: 302,
                headers: vec![("location", format!("{elsewhere}/v1"))],
                body: String::new(),
            },
        );
    })
    .await;
    assert!(b.catalog.tools.is_empty());
    assert!(errors(&b).contains("another origin"), "{}", errors(&b));
}

#[tokio::test]
async fn oversized_catalogs_fail_closed_with_the_bound() {
    let (b, _) = hostile("apiCatalog", "/cat", |site, _| {
        let many: Vec<String> = (0..1001).map(|i| format!("/s{i}")).collect();
        site.set(
            "/cat",
            catalog_of(&many.iter().map(String::as_str).collect::<Vec<_>>()),
        );
    })
    .await;
    assert!(
        errors(&b).contains("more than 1000 links"),
        "{}",
        errors(&b)
    );

    let (b, site) = hostile("apiCatalog", "/cat", |site, _| {
        let many: Vec<String> = (0..65).map(|i| format!("/s{i}")).collect();
        site.set(
            "/cat",
            catalog_of(&many.iter().map(String::as_str).collect::<Vec<_>>()),
        );
    })
    .await;
    assert!(
        errors(&b).contains("more than 64 services"),
        "{}",
        errors(&b)
    );
    assert!(
        site.requests().iter().all(|r| !r.contains("/s0")),
        "nothing listed is fetched"
    );

    let (b, _) = hostile("apiCatalog", "/cat", |site, _| {
        site.set(
            "/cat",
            page(&format!(
                "{{\"linkset\":[],\"pad\":\"{}\"}}",
                "x".repeat(2 << 20)
            )),
        );
    })
    .await;
    assert!(
        errors(&b).contains("exceeds 1048576 bytes"),
        "{}",
        errors(&b)
    );
}

#[tokio::test]
async fn a_service_root_without_an_openapi_service_desc_is_an_error_naming_it() {
    let (b, _) = hostile("serviceRoot", "/root", |site, _| {
        site.set("/root", with_header(page(""), "link", "</doc.html>; rel=\"service-desc\"; type=\"text/html\", </doc>; rel=\"service-doc\""));
    })
    .await;
    let text = errors(&b);
    assert!(
        text.contains("service root")
            && text.contains("/root")
            && text.contains("no OpenAPI description"),
        "{text}"
    );
    assert!(
        text.contains("text/html"),
        "the skipped link is named: {text}"
    );

    let (b, _) = hostile("apiCatalog", "/cat", |site, _| {
        site.set("/cat", page("<html>not a linkset</html>"));
    })
    .await;
    assert!(errors(&b).contains("is not a linkset"), "{}", errors(&b));
}

#[tokio::test]
async fn an_api_catalog_bound_to_a_service_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = run(
        serde_json::json!({"c": {"type": "apiCatalog", "uri": "http://127.0.0.1:9/.well-known/api-catalog"}}),
        serde_json::json!({"one": {"source": "c"}}),
        dir.path(),
    )
    .await;
    assert!(
        errors(&b).contains("services.one binds an apiCatalog source"),
        "{}",
        errors(&b)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn check_reports_a_refused_catalog_entry_and_exits_1() {
    let site = Arc::new(Site::default());
    let origin = serve(site.clone()).await;
    tickets_site(&site);
    site.set(
        "/cat",
        catalog_of(&["/v1", "http://169.254.169.254/latest/meta-data"]),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let config = serde_json::json!({
        "cli": "1.0.0",
        "mode": { "default": "discover" },
        "sources": { "cat": { "type": "apiCatalog", "uri": format!("{origin}/cat") } }
    });
    std::fs::write(dir.path().join(".cli.json"), config.to_string()).expect("write config");
    let root = dir.path().to_path_buf();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["check", "--config"])
            .arg(root.join(".cli.json"))
            .env("PORTCULLIS_MANAGED_CONFIG", root.join("none-managed.json"))
            .env("PORTCULLIS_USER_CONFIG", root.join("none-user.json"))
            .output()
            .expect("run portcullis check")
    })
    .await
    .expect("join");
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("cat")
            && text.contains("http://169.254.169.254/latest/meta-data")
            && text.contains("link-local"),
        "{text}"
    );
}
