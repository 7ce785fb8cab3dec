//! The loopback redirect target (RFC 8252 §7.3): an HTTP server on `127.0.0.1` only, on a
//! random port unless one is given (for `ssh -L`).
//!
//! It is a real HTTP server that answers every connection, because browsers open more than one
//! (preconnects, `favicon.ico`):
//! - `GET /` redirects to the authorization URL (a short URL to type);
//! - `GET /callback` checks `state` (and `iss`, RFC 9207, when present) before anything else. A
//!   wrong or missing `state` gets a 400 page and is reported as [`Event::Rejected`]: the
//!   login keeps waiting, so a stray request can neither complete nor abort it. The first
//!   callback with the right `state` ends the wait: with a `code` ([`Event::Code`]; the page
//!   shows the outcome the caller reports through the [`Responder`]), or an `error`
//!   ([`Event::Denied`]). Later callbacks are told the login is over.
//! - anything else is 404.
//!
//! Pages are static text, `Cache-Control: no-store`, `Referrer-Policy: no-referrer`, and never
//! echo request values. With `--no-browser` the user may paste the final redirect URL instead:
//! [`parse_pasted`] applies the same checks.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::{mpsc, oneshot};

use super::SecretString;

/// Path of the redirect URI.
pub const CALLBACK_PATH: &str = "/callback";

/// How long the browser's callback request waits for the caller's outcome (code exchange,
/// token check, Secret write) before the page says to look at the terminal.
const OUTCOME_WAIT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Bind { port: u16, source: std::io::Error },
}

/// Why a callback was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("it carries no state")]
    MissingState,
    #[error(
        "its state does not match this login's (a stale tab, another login, or a forged request)"
    )]
    StateMismatch,
    #[error("it comes from another issuer (iss mismatch)")]
    IssuerMismatch,
    #[error("it carries neither a code nor an error")]
    NoCode,
    #[error("it is not a URL or query string obol can read")]
    Unreadable,
}

/// An accepted callback.
#[derive(Debug)]
pub enum Callback {
    Code(SecretString),
    /// The user or the issuer declined (`error=access_denied`, ...).
    Denied {
        error: String,
        description: Option<String>,
    },
}

/// What the server reports to the waiting login.
#[derive(Debug)]
pub enum Event {
    /// The authorization code; answer the browser with [`Responder::finish`].
    Code {
        code: SecretString,
        responder: Responder,
    },
    Denied {
        error: String,
        description: Option<String>,
    },
    /// A callback that was refused (the login goes on waiting).
    Rejected(Rejection),
}

/// Checks a callback's query parameters against this login's `state` and `issuer`.
pub fn validate(
    params: &HashMap<String, String>,
    state: &str,
    issuer: &str,
) -> Result<Callback, Rejection> {
    let got = params.get("state").ok_or(Rejection::MissingState)?;
    if !super::constant_time_eq(got, state) {
        return Err(Rejection::StateMismatch);
    }
    if let Some(iss) = params.get("iss")
        && super::discovery::normalize_issuer(iss) != super::discovery::normalize_issuer(issuer)
    {
        return Err(Rejection::IssuerMismatch);
    }
    if let Some(error) = params.get("error") {
        return Ok(Callback::Denied {
            error: printable(error),
            description: params.get("error_description").map(|d| printable(d)),
        });
    }
    match params.get("code") {
        Some(code) if !code.is_empty() => Ok(Callback::Code(SecretString::new(code.clone()))),
        _ => Err(Rejection::NoCode),
    }
}

/// Reads what a user pasted: the full redirect URL (`http://127.0.0.1:PORT/callback?code=..`),
/// or just its query string, and checks it like a callback.
pub fn parse_pasted(input: &str, state: &str, issuer: &str) -> Result<Callback, Rejection> {
    let input = input.trim();
    let query = match input.split_once('?') {
        Some((_, q)) => q,
        None if input.contains('=') => input,
        None => return Err(Rejection::Unreadable),
    };
    let query = query.split('#').next().unwrap_or_default();
    validate(&parse_query(query), state, issuer)
}

fn parse_query(q: &str) -> HashMap<String, String> {
    oauth2::url::form_urlencoded::parse(q.as_bytes())
        .into_owned()
        .collect()
}

/// Keeps an issuer's error words short and printable (they are shown to the user).
fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(200).collect()
}

/// A bound, not yet serving, callback listener.
pub struct CallbackServer {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
}

