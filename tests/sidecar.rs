//! `obol serve buyer` end to end: the sidecar binary in front of a paid OpenAI-like upstream
//! behind the npm reference payment middleware (`@x402/express`), which settles through the npm
//! reference facilitator on anvil with our EIP-3009 token. Auth pools are pre-signed here with
//! obol's x402 library and the payer's key. Every assertion is something a user would check:
//! HTTP answers, `/status`, `/metrics`, the state file, and token balances on chain.

mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use alloy_primitives::{B256, U256};
use serde_json::{Value, json};
use support::buyer::{self, Sidecar, auths, client, metric};
use support::{ChildGuard, PAYER_ADDRESS, PAYER_KEY, PaidLlm, Rail, SELLER_ADDRESS};

/// 0.01 USDC.
const PRICE: u64 = 10_000;
const MODEL: &str = "qwen3:32b";

struct Env {
    rail: Rail,
    llm: PaidLlm,
    dir: tempfile::TempDir,
    networks: PathBuf,
}

impl Env {
    fn start() -> Env {
        let rail = Rail::start();
        let llm = PaidLlm::start(&rail.facilitator, &rail.token, SELLER_ADDRESS, PRICE);
        let dir = tempfile::tempdir().unwrap();
        let networks = rail.write_networks_file(dir.path());
        for d in ["config", "auths"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        Env {
            rail,
            llm,
            dir,
            networks,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn state_path(&self) -> PathBuf {
        self.path().join("state/buyer-state.json")
    }

    fn state(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.state_path()).unwrap()).unwrap()
    }

    /// Writes `config/<name>.json` (the agreed payment of the paid LLM plus `extra`) and
    /// `auths/<name>.json`.
    fn upstream(&self, name: &str, url: &str, remote_model: &str, extra: Value, auths: &[Value]) {
        let mut config = json!({
            "url": url,
            "remoteModel": remote_model,
            "network": "local",
            "payTo": SELLER_ADDRESS.to_string(),
            "asset": self.rail.token.address().to_string(),
            "assetSymbol": "USDC",
            "assetDecimals": 6,
            "assetTransferMethod": "eip3009",
            "eip712Name": Rail::TOKEN_NAME,
            "eip712Version": "2",
            "price": PRICE.to_string(),
        });
        for (k, v) in extra.as_object().unwrap() {
            config[k] = v.clone();
        }
        std::fs::write(
            self.path().join(format!("config/{name}.json")),
            serde_json::to_vec_pretty(&config).unwrap(),
        )
        .unwrap();
        std::fs::write(
            self.path().join(format!("auths/{name}.json")),
            serde_json::to_vec_pretty(auths).unwrap(),
        )
        .unwrap();
    }

    /// `n` authorizations of `PRICE` from the payer to the seller.
    fn presign(&self, n: usize) -> Vec<(Value, B256)> {
        buyer::presign(&self.rail.token, PRICE, n)
    }

    /// `obol` with a private home, the rail's networks file and no keyring.
    fn obol(&self) -> Command {
        buyer::obol(self.path(), &self.networks)
    }

    fn sidecar(&self, live_key: bool) -> Sidecar {
        let (guard, port) = ChildGuard::spawn_on_free_port(
            "sidecar",
            Duration::from_secs(60),
            |port| {
                let mut cmd = self.obol();
                cmd.args(["serve", "buyer", "--listen", &format!("127.0.0.1:{port}")])
                    .arg("--config-dir")
                    .arg(self.path().join("config"))
                    .arg("--auths-dir")
                    .arg(self.path().join("auths"))
                    .arg("--state")
                    .arg(self.state_path())
                    .args(["--reload-interval", "1s"]);
                if live_key {
                    cmd.env("OBOL_PRIVATE_KEY", PAYER_KEY);
                }
                cmd
            },
            |port| support::http_probe(&format!("http://127.0.0.1:{port}/readyz")),
        );
        Sidecar { guard, port }
    }

    fn balances(&self) -> (U256, U256) {
        buyer::balances(&self.rail.token)
    }

    /// The number of payments of `PRICE` between two balance readings (checked both ways).
    fn payments_between(&self, before: (U256, U256), after: (U256, U256)) -> u64 {
        buyer::payments_between(PRICE, before, after)
    }

    fn logs(&self, sidecar: &Sidecar) -> String {
        format!(
            "--- sidecar ---\n{}\n--- paid llm ---\n{}\n--- facilitator ---\n{}",
            sidecar.guard.log_contents(),
            self.llm.log(),
            self.rail.facilitator.log()
        )
    }
}

#[test]
fn pays_chat_completions_from_the_pool_and_the_chain_shows_each_transfer() {
    let env = Env::start();
    let pool = env.presign(3);
    env.upstream("qwen", &env.llm.url(), MODEL, json!({}), &auths(&pool));
    let sidecar = env.sidecar(false);
    let before = env.balances();

    let status = sidecar.status();
    let q = &status["qwen"];
    assert_eq!(q["remaining"], 3, "{status}");
    assert_eq!(q["spent"], 0);
    assert_eq!(q["network"], "local");
    assert_eq!(q["chain"], "eip155:31337");
    assert_eq!(q["public_model"], format!("paid/{MODEL}"));
    assert_eq!(q["remote_model"], MODEL);
    assert_eq!(q["url"], env.llm.url());

    // 1. The LiteLLM alias `paid/<model>`: paid, settled on chain, model rewritten.
    let a = sidecar.chat(&format!("paid/{MODEL}"));
    assert_eq!(a.status, 200, "{}\n{}", a.body, env.logs(&sidecar));
    assert_eq!(
        a.json()["model"],
        MODEL,
        "the upstream saw the remote model"
    );
    assert_eq!(a.json()["choices"][0]["message"]["content"], "paid answer");
    let receipt = a.receipt().expect("a settlement receipt is passed through");
    assert_eq!(receipt["success"], true, "{receipt}");
    let tx = receipt["transaction"].as_str().unwrap();
    let mined = env.rail.anvil.rpc("eth_getTransactionReceipt", json!([tx]));
    assert_eq!(mined["status"], "0x1", "{mined}");
    assert_eq!(env.payments_between(before, env.balances()), 1);

    // 2. `/v1/responses` with `openai/paid/<model>`.
    let a = sidecar.post(
        "/v1/responses",
        json!({"model": format!("openai/paid/{MODEL}"), "input": "hi"}),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["object"], "response");
    assert_eq!(a.json()["model"], MODEL);

    // 3. The compatibility prefix: path stripped, body untouched.
    let a = sidecar.post(
        "/upstream/qwen/v1/chat/completions",
        json!({"model": "as-is", "messages": []}),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["model"], "as-is");
    assert_eq!(env.payments_between(before, env.balances()), 3);

    // 4. The pool is exhausted: a clear 502, nothing paid.
    let mid = env.balances();
    let a = sidecar.chat(MODEL);
    assert_eq!(a.status, 502, "{}", a.body);
    let err = &a.json()["error"];
    assert_eq!(err["code"], "auth_pool_exhausted", "{err}");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("nothing was paid")
    );
    assert_eq!(env.balances(), mid);

