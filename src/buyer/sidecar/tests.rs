//! The sidecar in-process against a scripted upstream: the x402 v1 path (`X-PAYMENT`), the
//! outcome rules (< 400 spent, ≥ 400 with a receipt spent, ≥ 400 without handed out and
//! resent on a retry, nothing delivered released), reload semantics and refusals. The v2 path against the real reference
//! components is in `tests/sidecar.rs`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::*;
use crate::x402::codec::{X_PAYMENT, X_PAYMENT_RESPONSE, decode_header, encode_header};

const PAY_TO: &str = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";
const USDC: &str = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
const SIG: &str = "0x2d6a7588d6acca505cbf0d9a4a227e0c52c6c34008c8e8986a1283259764173608a2ce6496642e377d6da8dbbf5836e9bd15092f9ecab05ded3d6293af148b571c";

/// What the scripted upstream answers to a paid request.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Paid {
    Ok,
    ErrorNoReceipt,
    ErrorWithTx,
}

#[derive(Default)]
struct Script {
    paid: Option<Paid>,
    price: Option<String>,
    /// (path, model, payment header) of every request.
    seen: Vec<(String, Option<String>, Option<String>)>,
}

struct Upstream {
    url: String,
    script: Arc<Mutex<Script>>,
}

impl Upstream {
    async fn start() -> Upstream {
        let script = Arc::new(Mutex::new(Script {
            paid: Some(Paid::Ok),
            ..Default::default()
        }));
        let s = Arc::clone(&script);
        let app = axum::Router::new().fallback(
            move |uri: axum::http::Uri, headers: HeaderMap, body: axum::body::Bytes| {
                let s = Arc::clone(&s);
                async move { answer(&s, uri.path(), &headers, &body) }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Upstream { url, script }
    }

    fn set(&self, f: impl FnOnce(&mut Script)) {
        f(&mut self.script.lock().unwrap());
    }

    fn seen(&self) -> Vec<(String, Option<String>, Option<String>)> {
        self.script.lock().unwrap().seen.clone()
    }
}

fn answer(script: &Mutex<Script>, path: &str, headers: &HeaderMap, body: &[u8]) -> Response {
    let mut s = script.lock().unwrap();
    let model = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("model").and_then(Value::as_str).map(str::to_owned));
    let payment = headers
        .get(X_PAYMENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    s.seen
        .push((path.to_owned(), model.clone(), payment.clone()));
    if path.starts_with("/free") {
        return axum::Json(json!({"free": true, "model": model})).into_response();
    }
    let Some(_) = payment else {
        let price = s.price.clone().unwrap_or_else(|| "1000".into());
        // An x402 v1 402: the requirements in the body, `maxAmountRequired`, a network name.
        return (
            StatusCode::PAYMENT_REQUIRED,
            axum::Json(json!({
                "x402Version": 1,
                "error": "X-PAYMENT header is required",
                "accepts": [{
                    "scheme": "exact", "network": "base-sepolia", "maxAmountRequired": price,
                    "asset": USDC, "payTo": PAY_TO, "resource": format!("http://up{path}"),
                    "description": "", "maxTimeoutSeconds": 60,
                    "extra": {"name": "USDC", "version": "2"}
                }]
            })),
        )
            .into_response();
    };
    let receipt = |tx: &str| {
        encode_header(
            &json!({"success": !tx.is_empty(), "transaction": tx, "network": "base-sepolia"}),
        )
    };
    match s.paid.unwrap_or(Paid::Ok) {
        Paid::Ok => (
            [(X_PAYMENT_RESPONSE, receipt("0xabc"))],
            axum::Json(json!({"model": model, "paid": true})),
        )
            .into_response(),
        Paid::ErrorNoReceipt => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        Paid::ErrorWithTx => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(X_PAYMENT_RESPONSE, receipt("0xdef"))],
            "boom after settlement",
        )
            .into_response(),
    }
}

