//! What the verifier's end-to-end tests share: an upstream that records what reached it, the
//! payer's and seller's token balances, and reading one series of a verifier scrape.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use alloy_primitives::U256;

use super::{PAYER_ADDRESS, SELLER_ADDRESS, Token};

/// What the upstream answers.
pub const UPSTREAM_BODY: &str = "upstream says hi";

/// What the upstream saw of one request.
#[derive(Clone, Debug)]
pub struct Seen {
    pub uri: String,
    pub authorization: Option<String>,
    /// `X-Payment-Payer`, which the verifier adds in proxy mode.
    pub payer: Option<String>,
    /// Whether a payment header (`PAYMENT-SIGNATURE` / `X-PAYMENT`) got through.
    pub payment_header: bool,
}

/// A tiny axum upstream on its own runtime thread: records each request and answers
/// [`UPSTREAM_BODY`] with the status in `status` (200 unless a test changes it).
pub struct RecordingUpstream {
    pub url: String,
    pub status: Arc<AtomicU16>,
    seen: Arc<Mutex<Vec<Seen>>>,
    _server: ThreadServer,
}

/// An axum app served on 127.0.0.1 from a runtime thread of its own, until dropped.
pub struct ThreadServer {
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ThreadServer {
    /// Serves the app `make` builds (on the server's runtime).
    pub fn start(make: impl FnOnce() -> axum::Router + Send + 'static) -> ThreadServer {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let app = make();
                let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(l.local_addr().unwrap()).unwrap();
                axum::serve(l, app)
                    .with_graceful_shutdown(async move {
                        let _ = stop_rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        let addr = addr_rx.recv().unwrap();
        ThreadServer {
            url: format!("http://{addr}"),
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }
}

impl Drop for ThreadServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl RecordingUpstream {
    pub fn start() -> RecordingUpstream {
        use axum::http::{HeaderMap, StatusCode, Uri};
        use axum::response::IntoResponse;
        let status = Arc::new(AtomicU16::new(200));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (answer, recorder) = (Arc::clone(&status), Arc::clone(&seen));
        let server = ThreadServer::start(move || {
            axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
                let (answer, recorder) = (Arc::clone(&answer), Arc::clone(&recorder));
                async move {
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .map(|v| v.to_str().unwrap_or_default().to_string())
                    };
                    recorder.lock().unwrap().push(Seen {
                        uri: uri.to_string(),
                        authorization: header("authorization"),
                        payer: header("x-payment-payer"),
                        payment_header: headers.contains_key("payment-signature")
                            || headers.contains_key("x-payment"),
                    });
                    let code = StatusCode::from_u16(answer.load(Ordering::SeqCst)).unwrap();
                    (code, UPSTREAM_BODY).into_response()
                }
            })
        });
        RecordingUpstream {
            url: server.url.clone(),
            status,
            seen,
            _server: server,
        }
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Answers `code` from now on.
    pub fn answer(&self, code: u16) {
        self.status.store(code, Ordering::SeqCst);
    }
}

/// The payer's and the seller's token balances at one moment.
pub struct Balances<'a> {
    token: &'a Token,
    pub payer: U256,
    pub seller: U256,
}

impl<'a> Balances<'a> {
    pub fn now(token: &'a Token) -> Self {
        Balances {
            token,
            payer: token.balance_of(PAYER_ADDRESS),
            seller: token.balance_of(SELLER_ADDRESS),
        }
    }

    /// Asserts the payer paid the seller exactly `amount` since `self`.
    pub fn moved(&self, amount: u64, what: &str) {
        let after = Balances::now(self.token);
        assert_eq!(
            self.payer - after.payer,
            U256::from(amount),
            "{what}: payer balance change"
        );
        assert_eq!(
            after.seller - self.seller,
            U256::from(amount),
            "{what}: seller balance change"
        );
    }
}

/// The labels and value of the series `name{..offer_name="offer"..}` in a scrape.
pub fn series(scrape: &str, name: &str, offer: &str) -> Option<(String, f64)> {
    scrape.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?.strip_prefix('{')?;
        let (labels, value) = rest.rsplit_once("} ")?;
        labels
            .contains(&format!("offer_name=\"{offer}\""))
            .then(|| (labels.to_string(), value.parse().unwrap()))
    })
}

