//! The HTTP side: one fallback handler that logs the request, routes the path (discovery,
//! OpenAPI, resource URLs), negotiates the response form (JSON object, `PartialObjectMetadata`,
//! `Table`), decodes bodies (JSON, YAML, the patch types) and calls the store.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header, request::Parts};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde_json::{Value, json};

use super::discovery;
use super::resources::ResourceInfo;
use super::selectors::{FieldSelector, LabelSelector, allowed_fields};
use super::status::{self, ApiError, Subject};
use super::store::{DeleteOpts, Deleted, FieldValidation, PatchKind, Store, Target, WriteOpts};
use super::table::{self, IncludeObject};
use super::watch::{self, WatchRequest};

/// Tunables of a fake server.
#[derive(Debug, Clone)]
pub struct Options {
    /// Watch events kept for resuming watches; older resourceVersions get 410 Expired.
    pub history_limit: usize,
    /// Period of BOOKMARK events on watches that allow them.
    pub bookmark_interval: Duration,
    /// Serve aggregated discovery when asked (kubectl ≥ 1.30 asks first); `false` answers
    /// legacy discovery only, which clients must fall back to.
    pub aggregated_discovery: bool,
    /// Watch timeout when the client sends no `timeoutSeconds`.
    pub default_watch_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            history_limit: 10_000,
            bookmark_interval: Duration::from_secs(1),
            aggregated_discovery: true,
            default_watch_timeout: Duration::from_secs(1800),
        }
    }
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: Option<String>,
    pub accept: Option<String>,
    pub user_agent: Option<String>,
    /// The request body as received.
    pub body: Bytes,
}

impl RequestRecord {
    /// The body parsed as JSON (`Value::Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The value of query parameter `key` (not percent-decoded beyond `+`/`%XX`).
    pub fn param(&self, key: &str) -> Option<String> {
        self.query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == key).then(|| percent_decode(v))
        })
    }
}

pub struct App {
    pub store: Arc<Mutex<Store>>,
    pub log: Mutex<Vec<RequestRecord>>,
    pub addr: SocketAddr,
    pub opts: Options,
}

impl App {
    pub fn new(addr: SocketAddr, opts: Options) -> Self {
        App {
            store: Arc::new(Mutex::new(Store::new(opts.history_limit))),
            log: Mutex::new(Vec::new()),
            addr,
            opts,
        }
    }
}

pub fn router(app: Arc<App>) -> Router {
    Router::new().fallback(handle).with_state(app)
}

async fn handle(State(app): State<Arc<App>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let hdr = |h: header::HeaderName| {
        parts
            .headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    };
    let (body, read_error) = match axum::body::to_bytes(body, 64 << 20).await {
        Ok(b) => (b, None),
        Err(e) => (Bytes::new(), Some(e)),
    };
    app.log
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(RequestRecord {
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
            query: parts.uri.query().unwrap_or_default().to_string(),
            content_type: hdr(header::CONTENT_TYPE),
            accept: hdr(header::ACCEPT),
            user_agent: hdr(header::USER_AGENT),
            body: body.clone(),
        });
    if let Some(e) = read_error {
        return error_response(&ApiError::bad_request(format!("reading body: {e}")));
    }
    match dispatch(&app, &parts, body) {
        Ok(r) => r,
        Err(e) => error_response(&e),
    }
}

fn error_response(e: &ApiError) -> Response {
    json_response(
        StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &e.to_status(),
        "application/json",
    )
}

fn json_response(code: StatusCode, v: &Value, content_type: &str) -> Response {
    let mut r = Response::new(Body::from(serde_json::to_vec(v).expect("json")));
    *r.status_mut() = code;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static("application/json")),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    r
}

fn ok(v: &Value) -> Response {
    json_response(StatusCode::OK, v, "application/json")
}

fn percent_decode(s: &str) -> String {
    decode_percent(s, true)
}

