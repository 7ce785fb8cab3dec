//! `obol buy request` and `obol buy list` end to end: the real `obol` binary probes a paid
//! OpenAI-like seller (npm `@x402/express`, settling through the npm reference facilitator on
//! anvil with our EIP-3009 token), reads the payer's balance on chain, pre-signs a pool and
//! applies a PurchaseRequest to the in-memory Kubernetes API server. Every assertion is what a
//! user would check: exit code and messages, the PurchaseRequest in the cluster (its auths
//! recover to the payer), `buy list`, and that a refused request leaves nothing behind.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use alloy_primitives::{Address, B256, U256};
use obol::x402::eip3009;
use obol::x402::wire::Authorization;
use serde_json::Value;
use support::buyer::PaidCluster;
use support::fake_kube::{FakeKube, kubeconfig_yaml};
use support::{CHAIN_ID, PAYER_ADDRESS, PAYER_KEY, Rail, SELLER_ADDRESS, free_port};

/// 0.01 USDC.
const PRICE: u64 = 10_000;
const MODEL: &str = "qwen3:32b";
const NS: &str = "llm";
/// The caps of the pool the tests buy: 10 payments, 0.05 USDC a day.
const CAPS: &[&str] = &["--max-total", "10", "--max-spend-per-day", "0.05"];

/// Anvil's account 4, funded by a test with less than a pool costs.
const POOR_KEY: &str = "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a";
const POOR_ADDRESS: &str = "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65";

/// The chain, the paid LLM, a fake cluster with obol's CRDs and namespace `llm`, and a private
/// home for `obol`.
struct Env(PaidCluster);

impl std::ops::Deref for Env {
    type Target = PaidCluster;

    fn deref(&self) -> &PaidCluster {
        &self.0
    }
}