    // Unknown models and upstreams: 404 with a JSON error.
    let a = sidecar.chat("paid/llama-70b");
    assert_eq!(a.status, 404);
    assert_eq!(a.json()["error"]["code"], "model_not_found");
    assert!(
        a.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no purchased upstream mapped")
    );
    let a = sidecar.post("/upstream/nope/v1/chat/completions", json!({}));
    assert_eq!(a.status, 404);

    // /status, the metrics and the state file count the three payments.
    let q = sidecar.status()["qwen"].clone();
    assert_eq!(
        (q["remaining"].as_u64(), q["spent"].as_u64()),
        (Some(0), Some(3)),
        "{q}"
    );
    assert_eq!(q["budget"]["payments_total"], 3);
    assert_eq!(q["budget"]["spent_total"], (3 * PRICE).to_string());
    let m = sidecar.metrics();
    let labels = format!("chain=\"eip155:31337\",remote_model=\"{MODEL}\",upstream=\"qwen\"");
    for (name, want) in [
        ("requests_total", 3.0), // chat, responses, the refused one (not /upstream/…)
        ("payment_attempts_total", 3.0),
        ("payment_success_total", 3.0),
        ("payment_failure_total", 0.0),
        ("payment_unsettled_confirmations_total", 0.0),
        ("confirm_spend_failure_total", 0.0),
        ("auth_remaining", 0.0),
        ("auth_spent", 3.0),
        ("active_model_mappings", 1.0),
        ("spent_amount_total", (3 * PRICE) as f64),
    ] {
        let full = format!("obol_x402_buyer_{name}");
        assert!(
            m.contains(&format!("{full}{{{labels}}}")),
            "{full} missing:\n{m}"
        );
        assert_eq!(metric(&m, &full, "qwen", ""), want, "{full}\n{m}");
    }
    assert_eq!(
        metric(
            &m,
            "obol_x402_buyer_payment_refused_total",
            "qwen",
            "auth_pool_exhausted"
        ),
        1.0
    );
    let state = env.state();
    let consumed = state["consumed"]["qwen"].as_array().unwrap();
    assert_eq!(consumed.len(), 3, "{state}");
    assert_eq!(state["budgets"]["qwen"]["paymentsTotal"], 3);
    // Every spent nonce is used on chain; no signature reached the logs.
    for (auth, nonce) in &pool {
        assert!(env.rail.token.authorization_state(PAYER_ADDRESS, *nonce));
        let sig = auth["signature"]
            .as_str()
            .or(auth["payment"]["payload"]["signature"].as_str())
            .unwrap();
        assert!(!sidecar.guard.log_contents().contains(&sig[2..40]));
    }
}

