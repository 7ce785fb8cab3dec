//! Every refusal the verifier answers with, except the 402s (those carry a route's payment
//! requirements and are rendered in [`super::respond`]).
//!
//! One enum owns the table of statuses, `error`/`reason` strings and hints, and renders the
//! JSON body `{"error", "reason", "detail"?, "retriable"?, ...}` with `Cache-Control: no-store`.
//! A handler returns a `Refusal`; it never assembles an error response itself.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::replay::Replayed;
use super::request_path::PathError;

/// Why a request is not served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Before the first successful route load nothing is known to be free.
    NotReady,
    /// The request path has no single meaning.
    BadPath(PathError),
    /// ForwardAuth was asked without `X-Forwarded-Uri`.
    MissingForwardedUri,
    /// ForwardAuth was asked with `X-Forwarded-Prefix`: the path the proxy routed on is not the
    /// one it asks about.
    ForwardedPrefix,
    /// No offer covers this path (proxy and ForwardAuth alike: fail closed).
    NoRoute,
    /// The offer declares its routes and this path is not one of them.
    Undeclared,
    Paused,
    /// The route has no `upstreamURL` (ForwardAuth only).
    NoUpstream,
    /// The seller's offer is broken (ServiceOffer invalid): nothing is let through.
    OfferUnavailable {
        offer: String,
        detail: String,
    },
    /// The payment header is not text, or does not decode.
    InvalidPaymentHeader(String),
    Replayed(Replayed),
    /// On a retry, the authorization's nonce turned out to be used on chain by a transfer that
    /// did not pay this route (the buyer burnt it, or it paid something else).
    AuthorizationUsedElsewhere,
    /// The facilitator could not verify (unreachable, timeout, 5xx): nothing was charged.
    VerifyUnavailable {
        reason: &'static str,
        detail: String,
    },
    /// The facilitator could not be reached to settle: nothing was charged.
    SettleUnreachable(String),
    /// The facilitator refused the settlement request (not a payment problem).
    SettleError(String),
    /// Settlement attempted, outcome unknown: the buyer retries with the same header.
    SettlementUnknown {
        timeout: bool,
        detail: String,
    },
    /// The upstream could not be reached: nothing was charged.
    UpstreamUnavailable,
    /// The payment state cannot be checked (fail closed).
    StateUnavailable(String),
}

struct Parts {
    status: StatusCode,
    error: &'static str,
    reason: &'static str,
    detail: Option<String>,
    retriable: Option<bool>,
    extra: Option<Value>,
}

const RETRY_SAME: &str = "nothing was charged; retry later with the same payment header";

