//! `obol buy pay` end to end: the x402 reference seller (npm `@x402/express`) charges through
//! the reference facilitator (npm `@x402/core` + `@x402/evm`), which settles on anvil with our
//! EIP-3009 token. Every assertion is what a user would check: exit code, output, the chain.

mod support;

use std::io::{BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use alloy_primitives::{Address, U256};
use serde_json::Value;
use support::{PAYER_ADDRESS, PAYER_KEY, Rail, SELLER_ADDRESS, Token};

struct Home {
    dir: tempfile::TempDir,
    networks: std::path::PathBuf,
}

impl Home {
    fn new(rail: &Rail) -> Home {
        let dir = tempfile::tempdir().unwrap();
        let networks = rail.write_networks_file(dir.path());
        Home { dir, networks }
    }

    /// A home whose networks file knows the local chain and a token, without starting one
    /// (for sellers that are refused before anything is signed).
    fn offline() -> Home {
        let dir = tempfile::tempdir().unwrap();
        let networks = dir.path().join("networks.yaml");
        std::fs::write(
            &networks,
            format!(
                "networks:\n  - name: local\n    caip2: \"eip155:31337\"\n    asset:\n      address: \"{OFFLINE_TOKEN}\"\n      symbol: USDC\n      decimals: 6\n      eip712Name: \"{}\"\n      eip712Version: \"2\"\n",
                Rail::TOKEN_NAME
            ),
        )
        .unwrap();
        Home { dir, networks }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn ledger(&self) -> Vec<Value> {
        match std::fs::read_to_string(self.path().join("state/obol/payments.jsonl")) {
            Ok(text) => text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// The token address of [`Home::offline`] (nothing is deployed there).
const OFFLINE_TOKEN: &str = "0x5FbDB2315678afecb367f032d93F642f64180aa3";

fn obol(home: &Home) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_obol"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("XDG_STATE_HOME", home.path().join("state"))
        .env("XDG_DATA_HOME", home.path().join("data"))
        .env("OBOL_NETWORKS", &home.networks)
        .env("OBOL_KEYRING", "off")
        .env("OBOL_PRIVATE_KEY", PAYER_KEY)
        .stdin(Stdio::null());
    cmd
}

fn run(cmd: &mut Command) -> (Output, String, String) {
    let out = cmd.output().expect("run obol");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

fn balances(token: &Token) -> (U256, U256) {
    (
        token.balance_of(PAYER_ADDRESS),
        token.balance_of(SELLER_ADDRESS),
    )
}

fn price(rail: &Rail) -> U256 {
    U256::from(rail.seller.price_atomic())
}

fn mined_ok(rail: &Rail, tx: &str) -> bool {
    let receipt = rail
        .anvil
        .rpc("eth_getTransactionReceipt", serde_json::json!([tx]));
    receipt["status"] == "0x1"
}

#[test]
fn pays_the_reference_seller_and_the_money_moves_on_chain() {
    let rail = Rail::start();
    let home = Home::new(&rail);
    let (payer0, seller0) = balances(&rail.token);

    let (out, stdout, stderr) = run(obol(&home).args(["buy", "pay", &rail.seller.paid_url()]));
    assert!(
        out.status.success(),
        "stderr: {stderr}\nseller: {}",
        rail.seller.log()
    );
    assert!(stdout.contains("paid content"), "stdout: {stdout}");
    let receipt = stderr
        .lines()
        .find(|l| l.starts_with("paid "))
        .unwrap_or_else(|| panic!("no receipt: {stderr}"));
    assert!(receipt.contains("0.01 USDC on eip155:31337"), "{receipt}");
    assert!(receipt.contains(&PAYER_ADDRESS.to_string()), "{receipt}");
    let tx = receipt.rsplit("tx ").next().unwrap().trim().to_owned();
    assert!(
        mined_ok(&rail, &tx),
        "receipt names {tx}, which is not a successful transaction"
    );

    let (payer1, seller1) = balances(&rail.token);
    assert_eq!(
        payer0 - payer1,
        price(&rail),
        "payer paid exactly the price"
    );
    assert_eq!(
        seller1 - seller0,
        price(&rail),
        "seller got exactly the price"
    );

    let ledger = home.ledger();
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    assert_eq!(ledger[0]["status"], "settled");
    assert_eq!(ledger[0]["transaction"], tx.as_str());
    assert_eq!(ledger[0]["amount"], price(&rail).to_string());
    assert_eq!(ledger[0]["url"], rail.seller.paid_url());
    assert!(!ledger[0].to_string().contains("signature"));

    // The same again as JSON for scripts: a second, separate payment.
    let (out, stdout, stderr) =
        run(obol(&home).args(["buy", "pay", &rail.seller.paid_url(), "-o", "json"]));
    assert!(out.status.success(), "{stderr}");
    let json: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["status"], 200);
    assert_eq!(json["body"]["secret"], "paid content");
    assert_eq!(json["payment"]["amount"], "0.01");
    assert_eq!(json["payment"]["network"], "eip155:31337");
    let tx2 = json["payment"]["transaction"].as_str().unwrap();
    assert_ne!(tx2, tx);
    assert!(mined_ok(&rail, tx2));
    let (payer2, _) = balances(&rail.token);
    assert_eq!(payer1 - payer2, price(&rail));
    assert_eq!(home.ledger().len(), 2);
}

#[test]
fn refusals_sign_nothing_and_move_nothing() {
    let rail = Rail::start();
    let home = Home::new(&rail);
    let before = balances(&rail.token);
    let url = rail.seller.paid_url();

    // Over the cap: the flag that raises it is named.
    let (out, stdout, stderr) =
        run(obol(&home).args(["buy", "pay", &url, "--max-amount", "0.005"]));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stdout.is_empty());
    assert!(
        stderr.starts_with(
            "error: refusing to pay: price 0.01 USDC is over the per-request cap of 0.005 USDC"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("--max-amount 0.01"), "{stderr}");

    // A network the seller does not sell on.
    let (out, _, stderr) = run(obol(&home).args(["buy", "pay", &url, "--network", "base"]));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is not the requested --network eip155:8453"),
        "{stderr}"
    );

    // A chain obol does not know (no networks file).
    let (out, _, stderr) = run(obol(&home)
        .env("OBOL_NETWORKS", home.path().join("none.yaml"))
        .args(["buy", "pay", &url]));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let (out, _, stderr) = run(obol(&home)
        .env_remove("OBOL_NETWORKS")
        .args(["buy", "pay", &url]));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("network `eip155:31337` is not one obol knows"),
        "{stderr}"
    );

    // A free resource is fetched, and nothing is paid.
    let (out, stdout, stderr) = run(obol(&home).args(["buy", "pay", &rail.seller.free_url()]));
    assert!(out.status.success(), "{stderr}");
    assert!(!stdout.is_empty());
    assert!(stderr.contains("did not ask for payment"), "{stderr}");

    // Malformed or missing 402s from a seller that speaks HTTP but not x402.
    for (head, body, want) in [
        (
            "HTTP/1.1 402 Payment Required\r\nPAYMENT-REQUIRED: %%%not-base64%%%\r\n",
            "",
            "402 is malformed",
        ),
        (
            "HTTP/1.1 402 Payment Required\r\nContent-Type: application/json\r\n",
            "{}",
            "402 is malformed",
        ),
        (
            "HTTP/1.1 402 Payment Required\r\n",
            "pay me",
            "402 is malformed",
        ),
        (
            "HTTP/1.1 404 Not Found\r\n",
            "nope",
            "answered HTTP 404 instead of 402",
        ),
    ] {
        let bad = OneShotServer::start(head, body);
        let (out, _, stderr) = run(obol(&home).args(["buy", "pay", &bad.url()]));
        assert_eq!(out.status.code(), Some(1), "{want}: {stderr}");
        assert!(stderr.contains(want), "{want}: {stderr}");
        assert!(stderr.contains("nothing was signed"), "{stderr}");
        assert!(
            bad.payment_headers_seen().is_empty(),
            "a payment was sent to a non-x402 seller"
        );
    }

    assert_eq!(balances(&rail.token), before, "no money moved");
    assert!(
        home.ledger().is_empty(),
        "nothing was paid: {:?}",
        home.ledger()
    );
}

#[test]
fn a_payment_the_facilitator_rejects_moves_no_money() {
    let rail = Rail::start();
    let home = Home::new(&rail);
    // A payer with no tokens: the reference facilitator answers isValid:false.
    let broke_key = "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a";
    let broke: Address = "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65"
        .parse()
        .unwrap();
    let before = (balances(&rail.token), rail.token.balance_of(broke));

    let (out, stdout, stderr) = run(obol(&home).env("OBOL_PRIVATE_KEY", broke_key).args([
        "buy",
        "pay",
        &rail.seller.paid_url(),
    ]));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    let first = stderr.lines().next().unwrap();
    assert!(
        first.starts_with("error: the seller refused the payment (HTTP 402)"),
        "{stderr}"
    );
    assert!(stderr.to_lowercase().contains("insufficient"), "{stderr}");

    assert_eq!(
        (balances(&rail.token), rail.token.balance_of(broke)),
        before
    );
    let ledger = home.ledger();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0]["status"], "refused");
    assert!(ledger[0].get("transaction").is_none());
}

