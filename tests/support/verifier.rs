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
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RecordingUpstream {
    pub fn start() -> RecordingUpstream {
        use axum::http::{HeaderMap, StatusCode, Uri};
        use axum::response::IntoResponse;
        let status = Arc::new(AtomicU16::new(200));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (answer, recorder) = (Arc::clone(&status), Arc::clone(&seen));
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
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
                });
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
        RecordingUpstream {
            url: format!("http://{addr}"),
            status,
            seen,
            stop: Some(stop_tx),
            thread: Some(thread),
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

impl Drop for RecordingUpstream {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
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
