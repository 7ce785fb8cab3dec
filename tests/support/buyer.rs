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

/// A seller that asks for payment and never serves: every request without a payment header gets
/// a v2 402 for `price` of `token` paid to the seller (with `max_timeout_seconds`), every
/// request with one gets `paid_status` (500 by default) and no receipt. It records every payment
/// header it was handed, so a test can settle them later the way a hostile seller would.
pub struct HostileSeller {
    pub port: u16,
    seen: std::sync::Arc<std::sync::Mutex<Vec<Seen402>>>,
}

/// One request the hostile seller received.
#[derive(Debug, Clone)]
pub struct Seen402 {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Seen402 {
    /// The payment header (`PAYMENT-SIGNATURE` or `X-PAYMENT`), if any.
    pub fn payment(&self) -> Option<&str> {
        self.header("payment-signature")
            .or_else(|| self.header("x-payment"))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl HostileSeller {
    pub fn start(token: alloy_primitives::Address, price: u64, max_timeout_seconds: u64) -> Self {
        use std::io::{BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = std::sync::Arc::clone(&seen);
        let required = json!({
            "x402Version": 2,
            "error": "payment required",
            "resource": {"url": format!("http://127.0.0.1:{port}/v1/chat/completions")},
            "accepts": [Self::requirement(token, price, max_timeout_seconds)],
        });
        let required = super::payment::encode_b64_json(&required);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let log = std::sync::Arc::clone(&log);
                let required = required.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(conn.try_clone().unwrap());
                    loop {
                        let Some((path, headers)) = read_head(&mut reader) else {
                            return;
                        };
                        let len: usize = headers
                            .iter()
                            .find(|(n, _)| n == "content-length")
                            .and_then(|(_, v)| v.parse().ok())
                            .unwrap_or(0);
                        let mut body = vec![0; len];
                        if reader.read_exact(&mut body).is_err() {
                            return;
                        }
                        let seen = Seen402 {
                            path,
                            headers,
                            body: String::from_utf8_lossy(&body).into_owned(),
                        };
                        let paid = seen.payment().is_some();
                        log.lock().unwrap().push(seen);
                        let reply = if paid {
                            let body = r#"{"error":"the model crashed"}"#;
                            format!(
                                "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                                body.len()
                            )
                        } else {
                            format!(
                                "HTTP/1.1 402 Payment Required\r\nPAYMENT-REQUIRED: {required}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
                            )
                        };
                        if conn.write_all(reply.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        HostileSeller { port, seen }
    }

    /// The `accepts[]` entry it asks for.
    pub fn requirement(
        token: alloy_primitives::Address,
        price: u64,
        max_timeout_seconds: u64,
    ) -> Value {
        json!({
            "scheme": "exact", "network": super::chain::CAIP2, "amount": price.to_string(),
            "asset": token.to_string(), "payTo": SELLER_ADDRESS.to_string(),
            "maxTimeoutSeconds": max_timeout_seconds,
            "extra": {"name": Rail::TOKEN_NAME, "version": "2"},
        })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn seen(&self) -> Vec<Seen402> {
        self.seen.lock().unwrap().clone()
    }

    /// Every payment header it was handed, decoded, in order.
    pub fn payments(&self) -> Vec<Value> {
        self.seen()
            .iter()
            .filter_map(|s| s.payment().map(decode_b64_json))
            .collect()
    }
}

/// Settles `payment` (a decoded v2 payment payload) through the facilitator at `facilitator`
/// for `requirement`, as a seller holding it would: the facilitator's `/settle` answer.
pub fn settle(facilitator: &str, payment: &Value, requirement: &Value) -> Value {
    client()
        .post(format!("{facilitator}/settle"))
        .json(&json!({
            "x402Version": 2,
            "paymentPayload": payment,
            "paymentRequirements": requirement,
        }))
        .send()
        .unwrap()
        .json()
        .unwrap()
}

/// Reads an HTTP/1.1 request line and headers (names lowercased): (path, headers), or `None`
/// when the connection closed first.
pub fn read_head(reader: &mut impl std::io::BufRead) -> Option<(String, Vec<(String, String)>)> {
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return None;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((n, v)) = h.split_once(':') {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    Some((path, headers))
}
