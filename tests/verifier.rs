//! `obol sell` + `obol serve verifier` end to end: the real `obol` binary in front of a small
//! upstream, the npm x402 reference facilitator settling on anvil with our EIP-3009 token.
//! Every money claim is checked on chain (balances, `authorizationState`).

mod support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use alloy_primitives::{Address, B256, U256};
use alloy_signer_local::PrivateKeySigner;
use obol::x402::eip3009::{self, TransferWithAuthorization};
use obol::x402::wire::{ExactEvmPayload, PaymentPayload, PaymentPayloadV1, PaymentPayloadV2};
use serde_json::{Value, json};
use support::redis::{Redis, eventually};
use support::*;

const UPSTREAM_AUTH: &str = "Bearer upstream-key-123";

// ---------------------------------------------------------------------------------------------
// helpers

/// A private config home, networks file (the rail's chain as `local`, v1 name `local`) and
/// offers file.
struct Home {
    dir: tempfile::TempDir,
    networks: PathBuf,
}

impl Home {
    fn new(rail: &Rail) -> Home {
        let dir = tempfile::tempdir().unwrap();
        let networks = dir.path().join("networks.yaml");
        std::fs::write(
            &networks,
            format!(
                "{}    v1Name: {}\n",
                rail.networks_yaml(),
                Facilitator::V1_NETWORK
            ),
        )
        .unwrap();
        Home { dir, networks }
    }

    fn offers(&self) -> PathBuf {
        self.dir.path().join("config/obol/pricing.yaml")
    }

