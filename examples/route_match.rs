//! Route matching over 10,000 offers, for `benches/verifier_load.sh`.
//!
//! Builds the offers file the way `obol sell create` writes it (10,000 routes
//! `/services/offer-N/*`, plus a few hand-written globs and exact rules at the end), resolves it
//! with `obol::offers::resolve` (what a verifier reload does), compiles the [`Matcher`], and times
//! `Matcher::find` on request paths that hit the first, middle and last offer, a glob, and miss.
//!
//! `cargo run --release --example route_match -- [ROUTES]` prints one line per measurement.

use std::hint::black_box;
use std::time::Instant;

use obol::offers::{Matcher, Pattern, PricingConfig};
use obol::x402::networks::Registry;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("ROUTES"))
        .unwrap_or(10_000);
    let pay_to = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
    let mut yaml = format!("wallet: \"{pay_to}\"\nchain: base-sepolia\nroutes:\n");
    for i in 0..n {
        yaml.push_str(&format!(
            "  - pattern: /services/offer-{i}/*\n    price: '0.01'\n    offerNamespace: local\n    offerName: offer-{i}\n    upstreamURL: http://127.0.0.1:9000\n    stripPrefix: /services/offer-{i}\n"
        ));
    }
    yaml.push_str("  - pattern: /inference-*/v1/*\n    price: '0.02'\n");
    yaml.push_str("  - pattern: /health\n    price: '0.001'\n");

    let t = Instant::now();
    let cfg: PricingConfig =
        obol::offers::config::parse(&yaml, std::path::Path::new("bench.yaml")).expect("parse");
    let parse = t.elapsed();
    let registry = Registry::builtin();
    let t = Instant::now();
    let routes = obol::offers::resolve(&cfg, &registry).expect("resolve");
    let resolve = t.elapsed();
    let t = Instant::now();
    let matcher: Matcher<usize> = Matcher::new(
        routes
            .iter()
            .enumerate()
            .map(|(i, r)| (Pattern::parse(&r.pattern), i))
            .collect(),
    );
    let build = t.elapsed();
    println!(
        "routes={} yaml_bytes={} parse_ms={:.1} resolve_ms={:.1} matcher_build_ms={:.1}",
        matcher.len(),
        yaml.len(),
        parse.as_secs_f64() * 1e3,
        resolve.as_secs_f64() * 1e3,
        build.as_secs_f64() * 1e3
    );

    let cases = [
        ("first", "/services/offer-0/v1/chat/completions".to_string()),
        ("middle", format!("/services/offer-{}/v1/chat", n / 2)),
        ("last", format!("/services/offer-{}/x", n - 1)),
        ("glob", "/inference-llama/v1/chat".to_string()),
        ("exact", "/health".to_string()),
        ("miss", "/services/nobody/x".to_string()),
    ];
    let mut worst = 0f64;
    for (name, path) in &cases {
        let iters = 2_000_000u32;
        // Warm up, then time.
        for _ in 0..10_000 {
            black_box(matcher.find(black_box(path)));
        }
        let t = Instant::now();
        let mut hits = 0usize;
        for _ in 0..iters {
            if matcher.find(black_box(path)).is_some() {
                hits += 1;
            }
        }
        let ns = t.elapsed().as_secs_f64() * 1e9 / f64::from(iters);
        worst = worst.max(ns);
        println!(
            "match {name:<6} {path:<40} {ns:>7.1} ns/lookup matched={}",
            hits > 0
        );
    }
    println!("match_worst_ns={worst:.1}");
}
