//! EIP-712 cost per payment: what the buyer pays to sign one EIP-3009 authorization and what
//! the verifier pays to check one signature locally.
//!
//! Run: `cargo bench --bench eip712` (add `-- --quick` for a fast CI pass).

use std::hint::black_box;

use alloy_primitives::{Address, B256, U256, address, b256};
use alloy_signer_local::PrivateKeySigner;
use criterion::{Criterion, criterion_group, criterion_main};
use obol::x402::eip3009::{
    TransferWithAuthorization, domain, recover, sign_hash_local, signing_hash,
};

/// Anvil/hardhat dev key #0 (public test key).
const ANVIL_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const BASE_SEPOLIA_USDC: Address = address!("0x036CbD53842c5426634e7929541eC2318f3dCF7e");
const NONCE: B256 = b256!("0xf3746613c2d920b5fdabc0856f2aeb2d4f88ee6037b8cc5d04a71a4462f13480");

fn auth(signer: &PrivateKeySigner) -> TransferWithAuthorization {
    TransferWithAuthorization {
        from: signer.address(),
        to: address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8"),
        value: U256::from(10_000u64),
        validAfter: U256::from(1_740_672_089u64),
        validBefore: U256::from(1_740_672_154u64),
        nonce: NONCE,
    }
}

fn bench(c: &mut Criterion) {
    let signer: PrivateKeySigner = ANVIL_KEY.parse().expect("valid test key");
    let auth = auth(&signer);
    let domain = domain("USDC", "2", 84532, BASE_SEPOLIA_USDC);
    let signature = sign_hash_local(&signer, signing_hash(&auth, &domain)).expect("signs");

    c.bench_function("hash_and_sign", |b| {
        b.iter(|| {
            let hash = signing_hash(black_box(&auth), black_box(&domain));
            sign_hash_local(&signer, hash).expect("signs")
        })
    });

    c.bench_function("hash_and_recover", |b| {
        b.iter(|| {
            let hash = signing_hash(black_box(&auth), black_box(&domain));
            recover(black_box(&signature), hash).expect("recovers")
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
