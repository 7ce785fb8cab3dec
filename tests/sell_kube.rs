//! `obol sell` on a cluster and `obol serve verifier --route-source kube`, end to end on the
//! fake API server: the real `obol` binary creates, pauses, resumes, updates and deletes
//! ServiceOffers (with their Middleware and HTTPRoute), `kubectl` reads them back, and a
//! running verifier in proxy mode follows every change within 2 s, including its metrics and
//! the status it writes on broken offers. No payment is made: a 402 needs no facilitator.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::fake_kube::FakeKube;
use support::*;

const PAY: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
const WALLET: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";

/// How long the verifier may take to follow a change.
const FOLLOW: Duration = Duration::from_secs(2);

/// A fake cluster with obol's CRDs and the routing CRDs installed.
fn cluster() -> FakeKube {
    let fake = FakeKube::start();
    fake.apply(&support::fake_kube::obol_crds());
    fake.apply(support::fake_kube::ROUTING_CRDS);
    fake
}

/// A private home (no ~/.kube/config, no offers file unless written) for `obol`.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        Home {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn obol(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_obol"));
        cmd.env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("XDG_STATE_HOME", self.dir.path().join("state"))
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .env_remove("KUBECONFIG")
            .env_remove("OBOL_NAMESPACE")
            .env_remove("OBOL_NETWORKS")
            .env_remove("OBOL_OFFERS_FILE")
            .env_remove("OBOL_FACILITATOR_URL")
            .env_remove("OBOL_LISTEN")
            .env_remove("OBOL_VERIFIER_MODE")
            .env_remove("OBOL_ROUTE_SOURCE")
            .env_remove("OBOL_UPSTREAM_AUTH")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        cmd
    }

    fn output(&self, args: &[&str]) -> Output {
        self.obol().args(args).output().unwrap()
    }

    /// Runs `obol ARGS`; panics unless it succeeds. Returns stdout.
    fn run(&self, args: &[&str]) -> String {
        let out = self.output(args);
        assert!(
            out.status.success(),
            "obol {args:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `obol ARGS`; panics unless it exits 1. Returns stderr.
    fn fail(&self, args: &[&str]) -> String {
        let out = self.output(args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "obol {args:?} should exit 1:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// The verifier's base config: wallet and chain for offers that leave them empty.
    fn base_file(&self, chain: &str) -> PathBuf {
        let p = self.path("base.yaml");
        std::fs::write(
            &p,
            format!("wallet: \"{WALLET}\"\nchain: {chain}\nverifyOnly: true\nroutes: []\n"),
        )
        .unwrap();
        p
    }

    /// `obol serve verifier --route-source kube --mode proxy` against `fake`, ready once
    /// `/readyz` answers 200 (the first complete list of ServiceOffers).
    fn verifier(&self, fake: &FakeKube, base: &Path, extra: &[&str]) -> (ChildGuard, String) {
        self.spawn_verifier(fake, base, extra, true)
    }

    /// The same, returned once it answers `/healthz` (ready or not).
    fn verifier_unready(
        &self,
        fake: &FakeKube,
        base: &Path,
        extra: &[&str],
    ) -> (ChildGuard, String) {
        self.spawn_verifier(fake, base, extra, false)
    }

    fn spawn_verifier(
        &self,
        fake: &FakeKube,
        base: &Path,
        extra: &[&str],
        wait_ready: bool,
    ) -> (ChildGuard, String) {
        let (guard, port) = ChildGuard::spawn_on_free_port(
            "obol-verifier",
            READY_TIMEOUT,
            |port| {
                let mut cmd = self.obol();
                cmd.args(["serve", "verifier", "--listen"])
                    .arg(format!("127.0.0.1:{port}"))
                    .args(["--mode", "proxy", "--route-source", "kube"])
                    .arg("--kubeconfig")
                    .arg(fake.kubeconfig_path())
                    .arg("--offers-file")
                    .arg(base)
                    // Never contacted: an unpaid request gets its 402 without the facilitator.
                    .args(["--facilitator", "http://127.0.0.1:9"])
                    .args(["--reload-interval", "100ms"])
                    .args(extra);
                cmd
            },
            |port| {
                if wait_ready {
                    http_probe(&format!("http://127.0.0.1:{port}/readyz"))
                } else {
                    http_any(&format!("http://127.0.0.1:{port}/healthz"))
                }
            },
        );
        (guard, format!("http://127.0.0.1:{port}"))
    }
}

fn http_any(url: &str) -> Result<(), String> {
    off_runtime(|| {
        client()
            .get(url)
            .send()
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// `GET url`: status, body as JSON (Null if not JSON), and the decoded PAYMENT-REQUIRED.
fn get(url: &str) -> (u16, Value, Option<Value>) {
    let resp = client().get(url).send().unwrap();
    let status = resp.status().as_u16();
    let required = resp
        .headers()
        .get("payment-required")
        .map(|v| decode_b64_json(v.to_str().unwrap()));
    let body = resp.json::<Value>().unwrap_or(Value::Null);
    (status, body, required)
}

fn metrics(base: &str) -> String {
    client()
        .get(format!("{base}/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap()
}

/// Polls `check` every 50 ms until it returns `Some`, for at most `limit`; panics with `what`
/// and the last observation otherwise. Returns the value and how long it took.
fn within<T>(
    limit: Duration,
    what: &str,
    mut check: impl FnMut() -> Result<T, String>,
) -> (T, Duration) {
    let start = Instant::now();
    loop {
        match check() {
            Ok(v) => return (v, start.elapsed()),
            Err(last) if start.elapsed() > limit => {
                panic!("{what}: not within {limit:?}; last: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Waits until `url` answers 402 and returns the accepted requirement.
fn expect_402(url: &str, limit: Duration, what: &str) -> Value {
    within(limit, what, || match get(url) {
        (402, _, Some(req)) => Ok(req["accepts"][0].clone()),
        (s, body, _) => Err(format!("{s} {body}")),
    })
    .0
}

fn expect_status(url: &str, status: u16, reason: &str, limit: Duration, what: &str) -> Value {
    within(limit, what, || match get(url) {
        (s, body, _) if s == status && body["reason"] == reason => Ok(body),
        (s, body, _) => Err(format!("{s} {body}")),
    })
    .0
}

fn offer(fake: &FakeKube, ns: &str, name: &str) -> Option<Value> {
    fake.object("obol.org", "serviceoffers", Some(ns), name)
}

fn condition(offer: &Value, type_: &str) -> Option<Value> {
    offer["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .cloned()
}

/// Waits until the offer's `type_` condition has `status` and `reason`; returns it.
fn expect_condition(
    fake: &FakeKube,
    ns: &str,
    name: &str,
    type_: &str,
    status: &str,
    reason: &str,
) -> Value {
    within(
        Duration::from_secs(10),
        &format!("{ns}/{name} {type_}={status} {reason}"),
        || {
            let o = offer(fake, ns, name).ok_or("no offer")?;
            match condition(&o, type_) {
                Some(c) if c["status"] == status && c["reason"] == reason => Ok(c),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .0
}

fn writes(fake: &FakeKube) -> Vec<String> {
    fake.requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

/// The sample lines of `/metrics` that carry `offer_name="NAME"`.
fn series_of(text: &str, name: &str) -> Vec<String> {
    let needle = format!("offer_name=\"{name}\"");
    text.lines()
        .filter(|l| !l.starts_with('#') && l.contains(&needle))
        .map(str::to_string)
        .collect()
}

#[test]
fn sell_on_a_cluster_is_served_paused_updated_and_deleted() {
    let fake = cluster();
    let home = Home::new();
    let kc = fake.kubeconfig_path().to_str().unwrap().to_string();
    let base = home.base_file("base-sepolia");
    let (mut verifier, url) = home.verifier(&fake, &base, &[]);
    let paid = format!("{url}/services/qwen/v1/chat/completions");

    // Nothing sold yet: proxy mode answers 404.
    assert_eq!(get(&paid).0, 404);

    // Create: the ServiceOffer and its HTTPRoute (proxy gate, the default).
    let out = home.run(&[
        "sell",
        "create",
        "qwen",
        "--upstream",
        "ollama.llm:11434",
        "--price",
        "0.001",
        "--chain",
        "base-sepolia",
        "--pay-to",
        PAY,
        "--description",
        "Qwen 3",
        "--kubeconfig",
        &kc,
        "-n",
        "shop",
    ]);
    let (req, took) = within(FOLLOW, "402 after sell create", || match get(&paid) {
        (402, _, Some(r)) => Ok(r),
        (s, b, _) => Err(format!("{s} {b}")),
    });
    assert!(
        out.contains("created offer qwen in namespace shop: /services/qwen/*"),
        "{out}"
    );
    assert!(
        out.contains("http://ollama.llm.svc.cluster.local:11434"),
        "{out}"
    );
    let accepted = &req["accepts"][0];
    assert_eq!(accepted["amount"], "1000", "0.001 USDC; took {took:?}");
    assert_eq!(accepted["network"], "eip155:84532");
    assert_eq!(accepted["payTo"], PAY);
    assert_eq!(req["resource"]["description"], "Qwen 3");

    // kubectl sees it, with the printer columns.
    let table = run_ok({
        let mut c = fake.kubectl();
        c.args(["get", "serviceoffers", "-n", "shop", "-o", "wide"]);
        c
    });
    let header = table.lines().next().unwrap();
    for col in ["NAME", "TYPE", "PRICE", "NETWORK", "READY", "PATH", "AGE"] {
        assert!(header.contains(col), "{col} missing: {table}");
    }
    let row = table.lines().find(|l| l.starts_with("qwen")).unwrap();
    for cell in ["http", "0.001", "base-sepolia", "/services/qwen"] {
        assert!(row.contains(cell), "{cell} missing: {table}");
    }

    // The children of the default gate (proxy): the HTTPRoute sends the offer's path, as
    // asked, to the verifier (which settles after the upstream succeeded); a labelled
    // ReferenceGrant in the verifier's namespace lets it; no Middleware.
    let so = offer(&fake, "shop", "qwen").unwrap();
    let uid = so["metadata"]["uid"].as_str().unwrap().to_string();
    assert_eq!(so["status"]["endpoint"], "/services/qwen");
    assert_eq!(so["metadata"]["annotations"]["obol.org/gate"], "proxy");
    let published = condition(&so, "RoutePublished").unwrap();
    assert_eq!(published["status"], "True");
    assert!(
        published["message"]
            .as_str()
            .unwrap()
            .contains("gate: proxy"),
        "{published}"
    );
    assert!(
        fake.object("traefik.io", "middlewares", Some("shop"), "x402-qwen")
            .is_none(),
        "proxy mode needs no forwardAuth"
    );
    let route = fake
        .object(
            "gateway.networking.k8s.io",
            "httproutes",
            Some("shop"),
            "so-qwen",
        )
        .expect("HTTPRoute so-qwen");
    assert_eq!(route["metadata"]["ownerReferences"][0]["uid"], uid.as_str());
    let rule = &route["spec"]["rules"][0];
    assert_eq!(rule["matches"][0]["path"]["value"], "/services/qwen");
    assert!(rule.get("filters").is_none(), "{rule}");
    assert_eq!(rule["backendRefs"][0]["name"], "x402-verifier");
    assert_eq!(rule["backendRefs"][0]["namespace"], "x402");
    assert_eq!(rule["backendRefs"][0]["port"], 8080);
    let grant = fake
        .object(
            "gateway.networking.k8s.io",
            "referencegrants",
            Some("x402"),
            "so-shop-qwen-verifier",
        )
        .expect("ReferenceGrant in the verifier's namespace");
    assert_eq!(
        grant["metadata"]["labels"]["obol.org/serviceoffer-name"],
        "qwen"
    );
    assert_eq!(grant["spec"]["from"][0]["namespace"], "shop");

    // The verifier reports it on the status.
    let gate = expect_condition(&fake, "shop", "qwen", "PaymentGateReady", "True", "Serving");
    assert!(
        gate["message"].as_str().unwrap().contains("eip155:84532"),
        "{gate}"
    );
    expect_condition(&fake, "shop", "qwen", "Ready", "True", "Serving");

    // sell list: table and JSON.
    let list: Value = serde_json::from_str(&home.run(&[
        "sell",
        "list",
        "--kubeconfig",
        &kc,
        "-n",
        "shop",
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["name"], "qwen");
    assert_eq!(list[0]["namespace"], "shop");
    assert_eq!(list[0]["price"], "0.001");
    assert_eq!(list[0]["chain"], "base-sepolia");
    assert_eq!(list[0]["path"], "/services/qwen");
    assert_eq!(list[0]["paused"], false);
    assert_eq!(list[0]["ready"], "True");
    let table = home.run(&["sell", "list", "--kubeconfig", &kc, "-A"]);
    for cell in [
        "NAME",
        "NAMESPACE",
        "PRICE",
        "CHAIN",
        "PATH",
        "PAUSED",
        "AGE",
        "qwen",
        "shop",
        "0.001 USDC",
        "base-sepolia",
        "/services/qwen",
    ] {
        assert!(table.contains(cell), "{cell} missing:\n{table}");
    }

    // Pause: the documented paused answer (404 offer_paused), nothing charged.
    let out = home.run(&["sell", "pause", "qwen", "--kubeconfig", &kc, "-n", "shop"]);
    assert!(out.starts_with("paused offer qwen"), "{out}");
    assert_eq!(
        offer(&fake, "shop", "qwen").unwrap()["metadata"]["annotations"]["obol.org/paused"],
        "true"
    );
    expect_status(&paid, 404, "offer_paused", FOLLOW, "paused answer");
    expect_condition(&fake, "shop", "qwen", "PaymentGateReady", "False", "Paused");
    let again = home.run(&["sell", "pause", "qwen", "--kubeconfig", &kc, "-n", "shop"]);
    assert!(again.starts_with("already paused"), "{again}");

    // Resume: 402 again.
    home.run(&["sell", "resume", "qwen", "--kubeconfig", &kc, "-n", "shop"]);
    assert!(
        offer(&fake, "shop", "qwen").unwrap()["metadata"]["annotations"]
            .get("obol.org/paused")
            .is_none()
    );
    expect_402(&paid, FOLLOW, "402 after resume");

    // Create again with a new price: updated in place, the 402 carries the new amount.
    let out = home.run(&[
        "sell",
        "create",
        "qwen",
        "--upstream",
        "ollama.llm:11434",
        "--price",
        "0.0025",
        "--gate",
        "forward-auth",
        "--kubeconfig",
        &kc,
        "-n",
        "shop",
    ]);
    assert!(out.starts_with("updated offer qwen"), "{out}");
    // Now through Traefik's forwardAuth: the Middleware, the HTTPRoute to the upstream with the
    // grant in its namespace; the proxy-mode grant is gone.
    let mw = fake
        .object("traefik.io", "middlewares", Some("shop"), "x402-qwen")
        .expect("Middleware x402-qwen");
    assert_eq!(mw["metadata"]["ownerReferences"][0]["uid"], uid.as_str());
    assert!(
        mw["spec"]["forwardAuth"]["authResponseHeaders"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h == "Authorization")
    );
    let route = fake
        .object(
            "gateway.networking.k8s.io",
            "httproutes",
            Some("shop"),
            "so-qwen",
        )
        .unwrap();
    assert_eq!(
        route["spec"]["rules"][0]["backendRefs"][0]["name"],
        "ollama"
    );
    assert_eq!(
        route["spec"]["rules"][0]["backendRefs"][0]["namespace"],
        "llm"
    );
    assert!(
        fake.object(
            "gateway.networking.k8s.io",
            "referencegrants",
            Some("llm"),
            "so-shop-qwen-backend",
        )
        .is_some()
    );
    assert!(
        fake.object(
            "gateway.networking.k8s.io",
            "referencegrants",
            Some("x402"),
            "so-shop-qwen-verifier",
        )
        .is_none(),
        "the former gate's grant is deleted"
    );
    within(FOLLOW, "new amount in the 402", || match get(&paid) {
        (402, _, Some(r)) if r["accepts"][0]["amount"] == "2500" => Ok(()),
        (s, _, r) => Err(format!("{s} {r:?}")),
    });
    let so = offer(&fake, "shop", "qwen").unwrap();
    assert_eq!(so["metadata"]["uid"], uid.as_str(), "same object");
    assert_eq!(so["spec"]["payment"]["network"], "base-sepolia", "kept");
    assert_eq!(so["spec"]["payment"]["payTo"], PAY, "kept");
    assert_eq!(so["spec"]["payment"]["price"]["perRequest"], "0.0025");

    // An update while paused keeps the pause.
    home.run(&["sell", "pause", "qwen", "--kubeconfig", &kc, "-n", "shop"]);
    home.run(&[
        "sell",
        "create",
        "qwen",
        "--upstream",
        "ollama.llm:11434",
        "--price",
        "0.003",
        "--kubeconfig",
        &kc,
        "-n",
        "shop",
    ]);
    let so = offer(&fake, "shop", "qwen").unwrap();
    assert_eq!(so["metadata"]["annotations"]["obol.org/paused"], "true");
    expect_status(
        &paid,
        404,
        "offer_paused",
        FOLLOW,
        "still paused after update",
    );
    home.run(&["sell", "resume", "qwen", "--kubeconfig", &kc, "-n", "shop"]);
    within(FOLLOW, "updated amount after resume", || match get(&paid) {
        (402, _, Some(r)) if r["accepts"][0]["amount"] == "3000" => Ok(()),
        (s, _, r) => Err(format!("{s} {r:?}")),
    });

    // The offer has series on /metrics, labelled with its resolved chain.
    let text = metrics(&url);
    let series = series_of(&text, "qwen");
    assert!(
        series.iter().any(
            |l| l.starts_with("obol_x402_verifier_payment_required_total")
                && l.contains("offer_namespace=\"shop\"")
                && l.contains("chain=\"eip155:84532\"")
        ),
        "{text}"
    );

    // Delete: the route is gone (404), every series of the offer too, and the children.
    let out = home.run(&["sell", "delete", "qwen", "--kubeconfig", &kc, "-n", "shop"]);
    assert!(out.starts_with("deleted ServiceOffer shop/qwen"), "{out}");
    expect_status(&paid, 404, "no_route", FOLLOW, "no route after delete");
    within(FOLLOW, "series removed", || {
        let s = series_of(&metrics(&url), "qwen");
        if s.is_empty() {
            Ok(())
        } else {
            Err(format!("{s:?}"))
        }
    });
    assert!(offer(&fake, "shop", "qwen").is_none());
    assert!(
        fake.object("traefik.io", "middlewares", Some("shop"), "x402-qwen")
            .is_none()
    );
    assert!(
        fake.object(
            "gateway.networking.k8s.io",
            "httproutes",
            Some("shop"),
            "so-qwen"
        )
        .is_none()
    );
    assert!(
        fake.object(
            "gateway.networking.k8s.io",
            "referencegrants",
            Some("llm"),
            "so-shop-qwen-backend"
        )
        .is_none()
    );
    let err = home.fail(&["sell", "delete", "qwen", "--kubeconfig", &kc, "-n", "shop"]);
    assert!(
        err.contains("no ServiceOffer qwen in namespace shop"),
        "{err}"
    );
    assert!(
        err.contains("hint: see the offers with `obol sell list -n shop`"),
        "{err}"
    );

    assert!(verifier.is_running(), "{}", verifier.log_tail(30));
}

#[test]
fn offers_inherit_the_verifier_chain_and_broken_offers_are_reported_not_served() {
    let fake = cluster();
    let home = Home::new();
    let kc = fake.kubeconfig_path().to_str().unwrap().to_string();
    // The verifier's file: chain `base` and a wallet for offers that name neither.
    let base = home.base_file("base");
    let (mut verifier, url) = home.verifier(&fake, &base, &[]);

    home.run(&[
        "sell",
        "create",
        "inherit",
        "--upstream",
        "http://web.shop.svc.cluster.local:8080",
        "--price",
        "0.01",
        "--kubeconfig",
        &kc,
        "-n",
        "shop",
    ]);
    let so = offer(&fake, "shop", "inherit").unwrap();
    assert!(so["spec"]["payment"].get("network").is_none(), "{so}");
    assert!(so["spec"]["payment"].get("payTo").is_none(), "{so}");
    let req = expect_402(
        &format!("{url}/services/inherit/x"),
        FOLLOW,
        "402 for the inheriting offer",
    );
    assert_eq!(req["network"], "eip155:8453", "the verifier's chain");
    assert_eq!(req["payTo"], WALLET, "the verifier's wallet");
    assert_eq!(req["amount"], "10000");
    let list = home.run(&["sell", "list", "--kubeconfig", &kc, "-n", "shop"]);
    assert!(list.contains("(verifier's)"), "{list}");

    // Broken offers, applied without the CLI (the fake does not check patterns).
    fake.apply(
        "
apiVersion: obol.org/v1alpha1
kind: ServiceOffer
metadata: {name: bad-network, namespace: shop}
spec:
  upstream: {service: web, port: 8080}
  payment: {network: atlantis, payTo: '0x70997970C51812dc3A010C7d01b50e0d17dc79C8', price: {perRequest: '0.01'}}
  path: /services/bad-network
---
apiVersion: obol.org/v1alpha1
kind: ServiceOffer
metadata: {name: bad-price, namespace: shop}
spec:
  upstream: {service: web, port: 8080}
  payment: {price: {perRequest: 'one dollar'}}
---
apiVersion: obol.org/v1alpha1
kind: ServiceOffer
metadata: {name: too-precise, namespace: other}
spec:
  upstream: {service: web, port: 8080}
  payment: {price: {perRequest: '0.0000001'}}
",
    );
    let c = expect_condition(
        &fake,
        "shop",
        "bad-network",
        "PaymentGateReady",
        "False",
        "UnknownNetwork",
    );
    assert!(c["message"].as_str().unwrap().contains("atlantis"), "{c}");
    let c = expect_condition(
        &fake,
        "shop",
        "bad-price",
        "PaymentGateReady",
        "False",
        "InvalidSpec",
    );
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .contains("spec.payment.price.perRequest"),
        "{c}"
    );
    let c = expect_condition(
        &fake,
        "other",
        "too-precise",
        "PaymentGateReady",
        "False",
        "InvalidPayment",
    );
    assert!(c["message"].as_str().unwrap().contains("decimal"), "{c}");
    expect_condition(&fake, "shop", "bad-price", "Ready", "False", "InvalidSpec");

    // Their paths fail closed; the good offer is still served.
    let body = expect_status(
        &format!("{url}/services/bad-price/x"),
        503,
        "offer_unavailable",
        FOLLOW,
        "broken offer answered 503",
    );
    assert!(
        body["detail"].as_str().unwrap().contains("InvalidSpec"),
        "{body}"
    );
    expect_status(
        &format!("{url}/services/bad-network/x"),
        503,
        "offer_unavailable",
        FOLLOW,
        "broken offer answered 503",
    );
    expect_402(
        &format!("{url}/services/inherit/x"),
        FOLLOW,
        "the good offer is still served",
    );
    let log = verifier.log_contents();
    assert!(
        log.contains("ServiceOffer shop/bad-network is not served"),
        "{log}"
    );
    // `sell list` names the problem.
    let list = home.run(&["sell", "list", "--kubeconfig", &kc, "-A"]);
    assert!(
        list.contains("shop/bad-price is not served: InvalidSpec:"),
        "{list}"
    );

    // Fixing a broken offer serves it.
    fake.apply(
        "
apiVersion: obol.org/v1alpha1
kind: ServiceOffer
metadata: {name: bad-price, namespace: shop}
spec:
  upstream: {service: web, port: 8080}
  payment: {price: {perRequest: '0.5'}}
",
    );
    let req = expect_402(
        &format!("{url}/services/bad-price/x"),
        FOLLOW,
        "402 once fixed",
    );
    assert_eq!(req["amount"], "500000");
    expect_condition(
        &fake,
        "shop",
        "bad-price",
        "PaymentGateReady",
        "True",
        "Serving",
    );

    // The inheriting offer's series carry the resolved chain and go with it.
    let text = metrics(&url);
    assert!(
        series_of(&text, "inherit")
            .iter()
            .all(|l| l.contains("chain=\"eip155:8453\"")),
        "{text}"
    );
    assert!(!series_of(&text, "inherit").is_empty(), "{text}");
    home.run(&[
        "sell",
        "delete",
        "inherit",
        "--kubeconfig",
        &kc,
        "-n",
        "shop",
    ]);
    within(FOLLOW, "series of the inheriting offer removed", || {
        let s = series_of(&metrics(&url), "inherit");
        if s.is_empty() {
            Ok(())
        } else {
            Err(format!("{s:?}"))
        }
    });
    assert!(verifier.is_running(), "{}", verifier.log_tail(30));
}

#[test]
fn readiness_waits_for_the_list_and_a_lost_watch_keeps_the_routes() {
    // No CRDs yet: the verifier runs but is not ready.
    let fake = FakeKube::start();
    let home = Home::new();
    let kc = fake.kubeconfig_path().to_str().unwrap().to_string();
    let base = home.base_file("base-sepolia");
    let (mut verifier, url) = home.verifier_unready(&fake, &base, &["--kube-watch-timeout", "1s"]);
    let resp = client().get(format!("{url}/readyz")).send().unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    assert_eq!(get(&format!("{url}/services/a/x")).0, 503, "fail closed");
    fake.apply(&support::fake_kube::obol_crds());
    fake.apply(support::fake_kube::ROUTING_CRDS);
    within(
        Duration::from_secs(40),
        "ready once ServiceOffers list",
        || http_probe(&format!("{url}/readyz")),
    );

    home.run(&[
        "sell",
        "create",
        "a",
        "--upstream",
        "web:80",
        "--price",
        "0.01",
        "--pay-to",
        PAY,
        "--kubeconfig",
        &kc,
    ]);
    let paid = format!("{url}/services/a/x");
    expect_402(&paid, FOLLOW, "402 after create");

    // Every watch ends after 1 s; for 3.5 s the route never goes away.
    let watches_before = fake
        .requests()
        .iter()
        .filter(|r| r.query.contains("watch=true") && r.path.contains("serviceoffers"))
        .count();
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(3500) {
        let (s, b, _) = get(&paid);
        assert_eq!(s, 402, "route dropped while the watch restarted: {b}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let watches_after = fake
        .requests()
        .iter()
        .filter(|r| r.query.contains("watch=true") && r.path.contains("serviceoffers"))
        .count();
    assert!(
        watches_after >= watches_before + 2,
        "the watch was resumed {watches_before} -> {watches_after}"
    );
    // The resumed watch still follows changes.
    home.run(&[
        "sell",
        "create",
        "b",
        "--upstream",
        "web:80",
        "--price",
        "0.02",
        "--pay-to",
        PAY,
        "--kubeconfig",
        &kc,
    ]);
    let req = expect_402(
        &format!("{url}/services/b/x"),
        FOLLOW,
        "402 for a new offer",
    );
    assert_eq!(req["amount"], "20000");
    expect_402(&paid, FOLLOW, "the first offer is still served");
    assert!(verifier.is_running(), "{}", verifier.log_tail(30));
}

#[test]
fn bad_input_is_refused_before_any_request_and_errors_name_the_cluster() {
    let fake = cluster();
    let home = Home::new();
    let kc = fake.kubeconfig_path().to_str().unwrap().to_string();
    fake.clear_requests();
    // A valid create with one flag replaced (or added).
    let create = |extra: &[&str]| {
        let mut flags = vec![
            ("--upstream", "web.shop:8080"),
            ("--price", "0.01"),
            ("--pay-to", PAY),
            ("--kubeconfig", kc.as_str()),
        ];
        match flags.iter_mut().find(|(f, _)| *f == extra[0]) {
            Some(slot) => slot.1 = extra[1],
            None => flags.push((extra[0], extra[1])),
        }
        let mut args = vec!["sell", "create", "x"];
        for (f, v) in flags {
            args.extend([f, v]);
        }
        home.fail(&args)
    };
    for (extra, needle) in [
        (vec!["--pay-to", "0x1234"], "payTo"),
        (vec!["--pay-to", "not-an-address"], "payTo"),
        (vec!["--price", "abc"], "perRequest"),
        (vec!["--price", "0.0000001"], "decimal"),
        (vec!["--price", "0"], "greater than 0"),
        (vec!["--path", "services/x"], "path"),
        (vec!["--path", "/a b"], "path"),
        (vec!["--chain", "atlantis"], "atlantis"),
        (vec!["--upstream", "http://127.0.0.1:9000"], "--upstream"),
        (vec!["--upstream", "web"], "no port"),
    ] {
        let err = create(&extra);
        assert!(err.contains("error:"), "{extra:?}: {err}");
        assert!(err.contains(needle), "{extra:?}: {err}");
        assert!(err.contains("hint:"), "{extra:?}: {err}");
    }
    let err = home.fail(&[
        "sell",
        "create",
        "Bad_Name",
        "--upstream",
        "web:80",
        "--price",
        "1",
        "--kubeconfig",
        &kc,
    ]);
    assert!(err.contains("offer name"), "{err}");
    assert_eq!(
        fake.requests().len(),
        0,
        "refused input made requests: {:?}",
        writes(&fake)
    );

    // No cluster behind the kubeconfig: the error names server, context and kubeconfig.
    let dead = home.path("dead.kubeconfig");
    let port = free_port();
    std::fs::write(
        &dead,
        support::fake_kube::kubeconfig_yaml(&format!("http://127.0.0.1:{port}"), "default"),
    )
    .unwrap();
    let err = home.fail(&["sell", "list", "--kubeconfig", dead.to_str().unwrap()]);
    assert!(err.contains(&format!("http://127.0.0.1:{port}")), "{err}");
    assert!(err.contains("context `fake`"), "{err}");
    assert!(err.contains(dead.to_str().unwrap()), "{err}");
    assert!(err.contains("hint:"), "{err}");
    let err = home.fail(&["sell", "list", "--kubeconfig", "/nonexistent/kubeconfig"]);
    assert!(
        err.contains("/nonexistent/kubeconfig does not exist"),
        "{err}"
    );

    // The rule: a current kubeconfig context selects the cluster, an offers file wins.
    let out = home
        .obol()
        .env("KUBECONFIG", &kc)
        .args(["sell", "list", "-o", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.path.ends_with("/namespaces/default/serviceoffers")),
        "the active context was used"
    );
    fake.clear_requests();
    let file = home.path("pricing.yaml");
    let out = home
        .obol()
        .env("KUBECONFIG", &kc)
        .args(["sell", "list", "-o", "json", "--offers-file"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    assert!(fake.requests().is_empty(), "the offers file was used");
    // --kube wins over OBOL_OFFERS_FILE.
    let out = home
        .obol()
        .env("KUBECONFIG", &kc)
        .env("OBOL_OFFERS_FILE", &file)
        .args(["sell", "list", "--kube", "-o", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(!fake.requests().is_empty(), "--kube used the cluster");
    // Without any kubeconfig: the local offers file.
    let out = home.run(&["sell", "list"]);
    assert!(out.contains("no offers in"), "{out}");
}

/// `sell create --route` on a cluster: the ServiceOffer carries `spec.routes`, `sell list`
/// counts them, the verifier charges each declared path its own price under one metric series
/// for the offer, and an offer with `gate: auth` (applied by hand, as the obol-stack writes it)
/// is answered 503 `offer_unavailable`, never let through.
#[test]
fn declared_routes_on_a_cluster_are_written_listed_and_priced_per_path() {
    let fake = cluster();
    let home = Home::new();
    let kc = fake.kubeconfig_path().to_str().unwrap().to_string();
    let base = home.base_file("base-sepolia");
    let (mut verifier, url) = home.verifier(&fake, &base, &[]);
    // `sell create api` of a Service in namespace shop, with `extra`.
    let args = |extra: &[&str]| -> Vec<String> {
        [
            "sell",
            "create",
            "api",
            "--upstream",
            "web.shop:8080",
            "--kubeconfig",
            &kc,
            "-n",
            "shop",
        ]
        .iter()
        .chain(extra)
        .map(|a| a.to_string())
        .collect()
    };
    let create =
        |extra: &[&str]| home.run(&args(extra).iter().map(String::as_str).collect::<Vec<_>>());
    let create_fails =
        |extra: &[&str]| home.fail(&args(extra).iter().map(String::as_str).collect::<Vec<_>>());

    // Strictly parsed before any request.
    fake.clear_requests();
    for (route, needle) in [
        (
            "path=/a,gate=auth",
            "gate auth is not supported yet by obol",
        ),
        ("path=/a,colour=red", "unknown key \"colour\""),
        ("path=/a/../b", "\"..\" segment"),
    ] {
        let err = create_fails(&["--price", "0.01", "--pay-to", PAY, "--route", route]);
        assert!(err.contains(needle), "{route}: {err}");
        assert!(
            err.contains("hint:") && err.contains("--route \"path="),
            "{err}"
        );
    }
    assert!(
        writes(&fake).is_empty(),
        "nothing sent: {:?}",
        writes(&fake)
    );

    let out = create(&[
        "--price",
        "0.01",
        "--pay-to",
        PAY,
        "--route",
        "path=/submit,methods=POST|GET,price=0.5,summary=Submit a job",
        "--route",
        "path=/jobs/*,gate=free",
    ]);
    assert!(
        out.contains("route /services/api/submit [POST|GET]: 0.5 USDC"),
        "{out}"
    );
    assert!(out.contains("route /services/api/jobs/*: free"), "{out}");
    assert!(
        out.contains("every other path under /services/api/ is refused"),
        "{out}"
    );
    // As stored: the CRD's default `gate: paid` filled in by the API server.
    let so = offer(&fake, "shop", "api").unwrap();
    assert_eq!(
        so["spec"]["routes"],
        serde_json::json!([
            {"path": "/submit", "methods": ["POST", "GET"], "gate": "paid", "price": {"perRequest": "0.5"}, "summary": "Submit a job"},
            {"path": "/jobs/*", "gate": "free"},
        ])
    );

    // The verifier: the declared paid path at its own price, the offer's one series.
    let submit = expect_402(
        &format!("{url}/services/api/submit"),
        FOLLOW,
        "402 on /submit",
    );
    assert_eq!(submit["amount"], "500000");
    let m = metrics(&url);
    let requests: Vec<String> = series_of(&m, "api")
        .into_iter()
        .filter(|l| l.starts_with("obol_x402_verifier_requests_total"))
        .collect();
    assert_eq!(
        requests.len(),
        1,
        "one series for the offer's routes: {requests:?}"
    );

    // sell list: the count, and the routes in JSON.
    let table = home.run(&["sell", "list", "--kubeconfig", &kc, "-n", "shop"]);
    assert!(table.contains("ROUTES"), "{table}");
    let json: Value = serde_json::from_str(&home.run(&[
        "sell",
        "list",
        "--kubeconfig",
        &kc,
        "-n",
        "shop",
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(
        json[0]["routes"],
        serde_json::json!([
            {"path": "/submit", "methods": ["POST", "GET"], "gate": "paid", "price": "0.5", "summary": "Submit a job"},
            {"path": "/jobs/*", "methods": [], "gate": "free", "price": null, "summary": null},
        ])
    );

    // Update without --route keeps them; --no-routes removes them.
    create(&["--price", "0.02"]);
    assert_eq!(
        offer(&fake, "shop", "api").unwrap()["spec"]["routes"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    create(&["--price", "0.02", "--no-routes"]);
    assert!(
        offer(&fake, "shop", "api").unwrap()["spec"]
            .get("routes")
            .is_none()
    );
    let whole = expect_402(
        &format!("{url}/services/api/anything"),
        FOLLOW,
        "the whole path paid again",
    );
    assert_eq!(whole["amount"], "20000");

    // gate auth written by another client: the offer is unavailable, never free.
    fake.apply(&format!(
        r#"
apiVersion: obol.org/v1alpha1
kind: ServiceOffer
metadata: {{name: siwx, namespace: shop}}
spec:
  type: http
  upstream: {{service: web, port: 8080}}
  payment: {{network: base-sepolia, payTo: "{PAY}", price: {{perRequest: "0.01"}}}}
  routes:
    - path: /reports/*
      gate: auth
"#
    ));
    let body = expect_status(
        &format!("{url}/services/siwx/reports/1"),
        503,
        "offer_unavailable",
        FOLLOW,
        "gate auth: unavailable",
    );
    assert!(
        body.to_string()
            .contains("gate auth is not supported yet by obol"),
        "{body}"
    );
    expect_condition(
        &fake,
        "shop",
        "siwx",
        "PaymentGateReady",
        "False",
        "UnsupportedGate",
    );
    assert!(verifier.is_running(), "{}", verifier.log_tail(30));
}
