//! The route table and its sources: the offers file (polled) and, with `--route-source kube`
//! or `both`, the cluster's ServiceOffers (watched, see [`super::kube_source`]).
//!
//! A [`RouteTable`] is immutable; a reload builds a new one off the request path and swaps it
//! in with one atomic pointer store ([`ArcSwap`]). A request holds the table it started with
//! until it finishes, so a swap never fails or changes a request in flight.
//!
//! The sources are merged like the obol-stack's `ConfigAccumulator`: the file gives the base
//! (`wallet`, `chain`, `facilitatorURL`, `verifyOnly`) and, with `file` or `both`, its routes;
//! the ServiceOffers give routes that come first (they win over the file's). Each offer is
//! resolved on its own against the base (its empty `network`/`payTo` inherit `chain`/`wallet`),
//! so a broken offer is reported and blocked without stopping the others.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use alloy_primitives::{B256, Keccak256};
use arc_swap::ArcSwap;

use super::kube_source::{KubeOffer, OfferReport, desired_conditions};
use super::metrics::{LabelKey, Metrics, OfferSeries};
use super::respond::UnpaidCache;
use crate::offers::kube::{OfferProblem, Rendered, reason};
use crate::offers::resolve::{Problem, Resolver};
use crate::offers::{self, InvalidOffers, Matcher, Pattern, PricingConfig, Route, RouteRule};
use crate::x402::facilitator::{FacilitatorClient, FacilitatorConfig};
use crate::x402::networks::Registry;

/// A route with what the daemon attaches to it.
#[derive(Debug)]
pub struct LiveRoute {
    pub route: Route,
    pub series: Arc<OfferSeries>,
    /// The last unpaid 402 rendered for this route.
    pub unpaid: UnpaidCache,
}

/// An offer the verifier knows but cannot serve (its ServiceOffer is broken): its path is
/// answered 503 `offer_unavailable` instead of being let through for free.
#[derive(Debug)]
pub struct Unavailable {
    pub offer_namespace: String,
    pub offer_name: String,
    pub pattern: String,
    pub reason: String,
    pub message: String,
    /// How many served routes come before it in priority order.
    rank: usize,
}

impl Unavailable {
    /// 503 `offer_unavailable`: the seller's offer is broken; nothing is charged or let through.
    pub fn refusal(&self) -> super::refusal::Refusal {
        super::refusal::Refusal::OfferUnavailable {
            offer: format!("{}/{}", self.offer_namespace, self.offer_name),
            detail: format!("{}: {}", self.reason, self.message),
        }
    }
}

/// What a path leads to.
#[derive(Debug)]
pub enum Lookup<'a> {
    Route(&'a Arc<LiveRoute>),
    Unavailable(&'a Arc<Unavailable>),
    /// No route: refused (404), in both modes.
    None,
}

/// One generation of routes.
#[derive(Debug)]
pub struct RouteTable {
    pub matcher: Matcher<Arc<LiveRoute>>,
    /// Broken offers, matched after the routes ranked before them.
    pub unavailable: Matcher<Arc<Unavailable>>,
    pub facilitator: Arc<FacilitatorClient>,
    /// ForwardAuth settles before granting: unless `--verify-only`, or `verifyOnly: true` in
    /// the file without `--settle-before-grant`. Verify-only is only ever what was asked for.
    pub settle_before_grant: bool,
    /// False only for the placeholder before the first successful load.
    pub loaded: bool,
}

impl RouteTable {
    /// The first route matching `path` (no query string).
    pub fn find(&self, path: &str) -> Option<&Arc<LiveRoute>> {
        self.matcher.find(path).map(|(_, r)| r)
    }

    /// The first route or broken offer matching `path` (no query string), in priority order.
    pub fn lookup(&self, path: &str) -> Lookup<'_> {
        let route = self.matcher.find(path);
        if !self.unavailable.is_empty()
            && let Some((_, u)) = self.unavailable.find(path)
            && route.is_none_or(|(i, _)| u.rank <= i)
        {
            return Lookup::Unavailable(u);
        }
        match route {
            Some((_, r)) => Lookup::Route(r),
            None => Lookup::None,
        }
    }

    pub fn len(&self) -> usize {
        self.matcher.len()
    }

    pub fn is_empty(&self) -> bool {
        self.matcher.is_empty()
    }
}

