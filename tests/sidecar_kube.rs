//! `obol serve buyer --source kube|both` end to end: the sidecar binary watches the
//! PurchaseRequests of a namespace on the fake API server, pays a paid OpenAI-like upstream
//! (`@x402/express` + the npm reference facilitator on anvil with our EIP-3009 token) from
//! their `spec.preSignedAuths`, writes their status back, and refills them with its wallet.
//! Every assertion is something a user would check: HTTP answers, `/status`, `/metrics`, the
//! PurchaseRequest as `kubectl get pr` shows it, and token balances on chain.

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use alloy_primitives::{B256, U256};
use serde_json::{Value, json};
use support::buyer::{self, PaidCluster, Sidecar, auths, metric};
use support::fake_kube::FakeKube;
use support::fake_kube::obol_crds;
use support::{ChildGuard, PAYER_ADDRESS, PAYER_KEY, Rail, SELLER_ADDRESS};

/// 0.01 USDC.
const PRICE: u64 = 10_000;
const NS: &str = "llm";
/// How long the sidecar may take to follow a PurchaseRequest change.
const FOLLOW: Duration = Duration::from_secs(2);

struct Env {
    base: PaidCluster,
}

impl std::ops::Deref for Env {
    type Target = PaidCluster;

    fn deref(&self) -> &PaidCluster {
        &self.base
    }
}

impl Env {
    fn start() -> Env {
        Env {
            base: PaidCluster::start(PRICE, NS),
        }
    }

    fn state_path(&self) -> PathBuf {
        self.dir.path().join("state/buyer-state.json")
    }

    fn presign(&self, n: usize) -> Vec<(Value, B256)> {
        buyer::presign(&self.rail.token, PRICE, n)
    }

    fn balances(&self) -> (U256, U256) {
        buyer::balances(&self.rail.token)
    }

    fn payments_between(&self, before: (U256, U256), after: (U256, U256)) -> u64 {
        buyer::payments_between(PRICE, before, after)
    }

    /// The PurchaseRequest `obol buy request` would write for `model` at the paid LLM, with
    /// `auths` and `extra` merged into its spec.
    fn purchase_request(&self, name: &str, model: &str, auths: &[Value], extra: Value) -> Value {
        let mut pr = json!({
            "apiVersion": "obol.org/v1alpha1",
            "kind": "PurchaseRequest",
            "metadata": {"name": name, "namespace": NS},
            "spec": {
                "endpoint": format!("{}/v1/chat/completions", self.llm.url()),
                "model": model,
                "count": auths.len().max(1),
                "payment": {
                    "network": "local",
                    "payTo": SELLER_ADDRESS.to_string(),
                    "price": PRICE.to_string(),
                    "asset": self.rail.token.address().to_string(),
                    "assetSymbol": "USDC",
                    "assetDecimals": 6,
                    "assetTransferMethod": "eip3009",
                    "eip712Name": Rail::TOKEN_NAME,
                    "eip712Version": "2",
                },
                "preSignedAuths": auths,
            },
        });
        merge(&mut pr["spec"], &extra);
        pr
    }

    fn create(&self, pr: &Value) {
        self.kube.apply(&pr.to_string());
    }

    /// The stored PurchaseRequest.
    fn pr(&self, name: &str) -> Value {
        self.kube
            .object("obol.org", "purchaserequests", Some(NS), name)
            .unwrap_or_else(|| panic!("no PurchaseRequest {name}"))
    }

    /// Waits until `done(PurchaseRequest)` holds; returns it.
    fn wait_pr(&self, name: &str, within: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let mut last = Value::Null;
        support::wait_until(within, || {
            last = self.pr(name);
            if done(&last) {
                Ok(())
            } else {
                Err(last["status"].to_string())
            }
        })
        .unwrap_or_else(|e| panic!("PurchaseRequest {name}: {e}"));
        last
    }