impl CallbackServer {
    /// Binds `127.0.0.1:port` (port 0: a free one). Never another address.
    pub async fn bind(port: Option<u16>) -> Result<CallbackServer, CallbackError> {
        let port = port.unwrap_or(0);
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .await
            .map_err(|source| CallbackError::Bind { port, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| CallbackError::Bind { port, source })?;
        Ok(CallbackServer { listener, addr })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/callback`: the redirect URI (the IP literal, not `localhost`,
    /// RFC 8252 §8.3).
    pub fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}{CALLBACK_PATH}", self.addr.port())
    }

    /// Starts serving: callbacks are checked against `state` and `issuer`; `/` redirects to
    /// `auth_url`.
    pub fn serve(self, state: &str, issuer: &str, auth_url: &str) -> RunningCallback {
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            state: SecretString::new(state),
            issuer: issuer.to_owned(),
            auth_url: auth_url.to_owned(),
            tx,
            done: AtomicBool::new(false),
        });
        let app = Router::new()
            .route("/", get(index))
            .route(CALLBACK_PATH, get(callback))
            .fallback(not_found)
            .with_state(shared);
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(self.listener, app)
                .with_graceful_shutdown(async {
                    let _ = stop_rx.await;
                })
                .await;
        });
        RunningCallback {
            addr: self.addr,
            rx,
            stop: Some(stop_tx),
            task: Some(task),
        }
    }
}

/// A serving callback listener; stop it with [`RunningCallback::shutdown`] (dropping it aborts).
pub struct RunningCallback {
    addr: SocketAddr,
    rx: mpsc::UnboundedReceiver<Event>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningCallback {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The next thing that happened at the listener (`None` if it stopped).
    pub async fn next(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    /// Stops listening, letting the page of an answered callback reach the browser first.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(2), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

impl Drop for RunningCallback {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Answers the browser's callback request once the caller knows the outcome.
#[derive(Debug)]
pub struct Responder(oneshot::Sender<Outcome>);

#[derive(Debug)]
struct Outcome {
    ok: bool,
    message: String,
}

impl Responder {
    /// `ok`: a success page; otherwise an error page. `message` is plain text (escaped).
    pub fn finish(self, ok: bool, message: &str) {
        let _ = self.0.send(Outcome {
            ok,
            message: message.to_owned(),
        });
    }
}

struct Shared {
    state: SecretString,
    issuer: String,
    auth_url: String,
    tx: mpsc::UnboundedSender<Event>,
    /// Set once a callback with the right state was accepted.
    done: AtomicBool,
}

async fn index(State(shared): State<Arc<Shared>>) -> Response {
    let mut resp = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(&shared.auth_url) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    no_store(resp)
}

async fn not_found() -> Response {
    page(StatusCode::NOT_FOUND, "Not found", "Nothing here.")
}

async fn callback(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    let params = parse_query(query.as_deref().unwrap_or_default());
    let result = validate(&params, shared.state.expose(), &shared.issuer);
    if let Err(rejection) = result {
        let _ = shared.tx.send(Event::Rejected(rejection));
        return page(
            StatusCode::BAD_REQUEST,
            "Sign-in response refused",
            &format!(
                "obol refused this sign-in response: {rejection}. Nothing was stored. \
                 If you are signing in, use the link obol printed in your terminal."
            ),
        );
    }
    if shared.done.swap(true, Ordering::SeqCst) {
        return page(
            StatusCode::BAD_REQUEST,
            "Already signed in",
            "obol already received the sign-in response for this login. \
             Return to the terminal.",
        );
    }
    match result {
        Ok(Callback::Code(code)) => {
            let (tx, rx) = oneshot::channel();
            if shared
                .tx
                .send(Event::Code {
                    code,
                    responder: Responder(tx),
                })
                .is_err()
            {
                return page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "obol stopped",
                    "obol is no longer waiting for this sign-in. Return to the terminal.",
                );
            }
            match tokio::time::timeout(OUTCOME_WAIT, rx).await {
                Ok(Ok(Outcome { ok: true, message })) => {
                    page(StatusCode::OK, "Signed in", &message)
                }
                Ok(Ok(Outcome { ok: false, message })) => {
                    page(StatusCode::BAD_REQUEST, "Sign-in failed", &message)
                }
                _ => page(
                    StatusCode::OK,
                    "Sign-in received",
                    "obol received the sign-in response. Return to the terminal to see the result.",
                ),
            }
        }
        Ok(Callback::Denied { error, description }) => {
            let _ = shared.tx.send(Event::Denied {
                error: error.clone(),
                description,
            });
            page(
                StatusCode::BAD_REQUEST,
                "Sign-in cancelled",
                "The issuer did not grant access, so obol stored nothing. \
                 Return to the terminal for details.",
            )
        }
        Err(_) => unreachable!("handled above"),
    }
}

fn page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>obol: {t}</title></head>\
         <body style=\"font-family: sans-serif; max-width: 40em; margin: 4em auto\">\
         <h1>{t}</h1><p>{m}</p><p>You can close this window.</p></body></html>\n",
        t = html_escape(title),
        m = html_escape(message)
    );
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    no_store(resp)
}

fn no_store(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISS: &str = "http://127.0.0.1:9400";

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn state_is_checked_first() {
        assert_eq!(
            validate(&map(&[("code", "c")]), "s", ISS).unwrap_err(),
            Rejection::MissingState
        );
        assert_eq!(
            validate(&map(&[("code", "c"), ("state", "x")]), "s", ISS).unwrap_err(),
            Rejection::StateMismatch
        );
        // An error with a wrong state is refused too: a stray request cannot abort a login.
        assert_eq!(
            validate(
                &map(&[("error", "access_denied"), ("state", "x")]),
                "s",
                ISS
            )
            .unwrap_err(),
            Rejection::StateMismatch
        );
        assert_eq!(
            validate(
                &map(&[("code", "c"), ("state", "s"), ("iss", "http://evil")]),
                "s",
                ISS
            )
            .unwrap_err(),
            Rejection::IssuerMismatch
        );
        assert!(matches!(
            validate(&map(&[("code", "c"), ("state", "s"), ("iss", ISS)]), "s", ISS),
            Ok(Callback::Code(c)) if c.expose() == "c"
        ));
        assert!(matches!(
            validate(&map(&[("error", "access_denied"), ("state", "s")]), "s", ISS),
            Ok(Callback::Denied { error, .. }) if error == "access_denied"
        ));
        assert_eq!(
            validate(&map(&[("state", "s")]), "s", ISS).unwrap_err(),
            Rejection::NoCode
        );
    }

    #[test]
    fn pasted_urls_and_queries_are_read() {
        let url =
            "http://127.0.0.1:5555/callback?code=abc%2F1&state=s&iss=http%3A%2F%2F127.0.0.1%3A9400";
        assert!(
            matches!(parse_pasted(url, "s", ISS), Ok(Callback::Code(c)) if c.expose() == "abc/1")
        );
        assert!(matches!(
            parse_pasted("  code=abc&state=s\n", "s", ISS),
            Ok(Callback::Code(_))
        ));
        assert_eq!(
            parse_pasted("code=abc&state=t", "s", ISS).unwrap_err(),
            Rejection::StateMismatch
        );
        assert_eq!(
            parse_pasted("hello", "s", ISS).unwrap_err(),
            Rejection::Unreadable
        );
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            html_escape("<script>\"x\"&'"),
            "&lt;script&gt;&quot;x&quot;&amp;&#39;"
        );
    }

    async fn get(client: &reqwest::Client, url: &str) -> (u16, String) {
        let r = client.get(url).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    #[tokio::test]
    async fn server_listens_on_loopback_only_and_checks_state() {
        let server = CallbackServer::bind(None).await.unwrap();
        let addr = server.local_addr();
        assert!(addr.ip().is_loopback(), "{addr}");
        assert_ne!(addr.port(), 0);
        assert_eq!(
            server.redirect_uri(),
            format!("http://127.0.0.1:{}/callback", addr.port())
        );
        let base = format!("http://127.0.0.1:{}", addr.port());
        let mut running = server.serve("good-state", ISS, "http://127.0.0.1:9400/auth?x=1");
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .unwrap();

        // favicon and friends: 404, no event.
        assert_eq!(get(&client, &format!("{base}/favicon.ico")).await.0, 404);
        // `/` redirects to the authorization URL.
        let r = client.get(format!("{base}/")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 302);
        assert_eq!(
            r.headers()["location"].to_str().unwrap(),
            "http://127.0.0.1:9400/auth?x=1"
        );
        // Wrong state: 400, reported, and the page does not echo the code.
        let (status, body) = get(
            &client,
            &format!("{base}/callback?code=SECRETCODE123&state=<b>bad</b>"),
        )
        .await;
        assert_eq!(status, 400);
        assert!(
            !body.contains("SECRETCODE123") && !body.contains("<b>"),
            "{body}"
        );
        assert!(matches!(
            running.next().await,
            Some(Event::Rejected(Rejection::StateMismatch))
        ));

        // The right state: the page waits for the outcome.
        let c2 = client.clone();
        let b2 = base.clone();
        let browser = tokio::spawn(async move {
            get(
                &c2,
                &format!("{b2}/callback?code=the-code&state=good-state"),
            )
            .await
        });
        match running.next().await {
            Some(Event::Code { code, responder }) => {
                assert_eq!(code.expose(), "the-code");
                responder.finish(true, "Signed in as alice.");
            }
            other => panic!("unexpected {other:?}"),
        }
        let (status, body) = browser.await.unwrap();
        assert_eq!(status, 200);
        assert!(body.contains("Signed in as alice."), "{body}");
        // A second good callback is told the login is over.
        let (status, _) = get(&client, &format!("{base}/callback?code=x&state=good-state")).await;
        assert_eq!(status, 400);
        running.shutdown().await;
        assert!(
            client.get(format!("{base}/")).send().await.is_err(),
            "still listening after shutdown"
        );
    }

    #[tokio::test]
    async fn a_taken_port_is_an_error_naming_it() {
        let first = CallbackServer::bind(None).await.unwrap();
        let port = first.local_addr().port();
        let err = CallbackServer::bind(Some(port)).await.err().unwrap();
        assert!(err.to_string().contains(&port.to_string()));
    }
}
