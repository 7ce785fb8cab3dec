//! Both daemons (`obol serve verifier`, `obol serve buyer`) under hostile connections: the real
//! `obol` binary against slowloris clients, more idle connections than it has file descriptors,
//! and more requests than its in-flight cap. What is checked is what an operator sees: `/healthz`
//! keeps answering, attackers' connections are closed by the server, the process stays up and
//! says once that it hit its connection cap, and excess requests get a 503 with a JSON reason.
//!
//! The limits are set through their `OBOL_*` environment variables.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use alloy_primitives::{B256, U256};
use alloy_signer_local::PrivateKeySigner;
use obol::x402::eip3009::{self, TransferWithAuthorization};
use obol::x402::wire::{PaymentPayload, PaymentPayloadV2};
use serde_json::Value;
use support::{ChildGuard, decode_b64_json, http_probe, unix_now};

#[derive(Clone, Copy, Debug)]
enum Daemon {
    Verifier,
    Buyer,
}

/// A private home for one daemon; the verifier gets an offers file with one paid route whose
/// facilitator is `facilitator`.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        let dir = tempfile::tempdir().unwrap();
        for d in ["config", "auths", "state"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        std::fs::write(dir.path().join("networks.yaml"), "networks: []\n").unwrap();
        Home { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn obol(&self) -> Command {
        let home = self.path();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_obol"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join("xdg-config"))
            .env("XDG_STATE_HOME", home.join("xdg-state"))
            .env("OBOL_NETWORKS", home.join("networks.yaml"))
            .env("OBOL_KEYRING", "off")
            .env("RUST_LOG", "info");
        cmd
    }

    /// `obol sell create demo` on base-sepolia, upstream nowhere (never reached in these tests).
    fn sell_demo(&self) {
        let out = self
            .obol()
            .args(["sell", "create", "demo", "--upstream", "http://127.0.0.1:9"])
            .args(["--price", "0.01", "--chain", "base-sepolia", "--pay-to"])
            .arg(support::SELLER_ADDRESS.to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "sell create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts `daemon` with the limits in `env` (and an open-file limit of `nofile`), ready
    /// once `/readyz` answers.
    fn start(
        &self,
        daemon: Daemon,
        facilitator: &str,
        env: &[(&str, &str)],
        nofile: Option<u64>,
    ) -> (ChildGuard, SocketAddr) {
        let (guard, port) = ChildGuard::spawn_on_free_port(
            &format!("{daemon:?}").to_lowercase(),
            Duration::from_secs(60),
            |port| {
                let mut cmd = self.obol();
                let listen = format!("127.0.0.1:{port}");
                match daemon {
                    Daemon::Verifier => {
                        cmd.args(["serve", "verifier", "--listen", &listen])
                            .args(["--mode", "proxy", "--facilitator", facilitator])
                            .args(["--verify-timeout", "60s"]);
                    }
                    Daemon::Buyer => {
                        cmd.args(["serve", "buyer", "--listen", &listen])
                            .arg("--config-dir")
                            .arg(self.path().join("config"))
                            .arg("--auths-dir")
                            .arg(self.path().join("auths"))
                            .arg("--state")
                            .arg(self.path().join("state/buyer-state.json"));
                    }
                }
                cmd.envs(env.iter().copied());
                if let Some(n) = nofile {
                    // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child.
                    unsafe {
                        cmd.pre_exec(move || {
                            let lim = libc::rlimit {
                                rlim_cur: n as libc::rlim_t,
                                rlim_max: n as libc::rlim_t,
                            };
                            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                                return Err(std::io::Error::last_os_error());
                            }
                            Ok(())
                        });
                    }
                }
                cmd
            },
            |port| http_probe(&format!("http://127.0.0.1:{port}/readyz")),
        );
        (guard, SocketAddr::from(([127, 0, 0, 1], port)))
    }
}

/// A runtime for the attackers (the test's own threads stay free for probes).
fn attack_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// How long until the server closed this connection (EOF or reset), or `None` if it was still
/// open after `within`. With `trickle`, sends one byte of a request head every 200 ms.
async fn held_until_closed(addr: SocketAddr, trickle: bool, within: Duration) -> Option<Duration> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let head = b"GET /healthz HTTP/1.1\r\nHost: attacker\r\nX-Slow: ";
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let opened = Instant::now();
    let mut sent = 0usize;
    let mut buf = [0u8; 512];
    let deadline = tokio::time::Instant::now() + within;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            r = stream.read(&mut buf) => match r {
                Ok(0) | Err(_) => return Some(opened.elapsed()),
                Ok(_) => {} // e.g. a 408 before the close
            },
            _ = tick.tick(), if trickle => {
                let byte = head.get(sent).copied().unwrap_or(b'a');
                sent += 1;
                if stream.write_all(&[byte]).await.is_err() {
                    return Some(opened.elapsed());
                }
            }
            () = tokio::time::sleep_until(deadline) => return None,
        }
    }
}

