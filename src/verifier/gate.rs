//! The payment gate: everything between "this path is a paid route" and "serve it".
//!
//! Order of checks (cheap and local first, so a bad payment never reaches the facilitator):
//! 1. payment header present (`PAYMENT-SIGNATURE`, else `X-PAYMENT`)  — else 402;
//! 2. it decodes (base64 JSON of a v1 or v2 payment)                  — else 400;
//! 3. it answers this route's requirement (v2 `accepted`: scheme, network, amount, asset,
//!    payTo; v1: scheme and network)                                   — else 402;
//! 4. local EIP-3009 checks: signature, recipient, exact amount, time window — else 402;
//! 5. the window fits the payment-state store's retention           — else 402;
//! 6. claim of (chain, asset, from, nonce) in the payment-state store — else 409 (store
//!    unreachable: 503, nothing granted);
//! 7. facilitator `/verify`: unreachable/timeout/5xx → 503 (retriable), invalid → 402.
//!
//! [`settle`] then turns a verified payment into a receipt, or into the right refusal.
//!
//! The claim binds the authorization to this exact payment header, route and requirement
//! ([`Binding`]): only that payment can resume a settlement whose outcome was unknown, and a
//! "nonce already used" answer on such a retry is a grant only when the chain shows the nonce
//! was used by the transfer this payment authorized (to this route's `payTo`, its full price).

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use alloy_primitives::Address;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use serde_json::Value;

use super::AppState;
use super::outcome::{Answer, Outcome};
use super::refusal::Refusal;
use super::replay::{Binding, ReplayKey};
use super::respond::{Style, payment_required, requirement_v1, unpaid, wants_html};
use super::routes::{LiveRoute, RouteTable};
use super::store::{Claim, ClaimError, MAX_RETENTION_SECS};
use crate::offers::Route;
use crate::x402::chain;
use crate::x402::codec::{PAYMENT_SIGNATURE, X_PAYMENT};
use crate::x402::eip3009::{self, Expected};
use crate::x402::facilitator::FacilitatorError;
use crate::x402::wire::{PaymentPayload, SettleResponse};

/// `X-Payment-Payer`: the verified payer, set on granted requests (upstream / Traefik).
pub const X_PAYMENT_PAYER: &str = "x-payment-payer";

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The verifier's one clock for time checks (authorization windows, replay expiry). Tests
/// move it with [`Clock::advance`] to drive expiry.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset: Arc<AtomicI64>,
}

impl Clock {
    /// Unix seconds, as this verifier sees them.
    pub fn now(&self) -> u64 {
        unix_now().saturating_add_signed(self.offset.load(Ordering::Relaxed))
    }

    /// Moves this clock (and every copy of it) by `secs`.
    pub fn advance(&self, secs: i64) {
        self.offset.fetch_add(secs, Ordering::Relaxed);
    }
}

/// The outcome of [`evaluate`].
pub enum Decision {
    /// Answer with this (402, 400, 409, 503).
    Refused(Answer),
    /// A verified payment, claimed in the payment-state store.
    Paid(Box<Paid>),
}

/// A verified payment on its way to being served.
pub struct Paid {
    pub live: Arc<LiveRoute>,
    pub payload: PaymentPayload,
    /// What the facilitator gets as `paymentRequirements` (this route's, never the client's).
    pub requirements: Value,
    pub payer: Address,
    pub claim: Claim,
    pub style: Style,
    pub resource_url: String,
}

impl Paid {
    pub fn route(&self) -> &Route {
        &self.live.route
    }
}

// ---------------------------------------------------------------------------------------------
// evaluation

/// The payment header: `PAYMENT-SIGNATURE` (v2) wins over `X-PAYMENT` (v1, or v2 from the
/// obol-stack buyers). `Some(Err)` when the value is not text.
fn payment_header(headers: &HeaderMap) -> Option<Result<(&'static str, &str), ()>> {
    for name in [PAYMENT_SIGNATURE, X_PAYMENT] {
        if let Some(v) = headers.get(name) {
            return Some(v.to_str().map(|s| (name, s.trim())).map_err(|_| ()));
        }
    }
    None
}

fn same_address(a: Option<&str>, b: Address) -> bool {
    a.and_then(crate::offers::resolve::parse_address) == Some(b)
}

