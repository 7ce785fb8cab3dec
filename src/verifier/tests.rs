//! In-process tests of the whole verifier over real HTTP: the daemon on 127.0.0.1, a scripted
//! fake facilitator and a recording upstream (both axum). The end-to-end tests against the real
//! chain and the npm reference facilitator are in `tests/verifier.rs`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy_primitives::{Address, B256, U256};
use alloy_signer_local::PrivateKeySigner;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::{any, post};
use serde_json::{Value, json};

mod attacks;

use super::*;
use crate::x402::codec::decode_header;
use crate::x402::eip3009::{self, TransferWithAuthorization};
use crate::x402::wire::{ExactEvmPayload, PaymentPayload, PaymentPayloadV1, PaymentPayloadV2};

const PAY_TO: &str = "0x2222222222222222222222222222222222222222";
const UPSTREAM_AUTH: &str = "Bearer up-secret";

// ---------------------------------------------------------------------------------------------
// fake facilitator

#[derive(Clone, Debug, PartialEq)]
enum Verify {
    Valid,
    Invalid(&'static str),
    Status(u16),
    Hang,
}

#[derive(Clone, Debug, PartialEq)]
enum Settle {
    Ok,
    Fail(&'static str),
    Status(u16),
    Hang,
}

struct FacState {
    verify: Mutex<Verify>,
    settle: Mutex<Settle>,
    verify_calls: AtomicUsize,
    settle_calls: AtomicUsize,
    last_body: Mutex<Option<Value>>,
}

async fn fac_verify(
    State(s): State<Arc<FacState>>,
    body: axum::Json<Value>,
) -> axum::response::Response {
    s.verify_calls.fetch_add(1, Ordering::SeqCst);
    *s.last_body.lock().unwrap() = Some(body.0);
    let mode = s.verify.lock().unwrap().clone();
    match mode {
        Verify::Valid => axum::Json(json!({"isValid": true, "payer": "0x1"})).into_response(),
        Verify::Invalid(r) => {
            axum::Json(json!({"isValid": false, "invalidReason": r})).into_response()
        }
        Verify::Status(c) => StatusCode::from_u16(c).unwrap().into_response(),
        Verify::Hang => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            StatusCode::OK.into_response()
        }
    }
}

async fn fac_settle(
    State(s): State<Arc<FacState>>,
    body: axum::Json<Value>,
) -> axum::response::Response {
    s.settle_calls.fetch_add(1, Ordering::SeqCst);
    *s.last_body.lock().unwrap() = Some(body.0);
    let mode = s.settle.lock().unwrap().clone();
    match mode {
        Settle::Ok => axum::Json(json!({
            "success": true,
            "transaction": "0xfeed",
            "network": "eip155:84532",
            "payer": "0x1",
        }))
        .into_response(),
        Settle::Fail(r) => (
            StatusCode::BAD_REQUEST,
            axum::Json(
                json!({"success": false, "errorReason": r, "transaction": "", "network": ""}),
            ),
        )
            .into_response(),
        Settle::Status(c) => StatusCode::from_u16(c).unwrap().into_response(),
        Settle::Hang => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            StatusCode::OK.into_response()
        }
    }
}

// ---------------------------------------------------------------------------------------------
// fake upstream

#[derive(Debug, Clone)]
struct Seen {
    uri: String,
    headers: HeaderMap,
    body: String,
}

struct UpState {
    status: AtomicU16,
    delay_ms: AtomicUsize,
    seen: Mutex<Vec<Seen>>,
}

async fn upstream(
    State(s): State<Arc<UpState>>,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> axum::response::Response {
    let delay = s.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay as u64)).await;
    }
    s.seen.lock().unwrap().push(Seen {
        uri: uri.to_string(),
        headers,
        body,
    });
    let status = StatusCode::from_u16(s.status.load(Ordering::SeqCst)).unwrap();
    (
        status,
        [("x-upstream", "yes"), ("cache-control", "max-age=60")],
        "hello from upstream",
    )
        .into_response()
}

async fn spawn_router(router: Router) -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(l, router).await;
    });
    addr
}

// ---------------------------------------------------------------------------------------------
// harness

