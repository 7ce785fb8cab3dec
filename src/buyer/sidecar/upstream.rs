//! An upstream as the proxy uses it: the config resolved against the network registry, its
//! usable auths, and the routing table (by name and by model).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use alloy_primitives::{Address, U256};

use super::budget::BudgetLimits;
use super::metrics::UpstreamSeries;
use super::pool::{AuthPool, PoolAuth};
use super::source::UpstreamSpec;
use crate::x402::amount::{self, Rounding};
use crate::x402::networks::{Network, Registry};

/// The model a request names, without any `paid/` and `openai/` prefixes (repeatedly:
/// `openai/paid/qwen` → `qwen`).
pub fn normalize_model(model: &str) -> &str {
    let mut m = model.trim();
    loop {
        if let Some(rest) = m.strip_prefix("paid/") {
            m = rest;
        } else if let Some(rest) = m.strip_prefix("openai/") {
            m = rest;
        } else {
            return m;
        }
    }
}

/// A loaded upstream.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub name: String,
    /// Base URL without a trailing `/`.
    pub url: String,
    /// The model the seller serves (normalised).
    pub remote_model: String,
    /// `paid/<remote_model>`.
    pub public_model: String,
    /// The network as configured.
    pub network_name: String,
    /// The network's CAIP-2 id.
    pub chain: String,
    /// The registry's entry, when obol knows the network.
    pub network: Option<Network>,
    pub pay_to: Address,
    pub asset: Address,
    /// The agreed price per request, atomic units.
    pub price: U256,
    pub limits: BudgetLimits,
    pub live_signing: bool,
    /// `Err(why)` when live signing is configured but cannot be used.
    pub live_check: Result<(), String>,
    pub origin: String,
    /// Auths of the config that are not usable, by reason (for logs and `/status`).
    pub unusable_auths: BTreeMap<&'static str, usize>,
    pub pool: Arc<AuthPool>,
    pub series: Arc<UpstreamSeries>,
    /// The last attempt to load a newer version of this upstream failed (this is the previous).
    pub issue: Option<String>,
}

/// What [`resolve`] produces; the pool and the metric series are attached by the caller.
#[derive(Debug)]
pub struct Resolved {
    pub name: String,
    pub url: String,
    pub remote_model: String,
    pub network_name: String,
    pub chain: String,
    pub network: Option<Network>,
    pub pay_to: Address,
    pub asset: Address,
    pub price: U256,
    pub limits: BudgetLimits,
    pub live_signing: bool,
    pub live_check: Result<(), String>,
    pub origin: String,
    pub auths: Vec<PoolAuth>,
    pub unusable_auths: BTreeMap<&'static str, usize>,
}

impl Resolved {
    pub fn into_upstream(self, pool: Arc<AuthPool>, series: Arc<UpstreamSeries>) -> Upstream {
        Upstream {
            public_model: format!("paid/{}", self.remote_model),
            name: self.name,
            url: self.url,
            remote_model: self.remote_model,
            network_name: self.network_name,
            chain: self.chain,
            network: self.network,
            pay_to: self.pay_to,
            asset: self.asset,
            price: self.price,
            limits: self.limits,
            live_signing: self.live_signing,
            live_check: self.live_check,
            origin: self.origin,
            unusable_auths: self.unusable_auths,
            pool,
            series,
            issue: None,
        }
    }
}

fn address(field: &str, s: &str) -> Result<Address, String> {
    s.trim()
        .parse::<Address>()
        .map_err(|_| format!("`{field}` {s:?} is not an address"))
}