impl Refusal {
    /// The machine-readable reason (`reason` in the body).
    pub fn reason(&self) -> &'static str {
        self.parts().reason
    }

    pub fn status(&self) -> StatusCode {
        self.parts().status
    }

    fn parts(&self) -> Parts {
        let p = |status, error, reason| Parts {
            status,
            error,
            reason,
            detail: None,
            retriable: None,
            extra: None,
        };
        use StatusCode as S;
        match self {
            Refusal::NotReady => Parts {
                retriable: Some(true),
                ..p(S::SERVICE_UNAVAILABLE, "not ready: routes not loaded", "not_ready")
            },
            Refusal::BadPath(e) => Parts {
                detail: Some(format!(
                    "{e}; the request was refused because its path has no single meaning"
                )),
                retriable: Some(false),
                ..p(
                    if *e == PathError::TooLong {
                        S::URI_TOO_LONG
                    } else {
                        S::BAD_REQUEST
                    },
                    "invalid request path",
                    e.reason(),
                )
            },
            Refusal::MissingForwardedUri => Parts {
                detail: Some(
                    "/verify is a ForwardAuth endpoint: the proxy must send X-Forwarded-Uri".into(),
                ),
                retriable: Some(false),
                ..p(
                    S::FORBIDDEN,
                    "forbidden: missing forwarded URI",
                    "missing_forwarded_uri",
                )
            },
            Refusal::ForwardedPrefix => Parts {
                detail: Some(
                    "X-Forwarded-Prefix means a prefix was stripped before ForwardAuth, so \
                     X-Forwarded-Uri is not the path the proxy routed on; run the forwardAuth \
                     middleware before any prefix stripping"
                        .into(),
                ),
                retriable: Some(false),
                ..p(
                    S::BAD_REQUEST,
                    "forwarded prefix not supported",
                    "forwarded_prefix",
                )
            },
            Refusal::NoRoute => Parts {
                detail: Some("no offer covers this path; nothing was charged".into()),
                retriable: Some(false),
                ..p(S::NOT_FOUND, "not found", "no_route")
            },
            Refusal::Undeclared => Parts {
                detail: Some(
                    "the offer declares its routes and this path is not one of them".into(),
                ),
                retriable: Some(false),
                ..p(S::NOT_FOUND, "not found", "route_not_declared")
            },
            Refusal::Paused => Parts {
                detail: Some("the seller paused this offer; nothing was charged".into()),
                retriable: Some(false),
                ..p(S::NOT_FOUND, "offer paused", "offer_paused")
            },
            Refusal::NoUpstream => Parts {
                detail: Some(
                    "this route has no upstreamURL; it is served through ForwardAuth only".into(),
                ),
                retriable: Some(false),
                ..p(S::NOT_FOUND, "offer has no upstream", "no_upstream")
            },
            Refusal::OfferUnavailable { offer, detail } => Parts {
                detail: Some(format!(
                    "the seller's offer {offer} cannot be served ({detail}); nothing was charged"
                )),
                retriable: Some(false),
                ..p(S::SERVICE_UNAVAILABLE, "offer unavailable", "offer_unavailable")
            },
            Refusal::InvalidPaymentHeader(detail) => Parts {
                detail: Some(detail.clone()),
                retriable: Some(false),
                ..p(
                    S::BAD_REQUEST,
                    "Invalid payment header",
                    "invalid_payment_header",
                )
            },
            Refusal::Replayed(r) => Parts {
                error: match r {
                    Replayed::InFlight => "this payment is being used by another request",
                    Replayed::Used => "this payment has already been used",
                    Replayed::Unresolved => "this authorization is held by another payment",
                },
                detail: Some(
                    match r {
                        Replayed::InFlight => {
                            "another request is using this payment right now; if it fails, the same payment can be retried"
                        }
                        Replayed::Used => "each payment buys one request; sign a new one",
                        Replayed::Unresolved => {
                            "an earlier payment with this nonce is still being settled; only that exact payment header, for the same offer, can finish it"
                        }
                    }
                    .into(),
                ),
                retriable: Some(*r == Replayed::InFlight),
                ..p(S::CONFLICT, "", "payment_replayed")
            },
            Refusal::AuthorizationUsedElsewhere => Parts {
                detail: Some(
                    "the authorization's nonce was used on chain by a transfer that did not pay this offer; nothing is served for it".into(),
                ),
                retriable: Some(false),
                ..p(
                    S::CONFLICT,
                    "this authorization was used for something else",
                    "authorization_used_elsewhere",
                )
            },
            Refusal::VerifyUnavailable { reason, detail } => Parts {
                detail: Some(detail.clone()),
                retriable: Some(true),
                extra: Some(json!({"hint": RETRY_SAME})),
                ..p(S::SERVICE_UNAVAILABLE, "Payment verification failed", reason)
            },
            Refusal::SettleUnreachable(detail) => Parts {
                detail: Some(detail.clone()),
                retriable: Some(true),
                extra: Some(json!({
                    "paymentVerified": true,
                    "paymentSettled": false,
                    "hint": RETRY_SAME,
                })),
                ..p(
                    S::SERVICE_UNAVAILABLE,
                    "Payment settlement failed",
                    "facilitator_unreachable",
                )
            },
            Refusal::SettleError(detail) => Parts {
                detail: Some(detail.clone()),
                retriable: Some(false),
                extra: Some(json!({"paymentVerified": true, "paymentSettled": false})),
                ..p(
                    S::BAD_GATEWAY,
                    "Payment settlement failed",
                    "facilitator_error",
                )
            },
            Refusal::SettlementUnknown { timeout, detail } => Parts {
                detail: Some(detail.clone()),
                retriable: Some(true),
                extra: Some(json!({
                    "paymentVerified": true,
                    "paymentSettled": Value::Null,
                    "hint": "the payment may have settled; retry with the SAME payment header, never a new signature",
                })),
                ..p(
                    if *timeout {
                        S::GATEWAY_TIMEOUT
                    } else {
                        S::SERVICE_UNAVAILABLE
                    },
                    "Payment settlement outcome unknown",
                    "settlement_unknown",
                )
            },
            Refusal::UpstreamUnavailable => Parts {
                retriable: Some(true),
                extra: Some(json!({"paymentVerified": true, "paymentSettled": false})),
                ..p(
                    S::BAD_GATEWAY,
                    "upstream unavailable",
                    "upstream_unavailable",
                )
            },
            Refusal::StateUnavailable(detail) => Parts {
                detail: Some(detail.clone()),
                retriable: Some(true),
                extra: Some(json!({"hint": RETRY_SAME})),
                ..p(
                    S::SERVICE_UNAVAILABLE,
                    "payment state unavailable",
                    "payment_state_unavailable",
                )
            },
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let Parts {
            status,
            error,
            reason,
            detail,
            retriable,
            extra,
        } = self.parts();
        let mut body = json!({"error": error, "reason": reason});
        if let Some(d) = detail {
            body["detail"] = Value::from(d);
        }
        if let Some(r) = retriable {
            body["retriable"] = Value::from(r);
        }
        if let Some(Value::Object(m)) = extra {
            for (k, v) in m {
                body[k] = v;
            }
        }
        let mut resp = (status, axum::Json(body)).into_response();
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_is_json_with_a_reason_and_no_store() {
        let all = [
            Refusal::NotReady,
            Refusal::BadPath(PathError::DotSegment),
            Refusal::BadPath(PathError::TooLong),
            Refusal::MissingForwardedUri,
            Refusal::ForwardedPrefix,
            Refusal::NoRoute,
            Refusal::Undeclared,
            Refusal::Paused,
            Refusal::NoUpstream,
            Refusal::OfferUnavailable {
                offer: "ns/o".into(),
                detail: "x".into(),
            },
            Refusal::InvalidPaymentHeader("d".into()),
            Refusal::Replayed(Replayed::InFlight),
            Refusal::Replayed(Replayed::Used),
            Refusal::Replayed(Replayed::Unresolved),
            Refusal::AuthorizationUsedElsewhere,
            Refusal::VerifyUnavailable {
                reason: "facilitator_unreachable",
                detail: "d".into(),
            },
            Refusal::SettleUnreachable("d".into()),
            Refusal::SettleError("d".into()),
            Refusal::SettlementUnknown {
                timeout: true,
                detail: "d".into(),
            },
            Refusal::UpstreamUnavailable,
            Refusal::StateUnavailable("d".into()),
        ];
        for r in all {
            let status = r.status();
            assert!(
                status.is_client_error() || status.is_server_error(),
                "{r:?}"
            );
            assert_ne!(status, StatusCode::PAYMENT_REQUIRED, "{r:?}");
            assert!(!r.reason().is_empty());
            let resp = r.clone().into_response();
            assert_eq!(resp.status(), status);
            assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-store");
        }
        assert_eq!(
            Refusal::BadPath(PathError::TooLong).status(),
            StatusCode::URI_TOO_LONG
        );
    }
}