/// Checks that the payment answers this route; returns the requirements the facilitator gets.
fn match_requirement(route: &Route, payload: &PaymentPayload, resource_url: &str) -> Option<Value> {
    let net_ok = |n: &str| {
        n.eq_ignore_ascii_case(&route.network.caip2)
            || route
                .network
                .v1_name
                .as_deref()
                .is_some_and(|v1| n.eq_ignore_ascii_case(v1))
    };
    match payload {
        PaymentPayload::V2(p) => {
            let a = &p.accepted;
            let s = |k: &str| a.get(k).and_then(Value::as_str);
            let amount_ok = s("amount")
                .and_then(|x| crate::x402::amount::parse_atomic(x).ok())
                .is_some_and(|x| x == route.amount);
            (s("scheme") == Some("exact")
                && s("network").is_some_and(net_ok)
                && amount_ok
                && same_address(s("asset"), route.asset.address)
                && same_address(s("payTo"), route.pay_to))
            .then(|| route.requirement_value())
        }
        PaymentPayload::V1(p) => {
            let v1 = route.network.v1_name.as_deref()?;
            (p.scheme == "exact" && p.network.eq_ignore_ascii_case(v1))
                .then(|| requirement_v1(route, resource_url))
                .flatten()
        }
    }
}

/// Which payment header a request carries: `PAYMENT-SIGNATURE` (v2) wins over `X-PAYMENT`.
fn header_of(headers: &HeaderMap) -> Result<Option<(&'static str, &str)>, Refusal> {
    match payment_header(headers) {
        None => Ok(None),
        Some(Err(())) => Err(Refusal::InvalidPaymentHeader(
            "the header value is not ASCII text".into(),
        )),
        Some(Ok(nv)) => Ok(Some(nv)),
    }
}

/// A payment refused with a 402 that repeats the route's requirements.
fn refused_402(
    route: &Route,
    resource_url: &str,
    style: Style,
    reason: Cow<'static, str>,
    payer: Option<Address>,
    verified: bool,
    detail: Option<String>,
) -> Answer {
    let response = payment_required(route, resource_url, &reason, style, false);
    Answer::new(
        response,
        Outcome::PaymentRefused {
            reason,
            payer,
            verified,
            detail,
        },
    )
}

/// Runs checks 1-7 for a request that matched the paid, unpaused route `live`.
pub async fn evaluate(
    app: &AppState,
    table: &RouteTable,
    live: &Arc<LiveRoute>,
    headers: &HeaderMap,
    resource_url: &str,
) -> Decision {
    let route = &live.route;
    let refused = |a: Answer| Decision::Refused(a);

    let (name, value) = match header_of(headers) {
        Ok(Some(nv)) => nv,
        Ok(None) => {
            return refused(Answer::new(
                unpaid(live, resource_url, wants_html(headers)),
                Outcome::PaymentRequired,
            ));
        }
        Err(r) => return refused(Answer::payment_refused(r, None, false)),
    };
    let payload = match PaymentPayload::from_header(name, value) {
        Ok(p) => p,
        Err(e) => {
            let r = Refusal::InvalidPaymentHeader(format!("{name}: {e}"));
            return refused(Answer::payment_refused(r, None, false));
        }
    };
    let style = if payload.version() == 1 && route.network.v1_name.is_some() {
        Style::V1
    } else {
        Style::V2
    };
    let refused_402 = |reason: Cow<'static, str>, payer, detail| {
        refused(refused_402(
            route,
            resource_url,
            style,
            reason,
            payer,
            false,
            detail,
        ))
    };
    let Some(requirements) = match_requirement(route, &payload, resource_url) else {
        return refused_402("no_matching_requirement".into(), None, None);
    };

    let now = app.clock.now();
    let expected = Expected::for_asset(
        route.network.chain_id,
        &route.asset,
        route.pay_to,
        route.amount,
        route.max_timeout_seconds,
    );
    let checked = match eip3009::check(payload.evm(), &expected, now) {
        Ok(c) => c,
        Err(e) => return refused_402(e.reason().into(), None, Some(e.to_string())),
    };
    let payer = Some(checked.payer);

    let key = ReplayKey {
        chain_id: route.network.chain_id,
        asset: route.asset.address,
        from: checked.payer,
        nonce: checked.nonce,
    };
    let binding = Binding::of(
        value.as_bytes(),
        &route_identity(route),
        &requirements.to_string(),
    );
    // The store must remember a payment for as long as it can be used: refuse windows longer
    // than its retention (a validBefore of 2^256-1 would otherwise outlive its record).
    if checked.valid_before > now.saturating_add(MAX_RETENTION_SECS) {
        return refused_402(
            "authorization_valid_too_long".into(),
            payer,
            Some(format!(
                "validBefore is more than {} days away; sign an authorization valid for at most {} seconds",
                MAX_RETENTION_SECS / 86_400,
                route.max_timeout_seconds
            )),
        );
    }
    let claim = match app
        .store
        .claim(key, binding, checked.valid_before, now)
        .await
    {
        Ok(c) => c,
        Err(ClaimError::Replayed(r)) => {
            return refused(Answer::payment_refused(Refusal::Replayed(r), payer, false));
        }
        Err(ClaimError::Store(e)) => return refused(state_unavailable(payer, false, e)),
    };

    // A retry of this very payment whose settlement outcome was unknown was verified before and
    // may already be settled (then /verify would call it used): go straight to settlement.
    if !claim.retry_of_unsettled() {
        match table.facilitator.verify(&payload, &requirements).await {
            Ok(v) if v.is_valid => {}
            Ok(v) => {
                let reason = v.invalid_reason.unwrap_or_else(|| "payment_invalid".into());
                return refused_402(reason.into(), payer, v.invalid_message);
            }
            Err(FacilitatorError::InvalidPayment {
                reason, message, ..
            }) => return refused_402(reason.into(), payer, message),
            Err(e) => {
                let reason = match e {
                    FacilitatorError::Unreachable { .. }
                    | FacilitatorError::Timeout { .. }
                    | FacilitatorError::Transport { .. } => "facilitator_unreachable",
                    _ => "facilitator_error",
                };
                let detail = e.to_string();
                // The claim is dropped: the buyer may retry with the same payment.
                return refused(Answer::new(
                    Refusal::VerifyUnavailable {
                        reason,
                        detail: detail.clone(),
                    }
                    .into_response(),
                    Outcome::NotServed {
                        reason: reason.into(),
                        payer,
                        verified: false,
                        detail: Some(detail),
                    },
                ));
            }
        }
    }
    Decision::Paid(Box::new(Paid {
        live: Arc::clone(live),
        payload,
        requirements,
        payer: checked.payer,
        claim,
        style,
        resource_url: resource_url.to_string(),
    }))
}