#[test]
fn a_seller_price_change_is_refused_and_nothing_is_spent() {
    let env = Env::start();
    let pool = env.presign(2);
    env.upstream("qwen", &env.llm.url(), MODEL, json!({}), &auths(&pool));
    let sidecar = env.sidecar(false);
    let before = env.balances();

    env.llm.set_price(2 * PRICE);
    let a = sidecar.chat(&format!("paid/{MODEL}"));
    assert_eq!(a.status, 502, "{}", a.body);
    let err = &a.json()["error"];
    assert_eq!(err["code"], "price_changed", "{err}");
    let msg = err["message"].as_str().unwrap();
    assert!(
        msg.contains(&(2 * PRICE).to_string()) && msg.contains(&PRICE.to_string()),
        "{msg}"
    );
    assert!(msg.contains("nothing was paid"), "{msg}");
    assert_eq!(env.balances(), before, "nothing moved on chain");
    assert_eq!(env.llm.stats()["paid"], 0, "the paid handler never ran");
    let q = sidecar.status()["qwen"].clone();
    assert_eq!(
        (q["remaining"].as_u64(), q["spent"].as_u64()),
        (Some(2), Some(0)),
        "{q}"
    );
    assert_eq!(q["budget"]["payments_total"], 0);
    for (_, nonce) in &pool {
        assert!(!env.rail.token.authorization_state(PAYER_ADDRESS, *nonce));
    }
    let m = sidecar.metrics();
    assert_eq!(
        metric(
            &m,
            "obol_x402_buyer_payment_refused_total",
            "qwen",
            "price_changed"
        ),
        1.0
    );
    assert_eq!(
        metric(&m, "obol_x402_buyer_payment_attempts_total", "qwen", ""),
        0.0
    );

    // Back at the agreed price, the same pool pays.
    env.llm.set_price(PRICE);
    let a = sidecar.chat(MODEL);
    assert_eq!(a.status, 200, "{}\n{}", a.body, env.logs(&sidecar));
    assert_eq!(env.payments_between(before, env.balances()), 1);
}

