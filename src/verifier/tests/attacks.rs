//! The attacks the gate must refuse, one test each, against the in-process verifier (real
//! EIP-712 signatures, scripted facilitator, recording upstream). Requests are written as raw
//! HTTP/1.1 so that no client normalises the path before the verifier sees it. The attacks that
//! need the chain (a nonce burnt on chain) are in `tests/gate_attacks.rs`.

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::*;

/// A second offer, dearer, with its own upstream base path and its own upstream secret.
const EXPENSIVE: &str = r#"  - pattern: /services/expensive/*
    price: "5"
    offerNamespace: local
    offerName: expensive
    upstreamURL: "UP/api"
    stripPrefix: /services/expensive
    upstreamAuth: "Bearer expensive-secret"
"#;

/// Sends `GET target` as raw bytes; returns the status, the lower-cased head and the body.
async fn raw_get(url: &str, target: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    let addr = url.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_string())
}

/// The harness with `offer` (YAML of one more route, `UP` standing for the upstream's URL)
/// appended to its offers file, once the reloaded table has `path`.
async fn with_offer(mode: Mode, offer: &str, path: &'static str) -> Harness {
    let h = start(mode, false).await;
    let text = std::fs::read_to_string(&h.offers).unwrap();
    let up = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("upstreamURL: "))
        .unwrap()
        .trim_matches('"')
        .to_string();
    std::fs::write(&h.offers, format!("{text}{}", offer.replace("UP", &up))).unwrap();
    let state = Arc::clone(&h.state);
    wait_for(move || state.table.load().find(path).is_some()).await;
    h
}

async fn with_expensive(mode: Mode) -> Harness {
    with_offer(mode, EXPENSIVE, "/services/expensive/x").await
}

fn reason(body: &str) -> String {
    serde_json::from_str::<Value>(body).unwrap()["reason"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[tokio::test]
async fn attack_1_path_confusion_in_proxy_mode_is_refused_before_payment() {
    let h = with_expensive(Mode::Proxy).await;
    // A valid payment for the cheap offer, presented with paths that climb into the dear one.
    let pay = h.pay("/services/demo/x").await;
    for target in [
        "/services/demo/%2e%2e/expensive/x",
        "/services/demo/../expensive/x",
        "/services/demo/.%2e/expensive/x",
        "/services/demo/%2E%2E/expensive/x",
        "/services/demo/..%5cexpensive/x",
        "/services/demo/..\\expensive/x",
        "/services/expensive/../admin",
        "/services/expensive/%2e%2e/admin",
        "/services/demo/x/..",
    ] {
        let (status, _, body) =
            raw_get(&h.url, target, &[("payment-signature", pay.as_str())]).await;
        assert_eq!(status, 400, "{target}: {body}");
        assert!(reason(&body).starts_with("path_"), "{target}: {body}");
    }
    assert!(
        h.up.seen.lock().unwrap().is_empty(),
        "no upstream was reached"
    );
    assert_eq!(
        (h.verifies(), h.settles()),
        (0, 0),
        "nothing was verified or settled"
    );
    // The payment is intact: it still buys what it paid for, at the path it was matched on.
    let (status, _, _) =
        raw_get(&h.url, "/services/demo/%78", &[("payment-signature", &pay)]).await;
    assert_eq!(status, 200);
    let seen = h.up.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].uri, "/x", "the path matched is the path sent");
    assert_eq!(seen[0].headers["authorization"], UPSTREAM_AUTH);
}