/// Which sources routes come from (`--route-source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SourceKind {
    /// The offers file only.
    #[default]
    File,
    /// ServiceOffers; the file gives only the base keys (its routes are ignored).
    Kube,
    /// ServiceOffers first, then the file's routes.
    Both,
}

impl SourceKind {
    /// The file's routes are served.
    pub fn file_routes(self) -> bool {
        matches!(self, SourceKind::File | SourceKind::Both)
    }

    /// ServiceOffers are watched.
    pub fn kube(self) -> bool {
        matches!(self, SourceKind::Kube | SourceKind::Both)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::File => "file",
            SourceKind::Kube => "kube",
            SourceKind::Both => "both",
        }
    }
}

/// Where routes come from and how they are turned into tables.
pub struct RouteSource {
    pub path: PathBuf,
    pub registry: Registry,
    /// `--facilitator`; wins over the file's `facilitatorURL`.
    pub facilitator_override: Option<String>,
    pub facilitator_config: FacilitatorConfig,
    /// The HTTP client every facilitator client of this source shares (one TLS root store,
    /// one connection pool).
    pub http: reqwest::Client,
    /// `--verify-only` (`Some(true)`) or `--settle-before-grant` (`Some(false)`); `None`:
    /// the file's `verifyOnly`.
    pub verify_only: Option<bool>,
    pub metrics: Arc<Metrics>,
    pub kind: SourceKind,
    /// What the sources last delivered (see [`SourceState`]).
    pub state: SourceState,
}

/// The last good input of each source, merged on every change.
pub struct SourceState {
    merged: Mutex<Merged>,
    reports: tokio::sync::watch::Sender<Arc<Vec<OfferReport>>>,
}

impl Default for SourceState {
    fn default() -> Self {
        SourceState {
            merged: Mutex::new(Merged::default()),
            reports: tokio::sync::watch::channel(Arc::new(Vec::new())).0,
        }
    }
}

impl SourceState {
    /// The per-offer verdicts of every rebuild (for the ServiceOffer status writer).
    pub fn reports(&self) -> tokio::sync::watch::Receiver<Arc<Vec<OfferReport>>> {
        self.reports.subscribe()
    }
}

#[derive(Default)]
struct Merged {
    /// The last valid offers file (`None` until the first one loaded).
    base: Option<PricingConfig>,
    /// The last complete view of the ServiceOffers (`None` until the first list).
    offers: Option<Arc<Vec<KubeOffer>>>,
    /// The problem last logged per offer, so that each is logged once per change.
    logged: HashMap<(String, String), String>,
    /// Routes of the file ignored in kube mode, last warned about.
    ignored_file_routes: usize,
}

fn lock(m: &Mutex<Merged>) -> std::sync::MutexGuard<'_, Merged> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the poller remembers about the file it loaded last.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    exists: bool,
    hash: Option<B256>,
}

/// Why a load failed (the old table stays).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    File(#[from] offers::FileError),
    #[error("the offers file {path} has invalid routes: {source}")]
    Invalid {
        path: PathBuf,
        source: offers::InvalidOffers,
    },
    #[error("facilitator: {0}")]
    Facilitator(String),
    #[error("the offers file {0} disappeared; keeping the routes loaded before")]
    Vanished(PathBuf),
}

fn stat(path: &Path) -> Stamp {
    match std::fs::metadata(path) {
        Ok(m) => Stamp {
            modified: m.modified().ok(),
            len: m.len(),
            exists: true,
            hash: None,
        },
        Err(_) => Stamp::default(),
    }
}