impl Env {
    fn start() -> Env {
        Env(PaidCluster::start(PRICE, NS))
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `obol` with a private home, the rail's networks file, the payer's key, no keyring.
    fn obol(&self) -> Command {
        let mut cmd = self.0.obol();
        cmd.env("OBOL_PRIVATE_KEY", PAYER_KEY).stdin(Stdio::null());
        cmd
    }

    /// `obol buy request NAME` against the seller and the fake cluster, plus `extra`.
    fn request(&self, name: &str, count: &str, extra: &[&str]) -> Command {
        self.request_to(&self.llm.url(), MODEL, name, count, extra)
    }

    /// [`Env::request`] with another `--endpoint` and `--model`.
    fn request_to(
        &self,
        endpoint: &str,
        model: &str,
        name: &str,
        count: &str,
        extra: &[&str],
    ) -> Command {
        let mut cmd = self.obol();
        cmd.args(["buy", "request", name, "--endpoint", endpoint])
            .args(["--model", model, "--count", count, "-n", NS])
            .arg("--kubeconfig")
            .arg(self.kube.kubeconfig_path())
            .args(extra);
        cmd
    }

    fn list(&self, extra: &[&str]) -> Output {
        self.obol()
            .args(["buy", "list", "-n", NS])
            .arg("--kubeconfig")
            .arg(self.kube.kubeconfig_path())
            .args(extra)
            .output()
            .unwrap()
    }

    fn purchase_request(&self, name: &str) -> Option<Value> {
        self.kube
            .object("obol.org", "purchaserequests", Some(NS), name)
    }

    fn purchase_requests(&self) -> Vec<Value> {
        self.kube.objects("obol.org", "purchaserequests")
    }

    /// Writes a networks file for the rail's chain and token without `rpc:`.
    fn networks_without_rpc(&self) -> PathBuf {
        let text: String = self
            .rail
            .networks_yaml()
            .lines()
            .filter(|l| !l.trim_start().starts_with("rpc:"))
            .map(|l| format!("{l}\n"))
            .collect();
        let p = self.path().join("networks-no-rpc.yaml");
        std::fs::write(&p, text).unwrap();
        p
    }

    /// The signer every auth of `pr` recovers to, with its authorization; checks each against
    /// the agreed terms (value, payee, validAfter 0).
    fn recovered(&self, pr: &Value) -> Vec<(Address, Authorization)> {
        let domain = eip3009::domain(Rail::TOKEN_NAME, "2", CHAIN_ID, self.rail.token.address());
        pr["spec"]["preSignedAuths"]
            .as_array()
            .expect("preSignedAuths")
            .iter()
            .map(|a| {
                let payload = &a["payment"]["payload"];
                let wire: Authorization =
                    serde_json::from_value(payload["authorization"].clone()).unwrap();
                let auth = eip3009::parse_authorization(&wire).unwrap();
                assert_eq!(auth.value, U256::from(PRICE));
                assert_eq!(auth.to, SELLER_ADDRESS);
                assert_eq!(auth.validAfter, U256::ZERO);
                assert_eq!(a["id"].as_str(), Some(wire.nonce.as_str()));
                let sig =
                    eip3009::parse_signature_hex(payload["signature"].as_str().unwrap()).unwrap();
                let signer = eip3009::recover(&sig, eip3009::signing_hash(&auth, &domain)).unwrap();
                (signer, wire)
            })
            .collect()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `cmd`; panics unless it exits 0. Returns (stdout, stderr).
fn ok(cmd: &mut Command) -> (String, String) {
    let out = cmd.output().unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    (stdout, stderr)
}

/// Runs `cmd`; panics unless it exits 1. Returns stderr.
fn fails(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{cmd:?} should exit 1:\n{}\n{stderr}",
        text(&out.stdout)
    );
    assert!(!has_signature(&stderr), "a signature leaked: {stderr}");
    stderr
}

/// Whether `s` holds something as long as a signature: 130 hex digits in a row.
fn has_signature(s: &str) -> bool {
    let mut run = 0;
    for c in s.chars() {
        run = if c.is_ascii_hexdigit() { run + 1 } else { 0 };
        if run >= 130 {
            return true;
        }
    }
    false
}

#[test]
fn every_check_fails_before_signing_and_nothing_is_created() {
    let env = Env::start();
    let poor: Address = POOR_ADDRESS.parse().unwrap();
    env.rail.token.mint(poor, 50_000u64); // 0.05 USDC: 5 requests
    let no_rpc = env.networks_without_rpc();
    let not_gated = format!("{}/v1/chat/completions", env.llm.free_url());
    let poor_holds = format!("the wallet {POOR_ADDRESS} holds 0.05 USDC on local");

    let cases: Vec<(&str, Command, Vec<&str>)> = vec![
        (
            "price above --max-amount",
            env.request("a", "5", &["--max-amount", "0.001", "--no-wait"]),
            vec![
                "over the per-request cap of 0.001 USDC",
                "--max-amount 0.01",
            ],
        ),
        (
            "balance too low",
            {
                let mut c = env.request("a", "10", &["--no-wait"]);
                c.env("OBOL_PRIVATE_KEY", POOR_KEY);
                c
            },
            vec![&poor_holds, "needs 0.1 USDC (10 × 0.01 USDC)", "--force"],
        ),
        (
            "count 0",
            env.request("a", "0", &["--no-wait"]),
            vec!["--count", "1..=2500"],
        ),
        (
            "count 2501",
            env.request("a", "2501", &["--no-wait"]),
            vec!["--count", "1..=2500"],
        ),
        (
            "--max-total below --count",
            env.request("a", "5", &["--max-total", "4", "--no-wait"]),
            vec!["--max-total 4 is below --count 5", "raise --max-total"],
        ),
        (
            "refill flag without --auto-refill",
            env.request("a", "5", &["--refill-threshold", "2", "--no-wait"]),
            vec!["--refill-threshold only applies with --auto-refill"],
        ),
        (
            "daily cap not exact in USDC",
            env.request("a", "5", &["--max-spend-per-day", "0.0000001", "--no-wait"]),
            vec!["--max-spend-per-day", "USDC"],
        ),
        (
            "seller not 402",
            env.request_to(&not_gated, MODEL, "a", "5", &["--no-wait"]),
            vec!["answered HTTP 200 without asking for payment", "--endpoint"],
        ),
        (
            "unknown network (no networks file)",
            {
                let mut c = env.request("a", "5", &["--no-wait"]);
                c.env_remove("OBOL_NETWORKS");
                c
            },
            vec![
                "network `eip155:31337` is not one obol knows",
                "networks.yaml",
            ],
        ),
        (
            "unknown --network",
            env.request("a", "5", &["--network", "nowhere", "--no-wait"]),
            vec!["unknown network \"nowhere\""],
        ),
        (
            "no rpc for the balance check",
            {
                let mut c = env.request("a", "5", &["--no-wait"]);
                c.env("OBOL_NETWORKS", &no_rpc);
                c
            },
            vec!["no RPC endpoint is known", "rpc:", "--force"],
        ),
        (
            "bad name",
            env.request("Not_A_Name", "5", &["--no-wait"]),
            vec!["not a valid PurchaseRequest name"],
        ),
    ];
    for (what, mut cmd, wants) in cases {
        let stderr = fails(&mut cmd);
        for want in wants {
            assert!(stderr.contains(want), "{what}: want {want:?} in:\n{stderr}");
        }
        assert!(
            env.purchase_requests().is_empty(),
            "{what}: a PurchaseRequest was created"
        );
    }
    assert!(
        !env.kube
            .requests()
            .iter()
            .any(|r| r.method == "PATCH" || r.method == "POST" || r.method == "PUT"),
        "nothing may be written to the cluster"
    );
    // Nothing was paid either.
    assert_eq!(env.rail.token.balance_of(SELLER_ADDRESS), U256::ZERO);

    // --force skips the balance check (and only that): the poor wallet may sign.
    let mut c = env.request("poor", "10", &["--force", "--no-wait"]);
    c.env("OBOL_PRIVATE_KEY", POOR_KEY);
    ok(&mut c);
    let pr = env.purchase_request("poor").unwrap();
    assert!(env.recovered(&pr).iter().all(|(s, _)| *s == poor));
}

#[test]
fn an_unreachable_or_unprepared_cluster_is_named_and_nothing_is_signed() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        kubeconfig_yaml(&format!("http://127.0.0.1:{port}"), "llm"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_obol"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .env("OBOL_KEYRING", "off")
        .env("OBOL_PRIVATE_KEY", PAYER_KEY)
        .args(["buy", "request", "qwen", "--endpoint", "http://127.0.0.1:9"])
        .args(["--model", MODEL, "--count", "5"])
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "cannot reach the Kubernetes API server http://127.0.0.1:{port}"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&kubeconfig.display().to_string()),
        "{stderr}"
    );
    assert!(
        stderr.contains("context fake") || stderr.contains("--context fake"),
        "{stderr}"
    );
    // The cluster is asked first: the (unreachable) seller was never probed.
    assert!(!stderr.contains("127.0.0.1:9"), "{stderr}");

