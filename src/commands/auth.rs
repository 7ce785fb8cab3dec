//! `obol auth login|refresh|status|logout`: arguments in, [`crate::auth`] calls, output out.
//!
//! Progress and warnings go to stderr, results to stdout. No token, code, verifier or client
//! secret is ever printed: the library hands them around as [`SecretString`]s.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use super::Hinted;
use crate::auth::callback::{self, CallbackServer, Event};
use crate::auth::config::AuthConfig;
use crate::auth::flow::{self, FlowError, GrantSource, Overrides, RefreshStorage, Target};
use crate::auth::pkce::AuthRequest;
use crate::auth::session::Session;
use crate::auth::store::TokenStore;
use crate::auth::tokens::ClientCredentials;
use crate::auth::{self as auth, SecretString};
use crate::buyer::keystore::KeyLocation;
use crate::cli::{
    AuthClientArgs, AuthClusterArgs, AuthCommand, AuthLoginArgs, AuthLogoutArgs, AuthRefreshArgs,
    AuthStatusArgs, OutputFormat,
};
use crate::k8s::ClientOptions;
use crate::manifests::{ERPC_DEPLOYMENT, ERPC_NAMESPACE, OAUTH_SECRET};

pub async fn run(cmd: AuthCommand) -> anyhow::Result<()> {
    match cmd {
        AuthCommand::Login(args) => login(args).await,
        AuthCommand::Refresh(args) => refresh(args).await,
        AuthCommand::Status(args) => status(args).await,
        AuthCommand::Logout(args) => logout(args).await,
    }
}

/// A library error as a user error with a hint.
fn user_error(e: FlowError) -> anyhow::Error {
    match e.hint() {
        Some(hint) => Hinted::error(e.to_string(), hint),
        None => anyhow::Error::new(e),
    }
}

fn load_config() -> anyhow::Result<AuthConfig> {
    AuthConfig::load().map_err(|e| {
        Hinted::error(
            e.to_string(),
            "fix or remove the file (keys: issuer, clientId, clientSecret, secretNamespace, secretName)",
        )
    })
}

fn load_session() -> Option<Session> {
    match Session::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("warning: {e}; ignoring it");
            None
        }
    }
}

/// Flags, then the session record (the cluster and Secret of the last login), then the
/// settings file, then the defaults.
fn target(
    c: &AuthClusterArgs,
    session: Option<&Session>,
    config: &AuthConfig,
    restart: bool,
) -> Target {
    Target {
        kube: ClientOptions {
            kubeconfig: c
                .kubeconfig
                .clone()
                .or_else(|| session.and_then(|s| s.kubeconfig.clone())),
            context: c
                .context
                .clone()
                .or_else(|| session.and_then(|s| s.context.clone())),
            namespace: None,
        },
        secret_namespace: c
            .secret_namespace
            .clone()
            .or_else(|| session.map(|s| s.secret_namespace.clone()))
            .or_else(|| config.secret_namespace.clone())
            .unwrap_or_else(|| ERPC_NAMESPACE.to_owned()),
        secret_name: c
            .secret_name
            .clone()
            .or_else(|| session.map(|s| s.secret_name.clone()))
            .or_else(|| config.secret_name.clone())
            .unwrap_or_else(|| OAUTH_SECRET.to_owned()),
        deployment: c
            .erpc_deployment
            .clone()
            .or_else(|| session.map(|s| s.deployment.clone()))
            .unwrap_or_else(|| ERPC_DEPLOYMENT.to_owned()),
        restart,
    }
}

fn overrides(c: &AuthClientArgs) -> Overrides {
    Overrides {
        issuer: c.issuer.clone().filter(|s| !s.is_empty()),
        client_id: c.client_id.clone().filter(|s| !s.is_empty()),
        client_secret: c
            .client_secret
            .clone()
            .filter(|s| !s.is_empty())
            .map(SecretString::new),
    }
}

// ---------------------------------------------------------------------------------------------
// login

