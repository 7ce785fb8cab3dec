//! One paid HTTP request, in three steps the caller runs in order:
//!
//! 1. [`probe`] the URL without payment and read the 402, following redirects only within the
//!    origin the user named (a redirect to another origin is refused before anything is
//!    signed: neither the user's headers nor a payment ever go to a host the user did not name);
//! 2. pick an option with the [`SpendingPolicy`](super::policy::SpendingPolicy) and
//!    [`sign_payment`] for it (fresh random nonce, `validAfter = now − 600`,
//!    `validBefore = now + maxTimeoutSeconds`);
//! 3. [`send_paid`]: send with the header of the 402's version, never following a redirect with
//!    the payment attached; after a timeout or a 5xx, resend the **same** header (never a new
//!    signature) a bounded number of times. Every sent payment is written to the ledger.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alloy_primitives::{Address, B256, U256};
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::ledger::{Ledger, LedgerEntry, PaymentStatus, now_rfc3339};
use super::policy::Choice;
use super::wallet::{Wallet, WalletError};
use crate::x402::codec::{self, DecodeError};
use crate::x402::eip3009::{self, TransferWithAuthorization};
use crate::x402::wire::{
    Authorization, ExactEvmPayload, PaymentPayload, PaymentRequired, SettleResponse, parse_402,
    read_settlement,
};

/// `validAfter` is set this far in the past to absorb clock skew and the strict on-chain `>`.
pub const VALID_AFTER_SKEW: u64 = 600;

/// What to request.
#[derive(Debug, Clone)]
pub struct PayRequest {
    pub url: String,
    pub method: reqwest::Method,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Option<Bytes>,
    /// Time limit for each exchange with the seller.
    pub timeout: Duration,
    /// How often to resend the same payment after a timeout or 5xx.
    pub retries: u32,
}

/// A response from the seller.
#[derive(Debug)]
pub struct SellerResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// What the probe found.
#[derive(Debug)]
pub enum Probe {
    /// The seller answered without asking for payment.
    Free(SellerResponse),
    /// The seller asked for payment; `url` is where (after the probe's redirects).
    PaymentRequired {
        required: PaymentRequired,
        url: String,
    },
}

/// A signed payment, ready to send.
#[derive(Debug, Clone)]
pub struct SignedPayment {
    pub choice: Choice,
    pub payer: Address,
    pub nonce: B256,
    pub valid_before: u64,
    pub header_name: &'static str,
    /// The encoded header value. Holds the signature: never log it.
    header_value: String,
}

/// The seller's answer to a payment it accepted.
#[derive(Debug)]
pub struct Paid {
    pub response: SellerResponse,
    pub payment: SignedPayment,
    pub settlement: Option<SettleResponse>,
    pub entry: LedgerEntry,
}

#[derive(Debug, thiserror::Error)]
pub enum PayError {
    #[error("cannot reach the seller at {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("the seller answered HTTP {status} instead of 402 Payment Required")]
    NotPaymentRequired { status: u16, body: Bytes },
    #[error("the seller's 402 is malformed: {0}")]
    Malformed402(#[from] DecodeError),
    #[error(transparent)]
    Wallet(#[from] WalletError),
    #[error("the seller refused the payment (HTTP {status}): {reason}")]
    Refused {
        status: u16,
        reason: String,
        transaction: Option<String>,
    },
    #[error("the outcome of the payment is unknown: {detail}")]
    Unknown {
        detail: String,
        transaction: Option<String>,
    },
    #[error(
        "the seller redirected the paid request (HTTP {status}) to {location}; the payment was not forwarded"
    )]
    Redirected { status: u16, location: String },
    #[error(
        "{url} redirected (HTTP {status}) to {location}, another origin than the one you named"
    )]
    CrossOriginRedirect {
        url: String,
        status: u16,
        location: String,
    },
    #[error("{url} redirected more than {MAX_REDIRECTS} times")]
    TooManyRedirects { url: String },
    #[error("cannot write the payment ledger {path}: {source}")]
    Ledger {
        path: String,
        source: std::io::Error,
    },
}

