//! The ceiling for `benches/verifier_load.sh`: a bare axum server answering every request with
//! `200 hello`, on the same tokio/axum stack as `obol serve verifier`.
//!
//! `cargo run --release --example bench_hello -- [ADDR]` (default 127.0.0.1:0); prints
//! `listening on 127.0.0.1:PORT` once bound.

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_string());
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .unwrap_or_else(|e| panic!("cannot listen on {addr}: {e}"));
    println!("listening on {}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(|| async { "hello" });
    axum::serve(listener, app).await.unwrap();
}