#[test]
fn a_seller_500_keeps_the_auth_handed_out_and_the_retry_resends_it() {
    let env = Env::start();
    let pool = env.presign(2);
    env.upstream("qwen", &env.llm.url(), MODEL, json!({}), &auths(&pool));
    let sidecar = env.sidecar(false);
    let before = env.balances();

    env.llm.fail_next(500, 1);
    let a = sidecar.chat(MODEL);
    assert_eq!(
        a.status, 500,
        "the upstream's error is passed through: {}",
        a.body
    );
    assert!(a.body.contains("the model crashed"), "{}", a.body);
    assert_eq!(env.balances(), before, "not settled");
    let q = sidecar.status()["qwen"].clone();
    assert_eq!(
        (q["remaining"].as_u64(), q["handed_out"].as_u64()),
        (Some(1), Some(1)),
        "the seller holds the auth: it stays out of the pool: {q}"
    );
    assert_eq!(q["budget"]["payments_total"], 1, "and counted: {q}");
    assert_eq!(
        env.state()["handedOut"]["qwen"].as_array().map(Vec::len),
        Some(1),
        "{}",
        env.state()
    );

    // The retry of the same request resends the same auth, which pays it.
    let a = sidecar.chat(MODEL);
    assert_eq!(a.status, 200, "{}\n{}", a.body, env.logs(&sidecar));
    assert_eq!(env.payments_between(before, env.balances()), 1);
    assert!(env.rail.token.authorization_state(PAYER_ADDRESS, pool[0].1));
    assert!(!env.rail.token.authorization_state(PAYER_ADDRESS, pool[1].1));
    let q = sidecar.status()["qwen"].clone();
    assert_eq!(
        (q["remaining"].as_u64(), q["handed_out"].as_u64()),
        (Some(1), Some(0)),
        "{q}"
    );
    assert_eq!(q["budget"]["payments_total"], 1, "{q}");
    let m = sidecar.metrics();
    assert_eq!(
        metric(&m, "obol_x402_buyer_payment_attempts_total", "qwen", ""),
        2.0
    );
    assert_eq!(
        metric(&m, "obol_x402_buyer_payment_failure_total", "qwen", ""),
        1.0
    );
    assert_eq!(
        metric(&m, "obol_x402_buyer_payment_success_total", "qwen", ""),
        1.0
    );
}

#[test]
fn a_restart_keeps_spent_auths_and_budgets() {
    let env = Env::start();
    let pool = env.presign(5);
    env.upstream(
        "qwen",
        &env.llm.url(),
        MODEL,
        json!({"maxTotal": 3, "maxSpendPerDay": (10 * PRICE).to_string()}),
        &auths(&pool),
    );
    let before = env.balances();
    let mut sidecar = env.sidecar(false);
    for _ in 0..2 {
        let a = sidecar.chat(MODEL);
        assert_eq!(a.status, 200, "{}\n{}", a.body, env.logs(&sidecar));
    }
    // A crash, not a clean shutdown.
    sidecar.guard.kill();

    let sidecar = env.sidecar(false);
    let q = sidecar.status()["qwen"].clone();
    assert_eq!(
        (q["remaining"].as_u64(), q["spent"].as_u64()),
        (Some(3), Some(2)),
        "{q}"
    );
    assert_eq!(q["budget_left_total"], 1, "{q}");
    assert_eq!(q["budget"]["payments_total"], 2);
    assert_eq!(q["budget_left_today"], (8 * PRICE).to_string());

    let a = sidecar.chat(MODEL);
    assert_eq!(a.status, 200, "{}\n{}", a.body, env.logs(&sidecar));
    // maxTotal reached: refused before signing although two auths are left.
    let a = sidecar.chat(MODEL);
    assert_eq!(a.status, 403, "{}", a.body);
    assert_eq!(a.json()["error"]["code"], "budget_total");
    assert_eq!(env.payments_between(before, env.balances()), 3);
    let q = sidecar.status()["qwen"].clone();
    assert_eq!(
        (q["remaining"].as_u64(), q["spent"].as_u64()),
        (Some(2), Some(3)),
        "{q}"
    );
    let state = env.state();
    assert_eq!(state["budgets"]["qwen"]["paymentsTotal"], 3, "{state}");
    assert_eq!(
        state["budgets"]["qwen"]["spentTotal"],
        (3 * PRICE).to_string()
    );
}