/// `%XX` decoding; `plus_is_space` for query strings.
fn decode_percent(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if plus_is_space && b[i] == b'+' {
            b' '
        } else {
            b[i]
        });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---- content negotiation ---------------------------------------------------------------------

/// The response form a client asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Output {
    Json,
    Meta,
    Table(IncludeObject),
}

/// Media ranges of an Accept header, each as (type, params).
fn media_ranges(accept: &str) -> Vec<(String, HashMap<String, String>)> {
    accept
        .split(',')
        .map(|r| {
            let mut it = r.split(';');
            let ty = it.next().unwrap_or_default().trim().to_ascii_lowercase();
            let params = it
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .collect();
            (ty, params)
        })
        .collect()
}

fn negotiate(headers: &HeaderMap, q: &HashMap<String, String>) -> Result<Output, ApiError> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok(Output::Json);
    };
    for (ty, p) in media_ranges(accept) {
        if !matches!(
            ty.as_str(),
            "application/json" | "*/*" | "application/*" | "application/yaml" | ""
        ) {
            continue;
        }
        match p.get("as").map(String::as_str) {
            None => return Ok(Output::Json),
            Some("Table") if p.get("g").is_none_or(|g| g == "meta.k8s.io") => {
                return Ok(Output::Table(IncludeObject::parse(
                    q.get("includeObject").map(String::as_str),
                )));
            }
            Some("PartialObjectMetadata" | "PartialObjectMetadataList") => return Ok(Output::Meta),
            _ => continue,
        }
    }
    Err(ApiError::not_acceptable())
}

/// `Some("v2")`/`Some("v2beta1")` when the client asks for aggregated discovery.
fn wants_aggregated(headers: &HeaderMap) -> Option<&'static str> {
    let accept = headers.get(header::ACCEPT)?.to_str().ok()?;
    for (ty, p) in media_ranges(accept) {
        if ty != "application/json" {
            continue;
        }
        if p.get("as").map(String::as_str) == Some("APIGroupDiscoveryList")
            && p.get("g").map(String::as_str) == Some("apidiscovery.k8s.io")
        {
            match p.get("v").map(String::as_str) {
                Some("v2") => return Some("v2"),
                Some("v2beta1") => return Some("v2beta1"),
                _ => {}
            }
        } else if !p.contains_key("as") {
            return None;
        }
    }
    None
}

fn table_ct() -> &'static str {
    "application/json;as=Table;v=v1;g=meta.k8s.io"
}

fn present(obj: &Value, res: &ResourceInfo, version: &str) -> Value {
    let mut o = obj.clone();
    o["apiVersion"] = json!(res.api_version(version));
    o
}

/// A single object in the negotiated form.
fn object_response(
    code: StatusCode,
    obj: &Value,
    res: &ResourceInfo,
    version: &str,
    out: Output,
) -> Response {
    let o = present(obj, res, version);
    match out {
        Output::Json => json_response(code, &o, "application/json"),
        Output::Meta => json_response(
            code,
            &table::partial_metadata(&o),
            "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io",
        ),
        Output::Table(inc) => {
            let meta = json!({ "resourceVersion": o["metadata"]["resourceVersion"] });
            json_response(
                code,
                &table::render(res, version, &[o], inc, meta, true),
                table_ct(),
            )
        }
    }
}

// ---- routing -----------------------------------------------------------------------------------