/// What [`FaultyFacilitator`] does with the next `/settle`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SettleFault {
    /// Forwarded, answered as the facilitator answered.
    None = 0,
    /// Not forwarded; answered 502 (the verifier cannot know nothing moved).
    Drop = 1,
    /// Forwarded (so it settles on chain), but the answer is replaced by a 502: lost.
    LoseAnswer = 2,
    /// Held for 3 s, then forwarded (it settles on chain): time to kill the verifier.
    Hold = 3,
}

/// A pass-through in front of a real facilitator that can fail `/settle` the ways a network
/// does: the only fault injection the money tests use. Everything else is forwarded verbatim.
pub struct FaultyFacilitator {
    pub url: String,
    fault: Arc<std::sync::atomic::AtomicU8>,
    settles: Arc<std::sync::atomic::AtomicUsize>,
    _server: ThreadServer,
}

impl FaultyFacilitator {
    pub fn start(real: &str) -> FaultyFacilitator {
        use axum::http::{HeaderMap, Method, StatusCode, Uri};
        use axum::response::IntoResponse;
        let real = real.trim_end_matches('/').to_string();
        let fault = Arc::new(std::sync::atomic::AtomicU8::new(0));
        let knob = Arc::clone(&fault);
        let settles = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = Arc::clone(&settles);
        let server = ThreadServer::start(move || {
            let http = reqwest::Client::builder().no_proxy().build().unwrap();
            axum::Router::new().fallback(
                move |method: Method, uri: Uri, headers: HeaderMap, body: axum::body::Bytes| {
                    let (http, real, knob) = (http.clone(), real.clone(), Arc::clone(&knob));
                    let seen = Arc::clone(&seen);
                    // On a task of its own: a settlement the verifier sent goes through even if
                    // the verifier dies meanwhile (as a real facilitator's would).
                    let forward = async move {
                        let fault = if uri.path().ends_with("/settle") {
                            seen.fetch_add(1, Ordering::SeqCst);
                            knob.swap(SettleFault::None as u8, Ordering::SeqCst)
                        } else {
                            SettleFault::None as u8
                        };
                        if fault == SettleFault::Hold as u8 {
                            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
                        }
                        if fault == SettleFault::Drop as u8 {
                            return (StatusCode::BAD_GATEWAY, "dropped").into_response();
                        }
                        let mut req = http.request(method, format!("{real}{uri}")).body(body);
                        if let Some(ct) = headers.get("content-type") {
                            req = req.header("content-type", ct.clone());
                        }
                        let Ok(resp) = req.send().await else {
                            return StatusCode::BAD_GATEWAY.into_response();
                        };
                        let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
                        let bytes = resp.bytes().await.unwrap_or_default();
                        if fault == SettleFault::LoseAnswer as u8 {
                            return (StatusCode::BAD_GATEWAY, "answer lost").into_response();
                        }
                        (status, [("content-type", "application/json")], bytes).into_response()
                    };
                    async move {
                        tokio::spawn(forward)
                            .await
                            .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
                    }
                },
            )
        });
        FaultyFacilitator {
            url: server.url.clone(),
            fault,
            settles,
            _server: server,
        }
    }

    /// How many `/settle` requests arrived.
    pub fn settles_seen(&self) -> usize {
        self.settles.load(Ordering::SeqCst)
    }

    /// Applies `fault` to the next `/settle` only.
    pub fn next_settle(&self, fault: SettleFault) {
        self.fault.store(fault as u8, Ordering::SeqCst);
    }
}
