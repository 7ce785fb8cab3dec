//! The buyer sidecar's CPU cost per payment header:
//!
//! - `live_signature`: one live-signed payment as the sidecar makes it when an upstream's pool
//!   is empty: fresh nonce, EIP-712 hash, secp256k1 signature, the wallet's check that the
//!   signature recovers to its address, the x402 v2 payload echoing the seller's requirement,
//!   base64 header (`sidecar::payment::sign_live`). Target: ≤ 150 µs.
//! - `pool_header`: the header for a pre-signed authorization (`sidecar::payment::from_pool`).
//!
//! Run: `cargo bench --bench sidecar_sign` (add `-- --quick` for a fast pass). Needs
//! `[[bench]] name = "sidecar_sign", harness = false` in Cargo.toml.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use obol::buyer::sidecar::UpstreamSpec;
use obol::buyer::sidecar::config::UpstreamConfig;
use obol::buyer::sidecar::metrics::Metrics;
use obol::buyer::sidecar::payment::{from_pool, header, pick, sign_live};
use obol::buyer::sidecar::pool::{AuthPool, PoolAuth};
use obol::buyer::sidecar::upstream::resolve;
use obol::buyer::wallet::{Wallet, parse_private_key};
use obol::x402::networks::Registry;
use obol::x402::wire::{PaymentRequired, PaymentRequiredV2, PaymentRequirements};

/// Anvil dev key #1 (public test key).
const KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const PAY_TO: &str = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";
const BASE_SEPOLIA_USDC: &str = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
const NOW: u64 = 1_800_000_000;

fn bench(c: &mut Criterion) {
    let spec = UpstreamSpec {
        name: "qwen".into(),
        config: UpstreamConfig {
            url: "http://seller.example/services/qwen".into(),
            remote_model: "qwen3:32b".into(),
            network: "base-sepolia".into(),
            pay_to: PAY_TO.into(),
            asset: BASE_SEPOLIA_USDC.into(),
            price: "1000".into(),
            live_signing: true,
            ..Default::default()
        },
        auths: vec![],
        origin: "bench".into(),
    };
    let up = resolve(&spec, &Registry::builtin(), "0.10", NOW)
        .expect("valid upstream")
        .into_upstream(
            Arc::new(AuthPool::new()),
            Metrics::new().series("qwen", "qwen3:32b", "eip155:84532"),
        );
    let required = PaymentRequired::V2(PaymentRequiredV2::new(
        None,
        None,
        vec![PaymentRequirements {
            scheme: "exact".into(),
            network: "eip155:84532".into(),
            amount: "1000".into(),
            asset: BASE_SEPOLIA_USDC.into(),
            pay_to: PAY_TO.into(),
            max_timeout_seconds: 300,
            extra: Some(serde_json::json!({"name": "USDC", "version": "2"})),
        }],
    ));
    let req = pick(&up, &required, &Registry::builtin()).expect("agreed requirement");
    let wallet = Wallet::Local(parse_private_key(KEY, "bench").expect("valid key"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");

    c.bench_function("live_signature", |b| {
        b.iter(|| {
            let evm = rt
                .block_on(sign_live(black_box(&req), &up, &wallet, NOW, 3600))
                .expect("signs");
            header(black_box(&required), &req, evm)
        })
    });

    let evm = rt
        .block_on(sign_live(&req, &up, &wallet, NOW, 3600))
        .expect("signs");
    let auth = PoolAuth {
        key: "k".into(),
        payload: evm,
        valid_before: NOW + 300,
    };
    c.bench_function("pool_header", |b| {
        b.iter(|| from_pool(black_box(&required), black_box(&req), black_box(&auth)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