impl RouteSource {
    /// The facilitator URL in effect for `cfg`.
    pub fn facilitator_url(&self, cfg: &PricingConfig) -> String {
        self.facilitator_override
            .clone()
            .or_else(|| cfg.facilitator_url.clone().filter(|s| !s.trim().is_empty()))
            .unwrap_or_else(|| offers::DEFAULT_FACILITATOR_URL.to_string())
    }

    /// Checks a newly read offers file: its routes (when served) and facilitator URL resolve;
    /// with ServiceOffers also its `chain` and `wallet`, which offers inherit.
    fn check_base(&self, cfg: &PricingConfig) -> Result<(), LoadError> {
        let invalid = |source| LoadError::Invalid {
            path: self.path.clone(),
            source,
        };
        // With the file alone, the rebuild that follows resolves (and so checks) every route;
        // with ServiceOffers too, the table may wait for them, so the file is checked now.
        if self.kind.file_routes() && self.kind.kube() {
            offers::resolve(cfg, &self.registry).map_err(invalid)?;
        } else {
            offers::resolve(&cfg.without_routes(), &self.registry).map_err(invalid)?;
        }
        if self.kind.kube() {
            let mut problems = Vec::new();
            if let Some(c) = cfg.chain.as_deref().filter(|c| !c.trim().is_empty())
                && let Err(e) = self.registry.resolve_or_err(c)
            {
                problems.push(Problem {
                    at: "chain".into(),
                    message: e.to_string(),
                });
            }
            if let Some(w) = cfg.wallet.as_deref().filter(|w| !w.trim().is_empty())
                && offers::resolve::parse_address(w).is_none()
            {
                problems.push(Problem {
                    at: "wallet".into(),
                    message: format!("{w:?} is not a 0x address (40 hex digits)"),
                });
            }
            if !problems.is_empty() {
                return Err(invalid(InvalidOffers(problems)));
            }
        }
        Ok(())
    }

    /// Whether an offers file has been loaded.
    pub fn base_loaded(&self) -> bool {
        lock(&self.state.merged).base.is_some()
    }

    /// Takes a newly read offers file: checks it, then rebuilds and installs the table (once
    /// every source delivered). A broken file keeps the previous one. Returns the number of
    /// routes installed (`None`: still waiting for the ServiceOffers).
    pub fn set_base(
        &self,
        cfg: PricingConfig,
        current: &ArcSwap<RouteTable>,
    ) -> Result<Option<usize>, LoadError> {
        self.check_base(&cfg)?;
        let mut merged = lock(&self.state.merged);
        if !self.kind.file_routes() && !cfg.routes.is_empty() {
            if merged.ignored_file_routes != cfg.routes.len() {
                tracing::warn!(
                    file = %self.path.display(),
                    routes = cfg.routes.len(),
                    "--route-source kube ignores the routes of the offers file (only wallet, chain, \
                     facilitatorURL and verifyOnly apply); use --route-source both to serve them too"
                );
            }
            merged.ignored_file_routes = cfg.routes.len();
        }
        let old = merged.base.replace(cfg);
        match self.rebuild(&mut merged, current) {
            Ok(n) => Ok(n),
            Err(e) => {
                merged.base = old;
                Err(e)
            }
        }
    }

    /// Takes a complete view of the ServiceOffers (sorted by namespace and name) and rebuilds.
    /// Returns the number of routes installed (`None`: no offers file loaded yet).
    pub fn set_offers(
        &self,
        offers: Vec<KubeOffer>,
        current: &ArcSwap<RouteTable>,
    ) -> Result<Option<usize>, LoadError> {
        let mut merged = lock(&self.state.merged);
        merged.offers = Some(Arc::new(offers));
        self.rebuild(&mut merged, current)
    }