async fn login(args: AuthLoginArgs) -> anyhow::Result<()> {
    let config = load_config()?;
    let o = overrides(&args.client);
    let issuer = o
        .issuer
        .clone()
        .or(config.issuer.clone())
        .unwrap_or_else(|| auth::DEFAULT_ISSUER.to_owned());
    let Some(client_id) = o.client_id.clone().or(config.client_id.clone()) else {
        return Err(Hinted::error(
            "no OAuth client id",
            "pass --client-id (or set OBOL_OAUTH_CLIENT_ID, or clientId in \
             $XDG_CONFIG_HOME/obol/auth.yaml); for Google, create an OAuth client of type \
             \"Desktop app\" in the Cloud console",
        ));
    };
    let creds = ClientCredentials {
        client_id,
        client_secret: o.client_secret.clone().or(config.client_secret.clone()),
    };
    // A new login targets what the flags say, not the previous session's cluster.
    let target = target(&args.cluster, None, &config, !args.no_restart);

    // Fail before the browser part when the cluster or the issuer is not there.
    let kc = flow::connect(&target).await.map_err(user_error)?;
    let http = auth::http_client();
    let ic = flow::discover(&http, &issuer, creds)
        .await
        .map_err(user_error)?;

    let server = CallbackServer::bind(args.callback_port)
        .await
        .map_err(|e| {
            Hinted::error(
                e.to_string(),
                "pick another --callback-port, or leave it out for a free one",
            )
        })?;
    let mut request = AuthRequest::new(
        &ic.meta,
        &ic.creds,
        &server.redirect_uri(),
        args.login_hint.as_deref(),
    )
    .map_err(|e| user_error(e.into()))?;
    let mut running = server.serve(request.state(), &ic.issuer, request.url());

    eprintln!(
        "Sign in to {} in your browser:\n\n  {}\n",
        ic.issuer,
        request.url()
    );
    if args.no_browser {
        eprintln!(
            "When the browser ends on a page at http://127.0.0.1:{}/callback?... that does not \
             load (it runs on another machine), copy that page's full URL from the address bar \
             and paste it here, then press Enter.",
            running.local_addr().port()
        );
    } else {
        open_browser(request.url()).await;
    }

    let store = TokenStore::new();
    let pasted = if args.no_browser {
        Some(stdin_lines())
    } else {
        None
    };
    let outcome = wait_and_complete(
        &http,
        &kc,
        &ic,
        &mut request,
        &target,
        &store,
        &mut running,
        pasted,
        args.timeout,
    )
    .await;
    running.shutdown().await;
    let outcome = outcome?;

    let now = auth::now_unix();
    let c = &outcome.claims;
    println!(
        "Signed in as {} (subject {}) at {}.",
        c.who(),
        c.sub,
        ic.issuer
    );
    println!(
        "ID token valid until {} ({}).",
        auth::format_unix(c.exp),
        auth::relative(c.exp, now)
    );
    println!(
        "Wrote it to Secret {}/{} (key token).",
        target.secret_namespace, target.secret_name
    );
    match &outcome.refresh {
        RefreshStorage::Stored(KeyLocation::Keyring) => {
            println!("Refresh token stored in the OS keyring.")
        }
        RefreshStorage::Stored(KeyLocation::File { path, why }) => {
            eprintln!(
                "warning: the refresh token is stored in PLAIN TEXT in {} (mode 0600), because {}.",
                path.display(),
                why
            );
            println!("Refresh token stored in {} (mode 0600).", path.display());
        }
        RefreshStorage::NotIssued => eprintln!(
            "warning: the issuer returned no refresh token, so `obol auth refresh` cannot work; \
             for Google, remove obol's access at https://myaccount.google.com/permissions and \
             log in again"
        ),
    }
    println!("eRPC: {}.", outcome.restart);
    Ok(())
}

