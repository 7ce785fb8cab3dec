//! How one request ended, recorded once: the metrics of its offer and one log line, both from
//! the final [`Outcome`], inside the request's span (which carries the offer).
//!
//! The phases ([`super::admit`], [`super::gate`], the proxy's forwarding) never touch a
//! counter or write a request log line themselves; they return an [`Answer`]: the response
//! and what it means. The handler records it ([`Answer::finish`]) and sends the response.
//!
//! | outcome | counters of the offer (`obol_x402_verifier_…`) | log level |
//! |---|---|---|
//! | `PaymentRequired` | `requests`, `payment_required` | debug |
//! | `PaymentRefused` | `requests`, `payment_failed` (+ `payment_verified` if it had passed `/verify`) | info |
//! | `NotServed` | `requests` (+ `payment_verified`) | warn |
//! | `GrantedUnpaid` | `requests`, `payment_verified`, `verify_only_grants` | info |
//! | `Settled` | `requests`, `payment_verified`, `charged_requests`, `charged_amount` | info |
//! | `SettlementUnknown` | `requests`, `payment_verified`, `settlement_unknown` | error |
//! | `Free`, `NotAdmitted`, anything on a free route | none | debug |
//!
//! Only `Settled` is revenue: money moved to the offer's `payTo`.

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;

use alloy_primitives::{Address, U256};
use axum::response::{IntoResponse, Response};

use tracing::Instrument as _;

use super::refusal::Refusal;
use super::routes::LiveRoute;
use crate::offers::Gate;

/// What one request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Refused before a payment was looked at (readiness, path, route, pause).
    NotAdmitted { reason: &'static str },
    /// A declared free route, served without payment.
    Free,
    /// No payment presented: answered 402 with the route's requirements.
    PaymentRequired,
    /// A payment was presented and refused (by a local check, the replay guard, the
    /// facilitator's `/verify` or its `/settle`); nothing moved.
    PaymentRefused {
        reason: Cow<'static, str>,
        payer: Option<Address>,
        /// It had passed `/verify` (a settlement was refused).
        verified: bool,
        detail: Option<String>,
    },
    /// The payment was not refused, but the request was not served as paid: a facilitator or
    /// the upstream was unavailable, or the upstream answered without success. Nothing was
    /// charged; the buyer may retry with the same payment.
    NotServed {
        reason: Cow<'static, str>,
        payer: Option<Address>,
        verified: bool,
        detail: Option<String>,
    },
    /// Verify-only: access granted, no money moved.
    GrantedUnpaid { payer: Address, amount: U256 },
    /// Settled: `amount` moved from `payer` to the offer's `payTo`.
    Settled {
        payer: Address,
        amount: U256,
        transaction: String,
    },
    /// A settlement was attempted and its outcome is unknown; the buyer retries the same header.
    SettlementUnknown { payer: Address, detail: String },
}

