//! `obol auth` end to end, against a real OpenID Connect provider (npm `oidc-provider`, its
//! login and consent forms driven over HTTP) and the fake Kubernetes API server.
//!
//! obol runs as a child process with a private XDG home and no usable keyring (a D-Bus address
//! that does not exist), so its refresh token lands in the 0600 fallback file, where the tests
//! can read it to check rotation and revocation. Every line obol prints is kept and searched for
//! the tokens, codes and client secret seen during the test: none may appear. obol logs at
//! `debug` here; `OBOL_TEST_RUST_LOG=trace` searches the trace-level output too.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use obol::auth::idtoken::{self, Claims, Expectations, Jwks};
use serde_json::Value;
use support::fake_kube::FakeKube;
use support::{OidcOptions, OidcProvider};

const CLIENT_SECRET: &str = "obol-test-client-secret-6f1c2a";
const HASH_ANNOTATION: &str = "obol.org/oauth-token-hash";

const ERPC: &str = "
apiVersion: v1
kind: Namespace
metadata: {name: erpc}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: erpc
  namespace: erpc
spec:
  replicas: 1
  selector: {matchLabels: {app: erpc}}
  template:
    metadata: {labels: {app: erpc}}
    spec:
      containers: [{name: erpc, image: ghcr.io/erpc/erpc:0.0.56}]
";

/// One test's world: a fake cluster with an eRPC Deployment, an issuer, a private home, and the
/// transcript of everything obol printed.
struct World {
    home: tempfile::TempDir,
    kube: FakeKube,
    idp: OidcProvider,
    transcript: Vec<String>,
    runs: usize,
}

impl World {
    fn new(opts: OidcOptions, erpc_yaml: &str) -> World {
        let kube = FakeKube::start();
        kube.apply(erpc_yaml);
        World {
            home: tempfile::tempdir().unwrap(),
            kube,
            idp: OidcProvider::start(opts),
            transcript: Vec::new(),
            runs: 0,
        }
    }

    fn home(&self) -> &Path {
        self.home.path()
    }

    /// `obol` with the private home, no keyring, debug logging, nothing inherited.
    fn obol(&self) -> Command {
        let home = self.home();
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
            .env("OBOL_KEYRING_TIMEOUT_MS", "500")
            .env(
                "RUST_LOG",
                std::env::var("OBOL_TEST_RUST_LOG").unwrap_or("debug".into()),
            )
            .stdin(Stdio::null());
        if let Some(secret) = &self.idp.options().client_secret {
            cmd.env("OBOL_OAUTH_CLIENT_SECRET", secret);
        }
        cmd
    }

    /// `obol auth login` for this world's issuer and cluster, without a browser.
    fn login_cmd(&self) -> Command {
        let mut cmd = self.obol();
        cmd.args(["auth", "login", "--no-browser", "--issuer"])
            .arg(self.idp.issuer())
            .args(["--client-id", "obol-cli", "--kubeconfig"])
            .arg(self.kube.kubeconfig_path());
        cmd
    }

    /// Runs `cmd` to completion; records its output.
    fn run(&mut self, mut cmd: Command) -> (ExitStatus, String, String) {
        let out = cmd.output().expect("run obol");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        self.transcript.push(stdout.clone());
        self.transcript.push(stderr.clone());
        (out.status, stdout, stderr)
    }

    fn auth(&mut self, args: &[&str]) -> (ExitStatus, String, String) {
        let mut cmd = self.obol();
        cmd.arg("auth").args(args);
        self.run(cmd)
    }

    /// Starts `cmd` in the background with stdin piped and output to files.
    fn spawn(&mut self, mut cmd: Command) -> Running {
        self.runs += 1;
        let out = self.home().join(format!("run-{}.out", self.runs));
        let err = self.home().join(format!("run-{}.err", self.runs));
        let child = cmd
            .stdin(Stdio::piped())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .expect("spawn obol");
        Running { child, out, err }
    }

    /// Waits for a background run to end; records its output.
    fn finish(&mut self, mut run: Running, timeout: Duration) -> (ExitStatus, String, String) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = run.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = run.child.kill();
                panic!(
                    "obol did not finish within {timeout:?}\nstdout: {}\nstderr: {}",
                    run.stdout(),
                    run.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let (o, e) = (run.stdout(), run.stderr());
        self.transcript.push(o.clone());
        self.transcript.push(e.clone());
        (status, o, e)
    }

