//! ForwardAuth mode: `/verify`, asked by Traefik (or nginx `auth_request`) before it forwards a
//! request. The original request is described by `X-Forwarded-{Uri,Host,Proto,Method}` and
//! its headers (the payment header among them).
//!
//! Fails closed: a forwarded URI that has no single meaning, that no offer covers, or that
//! arrives with `X-Forwarded-Prefix` (so it is not the path the proxy routed on) is refused,
//! never granted. `/verify` answers only on the verifier's internal listener: its 200 carries the
//! offer's `upstreamAuth` for Traefik to inject.
//!
//! ForwardAuth never sees the upstream's answer, so it settles before answering 200. Only when
//! asked for (`--verify-only`, or `verifyOnly: true` in the offers file without
//! `--settle-before-grant`) does it grant after `/verify` alone: access without payment.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::admit::admit;
use super::gate::{self, Decision, Settlement, X_PAYMENT_PAYER};
use super::outcome::{Answer, Handled, Outcome, in_request_span, record_offer};
use super::refusal::Refusal;

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// `* /verify`.
pub async fn handle(State(app): State<Arc<AppState>>, req: Request) -> Response {
    in_request_span("forward_auth", verify(&app, req.headers())).await
}

async fn verify(app: &AppState, headers: &HeaderMap) -> Handled {
    if headers.contains_key("x-forwarded-prefix") {
        return Refusal::ForwardedPrefix.into();
    }
    let Some(uri) = header_str(headers, "x-forwarded-uri") else {
        return Refusal::MissingForwardedUri.into();
    };
    let admitted = match admit(app, uri) {
        Ok(a) => a,
        Err(r) => return r.into(),
    };
    let live = &admitted.live;
    record_offer(live);
    let host = header_str(headers, "x-forwarded-host")
        .or_else(|| header_str(headers, "host"))
        .unwrap_or("localhost");
    let proto = match header_str(headers, "x-forwarded-proto") {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        _ => "http",
    };
    let mut resp = StatusCode::OK.into_response();
    let mut payer = None;
    let outcome = if admitted.free() {
        Outcome::Free
    } else {
        let resource_url = format!("{proto}://{host}{}", admitted.path);
        let paid = match gate::evaluate(app, &admitted.table, live, headers, &resource_url).await {
            Decision::Refused(answer) => return Handled::new(answer, live),
            Decision::Paid(p) => p,
        };
        payer = Some(paid.payer);
        if admitted.table.settle_before_grant {
            match gate::settle(app, &admitted.table, *paid).await {
                Settlement::Settled { receipt, outcome } => {
                    for (k, v) in super::respond::receipt_headers(&receipt) {
                        resp.headers_mut().insert(k, v);
                    }
                    outcome
                }
                Settlement::Failed(answer) => return Handled::new(answer, live),
            }
        } else {
            // Verify-only: the payment is used (held until validBefore); no money moved.
            // Recorded before the grant: if the store cannot say so, nothing is granted.
            let gate::Paid { claim, payer, .. } = *paid;
            if let Err(e) = claim.consume(None).await {
                return Handled::new(gate::state_unavailable(Some(payer), true, e), live);
            }
            Outcome::GrantedUnpaid {
                payer,
                amount: live.route.amount,
            }
        }
    };
    let h = resp.headers_mut();
    if let Some(auth) = &live.route.upstream_auth
        && let Ok(v) = HeaderValue::from_str(auth.expose())
    {
        h.insert(header::AUTHORIZATION, v);
    }
    if let Some(payer) = payer
        && let Ok(v) = HeaderValue::from_str(&payer.to_checksum(None))
    {
        h.insert(X_PAYMENT_PAYER, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Handled::new(Answer::new(resp, outcome), live)
}