/// Waits for the browser (or a pasted URL) until `timeout`, then completes the login.
#[allow(clippy::too_many_arguments)]
async fn wait_and_complete(
    http: &reqwest::Client,
    kc: &crate::k8s::KubeClient,
    ic: &flow::IssuerClient,
    request: &mut AuthRequest,
    target: &Target,
    store: &TokenStore,
    running: &mut callback::RunningCallback,
    mut pasted: Option<tokio::sync::mpsc::UnboundedReceiver<String>>,
    timeout: Duration,
) -> anyhow::Result<flow::LoginOutcome> {
    let deadline = Instant::now() + timeout;
    let spinner = spinner(pasted.is_none(), timeout);
    let say = |msg: &str| match &spinner {
        Some(pb) => pb.suspend(|| eprintln!("{msg}")),
        None => eprintln!("{msg}"),
    };
    let result = loop {
        let line = async {
            match pasted.as_mut() {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            event = running.next() => match event {
                None => break Err(anyhow::anyhow!("the callback listener stopped unexpectedly")),
                Some(Event::Rejected(why)) => {
                    say(&format!("warning: refused a request to the callback: {why}; still waiting"));
                }
                Some(Event::Denied { error, description }) => {
                    break Err(denied(&error, description.as_deref()));
                }
                Some(Event::Code { code, responder }) => {
                    if let Some(pb) = &spinner {
                        pb.set_message("Checking the sign-in...");
                    }
                    let r = flow::complete_login(http, kc, ic, request, code, target, store).await;
                    match &r {
                        Ok(o) => responder.finish(true, &format!(
                            "Signed in as {}. obol stored the token; you can close this window.",
                            o.claims.who()
                        )),
                        Err(e) => responder.finish(false, &format!(
                            "obol could not complete the sign-in: {e}. See the terminal."
                        )),
                    }
                    break r.map_err(user_error);
                }
            },
            line = line => match line {
                // stdin closed: keep waiting for the browser.
                None => pasted = None,
                Some(line) if line.trim().is_empty() => {}
                Some(line) => match callback::parse_pasted(&line, request.state(), &ic.issuer) {
                    Ok(callback::Callback::Code(code)) => {
                        let r = flow::complete_login(http, kc, ic, request, code, target, store).await;
                        break r.map_err(user_error);
                    }
                    Ok(callback::Callback::Denied { error, description }) => {
                        break Err(denied(&error, description.as_deref()));
                    }
                    Err(why) => break Err(Hinted::error(
                        format!("the pasted URL was refused: {why}; nothing was written"),
                        "paste the full URL of the page the browser ended on after this login's sign-in \
                         (it starts with http://127.0.0.1:)",
                    )),
                },
            },
            _ = tokio::time::sleep_until(deadline.into()) => {
                break Err(Hinted::error(
                    format!("no sign-in arrived within {}s; nothing was written", timeout.as_secs()),
                    "run `obol auth login` again (--timeout for more time; --no-browser to paste the redirect URL)",
                ));
            }
        }
    };
    if let Some(pb) = spinner {
        pb.finish_and_clear();
    }
    result
}

fn denied(error: &str, description: Option<&str>) -> anyhow::Error {
    let detail = description.map(|d| format!(" ({d})")).unwrap_or_default();
    Hinted::error(
        format!("the issuer did not grant access: {error}{detail}; nothing was written"),
        "run `obol auth login` again and accept the consent screen",
    )
}

/// A spinner on stderr while waiting, only on a terminal (and not while reading a paste).
fn spinner(enabled: bool, timeout: Duration) -> Option<ProgressBar> {
    if !enabled || !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = ProgressBar::new_spinner();
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    pb.set_message(format!(
        "Waiting for the browser (up to {}s; Ctrl-C to cancel)",
        timeout.as_secs()
    ));
    pb.enable_steady_tick(Duration::from_millis(120));
    Some(pb)
}

/// Lines from stdin, read on a plain thread: a tokio blocking task would keep the runtime
/// from shutting down after a login completed through the browser.
fn stdin_lines() -> tokio::sync::mpsc::UnboundedReceiver<String> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let _ = std::thread::Builder::new()
        .name("obol-stdin".into())
        .spawn(move || {
            let stdin = std::io::stdin();
            let mut line = String::new();
            loop {
                line.clear();
                match stdin.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if tx.send(line.clone()).is_err() {
                            break;
                        }
                    }
                }
            }
        });
    rx
}

