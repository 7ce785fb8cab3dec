//! An x402 facilitator that answers at once, for `benches/verifier_load.sh`: the paid path of a
//! seller is measured without a chain in the way. Loopback only; it checks nothing.
//!
//! - `POST /verify` → `{"isValid": true, "payer": <authorization.from>}`
//! - `POST /settle` → `{"success": true, "transaction": 0x<random>, "network": <requirement's>,
//!   "payer": <authorization.from>}`
//! - `GET /supported` → the `exact` scheme on the networks given (x402 v2), default
//!   `eip155:84532` and `eip155:31337`.
//!
//! `cargo run --release --example instant_facilitator -- [ADDR] [NETWORK...]` (default
//! 127.0.0.1:0); prints `listening on 127.0.0.1:PORT` once bound.

use axum::Json;
use axum::routing::{get, post};
use serde_json::{Value, json};

fn payer(body: &Value) -> Value {
    body["paymentPayload"]["payload"]["authorization"]["from"].clone()
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:0".to_string());
    let mut networks: Vec<String> = args.collect();
    if networks.is_empty() {
        networks = vec!["eip155:84532".into(), "eip155:31337".into()];
    }
    let kinds: Vec<Value> = networks
        .iter()
        .map(|n| json!({"x402Version": 2, "scheme": "exact", "network": n}))
        .collect();
    let supported = json!({
        "kinds": kinds,
        "extensions": [],
        "signers": {"eip155:*": ["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"]},
    });
    let app = axum::Router::new()
        .route(
            "/verify",
            post(|Json(body): Json<Value>| async move {
                Json(json!({"isValid": true, "payer": payer(&body)}))
            }),
        )
        .route(
            "/settle",
            post(|Json(body): Json<Value>| async move {
                let tx = alloy_primitives::B256::random().to_string();
                Json(json!({
                    "success": true,
                    "transaction": tx,
                    "network": body["paymentRequirements"]["network"],
                    "payer": payer(&body),
                }))
            }),
        )
        .route(
            "/supported",
            get(move || async move { Json(supported.clone()) }),
        )
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }));
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .unwrap_or_else(|e| panic!("cannot listen on {addr}: {e}"));
    println!("listening on {}", listener.local_addr().unwrap());
    axum::serve(listener, app).await.unwrap();
}