/// Resolves a spec: network → CAIP-2, addresses, amounts, and which auths are usable at `now`
/// (the right payee and value, not expired, with a consume key). `max_amount` is the
/// per-request cap of live signing, a decimal in the asset's units.
pub fn resolve(
    spec: &UpstreamSpec,
    registry: &Registry,
    max_amount: &str,
    now: u64,
) -> Result<Resolved, String> {
    let c = &spec.config;
    let url = c.url.trim().trim_end_matches('/').to_owned();
    match reqwest::Url::parse(&url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
        _ => return Err(format!("`url` {:?} is not an http(s) URL", c.url)),
    }
    let remote_model = normalize_model(&c.remote_model).to_owned();
    if remote_model.is_empty() {
        return Err("`remoteModel` is empty".into());
    }
    let chain = registry.caip2_of(&c.network).ok_or_else(|| {
        format!(
            "`network` {:?} is neither a network obol knows nor a CAIP-2 id (add it to networks.yaml)",
            c.network
        )
    })?;
    let network = registry.resolve(&chain).cloned();
    let pay_to = address("payTo", &c.pay_to)?;
    let asset = if c.asset.trim().is_empty() {
        network
            .as_ref()
            .and_then(|n| n.asset.as_ref())
            .map(|a| a.address)
            .ok_or_else(|| format!("`asset` is missing and obol knows no asset on {chain}"))?
    } else {
        address("asset", &c.asset)?
    };
    if let Some(m) = c.asset_transfer_method.as_deref()
        && !m.is_empty()
        && !m.eq_ignore_ascii_case("eip3009")
    {
        return Err(format!(
            "`assetTransferMethod` {m:?} is not supported (only eip3009)"
        ));
    }
    let price = amount::parse_atomic(c.price.trim())
        .map_err(|e| format!("`price` {:?}: {e} (atomic units, e.g. \"1000\")", c.price))?;
    if price.is_zero() {
        return Err("`price` is 0".into());
    }
    let max_spend_per_day = c
        .effective_max_spend_per_day()
        .map(|s| {
            amount::parse_atomic(s.trim())
                .map_err(|e| format!("`maxSpendPerDay` {s:?}: {e} (atomic units)"))
        })
        .transpose()?;
    let limits = BudgetLimits {
        max_spend_per_day,
        max_total: c.effective_max_total(),
    };
    let live_check = if c.live_signing {
        live_signing_check(network.as_ref(), asset, price, max_amount)
    } else {
        Ok(())
    };

    let mut unusable = BTreeMap::new();
    let mut auths = Vec::with_capacity(spec.auths.len());
    for a in &spec.auths {
        let reason = (|| {
            let key = a.consume_key().ok_or("no_key")?;
            let payload = a.evm_payload().map_err(|_| "malformed")?;
            let auth = &payload.authorization;
            if auth.to.parse::<Address>().ok() != Some(pay_to) {
                return Err("wrong_pay_to");
            }
            if amount::parse_atomic(auth.value.trim()).ok() != Some(price) {
                return Err("wrong_value");
            }
            let valid_before: u64 = auth.valid_before.trim().parse().map_err(|_| "malformed")?;
            if valid_before <= now + super::pool::EXPIRY_MARGIN_SECS {
                return Err("expired");
            }
            Ok(PoolAuth {
                key,
                payload,
                valid_before,
            })
        })();
        match reason {
            Ok(auth) => auths.push(auth),
            Err(r) => *unusable.entry(r).or_insert(0) += 1,
        }
    }
    Ok(Resolved {
        name: spec.name.clone(),
        url,
        remote_model,
        network_name: c.network.clone(),
        chain,
        network,
        pay_to,
        asset,
        price,
        limits,
        live_signing: c.live_signing,
        live_check,
        origin: spec.origin.clone(),
        auths,
        unusable_auths: unusable,
    })
}

/// Live signing only on a network obol knows, for the asset that network lists, within the
/// per-request cap.
fn live_signing_check(
    network: Option<&Network>,
    asset: Address,
    price: U256,
    max_amount: &str,
) -> Result<(), String> {
    let network = network.ok_or("live signing needs a network obol knows (networks.yaml)")?;
    let listed = network
        .asset
        .as_ref()
        .ok_or_else(|| format!("obol knows no payment asset on {}", network.caip2))?;
    if listed.address != asset {
        return Err(format!(
            "live signing pays only in {} ({}) on {}, not {asset}",
            listed.symbol, listed.address, network.name
        ));
    }
    let cap = amount::parse_decimal(max_amount, listed.decimals, Rounding::Exact)
        .map_err(|e| format!("--max-amount {max_amount}: {e}"))?;
    if price > cap {
        return Err(format!(
            "the price {} {} is over the per-request cap of {max_amount} {} (--max-amount)",
            amount::format_atomic(price, listed.decimals),
            listed.symbol,
            listed.symbol
        ));
    }
    Ok(())
}

