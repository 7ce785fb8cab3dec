//! Load tools for `benches/sidecar_overhead.sh`: a free OpenAI-like upstream and a
//! constant-rate (open-loop) load generator that records a latency histogram.
//!
//! ```text
//! cargo run --release --example sidecar_load -- upstream [ADDR]
//!     answers every POST with a small chat completion (never 402); prints `listening on ADDR`
//! cargo run --release --example sidecar_load -- load URL [--rate N] [--duration S] [--warmup S]
//!                                                       [--model M]
//!     sends POST URL with {"model": M, "messages": [...]} at N requests per second (default
//!     1000) for S seconds (default 20) after a warm-up (default 3 s, not recorded), each
//!     request on its own schedule whatever the previous ones do; prints one JSON line with
//!     the percentiles of the latency from sending to the last byte of the answer
//! ```
//! Both run on a single-threaded tokio runtime, to leave the CPU to what is measured.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

const ANSWER: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion","created":0,"model":"bench-model","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#;

fn usage() -> ! {
    eprintln!(
        "usage: sidecar_load upstream [ADDR] | sidecar_load load URL [--rate N] [--duration S] [--warmup S] [--model M]"
    );
    std::process::exit(1)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    match args.first().map(String::as_str) {
        Some("upstream") => rt.block_on(upstream(
            args.get(1).map_or("127.0.0.1:0", String::as_str),
        )),
        Some("load") => {
            let Some(url) = args.get(1) else { usage() };
            let mut rate = 1000u64;
            let mut duration = 20u64;
            let mut warmup = 3u64;
            let mut model = "bench-model".to_owned();
            let mut it = args[2..].iter();
            while let Some(flag) = it.next() {
                let value = it.next().unwrap_or_else(|| usage());
                match flag.as_str() {
                    "--rate" => rate = value.parse().unwrap_or_else(|_| usage()),
                    "--duration" => duration = value.parse().unwrap_or_else(|_| usage()),
                    "--warmup" => warmup = value.parse().unwrap_or_else(|_| usage()),
                    "--model" => model = value.clone(),
                    _ => usage(),
                }
            }
            rt.block_on(load(url, rate, duration, warmup, &model));
        }
        _ => usage(),
    }
}

async fn upstream(addr: &str) {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .unwrap_or_else(|e| panic!("cannot listen on {addr}: {e}"));
    let bound: SocketAddr = listener.local_addr().expect("local addr");
    println!("listening on {bound}");
    let app = axum::Router::new().fallback(|body: Bytes| async move {
        let _ = body.len();
        (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            ANSWER,
        )
    });
    axum::serve(listener, app).await.expect("serve");
}

async fn load(url: &str, rate: u64, duration: u64, warmup: u64, model: &str) {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(1024)
        .build_http();
    let uri: hyper::Uri = url.parse().unwrap_or_else(|_| usage());
    let body = Bytes::from(
        serde_json::json!({
            "model": model,
            "messages": [{"role": "user", "content": "Say ok."}],
            "max_tokens": 1
        })
        .to_string(),
    );
    let period = Duration::from_nanos(1_000_000_000 / rate.max(1));
    let total = (warmup + duration) * rate;
    let recorded_from = warmup * rate;
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let due = start + period * (i as u32);
        tokio::time::sleep_until(due.into()).await;
        let client = client.clone();
        let uri = uri.clone();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let req = hyper::Request::post(uri)
                .header("content-type", "application/json")
                .body(Full::new(body))
                .expect("request");
            let ok = match client.request(req).await {
                Ok(resp) => {
                    let status = resp.status();
                    resp.into_body().collect().await.is_ok() && status.is_success()
                }
                Err(_) => false,
            };
            let latency = sent.elapsed();
            (i, ok, latency, sent.duration_since(due))
        }));
    }
    let sending = start.elapsed();
    let mut latencies = Vec::with_capacity(duration as usize * rate as usize);
    let mut late = Vec::with_capacity(latencies.capacity());
    let mut errors = 0u64;
    for t in tasks {
        let (i, ok, latency, lateness) = t.await.expect("task");
        if i < recorded_from {
            continue;
        }
        if ok {
            latencies.push(latency.as_micros() as u64);
            late.push(lateness.as_micros() as u64);
        } else {
            errors += 1;
        }
    }
    latencies.sort_unstable();
    late.sort_unstable();
    let pct = |v: &[u64], p: f64| -> u64 {
        if v.is_empty() {
            return 0;
        }
        let idx = ((p / 100.0) * (v.len() as f64)).ceil() as usize;
        v[idx.clamp(1, v.len()) - 1]
    };
    let out = serde_json::json!({
        "url": url,
        "rate": rate,
        "duration_s": duration,
        "ok": latencies.len(),
        "errors": errors,
        "achieved_rps": (total as f64 / sending.as_secs_f64()).round(),
        "p50_us": pct(&latencies, 50.0),
        "p90_us": pct(&latencies, 90.0),
        "p99_us": pct(&latencies, 99.0),
        "p999_us": pct(&latencies, 99.9),
        "max_us": latencies.last().copied().unwrap_or(0),
        "send_lateness_p99_us": pct(&late, 99.0),
    });
    println!("{out}");
}
