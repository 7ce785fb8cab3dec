//! The buyer sidecar as its tests drive it: pre-signed pools (signed with obol's x402 library
//! and the payer's key), a running `obol serve buyer` and its HTTP API, metric lookups.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use alloy_primitives::{B256, U256};
use alloy_signer_local::PrivateKeySigner;
use obol::x402::eip3009::{self, TransferWithAuthorization};
use serde_json::{Value, json};

use super::chain::{CHAIN_ID, PAYER_ADDRESS, PAYER_KEY, SELLER_ADDRESS, Token};
use super::fake_kube::FakeKube;
use super::paid_llm::PaidLlm;
use super::payment::{decode_b64_json, unix_now};
use super::process::{ChildGuard, wait_until};
use super::x402_rail::Rail;

/// What a buyer test on a cluster needs: the chain, the paid LLM selling at `price` to the
/// seller, a fake cluster with obol's CRDs and the namespace, and a private home (with the
/// rail's networks file) for `obol`.
pub struct PaidCluster {
    pub rail: Rail,
    pub llm: PaidLlm,
    pub kube: FakeKube,
    pub dir: tempfile::TempDir,
    pub networks: std::path::PathBuf,
}

impl PaidCluster {
    pub fn start(price: u64, namespace: &str) -> PaidCluster {
        let rail = Rail::start();
        let llm = PaidLlm::start(&rail.facilitator, &rail.token, SELLER_ADDRESS, price);
        let kube = FakeKube::start();
        kube.apply(&super::fake_kube::obol_crds());
        kube.apply(&format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {namespace}}}\n"
        ));
        let dir = tempfile::tempdir().unwrap();
        let networks = rail.write_networks_file(dir.path());
        PaidCluster {
            rail,
            llm,
            kube,
            dir,
            networks,
        }
    }

    /// `obol` with the private home (see [`obol`]).
    pub fn obol(&self) -> Command {
        obol(self.dir.path(), &self.networks)
    }
}

/// `n` EIP-3009 authorizations of `price` from the payer to the seller on `token`, signed
/// with obol's library; alternately in the legacy shape and the `{"id", "payment"}` shape.
/// With each, the nonce (to look it up on chain).
pub fn presign(token: &Token, price: u64, n: usize) -> Vec<(Value, B256)> {
    let signer: PrivateKeySigner = PAYER_KEY.parse().unwrap();
    let domain = eip3009::domain(Rail::TOKEN_NAME, "2", CHAIN_ID, token.address());
    let now = unix_now();
    (0..n)
        .map(|i| {
            let auth = TransferWithAuthorization {
                from: PAYER_ADDRESS,
                to: SELLER_ADDRESS,
                value: U256::from(price),
                validAfter: U256::from(now - 600),
                validBefore: U256::from(now + 3600),
                nonce: B256::random(),
            };
            let sig =
                eip3009::sign_hash_local(&signer, eip3009::signing_hash(&auth, &domain)).unwrap();
            let wire = eip3009::to_wire(&auth, &sig);
            let a = &wire.authorization;
            let value = if i % 2 == 0 {
                json!({"signature": wire.signature, "from": a.from, "to": a.to, "value": a.value,
                       "validAfter": a.valid_after, "validBefore": a.valid_before, "nonce": a.nonce})
            } else {
                json!({"id": format!("auth-{i}-{}", a.nonce), "payment": {"x402Version": 2, "payload": wire}})
            };
            (value, auth.nonce)
        })
        .collect()
}

/// The auths of a [`presign`] list.
pub fn auths(list: &[(Value, B256)]) -> Vec<Value> {
    list.iter().map(|(v, _)| v.clone()).collect()
}

/// The number of payments of `price` between two (payer, seller) balance readings, checked
/// both ways.
pub fn payments_between(price: u64, before: (U256, U256), after: (U256, U256)) -> u64 {
    let paid = before.0 - after.0;
    let got = after.1 - before.1;
    assert_eq!(paid, got, "what the payer lost, the seller got");
    assert_eq!(paid % U256::from(price), U256::ZERO, "whole payments only");
    (paid / U256::from(price)).to::<u64>()
}

/// (payer, seller) balances of `token`.
pub fn balances(token: &Token) -> (U256, U256) {
    (
        token.balance_of(PAYER_ADDRESS),
        token.balance_of(SELLER_ADDRESS),
    )
}

/// `obol` with a private home under `home`, the rail's networks file, no keyring and info logs.
pub fn obol(home: &Path, networks: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_obol"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("xdg-config"))
        .env("XDG_STATE_HOME", home.join("xdg-state"))
        .env("OBOL_NETWORKS", networks)
        .env("OBOL_KEYRING", "off")
        .env("RUST_LOG", "info");
    cmd
}

/// A running `obol serve buyer`.
pub struct Sidecar {
    pub guard: ChildGuard,
    pub port: u16,
}

/// An HTTP answer of the sidecar.
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The settlement receipt, decoded.
    pub fn receipt(&self) -> Option<Value> {
        self.headers
            .get("payment-response")
            .map(|v| decode_b64_json(v.to_str().unwrap()))
    }
}

pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .no_proxy()
        .build()
        .unwrap()
}

impl Sidecar {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn post(&self, path: &str, body: Value) -> Answer {
        let resp = client()
            .post(format!("{}{path}", self.url()))
            .header("authorization", "Bearer unused")
            .json(&body)
            .send()
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        Answer {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            body: resp.text().unwrap(),
        }
    }

    pub fn chat(&self, model: &str) -> Answer {
        self.post(
            "/v1/chat/completions",
            json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}),
        )
    }

    pub fn status(&self) -> Value {
        client()
            .get(format!("{}/status", self.url()))
            .send()
            .unwrap()
            .json()
            .unwrap()
    }

    /// `GET <path>`: (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        let resp = client()
            .get(format!("{}{path}", self.url()))
            .send()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        (resp.status().as_u16(), resp.text().unwrap())
    }

    pub fn metrics(&self) -> String {
        self.get("/metrics").1
    }

    /// `POST /admin/reload`, then waits until `done(/status)` holds.
    pub fn reload_until(&self, done: impl Fn(&Value) -> bool) {
        let answer: Value = client()
            .post(format!("{}/admin/reload", self.url()))
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert!(
            answer["status"] == "reload triggered" || answer["status"] == "reload already pending",
            "{answer}"
        );
        self.wait_status(Duration::from_secs(20), done);
    }

    /// Waits until `done(/status)` holds.
    pub fn wait_status(&self, within: Duration, done: impl Fn(&Value) -> bool) {
        wait_until(within, || {
            let s = self.status();
            if done(&s) { Ok(()) } else { Err(s.to_string()) }
        })
        .unwrap();
    }
}

/// The value of `name{…upstream="<upstream>"…}` in an exposition (0 when absent).
pub fn metric(text: &str, name: &str, upstream: &str, extra: &str) -> f64 {
    let want = format!("upstream=\"{upstream}\"");
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter(|l| l.contains(&want) && l.contains(extra))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