/// What a payment is bound to besides its bytes: the offer and the route's pattern.
fn route_identity(route: &Route) -> String {
    format!(
        "{}/{} {}",
        route.offer_namespace, route.offer_name, route.pattern
    )
}

// ---------------------------------------------------------------------------------------------
// settlement

/// The result of [`settle`].
pub enum Settlement {
    /// Settled: the receipt to attach; the claim is consumed. `outcome` is
    /// [`Outcome::Settled`].
    Settled {
        receipt: SettleResponse,
        outcome: Outcome,
    },
    /// Not settled, or outcome unknown: answer with this.
    Failed(Answer),
}

/// Whether a settle refusal means the authorization's nonce is already used on chain.
fn nonce_used(reason: &str) -> bool {
    let r = reason.to_ascii_lowercase();
    r.contains("nonce_already_used")
        || r.contains("authorization_used")
        || r == "invalid_transaction_state"
        || r.contains("duplicate_settlement")
}

/// How long the chain is asked about an earlier settlement.
const CHAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Settles a verified payment.
pub async fn settle(app: &AppState, table: &RouteTable, paid: Paid) -> Settlement {
    let Paid {
        live,
        payload,
        requirements,
        payer,
        mut claim,
        style,
        resource_url,
    } = paid;
    let route = &live.route;
    let retry = claim.retry_of_unsettled();
    // Recorded before anything is sent: a crash from here on leaves the payment unsettled
    // (retryable with the same header), never forgotten.
    if let Err(e) = claim.settling().await {
        return Settlement::Failed(state_unavailable(Some(payer), true, e));
    }
    let not_served = |refusal: Refusal, detail: String| {
        let reason = refusal.reason().into();
        Settlement::Failed(Answer::refused(
            refusal,
            Outcome::NotServed {
                reason,
                payer: Some(payer),
                verified: true,
                detail: Some(detail),
            },
        ))
    };
    match table.facilitator.settle(&payload, &requirements).await {
        Ok(s) if s.success => settled(claim, payer, route, s).await,
        Ok(s) if s.error_reason.as_deref().is_some_and(pending) => {
            pending_settlement(payer, claim, tx_hash(&s.transaction)).await
        }
        Ok(s) => {
            let reason = s
                .error_reason
                .clone()
                .unwrap_or_else(|| "settlement_failed".into());
            settle_refused(route, &resource_url, style, claim, payer, reason, s).await
        }
        Err(FacilitatorError::InvalidPayment {
            reason,
            transaction,
            payer: p,
            ..
        }) => {
            if pending(&reason) {
                let tx = transaction.as_deref().and_then(tx_hash);
                return pending_settlement(payer, claim, tx).await;
            }
            if retry && nonce_used(&reason) {
                // The earlier attempt, whose answer was lost, may have gone through; or the nonce
                // was used by something else. Only the chain can tell.
                return match earlier_settlement(app, route, &claim).await {
                    Ok(Some(tx)) => {
                        // The earlier settlement went through (confirmed on chain).
                        let receipt = SettleResponse {
                            success: true,
                            payer: Some(payer.to_checksum(None)),
                            transaction: tx.to_string(),
                            network: route.network.caip2.clone(),
                            amount: Some(route.amount.to_string()),
                            ..Default::default()
                        };
                        settled(claim, payer, route, receipt).await
                    }
                    Ok(None) => {
                        // The nonce was used by another transfer: this payment bought nothing.
                        if let Err(e) = claim.consume(None).await {
                            tracing::warn!("payment state not recorded: {e}");
                        }
                        Settlement::Failed(Answer::payment_refused(
                            Refusal::AuthorizationUsedElsewhere,
                            Some(payer),
                            true,
                        ))
                    }
                    Err(detail) => {
                        if let Err(e) = claim.mark_unsettled(None).await {
                            tracing::warn!("payment state not recorded: {e}");
                        }
                        let detail =
                            format!("cannot confirm the earlier settlement on chain: {detail}");
                        Settlement::Failed(Answer::new(
                            Refusal::SettlementUnknown {
                                timeout: false,
                                detail: detail.clone(),
                            }
                            .into_response(),
                            Outcome::SettlementUnknown { payer, detail },
                        ))
                    }
                };
            }
            let receipt = SettleResponse {
                success: false,
                error_reason: Some(reason.clone()),
                payer: p,
                transaction: transaction.unwrap_or_default(),
                network: route.network.caip2.clone(),
                ..Default::default()
            };
            settle_refused(route, &resource_url, style, claim, payer, reason, receipt).await
        }
        Err(e @ FacilitatorError::Unreachable { .. }) => {
            // Never sent: nothing moved. Release the claim unless a previous attempt's outcome
            // is still unknown.
            release(claim).await;
            let detail = e.to_string();
            not_served(Refusal::SettleUnreachable(detail.clone()), detail)
        }
        Err(e @ FacilitatorError::SettlementUnknown { .. })
        | Err(e @ FacilitatorError::Timeout { .. })
        | Err(e @ FacilitatorError::Transport { .. }) => unknown(payer, claim, &e).await,
        Err(e @ FacilitatorError::Facilitator { status, .. }) if status >= 500 => {
            unknown(payer, claim, &e).await
        }
        Err(e) => {
            release(claim).await;
            let detail = e.to_string();
            not_served(Refusal::SettleError(detail.clone()), detail)
        }
    }
}