/// `GET /healthz` with a 2 s time limit: `Ok` when it answered 200.
fn healthz(addr: SocketAddr) -> Result<(), String> {
    http_probe(&format!("http://{addr}/healthz"))
}

fn slowloris_is_cut_off_and_healthz_keeps_answering(daemon: Daemon) {
    let home = Home::new();
    if matches!(daemon, Daemon::Verifier) {
        home.sell_demo();
    }
    let (mut guard, addr) = home.start(
        daemon,
        "http://127.0.0.1:9",
        &[("OBOL_HEADER_TIMEOUT", "1s")],
        None,
    );
    let rt = attack_runtime();
    // 450 clients trickling a request head, 50 that send nothing at all.
    let attackers: Vec<_> = (0..500)
        .map(|i| rt.spawn(held_until_closed(addr, i >= 50, Duration::from_secs(15))))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let probe_started = Instant::now();
    let during = healthz(addr);
    let probe_took = probe_started.elapsed();
    let closed: Vec<Option<Duration>> = rt.block_on(async {
        let mut v = Vec::new();
        for a in attackers {
            v.push(a.await.unwrap());
        }
        v
    });
    let log = guard.log_tail(30);
    assert!(
        during.is_ok(),
        "{daemon:?}: /healthz during the slowloris: {during:?}\n{log}"
    );
    assert!(
        probe_took < Duration::from_secs(2),
        "{daemon:?}: /healthz took {probe_took:?}"
    );
    let still_open = closed.iter().filter(|c| c.is_none()).count();
    assert_eq!(
        still_open, 0,
        "{daemon:?}: {still_open} of 500 slow connections still open after 15 s (header timeout 1 s)\n{log}"
    );
    let slowest = closed.iter().flatten().max().unwrap();
    assert!(
        *slowest < Duration::from_secs(5),
        "{daemon:?}: a slow connection was closed only after {slowest:?} (header timeout 1 s)"
    );
    assert!(guard.is_running(), "{daemon:?} exited\n{log}");
    healthz(addr).unwrap();
}

fn more_idle_connections_than_file_descriptors(daemon: Daemon) {
    const NOFILE: u64 = 256;
    const IDLE: usize = 1000;
    let home = Home::new();
    if matches!(daemon, Daemon::Verifier) {
        home.sell_demo();
    }
    let (mut guard, addr) = home.start(
        daemon,
        "http://127.0.0.1:9",
        &[("OBOL_HEADER_TIMEOUT", "1s")],
        Some(NOFILE),
    );
    // Idle connections the attacker keeps open (never sends a byte, never closes), until the
    // daemon's accepted ones and its listen queue are full.
    let mut idle = Vec::new();
    for _ in 0..IDLE {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(s) => idle.push(s),
            Err(_) => break,
        }
    }
    assert!(
        idle.len() > NOFILE as usize,
        "only {} connections could be opened",
        idle.len()
    );
    // The server closes them after the header timeout, a connection cap's worth at a time,
    // and gets to the probe queued behind them.
    let answered = support::wait_until(Duration::from_secs(40), || healthz(addr));
    let log = guard.log_contents();
    assert!(guard.is_running(), "{daemon:?} exited\n{log}");
    assert!(
        answered.is_ok(),
        "{daemon:?}: /healthz with {} idle connections held: {answered:?}\n{}",
        idle.len(),
        guard.log_tail(30)
    );
    let cap_lines = log.matches("connection limit reached").count();
    assert_eq!(
        cap_lines, 1,
        "{daemon:?}: the cap is logged once per burst, not per connection:\n{log}"
    );
    assert!(
        !log.contains("accepting a connection failed"),
        "{daemon:?} ran out of file descriptors:\n{log}"
    );
    drop(idle);
    healthz(addr).unwrap();
}

/// A TCP server that accepts and reads but never answers.
fn black_hole() -> (String, std::thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let t = std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().flatten() {
            held.push(s);
            if held.len() > 16 {
                return;
            }
        }
    });
    (url, t)
}

/// Sends `head` (and `body`) on a fresh connection; returns the stream, still open.
fn send(addr: SocketAddr, head: &str, body: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    s
}