impl Outcome {
    /// The outcome's name in the log line.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::NotAdmitted { .. } => "not_admitted",
            Outcome::Free => "free",
            Outcome::PaymentRequired => "payment_required",
            Outcome::PaymentRefused { .. } => "payment_refused",
            Outcome::NotServed { .. } => "not_served",
            Outcome::GrantedUnpaid { .. } => "granted_unpaid",
            Outcome::Settled { .. } => "settled",
            Outcome::SettlementUnknown { .. } => "settlement_unknown",
        }
    }

    fn verified(&self) -> bool {
        match self {
            Outcome::PaymentRefused { verified, .. } | Outcome::NotServed { verified, .. } => {
                *verified
            }
            Outcome::GrantedUnpaid { .. }
            | Outcome::Settled { .. }
            | Outcome::SettlementUnknown { .. } => true,
            _ => false,
        }
    }

    fn payer(&self) -> Option<Address> {
        match self {
            Outcome::PaymentRefused { payer, .. } | Outcome::NotServed { payer, .. } => *payer,
            Outcome::GrantedUnpaid { payer, .. }
            | Outcome::Settled { payer, .. }
            | Outcome::SettlementUnknown { payer, .. } => Some(*payer),
            _ => None,
        }
    }

    /// Adds this outcome to the counters of the offer `live` belongs to (a free route's
    /// requests are not counted).
    fn count(&self, live: &LiveRoute) {
        let m = &live.series;
        if matches!(self, Outcome::NotAdmitted { .. } | Outcome::Free)
            || live.route.gate == Gate::Free
        {
            return;
        }
        m.request();
        if self.verified() {
            m.verified();
        }
        match self {
            Outcome::PaymentRequired => m.required(),
            Outcome::PaymentRefused { .. } => m.failed(),
            Outcome::GrantedUnpaid { .. } => m.granted_unpaid(),
            Outcome::Settled { amount, .. } => m.charged(*amount),
            Outcome::SettlementUnknown { .. } => m.settlement_unknown(),
            _ => {}
        }
    }

    /// The request's one log line.
    fn log(&self, live: Option<&LiveRoute>) {
        let offer = live.map_or("", |l| l.route.display_name());
        let outcome = self.name();
        let payer = self.payer().map(|p| p.to_checksum(None));
        let payer = payer.as_deref().unwrap_or("");
        match self {
            Outcome::NotAdmitted { reason } => {
                tracing::debug!(outcome, reason, "request refused")
            }
            Outcome::Free => tracing::debug!(offer, outcome, "free route served"),
            Outcome::PaymentRequired => tracing::debug!(offer, outcome, "payment required"),
            Outcome::PaymentRefused { reason, detail, .. } => tracing::info!(
                offer,
                outcome,
                %reason,
                payer,
                detail = detail.as_deref().unwrap_or(""),
                "payment refused"
            ),
            Outcome::NotServed { reason, detail, .. } => tracing::warn!(
                offer,
                outcome,
                %reason,
                payer,
                detail = detail.as_deref().unwrap_or(""),
                "not served, nothing charged"
            ),
            Outcome::GrantedUnpaid { amount, .. } => tracing::info!(
                offer,
                outcome,
                payer,
                %amount,
                "access granted without settlement (verify-only)"
            ),
            Outcome::Settled {
                amount,
                transaction,
                ..
            } => tracing::info!(offer, outcome, payer, %amount, transaction, "payment settled"),
            Outcome::SettlementUnknown { detail, .. } => tracing::error!(
                offer,
                outcome,
                payer,
                detail,
                "settlement outcome unknown, the payment may have settled; the buyer retries the same payment"
            ),
        }
    }
}

/// A response and the outcome it stands for.
pub struct Answer {
    pub response: Response,
    pub outcome: Outcome,
}

impl Answer {
    pub fn new(response: Response, outcome: Outcome) -> Answer {
        Answer { response, outcome }
    }

    /// A refusal whose outcome is `outcome`.
    pub fn refused(refusal: Refusal, outcome: Outcome) -> Answer {
        Answer::new(refusal.into_response(), outcome)
    }

    /// A refusal of a payment (its reason is the refusal's).
    pub fn payment_refused(refusal: Refusal, payer: Option<Address>, verified: bool) -> Answer {
        let reason = Cow::Borrowed(refusal.reason());
        Answer::refused(
            refusal,
            Outcome::PaymentRefused {
                reason,
                payer,
                verified,
                detail: None,
            },
        )
    }

    /// Records the outcome (metrics of `live`'s offer, one log line) and returns the response.
    pub fn finish(self, live: Option<&LiveRoute>) -> Response {
        if let Some(live) = live {
            self.outcome.count(live);
        }
        self.outcome.log(live);
        self.response
    }
}

/// A refusal before admission: no offer, nothing counted.
impl From<Refusal> for Answer {
    fn from(r: Refusal) -> Answer {
        let reason = r.reason();
        Answer::refused(r, Outcome::NotAdmitted { reason })
    }
}

/// What a phase hands back to its handler: the answer, and the route it was for (none when the
/// request was refused before admission).
pub struct Handled {
    pub answer: Answer,
    pub live: Option<Arc<LiveRoute>>,
}

impl Handled {
    pub fn new(answer: Answer, live: &Arc<LiveRoute>) -> Handled {
        Handled {
            answer,
            live: Some(Arc::clone(live)),
        }
    }
}

impl From<Refusal> for Handled {
    fn from(r: Refusal) -> Handled {
        Handled {
            answer: r.into(),
            live: None,
        }
    }
}

/// Runs one request's phases (`handle`) inside a span named `mode` that carries the offer once
/// it is known ([`record_offer`]), then records the outcome and returns the response.
pub async fn in_request_span<F>(mode: &'static str, handle: F) -> Response
where
    F: Future<Output = Handled>,
{
    let span = tracing::info_span!("request", mode, offer = tracing::field::Empty);
    async move {
        let handled = handle.await;
        handled.answer.finish(handled.live.as_deref())
    }
    .instrument(span)
    .await
}

/// Names the offer in the current request span.
pub fn record_offer(live: &LiveRoute) {
    tracing::Span::current().record("offer", tracing::field::display(live.route.display_name()));
}
