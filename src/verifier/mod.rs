//! `obol serve verifier`: the seller's x402 payment gate.
//!
//! - [`routes`]: the route table from the offers file (polled) and the ServiceOffers, merged
//!   and swapped atomically;
//! - [`kube_source`]: `--route-source kube|both`: the ServiceOffer watch and status writer;
//! - [`request_path`]: the canonical request path, parsed once at the edge;
//! - [`admit`]: the first phase of every request (ready? path? route? served now?);
//! - [`gate`]: deciding: the payment checks shared by both modes, settlement;
//! - [`respond`]: the 402 answers and receipts; [`refusal`]: every other refusal;
//! - [`forward_auth`]: `/verify` for Traefik ForwardAuth (verify only by default);
//! - [`proxy`]: the paying reverse proxy (settles after the upstream answered 2xx);
//! - [`store`]: the payment-state store (memory, a file, Redis): one payment, one service,
//!   across restarts and replicas; [`replay`]: what identifies a payment;
//! - [`metrics`]: `obol_x402_verifier_*` on `/metrics`.
//!
//! Listeners by trust: the listener that carries the paying proxy carries nothing else that a
//! buyer could use. ForwardAuth (`/verify`, whose 200 carries the offer's `upstreamAuth`) and
//! `/metrics` are served on `--internal-listen`, meant for the cluster network; without one they
//! are served on `--listen` only when that is safe (mode `forward-auth`, which has no public
//! surface, or a loopback `--listen`). Both listeners answer `/healthz` (always 200) and
//! `/readyz` (503 until the first successful route load; it also says whether the
//! payment-state store answers: while it does not, paid requests are refused with 503).

pub mod admit;
pub mod forward_auth;
pub mod gate;
pub mod kube_source;
pub mod metrics;
pub mod outcome;
pub mod proxy;
pub mod refusal;
pub mod replay;
pub mod request_path;
pub mod respond;
pub mod routes;
pub mod store;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};

use self::kube_source::KubeWatch;
use self::metrics::Metrics;
use self::routes::{RouteSource, RouteTable, SourceKind, SourceState, Stamp};
use self::store::{PaymentStore, StoreError, StoreSpec};
pub use crate::daemon::ListenError;
use crate::x402::facilitator::{FacilitatorClient, FacilitatorConfig};
use crate::x402::networks::Registry;

/// Which endpoints are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    ForwardAuth,
    Proxy,
    Both,
}

impl Mode {
    pub fn forward_auth(self) -> bool {
        matches!(self, Mode::ForwardAuth | Mode::Both)
    }
    pub fn proxy(self) -> bool {
        matches!(self, Mode::Proxy | Mode::Both)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::ForwardAuth => "forward-auth",
            Mode::Proxy => "proxy",
            Mode::Both => "both",
        }
    }
}

/// Everything the daemon needs.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// `:8080` (all interfaces), `127.0.0.1:8080`, `[::1]:8080`, `localhost:8080`.
    pub listen: String,
    /// The listener for the cluster network: ForwardAuth and `/metrics`.
    pub internal_listen: Option<String>,
    pub offers_file: PathBuf,
    /// Overrides the file's `facilitatorURL`.
    pub facilitator: Option<String>,
    pub mode: Mode,
    /// ForwardAuth: `Some(true)` grants after `/verify` only (`--verify-only`: access without
    /// payment), `Some(false)` settles before granting (`--settle-before-grant`), `None`
    /// follows the offers file's `verifyOnly` (absent: settle).
    pub verify_only: Option<bool>,
    pub verify_timeout: Duration,
    pub settle_timeout: Duration,
    pub reload_interval: Duration,
    pub registry: Registry,
    /// `--route-source`: the file, the ServiceOffers, or both.
    pub route_source: SourceKind,
    /// The cluster to watch (required with `kube`/`both`).
    pub kube: Option<KubeWatch>,
    /// `--state`: where payment state lives.
    pub state: StoreSpec,
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Listen(#[from] ListenError),
    #[error("invalid facilitator URL: {0}")]
    Facilitator(String),
    #[error("--route-source {0} needs a cluster (no Kubernetes client was configured)")]
    NoCluster(&'static str),
    #[error(
        "--mode both on the non-loopback listener {0} would put ForwardAuth (/verify, which hands out upstream credentials) and /metrics next to the public proxy: give them --internal-listen ADDR (e.g. :9090, reachable only from the cluster network), or use --mode proxy, or listen on 127.0.0.1"
    )]
    InternalListenerNeeded(String),
    #[error("payment state: {0}")]
    State(#[from] StoreError),
    #[error("server error: {0}")]
    Server(std::io::Error),
}

