//! The command line as a user meets it: help, completions, wallets and errors that need no
//! payment rail.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const ANVIL1_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const ANVIL1_ADDR: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

/// `obol` with a private, empty home: no keyring (no D-Bus session), no files.
fn obol(home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_obol"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_STATE_HOME", home.join("state"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            format!("unix:path={}", home.join("no-bus").display()),
        )
        .stdin(Stdio::null());
    cmd
}

fn run(cmd: &mut Command) -> (Output, String, String) {
    let out = cmd.output().expect("run obol");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

fn run_with_stdin(cmd: &mut Command, input: &str) -> (Output, String, String) {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn obol");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

#[test]
fn help_lists_the_command_groups() {
    let home = tempfile::tempdir().unwrap();
    let (out, stdout, _) = run(obol(home.path()).arg("--help"));
    assert!(out.status.success());
    insta::assert_snapshot!("obol_help", stdout);
}

#[test]
fn buy_pay_help_teaches_the_policy() {
    let home = tempfile::tempdir().unwrap();
    let (out, stdout, _) = run(obol(home.path()).args(["buy", "pay", "--help"]));
    assert!(out.status.success());
    insta::assert_snapshot!("buy_pay_help", stdout);
}

#[test]
fn committed_completions_match_the_binary() {
    let home = tempfile::tempdir().unwrap();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("completions");
    for (shell, file) in [
        ("bash", "obol.bash"),
        ("zsh", "_obol"),
        ("fish", "obol.fish"),
    ] {
        let (out, stdout, _) = run(obol(home.path()).args(["completion", shell]));
        assert!(out.status.success());
        let committed = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        assert!(
            committed == stdout,
            "completions/{file} is out of date: run `cargo run -q -- completion {shell} > completions/{file}`"
        );
    }
}

#[test]
fn unknown_flags_are_usage_errors_not_panics() {
    let home = tempfile::tempdir().unwrap();
    let (out, _, stderr) = run(obol(home.path()).args(["buy", "pay", "--frobnicate"]));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--frobnicate"), "{stderr}");
    assert!(stderr.contains("--help"), "{stderr}");
}

#[test]
fn wallet_import_without_a_keyring_falls_back_loudly_to_a_private_file() {
    let home = tempfile::tempdir().unwrap();
    let (out, stdout, stderr) =
        run_with_stdin(obol(home.path()).args(["wallet", "import"]), ANVIL1_KEY);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout.trim(), ANVIL1_ADDR);
    assert!(stderr.contains("PLAIN TEXT"), "{stderr}");
    let key_file = home.path().join("data/obol/wallet.key");
    assert!(stderr.contains(&key_file.display().to_string()), "{stderr}");
    assert!(
        !stderr.contains(&ANVIL1_KEY[2..]),
        "the key leaked into stderr"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    // The stored key is the active wallet.
    let (out, stdout, stderr) = run(obol(home.path()).args(["wallet", "address", "-o", "json"]));
    assert!(out.status.success(), "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["address"], ANVIL1_ADDR);
    assert!(json["source"].as_str().unwrap().contains("wallet.key"));
}

#[test]
fn a_hanging_keyring_is_given_up_on_within_the_time_limit() {
    // A D-Bus socket that accepts connections and never answers: the Secret Service client
    // would wait forever; obol must give up and use the file.
    let home = tempfile::tempdir().unwrap();
    let socket = home.path().join("hanging-bus");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let _accepting = std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            held.push(conn);
        }
    });
    let started = Instant::now();
    let (out, stdout, stderr) = run_with_stdin(
        obol(home.path())
            .env(
                "DBUS_SESSION_BUS_ADDRESS",
                format!("unix:path={}", socket.display()),
            )
            .env("OBOL_KEYRING_TIMEOUT_MS", "500")
            .args(["wallet", "import"]),
        ANVIL1_KEY,
    );
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout.trim(), ANVIL1_ADDR);
    assert!(stderr.contains("did not answer within 500 ms"), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn wallet_sources_follow_the_documented_order() {
    let home = tempfile::tempdir().unwrap();
    // Nothing configured: a clear error with the way out.
    let (out, _, stderr) = run(obol(home.path()).args(["wallet", "address"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("no wallet is configured"), "{stderr}");
    assert!(stderr.contains("obol wallet import"), "{stderr}");

    // Env beats the (empty) store.
    let (out, stdout, _) = run(obol(home.path())
        .env("OBOL_PRIVATE_KEY", ANVIL1_KEY)
        .args(["wallet", "address"]));
    assert!(out.status.success());
    assert_eq!(stdout.trim(), ANVIL1_ADDR);

    // A key file beats env; a world-readable key file is refused.
    let key_file = home.path().join("k.hex");
    std::fs::write(
        &key_file,
        "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80\n",
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (out, _, stderr) = run(obol(home.path())
            .env("OBOL_PRIVATE_KEY", ANVIL1_KEY)
            .args(["wallet", "address", "--private-key-file"])
            .arg(&key_file));
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr.contains("chmod 600"), "{stderr}");
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let (out, stdout, _) = run(obol(home.path())
        .env("OBOL_PRIVATE_KEY", ANVIL1_KEY)
        .args(["wallet", "address", "--private-key-file"])
        .arg(&key_file));
    assert!(out.status.success());
    assert_eq!(stdout.trim(), "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
}

#[test]
fn a_malformed_key_is_refused_without_echoing_it() {
    let home = tempfile::tempdir().unwrap();
    let secretish = "0xdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbee";
    let (out, _, stderr) = run(obol(home.path())
        .env("OBOL_PRIVATE_KEY", secretish)
        .args(["wallet", "address"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("OBOL_PRIVATE_KEY does not hold a valid private key"),
        "{stderr}"
    );
    assert!(!stderr.contains("deadbeef"), "{stderr}");
}

#[test]
fn paying_an_unreachable_seller_fails_cleanly_and_records_nothing() {
    let home = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (out, stdout, stderr) = run(obol(home.path()).env("OBOL_PRIVATE_KEY", ANVIL1_KEY).args([
        "buy",
        "pay",
        &format!("http://127.0.0.1:{port}/paid"),
    ]));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stdout.is_empty());
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        lines[0].starts_with("error: cannot reach the seller"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was signed"), "{stderr}");
    assert!(!home.path().join("state/obol/payments.jsonl").exists());
}

#[test]
fn bad_urls_headers_and_caps_are_refused_before_any_request() {
    let home = tempfile::tempdir().unwrap();
    for (args, want) in [
        (vec!["buy", "pay", "not a url"], "full URL"),
        (vec!["buy", "pay", "ftp://x/y"], "unsupported URL scheme"),
        (
            vec!["buy", "pay", "http://127.0.0.1:9/x", "-H", "NoColon"],
            "has no ':'",
        ),
    ] {
        let (out, _, stderr) = run(obol(home.path()).args(&args));
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
    }
}

/// `sell create --route` on the offers file: the routes are written under the offer, shown
/// by `sell list` (a count in the table, the routes in JSON), kept by an update without
/// `--route` and removed by `--no-routes`; bad routes are refused with an example and write
/// nothing.
#[test]
fn sell_create_with_routes_writes_them_and_lists_them() {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("pricing.yaml");
    let create = |extra: &[&str]| {
        let mut cmd = obol(home.path());
        cmd.args([
            "sell",
            "create",
            "api",
            "--upstream",
            "http://127.0.0.1:9000",
            "--price",
            "0.01",
            "--pay-to",
            ANVIL1_ADDR,
            "--offers-file",
        ])
        .arg(&file)
        .args(extra);
        run(&mut cmd)
    };

    // Refused, nothing written.
    for (route, needle) in [
        (
            "path=/a,gate=auth",
            "gate auth is not supported yet by obol; use paid or free",
        ),
        ("path=/a,colour=red", "unknown key \"colour\""),
        ("path=/a//b", "empty segment"),
        ("path=/%2e%2e/x", "'%'"),
        ("path=/a,price=0", "must be greater than 0"),
        ("path=/a,price=-1", "price"),
        ("path=/a,price=1e-30", "price"),
        ("path=/a,methods=GET|TRACE", "TRACE"),
    ] {
        let (out, _, err) = create(&["--route", route]);
        assert_eq!(out.status.code(), Some(1), "{route}: {err}");
        assert!(err.contains(needle), "{route}: {err}");
        assert!(err.contains("hint:"), "{err}");
        assert!(!file.exists(), "{route}: nothing written");
    }
    let (out, _, err) = create(&["--route", "path=/a", "--route", "path=/a,gate=free"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("declared twice") && err.contains("--route \"path="),
        "{err}"
    );

    let (out, stdout, err) = create(&[
        "--route",
        "path=/submit,methods=POST|GET,price=0.5,summary=Submit a job",
        "--route",
        "path=/jobs/*,gate=free",
    ]);
    assert!(out.status.success(), "{err}");
    assert!(
        stdout.contains("route /services/api/submit [POST|GET]: 0.5 USDC"),
        "{stdout}"
    );
    assert!(
        stdout.contains("route /services/api/jobs/*: free"),
        "{stdout}"
    );
    assert!(
        stdout.contains("every other path under /services/api/ is refused (404)"),
        "{stdout}"
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let yaml: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
    assert_eq!(
        yaml["routes"][0]["routes"],
        serde_json::json!([
            {"path": "/submit", "methods": ["POST", "GET"], "price": "0.5", "summary": "Submit a job"},
            {"path": "/jobs/*", "gate": "free"},
        ]),
        "{text}"
    );

    let list = |extra: &[&str]| {
        let mut cmd = obol(home.path());
        cmd.args(["sell", "list", "--offers-file"])
            .arg(&file)
            .args(extra);
        let (out, stdout, err) = run(&mut cmd);
        assert!(out.status.success(), "{err}");
        stdout
    };
    let table = list(&[]);
    assert!(table.contains("ROUTES"), "{table}");
    let row = table.lines().find(|l| l.contains("api")).unwrap();
    assert!(row.contains("┆ 2 "), "{row}");
    let json: serde_json::Value = serde_json::from_str(&list(&["-o", "json"])).unwrap();
    assert_eq!(
        json[0]["routes"],
        serde_json::json!([
            {"path": "/submit", "methods": ["POST", "GET"], "gate": "paid", "price": "0.5", "summary": "Submit a job"},
            {"path": "/jobs/*", "methods": [], "gate": "free", "price": null, "summary": null},
        ])
    );

    // An update without --route keeps them; --no-routes removes them.
    let (out, _, err) = create(&[]);
    assert!(out.status.success(), "{err}");
    let json: serde_json::Value = serde_json::from_str(&list(&["-o", "json"])).unwrap();
    assert_eq!(json[0]["routes"].as_array().unwrap().len(), 2);
    let (out, _, err) = create(&["--no-routes"]);
    assert!(out.status.success(), "{err}");
    let json: serde_json::Value = serde_json::from_str(&list(&["-o", "json"])).unwrap();
    assert_eq!(json[0]["routes"], serde_json::json!([]));
    assert!(!std::fs::read_to_string(&file).unwrap().contains("jobs"));
}