#[test]
fn a_crash_in_the_middle_of_a_run_never_reuses_a_spent_auth_nor_resets_the_budget() {
    let env = Env::start();
    let pool = env.presign(10);
    env.upstream(
        "qwen",
        &env.llm.url(),
        MODEL,
        json!({"maxTotal": 5}),
        &auths(&pool),
    );
    let before = env.balances();
    let mut sidecar = env.sidecar(false);
    let url = sidecar.url();
    // Three paid requests whose answers the upstream holds: their payments are verified and in
    // flight when the sidecar dies. Released afterwards, the seller settles them anyway.
    let answers: Vec<Option<u16>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let url = url.clone();
                s.spawn(move || {
                    client()
                        .post(format!("{url}/v1/chat/completions"))
                        .json(&json!({"model": MODEL, "gate": true, "messages": []}))
                        .send()
                        .ok()
                        .map(|r| r.status().as_u16())
                })
            })
            .collect();
        support::wait_until(Duration::from_secs(30), || {
            match env.llm.stats()["paid"].as_u64() {
                Some(3) => Ok(()),
                other => Err(format!("{other:?} paid requests held")),
            }
        })
        .unwrap();
        sidecar.guard.kill();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(
        answers.iter().all(Option::is_none),
        "the sidecar died before answering: {answers:?}"
    );
    env.llm.release_streams();
    support::wait_until(Duration::from_secs(30), || {
        let got = env.rail.token.balance_of(SELLER_ADDRESS) - before.1;
        if got == U256::from(3 * PRICE) {
            Ok(())
        } else {
            Err(format!("the seller got {got}"))
        }
    })
    .unwrap();
    assert_eq!(env.payments_between(before, env.balances()), 3);

    // After the restart the three in-flight auths are spent and counted.
    let sidecar = env.sidecar(false);
    let q = sidecar.status()["qwen"].clone();
    assert_eq!(
        (q["remaining"].as_u64(), q["spent"].as_u64()),
        (Some(7), Some(3)),
        "{q}"
    );
    assert_eq!(q["budget"]["payments_total"], 3, "{q}");
    assert_eq!(q["budget_left_total"], 2, "{q}");
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(sidecar.chat(MODEL).status);
    }
    assert_eq!(statuses, [200, 200, 403], "{}", env.logs(&sidecar));
    assert_eq!(
        env.payments_between(before, env.balances()),
        5,
        "maxTotal held across the crash"
    );

    // Every auth spent on chain is recorded as consumed, and none was presented twice: the
    // facilitator never saw a used nonce or a failed settlement.
    let state = env.state();
    let consumed: Vec<&str> = state["consumed"]["qwen"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    let mut used = 0;
    for (auth, nonce) in &pool {
        if env.rail.token.authorization_state(PAYER_ADDRESS, *nonce) {
            used += 1;
            let key = auth["id"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| nonce.to_string());
            assert!(
                consumed.contains(&key.as_str()),
                "{key} spent but not consumed"
            );
        }
    }
    assert_eq!(used, 5);
    let log = env.rail.facilitator.log();
    assert!(
        !log.contains("-> invalid") && !log.contains("-> failed"),
        "{log}"
    );
    assert_eq!(state["budgets"]["qwen"]["paymentsTotal"], 5, "{state}");
}