struct Harness {
    dir: tempfile::TempDir,
    app: Arc<App>,
    url: String,
    http: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

fn auth(nonce: &str, value: &str) -> Value {
    json!({"signature": SIG, "from": "0x857b06519E91e3A54538791bDbb0E22373e36b66", "to": PAY_TO,
           "value": value, "validAfter": "0", "validBefore": "4294967295", "nonce": nonce})
}

fn write_upstream(
    dir: &std::path::Path,
    name: &str,
    url: &str,
    model: &str,
    extra: Value,
    auths: &[Value],
) {
    let mut c = json!({"url": url, "remoteModel": model, "network": "base-sepolia",
                       "payTo": PAY_TO, "asset": USDC, "price": "1000"});
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    std::fs::create_dir_all(dir.join("config")).unwrap();
    std::fs::create_dir_all(dir.join("auths")).unwrap();
    std::fs::write(dir.join(format!("config/{name}.json")), c.to_string()).unwrap();
    std::fs::write(
        dir.join(format!("auths/{name}.json")),
        Value::from(auths.to_vec()).to_string(),
    )
    .unwrap();
}

/// The sidecar's config over the files under `dir`.
fn config(dir: &std::path::Path, admin_token: Option<&str>) -> SidecarConfig {
    SidecarConfig {
        listen: "127.0.0.1:0".into(),
        state_path: dir.join("state.json"),
        reload_interval: Duration::from_secs(3600),
        registry: Registry::builtin(),
        signer: None,
        max_amount: "0.10".into(),
        sources: vec![Arc::new(FileSource {
            config_dir: dir.join("config"),
            auths_dir: dir.join("auths"),
        })],
        clock: Arc::new(SystemClock),
        max_timeout: 3600,
        admin_token: admin_token.map(str::to_owned),
    }
}

impl Harness {
    async fn start(dir: tempfile::TempDir) -> Harness {
        let config = config(dir.path(), None);
        let sidecar = Sidecar::new(config).await.unwrap();
        let app = Arc::clone(&sidecar.app);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(sidecar.serve_on(listener, async move {
            let _ = stopped.await;
        }));
        Harness {
            dir,
            app,
            url,
            http: reqwest::Client::new(),
            _stop: stop,
        }
    }

    async fn post(&self, path: &str, body: Value) -> (u16, HashMap<String, String>, String) {
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let headers = r
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        (status, headers, r.text().await.unwrap())
    }

    async fn chat(&self, model: &str) -> (u16, HashMap<String, String>, String) {
        self.post(
            "/v1/chat/completions",
            json!({"model": model, "messages": []}),
        )
        .await
    }