/// The transaction of an earlier settlement of this payment, read from the chain: `Ok(None)`
/// when the nonce was used by anything but a transfer of this route's full price from the payer
/// to its payTo; `Err` when the chain cannot be asked.
async fn earlier_settlement(
    app: &AppState,
    route: &Route,
    claim: &Claim,
) -> Result<Option<alloy_primitives::B256>, String> {
    let Some(rpc) = route.network.rpc.as_deref() else {
        return Err(format!(
            "no RPC endpoint is configured for {} (add `rpc:` to its networks.yaml entry), so the earlier settlement cannot be confirmed",
            route.network.caip2
        ));
    };
    let key = claim.key();
    let found = chain::authorization_transfer(
        &app.upstream,
        rpc,
        key.asset,
        key.from,
        key.nonce,
        CHAIN_TIMEOUT,
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok(found
        .filter(|t| t.from == key.from && t.to == route.pay_to && t.value == route.amount)
        .map(|t| t.transaction))
}

/// The facilitator's answer for "broadcast, not confirmed yet" (x402 `settlement_pending`).
fn pending(reason: &str) -> bool {
    reason.eq_ignore_ascii_case("settlement_pending")
}

fn tx_hash(s: &str) -> Option<alloy_primitives::B256> {
    s.trim().parse().ok()
}

/// Gives a claim back (nothing moved); a failed write is logged: the entry then stays as it
/// was, which never grants anything.
async fn release(claim: Claim) {
    if let Err(e) = claim.release().await {
        tracing::warn!("payment state not recorded (the payment stays held): {e}");
    }
}

/// The payment settled: record it used, then serve. If the record cannot be written the
/// request is not served: the buyer retries the same header, and the retry finds the transfer
/// on chain (one payment, one answer).
async fn settled(
    claim: Claim,
    payer: Address,
    route: &Route,
    receipt: SettleResponse,
) -> Settlement {
    let transaction = tx_hash(&receipt.transaction);
    if let Err(e) = claim.consume(transaction).await {
        let detail = format!(
            "settled in transaction {}, but the payment state could not be recorded: {e}",
            receipt.transaction
        );
        return Settlement::Failed(Answer::new(
            Refusal::SettlementUnknown {
                timeout: false,
                detail: detail.clone(),
            }
            .into_response(),
            Outcome::SettlementUnknown { payer, detail },
        ));
    }
    let outcome = Outcome::Settled {
        payer,
        amount: route.amount,
        transaction: receipt.transaction.clone(),
    };
    Settlement::Settled { receipt, outcome }
}

/// Broadcast, not yet confirmed: the same as an unknown outcome, with the transaction kept.
async fn pending_settlement(
    payer: Address,
    claim: Claim,
    transaction: Option<alloy_primitives::B256>,
) -> Settlement {
    if let Err(e) = claim.mark_unsettled(transaction).await {
        tracing::warn!("payment state not recorded: {e}");
    }
    let detail = match transaction {
        Some(tx) => format!("settlement_pending: transaction {tx} broadcast, not yet confirmed"),
        None => "settlement_pending: broadcast, not yet confirmed".to_string(),
    };
    Settlement::Failed(Answer::new(
        Refusal::SettlementUnknown {
            timeout: true,
            detail: detail.clone(),
        }
        .into_response(),
        Outcome::SettlementUnknown { payer, detail },
    ))
}

/// The payment-state store cannot be written or read: nothing is granted or settled (503).
pub fn state_unavailable(
    payer: Option<Address>,
    verified: bool,
    e: super::store::StoreError,
) -> Answer {
    let detail = e.to_string();
    Answer::new(
        Refusal::StateUnavailable(detail.clone()).into_response(),
        Outcome::NotServed {
            reason: "payment_state_unavailable".into(),
            payer,
            verified,
            detail: Some(detail),
        },
    )
}

async fn unknown(payer: Address, claim: Claim, e: &FacilitatorError) -> Settlement {
    if let Err(err) = claim.mark_unsettled(None).await {
        tracing::warn!("payment state not recorded: {err}");
    }
    let timeout = matches!(e, FacilitatorError::SettlementUnknown { detail } if detail.starts_with("no answer"))
        || matches!(e, FacilitatorError::Timeout { .. });
    let detail = e.to_string();
    Settlement::Failed(Answer::new(
        Refusal::SettlementUnknown {
            timeout,
            detail: detail.clone(),
        }
        .into_response(),
        Outcome::SettlementUnknown { payer, detail },
    ))
}

/// The facilitator refused the settlement: nothing moved, the payment is not used (unless an
/// earlier attempt's outcome is unknown, which dropping the claim preserves).
async fn settle_refused(
    route: &Route,
    resource_url: &str,
    style: Style,
    claim: Claim,
    payer: Address,
    reason: String,
    receipt: SettleResponse,
) -> Settlement {
    release(claim).await;
    let mut answer = refused_402(
        route,
        resource_url,
        style,
        reason.into(),
        Some(payer),
        true,
        None,
    );
    for (k, v) in super::respond::receipt_headers(&receipt) {
        answer.response.headers_mut().insert(k, v);
    }
    Settlement::Failed(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_reasons() {
        assert!(nonce_used("invalid_exact_evm_nonce_already_used"));
        assert!(nonce_used("invalid_transaction_state"));
        assert!(!nonce_used("invalid_exact_evm_failed_to_check_nonce"));
        assert!(!nonce_used("insufficient_funds"));
    }

    #[test]
    fn the_clock_moves_every_copy() {
        let c = Clock::default();
        let copy = c.clone();
        let before = copy.now();
        c.advance(3600);
        assert!(copy.now() >= before + 3600);
    }
}