#[tokio::test]
async fn attack_1_upstream_paths_stay_under_the_offer_base() {
    let h = with_expensive(Mode::Proxy).await;
    let acc = h.accepted("/services/expensive/x").await;
    let pay = v2_header(&acc, signed(&acc, |_| {}));
    let (status, _, body) = raw_get(
        &h.url,
        "/services/expensive/v1/%63hat?x=%2e%2e",
        &[("payment-signature", &pay)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let seen = h.up.seen.lock().unwrap().clone();
    assert_eq!(seen[0].uri, "/api/v1/chat?x=%2e%2e");
    assert_eq!(seen[0].headers["authorization"], "Bearer expensive-secret");
}

#[tokio::test]
async fn attack_2_forward_auth_fails_closed() {
    let h = with_expensive(Mode::ForwardAuth).await;
    // Each of these reached the dear offer unpaid (200) before: Traefik routes them there.
    let bypasses = [
        ("/services/%65xpensive/x", 402),
        ("/%73ervices/expensive/x", 402),
        ("/services/expensive%2Fx", 400),
        ("//services/expensive/x", 400),
        ("/services//expensive/x", 400),
        ("/Services/expensive/x", 404),
        ("/services/expensive;jsessionid=1/x", 404),
        ("/services/expensive./x", 400),
        ("/services/expensive/.", 400),
        ("/services/./expensive/x", 400),
        ("/x/../services/expensive/x", 400),
        ("/services/expensive\\x", 400),
        ("/free/thing", 404),
        ("/", 404),
        ("services/expensive/x", 400),
    ];
    for (uri, want) in bypasses {
        let r = h.get("/verify", &[("x-forwarded-uri", uri)]).await;
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        assert_eq!(status, want, "{uri}: {body}");
        assert_ne!(status, 200, "{uri} was granted");
    }
    // A prefix stripped before ForwardAuth: the URI it asks about is not what was routed.
    let r = h
        .get(
            "/verify",
            &[
                ("x-forwarded-uri", "/services/demo/x"),
                ("x-forwarded-prefix", "/services/expensive"),
            ],
        )
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(json_of(r).await["reason"], "forwarded_prefix");
    assert_eq!((h.verifies(), h.settles()), (0, 0));
    // Decoded escapes are priced as the offer they name.
    let r = h
        .get("/verify", &[("x-forwarded-uri", "/services/%65xpensive/x")])
        .await;
    let b = json_of(r).await;
    assert_eq!(b["accepts"][0]["amount"], "5000000");
}

#[tokio::test]
async fn attack_3_a_new_authorization_cannot_resume_another_payments_settlement() {
    let h = with_expensive(Mode::Proxy).await;
    let cheap = h.accepted("/services/demo/x").await;
    let nonce = B256::random();
    let cheap_pay = v2_header(&cheap, signed(&cheap, |a| a.nonce = nonce));
    // The facilitator answers 5xx: the outcome of the cheap settlement is unknown.
    *h.fac.settle.lock().unwrap() = Settle::Status(502);
    let r = h
        .get("/services/demo/x", &[("payment-signature", &cheap_pay)])
        .await;
    assert_eq!(r.status(), 503);
    assert_eq!(json_of(r).await["reason"], "settlement_unknown");
    let settles = h.settles();
    // A new authorization with the same nonce, for the dear offer, and the chain reporting the
    // nonce used (the cheap one went through after all).
    *h.fac.settle.lock().unwrap() = Settle::Fail("invalid_exact_evm_nonce_already_used");
    let dear = h.accepted("/services/expensive/x").await;
    let dear_pay = v2_header(&dear, signed(&dear, |a| a.nonce = nonce));
    let r = h
        .get("/services/expensive/x", &[("payment-signature", &dear_pay)])
        .await;
    assert_eq!(r.status(), 409);
    let b = json_of(r).await;
    assert_eq!(b["reason"], "payment_replayed");
    assert!(
        b["detail"]
            .as_str()
            .unwrap()
            .contains("exact payment header")
    );
    assert_eq!(h.settles(), settles, "nothing was sent to the facilitator");
    assert!(
        h.up.seen
            .lock()
            .unwrap()
            .iter()
            .all(|s| !s.uri.starts_with("/api")),
        "the dear upstream was never reached"
    );
    // The same cheap header is still the one that may finish its settlement; with no RPC for
    // the chain the verifier cannot tell who used the nonce, so it does not grant.
    let r = h
        .get("/services/demo/x", &[("payment-signature", &cheap_pay)])
        .await;
    assert_eq!(r.status(), 503);
    let b = json_of(r).await;
    assert_eq!(b["reason"], "settlement_unknown");
    assert!(b["detail"].as_str().unwrap().contains("rpc"));
    assert_eq!(
        h.metric("obol_x402_verifier_charged_requests_total", "demo")
            .unwrap_or(0.0),
        0.0
    );
}

#[tokio::test]
async fn attack_9_an_upstream_redirect_is_not_settled() {
    let h = start(Mode::Proxy, false).await;
    let pay = h.pay("/services/demo/x").await;
    for code in [301, 302, 304, 307] {
        h.up.status.store(code, Ordering::SeqCst);
        let r = h
            .get("/services/demo/x", &[("payment-signature", &pay)])
            .await;
        assert_eq!(r.status().as_u16(), code);
        assert!(!r.headers().contains_key("payment-response"));
    }
    assert_eq!(h.settles(), 0, "a redirect is not what was paid for");
    // The payment was released: it still buys the real answer.
    h.up.status.store(200, Ordering::SeqCst);
    let r = h
        .get("/services/demo/x", &[("payment-signature", &pay)])
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(h.settles(), 1);
}

#[tokio::test]
async fn attack_4_and_9_internal_endpoints_stay_off_a_public_listener() {
    let public: SocketAddr = "0.0.0.0:8080".parse().unwrap();
    let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
    assert!(matches!(
        placement(Mode::Both, public, false),
        Err(ServeError::InternalListenerNeeded(_))
    ));
    assert_eq!(
        placement(Mode::Both, public, true).unwrap(),
        Internal::Separate
    );
    assert_eq!(
        placement(Mode::Proxy, public, false).unwrap(),
        Internal::Separate
    );
    assert_eq!(
        placement(Mode::ForwardAuth, public, false).unwrap(),
        Internal::OnMain
    );
    assert_eq!(
        placement(Mode::Both, local, false).unwrap(),
        Internal::OnMain
    );

    // The routers themselves: the public one in mode both has neither /verify nor /metrics.
    let h = start(Mode::Both, false).await;
    let public = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let app = router(Arc::clone(&h.state), Internal::Separate)
            .into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(l, app).await });
        addr
    };
    let internal = spawn_router(internal_router(Arc::clone(&h.state))).await;
    let acc = h.accepted("/services/demo/x").await;
    let pay = v2_header(&acc, signed(&acc, |_| {}));
    let fwd = [
        ("x-forwarded-uri", "/services/demo/x"),
        ("payment-signature", pay.as_str()),
    ];
    let (status, head, _) = raw_get(&format!("http://{public}"), "/verify", &fwd).await;
    assert_eq!(status, 404);
    assert!(
        !head.contains("up-secret"),
        "no upstream secret on the public listener"
    );
    let (status, _, body) = raw_get(&format!("http://{public}"), "/metrics", &[]).await;
    assert_eq!(status, 404);
    assert!(!body.contains("obol_x402_verifier"));
    let (status, _, _) = raw_get(&format!("http://{public}"), "/healthz", &[]).await;
    assert_eq!(status, 200);
    // The internal listener has both.
    let (status, head, _) = raw_get(&format!("http://{internal}"), "/verify", &fwd).await;
    assert_eq!(status, 200);
    assert!(head.contains("authorization: bearer up-secret"));
    let (status, _, body) = raw_get(&format!("http://{internal}"), "/metrics", &[]).await;
    assert_eq!(status, 200);
    assert!(body.contains("obol_x402_verifier_requests_total"));
}

