//! `obol serve buyer`: the paying sidecar. An OpenAI-compatible reverse proxy (port 8402) that
//! answers a seller's 402 with a pre-signed authorization from a bounded pool, or with a live
//! signature when an upstream allows it, under spend caps that hold under concurrency and
//! across restarts. Compatible with the obol-stack `x402-buyer`.
//!
//! - [`config`] — the per-upstream config and auth files (+ budget fields);
//! - [`source`] — [`PoolSource`], the producers of upstreams ([`FileSource`]), merged on every
//!   reload;
//! - [`kube_source`] — [`KubeSource`]: the PurchaseRequests of a namespace, their status and
//!   auto-refill;
//! - [`upstream`] — resolution against the network registry, the routing table;
//! - [`pool`] — hold → confirm / release of pre-signed auths;
//! - [`budget`] — `maxSpendPerDay` (UTC day) and `maxTotal`, counting every authorization
//!   handed out until it is provably unusable;
//! - [`state`] — consumed keys, budget counters and handed-out authorizations, written ahead
//!   of every payment;
//! - [`payment`] — 402 → agreed requirement → payment header;
//! - [`proxy`] — the HTTP endpoints;
//! - [`metrics`] — `obol_x402_buyer_*`.

pub mod budget;
pub mod config;
pub mod kube_source;
pub mod metrics;
pub mod payment;
pub mod pool;
pub mod proxy;
pub mod source;
pub mod state;
pub mod status;
pub mod upstream;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;

pub use self::kube_source::{KubeSource, KubeSourceConfig};
use self::metrics::Metrics;
use self::pool::AuthPool;
pub use self::source::{FileSource, PoolSource, ReloadHandle, SourceSnapshot, UpstreamSpec};
use self::state::{StateError, StateStore};
use self::status::UpstreamStatus;
use self::upstream::{Table, Upstream};
use crate::buyer::wallet::Wallet;
pub use crate::daemon::ListenError;
use crate::x402::networks::Registry;

/// The time, in Unix seconds. Injectable for tests.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}

/// The default `--listen`: loopback only (in a pod, LiteLLM reaches the sidecar over the pod's
/// loopback).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8402";

/// A handed-out authorization is asked about on chain only this long after its
/// `validBefore` (the chain's clock may lag this one's).
pub const UNUSABLE_GRACE_SECS: u64 = 30;
/// Most handed-out authorizations asked about per reload tick.
const SWEEP_BATCH: usize = 64;

/// Everything the daemon needs.
pub struct SidecarConfig {
    /// `127.0.0.1:8402` (the default), `[::1]:8402`, `localhost:8402`, `:8402` (all interfaces).
    pub listen: String,
    pub state_path: PathBuf,
    pub reload_interval: Duration,
    pub registry: Registry,
    /// The wallet for upstreams with `liveSigning`; `None`: live signing is unavailable.
    pub signer: Option<Arc<Wallet>>,
    /// Per-request cap of live signing, decimal in the asset's units (USDC), e.g. "0.10".
    pub max_amount: String,
    pub sources: Vec<Arc<dyn PoolSource>>,
    pub clock: Arc<dyn Clock>,
    /// Longest validity a 402 may ask of a live signature (`maxTimeoutSeconds`), seconds.
    pub max_timeout: u64,
    /// Bearer token that lets a peer off loopback use `/admin/*`; `None`: loopback only.
    pub admin_token: Option<String>,
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Listen(#[from] ListenError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("server error: {0}")]
    Server(std::io::Error),
}

/// The last merged snapshot, to skip unchanged reloads and keep the last good version of an
/// upstream whose update is broken.
#[derive(Default)]
struct Loaded {
    specs: BTreeMap<String, UpstreamSpec>,
    issues: BTreeMap<String, String>,
    /// The last snapshot of each source (by index) that could be read: a source that fails
    /// keeps its upstreams while the others update.
    last_good: Vec<Option<SourceSnapshot>>,
}

/// Shared by every handler.
pub struct App {
    pub table: ArcSwap<Table>,
    pub store: StateStore,
    pub metrics: Metrics,
    pub registry: Registry,
    pub signer: Option<Arc<Wallet>>,
    pub clock: Arc<dyn Clock>,
    /// Client for upstreams: no redirects, no overall timeout (answers stream for minutes).
    pub http: reqwest::Client,
    max_amount: String,
    /// Longest validity a 402 may ask of a live signature, seconds (`--max-timeout`).
    pub max_timeout: u64,
    /// See [`SidecarConfig::admin_token`]. Never logged.
    pub(crate) admin_token: Option<String>,
    /// One pool per upstream name, kept across reloads.
    pools: Mutex<HashMap<String, Arc<AuthPool>>>,
    sources: Vec<Arc<dyn PoolSource>>,
    loaded: tokio::sync::Mutex<Loaded>,
    reload: ReloadHandle,
    reload_rx: Mutex<Option<tokio::sync::mpsc::Receiver<()>>>,
}

/// How a reload went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    Unchanged,
    Applied { upstreams: usize },
}