/// Reads a whole `Connection: close` answer: status, headers (lowercased names), body.
fn answer(mut s: TcpStream) -> (u16, Vec<(String, String)>, String) {
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

/// A payment for the verifier's demo route, signed by a throwaway key: the verifier's local
/// checks pass and it asks the facilitator.
fn demo_payment(addr: SocketAddr) -> String {
    let s = send(
        addr,
        "GET /services/demo/x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        b"",
    );
    let (status, headers, body) = answer(s);
    assert_eq!(status, 402, "{body}");
    let pr = decode_b64_json(
        &headers
            .iter()
            .find(|(k, _)| k == "payment-required")
            .unwrap()
            .1,
    );
    let accepted: Value = pr["accepts"][0].clone();
    let text = |k: &str| accepted[k].as_str().unwrap().to_string();
    let chain_id: u64 = text("network")
        .strip_prefix("eip155:")
        .unwrap()
        .parse()
        .unwrap();
    let key = PrivateKeySigner::random();
    let now = unix_now();
    let auth = TransferWithAuthorization {
        from: key.address(),
        to: text("payTo").parse().unwrap(),
        value: text("amount").parse().unwrap(),
        validAfter: U256::from(now - 600),
        validBefore: U256::from(now + 300),
        nonce: B256::random(),
    };
    let domain = eip3009::domain(
        accepted["extra"]["name"].as_str().unwrap(),
        accepted["extra"]["version"].as_str().unwrap(),
        chain_id,
        text("asset").parse().unwrap(),
    );
    let sig = eip3009::sign_hash_local(&key, eip3009::signing_hash(&auth, &domain)).unwrap();
    PaymentPayload::V2(PaymentPayloadV2 {
        x402_version: 2,
        resource: serde_json::from_value(pr["resource"].clone()).ok(),
        accepted,
        payload: eip3009::to_wire(&auth, &sig),
        extensions: None,
    })
    .to_header()
}

fn over_the_in_flight_cap_is_a_503_with_a_reason(daemon: Daemon) {
    let home = Home::new();
    let (hole, _hole_thread) = black_hole();
    if matches!(daemon, Daemon::Verifier) {
        home.sell_demo();
    }
    let (mut guard, addr) = home.start(daemon, &hole, &[("OBOL_MAX_IN_FLIGHT", "1")], None);
    // One request that stays in flight: a paid one whose facilitator never answers
    // (verifier), or a chat request whose body never finishes (buyer).
    let (busy, next) = match daemon {
        Daemon::Verifier => {
            let pay = demo_payment(addr);
            let busy = send(
                addr,
                &format!(
                    "GET /services/demo/x HTTP/1.1\r\nHost: t\r\nPAYMENT-SIGNATURE: {pay}\r\nConnection: close\r\n\r\n"
                ),
                b"",
            );
            let next = "GET /services/demo/x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
            (busy, next.to_string())
        }
        Daemon::Buyer => {
            let busy = send(
                addr,
                "POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n",
                b"{\"model\":",
            );
            let body = r#"{"model":"m","messages":[]}"#;
            let next = format!(
                "POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            (busy, next)
        }
    };
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let (status, headers, body) = answer(send(addr, &next, b""));
    let took = started.elapsed();
    let log = guard.log_tail(30);
    assert_eq!(status, 503, "{daemon:?}: over the cap: {body}\n{log}");
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(header("retry-after"), Some("1"), "{headers:?}");
    assert!(
        header("content-type").is_some_and(|t| t.starts_with("application/json")),
        "{headers:?}"
    );
    let json: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(json["error"], "overloaded", "{json}");
    assert!(
        json["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{json}"
    );
    assert!(took < Duration::from_secs(2), "answered after {took:?}");
    // Health checks are not counted against the cap.
    healthz(addr).unwrap();
    http_probe(&format!("http://{addr}/readyz")).unwrap();
    assert!(guard.is_running());
    drop(busy);
}

#[test]
fn verifier_cuts_off_slowloris_and_healthz_keeps_answering() {
    slowloris_is_cut_off_and_healthz_keeps_answering(Daemon::Verifier);
}

#[test]
fn buyer_cuts_off_slowloris_and_healthz_keeps_answering() {
    slowloris_is_cut_off_and_healthz_keeps_answering(Daemon::Buyer);
}

#[test]
fn verifier_survives_more_idle_connections_than_file_descriptors() {
    more_idle_connections_than_file_descriptors(Daemon::Verifier);
}

#[test]
fn buyer_survives_more_idle_connections_than_file_descriptors() {
    more_idle_connections_than_file_descriptors(Daemon::Buyer);
}

#[test]
fn verifier_answers_503_over_the_in_flight_cap() {
    over_the_in_flight_cap_is_a_503_with_a_reason(Daemon::Verifier);
}

#[test]
fn buyer_answers_503_over_the_in_flight_cap() {
    over_the_in_flight_cap_is_a_503_with_a_reason(Daemon::Buyer);
}
