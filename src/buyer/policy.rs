//! The spending policy: which of a seller's payment options the buyer may sign, decided
//! before anything is signed.
//!
//! An option is acceptable when its scheme is `exact`, its network is one obol knows (built in
//! or from networks.yaml) and passes the `--network` filter, its asset is the asset that network
//! lists (never an asset the 402 names alone), and its price is at most the per-request cap.
//! Among acceptable options the cheapest wins.

use alloy_primitives::{Address, U256};

use crate::x402::amount::{self, Rounding};
use crate::x402::networks::{Asset, Network, Registry};
use crate::x402::wire::{PaymentRequired, Requirement};

/// The default per-request cap, in USDC.
pub const DEFAULT_MAX_AMOUNT: &str = "0.10";
/// The default cap on the validity window a 402 may ask for (`maxTimeoutSeconds`): one hour.
pub const DEFAULT_MAX_TIMEOUT_SECS: u64 = 3600;

#[derive(Debug, Clone)]
pub struct SpendingPolicy {
    /// Per-request cap as a decimal in the asset's units (USDC), e.g. "0.10".
    pub max_amount: String,
    /// Only pay on this network (name, alias or CAIP-2 id).
    pub network: Option<String>,
    /// Most seconds an authorization signed for the 402 may stay valid: an option whose
    /// `maxTimeoutSeconds` is larger is refused (`--max-timeout`). `None` for pre-signed pools,
    /// whose window is `--auth-ttl`, never the 402's.
    pub max_timeout: Option<u64>,
}

impl Default for SpendingPolicy {
    fn default() -> Self {
        SpendingPolicy {
            max_amount: DEFAULT_MAX_AMOUNT.to_owned(),
            network: None,
            max_timeout: Some(DEFAULT_MAX_TIMEOUT_SECS),
        }
    }
}

/// The refusal of a 402 asking for a validity window over the cap (`--max-timeout`).
pub fn window_too_long(asked: u64, cap: u64) -> String {
    format!(
        "the seller asks for an authorization valid for maxTimeoutSeconds {asked}, more than the cap of {cap} s (raise it with --max-timeout, env OBOL_MAX_TIMEOUT, only if you trust the seller with a signature that long)"
    )
}

/// The option the policy picked, resolved against the registry.
#[derive(Debug, Clone)]
pub struct Choice {
    pub requirement: Requirement,
    pub network: Network,
    pub asset: Asset,
    pub amount: U256,
    pub pay_to: Address,
}

impl Choice {
    /// The price as a decimal, e.g. "0.01".
    pub fn amount_decimal(&self) -> String {
        amount::format_atomic(self.amount, self.asset.decimals)
    }
}

/// Why no option was acceptable: one reason per option, and a hint.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    pub message: String,
    pub hint: String,
}

#[derive(Debug)]
enum Rejection {
    OverCap { price: String, symbol: String },
    Other(String),
}

impl SpendingPolicy {
    /// Picks the cheapest acceptable option, or says why none is.
    pub fn choose(
        &self,
        required: &PaymentRequired,
        registry: &Registry,
    ) -> Result<Choice, Refusal> {
        let wanted = match &self.network {
            Some(n) => Some(registry.resolve_or_err(n).map_err(|e| Refusal {
                message: format!("--network: {e}"),
                hint: "name a chain obol knows, or add it to networks.yaml (see `obol buy pay --help`)"
                    .to_owned(),
            })?),
            None => None,
        };
        let requirements = required.requirements();
        if requirements.is_empty() {
            return Err(Refusal {
                message: "the seller's 402 offers no way to pay (empty `accepts`)".to_owned(),
                hint: "the seller is misconfigured; nothing was signed".to_owned(),
            });
        }
        let mut best: Option<Choice> = None;
        let mut rejections = Vec::new();
        for req in requirements {
            match self.check(req, wanted, registry) {
                Ok(choice) => {
                    if best.as_ref().is_none_or(|b| choice.amount < b.amount) {
                        best = Some(choice);
                    }
                }
                Err(r) => rejections.push(r),
            }
        }
        if let Some(choice) = best {
            return Ok(choice);
        }
        let reasons: Vec<String> = rejections
            .iter()
            .map(|r| match r {
                Rejection::OverCap { price, symbol } => format!(
                    "price {price} {symbol} is over the per-request cap of {} {symbol}",
                    self.max_amount
                ),
                Rejection::Other(s) => s.clone(),
            })
            .collect();
        let cheapest_over_cap = rejections.iter().find_map(|r| match r {
            Rejection::OverCap { price, .. } => Some(price.clone()),
            Rejection::Other(_) => None,
        });
        let hint = match cheapest_over_cap {
            Some(price) => format!("nothing was signed; to pay it, raise the cap with --max-amount {price}"),
            None if self.network.is_some() => {
                "nothing was signed; drop --network or name one the seller accepts".to_owned()
            }
            None => "nothing was signed; chains beyond the built-in ones go in networks.yaml (OBOL_NETWORKS)"
                .to_owned(),
        };
        Err(Refusal {
            message: format!("refusing to pay: {}", reasons.join("; ")),
            hint,
        })
    }