#[test]
fn a_lost_answer_is_retried_with_the_same_payment_and_settles_once() {
    let rail = Rail::start();
    let home = Home::new(&rail);
    let before = balances(&rail.token);
    // A gateway in front of the seller that answers the first paid request with 503 without
    // forwarding it, and forwards everything after.
    let flaky = FlakyGateway::start(&rail.seller.url(), 1);
    let url = format!("{}/paid", flaky.url());

    let (out, stdout, stderr) = run(obol(&home).args(["buy", "pay", &url]));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("paid content"));
    let seen = flaky.payment_headers_seen();
    assert_eq!(seen.len(), 2, "one lost attempt and one retry: {seen:?}");
    assert_eq!(
        seen[0], seen[1],
        "the retry must resend the same signed payment"
    );

    let (payer, seller) = balances(&rail.token);
    assert_eq!(before.0 - payer, price(&rail), "charged once");
    assert_eq!(seller - before.1, price(&rail));
    assert_eq!(home.ledger().len(), 1);
}

#[test]
fn the_stack_remote_signer_signs_the_payment() {
    let rail = Rail::start();
    let home = Home::new(&rail);
    let signer = support::RemoteSigner::start(PAYER_KEY);
    let signer_url = signer.url.clone();
    let before = balances(&rail.token);

    let (out, stdout, _) = run(obol(&home).env_remove("OBOL_PRIVATE_KEY").args([
        "wallet",
        "address",
        "--signer-url",
        &signer_url,
    ]));
    assert!(out.status.success());
    assert_eq!(stdout.trim(), PAYER_ADDRESS.to_string());

    let (out, stdout, stderr) = run(obol(&home).env_remove("OBOL_PRIVATE_KEY").args([
        "buy",
        "pay",
        &rail.seller.paid_url(),
        "--signer-url",
        &signer_url,
    ]));
    assert!(
        out.status.success(),
        "{stderr}\nsigner: {}",
        signer.guard.log_contents()
    );
    assert!(stdout.contains("paid content"));
    assert_eq!(before.0 - balances(&rail.token).0, price(&rail));
    assert!(signer.guard.log_contents().contains("typed-data"));
}