/// An offer that declares its routes: a dear `/submit`, a free `/jobs/*`; nothing else.
const DECLARED: &str = r#"  - pattern: /services/api/*
    price: "0.01"
    offerNamespace: local
    offerName: api
    upstreamURL: "UP"
    stripPrefix: /services/api
    upstreamAuth: "Bearer api-secret"
    routes:
      - path: /submit
        price: "0.5"
      - path: /jobs/*
        gate: free
"#;

async fn with_declared(mode: Mode) -> Harness {
    with_offer(mode, DECLARED, "/services/api/submit").await
}

#[tokio::test]
async fn declared_routes_free_is_served_free_and_undeclared_is_refused_in_both_modes() {
    let h = with_declared(Mode::Proxy).await;
    // Free: served without a payment, with the upstream's credentials, nothing settled.
    let r = h.get("/services/api/jobs/42", &[]).await;
    assert_eq!(r.status(), 200);
    assert!(!r.headers().contains_key("payment-response"));
    let seen = h.up.seen.lock().unwrap().clone();
    assert_eq!(seen[0].uri, "/jobs/42");
    assert_eq!(seen[0].headers["authorization"], "Bearer api-secret");
    assert!(!seen[0].headers.contains_key("x-payment-payer"));
    // The declared paid route has its own price.
    let acc = h.accepted("/services/api/submit").await;
    assert_eq!(acc["amount"], "500000");
    // Undeclared paths of the offer: refused, never charged at the offer's price.
    for path in [
        "/services/api/other",
        "/services/api/",
        "/services/api/submit/x",
    ] {
        let r = h.get(path, &[]).await;
        assert_eq!(r.status(), 404, "{path}");
        assert_eq!(json_of(r).await["reason"], "route_not_declared", "{path}");
    }
    assert_eq!((h.verifies(), h.settles()), (0, 0));

    let h = with_declared(Mode::ForwardAuth).await;
    let r = h
        .get("/verify", &[("x-forwarded-uri", "/services/api/jobs/1")])
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["authorization"], "Bearer api-secret");
    assert!(!r.headers().contains_key("x-payment-payer"));
    let r = h
        .get("/verify", &[("x-forwarded-uri", "/services/api/other")])
        .await;
    assert_eq!(r.status(), 404);
    let r = h
        .get("/verify", &[("x-forwarded-uri", "/services/api/submit")])
        .await;
    assert_eq!(r.status(), 402);
}