    /// Builds and installs the merged table when every source has delivered.
    fn rebuild(
        &self,
        merged: &mut Merged,
        current: &ArcSwap<RouteTable>,
    ) -> Result<Option<usize>, LoadError> {
        let Merged {
            base,
            offers,
            logged,
            ..
        } = merged;
        let Some(base) = base.as_mut() else {
            return Ok(None);
        };
        let offers = match (offers, self.kind.kube()) {
            (Some(o), true) => Some(o.as_slice()),
            (None, true) => return Ok(None),
            (_, false) => None,
        };
        // Without ServiceOffers the file's routes are not needed after this build: resolve
        // them by value, each freed as soon as its route exists.
        let owned_routes = (!self.kind.kube()).then(|| std::mem::take(&mut base.routes));
        let previous = current.load();
        let (table, reports) = self.build(base, owned_routes, offers, &previous, logged)?;
        let n = table.len();
        self.install(current, table);
        if self.kind.kube() {
            self.state.reports.send_replace(Arc::new(reports));
        }
        Ok(Some(n))
    }

    /// Builds a table: the ServiceOffers' routes (when given) ahead of the file's (when
    /// served). `previous` lends its facilitator client when the URL did not change (keeps
    /// its connection pool).
    fn build(
        &self,
        cfg: &PricingConfig,
        owned_file_routes: Option<Vec<RouteRule>>,
        kube_offers: Option<&[KubeOffer]>,
        previous: &RouteTable,
        logged: &mut HashMap<(String, String), String>,
    ) -> Result<(RouteTable, Vec<OfferReport>), LoadError> {
        let mut entries: Vec<(Pattern, Arc<LiveRoute>)> = Vec::new();
        let mut blocked: Vec<(Pattern, Arc<Unavailable>)> = Vec::new();
        let mut reports = Vec::new();
        let mut index = 0usize;

        if let Some(kube_offers) = kube_offers {
            let mut resolver = Resolver::new(cfg, &self.registry);
            // Pattern -> the offer that serves it.
            let mut taken: HashMap<String, String> = HashMap::new();
            let mut problems_now: HashMap<(String, String), String> = HashMap::new();
            for offer in kube_offers {
                let key = (offer.namespace.clone(), offer.name.clone());
                let who = format!("{}/{}", offer.namespace, offer.name);
                let (outcome, pattern) = match &offer.rendered {
                    Rendered::Unpublished => continue,
                    Rendered::Invalid { pattern, problem } => {
                        (Err(problem.clone()), pattern.clone())
                    }
                    Rendered::Route(rule) => match taken.get(&rule.pattern) {
                        Some(other) => (
                            Err(OfferProblem::new(
                                reason::PATH_CONFLICT,
                                format!(
                                    "path {} is already served by ServiceOffer {other}",
                                    rule.pattern.trim_end_matches("/*")
                                ),
                            )),
                            None,
                        ),
                        None => match resolver.resolve(index, rule) {
                            Ok(routes) => (Ok(routes), Some(rule.pattern.clone())),
                            Err(problems) => (
                                Err(OfferProblem::new(
                                    reason::INVALID_PAYMENT,
                                    problems.join("; "),
                                )),
                                Some(rule.pattern.clone()),
                            ),
                        },
                    },
                };
                if let Some(p) = &pattern {
                    taken.entry(p.clone()).or_insert_with(|| who.clone());
                }
                match outcome {
                    Ok(routes) => {
                        // The last route is the offer's own pattern at its price.
                        if let Some(own) = routes.last() {
                            reports
                                .push(OfferReport::new(offer, desired_conditions(offer, Ok(own))));
                        }
                        // Every route of one offer shares the offer's one series.
                        for route in routes {
                            let series = self.metrics.series(
                                &route.offer_namespace,
                                &route.offer_name,
                                route.chain(),
                            );
                            let pattern = Pattern::parse(&route.pattern);
                            entries.push((
                                pattern,
                                Arc::new(LiveRoute {
                                    route,
                                    series,
                                    unpaid: UnpaidCache::default(),
                                }),
                            ));
                            index += 1;
                        }
                    }
                    Err(problem) => {
                        let text = problem.to_string();
                        if logged.get(&key) != Some(&text) {
                            tracing::warn!(
                                offer = %who,
                                reason = problem.reason,
                                "ServiceOffer {who} is not served: {}",
                                problem.message
                            );
                        }
                        problems_now.insert(key, text);
                        reports.push(OfferReport::new(
                            offer,
                            desired_conditions(offer, Err(&problem)),
                        ));
                        if let Some(p) = pattern
                            && problem.reason != reason::PATH_CONFLICT
                        {
                            blocked.push((
                                Pattern::parse(&p),
                                Arc::new(Unavailable {
                                    offer_namespace: offer.namespace.clone(),
                                    offer_name: offer.name.clone(),
                                    pattern: p,
                                    reason: problem.reason.to_string(),
                                    message: problem.message.clone(),
                                    rank: index,
                                }),
                            ));
                        }
                    }
                }
            }
            for key in logged.keys() {
                if !problems_now.contains_key(key) {
                    tracing::info!(offer = %format!("{}/{}", key.0, key.1), "ServiceOffer problem resolved or offer gone");
                }
            }
            *logged = problems_now;
        }

        if self.kind.file_routes() {
            let invalid = |source| LoadError::Invalid {
                path: self.path.clone(),
                source,
            };
            let first = index;
            let live = |mut route: Route| {
                route.index += first;
                let series =
                    self.metrics
                        .series(&route.offer_namespace, &route.offer_name, route.chain());
                let pattern = Pattern::parse(&route.pattern);
                let live = LiveRoute {
                    route,
                    series,
                    unpaid: UnpaidCache::default(),
                };
                (pattern, Arc::new(live))
            };
            let file_entries = match owned_file_routes {
                Some(rules) => offers::resolve_owned(cfg, rules, &self.registry, live),
                None => offers::resolve(cfg, &self.registry)
                    .map(|routes| routes.into_iter().map(live).collect()),
            }
            .map_err(invalid)?;
            entries.extend(file_entries);
        }

        let url = self.facilitator_url(cfg);
        let facilitator = if previous.loaded
            && previous.facilitator.base_url() == url.trim().trim_end_matches('/')
        {
            Arc::clone(&previous.facilitator)
        } else {
            Arc::new(
                FacilitatorClient::with_client(
                    self.http.clone(),
                    &url,
                    self.facilitator_config.clone(),
                )
                .map_err(|e| LoadError::Facilitator(e.to_string()))?,
            )
        };
        Ok((
            RouteTable {
                matcher: Matcher::new(entries),
                unavailable: Matcher::new(blocked),
                facilitator,
                settle_before_grant: settles_before_grant(self.verify_only, cfg.verify_only),
                loaded: true,
            },
            reports,
        ))
    }

