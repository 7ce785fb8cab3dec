//! Client of an x402 facilitator: `POST /verify`, `POST /settle`, `GET /supported`.
//!
//! Implementations disagree on how they report a refused payment (200 with `isValid:false`,
//! or 400/500 with the same body), so the body is read on every status and `isValid` /
//! `success` are authoritative when present. Settlement errors distinguish "never reached the
//! facilitator" (safe to retry or give up) from "outcome unknown" (retry with the **same**
//! payment only, never a new signature).

use std::fmt;
use std::time::Duration;

use serde_json::{Value, json};

use super::wire::{PaymentPayload, SettleResponse, SupportedResponse, VerifyResponse};

/// The most of a facilitator response body that is read.
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// How much of a server-provided message an error repeats.
const MAX_DETAIL: usize = 200;

/// Timeouts per call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FacilitatorConfig {
    pub verify_timeout: Duration,
    pub settle_timeout: Duration,
    pub supported_timeout: Duration,
}

impl Default for FacilitatorConfig {
    fn default() -> Self {
        FacilitatorConfig {
            verify_timeout: Duration::from_secs(5),
            settle_timeout: Duration::from_secs(60),
            supported_timeout: Duration::from_secs(5),
        }
    }
}

/// What went wrong talking to the facilitator. Never contains the payment or its signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FacilitatorError {
    /// The facilitator looked at the payment and refused it (`isValid:false` /
    /// `success:false`, on any HTTP status).
    #[error("payment refused by the facilitator: {reason}{}", message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    InvalidPayment {
        reason: String,
        message: Option<String>,
        payer: Option<String>,
        /// A settle failure may name the (reverted) transaction.
        transaction: Option<String>,
    },
    /// The facilitator URL is unusable (not http(s), no host, query or fragment).
    #[error("invalid facilitator URL {url:?}: {detail}")]
    InvalidUrl { url: String, detail: String },
    /// The request never reached the facilitator (DNS, refused, TLS, connect timeout).
    #[error("facilitator {url} unreachable: {detail}")]
    Unreachable { url: String, detail: String },
    /// The facilitator answered with an error status and no usable body, or an unreadable 2xx.
    #[error("facilitator error (HTTP {status}): {detail}")]
    Facilitator { status: u16, detail: String },
    /// `/verify` or `/supported` took longer than its timeout.
    #[error("facilitator {what} timed out after {after:?}")]
    Timeout { what: &'static str, after: Duration },
    /// The connection failed after the request was sent (`/verify`, `/supported`).
    #[error("facilitator {what} failed: {detail}")]
    Transport { what: &'static str, detail: String },
    /// `/settle` was sent but its outcome is unknown (timeout, dropped connection, 5xx without
    /// `success`, unreadable 2xx). Money may have moved: retry with the same payment only.
    #[error("settlement outcome unknown: {detail}")]
    SettlementUnknown { detail: String },
}

impl FacilitatorError {
    /// Whether asking again (with the same payment) may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            FacilitatorError::InvalidPayment { .. } | FacilitatorError::InvalidUrl { .. } => false,
            FacilitatorError::Facilitator { status, .. } => {
                *status >= 500 || *status == 408 || *status == 429
            }
            FacilitatorError::Unreachable { .. }
            | FacilitatorError::Timeout { .. }
            | FacilitatorError::Transport { .. }
            | FacilitatorError::SettlementUnknown { .. } => true,
        }
    }
}

/// A facilitator at one base URL (`https://x402.org/facilitator`).
#[derive(Clone)]
pub struct FacilitatorClient {
    client: reqwest::Client,
    base: String,
    /// `base` with any password replaced, for error messages.
    shown: String,
    config: FacilitatorConfig,
}

impl fmt::Debug for FacilitatorClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FacilitatorClient")
            .field("base_url", &self.shown)
            .field("config", &self.config)
            .finish()
    }
}

fn cut(s: &str) -> String {
    let mut out: String = s.chars().take(MAX_DETAIL).collect();
    if s.chars().count() > MAX_DETAIL {
        out.push('…');
    }
    out
}