fn dispatch(app: &Arc<App>, parts: &Parts, body: Bytes) -> Result<Response, ApiError> {
    let segs: Vec<String> = parts
        .uri
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| decode_percent(s, false))
        .collect();
    let q: HashMap<String, String> = Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
        .map(|Query(q)| q)
        .unwrap_or_default();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let get_only = || -> Result<(), ApiError> {
        if parts.method == Method::GET || parts.method == Method::HEAD {
            Ok(())
        } else {
            Err(ApiError::method_not_allowed())
        }
    };
    match s.as_slice() {
        ["version"] => {
            get_only()?;
            Ok(ok(&discovery::version_info()))
        }
        ["healthz" | "livez" | "readyz", ..] => {
            let mut r = Response::new(Body::from("ok"));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            Ok(r)
        }
        ["api"] | ["apis"] => {
            get_only()?;
            let core = s[0] == "api";
            let reg = &app
                .store
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .registry;
            if app.opts.aggregated_discovery
                && let Some(av) = wants_aggregated(&parts.headers)
            {
                let ct = format!(
                    "application/json;g=apidiscovery.k8s.io;v={av};as=APIGroupDiscoveryList"
                );
                return Ok(json_response(
                    StatusCode::OK,
                    &discovery::aggregated(reg, core, av),
                    &ct,
                ));
            }
            Ok(ok(&if core {
                discovery::api_versions(app.addr)
            } else {
                discovery::api_group_list(reg)
            }))
        }
        ["api", v] => {
            get_only()?;
            let reg = &app
                .store
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .registry;
            discovery::resource_list(reg, "", v)
                .map(|d| ok(&d))
                .ok_or_else(ApiError::no_route)
        }
        ["apis", g] => {
            get_only()?;
            let reg = &app
                .store
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .registry;
            discovery::api_group(reg, g)
                .map(|d| ok(&d))
                .ok_or_else(ApiError::no_route)
        }
        ["apis", g, v] => {
            get_only()?;
            let reg = &app
                .store
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .registry;
            discovery::resource_list(reg, g, v)
                .map(|d| ok(&d))
                .ok_or_else(ApiError::no_route)
        }
        ["openapi", "v3"] => {
            get_only()?;
            let reg = &app
                .store
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .registry;
            Ok(ok(&discovery::openapi_v3_index(reg)))
        }
        ["openapi", "v3", "api", v] => {
            get_only()?;
            let reg = &app
                .store
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .registry;
            discovery::openapi_v3_doc(reg, "", v)
                .map(|d| ok(&d))
                .ok_or_else(ApiError::no_route)
        }
        ["openapi", "v3", "apis", g, v] => {
            get_only()?;
            let reg = &app
                .store
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .registry;
            discovery::openapi_v3_doc(reg, g, v)
                .map(|d| ok(&d))
                .ok_or_else(ApiError::no_route)
        }
        [
            "apis",
            "authorization.k8s.io",
            "v1",
            "selfsubjectaccessreviews",
        ] => {
            if parts.method != Method::POST {
                return Err(ApiError::method_not_allowed());
            }
            let ct = parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/json");
            let mut review = decode(ct, &body)?;
            review["apiVersion"] = json!("authorization.k8s.io/v1");
            review["kind"] = json!("SelfSubjectAccessReview");
            review["status"] =
                json!({ "allowed": true, "reason": "the fake API server allows every request" });
            Ok(json_response(
                StatusCode::CREATED,
                &review,
                "application/json",
            ))
        }
        ["api", v, rest @ ..] => resource(app, parts, &q, body, "", v, rest),
        ["apis", g, v, rest @ ..] => resource(app, parts, &q, body, g, v, rest),
        _ => Err(ApiError::no_route()),
    }
}

struct ResPath<'a> {
    namespace: Option<&'a str>,
    plural: &'a str,
    name: Option<&'a str>,
    sub: Option<&'a str>,
}

fn parse_rest<'a>(group: &str, rest: &[&'a str]) -> Option<ResPath<'a>> {
    let namespaced_form = rest.len() >= 3
        && rest[0] == "namespaces"
        && !(group.is_empty() && rest.len() == 3 && matches!(rest[2], "status" | "finalize"));
    let (namespace, tail) = if namespaced_form {
        (Some(rest[1]), &rest[2..])
    } else {
        (None, rest)
    };
    match tail {
        [plural] => Some(ResPath {
            namespace,
            plural,
            name: None,
            sub: None,
        }),
        [plural, name] => Some(ResPath {
            namespace,
            plural,
            name: Some(name),
            sub: None,
        }),
        [plural, name, sub] => Some(ResPath {
            namespace,
            plural,
            name: Some(name),
            sub: Some(sub),
        }),
        _ => None,
    }
}

