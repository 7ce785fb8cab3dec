//! Proxy mode: the verifier is the seller's gateway. Requests under an offer's path are paid
//! for, forwarded to its upstream, and settled only once the upstream has answered 2xx (an
//! error or a redirect is passed through unsettled).
//!
//! Forwarding: `stripPrefix` removed from the path, query kept, request and response bodies
//! streamed (never buffered), hop-by-hop headers dropped, payment headers not forwarded,
//! `Authorization: <upstreamAuth>` injected when configured, `X-Forwarded-*` and
//! `X-Payment-Payer` set. Settlement happens after the upstream's status and headers arrived
//! and before anything is written to the client; the body then streams through.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, HttpBody as _};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::Response;

use super::AppState;
use super::admit::admit;
use super::gate::{self, Decision, Settlement, X_PAYMENT_PAYER};
use super::outcome::{Answer, Handled, Outcome, in_request_span, record_offer};
use super::refusal::Refusal;
use super::request_path::{PathError, RequestPath};
use crate::offers::Route;
use crate::x402::codec::{PAYMENT_SIGNATURE, X_PAYMENT};

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Copies end-to-end headers: drops hop-by-hop ones and those the `Connection` header names.
fn end_to_end(src: &HeaderMap, dst: &mut HeaderMap) {
    let named: Vec<String> = src
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    for (k, v) in src {
        let name = k.as_str();
        if HOP_BY_HOP.contains(&name) || named.iter().any(|n| n == name) {
            continue;
        }
        dst.append(k.clone(), v.clone());
    }
}

/// The upstream URL for a request: base URL + (canonical path without `stripPrefix`) + query.
///
/// The path is the one the route was matched on ([`RequestPath`]: no dot segments, no encoded
/// separators), so the URL client has nothing left to normalise and the upstream receives a path
/// under the offer's upstream base. `None` when the route has no upstream, or the result would
/// not be under the base (checked again on the parsed URL).
pub fn upstream_url(route: &Route, path: &RequestPath) -> Option<reqwest::Url> {
    let base = route.upstream_url.as_deref()?;
    let rest = match route.strip_prefix.as_deref() {
        Some(p) => path.below(p).unwrap_or(path.path()),
        None => path.path(),
    };
    let base = base.trim_end_matches('/');
    let mut url = String::with_capacity(base.len() + rest.len() + 64);
    url.push_str(base);
    if !rest.starts_with('/') {
        url.push('/');
    }
    url.push_str(rest);
    if let Some(q) = path.query() {
        url.push('?');
        url.push_str(q);
    }
    let parsed = reqwest::Url::parse(&url).ok()?;
    let base_path = reqwest::Url::parse(base)
        .ok()?
        .path()
        .trim_end_matches('/')
        .to_string();
    let under = parsed
        .path()
        .strip_prefix(base_path.as_str())
        .is_some_and(|r| r.is_empty() || r.starts_with('/'));
    under.then_some(parsed)
}

fn host_of(headers: &HeaderMap, uri: &Uri) -> String {
    headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| uri.authority().map(|a| a.to_string()))
        .unwrap_or_else(|| "localhost".to_string())
}

fn proto_of(headers: &HeaderMap) -> &str {
    match headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
    {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        _ => "http",
    }
}

/// Every path that is not one of the daemon's own endpoints, in proxy mode.
pub async fn handle(
    State(app): State<Arc<AppState>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    in_request_span("proxy", proxy(&app, client, req)).await
}