    /// Swaps `table` in and removes the metric series of offers it no longer has.
    pub fn install(&self, current: &ArcSwap<RouteTable>, table: RouteTable) {
        let keep: HashSet<LabelKey> = table
            .matcher
            .entries()
            .map(|(_, r)| r.series.key().clone())
            .collect();
        current.store(Arc::new(table));
        let removed = self.metrics.retain(&keep);
        if removed > 0 {
            tracing::info!(removed, "removed the metric series of offers that are gone");
        }
    }

    /// Loads the file if it changed since `stamp`. `Ok(None)`: unchanged.
    pub fn load_if_changed(
        &self,
        stamp: &mut Stamp,
        current: &ArcSwap<RouteTable>,
    ) -> Result<Option<usize>, LoadError> {
        let before = stamp.clone();
        let result = self.load_if_changed_inner(stamp, current);
        if *stamp != before {
            // Parsing 10,000 routes allocates tens of MiB that are free again now.
            release_free_memory();
        }
        result
    }

    fn load_if_changed_inner(
        &self,
        stamp: &mut Stamp,
        current: &ArcSwap<RouteTable>,
    ) -> Result<Option<usize>, LoadError> {
        let mut now = stat(&self.path);
        let loaded = self.base_loaded();
        if now.exists == stamp.exists
            && now.modified == stamp.modified
            && now.len == stamp.len
            && loaded
        {
            return Ok(None);
        }
        let cfg = if now.exists {
            let read_error = |source| offers::FileError::Read {
                path: self.path.clone(),
                source,
            };
            now.hash = Some(hash_file(&self.path).map_err(read_error)?);
            if loaded && now.hash == stamp.hash {
                // Touched, not changed.
                *stamp = now;
                return Ok(None);
            }
            // Parsed as it is read: with 10,000 offers, holding the text too would add 1.8 MB
            // to the moment a reload already holds two tables.
            let file = std::fs::File::open(&self.path).map_err(read_error)?;
            match offers::config::parse_reader(std::io::BufReader::new(file), &self.path) {
                Ok(cfg) => cfg,
                Err(e) => {
                    // Not again until the file changes.
                    *stamp = now;
                    return Err(e.into());
                }
            }
        } else if loaded {
            // A file that disappears after a successful load is most likely being replaced;
            // opening every paid route for free would be the worst reading of it.
            *stamp = now;
            return Err(LoadError::Vanished(self.path.clone()));
        } else {
            PricingConfig::default()
        };
        let result = self.set_base(cfg, current);
        *stamp = now;
        // `Some(0)` when the table waits for the ServiceOffers: the file did load.
        result.map(|n| Some(n.unwrap_or(0)))
    }
}

