//! Offers in the local offers file: create/update, delete, pause, resume, list.
//!
//! Every change is validated as a whole file before it is written, and written atomically, so
//! the verifier reading the file never sees a half-written or invalid state from us.

use std::path::{Path, PathBuf};

use alloy_primitives::U256;
use serde::Serialize;

use super::config::{self, FileError, LOCAL_NAMESPACE, PricingConfig, RouteRule};
use super::declared::{RouteEntry, RouteView};
use super::resolve::{self, InvalidOffers, valid_name};
use crate::secret::Secret;
use crate::x402::networks::Registry;

/// Why an offer operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OfferError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("the offers would be invalid: {0}")]
    Invalid(#[from] InvalidOffers),
    #[error("offer name {0:?} must be 1-63 characters of a-z, 0-9 and '-'")]
    BadName(String),
    #[error("path {0:?} must start with '/' and contain no '*', '?', '[' or '\\'")]
    BadPath(String),
    #[error("no offer named {0:?}")]
    NotFound(String),
    #[error("path {path} is already used by {other}")]
    PathTaken { path: String, other: String },
    #[error("no payTo given and the offers file has no wallet")]
    NoPayTo,
}

/// What `obol sell create` asks for. `None` keeps the current value on update.
#[derive(Debug, Clone, Default)]
pub struct OfferSpec {
    pub name: String,
    pub upstream: String,
    pub price: String,
    pub chain: Option<String>,
    pub pay_to: Option<String>,
    pub path: Option<String>,
    pub description: Option<String>,
    pub upstream_auth: Option<Secret>,
    pub max_timeout_seconds: Option<u64>,
    /// The declared routes (replacing the offer's; `Some(vec![])` removes them).
    pub routes: Option<Vec<RouteEntry>>,
}

/// Whether `create` made a new offer or changed an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Created {
    Created,
    Updated,
}

/// An offer as `sell list` shows it (no secrets).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OfferView {
    pub name: String,
    pub namespace: String,
    /// The path the offer is sold under (the pattern without a trailing `/*`).
    pub path: String,
    pub pattern: String,
    /// Decimal price in the asset's units.
    pub price: String,
    /// Price in atomic units (decimal string).
    pub amount: String,
    pub asset_symbol: String,
    pub asset: String,
    /// The network's name (e.g. `base-sepolia`).
    pub chain: String,
    /// CAIP-2 id.
    pub network: String,
    pub pay_to: String,
    pub upstream: Option<String>,
    pub description: Option<String>,
    pub paused: bool,
    /// Whether an `Authorization` value is injected upstream (the value is never shown).
    pub upstream_auth: bool,
    /// The declared routes (empty: the whole path is paid at `price`).
    pub routes: Vec<RouteView>,
}

/// The offers file and the registry used to validate it.
pub struct OfferStore {
    path: PathBuf,
    registry: Registry,
}

/// The path an offer is sold under by default.
pub fn default_path(name: &str) -> String {
    format!("/services/{name}")
}

fn check_path(path: &str) -> Result<String, OfferError> {
    let p = path.trim();
    let p = p.strip_suffix("/*").unwrap_or(p);
    let p = if p.len() > 1 {
        p.trim_end_matches('/')
    } else {
        p
    };
    if !p.starts_with('/') || p.contains(['*', '?', '[', '\\', ' ']) || p.len() < 2 {
        return Err(OfferError::BadPath(path.to_string()));
    }
    Ok(p.to_string())
}