/// Shared by every handler.
pub struct AppState {
    pub table: Arc<ArcSwap<RouteTable>>,
    pub store: Arc<PaymentStore>,
    /// The last failed check of the store (`None`: it answered).
    pub store_error: arc_swap::ArcSwapOption<String>,
    pub metrics: Arc<Metrics>,
    /// Client for upstreams (proxy mode).
    pub upstream: reqwest::Client,
    pub mode: Mode,
    /// The clock of every time check.
    pub clock: gate::Clock,
}

/// Where the internal endpoints (ForwardAuth, `/metrics`) are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Internal {
    /// On the main listener too (mode forward-auth, or a loopback `--listen`).
    OnMain,
    /// Only on the internal listener (or nowhere, without one).
    Separate,
}

fn health_routes(r: Router<Arc<AppState>>) -> Router<Arc<AppState>> {
    r.route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

fn internal_routes(r: Router<Arc<AppState>>, mode: Mode) -> Router<Arc<AppState>> {
    let r = r.route("/metrics", get(metrics_text));
    if mode.forward_auth() {
        r.route("/verify", any(forward_auth::handle))
    } else {
        r
    }
}

async fn not_found() -> Response {
    refusal::Refusal::NoRoute.into_response()
}

/// The main listener's router: the proxy (modes proxy, both), and the internal endpoints when
/// `internal` says they belong here.
pub fn router(state: Arc<AppState>, internal: Internal) -> Router {
    let mut r = health_routes(Router::new());
    if internal == Internal::OnMain {
        r = internal_routes(r, state.mode);
    }
    r = if state.mode.proxy() {
        r.fallback(proxy::handle)
    } else {
        r.fallback(not_found)
    };
    r.with_state(state)
}

/// The internal listener's router: ForwardAuth (modes forward-auth, both) and `/metrics`.
pub fn internal_router(state: Arc<AppState>) -> Router {
    let mode = state.mode;
    internal_routes(health_routes(Router::new()), mode)
        .fallback(not_found)
        .with_state(state)
}

/// Where the internal endpoints go for a main listener bound to `main`.
pub fn placement(
    mode: Mode,
    main: std::net::SocketAddr,
    internal_listen: bool,
) -> Result<Internal, ServeError> {
    if internal_listen {
        return Ok(Internal::Separate);
    }
    if mode == Mode::ForwardAuth || main.ip().is_loopback() {
        return Ok(Internal::OnMain);
    }
    if mode.forward_auth() {
        return Err(ServeError::InternalListenerNeeded(main.to_string()));
    }
    tracing::warn!(
        "/metrics is not served: the proxy listens on {main}, which is not loopback; give --internal-listen ADDR to serve it on the cluster network"
    );
    Ok(Internal::Separate)
}

async fn healthz() -> Response {
    axum::Json(serde_json::json!({"status": "ok"})).into_response()
}

async fn readyz(State(app): State<Arc<AppState>>) -> Response {
    if app.table.load().loaded {
        // An unreachable store keeps the pod ready: unpaid 402s are still answered, paid
        // requests get 503 payment_state_unavailable until it is back.
        let store = app.store.describe();
        let body = match app.store_error.load_full() {
            None => {
                serde_json::json!({"status": "ready", "paymentState": {"store": store, "ok": true}})
            }
            Some(e) => serde_json::json!({
                "status": "ready, degraded: the payment-state store does not answer; paid requests are refused (503) until it does",
                "paymentState": {"store": store, "ok": false, "error": *e},
            }),
        };
        axum::Json(body).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"status": "not ready: routes not loaded"})),
        )
            .into_response()
    }
}