fn selectors(
    q: &HashMap<String, String>,
    res: &ResourceInfo,
) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(
        q.get("labelSelector")
            .map(String::as_str)
            .unwrap_or_default(),
    )
    .map_err(ApiError::bad_request)?;
    let fields = FieldSelector::parse(
        q.get("fieldSelector")
            .map(String::as_str)
            .unwrap_or_default(),
        &allowed_fields(&res.group, &res.plural),
    )
    .map_err(ApiError::bad_request)?;
    Ok((labels, fields))
}

fn flag(q: &HashMap<String, String>, key: &str) -> bool {
    matches!(q.get(key).map(String::as_str), Some("true" | "1" | ""))
}

fn manager(q: &HashMap<String, String>, headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    if let Some(m) = q.get("fieldManager").filter(|m| !m.is_empty()) {
        if m.len() > 128 {
            return Err(ApiError::new(
                422,
                "Invalid",
                "fieldManager: Too long: may not be more than 128 bytes",
            ));
        }
        return Ok(Some(m.clone()));
    }
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown");
    Ok(Some(ua.split('/').next().unwrap_or("unknown").to_string()).filter(|s| !s.is_empty()))
}

fn dry_run(q: &HashMap<String, String>) -> Result<bool, ApiError> {
    match q.get("dryRun").map(String::as_str) {
        None | Some("") => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "dryRun: Unsupported value: {other:?}: supported values: \"All\""
        ))),
    }
}

fn field_validation(q: &HashMap<String, String>) -> Result<FieldValidation, ApiError> {
    Ok(match q.get("fieldValidation").map(String::as_str) {
        None | Some("") | Some("Warn") => FieldValidation::Warn,
        Some("Ignore") => FieldValidation::Ignore,
        Some("Strict") => FieldValidation::Strict,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "fieldValidation: Unsupported value: {other:?}: supported values: \"Ignore\", \"Strict\", \"Warn\""
            )));
        }
    })
}

/// Adds `Warning: 299 - "<text>"` headers, as the apiserver does for dropped unknown fields.
fn with_warnings(mut r: Response, warnings: &[String]) -> Response {
    for w in warnings {
        let v = format!("299 - {}", serde_json::to_string(w).unwrap_or_default());
        if let Ok(v) = HeaderValue::from_str(&v) {
            r.headers_mut().append(header::WARNING, v);
        }
    }
    r
}

fn decode(content_type: &str, body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    let media = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if media == "application/vnd.kubernetes.protobuf" {
        return super::protobuf::decode(body)
            .map_err(|e| ApiError::new(415, "UnsupportedMediaType", e));
    }
    if media.contains("protobuf") || media.contains("cbor") {
        return Err(ApiError::unsupported_media_type(content_type));
    }
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return Ok(v);
    }
    if media.contains("yaml") {
        return serde_yaml_ng::from_slice::<Value>(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")));
    }
    Err(ApiError::bad_request(format!(
        "couldn't get version/kind; json parse error: {}",
        serde_json::from_slice::<Value>(body)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    )))
}

fn patch_kind(content_type: &str, force: bool) -> Result<PatchKind, ApiError> {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    Ok(match media.as_str() {
        "application/merge-patch+json" => PatchKind::Merge,
        "application/json-patch+json" => PatchKind::Json,
        "application/strategic-merge-patch+json" => PatchKind::Strategic,
        "application/apply-patch+yaml" => PatchKind::Apply { force },
        _ => return Err(ApiError::unsupported_media_type(content_type)),
    })
}

