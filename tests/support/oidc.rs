//! A real OpenID Connect provider for the `obol auth` tests: npm `oidc-provider` 9.13.3 (panva,
//! OpenID-certified) run by `tests/support/oidc/server.mjs`, installed by
//! `scripts/setup-test-env.sh` (component `oidc`).
//!
//! ```ignore
//! let idp = OidcProvider::start(OidcOptions::default());      // ready on return, killed on drop
//! // obol prints the authorization URL; sign in as "alice" by driving the dev login and consent
//! // forms over HTTP; the result is the final redirect (http://127.0.0.1:PORT/callback?code=..)
//! let redirect = idp.sign_in(&auth_url, "alice");
//! ```
//!
//! Accounts are made up on the spot: login `alice` gets `sub: alice`,
//! `email: alice@example.test`. Loopback redirect URIs `http://127.0.0.1:<any port>/callback` are
//! accepted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::process::{ChildGuard, READY_TIMEOUT, http_probe, node_bin, off_runtime};

/// `tests/support/oidc`, the npm project with `server.mjs`.
pub fn oidc_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/oidc")
}

/// How the provider is configured.
#[derive(Debug, Clone)]
pub struct OidcOptions {
    pub client_id: String,
    /// A confidential client (HTTP Basic auth at the token endpoint) when set.
    pub client_secret: Option<String>,
    /// Lifetime of ID and access tokens, in seconds.
    pub id_token_ttl: u64,
    /// Every refresh returns a new refresh token and retires the old one.
    pub rotate_refresh_tokens: bool,
    /// Refresh responses carry no refresh token at all (Google's behaviour).
    pub omit_refresh_token_on_refresh: bool,
}

impl Default for OidcOptions {
    fn default() -> Self {
        OidcOptions {
            client_id: "obol-cli".into(),
            client_secret: None,
            id_token_ttl: 3600,
            rotate_refresh_tokens: true,
            omit_refresh_token_on_refresh: false,
        }
    }
}

/// A running provider on `http://127.0.0.1:PORT` (the issuer).
pub struct OidcProvider {
    guard: ChildGuard,
    issuer: String,
    opts: OidcOptions,
}