    /// A whole login: start obol, sign in as `who` on the issuer's forms, hand the redirect to
    /// obol's callback server like a browser would, wait for obol.
    fn login(&mut self, who: &str) -> (ExitStatus, String, String) {
        let run = self.spawn(self.login_cmd());
        let url = run.auth_url();
        let redirect = self.idp.sign_in(&url, who);
        let (status, page) = http_get(&redirect);
        assert_eq!(status, 200, "callback page: {page}");
        assert!(page.contains("Signed in"), "{page}");
        self.finish(run, Duration::from_secs(60))
    }

    fn secret(&self, name: &str) -> Option<Value> {
        self.kube.object("", "secrets", Some("erpc"), name)
    }

    /// The ID token in Secret erpc/obol-oauth-token ("" when none).
    fn secret_token(&self) -> String {
        self.secret("obol-oauth-token")
            .and_then(|s| s["data"]["token"].as_str().map(str::to_owned))
            .map(|b| String::from_utf8(STANDARD.decode(b).unwrap()).unwrap())
            .unwrap_or_default()
    }

    fn deployment_hash(&self) -> Option<String> {
        self.kube
            .object("apps", "deployments", Some("erpc"), "erpc")
            .and_then(|d| {
                d["spec"]["template"]["metadata"]["annotations"][HASH_ANNOTATION]
                    .as_str()
                    .map(str::to_owned)
            })
    }

    fn deployment_patches(&self) -> usize {
        self.kube
            .requests()
            .iter()
            .filter(|r| r.method == "PATCH" && r.path.ends_with("/deployments/erpc"))
            .count()
    }

    /// The fallback store file (no keyring in these tests).
    fn store_file(&self) -> PathBuf {
        self.home().join("data/obol/oauth-refresh-token.json")
    }

    fn stored_refresh_token(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.store_file()).ok()?;
        let v: Value = serde_json::from_str(&text).unwrap();
        v["refresh_token"].as_str().map(str::to_owned)
    }

    /// Verifies `token` with obol's own checker against the issuer's JWKS.
    fn verify(&self, token: &str) -> Claims {
        let jwks: Jwks = serde_json::from_value(self.idp.jwks()).unwrap();
        idtoken::verify(
            token,
            &jwks,
            &Expectations {
                issuer: self.idp.issuer(),
                client_id: "obol-cli",
                nonce: None,
                now: obol::auth::now_unix(),
            },
        )
        .unwrap_or_else(|e| panic!("the Secret's token does not verify: {e}"))
    }

    /// No secret appears in anything obol printed.
    fn assert_no_secrets(&self, secrets: &[String]) {
        for s in secrets.iter().filter(|s| s.len() >= 8) {
            for (i, text) in self.transcript.iter().enumerate() {
                assert!(
                    !text.contains(s.as_str()),
                    "a secret ({}...) appears in obol output #{i}:\n{text}",
                    &s[..6]
                );
            }
        }
    }
}

struct Running {
    child: Child,
    out: PathBuf,
    err: PathBuf,
}