#[test]
fn a_hundred_concurrent_requests_against_a_budget_of_ten_spend_exactly_ten() {
    let env = Env::start();
    let pool = env.presign(20);
    env.upstream(
        "qwen",
        &env.llm.url(),
        MODEL,
        json!({"maxTotal": 10}),
        &auths(&pool),
    );
    let sidecar = env.sidecar(false);
    let before = env.balances();
    let url = sidecar.url();
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..100)
            .map(|_| {
                let url = url.clone();
                s.spawn(move || {
                    client()
                        .post(format!("{url}/v1/chat/completions"))
                        .json(&json!({"model": format!("paid/{MODEL}"), "messages": []}))
                        .send()
                        .unwrap()
                        .status()
                        .as_u16()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 403).count();
    assert_eq!(
        (ok, refused),
        (10, 90),
        "{statuses:?}\n{}",
        env.logs(&sidecar)
    );
    assert_eq!(
        env.payments_between(before, env.balances()),
        10,
        "exactly ten on chain"
    );
    let q = sidecar.status()["qwen"].clone();
    assert_eq!(
        (q["remaining"].as_u64(), q["spent"].as_u64()),
        (Some(10), Some(10)),
        "{q}"
    );
    assert_eq!(q["budget_left_total"], 0);
    let m = sidecar.metrics();
    assert_eq!(
        metric(&m, "obol_x402_buyer_payment_success_total", "qwen", ""),
        10.0
    );
    assert_eq!(
        metric(
            &m,
            "obol_x402_buyer_payment_refused_total",
            "qwen",
            "budget_total"
        ),
        90.0
    );
}

#[test]
fn live_signing_under_a_daily_cap_signs_exactly_what_the_budget_allows() {
    let env = Env::start();
    env.upstream(
        "live",
        &env.llm.url(),
        MODEL,
        json!({"liveSigning": true, "maxSpendPerDay": (5 * PRICE).to_string()}),
        &[],
    );
    let sidecar = env.sidecar(true);
    let before = env.balances();
    let url = sidecar.url();
    let answers: Vec<(u16, Option<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..30)
            .map(|_| {
                let url = url.clone();
                s.spawn(move || {
                    let r = client()
                        .post(format!("{url}/v1/chat/completions"))
                        .json(&json!({"model": MODEL, "messages": []}))
                        .send()
                        .unwrap();
                    let retry = r
                        .headers()
                        .get("retry-after")
                        .map(|v| v.to_str().unwrap().to_owned());
                    (r.status().as_u16(), retry)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = answers.iter().filter(|(s, _)| *s == 200).count();
    let refused: Vec<_> = answers.iter().filter(|(s, _)| *s == 429).collect();
    assert_eq!(
        (ok, refused.len()),
        (5, 25),
        "{answers:?}\n{}",
        env.logs(&sidecar)
    );
    for (_, retry) in refused {
        let secs: u64 = retry.as_deref().expect("Retry-After").parse().unwrap();
        assert!((1..=86_400).contains(&secs));
    }
    assert_eq!(env.payments_between(before, env.balances()), 5);
    let q = sidecar.status()["live"].clone();
    assert_eq!(q["budget_left_today"], "0", "{q}");
    assert_eq!(q["remaining"], 0);
    assert_eq!(q["budget"]["payments_today"], 5);
    let log = sidecar.guard.log_contents();
    assert!(
        log.contains(&format!("live_signer={PAYER_ADDRESS}")),
        "{log}"
    );
}

/// A chat body that differs per `i` (a new request, not a retry).
fn question(model: &str, i: usize) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": format!("question {i}")}]})
}

#[test]
fn a_seller_that_never_serves_collects_no_more_authorizations_than_the_caps() {
    let env = Env::start();
    let seller = buyer::HostileSeller::start(env.rail.token.address(), PRICE, 300);
    env.upstream(
        "total",
        &seller.url(),
        "total-model",
        json!({"liveSigning": true, "maxTotal": 3}),
        &[],
    );
    env.upstream(
        "daily",
        &seller.url(),
        "daily-model",
        json!({"liveSigning": true, "maxSpendPerDay": (2 * PRICE).to_string()}),
        &[],
    );
    let sidecar = env.sidecar(true);
    let before = env.balances();

    let answers = |model: &str| -> Vec<(u16, String)> {
        (0..6)
            .map(|i| {
                let a = sidecar.post("/v1/chat/completions", question(model, i));
                (a.status, a.body)
            })
            .collect()
    };
    let total = answers("total-model");
    let statuses: Vec<u16> = total.iter().map(|a| a.0).collect();
    assert_eq!(statuses, [500, 500, 500, 403, 403, 403], "{total:?}");
    let refusal = &total[3].1;
    assert!(
        refusal.contains("3 of 3 authorizations handed out")
            && refusal.contains("3 not yet known to be unusable"),
        "the refusal says what is true: {refusal}"
    );
    let daily = answers("daily-model");
    let statuses: Vec<u16> = daily.iter().map(|a| a.0).collect();
    assert_eq!(statuses, [500, 500, 429, 429, 429, 429], "{daily:?}");
    assert!(
        daily[2].1.contains("not yet known to be unusable"),
        "{}",
        daily[2].1
    );

    // A retry of the first request (same upstream, same body) hands out the same authorization
    // again instead of a new one: it is not refused and costs nothing more.
    let handed_out = seller.payments().len();
    assert_eq!(handed_out, 5, "{}", env.logs(&sidecar));
    let retry = sidecar.post("/v1/chat/completions", question("total-model", 0));
    assert_eq!(retry.status, 500, "{}", retry.body);
    let payments = seller.payments();
    assert_eq!(payments.len(), handed_out + 1);
    assert_eq!(
        payments.last().unwrap()["payload"],
        payments[0]["payload"],
        "the retry resent the first authorization"
    );
    let q = sidecar.status()["total"].clone();
    assert_eq!(q["budget"]["payments_total"], 3, "{q}");

    // The caps survive a restart: the authorizations are still out there.
    drop(sidecar);
    let sidecar = env.sidecar(true);
    let a = sidecar.post("/v1/chat/completions", question("total-model", 7));
    assert_eq!(a.status, 403, "{}", a.body);
    assert_eq!(
        seller.payments().len(),
        handed_out + 1,
        "nothing new signed"
    );

    // The seller settles everything it collected: no more than the caps moves on chain.
    let mut settled = 0;
    for p in seller.payments() {
        let r = buyer::settle(&env.rail.facilitator.url(), &p, &p["accepted"]);
        if r["success"] == true {
            settled += 1;
        }
    }
    assert_eq!(settled, 5, "{}", env.rail.facilitator.log());
    assert_eq!(
        env.payments_between(before, env.balances()),
        5,
        "3 + 2, the caps"
    );
}

#[test]
fn a_402_asking_for_an_unbounded_window_is_refused_before_signing() {
    let env = Env::start();
    for (name, timeout) in [("huge", 1_000_000_000_000u64), ("wraps", u64::MAX)] {
        let seller = buyer::HostileSeller::start(env.rail.token.address(), PRICE, timeout);
        env.upstream(
            name,
            &seller.url(),
            &format!("{name}-model"),
            json!({"liveSigning": true}),
            &[],
        );
        let sidecar = env.sidecar(true);
        let a = sidecar.post(
            "/v1/chat/completions",
            question(&format!("{name}-model"), 0),
        );
        assert_eq!(a.status, 502, "{name}: {}", a.body);
        assert!(
            a.body.contains("maxTimeoutSeconds") && a.body.contains("--max-timeout"),
            "{name}: {}",
            a.body
        );
        assert!(seller.payments().is_empty(), "{name}: nothing was signed");
        let q = sidecar.status()[name].clone();
        assert_eq!(q["budget"]["payments_total"], 0, "{q}");
        std::fs::remove_file(env.path().join(format!("config/{name}.json"))).unwrap();
    }
}

#[test]
fn streams_pass_through_as_they_arrive_and_reloads_swap_upstreams() {
    let env = Env::start();
    env.upstream("free", &env.llm.free_url(), "stream-model", json!({}), &[]);
    let pool = env.presign(1);
    env.upstream("qwen", &env.llm.url(), MODEL, json!({}), &auths(&pool));
    let sidecar = env.sidecar(false);

    // A free upstream holds its stream open after the first event: the client must see that
    // event through the sidecar while the upstream is still waiting.
    let mut resp = client()
        .post(format!("{}/v1/chat/completions", sidecar.url()))
        .json(&json!({"model": "paid/stream-model", "stream": true, "gate": true, "messages": []}))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("first") {
        let n = resp.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "stream ended early: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(!String::from_utf8_lossy(&seen).contains("second"));
    assert_eq!(
        env.llm.release_streams(),
        1,
        "the upstream was still holding the stream"
    );
    resp.read_to_end(&mut seen).unwrap();
    let text = String::from_utf8_lossy(&seen);
    assert!(
        text.contains(" second") && text.trim_end().ends_with("data: [DONE]"),
        "{text}"
    );
    assert!(text.contains("\"model\":\"stream-model\""), "{text}");

    // A paid stream: paid once, the whole SSE body delivered.
    let before = env.balances();
    let a = sidecar.post(
        "/chat/completions",
        json!({"model": MODEL, "stream": true, "messages": []}),
    );
    // `/chat/completions` keeps its path: the paid LLM only sells `/v1/...`.
    assert_eq!(a.status, 404, "{}", a.body);
    let a = sidecar.post(
        "/v1/chat/completions",
        json!({"model": MODEL, "stream": true, "messages": []}),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(
        a.body.contains("first") && a.body.contains("[DONE]"),
        "{}",
        a.body
    );
    assert!(a.receipt().is_some());
    assert_eq!(env.payments_between(before, env.balances()), 1);

    // Reload: a new upstream appears, a removed one is gone with its metric series.
    env.upstream("extra", &env.llm.free_url(), "extra-model", json!({}), &[]);
    std::fs::remove_file(env.path().join("config/free.json")).unwrap();
    sidecar.reload_until(|s| s.get("extra").is_some() && s.get("free").is_none());
    assert_eq!(sidecar.chat("paid/extra-model").status, 200);
    assert_eq!(sidecar.chat("paid/stream-model").status, 404);
    let m = sidecar.metrics();
    assert!(!m.contains("upstream=\"free\""), "{m}");
    assert!(m.contains("upstream=\"extra\""), "{m}");
    assert!(m.contains("upstream=\"qwen\""), "{m}");
    // The spent auth stays spent across the reload.
    assert_eq!(sidecar.status()["qwen"]["spent"], 1);
    assert_eq!(sidecar.status()["qwen"]["remaining"], 0);
}

#[test]
fn pays_through_obols_own_verifier_in_proxy_mode() {
    let env = Env::start();
    // The seller side is obol too: an offer in front of the LLM's free routes, charged by
    // `obol serve verifier --mode proxy` through the reference facilitator.
    let out = env
        .obol()
        .args(["sell", "create", "llm", "--upstream", &env.llm.free_url()])
        .args(["--price", "0.01", "--chain", "local", "--pay-to"])
        .arg(SELLER_ADDRESS.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (verifier, vport) = ChildGuard::spawn_on_free_port(
        "verifier",
        Duration::from_secs(60),
        |port| {
            let mut cmd = env.obol();
            cmd.args([
                "serve",
                "verifier",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .args([
                "--mode",
                "proxy",
                "--facilitator",
                &env.rail.facilitator.url(),
            ]);
            cmd
        },
        |port| support::http_probe(&format!("http://127.0.0.1:{port}/readyz")),
    );
    let pool = env.presign(2);
    let seller = format!("http://127.0.0.1:{vport}/services/llm");
    env.upstream("llm", &seller, MODEL, json!({}), &auths(&pool));
    let sidecar = env.sidecar(false);
    let before = env.balances();

    for model in [format!("paid/{MODEL}"), MODEL.to_owned()] {
        let a = sidecar.chat(&model);
        assert_eq!(
            a.status,
            200,
            "{}\n{}\n--- verifier ---\n{}",
            a.body,
            env.logs(&sidecar),
            verifier.log_contents()
        );
        assert_eq!(a.json()["model"], MODEL);
        assert_eq!(a.headers["cache-control"], "no-store");
        assert_eq!(a.receipt().unwrap()["success"], true);
    }
    assert_eq!(env.payments_between(before, env.balances()), 2);
    let a = sidecar.chat(MODEL);
    assert_eq!(a.status, 502, "{}", a.body);
    assert_eq!(a.json()["error"]["code"], "auth_pool_exhausted");
    let q = sidecar.status()["llm"].clone();
    assert_eq!(
        (q["remaining"].as_u64(), q["spent"].as_u64()),
        (Some(0), Some(2)),
        "{q}"
    );
    let vm = client()
        .get(format!("http://127.0.0.1:{vport}/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        vm.lines().any(
            |l| l.starts_with("obol_x402_verifier_charged_requests_total{")
                && l.contains("offer_name=\"llm\"")
                && l.ends_with(" 2")
        ),
        "{vm}"
    );
}