async fn open_browser(url: &str) {
    let url = url.to_owned();
    let opened = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::task::spawn_blocking(move || open::that_detached(&url)),
    )
    .await;
    match opened {
        Ok(Ok(Ok(()))) => eprintln!("Opened your browser; waiting for the sign-in."),
        Ok(Ok(Err(e))) => eprintln!(
            "Could not open a browser ({e}): open the URL above yourself. \
             (--no-browser also lets you paste the final redirect URL here.)"
        ),
        _ => eprintln!("Could not open a browser: open the URL above yourself."),
    }
}

// ---------------------------------------------------------------------------------------------
// refresh

async fn refresh(args: AuthRefreshArgs) -> anyhow::Result<()> {
    let config = load_config()?;
    let (source, session) = match &args.from_secret {
        Some(r) => {
            let (namespace, name) = auth::secret::parse_ref(r).ok_or_else(|| {
                Hinted::error(
                    format!("--from-secret {r} is not NAMESPACE/NAME"),
                    "e.g. --from-secret erpc/nodecore-oauth-refresh",
                )
            })?;
            (GrantSource::Secret { namespace, name }, None)
        }
        None => (GrantSource::Local(TokenStore::new()), load_session()),
    };
    let target = target(&args.cluster, session.as_ref(), &config, !args.no_restart);
    let o = overrides(&args.client);
    let http = auth::http_client();

    if let GrantSource::Local(store) = &source
        && !args.watch
        && matches!(store.load().await, Ok(None))
    {
        return Err(user_error(FlowError::NotSignedIn));
    }
    if !args.watch {
        let kc = flow::connect(&target).await.map_err(user_error)?;
        let out = flow::refresh_once(&http, &kc, &source, &target, &o)
            .await
            .map_err(user_error)?;
        let now = auth::now_unix();
        println!(
            "Refreshed the ID token of {}: valid until {} ({}).",
            out.claims.who(),
            auth::format_unix(out.claims.exp),
            auth::relative(out.claims.exp, now)
        );
        println!(
            "Wrote it to Secret {}/{} (key token).",
            target.secret_namespace, target.secret_name
        );
        if out.rotated {
            println!(
                "The issuer rotated the refresh token; the new one is in {}.",
                out.grant_location
            );
        }
        println!("eRPC: {}.", out.restart);
        return Ok(());
    }

    // --watch: no up-front reachability check; an unreachable cluster is retried like an
    // unreachable issuer.
    let kc = crate::k8s::KubeClient::new(&target.kube)
        .await
        .map_err(|e| Hinted::error(e.to_string(), e.hint()))?;
    tracing::info!(
        secret = %format!("{}/{}", target.secret_namespace, target.secret_name),
        "refreshing the ID token until stopped"
    );
    let report = |ev: flow::WatchEvent| match ev {
        flow::WatchEvent::Refreshed { outcome, next_in } => tracing::info!(
            who = %outcome.claims.who(),
            expires = %auth::format_unix(outcome.claims.exp),
            rotated = outcome.rotated,
            erpc = %outcome.restart.kind(),
            next_refresh_in_seconds = next_in.as_secs(),
            "refreshed the ID token; {}", outcome.restart
        ),
        flow::WatchEvent::Failed { error, retry_in } => tracing::warn!(
            retry_in_seconds = retry_in.as_secs(),
            "refresh failed, retrying: {error}"
        ),
    };
    flow::watch(
        &http,
        &kc,
        &source,
        &target,
        &o,
        report,
        super::shutdown_signal(),
    )
    .await
    .map_err(user_error)
    .context("stopped refreshing")?;
    tracing::info!("stopped");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// status

async fn status(args: AuthStatusArgs) -> anyhow::Result<()> {
    let config = load_config()?;
    let session = load_session();
    let target = target(&args.cluster, session.as_ref(), &config, false);
    let st = flow::status(&target, &TokenStore::new())
        .await
        .map_err(user_error)?;
    if args.output == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&st)?);
        return Ok(());
    }
    if st.signed_in {
        println!(
            "Signed in as:    {}{}",
            st.email.as_deref().unwrap_or("-"),
            st.subject
                .as_deref()
                .map(|s| format!(" (subject {s})"))
                .unwrap_or_default()
        );
        println!("Issuer:          {}", st.issuer.as_deref().unwrap_or("-"));
        println!(
            "Client id:       {}",
            st.client_id.as_deref().unwrap_or("-")
        );
        let exp = st.expires_at.as_deref().unwrap_or("-");
        let rel = st
            .expires_in_seconds
            .map(|s| {
                let now = auth::now_unix();
                format!(" ({})", auth::relative(now + s, now))
            })
            .unwrap_or_default();
        let expired = if st.expired == Some(true) {
            "; expired: run `obol auth refresh`"
        } else {
            ""
        };
        println!("ID token:        valid until {exp}{rel}{expired}");
        println!(
            "Last refresh:    {}",
            st.last_refresh.as_deref().unwrap_or("-")
        );
    } else {
        println!("Signed in as:    nobody (run `obol auth login`)");
    }
    let s = &st.secret;
    let secret_line = match s.state {
        "same-token" => "holds the token obol last wrote".to_owned(),
        "other-token" => format!(
            "holds a different token{}",
            s.email
                .as_deref()
                .or(s.subject.as_deref())
                .map(|w| format!(
                    " (for {w}, valid until {})",
                    s.expires_at.as_deref().unwrap_or("?")
                ))
                .unwrap_or_default()
        ),
        "empty" => "exists, no token".to_owned(),
        "missing" => "does not exist".to_owned(),
        _ => format!(
            "not checked: {}",
            s.error.as_deref().unwrap_or("cluster unreachable")
        ),
    };
    println!("Secret:          {}/{}: {secret_line}", s.namespace, s.name);
    let r = &st.refresh_token;
    let stored = match (r.stored, r.storage, &r.path) {
        (true, Some("keyring"), _) => "in the OS keyring".to_owned(),
        (true, _, Some(p)) => format!("in {p} (plain file, mode 0600)"),
        (true, _, None) => "stored".to_owned(),
        (false, _, _) => match &r.note {
            Some(n) => format!("unreadable: {n}"),
            None => "none stored".to_owned(),
        },
    };
    println!("Refresh token:   {stored}");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// logout

