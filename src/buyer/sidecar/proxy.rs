//! The sidecar's HTTP endpoints and the paid forwarding of one request.
//!
//! - `POST /v1/chat/completions`, `/chat/completions`, `/v1/responses`, `/responses`: routed by
//!   the body's `model` (`paid/` and `openai/` prefixes stripped), rewritten to the upstream's
//!   remote model, forwarded with the path kept;
//! - `/upstream/<name>/<path>`: forwarded to upstream `<name>` as `<path>`, body untouched;
//! - `GET /status`, `POST /admin/reload`, `GET /healthz`, `GET /readyz`, `GET /metrics`,
//!   `GET /v1/models`.
//!
//! A 402 from the upstream is answered once: the agreed requirement is picked, then the
//! authorization is chosen and written ahead to the state file: the one already handed out for
//! the same request (method, path, body) if it is still valid, else — under the budget — a pool
//! auth or a live signature (a 402 asking for a window over `--max-timeout` is refused first).
//! The request is resent with the payment header. Outcome: < 400 → spent; ≥ 400 with a
//! settlement receipt naming a transaction → spent; ≥ 400 without, or any transport failure
//! after sending → handed out: the seller holds the signature, so it stays counted (and its
//! pool auth consumed) until it is provably unusable, and a retry resends it; a connection that
//! never reached the upstream → released (auth back in the pool, budget given back).
//! Responses (SSE included) stream through as they arrive.
//!
//! `/admin/*` answers loopback peers, and others only with the `--admin-token-file` bearer.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::{Value, json};

use super::App;
use super::budget::{BudgetRefusal, Reservation};
use super::metrics::RefusalReason;
use super::payment::{self, Mismatch, PaymentHeader};
use super::state::{HandedOut, request_key};
use super::upstream::{Upstream, normalize_model};
use crate::x402::codec::PAYMENT_REQUIRED;
use crate::x402::wire::{ExactEvmPayload, Requirement, parse_402, read_settlement};

/// Largest request body accepted (LLM requests with images can be large).
pub const MAX_BODY: usize = 32 * 1024 * 1024;
/// Largest 402 body read.
const MAX_402_BODY: usize = 256 * 1024;

/// The router over `app`.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(model_routed))
        .route("/chat/completions", post(model_routed))
        .route("/v1/responses", post(model_routed))
        .route("/responses", post(model_routed))
        .route("/upstream/{*rest}", any(by_name))
        .route("/status", get(status))
        .route("/admin/reload", post(admin_reload))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/v1/models", get(models))
        .fallback(|| async {
            error_json(
                StatusCode::NOT_FOUND,
                "not_found",
                "not found: the sidecar serves /v1/chat/completions, /v1/responses, /upstream/<name>/…",
                None,
            )
        })
        .with_state(app)
}

/// An OpenAI-style error body: `{"error": {"message", "type", "code", "upstream"?}}`.
pub fn error_json(
    status: StatusCode,
    code: &str,
    message: impl Into<String>,
    upstream: Option<&str>,
) -> Response {
    let mut err = json!({
        "message": message.into(),
        "type": "x402_buyer_error",
        "code": code,
    });
    if let Some(u) = upstream {
        err["upstream"] = Value::String(u.to_owned());
    }
    (status, axum::Json(json!({ "error": err }))).into_response()
}

async fn status(State(app): State<Arc<App>>) -> Response {
    let map: serde_json::Map<String, Value> = app
        .statuses()
        .into_iter()
        .map(|s| {
            let name = s.name.clone();
            (name, serde_json::to_value(s).unwrap_or(Value::Null))
        })
        .collect();
    axum::Json(Value::Object(map)).into_response()
}