fn encode_continue(k: &(String, String)) -> String {
    B64URL.encode(format!("{}\u{0}{}", k.0, k.1))
}

fn decode_continue(s: &str) -> Result<(String, String), ApiError> {
    let bad = || ApiError::bad_request(format!("continue key is not valid: {s:?}"));
    let raw = B64URL.decode(s).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (a, b) = text.split_once('\u{0}').ok_or_else(bad)?;
    Ok((a.to_string(), b.to_string()))
}

#[allow(clippy::too_many_arguments)]
fn resource(
    app: &Arc<App>,
    parts: &Parts,
    q: &HashMap<String, String>,
    body: Bytes,
    group: &str,
    version: &str,
    rest: &[&str],
) -> Result<Response, ApiError> {
    let p = parse_rest(group, rest).ok_or_else(ApiError::no_route)?;
    let res = app
        .store
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .registry
        .find(group, version, p.plural)
        .ok_or_else(ApiError::no_route)?;
    if (!res.namespaced && p.namespace.is_some())
        || (res.namespaced && p.namespace.is_none() && p.name.is_some())
    {
        return Err(ApiError::no_route());
    }
    if let Some(sub) = p.sub
        && !(sub == "status" && res.has_status(version))
        && !(sub == "scale" && res.scale(version).is_some())
    {
        return Err(ApiError::no_route());
    }
    let status_only = p.sub == Some("status");
    let t = Target {
        res: res.clone(),
        version: version.to_string(),
        namespace: p.namespace.map(String::from),
    };
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let method = &parts.method;

    if let (Some("scale"), Some(name)) = (p.sub, p.name) {
        return scale(app, parts, q, &t, name, content_type, &body);
    }

    match (method, p.name) {
        (&Method::GET, None) => {
            let (labels, fields) = selectors(q, &res)?;
            let out = negotiate(&parts.headers, q)?;
            if flag(q, "watch") {
                let timeout = q
                    .get("timeoutSeconds")
                    .and_then(|s| s.parse::<u64>().ok())
                    .map(Duration::from_secs)
                    .unwrap_or(app.opts.default_watch_timeout);
                let (res2, v2) = (res.clone(), version.to_string());
                let (content_type, present): (String, watch::Presenter) = match out {
                    Output::Json => (
                        "application/json".into(),
                        Box::new(move |o, _| present(o, &res2, &v2)),
                    ),
                    Output::Meta => (
                        "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io".into(),
                        Box::new(move |o, _| table::partial_metadata(&present(o, &res2, &v2))),
                    ),
                    Output::Table(inc) => (
                        table_ct().into(),
                        Box::new(move |o, first| {
                            let o = present(o, &res2, &v2);
                            let meta =
                                json!({ "resourceVersion": o["metadata"]["resourceVersion"] });
                            table::render(&res2, &v2, &[o], inc, meta, first)
                        }),
                    ),
                };
                return watch::watch(
                    &app.store,
                    WatchRequest {
                        res: res.clone(),
                        version: version.to_string(),
                        namespace: t.namespace.clone(),
                        labels,
                        fields,
                        resource_version: q.get("resourceVersion").cloned(),
                        send_initial_events: flag(q, "sendInitialEvents"),
                        bookmarks: flag(q, "allowWatchBookmarks"),
                        timeout,
                        bookmark_interval: app.opts.bookmark_interval,
                        content_type,
                        present,
                    },
                );
            }
            let limit = q.get("limit").and_then(|s| s.parse::<usize>().ok());
            let cont = q
                .get("continue")
                .filter(|s| !s.is_empty())
                .map(|s| decode_continue(s))
                .transpose()?;
            let store = app.store.lock().unwrap_or_else(PoisonError::into_inner);
            let (items, next, remaining) = store.list(&t, &labels, &fields, limit, cont);
            let mut meta = json!({ "resourceVersion": store.resource_version().to_string() });
            drop(store);
            if let Some(k) = &next {
                meta["continue"] = json!(encode_continue(k));
                meta["remainingItemCount"] = json!(remaining);
            }
            let items: Vec<Value> = items.iter().map(|o| present(o, &res, version)).collect();
            Ok(match out {
                Output::Json => ok(&json!({
                    "kind": res.list_kind,
                    "apiVersion": res.api_version(version),
                    "metadata": meta,
                    "items": items,
                })),
                Output::Meta => json_response(
                    StatusCode::OK,
                    &json!({
                        "kind": "PartialObjectMetadataList",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": meta,
                        "items": items.iter().map(table::partial_metadata).collect::<Vec<_>>(),
                    }),
                    "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io",
                ),
                Output::Table(inc) => json_response(
                    StatusCode::OK,
                    &table::render(&res, version, &items, inc, meta, true),
                    table_ct(),
                ),
            })
        }
        (&Method::GET, Some(name)) => {
            let out = negotiate(&parts.headers, q)?;
            let obj = app
                .store
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&t, name)?;
            Ok(object_response(StatusCode::OK, &obj, &res, version, out))
        }
        (&Method::POST, None) => {
            if status_only || (res.namespaced && t.namespace.is_none()) {
                return Err(ApiError::method_not_allowed());
            }
            let out = negotiate(&parts.headers, q)?;
            let obj = decode(content_type, &body)?;
            let opts = WriteOpts {
                manager: manager(q, &parts.headers)?.unwrap_or_default(),
                dry_run: dry_run(q)?,
                field_validation: field_validation(q)?,
            };
            let mut store = app.store.lock().unwrap_or_else(PoisonError::into_inner);
            let created = store.create(&t, obj, &opts);
            let warnings = std::mem::take(&mut store.warnings);
            drop(store);
            let r = object_response(StatusCode::CREATED, &created?, &res, version, out);
            Ok(with_warnings(r, &warnings))
        }
        (&Method::PUT, Some(name)) => {
            let out = negotiate(&parts.headers, q)?;
            let obj = decode(content_type, &body)?;
            let opts = WriteOpts {
                manager: manager(q, &parts.headers)?.unwrap_or_default(),
                dry_run: dry_run(q)?,
                field_validation: field_validation(q)?,
            };
            let mut store = app.store.lock().unwrap_or_else(PoisonError::into_inner);
            let updated = store.replace(&t, name, obj, &opts, status_only);
            let warnings = std::mem::take(&mut store.warnings);
            drop(store);
            let r = object_response(StatusCode::OK, &updated?, &res, version, out);
            Ok(with_warnings(r, &warnings))
        }
        (&Method::PATCH, Some(name)) => {
            let out = negotiate(&parts.headers, q)?;
            let force = flag(q, "force");
            let kind = patch_kind(content_type, force)?;
            let is_apply = matches!(kind, PatchKind::Apply { .. });
            if force && !is_apply {
                return Err(ApiError::new(
                    422,
                    "Invalid",
                    "force: Forbidden: may not be specified for non-apply patch",
                ));
            }
            let manager = match q.get("fieldManager").filter(|m| !m.is_empty()) {
                Some(_) => manager(q, &parts.headers)?.unwrap_or_default(),
                None if is_apply => {
                    return Err(ApiError::new(
                        422,
                        "Invalid",
                        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                    ));
                }
                None => manager(q, &parts.headers)?.unwrap_or_default(),
            };
            let patch = decode(content_type, &body)?;
            let opts = WriteOpts {
                manager,
                dry_run: dry_run(q)?,
                field_validation: field_validation(q)?,
            };
            let mut store = app.store.lock().unwrap_or_else(PoisonError::into_inner);
            let existed = store.get(&t, name).is_ok();
            let patched = store.patch(&t, name, kind, &patch, &opts, status_only);
            let warnings = std::mem::take(&mut store.warnings);
            drop(store);
            let code = if existed {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            let r = object_response(code, &patched?, &res, version, out);
            Ok(with_warnings(r, &warnings))
        }
        (&Method::DELETE, name) => {
            if status_only {
                return Err(ApiError::method_not_allowed());
            }
            let body_opts: Value = if body.iter().all(u8::is_ascii_whitespace)
                || content_type.contains("protobuf")
            {
                json!({})
            } else {
                serde_json::from_slice(&body)
                    .map_err(|e| ApiError::bad_request(format!("decoding DeleteOptions: {e}")))?
            };
            let mut propagation = q
                .get("propagationPolicy")
                .cloned()
                .or_else(|| body_opts["propagationPolicy"].as_str().map(String::from));
            if body_opts["orphanDependents"].as_bool() == Some(true)
                || q.get("orphanDependents").map(String::as_str) == Some("true")
            {
                propagation = Some("Orphan".into());
            }
            let dry = dry_run(q)?
                || body_opts["dryRun"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == "All"));
            let opts = DeleteOpts {
                propagation,
                uid: body_opts["preconditions"]["uid"].as_str().map(String::from),
                resource_version: body_opts["preconditions"]["resourceVersion"]
                    .as_str()
                    .map(String::from),
                dry_run: dry,
            };
            match name {
                Some(name) => {
                    let outcome = app
                        .store
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .delete(&t, name, &opts)?;
                    Ok(match outcome {
                        Deleted::Gone(obj) => {
                            let subject = Subject::new(&res.group, &res.plural, name);
                            ok(&status::success(
                                &subject,
                                obj["metadata"]["uid"].as_str().unwrap_or_default(),
                            ))
                        }
                        Deleted::Pending(obj) => json_response(
                            StatusCode::ACCEPTED,
                            &present(&obj, &res, version),
                            "application/json",
                        ),
                    })
                }
                None => {
                    let (labels, fields) = selectors(q, &res)?;
                    let items = app
                        .store
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .delete_collection(&t, &labels, &fields, &opts);
                    let rv = app
                        .store
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .resource_version();
                    Ok(ok(&json!({
                        "kind": res.list_kind,
                        "apiVersion": res.api_version(version),
                        "metadata": { "resourceVersion": rv.to_string() },
                        "items": items.iter().map(|o| present(o, &res, version)).collect::<Vec<_>>(),
                    })))
                }
            }
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// `/scale`: GET, PUT and PATCH (merge, JSON and strategic patches of the Scale object).
fn scale(
    app: &Arc<App>,
    parts: &Parts,
    q: &HashMap<String, String>,
    t: &Target,
    name: &str,
    content_type: &str,
    body: &[u8],
) -> Result<Response, ApiError> {
    let mut store = app.store.lock().unwrap_or_else(PoisonError::into_inner);
    let current = store.get_scale(t, name)?;
    let wanted = match parts.method {
        Method::GET => return Ok(ok(&current)),
        Method::PUT => decode(content_type, body)?,
        Method::PATCH => {
            let patch = decode(content_type, body)?;
            let mut s = current.clone();
            match patch_kind(content_type, false)? {
                PatchKind::Json => super::patch::json_patch(&mut s, &patch)
                    .map_err(|e| ApiError::new(422, "Invalid", e))?,
                PatchKind::Strategic => super::patch::strategic_merge_patch(&mut s, &patch)
                    .map_err(|e| ApiError::new(422, "Invalid", e))?,
                _ => super::patch::merge_patch(&mut s, &patch),
            }
            s
        }
        _ => return Err(ApiError::method_not_allowed()),
    };
    let opts = WriteOpts {
        manager: manager(q, &parts.headers)?.unwrap_or_default(),
        dry_run: dry_run(q)?,
        field_validation: field_validation(q)?,
    };
    Ok(ok(&store.set_scale(t, name, &wanted, &opts)?))
}