async fn logout(args: AuthLogoutArgs) -> anyhow::Result<()> {
    let config = load_config()?;
    let session = load_session();
    let target = target(&args.cluster, session.as_ref(), &config, !args.no_restart);
    let out = flow::logout(
        &auth::http_client(),
        &target,
        &TokenStore::new(),
        !args.no_revoke,
        &overrides(&args.client),
    )
    .await
    .map_err(user_error)?;
    let revocation = match out.revocation {
        "revoked" => "revoked at the issuer".to_owned(),
        "not-supported" => "the issuer has no revocation endpoint; not revoked".to_owned(),
        "skipped" => "not revoked (--no-revoke)".to_owned(),
        "no-refresh-token" => "none stored".to_owned(),
        _ => format!(
            "revoking FAILED: {}; it is kept so that `obol auth logout` can retry",
            out.revocation_error.as_deref().unwrap_or("unknown error")
        ),
    };
    println!("Refresh token:   {revocation}");
    let secret = match out.secret {
        "cleared" => "token removed".to_owned(),
        "already-empty" => "already had no token".to_owned(),
        "missing" => "does not exist".to_owned(),
        _ => format!(
            "FAILED: {}",
            out.secret_error.as_deref().unwrap_or("unknown error")
        ),
    };
    println!(
        "Secret:          {}/{}: {secret}",
        target.secret_namespace, target.secret_name
    );
    if let Some(detail) = &out.restart_detail {
        println!("eRPC:            {detail}");
    }
    if !out.kept_refresh_token {
        let mut removed = Vec::new();
        if out.removed_from_keyring {
            removed.push("the OS keyring".to_owned());
        }
        if let Some(f) = &out.removed_file {
            removed.push(f.clone());
        }
        if !removed.is_empty() {
            println!(
                "Deleted:         the refresh token from {}",
                removed.join(" and ")
            );
        }
    }
    if out.failed() {
        return Err(Hinted::error(
            "logout is incomplete (see above)",
            "fix the cause and run `obol auth logout` again; it is safe to repeat",
        ));
    }
    println!("Signed out.");
    Ok(())
}
