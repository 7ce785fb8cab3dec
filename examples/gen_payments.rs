//! Pre-signs x402 v2 payments for the paid-path load test of `benches/verifier_load.sh`.
//!
//! It asks a seller for its 402 (`GET URL` with the given headers), takes `accepts[0]` from the
//! `PAYMENT-REQUIRED` header, and signs COUNT distinct EIP-3009 authorizations for it (fresh
//! random nonce each, `validAfter = now - 600`, `validBefore = now + maxTimeoutSeconds`) with
//! obol's own EIP-712 code. Each output line is one `PAYMENT-SIGNATURE` header value that echoes
//! `accepted` and `resource` verbatim, so any x402 v2 seller accepts it once.
//!
//! ```text
//! cargo run --release --example gen_payments -- URL COUNT OUT_FILE [HEADER: VALUE]...
//! ```
//! The signing key is `$PRIVATE_KEY` (default: anvil's account 1).

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alloy_primitives::{B256, U256};
use alloy_signer_local::PrivateKeySigner;
use base64::Engine as _;
use obol::x402::eip3009::{self, TransferWithAuthorization};
use obol::x402::wire::{PaymentPayload, PaymentPayloadV2, ResourceInfo};
use serde_json::Value;

/// Anvil's account 1 (the tests' payer).
const DEFAULT_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

fn usage() -> ! {
    eprintln!("usage: gen_payments URL COUNT OUT_FILE ['Header: value']...");
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        usage();
    }
    let url = &args[0];
    let count: usize = args[1].parse().unwrap_or_else(|_| usage());
    let out_path = &args[2];
    let key: PrivateKeySigner = std::env::var("PRIVATE_KEY")
        .unwrap_or_else(|_| DEFAULT_KEY.to_string())
        .parse()
        .expect("PRIVATE_KEY is not a private key");

    // The seller's own 402.
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut req = client.get(url);
    for h in &args[3..] {
        let (name, value) = h.split_once(':').unwrap_or_else(|| usage());
        req = req.header(name.trim(), value.trim());
    }
    let resp = req.send().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(resp.status(), 402, "GET {url} did not answer 402");
    let header = resp
        .headers()
        .get("payment-required")
        .expect("no PAYMENT-REQUIRED header")
        .to_str()
        .unwrap()
        .to_string();
    let required: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(header.trim())
            .expect("PAYMENT-REQUIRED is not base64"),
    )
    .expect("PAYMENT-REQUIRED is not JSON");
    let accepted = required["accepts"][0].clone();
    let resource: Option<ResourceInfo> = serde_json::from_value(required["resource"].clone()).ok();
    let s = |k: &str| {
        accepted[k]
            .as_str()
            .unwrap_or_else(|| panic!("accepts[0].{k} missing: {accepted}"))
            .to_string()
    };
    let chain_id: u64 = s("network")
        .strip_prefix("eip155:")
        .and_then(|id| id.parse().ok())
        .expect("an eip155 network");
    let domain = eip3009::domain(
        accepted["extra"]["name"].as_str().expect("extra.name"),
        accepted["extra"]["version"]
            .as_str()
            .expect("extra.version"),
        chain_id,
        s("asset").parse().expect("asset address"),
    );
    let timeout = accepted["maxTimeoutSeconds"].as_u64().unwrap_or(300);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let to = s("payTo").parse().expect("payTo address");
    let value: U256 = s("amount").parse().expect("amount");

    // Sign on every core.
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let lines: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (key, domain, accepted, resource) = (&key, &domain, &accepted, &resource);
                scope.spawn(move || {
                    (t..count)
                        .step_by(threads)
                        .map(|_| {
                            let auth = TransferWithAuthorization {
                                from: key.address(),
                                to,
                                value,
                                validAfter: U256::from(now - 600),
                                validBefore: U256::from(now + timeout),
                                nonce: B256::random(),
                            };
                            let sig =
                                eip3009::sign_hash_local(key, eip3009::signing_hash(&auth, domain))
                                    .expect("sign");
                            PaymentPayload::V2(PaymentPayloadV2 {
                                x402_version: 2,
                                resource: resource.clone(),
                                accepted: accepted.clone(),
                                payload: eip3009::to_wire(&auth, &sig),
                                extensions: None,
                            })
                            .to_header()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(out_path).unwrap_or_else(|e| panic!("create {out_path}: {e}")),
    );
    for line in &lines {
        writeln!(out, "{line}").unwrap();
    }
    out.flush().unwrap();
    eprintln!(
        "signed {} payments for {} {} on {} (valid until now+{timeout}s) -> {out_path}",
        lines.len(),
        s("amount"),
        s("asset"),
        s("network"),
    );
}
