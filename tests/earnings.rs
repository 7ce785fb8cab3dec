//! `obol metrics earnings` and the x402 Prometheus rules against real components: `promtool`
//! checks and unit-tests the rules file, and a real Debian `prometheus` scrapes a running
//! `obol serve verifier` (proxy mode) whose payments settle on anvil through the npm x402
//! reference facilitator.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

const SETUP_HINT: &str = "run scripts/setup-test-env.sh";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A Debian prometheus tool (`prometheus`, `promtool`) from PATH; panics naming the setup
/// script when it is not installed.
fn prom_tool(name: &str) -> PathBuf {
    match Command::new(name)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => PathBuf::from(name),
        _ => panic!("{name} not installed (Debian package `prometheus`): {SETUP_HINT}"),
    }
}

fn output_text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

// ---------------------------------------------------------------------------------------------
// promtool

#[test]
fn promtool_checks_and_unit_tests_the_rules() {
    let promtool = prom_tool("promtool");
    let rules = repo().join("src/earnings/rules.yaml");
    let out = Command::new(&promtool)
        .arg("check")
        .arg("rules")
        .arg(&rules)
        .output()
        .unwrap();
    let (stdout, stderr) = output_text(&out);
    assert!(
        out.status.success(),
        "promtool check rules:\n{stdout}{stderr}"
    );
    assert!(stdout.contains("SUCCESS: 9 rules found"), "{stdout}");

    // rules_test.yaml: counter reset, inherited chain, cold offer, deleted offer, both alerts.
    let out = Command::new(&promtool)
        .arg("test")
        .arg("rules")
        .arg(repo().join("src/earnings/rules_test.yaml"))
        .output()
        .unwrap();
    let (stdout, stderr) = output_text(&out);
    assert!(
        out.status.success(),
        "promtool test rules:\n{stdout}{stderr}"
    );
    assert!(stdout.contains("SUCCESS"), "{stdout}");

    // What obol ships (`obol metrics rules`, and RULES_YAML in `obol manifests`) is this file,
    // byte for byte.
    let out = Command::new(env!("CARGO_BIN_EXE_obol"))
        .args(["metrics", "rules"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, std::fs::read(&rules).unwrap());
    assert_eq!(obol::earnings::RULES_YAML.as_bytes(), out.stdout.as_slice());
}

#[test]
fn promtool_test_rules_fails_when_an_expectation_is_wrong() {
    // The suite can fail: a wrong expected value in a copy makes promtool exit non-zero.
    let promtool = prom_tool("promtool");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yaml"), obol::earnings::RULES_YAML).unwrap();
    let tests = std::fs::read_to_string(repo().join("src/earnings/rules_test.yaml")).unwrap();
    assert_eq!(tests.matches("value: 13\n").count(), 1);
    std::fs::write(
        dir.path().join("rules_test.yaml"),
        tests.replace("value: 13\n", "value: 14\n"),
    )
    .unwrap();
    let out = Command::new(&promtool)
        .arg("test")
        .arg("rules")
        .arg(dir.path().join("rules_test.yaml"))
        .output()
        .unwrap();
    let (stdout, stderr) = output_text(&out);
    assert!(!out.status.success(), "{stdout}{stderr}");
    assert!(
        stderr.contains(r#"x402:revenue:7d_by_offer", time: 6m"#),
        "{stdout}{stderr}"
    );
}

// ---------------------------------------------------------------------------------------------
// a real Prometheus

/// `prometheus` on a free port with its own config and TSDB in a temp dir. Killed on drop.
struct PrometheusServer {
    guard: ChildGuard,
    url: String,
    _dir: tempfile::TempDir,
}

impl PrometheusServer {
    /// Scrapes `targets` (host:port, path /metrics) every second; loads `rules` when given.
    fn start(rules: Option<&str>, targets: &[String]) -> PrometheusServer {
        let bin = prom_tool("prometheus");
        let dir = tempfile::tempdir().unwrap();
        let mut config =
            String::from("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n");
        if let Some(rules) = rules {
            let path = dir.path().join("rules.yaml");
            std::fs::write(&path, rules).unwrap();
            config.push_str(&format!("rule_files: [\"{}\"]\n", path.display()));
        }
        if !targets.is_empty() {
            let list: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
            config.push_str(&format!(
                "scrape_configs:\n  - job_name: obol-verifier\n    static_configs:\n      - targets: [{}]\n",
                list.join(", ")
            ));
        }
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        let data = dir.path().join("data");
        let (guard, port) = ChildGuard::spawn_on_free_port(
            "prometheus",
            READY_TIMEOUT,
            |port| {
                let mut cmd = Command::new(&bin);
                cmd.arg(format!("--config.file={}", config_path.display()))
                    .arg(format!("--storage.tsdb.path={}", data.display()))
                    .arg(format!("--web.listen-address=127.0.0.1:{port}"));
                cmd
            },
            |port| http_probe(&format!("http://127.0.0.1:{port}/-/ready")),
        );
        PrometheusServer {
            guard,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }

    /// `GET /api/v1/query` (the test's own view, independent of obol).
    fn query(&self, promql: &str) -> Vec<Value> {
        let url = format!("{}/api/v1/query", self.url);
        let body: Value = off_runtime(|| {
            reqwest::blocking::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap()
                .get(&url)
                .query(&[("query", promql)])
                .send()
                .unwrap()
                .json()
                .unwrap()
        });
        assert_eq!(body["status"], "success", "{body}");
        body["data"]["result"].as_array().unwrap().clone()
    }
}

/// The rules file with the recording group evaluated every second instead of every 30s: the
/// same source text, one line changed.
fn rules_every_second() -> String {
    let rules = obol::earnings::RULES_YAML;
    assert_eq!(rules.matches("    interval: 30s\n").count(), 1);
    rules.replace("    interval: 30s\n", "    interval: 1s\n")
}

// ---------------------------------------------------------------------------------------------
// obol, the verifier and an upstream

/// A private config home with the rail's networks file and an offers file whose global chain
/// is the rail's chain (`local`).
struct Home {
    dir: tempfile::TempDir,
    networks: PathBuf,
}

impl Home {
    fn new(rail: &Rail) -> Home {
        let dir = tempfile::tempdir().unwrap();
        let networks = rail.write_networks_file(dir.path());
        let offers = dir.path().join("config/obol/pricing.yaml");
        std::fs::create_dir_all(offers.parent().unwrap()).unwrap();
        std::fs::write(&offers, "chain: local\nroutes: []\n").unwrap();
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
            .stdin(Stdio::null());
        cmd
    }

    fn output(&self, args: &[&str]) -> Output {
        self.obol().args(args).output().unwrap()
    }

    /// Runs `obol ARGS`; panics unless it succeeds. Returns stdout.
    fn run(&self, args: &[&str]) -> String {
        let out = self.output(args);
        let (stdout, stderr) = output_text(&out);
        assert!(
            out.status.success(),
            "obol {args:?} failed ({}):\n{stdout}{stderr}",
            out.status
        );
        stdout
    }

    /// Runs `obol ARGS`, expecting exit code 1. Returns stderr.
    fn fail(&self, args: &[&str]) -> String {
        let out = self.output(args);
        let (stdout, stderr) = output_text(&out);
        assert_eq!(
            out.status.code(),
            Some(1),
            "obol {args:?}: expected exit 1:\n{stdout}{stderr}"
        );
        assert!(stdout.is_empty(), "{stdout}");
        stderr
    }

    /// `obol buy pay URL` signed by the rail's funded payer.
    fn pay(&self, url: &str) -> String {
        let out = self
            .obol()
            .env("OBOL_PRIVATE_KEY", PAYER_KEY)
            .args(["buy", "pay", url])
            .output()
            .unwrap();
        let (stdout, stderr) = output_text(&out);
        assert!(
            out.status.success(),
            "obol buy pay {url}:\n{stdout}{stderr}"
        );
        stdout
    }

    /// `obol serve verifier --mode proxy` on a free port, ready once `/readyz` answers.
    fn verifier(&self, facilitator: &str) -> (ChildGuard, u16) {
        ChildGuard::spawn_on_free_port(
            "obol-verifier",
            READY_TIMEOUT,
            |port| {
                let mut cmd = self.obol();
                cmd.args(["serve", "verifier", "--listen"])
                    .arg(format!("127.0.0.1:{port}"))
                    .args(["--mode", "proxy", "--facilitator", facilitator])
                    .args(["--reload-interval", "100ms"]);
                cmd
            },
            |port| http_probe(&format!("http://127.0.0.1:{port}/readyz")),
        )
    }

    /// `obol metrics earnings ARGS -o json`, parsed.
    fn earnings_json(&self, args: &[&str]) -> Value {
        self.try_earnings_json(args)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// `obol metrics earnings ARGS -o json`, parsed, or its error output.
    fn try_earnings_json(&self, args: &[&str]) -> Result<Value, String> {
        let mut all = vec!["metrics", "earnings"];
        all.extend(args);
        all.extend(["-o", "json"]);
        let out = self.output(&all);
        let (stdout, stderr) = output_text(&out);
        if !out.status.success() {
            return Err(format!("obol {all:?} failed ({}):\n{stderr}", out.status));
        }
        serde_json::from_str(&stdout).map_err(|e| format!("{e}: {stdout}"))
    }
}

/// An upstream that answers every request with 200 "paid content" (std only, one thread).
fn upstream() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1024];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 12\r\nconnection: close\r\n\r\npaid content",
            );
        }
    });
    format!("http://{addr}")
}