    fn check(
        &self,
        req: Requirement,
        wanted: Option<&Network>,
        registry: &Registry,
    ) -> Result<Choice, Rejection> {
        let other = |s: String| Err(Rejection::Other(s));
        if req.scheme != "exact" {
            return other(format!(
                "scheme `{}` is not supported (only `exact`)",
                req.scheme
            ));
        }
        if let Some(cap) = self.max_timeout
            && req.max_timeout_seconds > cap
        {
            return other(window_too_long(req.max_timeout_seconds, cap));
        }
        let Some(network) = registry.resolve(&req.network) else {
            return other(format!("network `{}` is not one obol knows", req.network));
        };
        if let Some(w) = wanted
            && w.caip2 != network.caip2
        {
            return other(format!(
                "network {} is not the requested --network {}",
                network.caip2, w.caip2
            ));
        }
        let Some(asset) = network.asset.clone() else {
            return other(format!("obol knows no payment asset on {}", network.caip2));
        };
        match req.asset.parse::<Address>() {
            Ok(a) if a == asset.address => {}
            _ => {
                return other(format!(
                    "asset {} is not {} on {} ({})",
                    req.asset, asset.symbol, network.name, asset.address
                ));
            }
        }
        let Ok(pay_to) = req.pay_to.parse::<Address>() else {
            return other(format!("payTo {:?} is not an address", req.pay_to));
        };
        let Ok(price) = amount::parse_atomic(&req.amount_raw) else {
            return other(format!("amount {:?} is not an integer", req.amount_raw));
        };
        let cap = amount::parse_decimal(&self.max_amount, asset.decimals, Rounding::Exact)
            .map_err(|e| Rejection::Other(format!("--max-amount {}: {e}", self.max_amount)))?;
        if price > cap {
            return Err(Rejection::OverCap {
                price: amount::format_atomic(price, asset.decimals),
                symbol: asset.symbol.clone(),
            });
        }
        Ok(Choice {
            requirement: req,
            network: network.clone(),
            asset,
            amount: price,
            pay_to,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x402::wire::{PaymentRequiredV2, PaymentRequirements};

    const BASE_SEPOLIA_USDC: &str = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
    const BASE_USDC: &str = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913";
    const PAY_TO: &str = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";

    fn req(network: &str, asset: &str, amount: &str) -> PaymentRequirements {
        PaymentRequirements {
            scheme: "exact".into(),
            network: network.into(),
            amount: amount.into(),
            asset: asset.into(),
            pay_to: PAY_TO.into(),
            max_timeout_seconds: 60,
            extra: Some(serde_json::json!({"name": "USDC", "version": "2"})),
        }
    }

    fn required(accepts: Vec<PaymentRequirements>) -> PaymentRequired {
        PaymentRequired::V2(PaymentRequiredV2 {
            x402_version: 2,
            error: None,
            resource: None,
            accepts,
            extensions: None,
        })
    }

    fn policy(max: &str, network: Option<&str>) -> SpendingPolicy {
        SpendingPolicy {
            max_amount: max.into(),
            network: network.map(Into::into),
            max_timeout: Some(DEFAULT_MAX_TIMEOUT_SECS),
        }
    }

    #[test]
    fn a_window_over_the_cap_is_refused_with_the_flag_that_raises_it() {
        for asked in [3601, 1_000_000_000_000, u64::MAX] {
            let mut r = req("eip155:84532", BASE_SEPOLIA_USDC, "10000");
            r.max_timeout_seconds = asked;
            let err = policy("1", None)
                .choose(&required(vec![r.clone()]), &Registry::builtin())
                .unwrap_err();
            assert!(
                err.message.contains(&format!(
                    "maxTimeoutSeconds {asked}, more than the cap of 3600 s"
                )) && err.message.contains("--max-timeout"),
                "{}",
                err.message
            );
            assert!(err.hint.contains("nothing was signed"), "{}", err.hint);
            // Pools sign their own window: no cap.
            let pool = SpendingPolicy {
                max_timeout: None,
                ..policy("1", None)
            };
            assert!(
                pool.choose(&required(vec![r]), &Registry::builtin())
                    .is_ok()
            );
        }
        let mut r = req("eip155:84532", BASE_SEPOLIA_USDC, "10000");
        r.max_timeout_seconds = 3600;
        assert!(
            policy("1", None)
                .choose(&required(vec![r]), &Registry::builtin())
                .is_ok()
        );
    }

    #[test]
    fn picks_the_cheapest_acceptable_option() {
        let r = required(vec![
            req("eip155:8453", BASE_USDC, "50000"),
            req("eip155:84532", BASE_SEPOLIA_USDC, "10000"),
        ]);
        let choice = policy("0.10", None)
            .choose(&r, &Registry::builtin())
            .unwrap();
        assert_eq!(choice.network.caip2, "eip155:84532");
        assert_eq!(choice.amount_decimal(), "0.01");
    }

    #[test]
    fn over_the_cap_is_refused_with_the_flag_that_raises_it() {
        let r = required(vec![req("eip155:84532", BASE_SEPOLIA_USDC, "250000")]);
        let err = policy("0.10", None)
            .choose(&r, &Registry::builtin())
            .unwrap_err();
        assert!(
            err.message
                .contains("price 0.25 USDC is over the per-request cap of 0.10"),
            "{}",
            err.message
        );
        assert!(err.hint.contains("--max-amount 0.25"), "{}", err.hint);
        // At exactly the cap it is accepted.
        assert!(
            policy("0.25", None)
                .choose(&r, &Registry::builtin())
                .is_ok()
        );
    }

    #[test]
    fn a_network_filter_excludes_other_chains() {
        let r = required(vec![req("eip155:84532", BASE_SEPOLIA_USDC, "10000")]);
        let err = policy("1", Some("base"))
            .choose(&r, &Registry::builtin())
            .unwrap_err();
        assert!(
            err.message
                .contains("not the requested --network eip155:8453"),
            "{}",
            err.message
        );
        assert!(
            policy("1", Some("base-sepolia"))
                .choose(&r, &Registry::builtin())
                .is_ok()
        );
        let err = policy("1", Some("atlantis"))
            .choose(&r, &Registry::builtin())
            .unwrap_err();
        assert!(err.message.contains("--network"), "{}", err.message);
    }

    #[test]
    fn an_asset_the_402_names_alone_is_never_signed_for() {
        let r = required(vec![req(
            "eip155:84532",
            "0x1111111111111111111111111111111111111111",
            "1",
        )]);
        let err = policy("1", None)
            .choose(&r, &Registry::builtin())
            .unwrap_err();
        assert!(
            err.message.contains("is not USDC on base-sepolia"),
            "{}",
            err.message
        );
    }

    #[test]
    fn unknown_networks_and_schemes_and_garbage_are_refused() {
        let mut upto = req("eip155:84532", BASE_SEPOLIA_USDC, "1");
        upto.scheme = "upto".into();
        let cases = [
            (
                req("eip155:999999", BASE_SEPOLIA_USDC, "1"),
                "not one obol knows",
            ),
            (upto, "scheme `upto`"),
            (
                req("eip155:84532", BASE_SEPOLIA_USDC, "-5"),
                "not an integer",
            ),
        ];
        for (r, want) in cases {
            let err = policy("1", None)
                .choose(&required(vec![r]), &Registry::builtin())
                .unwrap_err();
            assert!(err.message.contains(want), "{} !~ {want}", err.message);
        }
        let err = policy("1", None)
            .choose(&required(vec![]), &Registry::builtin())
            .unwrap_err();
        assert!(err.message.contains("no way to pay"));
    }

    #[test]
    fn a_malformed_cap_is_an_error_not_a_free_pass() {
        let r = required(vec![req("eip155:84532", BASE_SEPOLIA_USDC, "1")]);
        let err = policy("lots", None)
            .choose(&r, &Registry::builtin())
            .unwrap_err();
        assert!(err.message.contains("--max-amount lots"), "{}", err.message);
    }
}