/// The routing table, swapped atomically on reload.
#[derive(Debug, Default)]
pub struct Table {
    pub upstreams: BTreeMap<String, Arc<Upstream>>,
    /// Normalised remote model → upstream.
    pub models: HashMap<String, Arc<Upstream>>,
    /// At least one load succeeded.
    pub loaded: bool,
}

impl Table {
    /// Builds the model map; with two upstreams for one model the first by name wins.
    pub fn new(upstreams: BTreeMap<String, Arc<Upstream>>) -> (Table, Vec<String>) {
        let mut models: HashMap<String, Arc<Upstream>> = HashMap::new();
        let mut conflicts = Vec::new();
        for up in upstreams.values() {
            if let Some(first) = models.get(&up.remote_model) {
                conflicts.push(format!(
                    "upstreams {:?} and {:?} both sell model {:?}; requests go to {:?}",
                    first.name, up.name, up.remote_model, first.name
                ));
                continue;
            }
            models.insert(up.remote_model.clone(), Arc::clone(up));
        }
        (
            Table {
                upstreams,
                models,
                loaded: true,
            },
            conflicts,
        )
    }

    /// The upstream serving `model` (any `paid/` / `openai/` prefixes ignored).
    pub fn by_model(&self, model: &str) -> Option<&Arc<Upstream>> {
        self.models.get(normalize_model(model))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buyer::sidecar::config::{PreSignedAuth, UpstreamConfig};

    const PAY_TO: &str = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";
    const BASE_SEPOLIA_USDC: &str = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
    const NOW: u64 = 1_800_000_000;

    fn spec(network: &str, auths: Vec<PreSignedAuth>) -> UpstreamSpec {
        UpstreamSpec {
            name: "qwen".into(),
            config: UpstreamConfig {
                url: "http://seller.example/services/qwen/".into(),
                remote_model: "paid/qwen3:32b".into(),
                network: network.into(),
                pay_to: PAY_TO.into(),
                asset: BASE_SEPOLIA_USDC.into(),
                price: "1000".into(),
                ..Default::default()
            },
            auths,
            origin: "test".into(),
        }
    }

    fn auth(nonce: &str, to: &str, value: &str, valid_before: u64) -> PreSignedAuth {
        PreSignedAuth {
            signature: Some(format!("0x{}", "11".repeat(65))),
            from: Some("0x857b06519E91e3A54538791bDbb0E22373e36b66".into()),
            to: Some(to.into()),
            value: Some(value.into()),
            valid_after: Some("0".into()),
            valid_before: Some(valid_before.to_string()),
            nonce: Some(nonce.into()),
            ..Default::default()
        }
    }

    #[test]
    fn model_prefixes_are_stripped_repeatedly() {
        assert_eq!(normalize_model("paid/qwen3:32b"), "qwen3:32b");
        assert_eq!(normalize_model("openai/paid/qwen3:32b"), "qwen3:32b");
        assert_eq!(normalize_model("paid/openai/paid/x"), "x");
        assert_eq!(normalize_model(" qwen "), "qwen");
        assert_eq!(normalize_model("org/model"), "org/model");
        assert_eq!(normalize_model("paid/"), "");
    }

    #[test]
    fn resolves_names_to_caip2_and_filters_unusable_auths() {
        let auths = vec![
            auth("0x01", PAY_TO, "1000", NOW + 3600),
            auth("0x02", PAY_TO, "2000", NOW + 3600),
            auth(
                "0x03",
                "0x1111111111111111111111111111111111111111",
                "1000",
                NOW + 3600,
            ),
            auth("0x04", PAY_TO, "1000", NOW + 5),
            PreSignedAuth::default(),
        ];
        let r = resolve(
            &spec("base-sepolia", auths),
            &Registry::builtin(),
            "0.10",
            NOW,
        )
        .unwrap();
        assert_eq!(r.url, "http://seller.example/services/qwen");
        assert_eq!(r.remote_model, "qwen3:32b");
        assert_eq!(r.chain, "eip155:84532");
        assert_eq!(r.price, U256::from(1000u64));
        assert_eq!(r.auths.len(), 1);
        assert_eq!(r.auths[0].key, "0x01");
        let unusable: Vec<_> = r.unusable_auths.iter().map(|(k, v)| (*k, *v)).collect();
        assert_eq!(
            unusable,
            [
                ("expired", 1),
                ("no_key", 1),
                ("wrong_pay_to", 1),
                ("wrong_value", 1)
            ]
        );
        let up = r.into_upstream(
            Arc::new(AuthPool::new()),
            crate::buyer::sidecar::metrics::Metrics::new().series("qwen", "qwen3:32b", "x"),
        );
        assert_eq!(up.public_model, "paid/qwen3:32b");
    }

    #[test]
    fn bad_configs_are_refused_with_the_field_named() {
        let reg = Registry::builtin();
        type Edit = Box<dyn Fn(&mut UpstreamConfig)>;
        let cases: Vec<(Edit, &str)> = vec![
            (Box::new(|c| c.url = "ftp://x".into()), "`url`"),
            (
                Box::new(|c| c.remote_model = "paid/".into()),
                "`remoteModel`",
            ),
            (Box::new(|c| c.network = "atlantis".into()), "`network`"),
            (Box::new(|c| c.pay_to = "bob".into()), "`payTo`"),
            (Box::new(|c| c.price = "0.01".into()), "`price`"),
            (Box::new(|c| c.price = "0".into()), "`price` is 0"),
            (
                Box::new(|c| c.max_spend_per_day = Some("1.5".into())),
                "`maxSpendPerDay`",
            ),
            (
                Box::new(|c| c.asset_transfer_method = Some("permit2".into())),
                "permit2",
            ),
        ];
        for (edit, want) in cases {
            let mut s = spec("base-sepolia", vec![]);
            edit(&mut s.config);
            let err = resolve(&s, &reg, "0.10", NOW).unwrap_err();
            assert!(err.contains(want), "{err} !~ {want}");
        }
        // A CAIP-2 id obol does not know is fine for pools (not for live signing).
        let mut s = spec("eip155:999999", vec![]);
        s.config.live_signing = true;
        let r = resolve(&s, &reg, "0.10", NOW).unwrap();
        assert_eq!(r.chain, "eip155:999999");
        assert!(r.live_check.unwrap_err().contains("networks.yaml"));
    }

    #[test]
    fn live_signing_needs_the_listed_asset_and_a_price_under_the_cap() {
        let reg = Registry::builtin();
        let mut s = spec("base-sepolia", vec![]);
        s.config.live_signing = true;
        assert!(resolve(&s, &reg, "0.10", NOW).unwrap().live_check.is_ok());
        s.config.price = "200000".into();
        let err = resolve(&s, &reg, "0.10", NOW)
            .unwrap()
            .live_check
            .unwrap_err();
        assert!(err.contains("over the per-request cap"), "{err}");
        s.config.price = "1000".into();
        s.config.asset = "0x1111111111111111111111111111111111111111".into();
        let err = resolve(&s, &reg, "0.10", NOW)
            .unwrap()
            .live_check
            .unwrap_err();
        assert!(err.contains("pays only in USDC"), "{err}");
    }

    #[test]
    fn the_model_map_prefers_the_first_upstream_by_name() {
        let reg = Registry::builtin();
        let metrics = crate::buyer::sidecar::metrics::Metrics::new();
        let mut ups = BTreeMap::new();
        for name in ["b", "a"] {
            let mut s = spec("base-sepolia", vec![]);
            s.name = name.into();
            let r = resolve(&s, &reg, "0.10", NOW).unwrap();
            let series = metrics.series(name, &r.remote_model, &r.chain);
            ups.insert(
                name.to_owned(),
                Arc::new(r.into_upstream(Arc::new(AuthPool::new()), series)),
            );
        }
        let (table, conflicts) = Table::new(ups);
        assert_eq!(conflicts.len(), 1);
        assert_eq!(table.by_model("openai/paid/qwen3:32b").unwrap().name, "a");
        assert!(table.by_model("llama").is_none());
    }
}