#[test]
fn a_cross_origin_redirect_gets_neither_the_users_credentials_nor_a_payment() {
    let home = Home::offline();
    let elsewhere =
        support::buyer::HostileSeller::start(OFFLINE_TOKEN.parse().unwrap(), 10_000, 300);
    let head: &'static str = Box::leak(
        format!(
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: {}/v1/chat/completions\r\n",
            elsewhere.url()
        )
        .into_boxed_str(),
    );
    let named = OneShotServer::start(head, "");
    let (out, stdout, stderr) = run(obol(&home).args([
        "buy",
        "pay",
        &named.url(),
        "-X",
        "POST",
        "-d",
        "{}",
        "-H",
        "Authorization: Bearer user-secret",
        "-H",
        "Cookie: session=user-cookie",
        "-H",
        "X-Api-Key: user-key",
    ]));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("redirected") && stderr.contains(&elsewhere.url()),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was signed"), "{stderr}");
    assert!(!stderr.contains("user-secret"), "{stderr}");
    let seen = elsewhere.seen();
    for s in &seen {
        for (name, value) in &s.headers {
            assert!(
                !value.contains("user-secret")
                    && !value.contains("user-cookie")
                    && !value.contains("user-key"),
                "the other origin got the user's {name}: {seen:?}"
            );
        }
    }
    assert!(
        elsewhere.payments().is_empty(),
        "the other origin got a payment: {seen:?}"
    );
    assert!(home.ledger().is_empty(), "{:?}", home.ledger());
}