    let out = Command::new(env!("CARGO_BIN_EXE_obol"))
        .env_clear()
        .env("HOME", dir.path())
        .args(["buy", "list"])
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot reach the Kubernetes API server"));

    // A cluster without obol's CRDs: told to install them.
    let kube = FakeKube::start();
    let out = Command::new(env!("CARGO_BIN_EXE_obol"))
        .env_clear()
        .env("HOME", dir.path())
        .env("OBOL_KEYRING", "off")
        .env("OBOL_PRIVATE_KEY", PAYER_KEY)
        .args(["buy", "request", "qwen", "--endpoint", "http://127.0.0.1:9"])
        .args(["--model", MODEL, "--count", "5", "-n", NS])
        .arg("--kubeconfig")
        .arg(kube.kubeconfig_path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("listing PurchaseRequests in namespace llm"),
        "{stderr}"
    );
    assert!(stderr.contains("obol manifests"), "{stderr}");
}

#[test]
fn no_wait_applies_the_pool_list_shows_it_and_a_top_up_keeps_the_old_auths() {
    let env = Env::start();

    // Empty namespace first.
    let out = env.list(&[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        "no PurchaseRequests in namespace llm (buy a pool with `obol buy request NAME --endpoint URL --model MODEL --count N -n llm`)"
    );
    let out = env.list(&["-o", "json"]);
    assert_eq!(text(&out.stdout).trim(), "[]");

    // --dry-run: every check, nothing signed or applied, no signature printed.
    let (stdout, _) = ok(&mut env.request("qwen", "5", &[CAPS, &["--dry-run"]].concat()));
    assert!(stdout.contains("nothing was signed or applied"), "{stdout}");
    assert!(stdout.contains("kind: PurchaseRequest"), "{stdout}");
    assert!(
        stdout.contains("maxSpendPerDay: '50000'") || stdout.contains("maxSpendPerDay: \"50000\""),
        "{stdout}"
    );
    assert!(!stdout.contains("preSignedAuths:"), "{stdout}");
    assert!(!has_signature(&stdout), "{stdout}");
    assert!(env.purchase_requests().is_empty());

    // The pool.
    let (stdout, stderr) = ok(&mut env.request("qwen", "5", &[CAPS, &["--no-wait"]].concat()));
    assert!(
        stdout.starts_with("applied PurchaseRequest llm/qwen (generation 1)"),
        "{stdout}"
    );
    assert!(stdout.contains("paid/qwen3:32b"), "{stdout}");
    assert!(!has_signature(&stdout) && !has_signature(&stderr));
    let pr = env
        .purchase_request("qwen")
        .expect("PurchaseRequest llm/qwen");
    let spec = &pr["spec"];
    assert_eq!(
        spec["endpoint"],
        format!("{}/v1/chat/completions", env.llm.url())
    );
    assert_eq!(spec["model"], MODEL);
    assert_eq!(spec["count"], 5);
    let payment = &spec["payment"];
    assert_eq!(payment["network"], "eip155:31337");
    assert_eq!(payment["payTo"], SELLER_ADDRESS.to_string());
    assert_eq!(payment["price"], PRICE.to_string());
    assert_eq!(payment["asset"], env.rail.token.address().to_string());
    assert_eq!(payment["assetSymbol"], "USDC");
    assert_eq!(payment["assetDecimals"], 6);
    assert_eq!(payment["assetTransferMethod"], "eip3009");
    assert_eq!(payment["eip712Name"], Rail::TOKEN_NAME);
    assert_eq!(payment["eip712Version"], "2");
    assert_eq!(spec["autoRefill"]["maxTotal"], 10);
    assert_eq!(spec["autoRefill"]["maxSpendPerDay"], "50000");
    assert_eq!(spec["autoRefill"]["enabled"], false);
    let first = env.recovered(&pr);
    assert_eq!(first.len(), 5);
    assert!(first.iter().all(|(signer, _)| *signer == PAYER_ADDRESS));
    let valid_before: u64 = first[0].1.valid_before.parse().unwrap();
    let now = support::unix_now();
    assert!(
        valid_before > now + 29 * 86_400 && valid_before <= now + 30 * 86_400 + 60,
        "validBefore {valid_before} is not now + 30 days"
    );
    let patch = env
        .kube
        .requests()
        .into_iter()
        .find(|r| r.method == "PATCH")
        .expect("a server-side apply");
    assert_eq!(patch.param("fieldManager").as_deref(), Some("obol"));

    // buy list: table (snapshot) and JSON.
    let out = env.list(&[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    insta::with_settings!({filters => vec![(r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]")]}, {
        insta::assert_snapshot!("buy_list_table", text(&out.stdout));
    });
    let out = env.list(&["-o", "json"]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let p = &list[0];
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(p["name"], "qwen");
    assert_eq!(p["publicModel"], "paid/qwen3:32b");
    assert_eq!(p["price"], "0.01");
    assert_eq!(p["priceAtomic"], "10000");
    assert_eq!(p["maxTotal"], 10);
    assert_eq!(p["maxSpendPerDay"], "0.05");
    assert_eq!(p["maxSpendPerDayAtomic"], "50000");
    assert_eq!(p["remaining"], Value::Null);
    assert_eq!(p["ready"], Value::Null);

    // A second pool for the same model under another name is refused: the sidecar would
    // never spend it.
    let stderr = fails(&mut env.request("qwen-2", "5", &["--no-wait"]));
    assert!(
        stderr.contains("PurchaseRequest llm/qwen already buys model qwen3:32b"),
        "{stderr}"
    );
    assert!(env.purchase_request("qwen-2").is_none());

    // Top-up: the 5 old auths stay, 3 new ones follow; the caps are kept.
    let (stdout, _) = ok(&mut env.request("qwen", "3", &["--no-wait", "-o", "json"]));
    let out: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        (out["signed"].as_u64(), out["kept"].as_u64()),
        (Some(3), Some(5))
    );
    assert_eq!(out["generation"], 2);
    let pr = env.purchase_request("qwen").unwrap();
    assert_eq!(pr["spec"]["count"], 8);
    assert_eq!(pr["spec"]["autoRefill"]["maxTotal"], 10);
    let topped = env.recovered(&pr);
    assert_eq!(topped.len(), 8);
    let nonces = |v: &[(Address, Authorization)]| -> Vec<B256> {
        v.iter().map(|(_, a)| a.nonce.parse().unwrap()).collect()
    };
    assert_eq!(nonces(&topped)[..5], nonces(&first)[..]);
    let mut all = nonces(&topped);
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 8, "every nonce is fresh");

    // Other terms: refused unless --replace, which starts a fresh pool.
    env.llm.set_price(20_000);
    let stderr = fails(&mut env.request("qwen", "2", &["--no-wait"]));
    assert!(
        stderr.contains("refusing to top up a pool with other payment terms"),
        "{stderr}"
    );
    assert!(stderr.contains("--replace"), "{stderr}");
    assert_eq!(env.purchase_request("qwen").unwrap()["spec"]["count"], 8);
    ok(&mut env.request("qwen", "2", &["--no-wait", "--replace"]));
    let pr = env.purchase_request("qwen").unwrap();
    assert_eq!(pr["spec"]["count"], 2);
    assert_eq!(pr["spec"]["payment"]["price"], "20000");
    assert!(
        pr["spec"].get("autoRefill").is_none(),
        "--replace drops the old caps"
    );
    env.llm.set_price(PRICE);

    // The stack's remote-signer signs a pool too (its own EIP-712 implementation: cast).
    let signer = support::RemoteSigner::start(PAYER_KEY);
    let signer_url = signer.url.clone();
    let url = env.llm.url();
    let mut cmd = env.request_to(&url, "mistral", "remote", "6", &["--no-wait"]);
    cmd.env_remove("OBOL_PRIVATE_KEY")
        .args(["--signer-url", &signer_url]);
    ok(&mut cmd);
    let remote = env.recovered(&env.purchase_request("remote").unwrap());
    assert_eq!(remote.len(), 6);
    assert!(remote.iter().all(|(s, _)| *s == PAYER_ADDRESS));
    assert_eq!(signer.guard.log_contents().matches("typed-data").count(), 6);

    // The PurchaseRequest changes while a top-up signs (here: an annotation; in a cluster the
    // sidecar's status or a refill): the apply on the stale version is refused, obol reads it
    // again, merges again and applies; nothing of the other writer is lost.
    env.kube.clear_requests();
    let mut cmd = env.request_to(&url, "mistral", "remote", "200", &["--no-wait"]);
    cmd.env_remove("OBOL_PRIVATE_KEY")
        .args(["--signer-url", &signer_url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    support::wait_until(std::time::Duration::from_secs(30), || {
        match signer.guard.log_contents().matches("typed-data").count() {
            n if n > 6 => Ok(()),
            n => Err(format!("{n} signatures")),
        }
    })
    .unwrap();
    env.kube.apply(&format!(
        "apiVersion: obol.org/v1alpha1\nkind: PurchaseRequest\nmetadata: {{name: remote, namespace: {NS}, annotations: {{note: meanwhile}}}}\n"
    ));
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        signer.guard.log_contents().matches("typed-data").count() == 206,
        "the race was lost: signing ended before the change"
    );
    let pr = env.purchase_request("remote").unwrap();
    assert_eq!(pr["metadata"]["annotations"]["note"], "meanwhile");
    assert_eq!(pr["spec"]["count"], 206);
    assert_eq!(env.recovered(&pr).len(), 206);
    let applies = env
        .kube
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.path.ends_with("/purchaserequests/remote"))
        .filter(|r| r.param("fieldManager").as_deref() == Some("obol"))
        .count();
    assert_eq!(
        applies, 2,
        "one refused on the stale version, one merged again"
    );

    // Waiting without a sidecar: applied, then a timeout naming what to check.
    let stderr =
        fails(&mut env.request_to(&url, "llama3", "lonely", "1", &["--wait-timeout", "1s"]));
    assert!(
        stderr.contains("did not report PurchaseRequest llm/lonely Ready within 1s"),
        "{stderr}"
    );
    assert!(stderr.contains("--source kube"), "{stderr}");
    assert!(env.purchase_request("lonely").is_some());
}

/// `obol serve buyer --source kube` on the fake cluster, without a wallet of its own: it can
/// only spend the pools `buy request` signed.
fn sidecar(env: &Env) -> support::buyer::Sidecar {
    for d in ["config", "auths"] {
        std::fs::create_dir_all(env.path().join(d)).unwrap();
    }
    let (guard, port) = support::ChildGuard::spawn_on_free_port(
        "sidecar",
        std::time::Duration::from_secs(60),
        |port| {
            let mut cmd = env.obol();
            cmd.env_remove("OBOL_PRIVATE_KEY")
                .args(["serve", "buyer", "--listen", &format!("127.0.0.1:{port}")])
                .args(["--source", "kube", "-n", NS])
                .arg("--kubeconfig")
                .arg(env.kube.kubeconfig_path())
                .arg("--config-dir")
                .arg(env.path().join("config"))
                .arg("--auths-dir")
                .arg(env.path().join("auths"))
                .arg("--state")
                .arg(env.path().join("state/buyer-state.json"))
                .args(["--reload-interval", "1s"]);
            cmd
        },
        |port| support::http_probe(&format!("http://127.0.0.1:{port}/readyz")),
    );
    support::buyer::Sidecar { guard, port }
}

#[test]
fn a_requested_pool_is_loaded_by_the_sidecar_reported_ready_and_paid_on_chain() {
    let env = Env::start();
    let sidecar = sidecar(&env);
    let logs = || {
        format!(
            "--- sidecar ---\n{}\n--- paid llm ---\n{}",
            sidecar.guard.log_contents(),
            env.llm.log()
        )
    };

    // buy request → PurchaseRequest → the sidecar loads it → status written back → Ready.
    let out = env
        .request("qwen", "3", &[CAPS, &["--wait-timeout", "60s"]].concat())
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}\n{}", logs());
    assert!(
        stdout.starts_with("PurchaseRequest llm/qwen is Ready: use model paid/qwen3:32b"),
        "{stdout}"
    );
    assert!(
        stdout.contains("pool      3 remaining, 0 spent (signed 3 new, kept 0;"),
        "{stdout}"
    );
    assert!(
        stdout.contains("caps      at most 10 payments in total, at most 0.05 USDC per UTC day"),
        "{stdout}"
    );
    assert!(!has_signature(&stdout) && !has_signature(&stderr));
    let pr = env.purchase_request("qwen").unwrap();
    assert_eq!(
        pr["status"]["observedGeneration"],
        pr["metadata"]["generation"]
    );

    // A chat completion through the sidecar as paid/<model> is paid on chain.
    let before = support::buyer::balances(&env.rail.token);
    let answer = sidecar.chat("paid/qwen3:32b");
    assert_eq!(answer.status, 200, "{}\n{}", answer.body, logs());
    assert_eq!(
        answer.json()["model"],
        MODEL,
        "the seller got the bare model"
    );
    let after = support::buyer::balances(&env.rail.token);
    assert_eq!(support::buyer::payments_between(PRICE, before, after), 1);
    let tx = answer.receipt().expect("a settlement receipt")["transaction"]
        .as_str()
        .unwrap()
        .to_owned();
    let receipt = env
        .rail
        .anvil
        .rpc("eth_getTransactionReceipt", serde_json::json!([tx]));
    assert_eq!(receipt["status"], "0x1", "{receipt}");

    // buy list shows remaining N-1, spent 1, once the sidecar wrote it back.
    support::wait_until(std::time::Duration::from_secs(10), || {
        let pr = env.purchase_request("qwen").unwrap();
        if pr["status"]["spent"] == 1 {
            Ok(())
        } else {
            Err(pr["status"].to_string())
        }
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", logs()));
    let out = env.list(&["-o", "json"]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let p = &list[0];
    assert_eq!(
        (p["remaining"].as_i64(), p["spent"].as_i64()),
        (Some(2), Some(1)),
        "{p}"
    );
    assert_eq!(p["totalSpent"], "0.01");
    assert_eq!(p["totalSpentAtomic"], "10000");
    assert_eq!(p["ready"], true);
    assert_eq!(p["upToDate"], true);
    let out = env.list(&[]);
    insta::with_settings!({filters => vec![(r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]")]}, {
        insta::assert_snapshot!("buy_list_table_ready", text(&out.stdout));
    });

    // A top-up while the sidecar runs: the spent auth is kept in the spec but not counted
    // again; 2 unspent + 2 new remain.
    let (stdout, _) = ok(&mut env.request("qwen", "2", &["--wait-timeout", "60s"]));
    assert!(
        stdout.contains("pool      4 remaining, 1 spent (signed 2 new, kept 3;"),
        "{stdout}\n{}",
        logs()
    );
    assert_eq!(env.purchase_request("qwen").unwrap()["spec"]["count"], 5);
    let answer = sidecar.chat("paid/qwen3:32b");
    assert_eq!(answer.status, 200, "{}", answer.body);
    let end = support::buyer::balances(&env.rail.token);
    assert_eq!(support::buyer::payments_between(PRICE, before, end), 2);
}

#[test]
fn a_pool_the_sidecar_cannot_serve_fails_the_wait_with_its_reason() {
    let env = Env::start();
    let sidecar = sidecar(&env);

    // One payment a day: after it, the sidecar reports the day's budget spent.
    let (stdout, _) = ok(&mut env.request(
        "daily",
        "3",
        &["--max-spend-per-day", "0.01", "--wait-timeout", "60s"],
    ));
    assert!(stdout.contains("is Ready"), "{stdout}");
    let answer = sidecar.chat("paid/qwen3:32b");
    assert_eq!(answer.status, 200, "{}", answer.body);

    // A top-up is applied, but the sidecar says why it cannot use it today: exit 1 with the
    // condition's reason and message, and the hint.
    let stderr = fails(&mut env.request("daily", "1", &["--wait-timeout", "60s"]));
    assert!(
        stderr.contains(
            "the buyer sidecar reports PurchaseRequest llm/daily not Ready: BudgetExhausted: "
        ),
        "{stderr}\n{}",
        sidecar.guard.log_contents()
    );
    assert!(
        stderr.contains("hint: raise the caps on a top-up"),
        "{stderr}"
    );
    let pr = env.purchase_request("daily").unwrap();
    assert_eq!(pr["spec"]["count"], 4, "the top-up itself was applied");
    assert_eq!(pr["spec"]["autoRefill"]["maxSpendPerDay"], "10000");

    // buy list shows the reason.
    let out = env.list(&["-o", "json"]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["ready"], false);
    assert_eq!(list[0]["reason"], "BudgetExhausted");
    let out = env.list(&[]);
    assert!(
        text(&out.stdout).contains("False (BudgetExhausted)"),
        "{}",
        text(&out.stdout)
    );
}