/// A stand-in for the Kubernetes API server's service proxy, the one endpoint `--kube` uses:
/// `GET /api/v1/namespaces/{ns}/services/{svc}/proxy/{path}` with a bearer token, forwarded to
/// `prometheus` for `monitoring/prometheus-operated:9090`; any other service is a 404 with a
/// Kubernetes `Status` body, a wrong token a 401. Runs on its own thread until the process ends.
fn service_proxy_stub(prometheus: &str) -> String {
    use axum::extract::{Path as UrlPath, RawQuery};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    let prometheus = prometheus.to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let status = |code: StatusCode, reason: &str, message: String| {
                let body = serde_json::json!({
                    "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": message, "reason": reason, "code": code.as_u16(),
                });
                (
                    code,
                    [("content-type", "application/json")],
                    body.to_string(),
                )
                    .into_response()
            };
            let app = axum::Router::new().route(
                "/api/v1/namespaces/{ns}/services/{svc}/proxy/{*rest}",
                axum::routing::get(
                    move |UrlPath((ns, svc, rest)): UrlPath<(String, String, String)>,
                          RawQuery(query): RawQuery,
                          headers: HeaderMap| {
                        let prometheus = prometheus.clone();
                        async move {
                            if headers.get("authorization").and_then(|v| v.to_str().ok())
                                != Some("Bearer test-token")
                            {
                                return status(
                                    StatusCode::UNAUTHORIZED,
                                    "Unauthorized",
                                    "Unauthorized".into(),
                                );
                            }
                            if (ns.as_str(), svc.as_str())
                                != ("monitoring", "prometheus-operated:9090")
                            {
                                let name = svc.split(':').next().unwrap_or_default().to_string();
                                return status(
                                    StatusCode::NOT_FOUND,
                                    "NotFound",
                                    format!("services \"{name}\" not found"),
                                );
                            }
                            let url = match query {
                                Some(q) => format!("{prometheus}/{rest}?{q}"),
                                None => format!("{prometheus}/{rest}"),
                            };
                            let resp = reqwest::Client::new().get(url).send().await.unwrap();
                            let code = StatusCode::from_u16(resp.status().as_u16()).unwrap();
                            (code, resp.text().await.unwrap()).into_response()
                        }
                    },
                ),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    format!("http://{}", rx.recv().unwrap())
}

/// A kubeconfig with context `test` (the stub, token `test-token`, current) and context
/// `elsewhere` (a server that does not answer).
fn write_kubeconfig(dir: &std::path::Path, server: &str) -> PathBuf {
    let path = dir.join("kubeconfig");
    let dead = format!("http://127.0.0.1:{}", free_port());
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1
kind: Config
clusters:
  - name: stub
    cluster: {{server: \"{server}\"}}
  - name: dead
    cluster: {{server: \"{dead}\"}}
users:
  - name: stub
    user: {{token: test-token}}
contexts:
  - name: test
    context: {{cluster: stub, user: stub}}
  - name: elsewhere
    context: {{cluster: dead, user: stub}}
current-context: test
"
        ),
    )
    .unwrap();
    path
}

/// The row of `offer` in a JSON report.
fn row<'a>(report: &'a Value, offer: &str) -> &'a Value {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["offer_name"] == offer)
        .unwrap_or_else(|| panic!("no row for {offer}: {report:#}"))
}

/// Offer, charged requests, revenue, chain, chain name: what must agree between sources.
fn money_view(report: &Value) -> Vec<(String, Value, Value, Value, Value, Value)> {
    let rows = |key: &str| -> Vec<(String, Value, Value, Value, Value, Value)> {
        report[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    format!(
                        "{}/{}",
                        r["offer_namespace"].as_str().unwrap_or("-"),
                        r["offer_name"].as_str().unwrap_or("TOTAL")
                    ),
                    r["requests_charged"].clone(),
                    r["revenue"].clone(),
                    r["revenue_atomic"].clone(),
                    r["chain"].clone(),
                    r["chain_name"].clone(),
                )
            })
            .collect()
    };
    let mut v = rows("rows");
    v.extend(rows("totals"));
    v
}