async fn metrics_text(State(app): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
        app.metrics.encode(),
    )
        .into_response()
}

/// The HTTP client for facilitator calls (timeouts are per call, in [`FacilitatorClient`]).
fn facilitator_http(config: &FacilitatorConfig) -> Result<reqwest::Client, ServeError> {
    reqwest::Client::builder()
        .connect_timeout(config.verify_timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("obol/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ServeError::Facilitator(format!("cannot build HTTP client: {e}")))
}

/// A verifier with its routes loaded (or not), ready to be served.
pub struct Verifier {
    pub state: Arc<AppState>,
    source: Arc<RouteSource>,
    stamp: Stamp,
    reload_interval: Duration,
    config: VerifierConfig,
}

impl Verifier {
    /// Builds the state and makes the first load attempt (a broken file is logged; the
    /// verifier then stays not-ready and keeps polling).
    pub fn new(config: VerifierConfig, store: Arc<PaymentStore>) -> Result<Verifier, ServeError> {
        let facilitator_config = FacilitatorConfig {
            verify_timeout: config.verify_timeout,
            settle_timeout: config.settle_timeout,
            ..FacilitatorConfig::default()
        };
        if let Some(url) = &config.facilitator {
            crate::offers::resolve::check_facilitator_url(url).map_err(ServeError::Facilitator)?;
        }
        let metrics = Arc::new(Metrics::new());
        let http = facilitator_http(&facilitator_config)?;
        if config.route_source.kube() && config.kube.is_none() {
            return Err(ServeError::NoCluster(config.route_source.as_str()));
        }
        let source = Arc::new(RouteSource {
            path: config.offers_file.clone(),
            registry: config.registry.clone(),
            facilitator_override: config.facilitator.clone(),
            facilitator_config: facilitator_config.clone(),
            http: http.clone(),
            verify_only: config.verify_only,
            metrics: Arc::clone(&metrics),
            kind: config.route_source,
            state: SourceState::default(),
        });
        let placeholder_url = config
            .facilitator
            .clone()
            .unwrap_or_else(|| crate::offers::DEFAULT_FACILITATOR_URL.to_string());
        let placeholder =
            FacilitatorClient::with_client(http, &placeholder_url, facilitator_config)
                .map_err(|e| ServeError::Facilitator(e.to_string()))?;
        let table = Arc::new(ArcSwap::from_pointee(routes::not_loaded(Arc::new(
            placeholder,
        ))));
        let mut stamp = Stamp::default();
        if let Err(e) = source.load_if_changed(&mut stamp, &table) {
            tracing::error!("offers not loaded (not ready until fixed): {e}");
        }
        let state = Arc::new(AppState {
            table,
            store,
            store_error: arc_swap::ArcSwapOption::empty(),
            metrics,
            upstream: proxy::upstream_client(),
            mode: config.mode,
            clock: gate::Clock::default(),
        });
        Ok(Verifier {
            state,
            source,
            stamp,
            reload_interval: config.reload_interval,
            config,
        })
    }

    /// Binds, logs one line, serves until `shutdown` resolves, then drains in-flight requests
    /// (at most 30 s).
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let listener = crate::daemon::bind(&self.config.listen).await?;
        let internal = match &self.config.internal_listen {
            Some(addr) => Some(crate::daemon::bind(addr).await?),
            None => None,
        };
        self.serve_on(listener, internal, shutdown).await
    }

    /// [`Verifier::serve`] on already bound listeners (the main one and the internal one).
    pub async fn serve_on(
        self,
        listener: tokio::net::TcpListener,
        internal: Option<tokio::net::TcpListener>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let bound = listener.local_addr().map_err(ServeError::Server)?;
        let placement = placement(self.config.mode, bound, internal.is_some())?;
        let internal_bound = match &internal {
            Some(l) => l.local_addr().map_err(ServeError::Server)?.to_string(),
            None if placement == Internal::OnMain => "(on the main listener)".to_string(),
            None => "(none)".to_string(),
        };
        let table = self.state.table.load();
        let cluster = match &self.config.kube {
            Some(k) if self.config.route_source.kube() => format!(
                " cluster={} ({}) namespace={}",
                k.client.server(),
                k.client.source(),
                k.namespace.as_deref().unwrap_or("<all>")
            ),
            _ => String::new(),
        };
        tracing::info!(
            "obol verifier listening on {bound} mode={} routes={} ready={} facilitator={} offers={} route-source={}{cluster} internal={internal_bound}",
            self.config.mode.as_str(),
            table.len(),
            table.loaded,
            table.facilitator.base_url(),
            self.config.offers_file.display(),
            self.config.route_source.as_str(),
        );
        drop(table);

        let mut kube_tasks = Vec::new();
        if let Some(k) = self
            .config
            .kube
            .clone()
            .filter(|_| self.config.route_source.kube())
        {
            if k.write_status {
                kube_tasks.push(tokio::spawn(kube_source::write_statuses(
                    k.client.clone(),
                    self.source.state.reports(),
                )));
            }
            kube_tasks.push(tokio::spawn(kube_source::watch_offers(
                k,
                Arc::clone(&self.source),
                Arc::clone(&self.state.table),
            )));
        }

        let watcher = tokio::spawn(routes::watch(
            Arc::clone(&self.source),
            Arc::clone(&self.state.table),
            self.stamp.clone(),
            self.reload_interval,
        ));
        let state = Arc::clone(&self.state);
        let pruner = tokio::spawn(async move {
            // Checks the store every 5 s (for /readyz), prunes expired entries every minute.
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            for n in 0u64.. {
                tick.tick().await;
                let result = match state.store.check().await {
                    Ok(()) if n % 12 == 0 => state.store.prune(state.clock.now()).await.map(drop),
                    other => other,
                };
                let was_down = state.store_error.load().is_some();
                match result {
                    Ok(()) => {
                        if was_down {
                            tracing::info!(store = %state.store.describe(), "payment-state store answers again");
                        }
                        state.store_error.store(None);
                    }
                    Err(e) => {
                        if !was_down {
                            tracing::error!(store = %state.store.describe(), "payment-state store does not answer; paid requests are refused: {e}");
                        }
                        state.store_error.store(Some(Arc::new(e.to_string())));
                    }
                }
            }
        });

        // One shutdown signal, every listener drains together.
        let mut sites = vec![(listener, router(Arc::clone(&self.state), placement))];
        if let Some(l) = internal {
            sites.push((l, internal_router(Arc::clone(&self.state))));
        }
        let result = crate::daemon::serve_all(sites, &crate::daemon::limits(), shutdown)
            .await
            .map_err(ServeError::Server);
        watcher.abort();
        pruner.abort();
        for t in kube_tasks {
            t.abort();
        }
        result
    }
}

/// The default `--state`: `payment-state.redb` in the offers file's directory.
pub fn default_state_file(offers_file: &std::path::Path) -> PathBuf {
    offers_file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| std::path::Path::new("."))
        .join("payment-state.redb")
}

/// Builds and serves a verifier until `shutdown` resolves.
pub async fn serve(
    config: VerifierConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let store = PaymentStore::open(&config.state).await?;
    tracing::info!(store = %store.describe(), "payment state opened");
    // The first load reads and resolves the offers file: keep it off the async threads.
    let v = tokio::task::spawn_blocking(move || Verifier::new(config, store))
        .await
        .map_err(|e| ServeError::Server(std::io::Error::other(e.to_string())))??;
    v.serve(shutdown).await
}