async fn proxy(app: &AppState, client: SocketAddr, req: Request) -> Handled {
    let target = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("");
    let admitted = match admit(app, target) {
        Ok(a) => a,
        Err(r) => return r.into(),
    };
    let live = &admitted.live;
    record_offer(live);
    let done = |answer: Answer| Handled::new(answer, live);
    let not_admitted = |r: Refusal| done(r.into());
    if live.route.upstream_url.is_none() {
        return not_admitted(Refusal::NoUpstream);
    }
    let host = host_of(req.headers(), req.uri());
    let proto = proto_of(req.headers());
    let resource_url = format!("{proto}://{host}{}", admitted.path);
    let paid = if admitted.free() {
        None
    } else {
        match gate::evaluate(app, &admitted.table, live, req.headers(), &resource_url).await {
            Decision::Refused(answer) => return done(answer),
            Decision::Paid(p) => Some(p),
        }
    };
    // Built only for a request that will be forwarded (an unpaid 402 never pays for it).
    let Some(target) = upstream_url(&live.route, &admitted.path) else {
        return not_admitted(Refusal::BadPath(PathError::OutsideUpstream));
    };
    let https = proto == "https";
    let payer = paid.as_ref().map(|p| p.payer);
    // Not served as paid: the claim is dropped with `paid`, nothing was charged, the same
    // payment may be retried.
    let not_served = |reason: &'static str, detail: String| Outcome::NotServed {
        reason: reason.into(),
        payer,
        verified: payer.is_some(),
        detail: Some(detail),
    };

    // Forward.
    let (parts, body) = req.into_parts();
    let mut headers = HeaderMap::with_capacity(parts.headers.len() + 4);
    end_to_end(&parts.headers, &mut headers);
    for h in [
        header::HOST.as_str(),
        PAYMENT_SIGNATURE,
        X_PAYMENT,
        X_PAYMENT_PAYER,
        "x-forwarded-prefix",
    ] {
        headers.remove(h);
    }
    let forwarded_for = match parts
        .headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
    {
        Some(prev) => format!("{prev}, {}", client.ip()),
        None => client.ip().to_string(),
    };
    if let Ok(v) = HeaderValue::from_str(&forwarded_for) {
        headers.insert("x-forwarded-for", v);
    }
    if let Ok(v) = HeaderValue::from_str(&host) {
        headers.insert("x-forwarded-host", v);
    }
    headers.insert(
        "x-forwarded-proto",
        HeaderValue::from_static(if https { "https" } else { "http" }),
    );
    if let Some(auth) = &live.route.upstream_auth
        && let Ok(v) = HeaderValue::from_str(auth.expose())
    {
        headers.insert(header::AUTHORIZATION, v);
    }
    if let Some(payer) = payer
        && let Ok(v) = HeaderValue::from_str(&payer.to_checksum(None))
    {
        headers.insert(X_PAYMENT_PAYER, v);
    }
    let mut upstream = app
        .upstream
        .request(parts.method.clone(), target)
        .headers(headers);
    if !(body.is_end_stream() || body.size_hint().exact() == Some(0)) {
        upstream = upstream.body(reqwest::Body::wrap_stream(body.into_data_stream()));
    }
    let resp = match upstream.send().await {
        Ok(r) => r,
        Err(e) => {
            let refusal = Refusal::UpstreamUnavailable;
            let outcome = not_served(refusal.reason(), e.without_url().to_string());
            return done(Answer::refused(refusal, outcome));
        }
    };
    let status = resp.status();
    let mut out_headers = HeaderMap::with_capacity(resp.headers().len() + 4);
    end_to_end(resp.headers(), &mut out_headers);
    let Some(paid) = paid else {
        // A declared free route: nothing to settle.
        return done(Answer::new(build(status, out_headers, resp), Outcome::Free));
    };
    if !status.is_success() {
        // An error or a redirect is not what was paid for: passed through unsettled, and the
        // payment is released for a retry.
        drop(paid);
        let outcome = not_served(
            "upstream_not_successful",
            format!("the upstream answered {status}: passed through, not settled"),
        );
        return done(Answer::new(build(status, out_headers, resp), outcome));
    }
    match gate::settle(app, &admitted.table, *paid).await {
        Settlement::Settled { receipt, outcome } => {
            for (k, v) in super::respond::receipt_headers(&receipt) {
                out_headers.insert(k, v);
            }
            out_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            done(Answer::new(build(status, out_headers, resp), outcome))
        }
        Settlement::Failed(answer) => done(answer),
    }
}

fn build(status: StatusCode, headers: HeaderMap, resp: reqwest::Response) -> Response {
    let mut out = Response::new(Body::from_stream(resp.bytes_stream()));
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    out
}

/// The client used to reach upstreams: no redirects followed (they go back to the buyer), no
/// overall timeout (LLM answers stream for minutes).
pub fn upstream_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offers::{PricingConfig, RouteRule, resolve};
    use crate::x402::networks::Registry;

    fn route(upstream: &str, strip: Option<&str>) -> Route {
        let cfg = PricingConfig {
            wallet: Some("0x1111111111111111111111111111111111111111".into()),
            routes: vec![RouteRule {
                pattern: "/services/demo/*".into(),
                price: "0.01".into(),
                upstream_url: Some(upstream.into()),
                strip_prefix: strip.map(str::to_string),
                ..Default::default()
            }],
            ..Default::default()
        };
        resolve(&cfg, &Registry::builtin()).unwrap().remove(0)
    }

    fn url(r: &Route, u: &str) -> String {
        upstream_url(r, &RequestPath::parse(u).unwrap())
            .unwrap()
            .to_string()
    }

    #[test]
    fn strip_prefix_and_query() {
        let r = route("http://127.0.0.1:9000", Some("/services/demo"));
        assert_eq!(
            url(&r, "/services/demo/v1/chat?x=1&y=2"),
            "http://127.0.0.1:9000/v1/chat?x=1&y=2"
        );
        assert_eq!(url(&r, "/services/demo"), "http://127.0.0.1:9000/");
        // What was matched is what is sent: unreserved escapes decoded, others kept.
        assert_eq!(
            url(&r, "/services/demo/%761/a%20b"),
            "http://127.0.0.1:9000/v1/a%20b"
        );
        assert_eq!(url(&r, "/services/demo/"), "http://127.0.0.1:9000/");
        let r = route("http://up:1/base/", Some("/services/demo"));
        assert_eq!(url(&r, "/services/demo/a"), "http://up:1/base/a");
        let r = route("http://up:1", None);
        assert_eq!(url(&r, "/services/demo/a"), "http://up:1/services/demo/a");
        // A prefix that only shares characters is not stripped.
        let r = route("http://up:1", Some("/services/de"));
        assert_eq!(url(&r, "/services/demo/a"), "http://up:1/services/demo/a");
    }

    #[test]
    fn hop_by_hop_headers_are_dropped() {
        let mut src = HeaderMap::new();
        src.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-custom-hop"),
        );
        src.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        src.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        src.insert("x-custom-hop", HeaderValue::from_static("1"));
        src.insert("te", HeaderValue::from_static("trailers"));
        src.insert("content-type", HeaderValue::from_static("application/json"));
        src.append("x-multi", HeaderValue::from_static("a"));
        src.append("x-multi", HeaderValue::from_static("b"));
        let mut dst = HeaderMap::new();
        end_to_end(&src, &mut dst);
        let names: Vec<_> = dst.keys().map(|k| k.as_str().to_string()).collect();
        assert_eq!(names, ["content-type", "x-multi"]);
        assert_eq!(dst.get_all("x-multi").iter().count(), 2);
    }
}