/// The keccak-256 of a file, read in 64 KiB pieces.
fn hash_file(path: &Path) -> std::io::Result<B256> {
    use std::io::Read as _;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Keccak256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok(hasher.finalize()),
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Gives freed heap pages back to the OS. glibc keeps what a reload's YAML parse allocated
/// (per thread arena) otherwise, and the resident size would stay at the reload's peak.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release_free_memory() {
    unsafe extern "C" {
        fn malloc_trim(pad: usize) -> std::ffi::c_int;
    }
    // SAFETY: glibc's malloc_trim has no preconditions; it only releases free memory.
    unsafe {
        malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_memory() {}

/// Whether ForwardAuth settles before its 200: the flag (`--verify-only` = `Some(true)`,
/// `--settle-before-grant` = `Some(false)`) wins over the file's `verifyOnly`; neither: settle.
/// Verify-only (access without payment) is only ever what was asked for.
pub(super) fn settles_before_grant(flag: Option<bool>, file: Option<bool>) -> bool {
    !flag.or(file).unwrap_or(false)
}

/// A placeholder table before the first load: nothing is served as free, `/readyz` is 503.
pub fn not_loaded(facilitator: Arc<FacilitatorClient>) -> RouteTable {
    RouteTable {
        matcher: Matcher::new(Vec::new()),
        unavailable: Matcher::new(Vec::new()),
        facilitator,
        settle_before_grant: false,
        loaded: false,
    }
}

/// Polls the offers file every `interval` until `stop` resolves; a broken file keeps the old
/// table and logs the error once per change.
pub async fn watch(
    source: Arc<RouteSource>,
    current: Arc<ArcSwap<RouteTable>>,
    mut stamp: Stamp,
    interval: Duration,
) {
    let mut tick = tokio::time::interval(interval.max(Duration::from_millis(50)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut last_error: Option<String> = None;
    loop {
        tick.tick().await;
        let (src, cur, mut st) = (Arc::clone(&source), Arc::clone(&current), stamp.clone());
        // Parsing and resolving 10,000 routes takes milliseconds: keep it off the request
        // threads.
        let result = tokio::task::spawn_blocking(move || {
            let r = src.load_if_changed(&mut st, &cur);
            (r, st)
        })
        .await;
        let Ok((result, new_stamp)) = result else {
            continue;
        };
        let changed = new_stamp != stamp;
        stamp = new_stamp;
        match result {
            Ok(Some(n)) => {
                last_error = None;
                tracing::info!(routes = n, file = %source.path.display(), "offers reloaded");
            }
            Ok(None) => {}
            Err(e) => {
                let msg = e.to_string();
                if changed || last_error.as_deref() != Some(msg.as_str()) {
                    tracing::error!("offers not reloaded, keeping the previous routes: {msg}");
                }
                last_error = Some(msg);
            }
        }
    }
}
