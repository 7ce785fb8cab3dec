//! The route table and its source: the offers file, polled and hot-swapped.
//!
//! A [`RouteTable`] is immutable; a reload builds a new one off the request path and swaps it
//! in with one atomic pointer store ([`ArcSwap`]). A request holds the table it started with
//! until it finishes, so a swap never fails or changes a request in flight.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use alloy_primitives::{B256, keccak256};
use arc_swap::ArcSwap;

use super::metrics::{LabelKey, Metrics, OfferSeries};
use crate::offers::{self, Matcher, PricingConfig, Route};
use crate::x402::facilitator::{FacilitatorClient, FacilitatorConfig};
use crate::x402::networks::Registry;

/// A route with what the daemon attaches to it.
#[derive(Debug)]
pub struct LiveRoute {
    pub route: Route,
    pub series: Arc<OfferSeries>,
}

/// One generation of routes.
#[derive(Debug)]
pub struct RouteTable {
    pub matcher: Matcher<Arc<LiveRoute>>,
    pub facilitator: Arc<FacilitatorClient>,
    /// ForwardAuth settles before granting (flag, or `verifyOnly: false` in the file).
    pub settle_before_grant: bool,
    /// False only for the placeholder before the first successful load.
    pub loaded: bool,
}

impl RouteTable {
    /// The first route matching `path` (no query string).
    pub fn find(&self, path: &str) -> Option<&Arc<LiveRoute>> {
        self.matcher.find(path).map(|(_, r)| r)
    }

    pub fn len(&self) -> usize {
        self.matcher.len()
    }

    pub fn is_empty(&self) -> bool {
        self.matcher.is_empty()
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
    /// `--settle-before-grant`.
    pub settle_before_grant: bool,
    pub metrics: Arc<Metrics>,
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

    /// Builds a table from file content. `previous` lends its facilitator client when the URL
    /// did not change (keeps its connection pool).
    pub fn build(
        &self,
        cfg: &PricingConfig,
        previous: Option<&RouteTable>,
    ) -> Result<RouteTable, LoadError> {
        let routes = offers::resolve(cfg, &self.registry).map_err(|source| LoadError::Invalid {
            path: self.path.clone(),
            source,
        })?;
        let url = self.facilitator_url(cfg);
        let facilitator = match previous {
            Some(p) if p.loaded && p.facilitator.base_url() == url.trim().trim_end_matches('/') => {
                Arc::clone(&p.facilitator)
            }
            _ => Arc::new(
                FacilitatorClient::with_client(
                    self.http.clone(),
                    &url,
                    self.facilitator_config.clone(),
                )
                .map_err(|e| LoadError::Facilitator(e.to_string()))?,
            ),
        };
        let entries = routes
            .into_iter()
            .map(|route| {
                let series =
                    self.metrics
                        .series(&route.offer_namespace, &route.offer_name, route.chain());
                let pattern = crate::offers::Pattern::parse(&route.pattern);
                (pattern, Arc::new(LiveRoute { route, series }))
            })
            .collect();
        Ok(RouteTable {
            matcher: Matcher::new(entries),
            facilitator,
            settle_before_grant: self.settle_before_grant || cfg.verify_only == Some(false),
            loaded: true,
        })
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
        let previous = current.load();
        if now.exists == stamp.exists
            && now.modified == stamp.modified
            && now.len == stamp.len
            && previous.loaded
        {
            return Ok(None);
        }
        let cfg = if now.exists {
            let text = std::fs::read(&self.path).map_err(|source| offers::FileError::Read {
                path: self.path.clone(),
                source,
            })?;
            now.hash = Some(keccak256(&text));
            if previous.loaded && now.hash == stamp.hash {
                // Touched, not changed.
                *stamp = now;
                return Ok(None);
            }
            let text = String::from_utf8_lossy(&text);
            match offers::config::parse(&text, &self.path) {
                Ok(cfg) => cfg,
                Err(e) => {
                    // Not again until the file changes.
                    *stamp = now;
                    return Err(e.into());
                }
            }
        } else if previous.loaded {
            // A file that disappears after a successful load is most likely being replaced;
            // opening every paid route for free would be the worst reading of it.
            *stamp = now;
            return Err(LoadError::Vanished(self.path.clone()));
        } else {
            PricingConfig::default()
        };
        let table = match self.build(&cfg, Some(&previous)) {
            Ok(t) => t,
            Err(e) => {
                *stamp = now;
                return Err(e);
            }
        };
        let n = table.len();
        self.install(current, table);
        *stamp = now;
        Ok(Some(n))
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

/// A placeholder table before the first load: nothing is served as free, `/readyz` is 503.
pub fn not_loaded(facilitator: Arc<FacilitatorClient>) -> RouteTable {
    RouteTable {
        matcher: Matcher::new(Vec::new()),
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