/// The refusal of an `/admin/*` request, unless it may: from a loopback peer, or with `Authorization: Bearer
/// <token>` when a token is configured (`--admin-token-file`).
fn admin_allowed(app: &App, peer: std::net::SocketAddr, headers: &HeaderMap) -> Option<Response> {
    let loopback = match peer.ip() {
        std::net::IpAddr::V4(v4) => v4.is_loopback(),
        std::net::IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    };
    if loopback {
        return None;
    }
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match (&app.admin_token, given) {
        (Some(want), Some(got)) if constant_time_eq(want.as_bytes(), got.as_bytes()) => None,
        (Some(_), _) => Some(error_json(
            StatusCode::UNAUTHORIZED,
            "admin_unauthorized",
            "the admin endpoints need `Authorization: Bearer <token>` with the token of --admin-token-file when called from off this host",
            None,
        )),
        (None, _) => Some(error_json(
            StatusCode::FORBIDDEN,
            "admin_forbidden",
            "the admin endpoints answer only on loopback; to call them from elsewhere, start the sidecar with --admin-token-file (OBOL_BUYER_ADMIN_TOKEN_FILE) and send `Authorization: Bearer <token>`",
            None,
        )),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn admin_reload(
    State(app): State<Arc<App>>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if let Some(refusal) = admin_allowed(&app, peer, &headers) {
        return refusal;
    }
    let status = if app.trigger_reload() {
        "reload triggered"
    } else {
        "reload already pending"
    };
    axum::Json(json!({ "status": status })).into_response()
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    if app.table.load().loaded {
        axum::Json(json!({"status": "ready"})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "not ready: upstreams not loaded"})),
        )
            .into_response()
    }
}

