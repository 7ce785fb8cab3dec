//! ForwardAuth mode: `/verify`, asked by Traefik (or nginx `auth_request`) before it forwards a
//! request. The original request is described by `X-Forwarded-{Uri,Host,Proto,Method}` and
//! its headers (the payment header among them).
//!
//! Fails closed: a forwarded URI that has no single meaning, that no offer covers, or that
//! arrives with `X-Forwarded-Prefix` (so it is not the path the proxy routed on) is refused,
//! never granted. `/verify` answers only on the verifier's internal listener: its 200 carries the
//! offer's `upstreamAuth` for Traefik to inject.
//!
//! ForwardAuth never sees the upstream's answer. With `--settle-before-grant` (or
//! `verifyOnly: false` in the offers file) it settles before answering 200; otherwise it only
//! verifies (access without payment moving).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::admit::admit;
use super::gate::{self, Decision, Settlement, X_PAYMENT_PAYER};
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
    match verify(&app, req.headers()).await {
        Ok(r) => r,
        Err(r) => r,
    }
}

async fn verify(app: &AppState, headers: &HeaderMap) -> Result<Response, Response> {
    let refused = |r: Refusal| r.into_response();
    if headers.contains_key("x-forwarded-prefix") {
        return Err(refused(Refusal::ForwardedPrefix));
    }
    let uri = header_str(headers, "x-forwarded-uri")
        .ok_or_else(|| refused(Refusal::MissingForwardedUri))?;
    let admitted = admit(app, uri).map_err(refused)?;
    let live = &admitted.live;
    let host = header_str(headers, "x-forwarded-host")
        .or_else(|| header_str(headers, "host"))
        .unwrap_or("localhost");
    let proto = match header_str(headers, "x-forwarded-proto") {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        _ => "http",
    };
    let mut resp = StatusCode::OK.into_response();
    let mut payer = None;
    if !admitted.free() {
        let resource_url = format!("{proto}://{host}{}", admitted.path);
        let paid = match gate::evaluate(app, &admitted.table, live, headers, &resource_url).await {
            Decision::Refused(r) => return Err(r),
            Decision::Paid(p) => p,
        };
        payer = Some(paid.payer);
        if admitted.table.settle_before_grant {
            match gate::settle(app, &admitted.table, *paid).await {
                Settlement::Settled(receipt) => {
                    for (k, v) in super::respond::receipt_headers(&receipt) {
                        resp.headers_mut().insert(k, v);
                    }
                }
                Settlement::Failed(r) => return Err(r),
            }
        } else {
            // Verify-only: the payment is used (held until validBefore) and counted as charged.
            let gate::Paid { claim, .. } = *paid;
            claim.consume();
            live.series.charged(live.route.amount);
        }
    }
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
    Ok(resp)
}