impl App {
    /// Opens the state file and builds the (not yet loaded) state.
    pub fn new(config: &SidecarConfig) -> Result<Arc<App>, ServeError> {
        let store = StateStore::open(&config.state_path)?;
        let (reload, reload_rx) = ReloadHandle::channel();
        for source in &config.sources {
            source.attach(reload.clone());
        }
        Ok(Arc::new(App {
            table: ArcSwap::from_pointee(Table::default()),
            store,
            metrics: Metrics::new(),
            registry: config.registry.clone(),
            signer: config.signer.clone(),
            clock: Arc::clone(&config.clock),
            http: upstream_client(),
            max_amount: config.max_amount.clone(),
            max_timeout: config.max_timeout,
            admin_token: config.admin_token.clone(),
            pools: Mutex::new(HashMap::new()),
            sources: config.sources.clone(),
            loaded: tokio::sync::Mutex::new(Loaded::default()),
            reload,
            reload_rx: Mutex::new(Some(reload_rx)),
        }))
    }

    /// Asks the reload loop for a reload; `false` when one is already pending.
    pub fn trigger_reload(&self) -> bool {
        self.reload.trigger()
    }

    /// Every upstream's status, by name.
    pub fn statuses(&self) -> Vec<UpstreamStatus> {
        let now = self.clock.now();
        self.table
            .load()
            .upstreams
            .values()
            .map(|u| UpstreamStatus::of(u, &self.store, now))
            .collect()
    }

    /// Sets the pool gauges of `up`.
    pub fn refresh_gauges(&self, up: &Upstream) {
        up.series.set_pool(
            up.pool.counts().remaining,
            status::spent_count(up, &self.store),
        );
    }

    /// Reads every source and swaps in the new table. `force` rebuilds even when nothing
    /// changed. A source that cannot be read keeps its upstreams of its last good read (none
    /// before the first): the others still update, the sidecar is not ready until every
    /// source was read once, and the error is returned after the table is swapped.
    pub async fn reload(&self, force: bool) -> Result<ReloadOutcome, String> {
        let mut loaded = self.loaded.lock().await;
        let mut specs: BTreeMap<String, UpstreamSpec> = BTreeMap::new();
        let mut issues: BTreeMap<String, String> = BTreeMap::new();
        let mut failures: Vec<String> = Vec::new();
        loaded.last_good.resize(self.sources.len(), None);
        for (i, source) in self.sources.iter().enumerate() {
            let snap = match source.load().await {
                Ok(snap) => {
                    loaded.last_good[i] = Some(snap.clone());
                    snap
                }
                Err(e) => {
                    failures.push(e.to_string());
                    match &loaded.last_good[i] {
                        Some(prev) => prev.clone(),
                        None => continue,
                    }
                }
            };
            for spec in snap.upstreams {
                if let Some(first) = specs.get(&spec.name) {
                    issues.insert(
                        spec.name.clone(),
                        format!(
                            "{} also defines upstream {:?} (from {}); ignored",
                            spec.origin, spec.name, first.origin
                        ),
                    );
                    continue;
                }
                specs.insert(spec.name.clone(), spec);
            }
            for issue in snap.issues {
                issues.insert(
                    issue.name.clone(),
                    format!("{}: {}", issue.origin, issue.message),
                );
            }
        }
        // A broken update keeps the last good version of that upstream.
        for name in issues.keys() {
            if !specs.contains_key(name)
                && let Some(prev) = loaded.specs.get(name)
            {
                specs.insert(name.clone(), prev.clone());
            }
        }
        let ready = loaded.last_good.iter().all(Option::is_some);
        let failed = || Err(failures.join("; "));
        let table_loaded = self.table.load().loaded;
        if !force && table_loaded == ready && loaded.specs == specs && loaded.issues == issues {
            return if failures.is_empty() {
                Ok(ReloadOutcome::Unchanged)
            } else {
                failed()
            };
        }
        for (name, issue) in &issues {
            if loaded.issues.get(name) != Some(issue) {
                tracing::warn!(upstream = %name, "cannot load: {issue}");
            }
        }
        let n = self.apply(&specs, &mut issues, ready);
        loaded.specs = specs;
        loaded.issues = issues;
        if failures.is_empty() {
            Ok(ReloadOutcome::Applied { upstreams: n })
        } else {
            failed()
        }
    }