struct Harness {
    _dir: tempfile::TempDir,
    offers: PathBuf,
    url: String,
    fac: Arc<FacState>,
    up: Arc<UpState>,
    state: Arc<AppState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    http: reqwest::Client,
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

fn offers_yaml(fac_url: &str, up_url: &str, extra_routes: &str) -> String {
    format!(
        r#"wallet: "{PAY_TO}"
chain: base-sepolia
facilitatorURL: "{fac_url}"
routes:
  - pattern: /services/demo/*
    price: "0.01"
    offerNamespace: local
    offerName: demo
    upstreamURL: "{up_url}"
    stripPrefix: /services/demo
    upstreamAuth: "{UPSTREAM_AUTH}"
  - pattern: /services/other/*
    price: "0.02"
    network: base
    offerNamespace: local
    offerName: other
    upstreamURL: "{up_url}"
    stripPrefix: /services/other
  - pattern: /services/paused/*
    price: "0.01"
    offerNamespace: local
    offerName: paused
    upstreamURL: "{up_url}"
    paused: true
{extra_routes}"#
    )
}

async fn start(mode: Mode, settle_before_grant: bool) -> Harness {
    let fac = Arc::new(FacState {
        verify: Mutex::new(Verify::Valid),
        settle: Mutex::new(Settle::Ok),
        verify_calls: AtomicUsize::new(0),
        settle_calls: AtomicUsize::new(0),
        last_body: Mutex::new(None),
    });
    let fac_addr = spawn_router(
        Router::new()
            .route("/verify", post(fac_verify))
            .route("/settle", post(fac_settle))
            .with_state(Arc::clone(&fac)),
    )
    .await;
    let up = Arc::new(UpState {
        status: AtomicU16::new(200),
        delay_ms: AtomicUsize::new(0),
        seen: Mutex::new(Vec::new()),
    });
    let up_addr = spawn_router(
        Router::new()
            .fallback(any(upstream))
            .with_state(Arc::clone(&up)),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let offers = dir.path().join("pricing.yaml");
    std::fs::write(
        &offers,
        offers_yaml(
            &format!("http://{fac_addr}"),
            &format!("http://{up_addr}"),
            "",
        ),
    )
    .unwrap();
    let config = VerifierConfig {
        listen: "127.0.0.1:0".into(),
        internal_listen: None,
        offers_file: offers.clone(),
        facilitator: None,
        mode,
        verify_only: Some(!settle_before_grant),
        verify_timeout: Duration::from_millis(500),
        settle_timeout: Duration::from_millis(500),
        reload_interval: Duration::from_millis(50),
        registry: Registry::builtin(),
        route_source: super::routes::SourceKind::File,
        kube: None,
        state: super::store::StoreSpec::Memory,
    };
    let v = tokio::task::spawn_blocking(move || {
        Verifier::new(config, super::store::PaymentStore::memory())
    })
    .await
    .unwrap()
    .unwrap();
    let state = Arc::clone(&v.state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(v.serve_on(listener, None, async move {
        let _ = rx.await;
    }));
    Harness {
        _dir: dir,
        offers,
        url: format!("http://{addr}"),
        fac,
        up,
        state,
        stop: Some(tx),
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
    }
}

fn payer() -> PrivateKeySigner {
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
        .parse()
        .unwrap()
}

/// The signed EIP-3009 payload for `accepted`; `tweak` changes the authorization before signing.
fn signed(accepted: &Value, tweak: impl FnOnce(&mut TransferWithAuthorization)) -> ExactEvmPayload {
    let s = |k: &str| accepted[k].as_str().unwrap().to_string();
    let chain_id: u64 = s("network")
        .strip_prefix("eip155:")
        .unwrap()
        .parse()
        .unwrap();
    let asset: Address = s("asset").parse().unwrap();
    let now = gate::Clock::default().now();
    let key = payer();
    let mut auth = TransferWithAuthorization {
        from: key.address(),
        to: s("payTo").parse().unwrap(),
        value: s("amount").parse().unwrap(),
        validAfter: U256::from(now - 600),
        validBefore: U256::from(now + 300),
        nonce: B256::random(),
    };
    tweak(&mut auth);
    let domain = eip3009::domain(
        accepted["extra"]["name"].as_str().unwrap(),
        accepted["extra"]["version"].as_str().unwrap(),
        chain_id,
        asset,
    );
    let sig = eip3009::sign_hash_local(&key, eip3009::signing_hash(&auth, &domain)).unwrap();
    eip3009::to_wire(&auth, &sig)
}

fn v2_header(accepted: &Value, payload: ExactEvmPayload) -> String {
    PaymentPayload::V2(PaymentPayloadV2 {
        x402_version: 2,
        resource: None,
        accepted: accepted.clone(),
        payload,
        extensions: None,
    })
    .to_header()
}

impl Harness {
    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut req = self.http.get(format!("{}{path}", self.url));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }

    /// The requirement the 402 of `path` offers.
    async fn accepted(&self, path: &str) -> Value {
        let r = self.get(path, &[]).await;
        assert_eq!(r.status(), 402);
        let pr: Value = decode_header(r.headers()["payment-required"].to_str().unwrap()).unwrap();
        pr["accepts"][0].clone()
    }

    async fn pay(&self, path: &str) -> String {
        let acc = self.accepted(path).await;
        v2_header(&acc, signed(&acc, |_| {}))
    }

    fn metric(&self, name: &str, offer: &str) -> Option<f64> {
        self.state.metrics.encode().lines().find_map(|l| {
            (l.starts_with(&format!("{name}{{")) && l.contains(&format!("offer_name=\"{offer}\"")))
                .then(|| l.rsplit(' ').next().unwrap().parse().unwrap())
        })
    }

    fn verifies(&self) -> usize {
        self.fac.verify_calls.load(Ordering::SeqCst)
    }

    fn settles(&self) -> usize {
        self.fac.settle_calls.load(Ordering::SeqCst)
    }
}

async fn json_of(r: reqwest::Response) -> Value {
    r.json().await.unwrap()
}

// ---------------------------------------------------------------------------------------------
// proxy mode

#[tokio::test]
async fn proxy_unpaid_gets_402_with_header_and_body() {
    let h = start(Mode::Proxy, false).await;
    let r = h.get("/services/demo/v1/x?q=1", &[]).await;
    assert_eq!(r.status(), 402);
    let header: Value = decode_header(r.headers()["payment-required"].to_str().unwrap()).unwrap();
    let body = json_of(r).await;
    assert_eq!(header, body, "the header carries the body");
    assert_eq!(body["x402Version"], 2);
    assert_eq!(
        body["resource"]["url"].as_str().unwrap(),
        format!("{}/services/demo/v1/x?q=1", h.url)
    );
    let acc = &body["accepts"][0];
    assert_eq!(acc["scheme"], "exact");
    assert_eq!(acc["network"], "eip155:84532");
    assert_eq!(acc["amount"], "10000");
    assert_eq!(acc["payTo"], PAY_TO);
    assert_eq!(
        h.metric("obol_x402_verifier_payment_required_total", "demo"),
        Some(1.0)
    );
    assert_eq!(
        h.metric("obol_x402_verifier_requests_total", "demo"),
        Some(1.0)
    );
    assert!(
        h.up.seen.lock().unwrap().is_empty(),
        "upstream never reached"
    );
    // Browsers get a page, still 402 with the header.
    let r = h
        .get(
            "/services/demo/x",
            &[("accept", "text/html,application/xhtml+xml")],
        )
        .await;
    assert_eq!(r.status(), 402);
    assert!(r.headers().contains_key("payment-required"));
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(r.text().await.unwrap().contains("0.01 USDC"));
}

#[tokio::test]
async fn proxy_paid_request_is_forwarded_settled_and_counted() {
    let h = start(Mode::Proxy, false).await;
    let pay = h.pay("/services/demo/v1/chat").await;
    let r = h
        .http
        .post(format!("{}/services/demo/v1/chat?stream=false", h.url))
        .header("payment-signature", &pay)
        .header("authorization", "Bearer buyer-own")
        .header("connection", "keep-alive, x-hop")
        .header("x-hop", "1")
        .body("{\"prompt\":\"hi\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["x-upstream"], "yes");
    let receipt: Value = decode_header(r.headers()["payment-response"].to_str().unwrap()).unwrap();
    assert_eq!(receipt["success"], true);
    assert_eq!(receipt["transaction"], "0xfeed");
    assert_eq!(
        r.headers()["payment-response"],
        r.headers()["x-payment-response"]
    );
    assert_eq!(r.text().await.unwrap(), "hello from upstream");

    let seen = h.up.seen.lock().unwrap()[0].clone();
    assert_eq!(
        seen.uri, "/v1/chat?stream=false",
        "prefix stripped, query kept"
    );
    assert_eq!(seen.headers["authorization"], UPSTREAM_AUTH);
    assert_eq!(seen.body, "{\"prompt\":\"hi\"}");
    assert!(!seen.headers.contains_key("payment-signature"));
    assert!(!seen.headers.contains_key("x-hop"));
    assert_eq!(
        seen.headers["x-payment-payer"].to_str().unwrap(),
        payer().address().to_checksum(None)
    );
    assert_eq!(seen.headers["x-forwarded-for"], "127.0.0.1");

    // The facilitator got our requirement and the payload object (not base64).
    let last = h.fac.last_body.lock().unwrap().clone().unwrap();
    assert_eq!(last["x402Version"], 2);
    assert_eq!(last["paymentRequirements"]["amount"], "10000");
    assert!(last["paymentPayload"]["payload"]["signature"].is_string());
    assert_eq!((h.verifies(), h.settles()), (1, 1));

    assert_eq!(
        h.metric("obol_x402_verifier_payment_verified_total", "demo"),
        Some(1.0)
    );
    assert_eq!(
        h.metric("obol_x402_verifier_charged_requests_total", "demo"),
        Some(1.0)
    );
    assert_eq!(
        h.metric("obol_x402_verifier_charged_amount_total", "demo"),
        Some(10000.0)
    );
    assert!(
        h.metric("obol_x402_verifier_last_payment_success_seconds", "demo")
            .unwrap()
            > 1.7e9
    );

    // The same payment again: refused, never reaches the facilitator or the upstream.
    let r = h
        .get("/services/demo/v1/chat", &[("payment-signature", &pay)])
        .await;
    assert_eq!(r.status(), 409);
    assert_eq!(json_of(r).await["reason"], "payment_replayed");
    assert_eq!((h.verifies(), h.settles()), (1, 1));
    assert_eq!(h.up.seen.lock().unwrap().len(), 1);
    assert_eq!(
        h.metric("obol_x402_verifier_payment_failed_total", "demo"),
        Some(1.0)
    );
}

#[tokio::test]
async fn proxy_concurrent_copies_of_one_payment_are_served_once() {
    let h = start(Mode::Proxy, false).await;
    h.up.delay_ms.store(300, Ordering::SeqCst);
    let pay = h.pay("/services/demo/x").await;
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let (http, url, pay) = (h.http.clone(), h.url.clone(), pay.clone());
        tasks.push(tokio::spawn(async move {
            http.get(format!("{url}/services/demo/x"))
                .header("payment-signature", pay)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.unwrap());
    }
    codes.sort();
    assert_eq!(codes, [200, 409, 409, 409, 409]);
    assert_eq!(h.settles(), 1);
    assert_eq!(h.up.seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn proxy_bad_payments_never_reach_the_facilitator() {
    let h = start(Mode::Proxy, false).await;
    let acc = h.accepted("/services/demo/x").await;
    let wrong_pay_to: Address = "0x3333333333333333333333333333333333333333"
        .parse()
        .unwrap();
    let now = gate::Clock::default().now();
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "garbage",
            "not base64!".into(),
            400,
            "invalid_payment_header",
        ),
        (
            "json but not x402",
            crate::x402::codec::encode_header(&json!({"a": 1})),
            400,
            "invalid_payment_header",
        ),
        (
            "tampered nonce",
            v2_header(&acc, {
                let mut p = signed(&acc, |_| {});
                p.authorization.nonce = B256::random().to_string();
                p
            }),
            402,
            "invalid_exact_evm_signature",
        ),
        (
            "expired",
            v2_header(&acc, signed(&acc, |a| a.validBefore = U256::from(now - 1))),
            402,
            "invalid_exact_evm_payload_authorization_valid_before",
        ),
        (
            "not yet valid",
            v2_header(&acc, signed(&acc, |a| a.validAfter = U256::from(now + 600))),
            402,
            "invalid_exact_evm_payload_authorization_valid_after",
        ),
        (
            "wrong payTo in the authorization",
            v2_header(&acc, signed(&acc, |a| a.to = wrong_pay_to)),
            402,
            "invalid_exact_evm_recipient_mismatch",
        ),
        (
            "under-amount",
            v2_header(&acc, signed(&acc, |a| a.value = U256::from(9_999u64))),
            402,
            "invalid_exact_evm_authorization_value",
        ),
        (
            "accepted names another payTo",
            {
                let mut a2 = acc.clone();
                a2["payTo"] = json!(wrong_pay_to.to_string());
                v2_header(&a2, signed(&a2, |_| {}))
            },
            402,
            "no_matching_requirement",
        ),
        (
            "accepted names a lower amount",
            {
                let mut a2 = acc.clone();
                a2["amount"] = json!("1");
                v2_header(&a2, signed(&a2, |_| {}))
            },
            402,
            "no_matching_requirement",
        ),
        (
            "wrong network",
            {
                let mut a2 = acc.clone();
                a2["network"] = json!("eip155:8453");
                v2_header(&a2, signed(&a2, |_| {}))
            },
            402,
            "no_matching_requirement",
        ),
        (
            "signed for another token domain",
            {
                let mut a2 = acc.clone();
                a2["extra"]["name"] = json!("Not USDC");
                let p = signed(&a2, |_| {});
                v2_header(&acc, p)
            },
            402,
            "invalid_exact_evm_signature",
        ),
    ];
    for (what, header, status, reason) in cases {
        let r = h
            .get("/services/demo/x", &[("payment-signature", &header)])
            .await;
        assert_eq!(r.status().as_u16(), status, "{what}");
        let body = json_of(r).await;
        let got = body.get("reason").or_else(|| body.get("error")).unwrap();
        assert_eq!(got, reason, "{what}: {body}");
    }
    assert_eq!((h.verifies(), h.settles()), (0, 0));
    assert!(h.up.seen.lock().unwrap().is_empty());
    assert_eq!(
        h.metric("obol_x402_verifier_payment_failed_total", "demo"),
        Some(11.0)
    );
}

#[tokio::test]
async fn proxy_facilitator_invalid_is_402_and_down_is_503_then_same_payment_works() {
    let h = start(Mode::Proxy, false).await;
    let pay = h.pay("/services/demo/x").await;
    *h.fac.verify.lock().unwrap() = Verify::Invalid("insufficient_funds");
    let r = h
        .get("/services/demo/x", &[("payment-signature", &pay)])
        .await;
    assert_eq!(r.status(), 402);
    assert_eq!(json_of(r).await["error"], "insufficient_funds");

    for mode in [Verify::Status(500), Verify::Hang] {
        *h.fac.verify.lock().unwrap() = mode.clone();
        let r = h
            .get("/services/demo/x", &[("payment-signature", &pay)])
            .await;
        assert_eq!(r.status(), 503, "{mode:?}");
        let b = json_of(r).await;
        assert_eq!(b["retriable"], true);
        assert!(
            ["facilitator_error", "facilitator_unreachable"]
                .contains(&b["reason"].as_str().unwrap()),
            "{b}"
        );
    }
    assert!(h.up.seen.lock().unwrap().is_empty());
    assert_eq!(h.settles(), 0);
    // Nothing consumed the payment: once the facilitator is back the same header is served.
    *h.fac.verify.lock().unwrap() = Verify::Valid;
    let r = h
        .get("/services/demo/x", &[("payment-signature", &pay)])
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(h.settles(), 1);
}

#[tokio::test]
async fn proxy_unreachable_facilitator_is_503() {
    let h = start(Mode::Proxy, false).await;
    let pay = h.pay("/services/demo/x").await;
    // Point the file at a closed port and wait for the reload.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let text = std::fs::read_to_string(&h.offers).unwrap();
    let fac_url = h.state.table.load().facilitator.base_url().to_string();
    std::fs::write(
        &h.offers,
        text.replace(&fac_url, &format!("http://{closed}")),
    )
    .unwrap();
    wait_for(|| h.state.table.load().facilitator.base_url() != fac_url).await;
    let r = h
        .get("/services/demo/x", &[("payment-signature", &pay)])
        .await;
    assert_eq!(r.status(), 503);
    let b = json_of(r).await;
    assert_eq!(b["reason"], "facilitator_unreachable");
    assert_eq!(b["retriable"], true);
}

#[tokio::test]
async fn proxy_upstream_errors_pass_through_unsettled_and_release_the_payment() {
    let h = start(Mode::Proxy, false).await;
    let pay = h.pay("/services/demo/x").await;
    h.up.status.store(500, Ordering::SeqCst);
    let r = h
        .get("/services/demo/x", &[("payment-signature", &pay)])
        .await;
    assert_eq!(r.status(), 500);
    assert!(!r.headers().contains_key("payment-response"));
    assert_eq!(r.text().await.unwrap(), "hello from upstream");
    assert_eq!(h.settles(), 0);
    assert_eq!(
        h.metric("obol_x402_verifier_charged_requests_total", "demo"),
        Some(0.0),
        "loaded offers export the money counter at 0; nothing was charged"
    );
    // The buyer retries with the same header once the upstream is fixed.
    h.up.status.store(201, Ordering::SeqCst);
    let r = h
        .get("/services/demo/x", &[("payment-signature", &pay)])
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(h.settles(), 1);
}

#[tokio::test]
async fn proxy_settlement_refused_is_402_with_receipt() {
    let h = start(Mode::Proxy, false).await;
    *h.fac.settle.lock().unwrap() = Settle::Fail("insufficient_funds");
    let pay = h.pay("/services/demo/x").await;
    let r = h
        .get("/services/demo/x", &[("payment-signature", &pay)])
        .await;
    assert_eq!(r.status(), 402);
    let receipt: Value = decode_header(r.headers()["payment-response"].to_str().unwrap()).unwrap();
    assert_eq!(receipt["success"], false);
    assert_eq!(receipt["errorReason"], "insufficient_funds");
    assert_eq!(json_of(r).await["error"], "insufficient_funds");
    assert_eq!(
        h.metric("obol_x402_verifier_charged_requests_total", "demo"),
        Some(0.0),
        "loaded offers export the money counter at 0; nothing was charged"
    );
    assert_eq!(
        h.metric("obol_x402_verifier_payment_failed_total", "demo"),
        Some(1.0)
    );
}

#[tokio::test]
async fn proxy_unknown_settlement_is_never_402_and_the_same_payment_finishes_it() {
    let h = start(Mode::Proxy, false).await;
    let pay = h.pay("/services/demo/x").await;
    for (mode, status) in [(Settle::Hang, 504), (Settle::Status(502), 503)] {
        *h.fac.settle.lock().unwrap() = mode;
        let r = h
            .get("/services/demo/x", &[("payment-signature", &pay)])
            .await;
        assert_eq!(r.status(), status);
        let b = json_of(r).await;
        assert_eq!(b["reason"], "settlement_unknown");
        assert_eq!(b["retriable"], true);
        assert!(b["hint"].as_str().unwrap().contains("SAME payment header"));
    }
    assert_eq!(
        h.verifies(),
        1,
        "a retry of an unsettled payment skips /verify"
    );
    // The facilitator now calls the nonce used. Without an RPC endpoint for the chain the
    // verifier cannot tell whether this payment or something else used it: still unknown, never
    // a grant (with one, tests/gate_attacks.rs checks the chain's answer both ways).
    *h.fac.settle.lock().unwrap() = Settle::Fail("invalid_exact_evm_nonce_already_used");
    let r = h
        .get("/services/demo/x", &[("payment-signature", &pay)])
        .await;
    assert_eq!(r.status(), 503);
    assert_eq!(json_of(r).await["reason"], "settlement_unknown");
    assert_eq!(
        h.metric("obol_x402_verifier_charged_requests_total", "demo")
            .unwrap_or(0.0),
        0.0
    );
    assert_eq!(
        h.metric("obol_x402_verifier_settlement_unknown_total", "demo"),
        Some(3.0),
        "each unknown outcome is counted once, and is not revenue"
    );
    // Once it settles, it is used for good.
    *h.fac.settle.lock().unwrap() = Settle::Ok;
    let r = h
        .get("/services/demo/x", &[("payment-signature", &pay)])
        .await;
    assert_eq!(r.status(), 200);
    let r = h
        .get("/services/demo/x", &[("payment-signature", &pay)])
        .await;
    assert_eq!(r.status(), 409);
}

#[tokio::test]
async fn proxy_paths_paused_unknown_and_upstream_down() {
    let h = start(Mode::Proxy, false).await;
    let r = h.get("/nothing/here", &[]).await;
    assert_eq!(r.status(), 404);
    let r = h.get("/services/paused/x", &[]).await;
    assert_eq!(r.status(), 404);
    assert_eq!(json_of(r).await["reason"], "offer_paused");
    assert_eq!(
        h.metric("obol_x402_verifier_requests_total", "paused"),
        Some(0.0),
        "a paused offer's requests are not counted"
    );
    let r = h
        .get("/verify", &[("x-forwarded-uri", "/services/demo/x")])
        .await;
    assert_eq!(r.status(), 404, "no /verify in proxy mode");
    // Upstream unreachable: 502, nothing settled.
    let text = std::fs::read_to_string(&h.offers).unwrap();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let up = reqwest::Url::parse(
        &h.state
            .table
            .load()
            .find("/services/demo/x")
            .unwrap()
            .route
            .upstream_url
            .clone()
            .unwrap(),
    )
    .unwrap();
    let up = format!("http://{}:{}", up.host_str().unwrap(), up.port().unwrap());
    std::fs::write(&h.offers, text.replace(&up, &format!("http://{closed}"))).unwrap();
    wait_for(|| {
        h.state
            .table
            .load()
            .find("/services/demo/x")
            .unwrap()
            .route
            .upstream_url
            .as_deref()
            == Some(&format!("http://{closed}"))
    })
    .await;
    let pay = h.pay("/services/demo/x").await;
    let r = h
        .get("/services/demo/x", &[("payment-signature", &pay)])
        .await;
    assert_eq!(r.status(), 502);
    assert_eq!(json_of(r).await["paymentSettled"], false);
    assert_eq!(h.settles(), 0);
}

#[tokio::test]
async fn proxy_accepts_v1_payments_and_answers_v1() {
    let h = start(Mode::Proxy, false).await;
    let acc = h.accepted("/services/demo/x").await;
    let p = signed(&acc, |_| {});
    let v1 = PaymentPayload::V1(PaymentPayloadV1 {
        x402_version: 1,
        scheme: "exact".into(),
        network: "base-sepolia".into(),
        payload: p,
    });
    let r = h
        .get("/services/demo/x", &[("x-payment", &v1.to_header())])
        .await;
    assert_eq!(r.status(), 200);
    let last = h.fac.last_body.lock().unwrap().clone().unwrap();
    assert_eq!(last["x402Version"], 1);
    assert_eq!(last["paymentRequirements"]["network"], "base-sepolia");
    assert_eq!(last["paymentRequirements"]["maxAmountRequired"], "10000");
    // A v1 payment that does not match is answered in v1 form.
    let v1 = PaymentPayload::V1(PaymentPayloadV1 {
        x402_version: 1,
        scheme: "exact".into(),
        network: "base".into(),
        payload: signed(&acc, |_| {}),
    });
    let r = h
        .get("/services/demo/x", &[("x-payment", &v1.to_header())])
        .await;
    assert_eq!(r.status(), 402);
    let b = json_of(r).await;
    assert_eq!(b["x402Version"], 1);
    assert_eq!(b["error"], "no_matching_requirement");
    assert_eq!(b["accepts"][0]["network"], "base-sepolia");
    // A v2 payload under X-PAYMENT (the obol-stack buyers) is accepted too.
    let pay = v2_header(&acc, signed(&acc, |_| {}));
    let r = h.get("/services/demo/x", &[("x-payment", &pay)]).await;
    assert_eq!(r.status(), 200);
}

// ---------------------------------------------------------------------------------------------
// ForwardAuth mode

#[tokio::test]
async fn forward_auth_statuses_and_verify_only() {
    let h = start(Mode::ForwardAuth, false).await;
    let r = h.get("/verify", &[]).await;
    assert_eq!(r.status(), 403);
    // Fail closed: a path no offer covers is refused, not granted.
    let r = h
        .get("/verify", &[("x-forwarded-uri", "/free/thing")])
        .await;
    assert_eq!(r.status(), 404);
    assert_eq!(json_of(r).await["reason"], "no_route");
    let fwd = [
        ("x-forwarded-uri", "/services/demo/v1/chat?x=1"),
        ("x-forwarded-host", "seller.example"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-method", "POST"),
    ];
    let r = h.get("/verify", &fwd).await;
    assert_eq!(r.status(), 402);
    let b = json_of(r).await;
    assert_eq!(
        b["resource"]["url"],
        "https://seller.example/services/demo/v1/chat?x=1"
    );
    let acc = b["accepts"][0].clone();
    let pay = v2_header(&acc, signed(&acc, |_| {}));
    let mut with_pay = fwd.to_vec();
    with_pay.push(("payment-signature", &pay));
    let r = h.get("/verify", &with_pay).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["authorization"], UPSTREAM_AUTH);
    assert_eq!((h.verifies(), h.settles()), (1, 0), "verify only");
    // verify-only: access without money moving, never revenue.
    assert_eq!(
        h.metric("obol_x402_verifier_charged_requests_total", "demo"),
        Some(0.0)
    );
    assert_eq!(
        h.metric("obol_x402_verifier_charged_amount_total", "demo"),
        Some(0.0)
    );
    assert_eq!(
        h.metric("obol_x402_verifier_verify_only_grants_total", "demo"),
        Some(1.0)
    );
    assert!(
        h.metric("obol_x402_verifier_last_payment_success_seconds", "demo")
            .is_none()
    );
    // Replay.
    let r = h.get("/verify", &with_pay).await;
    assert_eq!(r.status(), 409);
    // Paused.
    let r = h
        .get("/verify", &[("x-forwarded-uri", "/services/paused/x")])
        .await;
    assert_eq!(r.status(), 404);
    // Facilitator down: 503 retriable.
    *h.fac.verify.lock().unwrap() = Verify::Status(503);
    let pay2 = v2_header(&acc, signed(&acc, |_| {}));
    let mut with_pay2 = fwd.to_vec();
    with_pay2.push(("payment-signature", &pay2));
    let r = h.get("/verify", &with_pay2).await;
    assert_eq!(r.status(), 503);
    assert_eq!(json_of(r).await["retriable"], true);
    // Only /verify and the daemon endpoints in forward-auth mode.
    assert_eq!(h.get("/services/demo/x", &[]).await.status(), 404);
}

#[tokio::test]
async fn forward_auth_settle_before_grant() {
    let h = start(Mode::Both, true).await;
    let acc = h.accepted("/services/demo/x").await;
    let pay = v2_header(&acc, signed(&acc, |_| {}));
    let r = h
        .get(
            "/verify",
            &[
                ("x-forwarded-uri", "/services/demo/x"),
                ("payment-signature", &pay),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("payment-response"));
    assert_eq!((h.verifies(), h.settles()), (1, 1));
    assert_eq!(
        h.metric("obol_x402_verifier_charged_requests_total", "demo"),
        Some(1.0)
    );
}

// ---------------------------------------------------------------------------------------------
// reload, readiness, metrics GC

async fn wait_for(mut cond: impl FnMut() -> bool) {
    for _ in 0..200 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("condition not reached");
}

#[tokio::test]
async fn reload_swaps_routes_and_removes_series_of_deleted_offers() {
    let h = start(Mode::Both, false).await;
    assert_eq!(h.get("/readyz", &[]).await.status(), 200);
    assert_eq!(h.get("/healthz", &[]).await.status(), 200);
    let pay = h.pay("/services/other/x").await;
    assert_eq!(
        h.get("/services/other/x", &[("payment-signature", &pay)])
            .await
            .status(),
        200
    );
    h.get("/services/demo/x", &[]).await;
    let text = h.get("/metrics", &[]).await.text().await.unwrap();
    assert!(text.contains(r#"obol_x402_verifier_charged_requests_total{chain="eip155:8453",offer_name="other",offer_namespace="local"} 1"#), "{text}");
    let paused: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains(r#"offer_name="paused""#))
        .collect();
    assert!(
        paused.iter().all(|l| l.ends_with(" 0")),
        "no traffic: the counters at 0 and no gauge: {paused:?}"
    );

    // Delete "other" (the way `obol sell delete` does) and wait for the reload.
    let store = crate::offers::OfferStore::new(h.offers.clone(), Registry::builtin());
    store.delete("other").unwrap();
    wait_for(|| h.state.table.load().len() == 2).await;
    let text = h.get("/metrics", &[]).await.text().await.unwrap();
    assert!(!text.contains(r#"offer_name="other""#), "{text}");
    assert!(text.contains(r#"obol_x402_verifier_payment_required_total{chain="eip155:84532",offer_name="demo",offer_namespace="local"} 1"#), "{text}");
    assert_eq!(h.get("/services/other/x", &[]).await.status(), 404);

    // A broken file keeps the old table.
    std::fs::write(&h.offers, "routes: [").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.state.table.load().len(), 2);
    assert_eq!(h.get("/services/demo/x", &[]).await.status(), 402);
    assert_eq!(h.get("/readyz", &[]).await.status(), 200);
}

#[tokio::test]
async fn not_ready_until_a_good_file_and_fail_closed() {
    let dir = tempfile::tempdir().unwrap();
    let offers = dir.path().join("pricing.yaml");
    std::fs::write(&offers, "routes:\n  - pattern: /x\n    price: nope\n").unwrap();
    let config = VerifierConfig {
        listen: "127.0.0.1:0".into(),
        internal_listen: None,
        offers_file: offers.clone(),
        facilitator: Some("http://127.0.0.1:9".into()),
        mode: Mode::Both,
        verify_only: None,
        verify_timeout: Duration::from_millis(200),
        settle_timeout: Duration::from_millis(200),
        reload_interval: Duration::from_millis(50),
        registry: Registry::builtin(),
        route_source: super::routes::SourceKind::File,
        kube: None,
        state: super::store::StoreSpec::Memory,
    };
    let v = tokio::task::spawn_blocking(move || {
        Verifier::new(config, super::store::PaymentStore::memory())
    })
    .await
    .unwrap()
    .unwrap();
    let state = Arc::clone(&v.state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(v.serve_on(listener, None, async move {
        let _ = rx.await;
    }));
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    assert_eq!(
        http.get(format!("{url}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        503
    );
    let r = http
        .get(format!("{url}/verify"))
        .header("x-forwarded-uri", "/anything")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503, "never free before the first load");
    std::fs::write(
        &offers,
        format!("wallet: \"{PAY_TO}\"\nroutes:\n  - pattern: /x\n    price: \"1\"\n"),
    )
    .unwrap();
    wait_for(|| state.table.load().loaded).await;
    assert_eq!(
        http.get(format!("{url}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Graceful shutdown.
    tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_missing_file_is_an_empty_table() {
    let dir = tempfile::tempdir().unwrap();
    let config = VerifierConfig {
        listen: "127.0.0.1:0".into(),
        internal_listen: None,
        offers_file: dir.path().join("absent.yaml"),
        facilitator: None,
        mode: Mode::Both,
        verify_only: None,
        verify_timeout: Duration::from_millis(200),
        settle_timeout: Duration::from_millis(200),
        reload_interval: Duration::from_millis(50),
        registry: Registry::builtin(),
        route_source: super::routes::SourceKind::File,
        kube: None,
        state: super::store::StoreSpec::Memory,
    };
    let v = Verifier::new(config, super::store::PaymentStore::memory()).unwrap();
    let t = v.state.table.load();
    assert!(t.loaded);
    assert!(t.is_empty());
    assert_eq!(
        t.facilitator.base_url(),
        crate::offers::DEFAULT_FACILITATOR_URL
    );
}

#[test]
fn forward_auth_grants_without_payment_only_when_asked_for() {
    use super::routes::settles_before_grant;
    // (--verify-only / --settle-before-grant, the file's verifyOnly) → settles before the 200
    for (flag, file, settles) in [
        (None, None, true),
        (None, Some(false), true),
        (None, Some(true), false),
        (Some(true), None, false),
        (Some(true), Some(false), false),
        (Some(false), Some(true), true),
        (Some(false), None, true),
    ] {
        assert_eq!(
            settles_before_grant(flag, file),
            settles,
            "flag {flag:?}, file {file:?}"
        );
    }
}
