//! Load tools for `benches/sidecar_overhead.sh`: a free OpenAI-like upstream and a
//! constant-rate (open-loop) load generator that records a latency histogram.
//!
//! ```text
//! cargo run --release --example sidecar_load -- upstream [ADDR]
//!     answers every POST with a small chat completion (never 402); prints `listening on ADDR`
//! cargo run --release --example sidecar_load -- load URL [--model M] [--also URL2 [--model M2]]
//!                                     [--rate N] [--duration S] [--warmup S]
//!     sends POST URL with {"model": M, "messages": [...]} at N requests per second (default
//!     1000) for S seconds (default 20) after a warm-up (default 3 s, not recorded), each
//!     request on its own schedule whatever the previous ones do; prints one JSON line per URL
//!     with the percentiles of the latency from sending to the last byte of the answer.
//!     With `--also`, URL2 gets the same rate at the same time, offset by half a period: both
//!     see the same machine, so noise from elsewhere hits both alike.
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
        "usage: sidecar_load upstream [ADDR] | sidecar_load load URL [--model M] [--also URL2 [--model M2]] [--rate N] [--duration S] [--warmup S]"
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
        Some("upstream") => {
            rt.block_on(upstream(args.get(1).map_or("127.0.0.1:0", String::as_str)))
        }
        Some("load") => {
            let Some(url) = args.get(1) else { usage() };
            let mut rate = 1000u64;
            let mut duration = 20u64;
            let mut warmup = 3u64;
            let mut targets = vec![(url.clone(), "bench-model".to_owned())];
            let mut it = args[2..].iter();
            while let Some(flag) = it.next() {
                let value = it.next().unwrap_or_else(|| usage());
                match flag.as_str() {
                    "--rate" => rate = value.parse().unwrap_or_else(|_| usage()),
                    "--duration" => duration = value.parse().unwrap_or_else(|_| usage()),
                    "--warmup" => warmup = value.parse().unwrap_or_else(|_| usage()),
                    "--model" => targets.last_mut().expect("a target").1 = value.clone(),
                    "--also" => targets.push((value.clone(), "bench-model".to_owned())),
                    _ => usage(),
                }
            }
            rt.block_on(load(&targets, rate, duration, warmup));
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

/// One URL under load.
struct Target {
    uri: hyper::Uri,
    url: String,
    body: Bytes,
}

async fn load(targets: &[(String, String)], rate: u64, duration: u64, warmup: u64) {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(1024)
        .build_http();
    let targets: Vec<Target> = targets
        .iter()
        .map(|(url, model)| Target {
            uri: url.parse().unwrap_or_else(|_| usage()),
            url: url.clone(),
            body: Bytes::from(
                serde_json::json!({
                    "model": model,
                    "messages": [{"role": "user", "content": "Say ok."}],
                    "max_tokens": 1
                })
                .to_string(),
            ),
        })
        .collect();
    let n = targets.len() as u32;
    let period = Duration::from_nanos(1_000_000_000 / rate.max(1));
    let total = (warmup + duration) * rate;
    let recorded_from = warmup * rate;
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize * targets.len());
    for i in 0..total {
        for (k, t) in targets.iter().enumerate() {
            // Each target on its own schedule, offset by a fraction of the period.
            let due = start + period * (i as u32) + period * (k as u32) / n;
            tokio::time::sleep_until(due.into()).await;
            let client = client.clone();
            let uri = t.uri.clone();
            let body = t.body.clone();
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
                (k, i, ok, sent.elapsed(), sent.duration_since(due))
            }));
        }
    }
    let sending = start.elapsed();
    let per = duration as usize * rate as usize;
    let mut latencies = vec![Vec::with_capacity(per); targets.len()];
    let mut late = vec![Vec::with_capacity(per); targets.len()];
    let mut errors = vec![0u64; targets.len()];
    for t in tasks {
        let (k, i, ok, latency, lateness) = t.await.expect("task");
        if i < recorded_from {
            continue;
        }
        if ok {
            latencies[k].push(latency.as_micros() as u64);
            late[k].push(lateness.as_micros() as u64);
        } else {
            errors[k] += 1;
        }
    }
    let pct = |v: &[u64], p: f64| -> u64 {
        if v.is_empty() {
            return 0;
        }
        let idx = ((p / 100.0) * (v.len() as f64)).ceil() as usize;
        v[idx.clamp(1, v.len()) - 1]
    };
    for (k, t) in targets.iter().enumerate() {
        let lat = &mut latencies[k];
        lat.sort_unstable();
        late[k].sort_unstable();
        let out = serde_json::json!({
            "url": t.url,
            "rate": rate,
            "duration_s": duration,
            "ok": lat.len(),
            "errors": errors[k],
            "achieved_rps": (total as f64 / sending.as_secs_f64()).round(),
            "p50_us": pct(lat, 50.0),
            "p90_us": pct(lat, 90.0),
            "p99_us": pct(lat, 99.0),
            "p999_us": pct(lat, 99.9),
            "max_us": lat.last().copied().unwrap_or(0),
            "send_lateness_p99_us": pct(&late[k], 99.0),
        });
        println!("{out}");
    }
}