async fn metrics_text(State(app): State<Arc<App>>) -> Response {
    (
        [(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
        app.metrics.encode(),
    )
        .into_response()
}

async fn models(State(app): State<Arc<App>>) -> Response {
    let data: Vec<Value> = app
        .table
        .load()
        .upstreams
        .values()
        .map(|u| json!({"id": u.public_model, "object": "model", "owned_by": u.name}))
        .collect();
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

async fn read_body(body: Body) -> Result<Bytes, Response> {
    axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        error_json(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            format!("the request body is unreadable or larger than {MAX_BODY} bytes"),
            None,
        )
    })
}

/// The OpenAI-compatible routes.
async fn model_routed(State(app): State<Arc<App>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = match read_body(body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut json = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => m,
        _ => {
            return error_json(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "the request body is not a JSON object",
                None,
            );
        }
    };
    let Some(model) = json.get("model").and_then(Value::as_str) else {
        return error_json(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the request has no `model`",
            None,
        );
    };
    let table = app.table.load();
    let Some(up) = table.by_model(model).cloned() else {
        return error_json(
            StatusCode::NOT_FOUND,
            "model_not_found",
            format!(
                "no purchased upstream mapped for requested model {:?}",
                normalize_model(model).chars().take(200).collect::<String>()
            ),
            None,
        );
    };
    drop(table);
    up.series.requests.inc();
    json.insert("model".into(), Value::String(up.remote_model.clone()));
    let body = match serde_json::to_vec(&json) {
        Ok(b) => Bytes::from(b),
        Err(_) => bytes,
    };
    let path = parts
        .uri
        .path_and_query()
        .map_or(parts.uri.path(), |p| p.as_str());
    forward(&app, &up, &parts.method, &parts.headers, path, body).await
}

/// `/upstream/<name>/<path>`.
async fn by_name(State(app): State<Arc<App>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let rest = parts
        .uri
        .path()
        .strip_prefix("/upstream/")
        .unwrap_or_default();
    let (name, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let Some(up) = app.table.load().upstreams.get(name).cloned() else {
        return error_json(
            StatusCode::NOT_FOUND,
            "upstream_not_found",
            format!(
                "no purchased upstream named {:?}",
                name.chars().take(100).collect::<String>()
            ),
            None,
        );
    };
    let path = match parts.uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    };
    let bytes = match read_body(body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    forward(&app, &up, &parts.method, &parts.headers, &path, bytes).await
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn end_to_end(src: &HeaderMap, dst: &mut HeaderMap, also_drop: &[&str]) {
    let named: Vec<String> = src
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    for (k, v) in src {
        let name = k.as_str();
        if HOP_BY_HOP.contains(&name)
            || also_drop.contains(&name)
            || named.iter().any(|n| n == name)
        {
            continue;
        }
        dst.append(k.clone(), v.clone());
    }
}

/// What goes upstream: end-to-end headers without the client's credentials, its own payment
/// headers, `Host`, `Content-Length` (the body may have been rewritten) and `Accept-Encoding`
/// (a 402 must be readable).
fn upstream_headers(src: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(src.len());
    end_to_end(
        src,
        &mut out,
        &[
            "host",
            "content-length",
            "authorization",
            "cookie",
            "accept-encoding",
            "payment-signature",
            "x-payment",
        ],
    );
    out
}

/// The upstream's answer, streamed as it arrives.
fn pass_through(resp: reqwest::Response) -> Response {
    let status = resp.status();
    let mut headers = HeaderMap::with_capacity(resp.headers().len());
    end_to_end(resp.headers(), &mut headers, &[]);
    let mut out = Response::new(Body::from_stream(resp.bytes_stream()));
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    out
}

async fn send(
    app: &App,
    method: &Method,
    url: &str,
    headers: &HeaderMap,
    body: Bytes,
    payment: Option<&PaymentHeader>,
) -> Result<reqwest::Response, reqwest::Error> {
    let mut req = app
        .http
        .request(method.clone(), url)
        .headers(headers.clone());
    if let Some(p) = payment {
        req = req.header(p.name, p.value.as_str());
    }
    if !body.is_empty() {
        req = req.body(body);
    }
    req.send().await
}

fn unavailable(up: &Upstream, err: &reqwest::Error, detail: &str) -> Response {
    tracing::warn!(upstream = %up.name, "upstream unavailable: {}", describe(err));
    error_json(
        StatusCode::BAD_GATEWAY,
        "upstream_unavailable",
        format!("the upstream is unavailable ({}); {detail}", describe(err)),
        Some(&up.name),
    )
}

fn describe(err: &reqwest::Error) -> String {
    let what = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(err);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        what.to_owned()
    } else {
        format!("{what}: {detail}")
    }
}

async fn read_limited(mut resp: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut buf = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        if buf.len() + chunk.len() > limit {
            break;
        }
        buf.extend_from_slice(&chunk);
    }
    buf
}

fn refuse(up: &Upstream, reason: RefusalReason, status: StatusCode, message: String) -> Response {
    up.series.refused(reason);
    match reason {
        // Expected in normal operation, possibly at the request rate: the metric counts them.
        RefusalReason::BudgetDay | RefusalReason::BudgetTotal | RefusalReason::PoolExhausted => {
            tracing::debug!(upstream = %up.name, reason = reason.as_str(), "payment refused: {message}");
        }
        _ => {
            tracing::warn!(upstream = %up.name, reason = reason.as_str(), "payment refused: {message}");
        }
    }
    error_json(status, reason.as_str(), message, Some(&up.name))
}

fn budget_refusal(up: &Upstream, r: &BudgetRefusal) -> Response {
    let message = format!("{r}; nothing was paid");
    match r {
        BudgetRefusal::Day { retry_after, .. } => {
            let mut resp = refuse(
                up,
                RefusalReason::BudgetDay,
                StatusCode::TOO_MANY_REQUESTS,
                message,
            );
            if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            resp
        }
        BudgetRefusal::Total { .. } => refuse(
            up,
            RefusalReason::BudgetTotal,
            StatusCode::FORBIDDEN,
            message,
        ),
    }
}

fn exhausted_message(up: &Upstream, app: &App) -> String {
    let why = if !up.live_signing {
        "live signing is off for this upstream".to_owned()
    } else if let Err(why) = &up.live_check {
        format!("live signing is unavailable: {why}")
    } else if app.signer.is_none() {
        "no wallet is configured for live signing".to_owned()
    } else {
        "live signing is available".to_owned()
    };
    format!("the pool of pre-signed authorizations is exhausted ({why}); nothing was paid")
}

/// One payment of an upstream in flight: the authorization sent (its nonce), and when it was
/// newly handed out for this request, the budget reservation and the pool auth held. Resolved
/// exactly once:
/// - [`Ticket::spent`]: the seller served or settled: counted for good;
/// - [`Ticket::handed_out`]: the seller holds it without a known outcome: it stays counted (and
///   its pool auth consumed) until it is provably unusable, and a retry resends it;
/// - [`Ticket::release`]: it never reached the seller: everything given back.
///
/// A ticket dropped unresolved (the client went away) counts as handed out if the payment was
/// sent and is released otherwise.
struct Ticket {
    app: Arc<App>,
    up: Arc<Upstream>,
    /// `None`: an authorization handed out earlier is resent (already counted).
    reservation: Option<Reservation>,
    auth_key: Option<String>,
    nonce: String,
    sent: bool,
    done: bool,
}

impl Ticket {
    /// The payment was spent: the write-ahead record stands, the authorization is no longer
    /// tracked as handed out.
    async fn spent(mut self) {
        self.done = true;
        if let Some(k) = &self.auth_key {
            self.up.pool.confirm(k);
        }
        self.app.store.settled(&self.up.name, &self.nonce);
        self.up.series.spent_amount(self.up.price);
        self.app.refresh_gauges(&self.up);
        if let Err(e) = self.app.store.persist().await {
            // On disk it stays handed out: a retry after a restart may resend it once.
            tracing::warn!(upstream = %self.up.name, "{e}");
        }
    }

    /// The seller holds the authorization and its outcome is not known.
    fn handed_out(mut self) {
        self.done = true;
        self.keep();
    }

    fn keep(&self) {
        if let Some(k) = &self.auth_key {
            self.up.pool.confirm(k);
        }
        // A resent authorization that came back without an outcome again is not resent again.
        let reusable = self.reservation.is_some();
        self.app
            .store
            .back_from_seller(&self.up.name, &self.nonce, reusable);
        self.app.refresh_gauges(&self.up);
    }

    fn undo(&self) {
        let Some(reservation) = &self.reservation else {
            // Resent: it was handed out before this request and stays so.
            self.app
                .store
                .back_from_seller(&self.up.name, &self.nonce, true);
            return;
        };
        let now = self.app.clock.now();
        self.app.store.not_handed_out(&self.up.name, &self.nonce);
        if let Some(k) = &self.auth_key {
            // State first: a reload in between then still sees the key as held.
            self.app.store.unconsume(&self.up.name, k);
            self.up.pool.release(k);
        }
        self.app.store.cancel(&self.up.name, reservation, now);
        self.app.refresh_gauges(&self.up);
    }

    /// The payment never reached the seller: auth back to the pool, budget given back.
    async fn release(mut self) {
        self.done = true;
        self.undo();
        if let Err(e) = self.app.store.persist().await {
            // The write-ahead record stays on disk: after a restart the auth counts as spent.
            tracing::warn!(upstream = %self.up.name, "{e}");
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if self.sent {
            tracing::warn!(
                upstream = %self.up.name,
                "request abandoned after the payment was sent: it stays counted until provably unusable"
            );
            self.keep();
        } else {
            self.undo();
            let app = Arc::clone(&self.app);
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _ = app.store.persist().await;
                });
            }
        }
    }
}