    fn apply(
        &self,
        specs: &BTreeMap<String, UpstreamSpec>,
        issues: &mut BTreeMap<String, String>,
        ready: bool,
    ) -> usize {
        let now = self.clock.now();
        let previous = self.table.load_full();
        let mut upstreams: BTreeMap<String, Arc<Upstream>> = BTreeMap::new();
        let mut pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        for (name, spec) in specs {
            match upstream::resolve(spec, &self.registry, &self.max_amount, now) {
                Ok(mut resolved) => {
                    let pool = Arc::clone(pools.entry(name.clone()).or_default());
                    let series = self
                        .metrics
                        .series(name, &resolved.remote_model, &resolved.chain);
                    let auths = std::mem::take(&mut resolved.auths);
                    pool.reconcile(auths, || self.store.consumed_keys(name), now);
                    if !resolved.unusable_auths.is_empty() {
                        tracing::warn!(
                            upstream = %name,
                            "unusable pre-signed auths skipped: {:?}",
                            resolved.unusable_auths
                        );
                    }
                    if let Err(why) = &resolved.live_check {
                        tracing::warn!(upstream = %name, "live signing unavailable: {why}");
                    } else if resolved.live_signing && self.signer.is_none() {
                        tracing::warn!(
                            upstream = %name,
                            "live signing configured but no wallet is (see --private-key-file, --signer-url, OBOL_PRIVATE_KEY)"
                        );
                    }
                    let mut up = resolved.into_upstream(pool, series);
                    up.issue = issues.get(name).cloned();
                    upstreams.insert(name.clone(), Arc::new(up));
                }
                Err(message) => {
                    let message = format!("{}: {message}", spec.origin);
                    tracing::warn!(upstream = %name, "cannot load: {message}");
                    if let Some(prev) = previous.upstreams.get(name) {
                        let mut kept = Upstream::clone(prev);
                        kept.issue = Some(message.clone());
                        upstreams.insert(name.clone(), Arc::new(kept));
                    }
                    issues.insert(name.clone(), message);
                }
            }
        }
        pools.retain(|name, _| upstreams.contains_key(name));
        drop(pools);
        let keep: Vec<(String, String, String)> = upstreams
            .values()
            .map(|u| (u.name.clone(), u.remote_model.clone(), u.chain.clone()))
            .collect();
        let removed = self.metrics.retain(&keep);
        let (mut table, conflicts) = Table::new(upstreams);
        table.loaded = ready;
        for c in conflicts {
            tracing::warn!("{c}");
        }
        for up in table.upstreams.values() {
            self.refresh_gauges(up);
        }
        let n = table.upstreams.len();
        tracing::info!(
            upstreams = n,
            models = table.models.len(),
            removed_series = removed,
            "upstreams loaded: {}",
            table
                .upstreams
                .values()
                .map(|u| format!(
                    "{} ({} remaining, model {})",
                    u.name,
                    u.pool.counts().remaining,
                    u.public_model
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
        self.table.store(Arc::new(table));
        n
    }

    /// Gives back the budget of every handed-out authorization that is provably unusable: its
    /// `validBefore` passed (by [`UNUSABLE_GRACE_SECS`] more, for clock skew) and
    /// `authorizationState(from, nonce)` on the network's RPC says it was never used. One the
    /// chain says was used (or cancelled) is counted as spent for good. Without an RPC for the
    /// network, or when it cannot be read, the authorization simply stays counted.
    pub async fn sweep_handed_out(&self) {
        let now = self.clock.now();
        let expired = self
            .store
            .expired_handed_out(now.saturating_sub(UNUSABLE_GRACE_SECS));
        if expired.is_empty() {
            return;
        }
        let mut changed = false;
        for (upstream, h) in expired.into_iter().take(SWEEP_BATCH) {
            let Some(rpc) = self.registry.resolve(&h.chain).and_then(|n| n.rpc.clone()) else {
                continue;
            };
            let a = &h.payload.authorization;
            let (Ok(asset), Ok(from), Ok(nonce)) = (
                h.asset.parse::<alloy_primitives::Address>(),
                a.from.parse::<alloy_primitives::Address>(),
                a.nonce.parse::<alloy_primitives::B256>(),
            ) else {
                continue;
            };
            match crate::buyer::rpc::authorization_state(&rpc, asset, from, nonce).await {
                Ok(false) => {
                    if self.store.drop_unusable(&upstream, h.nonce(), now) {
                        changed = true;
                        tracing::info!(
                            upstream = %upstream,
                            nonce = %h.nonce(),
                            "a handed-out authorization expired unused on chain: its budget is given back"
                        );
                    }
                }
                Ok(true) => {
                    self.store.settled(&upstream, h.nonce());
                    changed = true;
                    tracing::info!(
                        upstream = %upstream,
                        nonce = %h.nonce(),
                        "a handed-out authorization was used on chain: counted as spent"
                    );
                }
                Err(e) => {
                    tracing::debug!(upstream = %upstream, "cannot read authorizationState: {e}");
                }
            }
        }
        if changed {
            for up in self.table.load().upstreams.values() {
                self.refresh_gauges(up);
            }
            if let Err(e) = self.store.persist().await {
                tracing::warn!("{e}");
            }
        }
    }

    /// Reloads every `interval` and whenever [`App::trigger_reload`] asks, and reports the
    /// status to the sources. Runs until aborted.
    pub async fn reload_loop(self: Arc<Self>, interval: Duration) {
        let Some(mut rx) = self
            .reload_rx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        else {
            return;
        };
        let mut tick = tokio::time::interval(interval.max(Duration::from_millis(100)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        let mut last_error: Option<String> = None;
        loop {
            let force = tokio::select! {
                _ = tick.tick() => false,
                msg = rx.recv() => match msg {
                    Some(()) => true,
                    None => return,
                },
            };
            self.sweep_handed_out().await;
            match self.reload(force).await {
                Ok(_) => {
                    if last_error.take().is_some() {
                        tracing::info!("every upstream source is read again");
                    }
                }
                // Once per distinct error, not every tick.
                Err(e) if last_error.as_deref() != Some(e.as_str()) => {
                    tracing::warn!("reload incomplete, keeping what could not be read: {e}");
                    last_error = Some(e);
                }
                Err(_) => {}
            }
            let statuses = self.statuses();
            for source in &self.sources {
                source.report(&statuses).await;
            }
        }
    }
}

/// The client used to reach upstreams.
pub fn upstream_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .user_agent(concat!("obol-buyer/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

/// A sidecar with its state open and its first load done, ready to be served.
pub struct Sidecar {
    pub app: Arc<App>,
    listen: String,
    reload_interval: Duration,
}

impl Sidecar {
    /// Opens the state and makes the first load (a failure is logged; the sidecar then stays
    /// not-ready and keeps trying).
    pub async fn new(config: SidecarConfig) -> Result<Sidecar, ServeError> {
        let app = App::new(&config)?;
        if let Err(e) = app.reload(true).await {
            tracing::error!("upstreams not loaded (not ready until this is fixed): {e}");
        }
        Ok(Sidecar {
            app,
            listen: config.listen,
            reload_interval: config.reload_interval,
        })
    }

    /// Binds and serves until `shutdown` resolves, then drains in-flight requests (≤ 30 s).
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let listener = crate::daemon::bind(&self.listen).await?;
        self.serve_on(listener, shutdown).await
    }

    /// [`Sidecar::serve`] on a bound listener.
    pub async fn serve_on(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let bound = listener.local_addr().map_err(ServeError::Server)?;
        {
            let table = self.app.table.load();
            tracing::info!(
                "obol buyer sidecar listening on {bound} upstreams={} ready={} state={} live_signer={}",
                table.upstreams.len(),
                table.loaded,
                self.app.store.path().display(),
                self.app
                    .signer
                    .as_ref()
                    .map_or("none".to_owned(), |w| w.address().to_string()),
            );
        }
        let reloader = tokio::spawn(Arc::clone(&self.app).reload_loop(self.reload_interval));
        let router = proxy::router(Arc::clone(&self.app));
        let result = crate::daemon::serve(listener, router, shutdown)
            .await
            .map_err(ServeError::Server);
        reloader.abort();
        if let Err(e) = self.app.store.persist().await {
            tracing::error!("{e}");
        }
        result
    }
}