impl Running {
    fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// The authorization URL obol printed.
    fn auth_url(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let err = self.stderr();
            if let Some(line) = err
                .lines()
                .map(str::trim)
                .find(|l| l.starts_with("http") && l.contains("code_challenge="))
            {
                return line.to_owned();
            }
            if Instant::now() > deadline {
                panic!(
                    "obol printed no authorization URL:\n{err}\n{}",
                    self.stdout()
                );
            }
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    fn paste(&mut self, text: &str) {
        use std::io::Write;
        let stdin: &mut ChildStdin = self.child.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{text}").unwrap();
        stdin.flush().unwrap();
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_get(url: &str) -> (u16, String) {
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let resp = client.get(url).send().expect("GET");
    let status = resp.status().as_u16();
    (status, resp.text().unwrap_or_default())
}

fn query_param(url: &str, key: &str) -> String {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("{key} not in {url}"))
}

fn with_param(url: &str, key: &str, value: &str) -> String {
    let mut u = reqwest::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .map(|(k, v)| {
            if k == key {
                (k.into_owned(), value.to_owned())
            } else {
                (k.into_owned(), v.into_owned())
            }
        })
        .collect();
    u.query_pairs_mut().clear().extend_pairs(pairs);
    u.to_string()
}

fn confidential() -> OidcOptions {
    OidcOptions {
        client_secret: Some(CLIENT_SECRET.into()),
        ..Default::default()
    }
}

/// Login, status, refresh (twice, with rotation), logout (twice), and the issuer's view.
#[test]
fn login_status_refresh_logout() {
    let started = Instant::now();
    let mut w = World::new(confidential(), ERPC);
    let mut secrets = vec![CLIENT_SECRET.to_owned()];

    // --- login
    let (status, stdout, stderr) = w.login("alice");
    assert!(status.success(), "login failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("Signed in as alice@example.test (subject alice)"),
        "{stdout}"
    );
    // The plain-text fallback is announced, with the path and the reason.
    let file = w.store_file();
    assert!(
        stderr.contains(&format!(
            "the refresh token is stored in PLAIN TEXT in {}",
            file.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("keyring"), "{stderr}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    let token1 = w.secret_token();
    assert!(!token1.is_empty(), "no token in the Secret");
    let claims = w.verify(&token1);
    assert_eq!(claims.sub, "alice");
    assert_eq!(claims.email.as_deref(), Some("alice@example.test"));
    assert_eq!(claims.aud, vec!["obol-cli".to_string()]);
    let secret = w.secret("obol-oauth-token").unwrap();
    assert_eq!(
        secret["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "obol"
    );
    assert_eq!(secret["type"], "Opaque");
    // eRPC: restarted exactly once, with the token's hash.
    assert_eq!(w.deployment_patches(), 1);
    assert_eq!(
        w.deployment_hash().as_deref(),
        Some(obol::auth::token_hash(&token1).as_str())
    );
    assert!(
        stdout.contains("eRPC: restarting Deployment erpc/erpc"),
        "{stdout}"
    );
    let rt1 = w.stored_refresh_token().expect("refresh token stored");
    secrets.extend([token1.clone(), rt1.clone()]);

    // --- status (the cluster comes from the session record: no --kubeconfig from here on)
    let (status, stdout, stderr) = w.auth(&["status", "-o", "json"]);
    assert!(status.success(), "{stderr}");
    let st: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(st["signed_in"], true);
    assert_eq!(st["email"], "alice@example.test");
    assert_eq!(st["subject"], "alice");
    assert_eq!(st["issuer"], w.idp.issuer());
    assert_eq!(st["expired"], false);
    assert_eq!(st["secret"]["state"], "same-token");
    assert_eq!(st["refresh_token"]["stored"], true);
    assert_eq!(st["refresh_token"]["storage"], "file");
    assert_eq!(st["refresh_token"]["path"], file.display().to_string());
    let (status, stdout, _) = w.auth(&["status"]);
    assert!(status.success());
    assert!(stdout.contains("alice@example.test"), "{stdout}");
    assert!(
        stdout.contains("holds the token obol last wrote"),
        "{stdout}"
    );

    // --- refresh: a new, valid token; the rotated refresh token is adopted
    std::thread::sleep(Duration::from_millis(1100)); // a new `iat`, so a different token
    let (status, stdout, stderr) = w.auth(&["refresh"]);
    assert!(status.success(), "refresh failed:\n{stdout}\n{stderr}");
    let token2 = w.secret_token();
    assert_ne!(token2, token1);
    assert_eq!(w.verify(&token2).sub, "alice");
    assert!(stdout.contains("rotated the refresh token"), "{stdout}");
    let rt2 = w.stored_refresh_token().unwrap();
    assert_ne!(rt2, rt1);
    assert_eq!(w.deployment_patches(), 2);
    assert_eq!(
        w.deployment_hash().as_deref(),
        Some(obol::auth::token_hash(&token2).as_str())
    );
    // (Not checked here: presenting the retired rt1 to the issuer would make it revoke the
    // whole grant, as reuse of a rotated refresh token signals theft.)
    secrets.extend([token2.clone(), rt2.clone()]);

    // ... and with the rotated one, the next refresh works too.
    std::thread::sleep(Duration::from_millis(1100));
    let (status, stdout, stderr) = w.auth(&["refresh"]);
    assert!(
        status.success(),
        "second refresh failed:\n{stdout}\n{stderr}"
    );
    let token3 = w.secret_token();
    assert_ne!(token3, token2);
    w.verify(&token3);
    let rt3 = w.stored_refresh_token().unwrap();
    assert_ne!(rt3, rt2);
    secrets.extend([token3.clone(), rt3.clone()]);

    let (_, stdout, _) = w.auth(&["status", "-o", "json"]);
    let st: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(st["secret"]["state"], "same-token");

    // --- logout: revoked at the issuer, Secret emptied, store and session gone
    let (status, stdout, stderr) = w.auth(&["logout"]);
    assert!(status.success(), "logout failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("revoked at the issuer"), "{stdout}");
    assert!(stdout.contains("token removed"), "{stdout}");
    assert_eq!(w.secret_token(), "");
    assert!(w.secret("obol-oauth-token").is_some());
    assert!(!w.store_file().exists());
    assert!(!w.home().join("state/obol/auth.json").exists());
    let (code, body) = w.idp.try_refresh(&rt3);
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant", "{body}");
    // eRPC was rolled so it stops sending the old token.
    assert_eq!(w.deployment_patches(), 4);

    // Again (the session record is gone, so the cluster is named): nothing left to do, still
    // success.
    let kubeconfig = w.kube.kubeconfig_path().display().to_string();
    let (status, stdout, stderr) = w.auth(&["logout", "--kubeconfig", &kubeconfig]);
    assert!(status.success(), "second logout:\n{stdout}\n{stderr}");
    assert!(stdout.contains("none stored"), "{stdout}");
    assert!(stdout.contains("already had no token"), "{stdout}");
    assert_eq!(w.deployment_patches(), 4);

    let (_, stdout, _) = w.auth(&["status", "-o", "json"]);
    let st: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(st["signed_in"], false);
    assert_eq!(st["refresh_token"]["stored"], false);

    // And a refresh without a login says so.
    let (status, _, stderr) = w.auth(&["refresh"]);
    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains("not signed in"), "{stderr}");

    w.assert_no_secrets(&secrets);
    eprintln!("login_status_refresh_logout: {:?}", started.elapsed());
}

/// With Stakater Reloader watching the Secret, obol leaves the Deployment alone. The sign-in
/// goes through the `--no-browser` paste path.
#[test]
fn reloader_annotation_skips_the_restart_and_paste_works() {
    let with_reloader = ERPC.replace(
        "  namespace: erpc\nspec:",
        "  namespace: erpc\n  annotations:\n    secret.reloader.stakater.com/reload: \"other, obol-oauth-token\"\nspec:",
    );
    let mut w = World::new(OidcOptions::default(), &with_reloader);
    let mut run = w.spawn(w.login_cmd());
    let url = run.auth_url();
    let redirect = w.idp.sign_in(&url, "bob");
    let code = query_param(&redirect, "code");
    run.paste(&redirect);
    let (status, stdout, stderr) = w.finish(run, Duration::from_secs(60));
    assert!(status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("Signed in as bob@example.test"), "{stdout}");
    assert!(
        stdout.contains("Reloader annotation secret.reloader.stakater.com/reload"),
        "{stdout}"
    );
    let token = w.secret_token();
    assert_eq!(w.verify(&token).sub, "bob");
    assert_eq!(w.deployment_patches(), 0);
    assert_eq!(w.deployment_hash(), None);

    // --no-restart on a Deployment without Reloader: no patch either.
    let (status, stdout, stderr) = w.auth(&["refresh", "--no-restart"]);
    assert!(status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("not restarted (--no-restart)"), "{stdout}");
    assert_eq!(w.deployment_patches(), 0);
    let rt = w.stored_refresh_token().unwrap();
    w.assert_no_secrets(&[token, code, rt, w.secret_token()]);
}

/// Wrong `state`, a denied consent, a reused code: refused, nothing written. And the callback
/// server listens on 127.0.0.1 only.
#[test]
fn forged_or_replayed_callbacks_are_refused() {
    let mut w = World::new(confidential(), ERPC);
    let mut secrets = vec![CLIENT_SECRET.to_owned()];

    // 1. A callback with a wrong state is answered 400 and the login keeps waiting; a pasted
    //    URL with a wrong state ends it. Nothing is written.
    let mut run = w.spawn(w.login_cmd());
    let url = run.auth_url();
    assert_loopback_only(run.child.id());
    let redirect = w.idp.sign_in(&url, "alice");
    secrets.push(query_param(&redirect, "code"));
    let forged = with_param(&redirect, "state", "forged-state");
    let (status, page) = http_get(&forged);
    assert_eq!(status, 400, "{page}");
    assert!(!page.contains(&query_param(&redirect, "code")), "{page}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !run.stderr().contains("state does not match") {
        assert!(Instant::now() < deadline, "no warning: {}", run.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(run.is_running(), "a forged callback ended the login");
    run.paste(&forged);
    let (status, _, stderr) = w.finish(run, Duration::from_secs(30));
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the pasted URL was refused"), "{stderr}");
    assert!(stderr.contains("nothing was written"), "{stderr}");
    assert!(w.secret("obol-oauth-token").is_none());
    assert!(!w.store_file().exists());
    assert_eq!(w.deployment_patches(), 0);

    // 2. The user declines consent (error=access_denied with the right state).
    let run = w.spawn(w.login_cmd());
    let url = run.auth_url();
    let state = query_param(&url, "state");
    let redirect_uri = query_param(&url, "redirect_uri");
    let (status, _) = http_get(&format!(
        "{redirect_uri}?error=access_denied&error_description=no&state={state}"
    ));
    assert_eq!(status, 400);
    let (status, _, stderr) = w.finish(run, Duration::from_secs(30));
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("did not grant access: access_denied"),
        "{stderr}"
    );
    assert!(w.secret("obol-oauth-token").is_none());

    // 3. A good login, then a second login handed the first one's (used) code with the second
    //    one's state: the issuer refuses the code, the Secret keeps the first token.
    let mut first = w.spawn(w.login_cmd());
    let first_redirect = w.idp.sign_in(&first.auth_url(), "alice");
    secrets.push(query_param(&first_redirect, "code"));
    first.paste(&first_redirect);
    let (status, stdout, stderr) = w.finish(first, Duration::from_secs(60));
    assert!(status.success(), "{stdout}\n{stderr}");
    let token = w.secret_token();
    secrets.push(token.clone());
    secrets.push(w.stored_refresh_token().unwrap());
    assert_eq!(w.deployment_patches(), 1);

    let mut second = w.spawn(w.login_cmd());
    let url = second.auth_url();
    let second_redirect = w.idp.sign_in(&url, "mallory");
    secrets.push(query_param(&second_redirect, "code"));
    let replay = with_param(&first_redirect, "state", &query_param(&url, "state"));
    second.paste(&replay);
    let (status, _, stderr) = w.finish(second, Duration::from_secs(30));
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("invalid_grant"), "{stderr}");
    assert_eq!(w.secret_token(), token, "the Secret changed");
    assert_eq!(w.deployment_patches(), 1);

    w.assert_no_secrets(&secrets);
}

/// `refresh --watch` with 8-second tokens refreshes at least twice on schedule (after the
/// immediate one), adopting each rotated refresh token, and stops cleanly on SIGTERM.
#[test]
fn watch_keeps_short_lived_tokens_fresh() {
    let started = Instant::now();
    let mut w = World::new(
        OidcOptions {
            id_token_ttl: 8,
            ..confidential()
        },
        ERPC,
    );
    let (status, stdout, stderr) = w.login("alice");
    assert!(status.success(), "{stdout}\n{stderr}");
    let mut seen = vec![w.secret_token()];
    let mut secrets = vec![CLIENT_SECRET.to_owned(), seen[0].clone()];
    secrets.extend(w.stored_refresh_token());

    std::thread::sleep(Duration::from_millis(1100)); // the first refresh gets a new `iat`
    let mut cmd = w.obol();
    cmd.args(["auth", "refresh", "--watch", "--log-format", "json"]);
    let mut run = w.spawn(cmd);
    // The immediate refresh plus two scheduled ones (every 6 s): three new tokens.
    let deadline = Instant::now() + Duration::from_secs(40);
    while seen.len() < 4 {
        assert!(
            Instant::now() < deadline,
            "only {} refreshes within 40 s\n{}",
            seen.len() - 1,
            run.stderr()
        );
        assert!(run.is_running(), "watch exited:\n{}", run.stderr());
        let t = w.secret_token();
        if !t.is_empty() && !seen.contains(&t) {
            w.verify(&t);
            seen.push(t.clone());
            secrets.push(t);
            secrets.extend(w.stored_refresh_token());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid = run.child.id().to_string();
    let kill = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(kill.success());
    let (status, _, stderr) = w.finish(run, Duration::from_secs(10));
    assert!(
        status.success(),
        "watch did not stop cleanly: {status}\n{stderr}"
    );
    // JSON log lines, one per refresh, naming the next refresh time.
    let refreshed: Vec<Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| {
            v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("refreshed the ID token"))
        })
        .collect();
    assert!(refreshed.len() >= 3, "{stderr}");
    assert!(
        refreshed.iter().all(|v| v["fields"]["rotated"] == true),
        "{stderr}"
    );
    assert!(
        refreshed
            .iter()
            .all(|v| matches!(v["fields"]["next_refresh_in_seconds"].as_u64(), Some(4..=6))),
        "{stderr}"
    );
    // Each token change rolled eRPC once: login + three refreshes.
    assert!(w.deployment_patches() >= 4);
    w.assert_no_secrets(&secrets);
    eprintln!(
        "watch_keeps_short_lived_tokens_fresh: {:?}",
        started.elapsed()
    );
}

/// An in-cluster refresher: the grant comes from a Secret, a rotated refresh token is written
/// back there, and the next refresh uses it. With a Google-like issuer that returns no new
/// refresh token, the old one is kept.
#[test]
fn refresh_from_a_secret_keeps_the_grant_in_the_secret() {
    let mut w = World::new(confidential(), ERPC);
    let (status, stdout, stderr) = w.login("carol");
    assert!(status.success(), "{stdout}\n{stderr}");
    let rt = w.stored_refresh_token().unwrap();
    let mut secrets = vec![CLIENT_SECRET.to_owned(), rt.clone(), w.secret_token()];
    w.kube.apply(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: nodecore-oauth-refresh, namespace: erpc}}\n\
         type: Opaque\nstringData: {{client_id: obol-cli, client_secret: {CLIENT_SECRET}, \
         refresh_token: {rt}, issuer: \"{}\"}}\n",
        w.idp.issuer()
    ));
    let grant_rt = |w: &World| {
        let s = w.secret("nodecore-oauth-refresh").unwrap();
        let b = s["data"]["refresh_token"].as_str().unwrap().to_owned();
        String::from_utf8(STANDARD.decode(b).unwrap()).unwrap()
    };
    assert_eq!(grant_rt(&w), rt);
    let kubeconfig = w.kube.kubeconfig_path().display().to_string();
    for round in 0..2 {
        std::thread::sleep(Duration::from_millis(1100));
        let before = grant_rt(&w);
        let token_before = w.secret_token();
        let (status, stdout, stderr) = w.auth(&[
            "refresh",
            "--from-secret",
            "erpc/nodecore-oauth-refresh",
            "--kubeconfig",
            &kubeconfig,
        ]);
        assert!(status.success(), "round {round}:\n{stdout}\n{stderr}");
        assert!(
            stdout.contains("the new one is in Secret erpc/nodecore-oauth-refresh"),
            "{stdout}"
        );
        let after = grant_rt(&w);
        assert_ne!(after, before);
        let token = w.secret_token();
        assert_ne!(token, token_before);
        assert_eq!(w.verify(&token).sub, "carol");
        secrets.extend([after, token]);
    }
    w.assert_no_secrets(&secrets);
}

/// Google's behaviour: refresh responses carry no refresh token; obol keeps the old one.
#[test]
fn refresh_without_a_new_refresh_token_keeps_the_old_one() {
    let mut w = World::new(
        OidcOptions {
            omit_refresh_token_on_refresh: true,
            ..confidential()
        },
        ERPC,
    );
    let (status, stdout, stderr) = w.login("dave");
    assert!(status.success(), "{stdout}\n{stderr}");
    let rt = w.stored_refresh_token().unwrap();
    let mut secrets = vec![CLIENT_SECRET.to_owned(), rt.clone(), w.secret_token()];
    for _ in 0..2 {
        std::thread::sleep(Duration::from_millis(1100));
        let before = w.secret_token();
        let (status, stdout, stderr) = w.auth(&["refresh"]);
        assert!(status.success(), "{stdout}\n{stderr}");
        assert!(!stdout.contains("rotated"), "{stdout}");
        assert_eq!(w.stored_refresh_token().as_deref(), Some(rt.as_str()));
        let token = w.secret_token();
        assert_ne!(token, before);
        w.verify(&token);
        secrets.push(token);
    }
    w.assert_no_secrets(&secrets);
}

/// Every listening TCP socket of process `pid` is bound to 127.0.0.1 (Linux /proc).
fn assert_loopback_only(pid: u32) {
    let mut inodes = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
        if let Ok(target) = std::fs::read_link(entry.unwrap().path()) {
            let t = target.to_string_lossy().into_owned();
            if let Some(inode) = t.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
                inodes.push(inode.to_owned());
            }
        }
    }
    let mut listening = Vec::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() > 9 && f[3] == "0A" && inodes.iter().any(|i| i == f[9]) {
                listening.push((table, f[1].to_owned()));
            }
        }
    }
    assert!(!listening.is_empty(), "obol listens on nothing?");
    for (table, local) in &listening {
        assert_eq!(*table, "tcp", "listening on IPv6: {local}");
        assert!(
            local.starts_with("0100007F:"),
            "listening on a non-loopback address: {local}"
        );
    }
}