/// Whether an authorization handed out earlier still pays the agreed terms of `up`.
fn same_terms(h: &HandedOut, up: &Upstream) -> bool {
    let a = &h.payload.authorization;
    h.chain.eq_ignore_ascii_case(&up.chain)
        && h.asset.parse::<alloy_primitives::Address>().ok() == Some(up.asset)
        && a.to.parse::<alloy_primitives::Address>().ok() == Some(up.pay_to)
        && crate::x402::amount::parse_atomic(a.value.trim()).ok() == Some(up.price)
}

/// The authorization for this request, counted and written ahead: the one handed out earlier
/// for the same request if it is still valid, else a pool auth or a live signature under the
/// caps. `Err` is the refusal to answer (nothing was handed out).
async fn authorize(
    app: &Arc<App>,
    up: &Arc<Upstream>,
    requirement: &Requirement,
    request: &str,
) -> Result<(Ticket, ExactEvmPayload), Response> {
    let now = app.clock.now();
    if let Some(h) = app.store.claim_handed_out(&up.name, request, now) {
        if same_terms(&h, up) {
            tracing::info!(upstream = %up.name, "retry of a request: resending its authorization");
            let ticket = Ticket {
                app: Arc::clone(app),
                up: Arc::clone(up),
                reservation: None,
                auth_key: None,
                nonce: h.nonce().to_owned(),
                sent: false,
                done: false,
            };
            return Ok((ticket, h.payload));
        }
        // Other terms now (a reload changed them): not resent; it stays counted.
        app.store.back_from_seller(&up.name, h.nonce(), false);
    }
    let live_usable = up.live_signing && up.live_check.is_ok() && app.signer.is_some();
    let remaining = up.pool.counts().remaining;
    if !live_usable && remaining == 0 {
        // Known exhausted: refuse without touching the budget or the state file.
        return Err(refuse(
            up,
            RefusalReason::PoolExhausted,
            StatusCode::BAD_GATEWAY,
            exhausted_message(up, app),
        ));
    }
    if live_usable && remaining == 0 && requirement.max_timeout_seconds > app.max_timeout {
        return Err(refuse(
            up,
            RefusalReason::NoMatchingRequirement,
            StatusCode::BAD_GATEWAY,
            format!(
                "{}; nothing was signed",
                crate::buyer::policy::window_too_long(
                    requirement.max_timeout_seconds,
                    app.max_timeout
                )
            ),
        ));
    }
    let reservation = match app.store.reserve(&up.name, &up.limits, up.price, now) {
        Ok(r) => r,
        Err(r) => return Err(budget_refusal(up, &r)),
    };
    let mut ticket = Ticket {
        app: Arc::clone(app),
        up: Arc::clone(up),
        reservation: Some(reservation),
        auth_key: None,
        nonce: String::new(),
        sent: false,
        done: false,
    };
    let (payload, pool_key) = if let Some(auth) = up.pool.hold(now) {
        app.store.mark_consumed(&up.name, &auth.key);
        ticket.auth_key = Some(auth.key.clone());
        (auth.payload.clone(), Some(auth.key.clone()))
    } else if let (true, Some(wallet)) = (live_usable, app.signer.as_deref()) {
        match payment::sign_live(requirement, up, wallet, now, app.max_timeout).await {
            Ok(evm) => (evm, None),
            Err(e) => {
                ticket.release().await;
                return Err(refuse(
                    up,
                    RefusalReason::Signer,
                    StatusCode::BAD_GATEWAY,
                    format!("live signing failed: {e}; nothing was paid"),
                ));
            }
        }
    } else {
        ticket.release().await;
        return Err(refuse(
            up,
            RefusalReason::PoolExhausted,
            StatusCode::BAD_GATEWAY,
            exhausted_message(up, app),
        ));
    };
    let valid_before = payload
        .authorization
        .valid_before
        .trim()
        .parse::<u64>()
        .unwrap_or(u64::MAX);
    ticket.nonce = payload.authorization.nonce.clone();
    app.store.hand_out(
        &up.name,
        HandedOut {
            request: request.to_owned(),
            chain: up.chain.clone(),
            asset: up.asset.to_string(),
            payload: payload.clone(),
            valid_before,
            amount: reservation.amount,
            day: reservation.day,
            pool_key,
            in_flight: true,
        },
    );
    app.refresh_gauges(up);
    if let Err(e) = app.store.persist().await {
        ticket.release().await;
        return Err(refuse(
            up,
            RefusalReason::State,
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{e}; nothing was paid"),
        ));
    }
    Ok((ticket, payload))
}