    fn status(&self, name: &str) -> status::UpstreamStatus {
        self.app
            .statuses()
            .into_iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no upstream {name}"))
    }
}

#[tokio::test]
async fn a_v1_402_is_paid_with_x_payment_and_the_pool_counts_down() {
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    write_upstream(
        dir.path(),
        "qwen",
        &up.url,
        "qwen3:32b",
        json!({}),
        &[
            auth("0x01", "1000"),
            auth("0x02", "1000"),
            auth("0x03", "999"),
        ],
    );
    let h = Harness::start(dir).await;
    let s = h.status("qwen");
    assert_eq!(
        (s.remaining, s.spent),
        (2, 0),
        "the auth of the wrong value is not usable"
    );

    let (status, headers, body) = h.chat("paid/qwen3:32b").await;
    assert_eq!(status, 200, "{body}");
    assert!(headers.contains_key("x-payment-response"));
    let seen = up.seen();
    assert_eq!(seen.len(), 2, "one probe, one paid retry");
    assert_eq!(seen[0].2, None);
    assert_eq!(seen[1].1.as_deref(), Some("qwen3:32b"), "model rewritten");
    let payment: Value = decode_header(seen[1].2.as_deref().unwrap()).unwrap();
    assert_eq!(payment["x402Version"], 1);
    assert_eq!(payment["scheme"], "exact");
    assert_eq!(payment["network"], "base-sepolia");
    assert_eq!(payment["payload"]["authorization"]["nonce"], "0x01");
    assert_eq!(payment["payload"]["signature"], SIG);

    // /chat/completions keeps its path.
    let (status, _, body) = h
        .post("/chat/completions", json!({"model": "openai/qwen3:32b"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(up.seen().last().unwrap().0, "/chat/completions");
    let s = h.status("qwen");
    assert_eq!((s.remaining, s.spent, s.in_flight), (0, 2, 0));
    let (status, _, body) = h.chat("qwen3:32b").await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("auth_pool_exhausted"), "{body}");

    let state: Value =
        serde_json::from_slice(&std::fs::read(h.dir.path().join("state.json")).unwrap()).unwrap();
    assert_eq!(state["consumed"]["qwen"], json!(["0x01", "0x02"]));
}

#[tokio::test]
async fn outcomes_decide_spent_or_released() {
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    write_upstream(
        dir.path(),
        "qwen",
        &up.url,
        "m",
        json!({"maxTotal": 10}),
        &[auth("0x01", "1000"), auth("0x02", "1000")],
    );
    let h = Harness::start(dir).await;

    // ≥ 400 without a receipt: the seller holds 0x01, so it stays counted and consumed.
    up.set(|s| s.paid = Some(Paid::ErrorNoReceipt));
    let (status, _, body) = h.chat("m").await;
    assert_eq!((status, body.as_str()), (500, "boom"));
    let s = h.status("qwen");
    assert_eq!(
        (s.remaining, s.spent, s.handed_out, s.budget.payments_total),
        (1, 1, 1, 1)
    );
    // A retry of the same request resends 0x01 and costs nothing more.
    let (status, _, _) = h.chat("m").await;
    assert_eq!(status, 500);
    let s = h.status("qwen");
    assert_eq!(
        (s.remaining, s.handed_out, s.budget.payments_total),
        (1, 1, 1)
    );

    // Resent and refused again: 0x01 stays counted but is not resent a third time; the next
    // try takes 0x02. ≥ 400 with a receipt naming a transaction: spent for good.
    up.set(|s| s.paid = Some(Paid::ErrorWithTx));
    let (status, _, _) = h.chat("m").await;
    assert_eq!(status, 500);
    let s = h.status("qwen");
    assert_eq!(
        (s.remaining, s.spent, s.handed_out, s.budget.payments_total),
        (0, 2, 1, 2)
    );
    let paid: Vec<String> = up
        .seen()
        .iter()
        .filter_map(|(_, _, p)| p.clone())
        .map(|p| {
            decode_header::<Value>(&p).unwrap()["payload"]["authorization"]["nonce"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(paid, ["0x01", "0x01", "0x02"]);

    let m = h.app.metrics.encode();
    assert!(m.contains("obol_x402_buyer_payment_failure_total{chain=\"eip155:84532\",remote_model=\"m\",upstream=\"qwen\"} 3"), "{m}");
    assert!(m.contains("obol_x402_buyer_payment_attempts_total{chain=\"eip155:84532\",remote_model=\"m\",upstream=\"qwen\"} 3"), "{m}");
}

#[tokio::test]
async fn an_unreachable_upstream_spends_nothing_and_refusals_touch_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let up = Upstream::start().await;
    write_upstream(
        dir.path(),
        "dead",
        &dead,
        "dead-model",
        json!({}),
        &[auth("0x01", "1000")],
    );
    write_upstream(
        dir.path(),
        "priced",
        &up.url,
        "priced-model",
        json!({}),
        &[auth("0x02", "1000")],
    );
    let h = Harness::start(dir).await;

    let (status, _, body) = h.chat("dead-model").await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body.contains("upstream_unavailable") && body.contains("nothing was paid"),
        "{body}"
    );
    assert_eq!(h.status("dead").remaining, 1);

    up.set(|s| s.price = Some("1001".into()));
    let (status, _, body) = h.chat("priced-model").await;
    assert_eq!(status, 502);
    assert!(
        body.contains("price_changed") && body.contains("1001"),
        "{body}"
    );
    let s = h.status("priced");
    assert_eq!((s.remaining, s.budget.payments_total), (1, 0));
    assert!(
        !h.dir.path().join("state.json").exists(),
        "nothing was written"
    );

    let (status, _, body) = h.chat("nope").await;
    assert_eq!(status, 404);
    assert!(body.contains("no purchased upstream mapped"), "{body}");
    let (status, _, body) = h
        .post("/v1/chat/completions", json!(["not an object"]))
        .await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn reloads_keep_consumed_auths_replace_models_and_keep_broken_upstreams() {
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    write_upstream(
        dir.path(),
        "a",
        &up.url,
        "old-model",
        json!({}),
        &[auth("0x01", "1000"), auth("0x02", "1000")],
    );
    let path = dir.path().to_owned();
    let h = Harness::start(dir).await;
    assert_eq!(h.chat("old-model").await.0, 200);

    // Same auths, new model: the consumed auth stays consumed, the old model is gone.
    write_upstream(
        &path,
        "a",
        &up.url,
        "new-model",
        json!({}),
        &[auth("0x01", "1000"), auth("0x02", "1000")],
    );
    assert_eq!(
        h.app.reload(false).await.unwrap(),
        ReloadOutcome::Applied { upstreams: 1 }
    );
    assert_eq!(h.app.reload(false).await.unwrap(), ReloadOutcome::Unchanged);
    let s = h.status("a");
    assert_eq!(
        (s.remote_model.as_str(), s.remaining, s.spent),
        ("new-model", 1, 1)
    );
    assert_eq!(h.chat("old-model").await.0, 404);
    let m = h.app.metrics.encode();
    assert!(!m.contains("remote_model=\"old-model\""), "{m}");
    assert!(m.contains("remote_model=\"new-model\""), "{m}");

    // A broken update keeps the last good version, with the error shown.
    std::fs::write(path.join("config/a.json"), "{").unwrap();
    h.app.reload(false).await.unwrap();
    let s = h.status("a");
    assert_eq!(s.remote_model, "new-model");
    assert!(
        s.error.as_deref().unwrap_or_default().contains("not JSON"),
        "{:?}",
        s.error
    );
    assert_eq!(h.chat("new-model").await.0, 200);

    // Removed: gone, with its series.
    std::fs::remove_file(path.join("config/a.json")).unwrap();
    h.app.reload(false).await.unwrap();
    assert!(h.app.statuses().is_empty());
    assert!(!h.app.metrics.encode().contains("upstream=\"a\""));
}

#[tokio::test]
async fn admin_reload_is_a_one_slot_signal_and_free_upstreams_pass_through() {
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    write_upstream(
        dir.path(),
        "free",
        &format!("{}/free", up.url),
        "f",
        json!({}),
        &[],
    );
    let h = Harness::start(dir).await;
    let (status, _, body) = h
        .post("/upstream/free/v1/x?y=1", json!({"model": "raw"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(up.seen()[0].0, "/free/v1/x");
    assert_eq!(
        up.seen()[0].1.as_deref(),
        Some("raw"),
        "the prefix route leaves the body alone"
    );
    assert!(h.app.trigger_reload());
    assert!(!h.app.trigger_reload(), "already pending");
    let r: Value = h
        .http
        .post(format!("{}/admin/reload", h.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The loop has taken the pending signal by now (or not yet): either answer is right.
    assert!(
        r["status"] == "reload triggered" || r["status"] == "reload already pending",
        "{r}"
    );
    let models: Value = h
        .http
        .get(format!("{}/v1/models", h.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["data"][0]["id"], "paid/f");
}

/// `POST /admin/reload` from `peer` (as the listener reports it), with `bearer` if given.
async fn admin_reload_from(
    app: &Arc<App>,
    peer: std::net::SocketAddr,
    bearer: Option<&str>,
) -> (StatusCode, String) {
    use tower::ServiceExt as _;
    let router =
        proxy::router(Arc::clone(app)).layer(axum::extract::connect_info::MockConnectInfo(peer));
    let mut req = axum::http::Request::post("/admin/reload");
    if let Some(token) = bearer {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let resp = router
        .oneshot(req.body(axum::body::Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn admin_endpoints_refuse_peers_off_loopback_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir).await;
    let outside: std::net::SocketAddr = "10.1.2.3:40000".parse().unwrap();
    let (status, body) = admin_reload_from(&h.app, outside, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("--admin-token-file"), "{body}");
    let (status, body) = admin_reload_from(&h.app, outside, Some("guess")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let inside: std::net::SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let (status, body) = admin_reload_from(&h.app, inside, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn with_an_admin_token_a_peer_off_loopback_needs_exactly_that_bearer() {
    let dir = tempfile::tempdir().unwrap();
    let app = App::new(&config(dir.path(), Some("s3cret-token"))).unwrap();
    let outside: std::net::SocketAddr = "10.1.2.3:40000".parse().unwrap();
    let (status, body) = admin_reload_from(&app, outside, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(
        !body.contains("s3cret"),
        "the token is never echoed: {body}"
    );
    let (status, _) = admin_reload_from(&app, outside, Some("s3cret-tokeN")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = admin_reload_from(&app, outside, Some("s3cret-token")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
