//! `--state`: where payment state lives. Parsed once at startup; displayed (for logs and
//! `/readyz`) without any password.

use std::fmt;
use std::path::PathBuf;

use super::StoreError;

/// The key prefix of the Redis backend when the URL names none.
pub const DEFAULT_REDIS_PREFIX: &str = "obol:x402";

const DEFAULT_REDIS_PORT: u16 = 6379;
const MAX_PREFIX_LEN: usize = 64;

/// Where payment state lives, parsed from `--state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// `memory`: this process only, forgotten on restart.
    Memory,
    /// Any other value: an embedded file (one verifier process).
    File(PathBuf),
    /// `redis://…` or `rediss://…` (TLS): shared by verifier replicas.
    Redis(RedisSpec),
}

impl StoreSpec {
    /// `memory`, `redis://[user][:password@]host[:port][/db][?prefix=p]`, `rediss://…` (TLS,
    /// certificates checked against the system roots), or else a file path (`./memory` for a
    /// file named `memory`). An empty value and other URL schemes are refused.
    pub fn parse(s: &str) -> Result<StoreSpec, StoreError> {
        if s.trim().is_empty() {
            return Err(bad(
                "empty; give `memory`, a file path, or a redis:// or rediss:// URL",
            ));
        }
        if s == "memory" {
            return Ok(StoreSpec::Memory);
        }
        if let Some((scheme, _)) = s.split_once("://") {
            // Only the scheme is echoed: the rest may carry credentials.
            return match scheme.to_ascii_lowercase().as_str() {
                "redis" | "rediss" => RedisSpec::parse(s).map(StoreSpec::Redis),
                _ if is_plain_scheme(scheme) => Err(bad(format!(
                    "`{scheme}://` is not a payment-state store; give `memory`, a file path, or a redis:// or rediss:// URL"
                ))),
                _ => Err(bad(
                    "looks like a URL of an unknown scheme; give `memory`, a file path, or a redis:// or rediss:// URL",
                )),
            };
        }
        Ok(StoreSpec::File(PathBuf::from(s)))
    }
}

fn is_plain_scheme(scheme: &str) -> bool {
    !scheme.is_empty()
        && scheme.len() <= 32
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

fn bad(msg: impl Into<String>) -> StoreError {
    StoreError::BadSpec(msg.into())
}

impl fmt::Display for StoreSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreSpec::Memory => f.write_str("memory"),
            StoreSpec::File(path) => write!(f, "file {}", path.display()),
            StoreSpec::Redis(redis) => write!(f, "redis {redis}"),
        }
    }
}

/// A Redis to keep payment state in. Its `Display` and `Debug` show the password as `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisSpec {
    tls: bool,
    host: String,
    port: u16,
    db: u32,
    /// Percent-encoded, as in the URL.
    username: String,
    /// Percent-encoded, as in the URL.
    password: Option<String>,
    prefix: String,
}

impl RedisSpec {
    fn parse(s: &str) -> Result<RedisSpec, StoreError> {
        // url's parse errors name the problem, never the input.
        let url =
            url::Url::parse(s).map_err(|e| bad(format!("the Redis URL does not parse: {e}")))?;
        let tls = match url.scheme() {
            "redis" => false,
            "rediss" => true,
            _ => return Err(bad("a Redis URL starts with redis:// or rediss://")),
        };
        let host = match url.host_str() {
            Some(h) if !h.is_empty() => h.to_string(),
            _ => return Err(bad("the Redis URL names no host")),
        };
        let db = match url.path().trim_matches('/') {
            "" => 0,
            path => path.parse::<u32>().map_err(|_| {
                bad("the path of a Redis URL is the database number (e.g. /0), nothing else")
            })?,
        };
        let mut prefix = DEFAULT_REDIS_PREFIX.to_string();
        for (name, value) in url.query_pairs() {
            match name.as_ref() {
                "prefix" => prefix = checked_prefix(&value)?,
                other if is_plain_scheme(other) => {
                    return Err(bad(format!(
                        "unknown Redis URL option `{other}` (the one option is `prefix`)"
                    )));
                }
                _ => return Err(bad("unknown Redis URL option (the one option is `prefix`)")),
            }
        }
        if url.fragment().is_some() {
            return Err(bad(
                "a Redis URL takes no #fragment (TLS certificate checks cannot be turned off)",
            ));
        }
        Ok(RedisSpec {
            tls,
            host,
            port: url.port().unwrap_or(DEFAULT_REDIS_PORT),
            db,
            username: url.username().to_string(),
            password: url.password().map(str::to_string),
            prefix,
        })
    }

    /// Whether the connection uses TLS (`rediss://`).
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// The prefix of every key this store writes.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The URL to connect with, password included: for the Redis client only, never to print.
    pub(super) fn connection_url(&self) -> String {
        self.url_with_password(self.password.as_deref())
    }

    /// The password, decoded and as written in the URL, so that text coming back from Redis can
    /// be scrubbed of it.
    pub(super) fn password_forms(&self) -> Vec<String> {
        let Some(raw) = self.password.as_deref().filter(|p| !p.is_empty()) else {
            return Vec::new();
        };
        let mut forms = vec![raw.to_string()];
        if let Ok(decoded) = percent_encoding::percent_decode_str(raw).decode_utf8()
            && decoded != raw
        {
            forms.push(decoded.into_owned());
        }
        forms
    }

    fn url_with_password(&self, password: Option<&str>) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        let userinfo = match (self.username.as_str(), password) {
            ("", None) => String::new(),
            (user, None) => format!("{user}@"),
            (user, Some(password)) => format!("{user}:{password}@"),
        };
        format!(
            "{scheme}://{userinfo}{}:{}/{}",
            self.host, self.port, self.db
        )
    }
}

/// A prefix is a short run of `[A-Za-z0-9_.:-]`, so keys stay readable and unambiguous.
fn checked_prefix(prefix: &str) -> Result<String, StoreError> {
    let ok = !prefix.is_empty()
        && prefix.len() <= MAX_PREFIX_LEN
        && prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'));
    if ok {
        Ok(prefix.to_string())
    } else {
        Err(bad(format!(
            "the Redis key prefix must be 1 to {MAX_PREFIX_LEN} characters of A-Z a-z 0-9 _ . : -"
        )))
    }
}

impl fmt::Display for RedisSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = self.password.as_ref().map(|_| "***");
        f.write_str(&self.url_with_password(redacted))?;
        if self.prefix != DEFAULT_REDIS_PREFIX {
            write!(f, "?prefix={}", self.prefix)?;
        }
        Ok(())
    }
}

impl fmt::Debug for RedisSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisSpec({self})")
    }
}