/// Forwards a request; pays once if the upstream asks.
async fn forward(
    app: &Arc<App>,
    up: &Arc<Upstream>,
    method: &Method,
    headers: &HeaderMap,
    path: &str,
    body: Bytes,
) -> Response {
    let url = format!("{}{path}", up.url);
    let headers = upstream_headers(headers);
    let first = match send(app, method, &url, &headers, body.clone(), None).await {
        Ok(r) => r,
        Err(e) => return unavailable(up, &e, "nothing was paid"),
    };
    if first.status() != StatusCode::PAYMENT_REQUIRED {
        return pass_through(first);
    }

    // The 402: what does the seller ask?
    let header_402 = first
        .headers()
        .get(PAYMENT_REQUIRED)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body_402 = read_limited(first, MAX_402_BODY).await;
    let required = match parse_402(header_402.as_deref(), &body_402) {
        Ok(r) => r,
        Err(e) => {
            return error_json(
                StatusCode::BAD_GATEWAY,
                "invalid_402",
                format!(
                    "the upstream answered 402 but its payment requirements cannot be read ({e}); nothing was paid"
                ),
                Some(&up.name),
            );
        }
    };
    let requirement = match payment::pick(up, &required, &app.registry) {
        Ok(r) => r,
        Err(m) => {
            let reason = match m {
                Mismatch::PriceChanged { .. } => RefusalReason::PriceChanged,
                Mismatch::NoMatch { .. } => RefusalReason::NoMatchingRequirement,
            };
            return refuse(up, reason, StatusCode::BAD_GATEWAY, m.message(up));
        }
    };

    // Caps first, then an auth (or a signature), written ahead before anything is sent.
    let request = request_key(method.as_str(), path, &body);
    let (mut ticket, payload) = match authorize(app, up, &requirement, &request).await {
        Ok(t) => t,
        Err(refusal) => return refusal,
    };
    let payment_header = payment::header(&required, &requirement, payload);

    // Pay: the same request again, with the payment.
    up.series.attempts.inc();
    ticket.sent = true;
    let paid = send(app, method, &url, &headers, body, Some(&payment_header)).await;
    drop(payment_header);
    let resp = match paid {
        Ok(r) => r,
        Err(e) if e.is_connect() => {
            up.series.failure.inc();
            ticket.release().await;
            return unavailable(up, &e, "the payment was not delivered; nothing was paid");
        }
        Err(e) => {
            up.series.failure.inc();
            ticket.handed_out();
            return unavailable(
                up,
                &e,
                "the payment's outcome is unknown: it stays counted until it is provably unusable, and a retry of this request resends it",
            );
        }
    };
    let receipt = read_settlement(|name| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    })
    .and_then(Result::ok);
    let status = resp.status();
    if status.as_u16() < 400 {
        up.series.success.inc();
        if !receipt.as_ref().is_some_and(|r| r.success) {
            up.series.unsettled.inc();
            tracing::info!(upstream = %up.name, "auth consumed without observed settlement");
        }
        ticket.spent().await;
    } else if receipt.as_ref().is_some_and(|r| !r.transaction.is_empty()) {
        up.series.failure.inc();
        tracing::warn!(
            upstream = %up.name,
            status = status.as_u16(),
            "upstream error after settlement: the payment is spent"
        );
        ticket.spent().await;
    } else {
        up.series.failure.inc();
        tracing::info!(
            upstream = %up.name,
            status = status.as_u16(),
            "paid request failed without settlement: the seller holds the authorization; it stays counted until provably unusable"
        );
        ticket.handed_out();
    }
    pass_through(resp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderName;

    #[test]
    fn client_credentials_and_payment_headers_are_not_forwarded() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("authorization", "Bearer sk-litellm"),
            ("payment-signature", "x"),
            ("x-payment", "y"),
            ("host", "buyer:8402"),
            ("content-length", "12"),
            ("accept-encoding", "gzip"),
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "1"),
            ("content-type", "application/json"),
            ("x-request-id", "abc"),
        ] {
            h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        let out = upstream_headers(&h);
        let mut names: Vec<_> = out.keys().map(|k| k.as_str()).collect();
        names.sort();
        assert_eq!(names, ["content-type", "x-request-id"]);
    }
}