    fn obol(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_obol"));
        cmd.env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("XDG_STATE_HOME", self.dir.path().join("state"))
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .env("OBOL_NETWORKS", &self.networks)
            .env_remove("OBOL_OFFERS_FILE")
            // No cluster: `obol sell` works on the offers file.
            .env_remove("KUBECONFIG")
            .env_remove("OBOL_FACILITATOR_URL")
            .env_remove("OBOL_LISTEN")
            .env_remove("OBOL_VERIFIER_MODE")
            .env_remove("OBOL_UPSTREAM_AUTH")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `obol ARGS`; panics unless it succeeds. Returns stdout.
    fn run(&self, args: &[&str]) -> String {
        let out = self.obol().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "obol {args:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `obol serve verifier` on a free port, ready once `/readyz` answers 200.
    fn verifier(&self, facilitator: &str, mode: &str, extra: &[&str]) -> (ChildGuard, String) {
        let (guard, port) = ChildGuard::spawn_on_free_port(
            "obol-verifier",
            READY_TIMEOUT,
            |port| {
                let mut cmd = self.obol();
                cmd.args(["serve", "verifier", "--listen"])
                    .arg(format!("127.0.0.1:{port}"))
                    .args(["--mode", mode, "--facilitator", facilitator])
                    .args(["--reload-interval", "100ms"])
                    .args(extra);
                cmd
            },
            |port| http_probe(&format!("http://127.0.0.1:{port}/readyz")),
        );
        (guard, format!("http://127.0.0.1:{port}"))
    }
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(90))
        .build()
        .unwrap()
}

fn get(url: &str, headers: &[(&str, &str)]) -> reqwest::blocking::Response {
    let mut req = http().get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().unwrap()
}

/// The decoded `PAYMENT-REQUIRED` of an unpaid request.
fn payment_required(url: &str, headers: &[(&str, &str)]) -> Value {
    let r = get(url, headers);
    assert_eq!(r.status(), 402, "unpaid request to {url}");
    decode_b64_json(r.headers()["payment-required"].to_str().unwrap())
}

fn payer() -> PrivateKeySigner {
    PAYER_KEY.parse().unwrap()
}

/// An EIP-3009 payment for `accepted`, signed with obol's own EIP-712 code. `tweak` edits the
/// authorization before signing.
fn obol_signed(
    accepted: &Value,
    tweak: impl FnOnce(&mut TransferWithAuthorization),
) -> (ExactEvmPayload, B256) {
    let s = |k: &str| accepted[k].as_str().unwrap().to_string();
    let now = unix_now();
    let key = payer();
    let mut auth = TransferWithAuthorization {
        from: key.address(),
        to: s("payTo").parse().unwrap(),
        value: s("amount").parse().unwrap(),
        validAfter: U256::from(now - 600),
        validBefore: U256::from(now + 300),
        nonce: B256::random(),
    };
    tweak(&mut auth);
    let domain = eip3009::domain(
        accepted["extra"]["name"].as_str().unwrap(),
        accepted["extra"]["version"].as_str().unwrap(),
        CHAIN_ID,
        s("asset").parse().unwrap(),
    );
    let sig = eip3009::sign_hash_local(&key, eip3009::signing_hash(&auth, &domain)).unwrap();
    (eip3009::to_wire(&auth, &sig), auth.nonce)
}

fn v2_header(pr: &Value, accepted: &Value, payload: ExactEvmPayload) -> String {
    PaymentPayload::V2(PaymentPayloadV2 {
        x402_version: 2,
        resource: serde_json::from_value(pr["resource"].clone()).ok(),
        accepted: accepted.clone(),
        payload,
        extensions: None,
    })
    .to_header()
}

/// `obol sell create demo` at 0.01 USDC on the local chain, paid to the seller.
fn sell_demo(home: &Home, upstream: &str) {
    home.run(&[
        "sell",
        "create",
        "demo",
        "--upstream",
        upstream,
        "--price",
        "0.01",
        "--chain",
        "local",
        "--pay-to",
        &SELLER_ADDRESS.to_string(),
    ]);
}

fn json(r: reqwest::blocking::Response) -> Value {
    r.json().unwrap()
}

// ---------------------------------------------------------------------------------------------
// tests

#[test]
fn sell_create_list_pause_delete_on_the_offers_file() {
    let rail_free_home = tempfile::tempdir().unwrap();
    let home = Home {
        networks: rail_free_home.path().join("none.yaml"),
        dir: rail_free_home,
    };
    std::fs::write(&home.networks, "networks: []\n").unwrap();
    let out = home.run(&[
        "sell",
        "create",
        "demo",
        "--upstream",
        "http://127.0.0.1:9000",
        "--price",
        "0.01",
        "--pay-to",
        "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    ]);
    assert!(out.starts_with("created offer demo"), "{out}");
    assert!(out.contains(&home.offers().display().to_string()), "{out}");
    let out = home.run(&[
        "sell",
        "create",
        "demo",
        "--upstream",
        "http://127.0.0.1:9001",
        "--price",
        "0.02",
    ]);
    assert!(out.starts_with("updated offer demo"), "{out}");
    let text = std::fs::read_to_string(home.offers()).unwrap();
    assert!(text.contains("pattern: /services/demo/*"), "{text}");
    assert!(text.contains("stripPrefix: /services/demo"), "{text}");
    assert!(text.contains("offerNamespace: local"), "{text}");

    let list: Value = serde_json::from_str(&home.run(&["sell", "list", "-o", "json"])).unwrap();
    assert_eq!(list[0]["name"], "demo");
    assert_eq!(list[0]["price"], "0.02");
    assert_eq!(list[0]["network"], "eip155:84532");
    assert_eq!(list[0]["upstream"], "http://127.0.0.1:9001");
    let table = home.run(&["sell", "list"]);
    for col in [
        "NAME",
        "PATH",
        "PRICE",
        "CHAIN",
        "PAY TO",
        "UPSTREAM",
        "PAUSED",
        "0.02 USDC",
        "base-sepolia",
    ] {
        assert!(table.contains(col), "{col} missing:\n{table}");
    }

    home.run(&["sell", "pause", "demo"]);
    let list: Value = serde_json::from_str(&home.run(&["sell", "list", "-o", "json"])).unwrap();
    assert_eq!(list[0]["paused"], true);
    home.run(&["sell", "resume", "demo"]);

    // Refusals write nothing and say why.
    let before = std::fs::read(home.offers()).unwrap();
    let pay = ["--pay-to", "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"];
    for (args, needle) in [
        (
            vec![
                "sell",
                "create",
                "x",
                "--upstream",
                "http://u",
                "--price",
                "0.0000001",
            ],
            "decimal",
        ),
        (
            vec![
                "sell",
                "create",
                "x",
                "--upstream",
                "http://u",
                "--price",
                "1",
                "--pay-to",
                "0x12",
            ],
            "payTo",
        ),
        (
            vec![
                "sell",
                "create",
                "x",
                "--upstream",
                "http://u",
                "--price",
                "1",
                "--chain",
                "atlantis",
            ],
            "unknown network",
        ),
        (
            vec![
                "sell",
                "create",
                "x",
                "--upstream",
                "ftp://u",
                "--price",
                "1",
            ],
            "upstreamURL",
        ),
        (
            vec![
                "sell",
                "create",
                "x",
                "--upstream",
                "http://u",
                "--price",
                "1",
                "--path",
                "/services/demo",
            ],
            "already used",
        ),
        (
            vec![
                "sell",
                "create",
                "Bad",
                "--upstream",
                "http://u",
                "--price",
                "1",
            ],
            "offer name",
        ),
        (vec!["sell", "delete", "nope"], "no offer named"),
    ] {
        let mut args = args;
        if args[1] == "create" && !args.contains(&"--pay-to") {
            args.extend(pay);
        }
        let out = home.obol().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(err.contains("hint:"), "{args:?}: {err}");
    }
    assert_eq!(std::fs::read(home.offers()).unwrap(), before);

    home.run(&["sell", "delete", "demo"]);
    assert!(home.run(&["sell", "list"]).contains("no offers"));
}

#[test]
fn proxy_mode_charges_once_on_chain_and_refuses_bad_payments() {
    let mut rail = Rail::start();
    let home = Home::new(&rail);
    let up = RecordingUpstream::start();
    let seller = SELLER_ADDRESS.to_string();
    let out = home.run(&[
        "sell",
        "create",
        "demo",
        "--upstream",
        &up.url,
        "--price",
        "0.01",
        "--chain",
        "local",
        "--pay-to",
        &seller,
        "--upstream-auth",
        UPSTREAM_AUTH,
    ]);
    assert!(out.starts_with("created offer demo"), "{out}");
    home.run(&[
        "sell",
        "create",
        "other",
        "--upstream",
        &up.url,
        "--price",
        "0.02",
        "--chain",
        "local",
        "--pay-to",
        &seller,
    ]);
    let (mut verifier, base) = home.verifier(&rail.facilitator.url(), "proxy", &[]);
    let demo = format!("{base}/services/demo/v1/data?x=1");

    // Unpaid: 402, requirement in the header.
    let pr = payment_required(&demo, &[]);
    let accepted = pr["accepts"][0].clone();
    assert_eq!(accepted["network"], CAIP2);
    assert_eq!(accepted["amount"], "10000");
    assert_eq!(accepted["payTo"], seller);
    assert_eq!(
        accepted["asset"].as_str().unwrap().to_lowercase(),
        rail.token.address().to_string().to_lowercase()
    );
    assert_eq!(pr["resource"]["url"], demo);
    assert_eq!(up.requests().len(), 0);

    // Paid (signed with cast by the test rail, not by obol): served, settled, receipt.
    let before = Balances::now(&rail.token);
    let (pay, auth) = payment_signature(&pr, &accepted, PAYER_KEY, PAYER_ADDRESS);
    let r = get(&demo, &[("payment-signature", &pay)]);
    assert_eq!(r.status(), 200, "{}", verifier.log_tail(20));
    assert_eq!(r.headers()["cache-control"], "no-store");
    let receipt = decode_b64_json(r.headers()["payment-response"].to_str().unwrap());
    assert_eq!(
        r.headers()["payment-response"],
        r.headers()["x-payment-response"]
    );
    assert_eq!(receipt["success"], true, "{receipt}");
    assert!(
        receipt["transaction"].as_str().unwrap().starts_with("0x"),
        "{receipt}"
    );
    assert_eq!(r.text().unwrap(), "upstream says hi");
    before.moved(10_000, "first payment");
    assert!(rail.token.authorization_state(PAYER_ADDRESS, auth.nonce));
    let seen = up.requests()[0].clone();
    assert_eq!(seen.uri, "/v1/data?x=1");
    assert_eq!(seen.authorization.as_deref(), Some(UPSTREAM_AUTH));
    assert!(!seen.payment_header);

    // The same header again: refused, nothing moves.
    let before = Balances::now(&rail.token);
    let r = get(&demo, &[("payment-signature", &pay)]);
    assert_eq!(r.status(), 409);
    assert_eq!(json(r)["reason"], "payment_replayed");
    before.moved(0, "replay");
    assert_eq!(up.requests().len(), 1);

    // Bad payments (signed by obol's code): refused before anything is settled.
    let now = unix_now();
    let other_addr: Address = "0x00000000000000000000000000000000000000aa"
        .parse()
        .unwrap();
    let tampered = {
        let (mut p, _) = obol_signed(&accepted, |_| {});
        p.authorization.value = "1000000".into();
        let mut acc = accepted.clone();
        acc["amount"] = json!("1000000");
        (v2_header(&pr, &acc, p), 402, "no_matching_requirement")
    };
    let tampered_sig = {
        let (mut p, _) = obol_signed(&accepted, |_| {});
        p.authorization.nonce = B256::random().to_string();
        (
            v2_header(&pr, &accepted, p),
            402,
            "invalid_exact_evm_signature",
        )
    };
    let expired = {
        let (p, _) = obol_signed(&accepted, |a| a.validBefore = U256::from(now - 10));
        (
            v2_header(&pr, &accepted, p),
            402,
            "invalid_exact_evm_payload_authorization_valid_before",
        )
    };
    let wrong_pay_to = {
        let (p, _) = obol_signed(&accepted, |a| a.to = other_addr);
        (
            v2_header(&pr, &accepted, p),
            402,
            "invalid_exact_evm_recipient_mismatch",
        )
    };
    let under = {
        let (p, _) = obol_signed(&accepted, |a| a.value = U256::from(9_999u64));
        (
            v2_header(&pr, &accepted, p),
            402,
            "invalid_exact_evm_authorization_value",
        )
    };
    let wrong_network = {
        let mut acc = accepted.clone();
        acc["network"] = json!("eip155:84532");
        let (p, _) = obol_signed(&accepted, |_| {});
        (v2_header(&pr, &acc, p), 402, "no_matching_requirement")
    };
    let malformed = ("bm90IGpzb24=".to_string(), 400, "invalid_payment_header");
    let before = Balances::now(&rail.token);
    for (what, (header, status, reason)) in [
        ("tampered amount", tampered),
        ("tampered signature", tampered_sig),
        ("expired", expired),
        ("wrong payTo", wrong_pay_to),
        ("under-amount", under),
        ("wrong network", wrong_network),
        ("malformed", malformed),
    ] {
        let r = get(&demo, &[("payment-signature", &header)]);
        assert_eq!(r.status().as_u16(), status, "{what}");
        let body = json(r);
        let got = body.get("reason").unwrap_or(&body["error"]).clone();
        assert_eq!(got, reason, "{what}: {body}");
    }
    before.moved(0, "bad payments");
    assert_eq!(up.requests().len(), 1);

    // The same fresh payment sent four times at once: served once, paid once.
    let before = Balances::now(&rail.token);
    let (p, _) = obol_signed(&accepted, |_| {});
    let pay = v2_header(&pr, &accepted, p);
    let codes: Vec<u16> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| s.spawn(|| get(&demo, &[("payment-signature", &pay)]).status().as_u16()))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(codes.iter().filter(|c| **c == 200).count(), 1, "{codes:?}");
    assert!(codes.iter().all(|c| [200, 409].contains(c)), "{codes:?}");
    before.moved(10_000, "concurrent copies");

    // Upstream 500: passed through, nothing settled; the same payment works once it is fixed.
    up.answer(500);
    let before = Balances::now(&rail.token);
    let (p, nonce) = obol_signed(&accepted, |_| {});
    let pay = v2_header(&pr, &accepted, p);
    let r = get(&demo, &[("payment-signature", &pay)]);
    assert_eq!(r.status(), 500);
    assert!(!r.headers().contains_key("payment-response"));
    before.moved(0, "upstream 500");
    assert!(!rail.token.authorization_state(PAYER_ADDRESS, nonce));
    up.answer(200);
    let r = get(&demo, &[("payment-signature", &pay)]);
    assert_eq!(r.status(), 200);
    before.moved(10_000, "retry after upstream 500");

    // x402 v1 (X-PAYMENT, network name): accepted and settled by the reference v1 scheme.
    let before = Balances::now(&rail.token);
    let (p, _) = obol_signed(&accepted, |_| {});
    let v1 = PaymentPayload::V1(PaymentPayloadV1 {
        x402_version: 1,
        scheme: "exact".into(),
        network: Facilitator::V1_NETWORK.into(),
        payload: p,
    });
    let r = get(&demo, &[("x-payment", &v1.to_header())]);
    assert_eq!(r.status(), 200, "{}", verifier.log_tail(20));
    assert!(r.headers().contains_key("x-payment-response"));
    before.moved(10_000, "v1 payment");

    // Metrics: the CAIP-2 chain on every series, amounts in atomic units.
    assert_eq!(get(&format!("{base}/services/other/x"), &[]).status(), 402);
    let metrics_url = format!("{base}/metrics");
    let scrape = get(&metrics_url, &[]).text().unwrap();
    let (labels, charged) =
        series(&scrape, "obol_x402_verifier_charged_requests_total", "demo").unwrap();
    assert_eq!(
        labels,
        r#"chain="eip155:31337",offer_name="demo",offer_namespace="local""#
    );
    assert_eq!(charged, 4.0);
    assert_eq!(
        series(&scrape, "obol_x402_verifier_charged_amount_total", "demo")
            .unwrap()
            .1,
        40_000.0
    );
    assert!(
        series(&scrape, "obol_x402_verifier_payment_required_total", "demo")
            .unwrap()
            .1
            >= 1.0
    );
    assert!(
        series(&scrape, "obol_x402_verifier_payment_failed_total", "demo")
            .unwrap()
            .1
            >= 8.0
    );
    assert!(
        series(
            &scrape,
            "obol_x402_verifier_last_payment_success_seconds",
            "demo"
        )
        .unwrap()
        .1 > 1.7e9
    );
    assert!(series(&scrape, "obol_x402_verifier_requests_total", "other").is_some());
    assert!(!scrape.contains("chain=\"\""));

    // `obol sell delete` + reload: every series of that offer goes, the others stay.
    home.run(&["sell", "delete", "other"]);
    let mut gone = false;
    for _ in 0..100 {
        let scrape = get(&metrics_url, &[]).text().unwrap();
        if !scrape.contains("offer_name=\"other\"") {
            assert_eq!(
                series(&scrape, "obol_x402_verifier_charged_requests_total", "demo")
                    .unwrap()
                    .1,
                4.0
            );
            gone = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(gone, "series of the deleted offer still present");
    assert_eq!(get(&format!("{base}/services/other/x"), &[]).status(), 404);

    // Facilitator down: 503 with a retriable JSON body; nothing moves.
    rail.facilitator.process().kill();
    let before = Balances::now(&rail.token);
    let (p, _) = obol_signed(&accepted, |_| {});
    let r = get(
        &demo,
        &[("payment-signature", &v2_header(&pr, &accepted, p))],
    );
    assert_eq!(r.status(), 503);
    let body = json(r);
    assert_eq!(body["reason"], "facilitator_unreachable", "{body}");
    assert_eq!(body["retriable"], true);
    before.moved(0, "facilitator down");
    assert!(verifier.is_running());
}

#[test]
fn forward_auth_settles_before_the_grant_unless_verify_only_is_asked_for() {
    let rail = Rail::start();
    let home = Home::new(&rail);
    let seller = SELLER_ADDRESS.to_string();
    home.run(&[
        "sell",
        "create",
        "fa",
        "--upstream",
        "http://127.0.0.1:9",
        "--price",
        "0.05",
        "--chain",
        "local",
        "--pay-to",
        &seller,
        "--upstream-auth",
        UPSTREAM_AUTH,
    ]);
    let (mut verifier, base) =
        home.verifier(&rail.facilitator.url(), "forward-auth", &["--verify-only"]);
    let log = verifier.log_contents();
    assert!(
        log.contains(&format!(
            "listening on {} mode=forward-auth routes=1 ready=true facilitator={}",
            base.trim_start_matches("http://"),
            rail.facilitator.url()
        )),
        "{log}"
    );
    assert!(!log.contains(UPSTREAM_AUTH), "secrets never logged");
    let verify = format!("{base}/verify");
    let fwd = [
        ("x-forwarded-uri", "/services/fa/v1/chat?stream=1"),
        ("x-forwarded-host", "seller.example"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-method", "GET"),
    ];

    assert_eq!(get(&verify, &[]).status(), 403, "missing X-Forwarded-Uri");
    // Fail closed: a path no offer covers is refused, never granted.
    let r = get(&verify, &[("x-forwarded-uri", "/free")]);
    assert_eq!(r.status(), 404);
    assert_eq!(json(r)["reason"], "no_route");
    let pr = payment_required(&verify, &fwd);
    assert_eq!(
        pr["resource"]["url"],
        "https://seller.example/services/fa/v1/chat?stream=1"
    );
    let accepted = pr["accepts"][0].clone();
    assert_eq!(accepted["amount"], "50000");

    // Verify only: 200 with the upstream's Authorization, nothing settled on chain.
    let before = Balances::now(&rail.token);
    let (p, nonce) = obol_signed(&accepted, |_| {});
    let pay = v2_header(&pr, &accepted, p);
    let mut paid = fwd.to_vec();
    paid.push(("payment-signature", &pay));
    let r = get(&verify, &paid);
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["authorization"], UPSTREAM_AUTH);
    before.moved(0, "verify-only");
    assert!(!rail.token.authorization_state(PAYER_ADDRESS, nonce));
    assert_eq!(get(&verify, &paid).status(), 409, "replay");
    let scrape = get(&format!("{base}/metrics"), &[]).text().unwrap();
    assert_eq!(
        series(&scrape, "obol_x402_verifier_charged_requests_total", "fa")
            .unwrap()
            .1,
        0.0,
        "a verify-only grant moved no money: it is not revenue"
    );
    assert_eq!(
        series(&scrape, "obol_x402_verifier_verify_only_grants_total", "fa")
            .unwrap()
            .1,
        1.0,
        "verify-only grants have their own series"
    );
    assert_eq!(
        series(&scrape, "obol_x402_verifier_payment_verified_total", "fa")
            .unwrap()
            .1,
        1.0
    );

    // Without --verify-only (the default): the transfer happens before the 200.
    // A second verifier on the same offers file needs its own payment-state file.
    let state2 = home.dir.path().join("settling.redb");
    let (_v2, base2) = home.verifier(
        &rail.facilitator.url(),
        "forward-auth",
        &["--state", state2.to_str().unwrap()],
    );
    let before = Balances::now(&rail.token);
    let (p, nonce) = obol_signed(&accepted, |_| {});
    let pay = v2_header(&pr, &accepted, p);
    let mut paid = fwd.to_vec();
    paid.push(("payment-signature", &pay));
    let r = get(&format!("{base2}/verify"), &paid);
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("payment-response"));
    before.moved(50_000, "settle before grant");
    assert!(rail.token.authorization_state(PAYER_ADDRESS, nonce));

    // Paused: not served.
    home.run(&["sell", "pause", "fa"]);
    let mut status = 0;
    for _ in 0..100 {
        status = get(&verify, &fwd).status().as_u16();
        if status == 404 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(status, 404, "paused offer");

    // SIGTERM: a clean, prompt exit.
    let term = Command::new("kill")
        .args(["-TERM", &verifier.pid().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let stopped = wait_until(Duration::from_secs(10), || {
        if verifier.is_running() {
            Err("still running".into())
        } else {
            Ok(())
        }
    });
    assert!(stopped.is_ok(), "verifier did not stop on SIGTERM");
    assert!(verifier.log_contents().contains("shutting down"));
    assert!(!verifier.log_contents().contains(UPSTREAM_AUTH));
}

/// Attack 3 of the gate's threat list, on the chain: after a settlement whose outcome was
/// unknown, the retry of the same header is granted only when the chain shows that this very
/// authorization paid the seller; a nonce the buyer burnt meanwhile (a 0-value transfer to
/// themselves) is refused, and nothing is served for it.
#[test]
fn an_unknown_settlement_is_resolved_by_the_chain_never_by_the_buyer() {
    let rail = Rail::start();
    let home = Home::new(&rail);
    let up = RecordingUpstream::start();
    let faulty = FaultyFacilitator::start(&rail.facilitator.url());
    sell_demo(&home, &up.url);
    let (verifier, base) = home.verifier(&faulty.url, "proxy", &[]);
    let demo = format!("{base}/services/demo/x");
    let pr = payment_required(&demo, &[]);
    let accepted = pr["accepts"][0].clone();

    // 1. The settlement goes through on chain but its answer is lost: unknown, then the same
    //    header finds the nonce used, the chain shows it paid the seller: served, charged once.
    let before = Balances::now(&rail.token);
    let (payload, _) = obol_signed(&accepted, |_| {});
    let pay = v2_header(&pr, &accepted, payload);
    faulty.next_settle(SettleFault::LoseAnswer);
    let r = get(&demo, &[("payment-signature", &pay)]);
    assert_eq!(r.status(), 503, "{}", verifier.log_tail(20));
    assert_eq!(json(r)["reason"], "settlement_unknown");
    before.moved(10_000, "the lost-answer settlement");
    assert_eq!(up.requests().len(), 1, "the upstream answered once");
    let r = get(&demo, &[("payment-signature", &pay)]);
    assert_eq!(r.status(), 200, "{}", verifier.log_tail(20));
    let receipt = decode_b64_json(r.headers()["payment-response"].to_str().unwrap());
    assert_eq!(receipt["success"], true);
    assert!(receipt["transaction"].as_str().unwrap().starts_with("0x"));
    before.moved(10_000, "the retry moves nothing more");
    let r = get(&demo, &[("payment-signature", &pay)]);
    assert_eq!(r.status(), 409, "now used for good");

    // 2. The settlement is dropped before it reaches the facilitator: unknown. The buyer burns
    //    the nonce with a 0-value transfer to themselves, then resends the header.
    let before = Balances::now(&rail.token);
    let (payload, nonce) = obol_signed(&accepted, |_| {});
    let pay = v2_header(&pr, &accepted, payload);
    faulty.next_settle(SettleFault::Drop);
    let r = get(&demo, &[("payment-signature", &pay)]);
    assert_eq!(r.status(), 503);
    assert_eq!(json(r)["reason"], "settlement_unknown");
    let (burn, _) = obol_signed(&accepted, |a| {
        a.to = PAYER_ADDRESS;
        a.value = U256::ZERO;
        a.nonce = nonce;
    });
    rail.anvil.cast(&[
        "send",
        &rail.token.address().to_string(),
        "transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,bytes)",
        &burn.authorization.from,
        &burn.authorization.to,
        &burn.authorization.value,
        &burn.authorization.valid_after,
        &burn.authorization.valid_before,
        &burn.authorization.nonce,
        &burn.signature,
        "--private-key",
        PAYER_KEY,
    ]);
    assert!(rail.token.authorization_state(PAYER_ADDRESS, nonce));
    let served = up.requests().len();
    let r = get(&demo, &[("payment-signature", &pay)]);
    assert_eq!(r.status(), 409, "{}", verifier.log_tail(20));
    assert!(!r.headers().contains_key("payment-response"));
    let b = json(r);
    assert_eq!(b["reason"], "authorization_used_elsewhere", "{b}");
    assert!(
        !b.to_string().contains(UPSTREAM_BODY),
        "the buyer got nothing"
    );
    before.moved(0, "a burnt nonce");
    // Proxy mode settles after the upstream answered, so the retry did reach it once; its
    // answer was not delivered. From now on the payment is refused before the upstream.
    assert_eq!(up.requests().len(), served + 1);
    let r = get(&demo, &[("payment-signature", &pay)]);
    assert_eq!(r.status(), 409);
    assert_eq!(up.requests().len(), served + 1);
}

#[test]
fn payment_state_survives_restarts_and_is_shared_by_replicas_on_redis() {
    let rail = Rail::start();
    let home = Home::new(&rail);
    let up = RecordingUpstream::start();
    sell_demo(&home, &up.url);
    let fac = rail.facilitator.url();
    let fwd = [
        ("x-forwarded-uri", "/services/demo/x"),
        ("x-forwarded-host", "seller.example"),
    ];

    // 1. Verify-only ForwardAuth with the default state (a file next to the offers file): a
    //    granted payment stays used across a restart.
    let (mut v, base) = home.verifier(&fac, "forward-auth", &["--verify-only"]);
    let verify = format!("{base}/verify");
    let pr = payment_required(&verify, &fwd);
    let accepted = pr["accepts"][0].clone();
    let (p, _) = obol_signed(&accepted, |_| {});
    let pay = v2_header(&pr, &accepted, p);
    let mut paid = fwd.to_vec();
    paid.push(("payment-signature", &pay));
    assert_eq!(get(&verify, &paid).status(), 200);
    v.kill();
    let state_file = home.offers().parent().unwrap().join("payment-state.redb");
    assert!(state_file.exists(), "{}", state_file.display());
    let (mut v, base) = home.verifier(&fac, "forward-auth", &["--verify-only"]);
    let r = get(&format!("{base}/verify"), &paid);
    assert_eq!(r.status(), 409, "granted once, refused after a restart");
    assert_eq!(json(r)["reason"], "payment_replayed");
    v.kill();
    // What the in-memory guard did (and `--state memory` still does): a restart forgets it.
    let (mut v, base) = home.verifier(
        &fac,
        "forward-auth",
        &["--verify-only", "--state", "memory"],
    );
    assert_eq!(get(&format!("{base}/verify"), &paid).status(), 200);
    v.kill();

    // 2. Three proxy replicas on one Redis: 100 concurrent sends of one payment, spread over
    //    them, are served once and settled once.
    let mut redis = Redis::start();
    let replicas: Vec<(ChildGuard, String)> = (0..3)
        .map(|_| home.verifier(&fac, "proxy", &["--state", &redis.url()]))
        .collect();
    let urls: Vec<String> = replicas
        .iter()
        .map(|(_, b)| format!("{b}/services/demo/x"))
        .collect();
    let pr = payment_required(&urls[0], &[]);
    let accepted = pr["accepts"][0].clone();
    let (pay, _) = payment_signature(&pr, &accepted, PAYER_KEY, PAYER_ADDRESS);
    let before = Balances::now(&rail.token);
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..100)
            .map(|i| {
                let url = &urls[i % 3];
                let pay = &pay;
                s.spawn(move || get(url, &[("payment-signature", pay)]).status().as_u16())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let served = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(served, 1, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 409),
        "{statuses:?}"
    );
    before.moved(10_000, "one transfer for 100 sends across 3 replicas");
    assert_eq!(up.requests().len(), 1, "the upstream answered once");

    // 3. Redis down: paid requests are refused (503, nothing moves), unpaid ones still get
    //    their 402, /readyz says why; Redis back: paid requests are served, no restart.
    redis.stop();
    let (pay2, _) = payment_signature(&pr, &accepted, PAYER_KEY, PAYER_ADDRESS);
    let before = Balances::now(&rail.token);
    let r = get(&urls[0], &[("payment-signature", &pay2)]);
    assert_eq!(r.status(), 503);
    assert_eq!(json(r)["reason"], "payment_state_unavailable");
    assert_eq!(
        get(&urls[1], &[]).status(),
        402,
        "unpaid 402s keep being answered"
    );
    let ready = format!("{}/readyz", replicas[2].1);
    eventually("/readyz reports the store down", || {
        let b = json(get(&ready, &[]));
        (b["paymentState"]["ok"] == false && b["paymentState"]["error"].is_string())
            .then_some(())
            .ok_or_else(|| b.to_string())
    });
    before.moved(0, "nothing settled while the store is down");
    assert_eq!(up.requests().len(), 1);
    redis.restart();
    eventually("paid requests served again", || {
        match get(&urls[0], &[("payment-signature", &pay2)])
            .status()
            .as_u16()
        {
            200 => Ok(()),
            s => Err(format!("status {s}")),
        }
    });
    before.moved(10_000, "served once the store is back");
    for (mut g, _) in replicas {
        assert!(g.is_running(), "{}", g.log_tail(20));
    }
}

/// A verifier killed after it sent a settlement: with the in-memory guard the buyer's retry
/// was answered 402 (paid, served nothing); with the payment state on file it finishes the
/// settlement: one transfer, one answer.
#[test]
fn a_verifier_killed_mid_settlement_finishes_it_on_the_buyers_retry() {
    let rail = Rail::start();
    let home = Home::new(&rail);
    let up = RecordingUpstream::start();
    let faulty = FaultyFacilitator::start(&rail.facilitator.url());
    sell_demo(&home, &up.url);
    // Kills the verifier while the facilitator holds its settlement (which then lands on
    // chain), restarts it with the same `extra` args, and sends the same header again.
    let crash_and_retry = |extra: &[&str]| -> (reqwest::blocking::Response, ChildGuard) {
        let (mut v, base) = home.verifier(&faulty.url, "proxy", extra);
        let demo = format!("{base}/services/demo/x");
        let pr = payment_required(&demo, &[]);
        let accepted = pr["accepts"][0].clone();
        let (payload, _) = obol_signed(&accepted, |_| {});
        let pay = v2_header(&pr, &accepted, payload);
        let before = Balances::now(&rail.token);
        let settles = faulty.settles_seen();
        faulty.next_settle(SettleFault::Hold);
        let client = {
            let (demo, pay) = (demo.clone(), pay.clone());
            std::thread::spawn(move || {
                http()
                    .get(&demo)
                    .header("payment-signature", &pay)
                    .send()
                    .map(|r| r.status())
            })
        };
        eventually("the settlement reaches the facilitator", || {
            (faulty.settles_seen() > settles)
                .then_some(())
                .ok_or_else(|| v.log_tail(5))
        });
        v.kill();
        assert!(client.join().unwrap().is_err(), "the buyer got no answer");
        eventually("the held settlement lands on chain", || {
            let after = Balances::now(&rail.token);
            (before.seller + U256::from(10_000u64) == after.seller)
                .then_some(())
                .ok_or_else(|| format!("seller {}", after.seller))
        });
        let (v, base) = home.verifier(&faulty.url, "proxy", extra);
        let r = get(
            &format!("{base}/services/demo/x"),
            &[("payment-signature", &pay)],
        );
        before.moved(10_000, "one transfer, whatever the retry got");
        (r, v)
    };

    // The in-memory state (the old verifier): the retry is refused, the buyer paid for nothing.
    let (r, mut v) = crash_and_retry(&["--state", "memory"]);
    assert_eq!(r.status(), 402, "{}", v.log_tail(10));
    v.kill();

    // The default state file: the retry finishes the settlement and is served, once.
    let (r, v) = crash_and_retry(&[]);
    assert_eq!(r.status(), 200, "{}", v.log_tail(20));
    let receipt = decode_b64_json(r.headers()["payment-response"].to_str().unwrap());
    assert_eq!(receipt["success"], true, "{receipt}");
    assert_eq!(r.text().unwrap(), UPSTREAM_BODY);
}