impl PayError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            PayError::Unreachable { .. } => {
                Some("check the URL and that the seller is up; nothing was signed".into())
            }
            PayError::NotPaymentRequired { .. } | PayError::Malformed402(_) => {
                Some("this URL does not sell with x402; nothing was signed".into())
            }
            PayError::CrossOriginRedirect { .. } => Some(
                "obol sends your headers and payments only to the origin you named; if you trust \
                 the new location, run the command with that URL; nothing was signed or sent there"
                    .into(),
            ),
            PayError::TooManyRedirects { .. } => {
                Some("check the URL: it redirects in a loop; nothing was signed".into())
            }
            PayError::Refused {
                transaction: Some(tx),
                ..
            }
            | PayError::Unknown {
                transaction: Some(tx),
                ..
            } => Some(format!(
                "a settlement transaction {tx} was reported: check it on chain before paying again"
            )),
            PayError::Refused { .. } => Some(
                "no settlement was reported, but the seller holds the signed authorization and \
                 could still settle it until it expires (validBefore in the ledger, \
                 $XDG_STATE_HOME/obol/payments.jsonl); it is recorded there as refused"
                    .into(),
            ),
            PayError::Unknown { .. } => Some(
                "the payment may still settle: check the ledger and the chain before paying again"
                    .into(),
            ),
            _ => None,
        }
    }
}

/// An HTTP client for paying: it never follows redirects.
pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .user_agent(concat!("obol/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// Most redirects the probe follows (all within the named origin).
pub const MAX_REDIRECTS: usize = 5;

/// A client that follows at most [`MAX_REDIRECTS`] redirects, and only to `origin` (scheme,
/// host and port): a redirect anywhere else is not followed and comes back as the 3xx answer.
fn probe_client(timeout: Duration, origin: reqwest::Url) -> reqwest::Client {
    let origin = origin.origin();
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.url().origin() != origin {
            attempt.stop()
        } else if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error(TooManyRedirects)
        } else {
            attempt.follow()
        }
    });
    reqwest::Client::builder()
        .redirect(policy)
        .timeout(timeout)
        .user_agent(concat!("obol/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

fn build(client: &reqwest::Client, url: &str, req: &PayRequest) -> reqwest::RequestBuilder {
    let mut builder = client.request(req.method.clone(), url);
    for (name, value) in &req.headers {
        builder = builder.header(name, value);
    }
    if let Some(body) = &req.body {
        builder = builder.body(body.clone());
    }
    builder
}

async fn read(resp: reqwest::Response) -> Result<SellerResponse, reqwest::Error> {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.bytes().await?;
    Ok(SellerResponse {
        status,
        headers,
        body,
    })
}

fn describe(err: &reqwest::Error) -> String {
    let what = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "connection failed"
    } else if err.is_body() || err.is_decode() {
        "the response broke off"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(err);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        what.to_owned()
    } else {
        format!("{what} ({detail})")
    }
}

#[derive(Debug)]
struct TooManyRedirects;

impl std::fmt::Display for TooManyRedirects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "too many redirects")
    }
}

impl std::error::Error for TooManyRedirects {}