fn redacted_snapshot(name: &str, text: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"127\.0\.0\.1:\d+", "127.0.0.1:[port]");
    // LAST PAYMENT is 12 wide (its header); keep the cell's width.
    settings.add_filter(r"(just now|\d+[smhd] ago) +│", "[age]        │");
    settings.bind(|| insta::assert_snapshot!(name, text));
}

#[test]
fn earnings_from_a_real_prometheus_scraping_a_paid_verifier() {
    let started = Instant::now();
    let mut lap = Instant::now();
    let mut timings: Vec<(&str, Duration)> = Vec::new();
    let mut mark = |what: &'static str, lap: &mut Instant| {
        timings.push((what, lap.elapsed()));
        *lap = Instant::now();
    };

    let rail = Rail::start();
    let home = Home::new(&rail);
    let up = upstream();
    let seller = SELLER_ADDRESS.to_string();
    // One offer on an explicit chain, one inheriting the offers file's global chain.
    home.run(&[
        "sell",
        "create",
        "demo",
        "--upstream",
        &up,
        "--price",
        "0.01",
        "--chain",
        "local",
        "--pay-to",
        &seller,
    ]);
    home.run(&[
        "sell",
        "create",
        "inherit",
        "--upstream",
        &up,
        "--price",
        "0.02",
        "--pay-to",
        &seller,
    ]);
    let offers = std::fs::read_to_string(home.dir.path().join("config/obol/pricing.yaml")).unwrap();
    assert_eq!(offers.matches("network:").count(), 1, "{offers}");
    let (mut verifier, port) = home.verifier(&rail.facilitator.url());
    let base = format!("http://127.0.0.1:{port}");
    mark("rail + offers + verifier", &mut lap);

    let prom = PrometheusServer::start(Some(&rules_every_second()), &[format!("127.0.0.1:{port}")]);
    // The first scrape comes ~5 s after start: wait for it, then pay.
    wait_until(Duration::from_secs(30), || {
        match prom.query("up == 1").len() {
            1 => Ok(()),
            _ => Err("the verifier was not scraped yet".into()),
        }
    })
    .unwrap_or_else(|e| panic!("{e}\nprometheus log:\n{}", prom.guard.log_tail(30)));
    // Prometheus must have seen both offers' money counters at 0 before the first charge:
    // growth is only seen between samples (rules_test.yaml, "counters must be exported at
    // zero"), so a series that appears with the charge hides it from the revenue.
    let at_zero = |metric: &str| {
        prom.query(&format!("{metric} == 0"))
            .iter()
            .map(|s| s["metric"]["offer_name"].as_str().unwrap_or("").to_string())
            .collect::<std::collections::BTreeSet<_>>()
    };
    for metric in [
        "obol_x402_verifier_charged_requests_total",
        "obol_x402_verifier_charged_amount_total",
    ] {
        assert_eq!(
            at_zero(metric),
            ["demo".to_string(), "inherit".to_string()].into(),
            "the verifier does not export {metric} at 0 for its loaded offers, so Prometheus \
             cannot count their first charges (docs/metrics.md); its /metrics:\n{}",
            off_runtime(|| reqwest::blocking::get(format!("{base}/metrics"))
                .and_then(|r| r.text())
                .unwrap_or_default())
        );
    }
    mark("prometheus ready + first scrape", &mut lap);

    // Real payments: obol buy pay probes (402), signs, pays; the verifier settles on anvil.
    for _ in 0..3 {
        let body = home.pay(&format!("{base}/services/demo/hello"));
        assert_eq!(body.trim(), "paid content");
    }
    for _ in 0..2 {
        home.pay(&format!("{base}/services/inherit/hello"));
    }
    assert_eq!(
        rail.token.balance_of(SELLER_ADDRESS),
        alloy_primitives::U256::from(70_000u64),
        "{}",
        verifier.log_tail(20)
    );
    mark("5 paid requests", &mut lap);

    // Prometheus needs a scrape and a rule evaluation to see the last payment.
    let prom_args = ["--prometheus", prom.url.as_str()];
    let mut last = Value::Null;
    let settled = wait_until(Duration::from_secs(30), || {
        last = home.try_earnings_json(&prom_args)?;
        let ok = |offer: &str, n: u64, usdc: &str| {
            let r = row(&last, offer);
            r["requests_charged"] == n
                && r["revenue"] == usdc
                && r["settlement_rate"]
                    .as_f64()
                    .is_some_and(|s| (s - 0.5).abs() < 1e-9)
                && r["last_payment_age_seconds"].is_number()
        };
        if ok("demo", 3, "0.03") && ok("inherit", 2, "0.04") {
            Ok(())
        } else {
            Err(format!("{last:#}"))
        }
    });
    settled.unwrap_or_else(|e| panic!("{e}\nprometheus log:\n{}", prom.guard.log_tail(20)));
    mark("prometheus shows the payments", &mut lap);
    // What Prometheus itself says (extrapolated by increase(), usually not whole numbers).
    for rule in [
        "x402:revenue:24h_by_offer_chain",
        "x402:revenue_amount:24h_by_offer_chain",
    ] {
        for s in prom.query(rule) {
            eprintln!(
                "{rule}{{offer_name={}}} = {}",
                s["metric"]["offer_name"], s["value"][1]
            );
        }
    }

    // JSON: both offers on the rail's chain (the inherited one included), exact USDC.
    let report = &last;
    assert_eq!(report["source"], "prometheus");
    assert_eq!(report["target"], prom.url.as_str());
    assert_eq!(report["window"], "24h");
    assert_eq!(report["by"], "offer");
    assert_eq!(report["settlement_window"], "1h");
    for (offer, n, usdc, atomic) in [
        ("demo", 3, "0.03", "30000"),
        ("inherit", 2, "0.04", "40000"),
    ] {
        let r = row(report, offer);
        assert_eq!(r["offer_namespace"], "local");
        assert_eq!(r["chain"], CAIP2, "{offer}");
        assert_eq!(r["chain_name"], "local", "{offer}");
        assert_eq!(r["asset"], "USDC");
        assert_eq!(r["decimals"], 6);
        assert_eq!(r["requests_charged"], n);
        assert_eq!(r["revenue"], usdc);
        assert_eq!(r["revenue_atomic"], atomic);
        assert_eq!(r["approximate"], false);
        let age = r["last_payment_age_seconds"].as_f64().unwrap();
        assert!((0.0..120.0).contains(&age), "{offer}: {age}");
    }
    let totals = report["totals"].as_array().unwrap();
    assert_eq!(totals.len(), 1, "{report:#}");
    assert_eq!(totals[0]["chain"], CAIP2);
    assert_eq!(totals[0]["requests_charged"], 5);
    assert_eq!(totals[0]["revenue"], "0.07");
    assert_eq!(totals[0]["revenue_atomic"], "70000");
    assert_eq!(totals[0]["settlement_rate"], Value::Null);

    // The 7d window holds the same payments.
    let week = home.earnings_json(&["--prometheus", &prom.url, "--window", "7d"]);
    assert_eq!(week["window"], "7d");
    assert_eq!(money_view(&week), money_view(report));

    // The table, as a user sees it.
    let table = home.run(&["metrics", "earnings", "--prometheus", &prom.url]);
    redacted_snapshot("earnings_table_prometheus", &table);
    let by_chain = home.run(&[
        "metrics",
        "earnings",
        "--prometheus",
        &prom.url,
        "--by",
        "chain",
    ]);
    redacted_snapshot("earnings_table_prometheus_by_chain", &by_chain);

    // One offer.
    let one = home.earnings_json(&["--prometheus", &prom.url, "--offer", "local/inherit"]);
    assert_eq!(one["rows"].as_array().unwrap().len(), 1);
    assert_eq!(row(&one, "inherit")["revenue"], "0.04");
    assert_eq!(one["totals"][0]["revenue"], "0.04");

    // --scrape reads the verifier directly: the same totals for the same traffic.
    let scraped = home.earnings_json(&["--scrape", &format!("{base}/metrics")]);
    assert_eq!(scraped["source"], "scrape");
    assert_eq!(scraped["window"], "lifetime");
    assert_eq!(money_view(&scraped), money_view(report));
    assert_eq!(row(&scraped, "demo")["settlement_rate"], 0.5);
    let table = home.run(&["metrics", "earnings", "--scrape", &base]);
    redacted_snapshot("earnings_table_scrape", &table);
    mark("reports, snapshots, scrape", &mut lap);

    // --kube: the same Prometheus through the API server's service proxy, with only a
    // kubeconfig (here a stand-in for the service proxy endpoint).
    let api = service_proxy_stub(&prom.url);
    let kubeconfig = write_kubeconfig(home.dir.path(), &api);
    let kubeconfig = kubeconfig.to_str().unwrap();
    let via_kube = home.earnings_json(&["--kube", "--kubeconfig", kubeconfig]);
    assert_eq!(money_view(&via_kube), money_view(report));
    assert_eq!(
        via_kube["target"],
        format!("service monitoring/prometheus-operated:9090 (through the Kubernetes API {api})")
    );
    // KUBECONFIG and --context work too.
    let out = home
        .obol()
        .env("KUBECONFIG", kubeconfig)
        .args([
            "metrics",
            "earnings",
            "--kube",
            "--context",
            "test",
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", output_text(&out).1);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(money_view(&v), money_view(report));
    // A service that is not there: what the API server said, and what to change.
    let err = home.fail(&[
        "metrics",
        "earnings",
        "--kube",
        "--kubeconfig",
        kubeconfig,
        "--kube-service",
        "nope:9090",
    ]);
    assert!(
        err.starts_with(&format!(
            "error: Prometheus at service monitoring/nope:9090 (through the Kubernetes API {api}) answered HTTP 404: services \"nope\" not found"
        )),
        "{err}"
    );
    assert!(err.contains("--kube-namespace and --kube-service"), "{err}");
    // A cluster that does not answer.
    let err = home.fail(&[
        "metrics",
        "earnings",
        "--kube",
        "--kubeconfig",
        kubeconfig,
        "--context",
        "elsewhere",
    ]);
    // (kube's own client logs the failure too; obol's message is the `error:` line.)
    assert!(
        err.lines().any(|l| l.starts_with(
            "error: cannot reach Prometheus at service monitoring/prometheus-operated:9090"
        ) && l.contains("Connection refused")),
        "{err}"
    );
    assert!(
        err.contains("hint: check that the cluster answers"),
        "{err}"
    );
    // A context that does not exist.
    let err = home.fail(&[
        "metrics",
        "earnings",
        "--kube",
        "--kubeconfig",
        kubeconfig,
        "--context",
        "nope",
    ]);
    assert!(
        err.starts_with("error: cannot set up the Kubernetes client"),
        "{err}"
    );
    mark("--kube through the service proxy", &mut lap);

    // Prometheus unreachable.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let err = home.fail(&["metrics", "earnings", "--prometheus", &dead]);
    assert!(
        err.starts_with(&format!(
            "error: cannot reach Prometheus at {dead}: connection failed"
        )),
        "{err}"
    );
    assert!(
        err.contains("hint: check the URL and that Prometheus runs"),
        "{err}"
    );

    // A Prometheus scraping the same verifier without obol's rules: they are missing.
    let bare = PrometheusServer::start(None, &[format!("127.0.0.1:{port}")]);
    let err = home.fail(&["metrics", "earnings", "--prometheus", &bare.url]);
    assert!(
        err.starts_with(&format!(
            "error: Prometheus at {} does not have the x402 recording rules (x402:revenue:24h_by_offer_chain, x402:revenue_amount:24h_by_offer_chain, x402:settlement_rate:1h_by_offer_chain, x402:last_payment_age_seconds:by_offer_chain missing)",
            bare.url
        )),
        "{err}"
    );
    assert!(
        err.contains("`obol metrics rules > x402-rules.yaml`"),
        "{err}"
    );
    assert!(err.contains("rule_files"), "{err}");

    // A Prometheus with the rules that scrapes nothing: an empty result.
    let idle = PrometheusServer::start(Some(&rules_every_second()), &[]);
    let err = home.fail(&["metrics", "earnings", "--prometheus", &idle.url]);
    assert!(
        err.starts_with(&format!(
            "error: Prometheus at {} has no x402 earnings data for the last 24h",
            idle.url
        )),
        "{err}"
    );
    assert!(
        err.contains("hint: check that Prometheus scrapes the verifier"),
        "{err}"
    );

    // An offer that does not exist: empty for that offer.
    let err = home.fail(&[
        "metrics",
        "earnings",
        "--prometheus",
        &prom.url,
        "--offer",
        "local/nope",
    ]);
    assert!(
        err.contains("has no x402 earnings data for offer local/nope for the last 24h"),
        "{err}"
    );
    let err = home.fail(&[
        "metrics",
        "earnings",
        "--scrape",
        &base,
        "--offer",
        "local/nope",
    ]);
    assert!(err.contains("has no series for offer local/nope"), "{err}");
    mark("error cases", &mut lap);

    assert!(verifier.is_running());
    eprintln!("timings (total {:.1?}):", started.elapsed());
    for (what, d) in timings {
        eprintln!("  {what}: {d:.1?}");
    }
}

#[test]
fn scrape_of_something_that_is_not_a_verifier() {
    // Prometheus's own /metrics is an exposition without obol series.
    let prom = PrometheusServer::start(None, &[]);
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_obol"))
        .env("XDG_CONFIG_HOME", dir.path())
        .env_remove("OBOL_NETWORKS")
        .env_remove("OBOL_PROMETHEUS_URL")
        .args(["metrics", "earnings", "--scrape", &prom.url])
        .output()
        .unwrap();
    let (stdout, stderr) = output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "error: {}/metrics has no obol_x402_verifier_* series",
            prom.url
        )),
        "{stderr}"
    );
    // And the API of a Prometheus is not a verifier's exposition.
    let out = Command::new(env!("CARGO_BIN_EXE_obol"))
        .env("XDG_CONFIG_HOME", dir.path())
        .env_remove("OBOL_NETWORKS")
        .env_remove("OBOL_PROMETHEUS_URL")
        .args([
            "metrics",
            "earnings",
            "--scrape",
            &format!("{}/api/v1/status/buildinfo", prom.url),
        ])
        .output()
        .unwrap();
    let (_, stderr) = output_text(&out);
    assert!(
        stderr.contains("is not a Prometheus exposition: line 1"),
        "{stderr}"
    );
}

