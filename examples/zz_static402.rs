// temporary experiment, deleted after use
use axum::body::Body;
use axum::http::Response;
#[tokio::main]
async fn main() {
    let addr = std::env::args().nth(1).unwrap();
    let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
    let hdr = "x".repeat(600);
    let body = bytes::Bytes::from("y".repeat(451));
    let app = axum::Router::new().fallback(move || {
        let hdr = hdr.clone();
        let body = body.clone();
        async move {
            Response::builder()
                .status(402)
                .header("cache-control", "no-store")
                .header("payment-required", hdr)
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap()
        }
    });
    axum::serve(listener, app).await.unwrap();
}