/// Step 1: requests the URL without payment and reads the 402 (v2 header first, then a v1 body).
/// Redirects are followed only within the URL's origin; one to another origin is
/// [`PayError::CrossOriginRedirect`], and nothing was sent there.
pub async fn probe(req: &PayRequest) -> Result<Probe, PayError> {
    let named = reqwest::Url::parse(&req.url).map_err(|e| PayError::Unreachable {
        url: req.url.clone(),
        detail: e.to_string(),
    })?;
    let resp = build(&probe_client(req.timeout, named.clone()), &req.url, req)
        .send()
        .await
        .map_err(|e| {
            if e.is_redirect() {
                PayError::TooManyRedirects {
                    url: req.url.clone(),
                }
            } else {
                PayError::Unreachable {
                    url: req.url.clone(),
                    detail: describe(&e),
                }
            }
        })?;
    let final_url = resp.url().to_string();
    if resp.status().is_redirection()
        && let Some(location) = resp.headers().get(reqwest::header::LOCATION)
    {
        let location = location.to_str().unwrap_or("(not text)");
        let same_origin = resp
            .url()
            .join(location)
            .is_ok_and(|t| t.origin() == named.origin());
        if !same_origin {
            return Err(PayError::CrossOriginRedirect {
                url: req.url.clone(),
                status: resp.status().as_u16(),
                location: location.chars().take(200).collect(),
            });
        }
    }
    let response = read(resp).await.map_err(|e| PayError::Unreachable {
        url: req.url.clone(),
        detail: describe(&e),
    })?;
    if response.status != 402 {
        if (200..300).contains(&response.status) {
            return Ok(Probe::Free(response));
        }
        return Err(PayError::NotPaymentRequired {
            status: response.status,
            body: response.body,
        });
    }
    let header = response
        .headers
        .get(codec::PAYMENT_REQUIRED)
        .and_then(|v| v.to_str().ok());
    let required = parse_402(header, &response.body)?;
    Ok(Probe::PaymentRequired {
        required,
        url: final_url,
    })
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Step 2: signs an EIP-3009 authorization for the chosen option with the registry's domain
/// for that network's asset (never a domain the 402 names alone).
pub async fn sign_payment(
    required: &PaymentRequired,
    choice: &Choice,
    wallet: &Wallet,
) -> Result<SignedPayment, PayError> {
    let now = unix_now();
    let nonce = B256::from(rand::random::<[u8; 32]>());
    let valid_after = now.saturating_sub(VALID_AFTER_SKEW);
    // The policy capped the window (--max-timeout); saturating all the same, never wrapping.
    let valid_before = now.saturating_add(choice.requirement.max_timeout_seconds.max(1));
    let payer = wallet.address();
    let auth = TransferWithAuthorization {
        from: payer,
        to: choice.pay_to,
        value: choice.amount,
        validAfter: U256::from(valid_after),
        validBefore: U256::from(valid_before),
        nonce,
    };
    let domain = eip3009::domain(
        &choice.asset.eip712_name,
        &choice.asset.eip712_version,
        choice.network.chain_id,
        choice.asset.address,
    );
    let signature = wallet.sign_transfer(&auth, &domain).await?;
    let payload = ExactEvmPayload {
        signature: format!("0x{}", alloy_primitives::hex::encode(signature)),
        authorization: Authorization {
            from: payer.to_string(),
            to: choice.pay_to.to_string(),
            value: choice.amount.to_string(),
            valid_after: valid_after.to_string(),
            valid_before: valid_before.to_string(),
            nonce: nonce.to_string(),
        },
    };
    let payment = PaymentPayload::build(required, &choice.requirement, payload);
    Ok(SignedPayment {
        choice: choice.clone(),
        payer,
        nonce,
        valid_before,
        header_name: payment.header_name(),
        header_value: payment.to_header(),
    })
}

/// Step 3: sends the paid request, resending the same header after a timeout or 5xx, and
/// records the outcome in the ledger. `on_retry` is told about each resend.
pub async fn send_paid(
    req: &PayRequest,
    url: &str,
    payment: SignedPayment,
    ledger: &Ledger,
    on_retry: &(dyn Fn(u32, &str) + Sync),
) -> Result<Paid, PayError> {
    let client = client(req.timeout);
    let mut attempt = 0u32;
    let outcome = loop {
        let result = build(&client, url, req)
            .header(payment.header_name, &payment.header_value)
            .send()
            .await;
        let response = match result {
            Ok(resp) => read(resp).await,
            Err(e) => Err(e),
        };
        let retry_reason = match &response {
            Ok(r) if r.status >= 500 => format!("HTTP {}", r.status),
            Ok(_) => break response,
            Err(e) if e.is_connect() && attempt == 0 => {
                // Nothing reached the seller: safe to report as unreachable.
                break response;
            }
            Err(e) => describe(e),
        };
        let still_valid = unix_now() + 2 < payment.valid_before;
        if attempt >= req.retries || !still_valid {
            break response;
        }
        attempt += 1;
        on_retry(attempt, &retry_reason);
        tokio::time::sleep(Duration::from_secs(1 << (attempt - 1).min(4))).await;
    };
    let entry_for = |status: PaymentStatus,
                     http_status: Option<u16>,
                     transaction: Option<String>,
                     reason: Option<String>| LedgerEntry {
        time: now_rfc3339(),
        url: url.to_owned(),
        method: req.method.to_string(),
        network: payment.choice.network.caip2.clone(),
        asset: payment.choice.asset.address.to_string(),
        symbol: payment.choice.asset.symbol.clone(),
        pay_to: payment.choice.pay_to.to_string(),
        payer: payment.payer.to_string(),
        amount: payment.choice.amount.to_string(),
        amount_decimal: payment.choice.amount_decimal(),
        nonce: payment.nonce.to_string(),
        valid_before: payment.valid_before,
        status,
        http_status,
        transaction,
        reason,
    };
    let record = |entry: &LedgerEntry| {
        ledger.append(entry).map_err(|source| PayError::Ledger {
            path: ledger.path().display().to_string(),
            source,
        })
    };

    let response = match outcome {
        Ok(r) => r,
        Err(e) => {
            let detail = describe(&e);
            if e.is_connect() && attempt == 0 {
                // The payment never left this machine.
                return Err(PayError::Unreachable {
                    url: url.to_owned(),
                    detail,
                });
            }
            record(&entry_for(
                PaymentStatus::Unknown,
                None,
                None,
                Some(detail.clone()),
            ))?;
            return Err(PayError::Unknown {
                detail: format!("{detail} after {} attempt(s)", attempt + 1),
                transaction: None,
            });
        }
    };
    let settlement = read_settlement(|name| {
        response
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    })
    .and_then(Result::ok);
    let transaction = settlement
        .as_ref()
        .map(|s| s.transaction.clone())
        .filter(|t| !t.is_empty());
    let status = response.status;

    if (200..300).contains(&status) {
        let ledger_status = match &settlement {
            Some(s) if s.success => PaymentStatus::Settled,
            Some(_) => PaymentStatus::Unknown,
            None => PaymentStatus::Accepted,
        };
        let entry = entry_for(ledger_status, Some(status), transaction, None);
        record(&entry)?;
        return Ok(Paid {
            response,
            payment,
            settlement,
            entry,
        });
    }
    if (300..400).contains(&status) {
        let location = response
            .headers
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("(no Location)")
            .to_owned();
        record(&entry_for(
            PaymentStatus::Unknown,
            Some(status),
            transaction,
            Some(format!("redirected to {location}")),
        ))?;
        return Err(PayError::Redirected { status, location });
    }
    if status >= 500 {
        let reason = refusal_reason(&response, settlement.as_ref());
        record(&entry_for(
            PaymentStatus::Unknown,
            Some(status),
            transaction.clone(),
            Some(reason.clone()),
        ))?;
        return Err(PayError::Unknown {
            detail: format!(
                "the seller answered HTTP {status} after {} attempt(s): {reason}",
                attempt + 1
            ),
            transaction,
        });
    }
    let reason = refusal_reason(&response, settlement.as_ref());
    record(&entry_for(
        PaymentStatus::Refused,
        Some(status),
        transaction.clone(),
        Some(reason.clone()),
    ))?;
    Err(PayError::Refused {
        status,
        reason,
        transaction,
    })
}

/// The most specific reason a seller gave: the receipt's `errorReason`, the 402's `error`,
/// a JSON body's `reason`/`error`, or a short text body.
fn refusal_reason(response: &SellerResponse, settlement: Option<&SettleResponse>) -> String {
    if let Some(reason) = settlement.and_then(|s| s.error_reason.clone()) {
        return reason;
    }
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(&response.body) {
        for key in ["reason", "invalidReason", "errorReason", "error"] {
            if let Some(text) = json.get(key).and_then(|v| v.as_str())
                && !text.is_empty()
            {
                return text.to_owned();
            }
        }
    }
    if let Some(header) = response
        .headers
        .get(codec::PAYMENT_REQUIRED)
        .and_then(|v| v.to_str().ok())
        && let Ok(PaymentRequired::V2(p)) = parse_402(Some(header), b"")
        && let Some(err) = p.error
    {
        return err;
    }
    let text = String::from_utf8_lossy(&response.body);
    let text = text.trim();
    if text.is_empty() || text.len() > 200 {
        "no reason given".to_owned()
    } else {
        text.to_owned()
    }
}