#[test]
fn choosing_the_source() {
    // Prometheus's own /metrics stands in for "something that answers".
    let prom = PrometheusServer::start(None, &[]);
    let dir = tempfile::tempdir().unwrap();
    let dead = format!("http://127.0.0.1:{}", free_port());
    let obol = |env_prometheus: Option<&str>, args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_obol"));
        cmd.env("XDG_CONFIG_HOME", dir.path())
            .env("HOME", dir.path())
            .env_remove("OBOL_NETWORKS")
            .env_remove("OBOL_PROMETHEUS_URL")
            .args(["metrics", "earnings"])
            .args(args);
        if let Some(url) = env_prometheus {
            cmd.env("OBOL_PROMETHEUS_URL", url);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        output_text(&out).1
    };
    // --scrape on the command line wins over OBOL_PROMETHEUS_URL.
    let err = obol(Some(&dead), &["--scrape", &prom.url]);
    assert!(err.contains("has no obol_x402_verifier_* series"), "{err}");
    // OBOL_PROMETHEUS_URL is used when no flag names a source.
    let err = obol(Some(&dead), &[]);
    assert!(
        err.starts_with(&format!("error: cannot reach Prometheus at {dead}")),
        "{err}"
    );
    // Two sources on the command line are a mistake.
    let err = obol(None, &["--prometheus", &prom.url, "--scrape", &prom.url]);
    assert!(
        err.starts_with("error: --prometheus cannot be combined with --kube or --scrape"),
        "{err}"
    );
    // A window means Prometheus.
    let err = obol(None, &["--scrape", &prom.url, "--window", "7d"]);
    assert!(err.starts_with("error: --window needs Prometheus"), "{err}");
    // Bad --offer.
    let err = obol(None, &["--scrape", &prom.url, "--offer", "a/b/c"]);
    assert!(err.starts_with("error: invalid offer \"a/b/c\""), "{err}");
    // A Prometheus URL that is not one.
    let err = obol(None, &["--prometheus", "ftp://x"]);
    assert!(err.starts_with("error: invalid Prometheus URL"), "{err}");
    // A URL that is a web server but not Prometheus's API.
    let err = obol(
        None,
        &["--prometheus", &format!("{}/nothing-here", prom.url)],
    );
    assert!(err.contains("answered HTTP 404"), "{err}");
    assert!(
        err.contains("hint: is this the base URL of a Prometheus server?"),
        "{err}"
    );
}