impl OidcProvider {
    /// Starts `server.mjs` on a free port and waits for its discovery document. Panics, naming
    /// the setup script, when node or `oidc-provider` is missing.
    pub fn start(opts: OidcOptions) -> OidcProvider {
        let dir = oidc_dir();
        let module = dir.join("node_modules/oidc-provider/package.json");
        if !module.exists() {
            panic!(
                "npm oidc-provider not installed ({} missing): run scripts/setup-test-env.sh",
                module.display()
            );
        }
        let node = node_bin();
        let o = opts.clone();
        let (guard, port) = ChildGuard::spawn_on_free_port(
            "oidc-provider",
            READY_TIMEOUT,
            |port| {
                let mut cmd = Command::new(&node);
                cmd.current_dir(&dir)
                    .arg("server.mjs")
                    .env("PORT", port.to_string())
                    .env("CLIENT_ID", &o.client_id)
                    .env("ID_TOKEN_TTL", o.id_token_ttl.to_string())
                    .env(
                        "ROTATE_REFRESH",
                        if o.rotate_refresh_tokens {
                            "always"
                        } else {
                            "never"
                        },
                    )
                    .env(
                        "OMIT_REFRESH_TOKEN_ON_REFRESH",
                        if o.omit_refresh_token_on_refresh {
                            "1"
                        } else {
                            "0"
                        },
                    );
                if let Some(secret) = &o.client_secret {
                    cmd.env("CLIENT_SECRET", secret);
                }
                cmd
            },
            |port| {
                http_probe(&format!(
                    "http://127.0.0.1:{port}/.well-known/openid-configuration"
                ))
            },
        );
        OidcProvider {
            guard,
            issuer: format!("http://127.0.0.1:{port}"),
            opts,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn options(&self) -> &OidcOptions {
        &self.opts
    }

    /// The provider's log (stdout + stderr).
    pub fn log(&self) -> String {
        self.guard.log_contents()
    }

    /// The issuer's discovery document.
    pub fn discovery(&self) -> Value {
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        off_runtime(|| {
            client()
                .get(&url)
                .send()
                .and_then(|r| r.json())
                .expect("discovery")
        })
    }

    /// The JWKS (`jwks_uri`).
    pub fn jwks(&self) -> Value {
        let url = self.discovery()["jwks_uri"]
            .as_str()
            .expect("jwks_uri")
            .to_owned();
        off_runtime(|| {
            client()
                .get(&url)
                .send()
                .and_then(|r| r.json())
                .expect("jwks")
        })
    }

    /// Signs in as `login` starting from the authorization URL obol printed: follows the
    /// provider's redirects, submits the dev login form (any password) and the consent form,
    /// and returns the final redirect to the client (`http://127.0.0.1:PORT/callback?code=..`)
    /// without following it.
    pub fn sign_in(&self, auth_url: &str, login: &str) -> String {
        let issuer = self.issuer.clone();
        let auth_url = auth_url.to_owned();
        let login = login.to_owned();
        off_runtime(move || drive_forms(&issuer, &auth_url, &login))
    }

    /// A refresh-token grant made directly (not through obol): the HTTP status and JSON body.
    /// A revoked or retired refresh token answers 400 `invalid_grant`.
    pub fn try_refresh(&self, refresh_token: &str) -> (u16, Value) {
        let url = format!("{}/token", self.issuer);
        let opts = self.opts.clone();
        let rt = refresh_token.to_owned();
        off_runtime(move || {
            let mut form = vec![
                ("grant_type", "refresh_token".to_owned()),
                ("refresh_token", rt),
            ];
            let mut req = client().post(&url);
            match &opts.client_secret {
                Some(s) => req = req.basic_auth(&opts.client_id, Some(s)),
                None => form.push(("client_id", opts.client_id.clone())),
            }
            let resp = req.form(&form).send().expect("POST /token");
            let status = resp.status().as_u16();
            (status, resp.json().unwrap_or(Value::Null))
        })
    }
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .expect("reqwest client")
}

/// The dev interaction pages are one `<form>` each: the login form (hidden `prompt=login`,
/// fields `login` and `password`) and the consent form (hidden `prompt=consent`).
fn drive_forms(issuer: &str, auth_url: &str, login: &str) -> String {
    let http = client();
    let mut cookies: BTreeMap<String, String> = BTreeMap::new();
    let mut url = auth_url.to_owned();
    let mut form: Option<Vec<(String, String)>> = None;
    for _step in 0..12 {
        let req = match form.take() {
            Some(fields) => http.post(&url).form(&fields),
            None => http.get(&url),
        };
        let cookie_header = cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let req = if cookie_header.is_empty() {
            req
        } else {
            req.header("cookie", cookie_header)
        };
        let resp = req
            .send()
            .unwrap_or_else(|e| panic!("oidc sign-in: {url}: {e}"));
        for sc in resp.headers().get_all("set-cookie") {
            let sc = sc.to_str().unwrap_or_default();
            let pair = sc.split(';').next().unwrap_or_default();
            if let Some((k, v)) = pair.split_once('=') {
                if v.is_empty() || sc.to_ascii_lowercase().contains("expires=thu, 01 jan 1970") {
                    cookies.remove(k.trim());
                } else {
                    cookies.insert(k.trim().to_owned(), v.to_owned());
                }
            }
        }
        let status = resp.status().as_u16();
        if (300..400).contains(&status) {
            let location = resp
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .unwrap_or_else(|| panic!("oidc sign-in: {status} without Location at {url}"))
                .to_owned();
            let next = reqwest::Url::parse(&url)
                .and_then(|base| base.join(&location))
                .unwrap_or_else(|e| panic!("oidc sign-in: bad Location {location}: {e}"))
                .to_string();
            if !next.starts_with(issuer) {
                // Back to the client: the final redirect.
                return next;
            }
            url = next;
            continue;
        }
        let body = resp.text().unwrap_or_default();
        if status != 200 {
            panic!("oidc sign-in: {url} answered {status}: {body}");
        }
        let (action, mut fields) =
            parse_form(&body).unwrap_or_else(|| panic!("oidc sign-in: no form at {url}: {body}"));
        if body.contains("name=\"login\"") {
            fields.push(("login".into(), login.into()));
            fields.push(("password".into(), "any".into()));
        }
        url = reqwest::Url::parse(&url)
            .and_then(|base| base.join(&action))
            .expect("form action")
            .to_string();
        form = Some(fields);
    }
    panic!("oidc sign-in: no redirect back to the client after 12 steps (last {url})");
}

/// The first form's action and its hidden inputs.
fn parse_form(html: &str) -> Option<(String, Vec<(String, String)>)> {
    let start = html.find("<form")?;
    let end = html[start..].find("</form>")? + start;
    let form = &html[start..end];
    let action = attr(&form[..form.find('>')?], "action")?;
    let mut fields = Vec::new();
    let mut rest = form;
    while let Some(i) = rest.find("<input") {
        let tag_end = rest[i..].find('>')? + i;
        let tag = &rest[i..tag_end];
        if attr(tag, "type").as_deref() == Some("hidden")
            && let (Some(name), Some(value)) = (attr(tag, "name"), attr(tag, "value"))
        {
            fields.push((name, value));
        }
        rest = &rest[tag_end..];
    }
    Some((html_unescape(&action), fields))
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let needle = format!("{name}=\"");
    let i = tag.find(&needle)? + needle.len();
    let j = tag[i..].find('"')? + i;
    Some(html_unescape(&tag[i..j]))
}

fn html_unescape(s: &str) -> String {
    s.replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}