/// Replaces long hex runs (signatures are 130 hex digits) with `0x…`.
fn scrub(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= 100 {
            out.push('…');
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in s.chars() {
        if c.is_ascii_hexdigit() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

fn text_field(v: &Value, keys: &[&str]) -> Option<String> {
    keys.iter()
        .find_map(|k| v.get(*k).and_then(Value::as_str))
        .filter(|s| !s.is_empty())
        .map(|s| cut(&scrub(s)))
}

/// A short description of an error body (`error` / `message` of a JSON object), no raw body.
fn body_detail(status: u16, body: &Option<Value>) -> String {
    body.as_ref()
        .and_then(|v| text_field(v, &["error", "message", "detail"]))
        .unwrap_or_else(|| {
            reqwest::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("unexpected status")
                .to_string()
        })
}

/// The chain of `source()` messages of a transport error. reqwest mentions the URL, which may
/// hold credentials: callers pass the result through [`url_free`].
fn transport_detail(e: &reqwest::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let text = s.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        src = s.source();
    }
    cut(&parts.join(": "))
}

/// Removes reqwest's ` for url (...)`.
fn url_free(s: &str) -> String {
    match s.find(" for url (") {
        Some(i) => {
            let rest = &s[i..];
            match rest.find(')') {
                Some(j) => format!("{}{}", &s[..i], &rest[j + 1..]),
                None => s[..i].to_string(),
            }
        }
        None => s.to_string(),
    }
}

struct Answer {
    status: u16,
    body: Option<Value>,
}

enum Failure {
    Connect(String),
    Timeout,
    Other(String),
}

fn classify(e: &reqwest::Error) -> Failure {
    let detail = url_free(&transport_detail(e));
    if e.is_connect() {
        Failure::Connect(detail)
    } else if e.is_timeout() {
        Failure::Timeout
    } else {
        Failure::Other(detail)
    }
}

impl FacilitatorClient {
    /// A client for `base_url` (http or https; a trailing slash is ignored).
    pub fn new(base_url: &str, config: FacilitatorConfig) -> Result<Self, FacilitatorError> {
        let connect = config
            .verify_timeout
            .min(config.supported_timeout)
            .min(Duration::from_secs(5));
        let client = reqwest::Client::builder()
            .connect_timeout(connect)
            .user_agent(concat!("obol/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FacilitatorError::Unreachable {
                url: String::new(),
                detail: format!(
                    "cannot build HTTP client: {}",
                    url_free(&transport_detail(&e))
                ),
            })?;
        Self::with_client(client, base_url, config)
    }

    /// A client for `base_url` using an existing `reqwest::Client` (shared pools, test TLS).
    pub fn with_client(
        client: reqwest::Client,
        base_url: &str,
        config: FacilitatorConfig,
    ) -> Result<Self, FacilitatorError> {
        let bad = |detail: &str| FacilitatorError::InvalidUrl {
            url: if base_url.contains('@') {
                "(redacted)".to_string()
            } else {
                cut(base_url)
            },
            detail: detail.to_string(),
        };
        let trimmed = base_url.trim().trim_end_matches('/');
        let mut url = reqwest::Url::parse(trimmed).map_err(|_| bad("not a valid URL"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("the facilitator URL must be http:// or https://"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("the facilitator URL has no host"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("the facilitator URL must not have a query or fragment"));
        }
        if url.password().is_some() {
            let _ = url.set_password(Some("***"));
        }
        let shown = url.as_str().trim_end_matches('/').to_string();
        Ok(FacilitatorClient {
            client,
            base: trimmed.to_string(),
            shown,
            config,
        })
    }

    /// The base URL (without a trailing slash).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn endpoint(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }

    fn shown_endpoint(&self, path: &str) -> String {
        format!("{}/{path}", self.shown)
    }

    fn body(payload: &PaymentPayload, requirements: &Value) -> Value {
        json!({
            "x402Version": payload.version(),
            "paymentPayload": payload.to_json(),
            "paymentRequirements": requirements,
        })
    }

    /// Sends the request and reads the (JSON, if any) body, under `timeout` for the whole.
    async fn exchange(
        &self,
        request: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> Result<Answer, Failure> {
        let run = async {
            let mut response = request.send().await.map_err(|e| classify(&e))?;
            let status = response.status().as_u16();
            let mut bytes = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| classify(&e))? {
                if bytes.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(Failure::Other(format!(
                        "response body larger than {MAX_BODY_BYTES} bytes (HTTP {status})"
                    )));
                }
                bytes.extend_from_slice(&chunk);
            }
            let body = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .filter(Value::is_object);
            Ok(Answer { status, body })
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(r) => r,
            Err(_) => Err(Failure::Timeout),
        }
    }

    fn invalid(body: &Value, reason_keys: &[&str], message_keys: &[&str]) -> FacilitatorError {
        FacilitatorError::InvalidPayment {
            reason: text_field(body, reason_keys).unwrap_or_else(|| "unknown".to_string()),
            message: text_field(body, message_keys),
            payer: text_field(body, &["payer"]),
            transaction: text_field(body, &["transaction"]),
        }
    }

    fn failure_before_answer(
        &self,
        what: &'static str,
        path: &str,
        f: Failure,
        after: Duration,
    ) -> FacilitatorError {
        match f {
            Failure::Connect(detail) => FacilitatorError::Unreachable {
                url: self.shown_endpoint(path),
                detail,
            },
            Failure::Timeout => FacilitatorError::Timeout { what, after },
            Failure::Other(detail) => FacilitatorError::Transport { what, detail },
        }
    }

    /// `POST /verify`. `requirements` is the seller's own matching requirement (wire JSON).
    pub async fn verify(
        &self,
        payload: &PaymentPayload,
        requirements: &Value,
    ) -> Result<VerifyResponse, FacilitatorError> {
        let timeout = self.config.verify_timeout;
        let request = self
            .client
            .post(self.endpoint("verify"))
            .json(&Self::body(payload, requirements));
        let answer = self
            .exchange(request, timeout)
            .await
            .map_err(|f| self.failure_before_answer("verify", "verify", f, timeout))?;
        let status = answer.status;
        match answer.body {
            Some(body) => match body.get("isValid").and_then(Value::as_bool) {
                Some(true) => serde_json::from_value::<VerifyResponse>(body).map_err(|_| {
                    FacilitatorError::Facilitator {
                        status,
                        detail: "unreadable verify response".into(),
                    }
                }),
                Some(false) => Err(Self::invalid(
                    &body,
                    &["invalidReason", "error"],
                    &["invalidMessage", "invalidReasonDetails", "errorMessage"],
                )),
                None => Err(FacilitatorError::Facilitator {
                    status,
                    detail: if (200..300).contains(&status) {
                        "verify response without isValid".into()
                    } else {
                        body_detail(status, &Some(body))
                    },
                }),
            },
            None => Err(FacilitatorError::Facilitator {
                status,
                detail: if (200..300).contains(&status) {
                    "verify response is not a JSON object".into()
                } else {
                    body_detail(status, &None)
                },
            }),
        }
    }

    /// `POST /settle`. See [`FacilitatorError::SettlementUnknown`] for the unknown outcome.
    pub async fn settle(
        &self,
        payload: &PaymentPayload,
        requirements: &Value,
    ) -> Result<SettleResponse, FacilitatorError> {
        let timeout = self.config.settle_timeout;
        let request = self
            .client
            .post(self.endpoint("settle"))
            .json(&Self::body(payload, requirements));
        let answer = match self.exchange(request, timeout).await {
            Ok(a) => a,
            Err(Failure::Connect(detail)) => {
                return Err(FacilitatorError::Unreachable {
                    url: self.shown_endpoint("settle"),
                    detail,
                });
            }
            Err(Failure::Timeout) => {
                return Err(FacilitatorError::SettlementUnknown {
                    detail: format!("no answer within {timeout:?}"),
                });
            }
            Err(Failure::Other(detail)) => {
                return Err(FacilitatorError::SettlementUnknown {
                    detail: format!("connection failed after the request was sent: {detail}"),
                });
            }
        };
        let status = answer.status;
        let success = answer
            .body
            .as_ref()
            .and_then(|b| b.get("success"))
            .and_then(Value::as_bool);
        match (success, answer.body) {
            (Some(true), Some(body)) => {
                serde_json::from_value::<SettleResponse>(body).map_err(|_| {
                    FacilitatorError::SettlementUnknown {
                        detail: format!(
                            "unreadable settle response (HTTP {status}) with success:true"
                        ),
                    }
                })
            }
            (Some(false), Some(body)) => Err(Self::invalid(
                &body,
                &["errorReason", "error"],
                &["errorMessage", "invalidMessage"],
            )),
            (_, body) if status >= 500 || (200..300).contains(&status) => {
                Err(FacilitatorError::SettlementUnknown {
                    detail: format!(
                        "HTTP {status} without a settlement result: {}",
                        body_detail(status, &body)
                    ),
                })
            }
            (_, body) => Err(FacilitatorError::Facilitator {
                status,
                detail: body_detail(status, &body),
            }),
        }
    }

    /// `GET /supported`.
    pub async fn supported(&self) -> Result<SupportedResponse, FacilitatorError> {
        let timeout = self.config.supported_timeout;
        let request = self.client.get(self.endpoint("supported"));
        let answer = self
            .exchange(request, timeout)
            .await
            .map_err(|f| self.failure_before_answer("supported", "supported", f, timeout))?;
        let status = answer.status;
        match answer.body {
            Some(body) if (200..300).contains(&status) => {
                serde_json::from_value(body).map_err(|_| FacilitatorError::Facilitator {
                    status,
                    detail: "unreadable supported response".into(),
                })
            }
            body => Err(FacilitatorError::Facilitator {
                status,
                detail: if (200..300).contains(&status) {
                    "supported response is not a JSON object".into()
                } else {
                    body_detail(status, &body)
                },
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x402::wire::{Authorization, ExactEvmPayload, PaymentPayloadV2};
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    const SIG: &str = "0x2d6a7588d6acca505cbf0d9a4a227e0c52c6c34008c8e8986a1283259764173608a2ce6496642e377d6da8dbbf5836e9bd15092f9ecab05ded3d6293af148b571c";

    fn payload() -> PaymentPayload {
        PaymentPayload::V2(PaymentPayloadV2 {
            x402_version: 2,
            resource: None,
            accepted: json!({"scheme": "exact", "network": "eip155:84532"}),
            payload: ExactEvmPayload {
                signature: SIG.into(),
                authorization: Authorization {
                    from: "0x857b06519E91e3A54538791bDbb0E22373e36b66".into(),
                    to: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C".into(),
                    value: "10000".into(),
                    valid_after: "1740672089".into(),
                    valid_before: "1740672154".into(),
                    nonce: "0xf3746613c2d920b5fdabc0856f2aeb2d4f88ee6037b8cc5d04a71a4462f13480"
                        .into(),
                },
            },
            extensions: None,
        })
    }

    fn requirements() -> Value {
        json!({"scheme": "exact", "network": "eip155:84532", "amount": "10000"})
    }

    /// A one-shot HTTP server answering every connection with `status` and `body` after `delay`.
    /// Returns its base URL and the last request seen (head + body).
    async fn canned(
        status: u16,
        body: &'static str,
        delay: Duration,
    ) -> (String, Arc<Mutex<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(String::new()));
        let seen2 = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let seen = seen2.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut tmp = [0u8; 4096];
                    // read the head, then Content-Length bytes of body
                    loop {
                        let n = sock.read(&mut tmp).await.unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&tmp[..n]);
                        let text = String::from_utf8_lossy(&buf).to_string();
                        if let Some(end) = text.find("\r\n\r\n") {
                            let len = text[..end]
                                .lines()
                                .find_map(|l| {
                                    let (k, v) = l.split_once(':')?;
                                    k.eq_ignore_ascii_case("content-length")
                                        .then(|| v.trim().parse::<usize>().ok())?
                                })
                                .unwrap_or(0);
                            if buf.len() >= end + 4 + len {
                                break;
                            }
                        }
                    }
                    *seen.lock().unwrap() = String::from_utf8_lossy(&buf).to_string();
                    tokio::time::sleep(delay).await;
                    let reason = reqwest::StatusCode::from_u16(status)
                        .ok()
                        .and_then(|s| s.canonical_reason())
                        .unwrap_or("X");
                    let resp = format!(
                        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        (format!("http://{addr}/"), seen)
    }

    fn fast() -> FacilitatorConfig {
        FacilitatorConfig {
            verify_timeout: Duration::from_millis(300),
            settle_timeout: Duration::from_millis(300),
            supported_timeout: Duration::from_millis(300),
        }
    }

    fn client(url: &str) -> FacilitatorClient {
        FacilitatorClient::new(url, fast()).unwrap()
    }

    const NO_DELAY: Duration = Duration::ZERO;

    #[tokio::test]
    async fn verify_valid_and_request_shape() {
        let (url, seen) = canned(200, r#"{"isValid":true,"payer":"0x857b"}"#, NO_DELAY).await;
        let c = client(&url);
        assert_eq!(c.base_url(), url.trim_end_matches('/'));
        let r = c.verify(&payload(), &requirements()).await.unwrap();
        assert!(r.is_valid);
        assert_eq!(r.payer.as_deref(), Some("0x857b"));
        let req = seen.lock().unwrap().clone();
        assert!(req.starts_with("POST /verify HTTP/1.1"), "{req}");
        let body: Value = serde_json::from_str(&req[req.find("\r\n\r\n").unwrap() + 4..]).unwrap();
        assert_eq!(body["x402Version"], 2);
        assert_eq!(body["paymentPayload"], payload().to_json());
        assert_eq!(body["paymentRequirements"], requirements());
    }

    #[tokio::test]
    async fn verify_invalid_on_200_and_400() {
        let (url, _) = canned(
            200,
            r#"{"isValid":false,"invalidReason":"insufficient_funds","invalidMessage":"low","payer":"0x857b"}"#,
            NO_DELAY,
        )
        .await;
        let err = client(&url)
            .verify(&payload(), &requirements())
            .await
            .unwrap_err();
        assert_eq!(
            err,
            FacilitatorError::InvalidPayment {
                reason: "insufficient_funds".into(),
                message: Some("low".into()),
                payer: Some("0x857b".into()),
                transaction: None,
            }
        );
        assert!(!err.is_retriable());

        let (url, _) = canned(
            400,
            r#"{"isValid":false,"invalidReason":"invalid_signature","invalidReasonDetails":"bad sig","payer":""}"#,
            NO_DELAY,
        )
        .await;
        let err = client(&url)
            .verify(&payload(), &requirements())
            .await
            .unwrap_err();
        assert_eq!(
            err,
            FacilitatorError::InvalidPayment {
                reason: "invalid_signature".into(),
                message: Some("bad sig".into()),
                payer: None,
                transaction: None,
            }
        );
    }

    #[tokio::test]
    async fn verify_error_statuses() {
        let (url, _) = canned(502, "", NO_DELAY).await;
        let err = client(&url)
            .verify(&payload(), &requirements())
            .await
            .unwrap_err();
        assert!(
            matches!(err, FacilitatorError::Facilitator { status: 502, .. }),
            "{err}"
        );
        assert!(err.is_retriable());
        let (url, _) = canned(200, "not json", NO_DELAY).await;
        let err = client(&url)
            .verify(&payload(), &requirements())
            .await
            .unwrap_err();
        assert!(
            matches!(err, FacilitatorError::Facilitator { status: 200, .. }),
            "{err}"
        );
        let (url, _) = canned(404, r#"{"error":"no such route"}"#, NO_DELAY).await;
        let err = client(&url)
            .verify(&payload(), &requirements())
            .await
            .unwrap_err();
        assert_eq!(
            err,
            FacilitatorError::Facilitator {
                status: 404,
                detail: "no such route".into()
            }
        );
        assert!(!err.is_retriable());
    }

    #[tokio::test]
    async fn settle_success_and_failure() {
        let (url, seen) = canned(
            200,
            r#"{"success":true,"payer":"0x857b","transaction":"0xfeed","network":"eip155:84532"}"#,
            NO_DELAY,
        )
        .await;
        let r = client(&url)
            .settle(&payload(), &requirements())
            .await
            .unwrap();
        assert!(r.success);
        assert_eq!(r.transaction, "0xfeed");
        assert!(seen.lock().unwrap().starts_with("POST /settle "));

        let (url, _) = canned(
            500,
            r#"{"success":false,"network":"","transaction":"0xdead","errorReason":"transaction_failed","errorMessage":"reverted","payer":""}"#,
            NO_DELAY,
        )
        .await;
        let err = client(&url)
            .settle(&payload(), &requirements())
            .await
            .unwrap_err();
        assert_eq!(
            err,
            FacilitatorError::InvalidPayment {
                reason: "transaction_failed".into(),
                message: Some("reverted".into()),
                payer: None,
                transaction: Some("0xdead".into()),
            }
        );
    }

    #[tokio::test]
    async fn settle_500_without_body_is_unknown() {
        let (url, _) = canned(500, "", NO_DELAY).await;
        let err = client(&url)
            .settle(&payload(), &requirements())
            .await
            .unwrap_err();
        assert!(
            matches!(err, FacilitatorError::SettlementUnknown { .. }),
            "{err}"
        );
        assert!(err.is_retriable());
        // a 4xx without a result: the facilitator refused the request itself
        let (url, _) = canned(400, "", NO_DELAY).await;
        let err = client(&url)
            .settle(&payload(), &requirements())
            .await
            .unwrap_err();
        assert!(
            matches!(err, FacilitatorError::Facilitator { status: 400, .. }),
            "{err}"
        );
        // a 200 we cannot read: money may have moved
        let (url, _) = canned(200, "<html>", NO_DELAY).await;
        let err = client(&url)
            .settle(&payload(), &requirements())
            .await
            .unwrap_err();
        assert!(
            matches!(err, FacilitatorError::SettlementUnknown { .. }),
            "{err}"
        );
    }

    async fn refused_url() -> String {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn refused_port_is_unreachable() {
        let url = refused_url().await;
        let c = client(&url);
        let err = c.verify(&payload(), &requirements()).await.unwrap_err();
        assert!(matches!(err, FacilitatorError::Unreachable { .. }), "{err}");
        assert!(err.is_retriable());
        let err = c.settle(&payload(), &requirements()).await.unwrap_err();
        match &err {
            FacilitatorError::Unreachable { url: u, .. } => assert_eq!(u, &format!("{url}/settle")),
            other => panic!("unexpected {other}"),
        }
        let err = c.supported().await.unwrap_err();
        assert!(matches!(err, FacilitatorError::Unreachable { .. }), "{err}");
    }

    #[tokio::test]
    async fn slow_server_times_out() {
        let (url, _) = canned(200, r#"{"isValid":true}"#, Duration::from_secs(3)).await;
        let c = client(&url);
        let err = c.verify(&payload(), &requirements()).await.unwrap_err();
        assert_eq!(
            err,
            FacilitatorError::Timeout {
                what: "verify",
                after: Duration::from_millis(300)
            }
        );
        let err = c.settle(&payload(), &requirements()).await.unwrap_err();
        assert!(
            matches!(err, FacilitatorError::SettlementUnknown { .. }),
            "{err}"
        );
        let err = c.supported().await.unwrap_err();
        assert!(
            matches!(
                err,
                FacilitatorError::Timeout {
                    what: "supported",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[tokio::test]
    async fn supported_parses() {
        let (url, seen) = canned(
            200,
            r#"{"kinds":[{"x402Version":2,"scheme":"exact","network":"eip155:84532"}],"signers":{"eip155:*":["0x1"]}}"#,
            NO_DELAY,
        )
        .await;
        let s = client(&url).supported().await.unwrap();
        assert_eq!(s.kinds.len(), 1);
        assert_eq!(s.kinds[0].network, "eip155:84532");
        assert!(seen.lock().unwrap().starts_with("GET /supported "));
        let (url, _) = canned(429, "", NO_DELAY).await;
        let err = client(&url).supported().await.unwrap_err();
        assert!(matches!(
            err,
            FacilitatorError::Facilitator { status: 429, .. }
        ));
        assert!(err.is_retriable());
    }

    #[tokio::test]
    async fn errors_never_carry_the_signature() {
        // a facilitator that echoes the payload in its error
        let body: &'static str = Box::leak(
            format!(r#"{{"isValid":false,"invalidReason":"bad","invalidMessage":"got {SIG}"}}"#)
                .into_boxed_str(),
        );
        let (url, _) = canned(400, body, NO_DELAY).await;
        let err = client(&url)
            .verify(&payload(), &requirements())
            .await
            .unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(!text.contains(&SIG[2..40]), "{text}");
    }

    #[test]
    fn url_validation() {
        let cfg = FacilitatorConfig::default;
        assert!(FacilitatorClient::new("https://x402.org/facilitator/", cfg()).is_ok());
        assert_eq!(
            FacilitatorClient::new("https://x402.org/facilitator/", cfg())
                .unwrap()
                .base_url(),
            "https://x402.org/facilitator"
        );
        for bad in [
            "",
            "x402.org",
            "ftp://x402.org",
            "https://",
            "http://h/?q=1",
            "not a url",
        ] {
            assert!(
                matches!(
                    FacilitatorClient::new(bad, cfg()),
                    Err(FacilitatorError::InvalidUrl { .. })
                ),
                "{bad:?}"
            );
        }
        let c = FacilitatorClient::new("https://user:hunter2@fac.example", cfg()).unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(
            c.shown_endpoint("verify"),
            "https://user:***@fac.example/verify"
        );
    }

    #[test]
    fn default_timeouts() {
        let c = FacilitatorConfig::default();
        assert_eq!(c.verify_timeout, Duration::from_secs(5));
        assert_eq!(c.settle_timeout, Duration::from_secs(60));
        assert_eq!(c.supported_timeout, Duration::from_secs(5));
    }

    #[test]
    fn scrub_and_url_free() {
        assert_eq!(scrub(&format!("sig {SIG} end")), "sig 0x… end");
        assert_eq!(scrub("nonce 0xf374"), "nonce 0xf374");
        assert_eq!(
            url_free("error sending request for url (http://u:p@h/verify): refused"),
            "error sending request: refused"
        );
    }
}