impl OfferStore {
    pub fn new(path: impl Into<PathBuf>, registry: Registry) -> Self {
        OfferStore {
            path: path.into(),
            registry,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn load(&self) -> Result<PricingConfig, OfferError> {
        Ok(config::load(&self.path)?)
    }

    fn save(&self, cfg: &PricingConfig) -> Result<(), OfferError> {
        resolve::validate(cfg, &self.registry)?;
        config::save(cfg, &self.path)?;
        Ok(())
    }

    /// Creates the offer, or updates it in place (keeping its position and paused state).
    pub fn create(&self, spec: &OfferSpec) -> Result<(Created, OfferView), OfferError> {
        if !valid_name(&spec.name) {
            return Err(OfferError::BadName(spec.name.clone()));
        }
        let mut cfg = self.load()?;
        let existing = cfg
            .routes
            .iter()
            .position(|r| r.is_offer(LOCAL_NAMESPACE, &spec.name));
        let path = match (&spec.path, existing) {
            (Some(p), _) => check_path(p)?,
            (None, Some(i)) => cfg.routes[i]
                .strip_prefix
                .clone()
                .unwrap_or_else(|| default_path(&spec.name)),
            (None, None) => default_path(&spec.name),
        };
        let pattern = format!("{path}/*");
        if let Some(other) = cfg
            .routes
            .iter()
            .enumerate()
            .find(|(i, r)| Some(*i) != existing && (r.pattern == pattern || r.pattern == path))
        {
            return Err(OfferError::PathTaken {
                path,
                other: other
                    .1
                    .offer_name
                    .as_ref()
                    .map(|n| format!("offer {n}"))
                    .unwrap_or_else(|| format!("route {}", other.1.pattern)),
            });
        }
        let had_pay_to = existing.is_some_and(|i| cfg.routes[i].pay_to.is_some());
        if spec.pay_to.is_none()
            && !had_pay_to
            && cfg.wallet.as_deref().is_none_or(|w| w.trim().is_empty())
        {
            return Err(OfferError::NoPayTo);
        }
        let mut rule = match existing {
            Some(i) => cfg.routes[i].clone(),
            None => RouteRule {
                offer_namespace: Some(LOCAL_NAMESPACE.to_string()),
                offer_name: Some(spec.name.clone()),
                ..Default::default()
            },
        };
        rule.pattern = pattern;
        rule.strip_prefix = Some(path);
        rule.upstream_url = Some(spec.upstream.trim().to_string());
        rule.price = spec.price.trim().to_string();
        if let Some(c) = &spec.chain {
            rule.network = Some(c.trim().to_string());
        }
        if let Some(p) = &spec.pay_to {
            rule.pay_to = Some(p.trim().to_string());
        }
        if let Some(d) = &spec.description {
            rule.description = Some(d.clone());
        }
        if let Some(a) = &spec.upstream_auth {
            rule.upstream_auth = Some(a.clone()).filter(|a| !a.is_empty());
        }
        if let Some(routes) = &spec.routes {
            rule.routes = routes.clone();
        }
        if let Some(t) = spec.max_timeout_seconds {
            rule.max_timeout_seconds = Some(t);
        }
        let (created, index) = match existing {
            Some(i) => {
                cfg.routes[i] = rule;
                (Created::Updated, i)
            }
            None => {
                cfg.routes.push(rule);
                (Created::Created, cfg.routes.len() - 1)
            }
        };
        self.save(&cfg)?;
        let view = self.view(&cfg, index)?;
        Ok((created, view))
    }

    fn position(&self, cfg: &PricingConfig, name: &str) -> Result<usize, OfferError> {
        cfg.routes
            .iter()
            .position(|r| r.is_offer(LOCAL_NAMESPACE, name))
            .ok_or_else(|| OfferError::NotFound(name.to_string()))
    }

    /// Deletes the offer.
    pub fn delete(&self, name: &str) -> Result<(), OfferError> {
        let mut cfg = self.load()?;
        let i = self.position(&cfg, name)?;
        cfg.routes.remove(i);
        self.save(&cfg)
    }

    /// Pauses (`true`) or resumes (`false`) the offer. Returns whether anything changed.
    pub fn set_paused(&self, name: &str, paused: bool) -> Result<bool, OfferError> {
        let mut cfg = self.load()?;
        let i = self.position(&cfg, name)?;
        if cfg.routes[i].paused == paused {
            return Ok(false);
        }
        cfg.routes[i].paused = paused;
        self.save(&cfg)?;
        Ok(true)
    }

    /// Every route of the file, offers and hand-written rules alike, in file order.
    pub fn list(&self) -> Result<Vec<OfferView>, OfferError> {
        let cfg = self.load()?;
        (0..cfg.routes.len()).map(|i| self.view(&cfg, i)).collect()
    }

    fn view(&self, cfg: &PricingConfig, i: usize) -> Result<OfferView, OfferError> {
        let rule = &cfg.routes[i];
        let route = resolve::resolve_rule(cfg, &self.registry, i, rule).ok();
        let path = rule
            .pattern
            .strip_suffix("/*")
            .unwrap_or(&rule.pattern)
            .to_string();
        Ok(match route {
            Some(r) => OfferView {
                name: rule.offer_name.clone().unwrap_or_default(),
                namespace: rule.offer_namespace.clone().unwrap_or_default(),
                path,
                pattern: rule.pattern.clone(),
                price: r.price.clone(),
                amount: r.amount.to_string(),
                asset_symbol: r.asset.symbol.clone(),
                asset: r.asset.address.to_checksum(None),
                chain: r.network.name.clone(),
                network: r.network.caip2.clone(),
                pay_to: r.pay_to.to_checksum(None),
                upstream: r.upstream_url.clone(),
                description: rule.description.clone(),
                paused: r.paused,
                upstream_auth: r.upstream_auth.is_some(),
                routes: RouteView::list(&rule.routes, &r.price),
            },
            // A hand-edited rule that does not resolve: show what is written.
            None => OfferView {
                name: rule.offer_name.clone().unwrap_or_default(),
                namespace: rule.offer_namespace.clone().unwrap_or_default(),
                path,
                pattern: rule.pattern.clone(),
                price: rule.price.clone(),
                amount: U256::ZERO.to_string(),
                asset_symbol: rule.asset_symbol.clone().unwrap_or_default(),
                asset: rule.asset_address.clone().unwrap_or_default(),
                chain: resolve::chain_of(cfg, rule).to_string(),
                network: String::new(),
                pay_to: rule
                    .pay_to
                    .clone()
                    .or_else(|| cfg.wallet.clone())
                    .unwrap_or_default(),
                upstream: rule.upstream_url.clone(),
                description: rule.description.clone(),
                paused: rule.paused,
                upstream_auth: rule.upstream_auth.is_some(),
                routes: RouteView::list(&rule.routes, &rule.price),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAY: &str = "0x2222222222222222222222222222222222222222";

    fn store() -> (tempfile::TempDir, OfferStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = OfferStore::new(dir.path().join("pricing.yaml"), Registry::builtin());
        (dir, s)
    }

    fn spec(name: &str) -> OfferSpec {
        OfferSpec {
            name: name.into(),
            upstream: "http://127.0.0.1:9000".into(),
            price: "0.01".into(),
            pay_to: Some(PAY.into()),
            ..Default::default()
        }
    }

    #[test]
    fn create_writes_the_offer_shape() {
        let (_d, s) = store();
        let (c, v) = s.create(&spec("demo")).unwrap();
        assert_eq!(c, Created::Created);
        assert_eq!(v.path, "/services/demo");
        assert_eq!(v.network, "eip155:84532");
        assert_eq!(v.amount, "10000");
        let cfg = s.load().unwrap();
        let r = &cfg.routes[0];
        assert_eq!(r.pattern, "/services/demo/*");
        assert_eq!(r.strip_prefix.as_deref(), Some("/services/demo"));
        assert_eq!(r.offer_namespace.as_deref(), Some("local"));
        assert_eq!(r.offer_name.as_deref(), Some("demo"));
        assert_eq!(r.upstream_url.as_deref(), Some("http://127.0.0.1:9000"));
        let text = std::fs::read_to_string(s.path()).unwrap();
        assert!(text.contains("offerNamespace: local"), "{text}");
        assert!(
            text.contains("upstreamURL: http://127.0.0.1:9000"),
            "{text}"
        );
    }

    #[test]
    fn create_again_updates_in_place() {
        let (_d, s) = store();
        s.create(&spec("a")).unwrap();
        s.create(&spec("b")).unwrap();
        s.set_paused("a", true).unwrap();
        let mut upd = spec("a");
        upd.price = "0.02".into();
        upd.pay_to = None;
        let (c, v) = s.create(&upd).unwrap();
        assert_eq!(c, Created::Updated);
        assert_eq!(v.price, "0.02");
        assert!(v.paused, "update keeps paused state");
        assert_eq!(v.pay_to, PAY, "update keeps payTo when not given");
        let names: Vec<_> = s.list().unwrap().into_iter().map(|v| v.name).collect();
        assert_eq!(names, ["a", "b"], "position kept");
    }

    #[test]
    fn invalid_input_writes_nothing() {
        let (_d, s) = store();
        s.create(&spec("ok")).unwrap();
        let before = std::fs::read(s.path()).unwrap();
        let mut bad = spec("x");
        bad.price = "0.0000001".into();
        assert!(matches!(s.create(&bad), Err(OfferError::Invalid(_))));
        let mut bad = spec("x");
        bad.pay_to = Some("0xnothex".into());
        assert!(matches!(s.create(&bad), Err(OfferError::Invalid(_))));
        let mut bad = spec("x");
        bad.chain = Some("atlantis".into());
        assert!(matches!(s.create(&bad), Err(OfferError::Invalid(_))));
        let mut bad = spec("x");
        bad.path = Some("no-slash".into());
        assert!(matches!(s.create(&bad), Err(OfferError::BadPath(_))));
        let mut bad = spec("x");
        bad.path = Some("/services/ok".into());
        assert!(matches!(s.create(&bad), Err(OfferError::PathTaken { .. })));
        assert!(matches!(
            s.create(&spec("Bad")),
            Err(OfferError::BadName(_))
        ));
        let mut bad = spec("x");
        bad.pay_to = None;
        assert!(matches!(s.create(&bad), Err(OfferError::NoPayTo)));
        assert_eq!(std::fs::read(s.path()).unwrap(), before);
    }

    #[test]
    fn pay_to_defaults_to_the_wallet() {
        let (_d, s) = store();
        config::save(
            &PricingConfig {
                wallet: Some(PAY.into()),
                ..Default::default()
            },
            s.path(),
        )
        .unwrap();
        let mut sp = spec("w");
        sp.pay_to = None;
        let (_, v) = s.create(&sp).unwrap();
        assert_eq!(v.pay_to, PAY);
    }

    #[test]
    fn delete_pause_resume() {
        let (_d, s) = store();
        s.create(&spec("a")).unwrap();
        assert!(s.set_paused("a", true).unwrap());
        assert!(!s.set_paused("a", true).unwrap());
        assert!(s.list().unwrap()[0].paused);
        assert!(s.set_paused("a", false).unwrap());
        assert!(!s.list().unwrap()[0].paused);
        s.delete("a").unwrap();
        assert!(s.list().unwrap().is_empty());
        assert!(matches!(s.delete("a"), Err(OfferError::NotFound(_))));
        assert!(matches!(
            s.set_paused("zz", true),
            Err(OfferError::NotFound(_))
        ));
    }

    #[test]
    fn paths_are_normalised() {
        assert_eq!(check_path("/x/").unwrap(), "/x");
        assert_eq!(check_path("/x/*").unwrap(), "/x");
        assert!(check_path("/").is_err());
        assert!(check_path("x").is_err());
        assert!(check_path("/a*").is_err());
    }
}