#[test]
fn a_402_asking_for_an_unbounded_window_is_refused_before_signing() {
    let home = Home::offline();
    for timeout in [1_000_000_000_000u64, u64::MAX] {
        let seller =
            support::buyer::HostileSeller::start(OFFLINE_TOKEN.parse().unwrap(), 10_000, timeout);
        let url = format!("{}/v1/chat/completions", seller.url());
        let (out, stdout, stderr) = run(obol(&home).args(["buy", "pay", &url]));
        assert_eq!(out.status.code(), Some(1), "{timeout}: {stderr}");
        assert!(stdout.is_empty(), "{stdout}");
        assert!(
            stderr.contains(&format!("maxTimeoutSeconds {timeout}"))
                && stderr.contains("--max-timeout"),
            "{timeout}: {stderr}"
        );
        assert!(stderr.contains("nothing was signed"), "{stderr}");
        assert!(
            seller.payments().is_empty(),
            "{timeout}: a payment was sent"
        );
    }
    assert!(home.ledger().is_empty(), "{:?}", home.ledger());

    // Within the cap the window signed is the seller's, never more.
    let seller = support::buyer::HostileSeller::start(OFFLINE_TOKEN.parse().unwrap(), 10_000, 300);
    let url = format!("{}/v1/chat/completions", seller.url());
    let started = support::unix_now();
    let (out, _, stderr) = run(obol(&home).args(["buy", "pay", &url, "--retries", "1"]));
    assert_eq!(
        out.status.code(),
        Some(1),
        "the seller answers 500: {stderr}"
    );
    let payments = seller.payments();
    assert_eq!(payments.len(), 2, "one try and one retry: {stderr}");
    assert_eq!(
        payments[0], payments[1],
        "the retry resent the same payment"
    );
    let valid_before: u64 = payments[0]["payload"]["authorization"]["validBefore"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        valid_before <= support::unix_now() + 300 && valid_before >= started + 300,
        "{valid_before}"
    );
}

/// Answers every connection with one canned response and records payment headers.
struct OneShotServer {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

impl OneShotServer {
    fn start(head: &'static str, body: &'static str) -> OneShotServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let (_, headers) = read_request(&mut conn);
                log.lock().unwrap().extend(payment_header(&headers));
                let reply = format!(
                    "{head}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(reply.as_bytes());
            }
        });
        OneShotServer { port, seen }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/thing", self.port)
    }

    fn payment_headers_seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// Forwards GETs to `upstream`, but answers the first `drop_first` paid requests with 503
/// without forwarding them.
struct FlakyGateway {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

impl FlakyGateway {
    fn start(upstream: &str, drop_first: usize) -> FlakyGateway {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let upstream = upstream.to_owned();
        std::thread::spawn(move || {
            let client = reqwest::blocking::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap();
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let (path, headers) = read_request(&mut conn);
                let payment = payment_header(&headers);
                let dropped = payment.is_some() && {
                    let mut log = log.lock().unwrap();
                    log.push(payment.clone().unwrap());
                    log.len() <= drop_first
                };
                if dropped {
                    let _ = conn.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                    continue;
                }
                let mut req = client.get(format!("{upstream}{path}"));
                for (name, value) in &headers {
                    if matches!(
                        name.as_str(),
                        "payment-signature" | "x-payment" | "accept" | "user-agent"
                    ) {
                        req = req.header(name, value);
                    }
                }
                let resp = req.send().unwrap();
                let mut reply = format!("HTTP/1.1 {}\r\n", resp.status());
                for (name, value) in resp.headers() {
                    if matches!(
                        name.as_str(),
                        "content-type"
                            | "payment-required"
                            | "payment-response"
                            | "x-payment-response"
                    ) {
                        reply.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap()));
                    }
                }
                let body = resp.bytes().unwrap();
                reply.push_str(&format!(
                    "Content-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                ));
                let _ = conn.write_all(reply.as_bytes());
                let _ = conn.write_all(&body);
            }
        });
        FlakyGateway { port, seen }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn payment_headers_seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// Reads a request line and headers (no body: these servers only see GETs).
fn read_request(conn: &mut std::net::TcpStream) -> (String, Vec<(String, String)>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    support::buyer::read_head(&mut reader).unwrap_or_else(|| ("/".to_owned(), Vec::new()))
}

fn payment_header(headers: &[(String, String)]) -> Option<String> {
    headers
        .iter()
        .find(|(n, _)| n == "payment-signature" || n == "x-payment")
        .map(|(_, v)| v.clone())
}
