//! `obol serve verifier`: the seller's x402 payment gate.
//!
//! - [`routes`]: the route table from the offers file (polled) and the ServiceOffers, merged
//!   and swapped atomically;
//! - [`kube_source`]: `--route-source kube|both`: the ServiceOffer watch and status writer;
//! - [`gate`]: the payment checks shared by both modes, 402 answers, settlement;
//! - [`forward_auth`]: `/verify` for Traefik ForwardAuth (verify only by default);
//! - [`proxy`]: the paying reverse proxy (settles after the upstream answered < 400);
//! - [`replay`]: one payment, one service;
//! - [`metrics`]: `obol_x402_verifier_*` on `/metrics`.
//!
//! Also `/healthz` (always 200) and `/readyz` (503 until the first successful route load).

pub mod forward_auth;
pub mod gate;
pub mod kube_source;
pub mod metrics;
pub mod proxy;
pub mod replay;
pub mod routes;

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
use self::replay::ReplayGuard;
use self::routes::{RouteSource, RouteTable, SourceKind, SourceState, Stamp};
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
    pub offers_file: PathBuf,
    /// Overrides the file's `facilitatorURL`.
    pub facilitator: Option<String>,
    pub mode: Mode,
    pub settle_before_grant: bool,
    pub verify_timeout: Duration,
    pub settle_timeout: Duration,
    pub reload_interval: Duration,
    pub registry: Registry,
    /// `--route-source`: the file, the ServiceOffers, or both.
    pub route_source: SourceKind,
    /// The cluster to watch (required with `kube`/`both`).
    pub kube: Option<KubeWatch>,
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
    #[error("server error: {0}")]
    Server(std::io::Error),
}

/// Shared by every handler.
pub struct AppState {
    pub table: Arc<ArcSwap<RouteTable>>,
    pub replay: Arc<ReplayGuard>,
    pub metrics: Arc<Metrics>,
    /// Client for upstreams (proxy mode).
    pub upstream: reqwest::Client,
    pub mode: Mode,
}

/// The router over `state`.
pub fn router(state: Arc<AppState>) -> Router {
    let mut r = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text));
    if state.mode.forward_auth() {
        r = r.route("/verify", any(forward_auth::handle));
    }
    if state.mode.proxy() {
        r = r.fallback(proxy::handle);
    } else {
        r = r.fallback(|| async {
            gate::error_json(
                StatusCode::NOT_FOUND,
                "not found",
                "no_route",
                None,
                None,
                None,
            )
        });
    }
    r.with_state(state)
}

async fn healthz() -> Response {
    axum::Json(serde_json::json!({"status": "ok"})).into_response()
}

async fn readyz(State(app): State<Arc<AppState>>) -> Response {
    if app.table.load().loaded {
        axum::Json(serde_json::json!({"status": "ready"})).into_response()
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
    pub fn new(config: VerifierConfig) -> Result<Verifier, ServeError> {
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
            settle_before_grant: config.settle_before_grant,
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
            replay: ReplayGuard::new(),
            metrics,
            upstream: proxy::upstream_client(),
            mode: config.mode,
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
        self.serve_on(listener, shutdown).await
    }

    /// [`Verifier::serve`] on an already bound listener.
    pub async fn serve_on(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let bound = listener.local_addr().map_err(ServeError::Server)?;
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
            "obol verifier listening on {bound} mode={} routes={} ready={} facilitator={} offers={} route-source={}{cluster}",
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
        let replay = Arc::clone(&self.state.replay);
        let pruner = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(30));
            loop {
                tick.tick().await;
                replay.prune(gate::unix_now());
            }
        });

        let result = crate::daemon::serve(listener, router(Arc::clone(&self.state)), shutdown)
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

/// Builds and serves a verifier until `shutdown` resolves.
pub async fn serve(
    config: VerifierConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    // The first load reads and resolves the offers file: keep it off the async threads.
    let v = tokio::task::spawn_blocking(move || Verifier::new(config))
        .await
        .map_err(|e| ServeError::Server(std::io::Error::other(e.to_string())))??;
    v.serve(shutdown).await
}