    fn kubectl(&self, args: &[&str]) -> String {
        let out = self.kube.kubectl().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `obol serve buyer --source <source>` on the fake cluster (or `kubeconfig`), ready when
    /// `ready_path` answers 200.
    fn sidecar_with(
        &self,
        source: &str,
        kubeconfig: &std::path::Path,
        key: Option<&str>,
        ready_path: &str,
    ) -> Sidecar {
        let (guard, port) = ChildGuard::spawn_on_free_port(
            "sidecar",
            Duration::from_secs(60),
            |port| {
                let mut cmd = self.obol();
                cmd.args(["serve", "buyer", "--listen", &format!("127.0.0.1:{port}")])
                    .args(["--source", source, "-n", NS])
                    .arg("--kubeconfig")
                    .arg(kubeconfig)
                    .arg("--config-dir")
                    .arg(self.dir.path().join("config"))
                    .arg("--auths-dir")
                    .arg(self.dir.path().join("auths"))
                    .arg("--state")
                    .arg(self.state_path())
                    .args(["--reload-interval", "1s"]);
                if let Some(key) = key {
                    cmd.env("OBOL_PRIVATE_KEY", key);
                }
                cmd
            },
            |port| support::http_probe(&format!("http://127.0.0.1:{port}{ready_path}")),
        );
        Sidecar { guard, port }
    }

    /// With the payer's key as its wallet when `signer`.
    fn sidecar(&self, signer: bool) -> Sidecar {
        let key = signer.then_some(PAYER_KEY);
        self.sidecar_with("kube", self.kube.kubeconfig_path(), key, "/readyz")
    }

    fn logs(&self, sidecar: &Sidecar) -> String {
        format!(
            "--- sidecar ---\n{}\n--- paid llm ---\n{}",
            sidecar.guard.log_contents(),
            self.llm.log(),
        )
    }
}

/// The sidecar's error line about the PurchaseRequest list (waits for it).
fn list_error(sidecar: &Sidecar) -> String {
    const NEEDLE: &str = "cannot list PurchaseRequests";
    support::wait_until(Duration::from_secs(10), || {
        let log = sidecar.guard.log_contents();
        if log.contains(NEEDLE) {
            Ok(())
        } else {
            Err(log)
        }
    })
    .unwrap();
    let log = sidecar.guard.log_contents();
    assert_eq!(
        log.matches(NEEDLE).count(),
        1,
        "logged once, not on every retry:\n{log}"
    );
    log.lines().find(|l| l.contains(NEEDLE)).unwrap().to_owned()
}

fn merge(dst: &mut Value, extra: &Value) {
    if let Some(map) = extra.as_object() {
        for (k, v) in map {
            dst[k] = v.clone();
        }
    }
}

/// The condition `type_` of a PurchaseRequest.
fn condition(pr: &Value, type_: &str) -> Value {
    pr["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .cloned()
        .unwrap_or(Value::Null)
}

fn ready_reason(pr: &Value) -> Option<(String, String)> {
    let c = condition(pr, "Ready");
    Some((c["status"].as_str()?.into(), c["reason"].as_str()?.into()))
}

fn is_ready(pr: &Value, status: &str, reason: &str) -> bool {
    ready_reason(pr) == Some((status.into(), reason.into()))
}

#[test]
fn a_purchase_request_is_loaded_paid_reported_and_removed_with_its_pr() {
    let env = Env::start();
    let sidecar = env.sidecar(false);
    let model = "qwen3:32b";
    let pool = env.presign(3);

    // Created → served within FOLLOW, no restart, no /admin/reload.
    let created = Instant::now();
    env.create(&env.purchase_request("qwen", model, &auths(&pool), json!({})));
    sidecar.wait_status(FOLLOW, |s| s["qwen"]["remaining"] == 3);
    let loaded_in = created.elapsed();
    let q = sidecar.status()["qwen"].clone();
    assert_eq!(
        q["url"],
        env.llm.url(),
        "the endpoint without /v1/chat/completions"
    );
    assert_eq!(q["public_model"], format!("paid/{model}"));
    assert_eq!(q["chain"], "eip155:31337");

    let before = env.balances();
    let a = sidecar.chat(&format!("paid/{model}"));
    assert_eq!(a.status, 200, "{}\n{}", a.body, env.logs(&sidecar));
    assert_eq!(a.json()["model"], model);
    let tx = a.receipt().expect("a settlement receipt")["transaction"]
        .as_str()
        .unwrap()
        .to_owned();
    let mined = env.rail.anvil.rpc("eth_getTransactionReceipt", json!([tx]));
    assert_eq!(mined["status"], "0x1", "{mined}");
    assert_eq!(env.payments_between(before, env.balances()), 1);

    // The status subresource follows (at the next reload tick, 1 s here).
    let paid_at = Instant::now();
    let pr = env.wait_pr("qwen", Duration::from_secs(10), |pr| {
        pr["status"]["spent"] == 1 && is_ready(pr, "True", "Reconciled")
    });
    let status_in = paid_at.elapsed();
    let st = &pr["status"];
    assert_eq!(st["remaining"], 2, "{st}");
    assert_eq!(st["totalSpent"], PRICE.to_string());
    assert_eq!(st["totalSigned"], 3);
    assert_eq!(st["publicModel"], format!("paid/{model}"));
    assert_eq!(st["observedGeneration"], pr["metadata"]["generation"]);
    assert_eq!(
        st["signerAddress"].as_str().unwrap().to_lowercase(),
        PAYER_ADDRESS.to_string().to_lowercase()
    );
    let ready = condition(&pr, "Ready");
    assert!(ready["lastTransitionTime"].is_string(), "{ready}");
    assert_eq!(
        pr["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["manager"] == "obol-buyer")
            .count(),
        1,
        "{}",
        pr["metadata"]["managedFields"]
    );

    // kubectl's columns show it.
    let table = env.kubectl(&["get", "pr", "qwen", "-n", NS]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    let col = |name: &str| row[header.iter().position(|h| *h == name).unwrap()];
    assert_eq!(
        (col("REMAINING"), col("SPENT"), col("READY")),
        ("2", "1", "True"),
        "{table}"
    );

    // No write storm: a quiet sidecar leaves the object alone.
    let rv = env.pr("qwen")["metadata"]["resourceVersion"].clone();
    std::thread::sleep(Duration::from_secs(3));
    let again = env.pr("qwen");
    assert_eq!(
        again["metadata"]["resourceVersion"], rv,
        "{}",
        again["status"]
    );
    assert_eq!(
        condition(&again, "Ready")["lastTransitionTime"],
        ready["lastTransitionTime"]
    );

    let m = sidecar.metrics();
    assert_eq!(
        metric(&m, "obol_x402_buyer_payment_success_total", "qwen", ""),
        1.0,
        "{m}"
    );

    // Deleted → the model is gone (404) and so are its series.
    env.kubectl(&["delete", "pr", "qwen", "-n", NS]);
    sidecar.wait_status(FOLLOW, |s| s.get("qwen").is_none());
    let a = sidecar.chat(&format!("paid/{model}"));
    assert_eq!(a.status, 404, "{}", a.body);
    assert_eq!(a.json()["error"]["code"], "model_not_found");
    assert!(!sidecar.metrics().contains("upstream=\"qwen\""));
    assert_eq!(env.payments_between(before, env.balances()), 1);
    println!(
        "MEASURED: PurchaseRequest created -> upstream served in {loaded_in:?}; \
         payment -> status written in {status_in:?} (--reload-interval 1s)"
    );
}

#[test]
fn unusable_purchase_requests_get_ready_false_with_the_reason_and_spend_nothing() {
    let env = Env::start();
    let sidecar = env.sidecar(false);
    let good = env.presign(2);
    // Auths at twice the price, for a seller that asks PRICE.
    let dear = buyer::presign(&env.rail.token, 2 * PRICE, 2);
    env.create(&env.purchase_request("good", "good-model", &auths(&good), json!({})));
    let mut pricey = env.purchase_request("pricey", "pricey-model", &auths(&dear), json!({}));
    pricey["spec"]["payment"]["price"] = json!((2 * PRICE).to_string());
    env.create(&pricey);
    env.create(&env.purchase_request("empty", "empty-model", &[], json!({})));
    let mut bad_pay_to = env.purchase_request("badpayto", "bad-model", &auths(&good), json!({}));
    bad_pay_to["spec"]["payment"]["payTo"] = json!("0xnot-an-address");
    env.create(&bad_pay_to);

    let before = env.balances();
    for (name, reason, says) in [
        ("pricey", "PricingMismatch", "20000"),
        ("empty", "NoAuths", "preSignedAuths"),
        ("badpayto", "InvalidSpec", "payTo"),
    ] {
        let pr = env.wait_pr(name, Duration::from_secs(10), |pr| {
            ready_reason(pr).is_some_and(|(s, _)| s == "False")
        });
        let ready = condition(&pr, "Ready");
        assert_eq!(ready["reason"], reason, "{name}: {ready}");
        assert!(
            ready["message"].as_str().unwrap().contains(says),
            "{name}: {ready}"
        );
    }
    // The others are unaffected.
    env.wait_pr("good", Duration::from_secs(10), |pr| {
        is_ready(pr, "True", "Reconciled")
    });
    let a = sidecar.chat("paid/good-model");
    assert_eq!(a.status, 200, "{}\n{}", a.body, env.logs(&sidecar));
    // Nothing is paid for the unusable ones.
    let a = sidecar.chat("paid/pricey-model");
    assert!(
        a.status == 502 || a.status == 404,
        "{} {}",
        a.status,
        a.body
    );
    for model in ["paid/empty-model", "paid/bad-model"] {
        assert_eq!(sidecar.chat(model).status, 404);
    }
    assert_eq!(env.payments_between(before, env.balances()), 1);
    for (_, nonce) in &dear {
        assert!(!env.rail.token.authorization_state(PAYER_ADDRESS, *nonce));
    }
    assert_eq!(
        env.llm.stats()["paid"],
        1,
        "only the good one reached the model"
    );
}

#[test]
fn a_restart_keeps_consumed_auths_and_budgets_of_purchase_requests() {
    let env = Env::start();
    let pool = env.presign(4);
    env.create(&env.purchase_request(
        "qwen",
        "q",
        &auths(&pool),
        json!({"autoRefill": {"enabled": false, "maxTotal": 3}}),
    ));
    let before = env.balances();
    let mut sidecar = env.sidecar(false);
    for _ in 0..2 {
        let a = sidecar.chat("paid/q");
        assert_eq!(a.status, 200, "{}\n{}", a.body, env.logs(&sidecar));
    }
    // A crash, not a clean shutdown.
    sidecar.guard.kill();

    let sidecar = env.sidecar(false);
    let q = sidecar.status()["qwen"].clone();
    assert_eq!(
        (q["remaining"].as_u64(), q["spent"].as_u64()),
        (Some(2), Some(2)),
        "{q}"
    );
    assert_eq!(q["budget_left_total"], 1, "{q}");
    let a = sidecar.chat("paid/q");
    assert_eq!(a.status, 200, "{}\n{}", a.body, env.logs(&sidecar));
    // maxTotal reached: refused before anything is signed or sent, one auth left.
    let a = sidecar.chat("paid/q");
    assert_eq!(a.status, 403, "{}", a.body);
    assert_eq!(a.json()["error"]["code"], "budget_total");
    assert_eq!(env.payments_between(before, env.balances()), 3);
    let pr = env.wait_pr("qwen", Duration::from_secs(10), |pr| {
        is_ready(pr, "False", "BudgetExhausted")
    });
    assert_eq!(pr["status"]["spent"], 3, "{}", pr["status"]);
    assert_eq!(pr["status"]["remaining"], 1);
    assert_eq!(pr["status"]["totalSpent"], (3 * PRICE).to_string());
}

#[test]
fn auto_refill_signs_up_to_max_total_with_the_pools_signer_only() {
    let env = Env::start();
    let pool = env.presign(2);
    let refill =
        json!({"autoRefill": {"enabled": true, "threshold": 2, "count": 3, "maxTotal": 6}});
    env.create(&env.purchase_request("qwen", "q", &auths(&pool), refill.clone()));
    // Today's budget allows one payment: no refill once it is spent.
    let daily = json!({"autoRefill": {"enabled": true, "threshold": 2, "count": 3, "maxTotal": 10,
                                      "maxSpendPerDay": PRICE.to_string()}});
    env.create(&env.purchase_request("daily", "d", &auths(&env.presign(2)), daily));
    let before = env.balances();
    let sidecar = env.sidecar(true);
    let count = |pr: &Value| pr["spec"]["preSignedAuths"].as_array().map_or(0, Vec::len);

    env.wait_pr("qwen", Duration::from_secs(10), |pr| {
        condition(pr, "Refill")["reason"] == "Armed"
    });
    // 2 auths, threshold 2: one payment leaves 1 < 2 → 3 more are appended.
    assert_eq!(sidecar.chat("paid/q").status, 200, "{}", env.logs(&sidecar));
    let pr = env.wait_pr("qwen", Duration::from_secs(10), |pr| count(pr) == 5);
    assert_eq!(pr["spec"]["count"], 5);
    let added = &pr["spec"]["preSignedAuths"][4];
    assert!(
        added["id"].as_str().unwrap().starts_with("qwen-"),
        "{added}"
    );
    let valid_before: u64 = added["payment"]["payload"]["authorization"]["validBefore"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        valid_before > support::unix_now() + 29 * 24 * 3600,
        "a pool auth is valid for 30 days"
    );
    sidecar.wait_status(FOLLOW, |s| s["qwen"]["remaining"] == 4);
    // 3 more payments leave 1 → only 1 more may be signed (maxTotal 6).
    for _ in 0..3 {
        let a = sidecar.chat("paid/q");
        assert_eq!(a.status, 200, "{}\n{}", a.body, env.logs(&sidecar));
    }
    let pr = env.wait_pr("qwen", Duration::from_secs(10), |pr| count(pr) == 6);
    sidecar.wait_status(FOLLOW, |s| s["qwen"]["remaining"] == 2);
    for _ in 0..2 {
        let a = sidecar.chat("paid/q");
        assert_eq!(a.status, 200, "{}\n{}", a.body, env.logs(&sidecar));
    }
    let pr_end = env.wait_pr("qwen", Duration::from_secs(10), |pr| {
        condition(pr, "Refill")["reason"] == "MaxTotalReached" && is_ready(pr, "False", "Exhausted")
    });
    assert_eq!(count(&pr_end), 6, "never more than maxTotal");
    assert_eq!(count(&pr), 6);
    assert_eq!(condition(&pr_end, "Refill")["status"], "False");
    assert_eq!(env.payments_between(before, env.balances()), 6);
    // Every refilled authorization was spent on chain, by the payer's key.
    for a in pr_end["spec"]["preSignedAuths"].as_array().unwrap()[2..].iter() {
        let nonce: B256 = a["payment"]["payload"]["authorization"]["nonce"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(env.rail.token.authorization_state(PAYER_ADDRESS, nonce));
    }
    assert!(
        !sidecar.guard.log_contents().contains(&PAYER_KEY[4..20]),
        "the key never reaches the logs"
    );

    assert_eq!(sidecar.chat("paid/d").status, 200, "{}", env.logs(&sidecar));
    let pr = env.wait_pr("daily", Duration::from_secs(10), |pr| {
        condition(pr, "Refill")["reason"] == "DailyBudgetSpent"
    });
    assert_eq!(condition(&pr, "Refill")["status"], "False");
    assert!(
        is_ready(&pr, "False", "BudgetExhausted"),
        "{}",
        pr["status"]
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        count(&env.pr("daily")),
        2,
        "nothing signed while the day is spent"
    );
    assert_eq!(env.payments_between(before, env.balances()), 7);

    // Without a wallet: nothing is signed and the condition says why.
    let pool2 = env.presign(1);
    env.create(&env.purchase_request("other", "o", &auths(&pool2), refill));
    drop(sidecar);
    let unsigned = env.sidecar(false);
    let pr = env.wait_pr("other", Duration::from_secs(10), |pr| {
        condition(pr, "Refill")["reason"] == "NoSigner"
    });
    assert_eq!(condition(&pr, "Refill")["status"], "False");
    assert!(is_ready(&pr, "True", "Reconciled"), "{}", pr["status"]);
    assert_eq!(count(&pr), 1, "nothing signed");
    std::thread::sleep(Duration::from_secs(2));
    let log = unsigned.guard.log_contents();
    assert_eq!(
        log.matches("auto-refill not possible (NoSigner)").count(),
        3,
        "said once for each of the three PurchaseRequests, not on every reload:\n{log}"
    );
    drop(unsigned);

    // With another wallet: nothing is signed either.
    let other_key = "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6";
    let foreign = env.sidecar_with(
        "kube",
        env.kube.kubeconfig_path(),
        Some(other_key),
        "/readyz",
    );
    let pr = env.wait_pr("other", Duration::from_secs(10), |pr| {
        condition(pr, "Refill")["reason"] == "SignerMismatch"
    });
    let message = condition(&pr, "Refill")["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains(&PAYER_ADDRESS.to_string()), "{message}");
    assert_eq!(count(&pr), 1, "nothing signed");
    drop(foreign);
}

#[test]
fn an_unreachable_cluster_is_a_clear_error_and_files_upstreams_are_still_served() {
    let env = Env::start();
    // A files upstream (the free route of the paid LLM: no payment needed).
    for d in ["config", "auths"] {
        std::fs::create_dir_all(env.dir.path().join(d)).unwrap();
    }
    let config = json!({
        "url": env.llm.free_url(), "remoteModel": "free-model", "network": "local",
        "payTo": SELLER_ADDRESS.to_string(), "asset": env.rail.token.address().to_string(),
        "price": PRICE.to_string(),
    });
    std::fs::write(env.dir.path().join("config/free.json"), config.to_string()).unwrap();
    let closed = support::free_port();
    let kubeconfig = env.dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        support::fake_kube::kubeconfig_yaml(&format!("http://127.0.0.1:{closed}"), NS),
    )
    .unwrap();
    let sidecar = env.sidecar_with("both", &kubeconfig, None, "/healthz");
    let line = list_error(&sidecar);
    assert!(line.contains(&format!("127.0.0.1:{closed}")), "{line}");
    assert!(line.contains("hint:"), "{line}");
    let (code, body) = sidecar.get("/readyz");
    assert_eq!(code, 503, "not ready without the PurchaseRequests: {body}");
    let a = sidecar.chat("paid/free-model");
    assert_eq!(a.status, 200, "{}\n{}", a.body, env.logs(&sidecar));
    assert_eq!(a.json()["model"], "free-model");
}

#[test]
fn a_missing_crd_is_reported_with_a_hint_and_the_sidecar_recovers_once_it_is_installed() {
    let env = Env::start();
    // A cluster without obol's CRDs.
    let bare = FakeKube::start();
    let sidecar = env.sidecar_with("kube", bare.kubeconfig_path(), None, "/healthz");
    let line = list_error(&sidecar);
    assert!(line.contains("404"), "{line}");
    assert!(line.contains("obol manifests"), "the hint: {line}");
    assert_eq!(sidecar.get("/readyz").0, 503);

    // Installed: the retrying watch lists, the sidecar becomes ready and serves the PR.
    bare.apply(&obol_crds());
    let pool = env.presign(1);
    bare.apply(
        &env.purchase_request("late", "l", &auths(&pool), json!({}))
            .to_string(),
    );
    support::wait_until(Duration::from_secs(60), || {
        let (code, body) = sidecar.get("/readyz");
        if code == 200 { Ok(()) } else { Err(body) }
    })
    .unwrap();
    sidecar.wait_status(Duration::from_secs(10), |s| s["late"]["remaining"] == 1);
    let before = env.balances();
    let a = sidecar.chat("paid/l");
    assert_eq!(a.status, 200, "{}\n{}", a.body, env.logs(&sidecar));
    assert_eq!(env.payments_between(before, env.balances()), 1);
}
