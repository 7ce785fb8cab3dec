//! From a seller's 402 to a payment header: pick the requirement that matches what was agreed
//! with the upstream, then answer it with a pre-signed auth or a live signature.

use alloy_primitives::{Address, B256, U256};

use super::pool::PoolAuth;
use super::upstream::Upstream;
use crate::buyer::pay::VALID_AFTER_SKEW;
use crate::buyer::policy::window_too_long;
use crate::buyer::wallet::Wallet;
use crate::x402::eip3009::{self, TransferWithAuthorization};
use crate::x402::networks::{Network, Registry};
use crate::x402::wire::{ExactEvmPayload, PaymentPayload, PaymentRequired, Requirement};

/// Why the 402 cannot be paid as agreed. Nothing was signed or spent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// No option is on the agreed network, asset and payee.
    NoMatch { offered: String },
    /// The agreed option, at another price.
    PriceChanged { agreed: U256, asked: String },
}

impl Mismatch {
    pub fn message(&self, up: &Upstream) -> String {
        self.message_for(&Terms::of(up))
    }

    /// The message for terms that are not (yet) an upstream.
    pub fn message_for(&self, terms: &Terms<'_>) -> String {
        match self {
            Mismatch::NoMatch { offered } => format!(
                "the seller no longer offers the agreed payment (exact {} to {} on {}); it offers: {offered}; nothing was paid",
                terms.asset, terms.pay_to, terms.chain
            ),
            Mismatch::PriceChanged { agreed, asked } => format!(
                "the seller's price changed: it asks {asked}, the agreed price is {agreed} (atomic units); nothing was paid"
            ),
        }
    }
}

/// What was agreed with a seller: the option its 402 must offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terms<'a> {
    /// CAIP-2.
    pub chain: &'a str,
    pub asset: Address,
    pub pay_to: Address,
    /// Atomic units.
    pub price: U256,
}

impl<'a> Terms<'a> {
    pub fn of(up: &'a Upstream) -> Terms<'a> {
        Terms {
            chain: &up.chain,
            asset: up.asset,
            pay_to: up.pay_to,
            price: up.price,
        }
    }
}

fn same_address(s: &str, want: Address) -> bool {
    s.trim().parse::<Address>().ok() == Some(want)
}

/// The option of `required` that matches `up` (scheme `exact`, CAIP-2 network, asset and payTo
/// equal) at exactly the agreed price.
pub fn pick(
    up: &Upstream,
    required: &PaymentRequired,
    registry: &Registry,
) -> Result<Requirement, Mismatch> {
    pick_terms(&Terms::of(up), required, registry)
}

/// [`pick`] for terms.
pub fn pick_terms(
    up: &Terms<'_>,
    required: &PaymentRequired,
    registry: &Registry,
) -> Result<Requirement, Mismatch> {
    let all = required.requirements();
    let mut other_price = None;
    for req in &all {
        let on_chain = registry
            .caip2_of(&req.network)
            .is_some_and(|c| c.eq_ignore_ascii_case(up.chain));
        if !(req.is_exact()
            && on_chain
            && same_address(&req.asset, up.asset)
            && same_address(&req.pay_to, up.pay_to))
        {
            continue;
        }
        match req.amount() {
            Ok(a) if a == up.price => return Ok(req.clone()),
            _ => {
                other_price.get_or_insert_with(|| req.amount_raw.chars().take(80).collect());
            }
        }
    }
    if let Some(asked) = other_price {
        return Err(Mismatch::PriceChanged {
            agreed: up.price,
            asked,
        });
    }
    let offered = if all.is_empty() {
        "nothing".to_owned()
    } else {
        all.iter()
            .map(|r| {
                format!(
                    "{} {} of {} to {} on {}",
                    r.scheme, r.amount_raw, r.asset, r.pay_to, r.network
                )
                .chars()
                .take(300)
                .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    Err(Mismatch::NoMatch { offered })
}

/// A payment header: name (`PAYMENT-SIGNATURE` for a v2 402, `X-PAYMENT` for v1) and value.
/// The value holds a signature: never log it.
pub struct PaymentHeader {
    pub name: &'static str,
    pub value: String,
}

impl std::fmt::Debug for PaymentHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentHeader")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The header for `evm` in the 402's version, echoing the seller's requirement.
pub fn header(
    required: &PaymentRequired,
    req: &Requirement,
    evm: ExactEvmPayload,
) -> PaymentHeader {
    let payment = PaymentPayload::build(required, req, evm);
    PaymentHeader {
        name: payment.header_name(),
        value: payment.to_header(),
    }
}

/// The header for a pre-signed auth, in the 402's version, echoing the seller's requirement.
pub fn from_pool(required: &PaymentRequired, req: &Requirement, auth: &PoolAuth) -> PaymentHeader {
    header(required, req, auth.payload.clone())
}

/// Signs a fresh EIP-3009 authorization for the agreed price with the wallet, in the domain
/// of the asset the registry lists for the network (checked at load: `Upstream::live_check`),
/// valid for the 402's `maxTimeoutSeconds`, which must be at most `max_timeout` (the caller
/// refuses a longer one before reserving anything; checked here again).
pub async fn sign_live(
    req: &Requirement,
    up: &Upstream,
    wallet: &Wallet,
    now: u64,
    max_timeout: u64,
) -> Result<ExactEvmPayload, String> {
    up.live_check.clone()?;
    if req.max_timeout_seconds > max_timeout {
        return Err(window_too_long(req.max_timeout_seconds, max_timeout));
    }
    let network = up.network.as_ref().ok_or("unknown network")?;
    let valid_before = now.saturating_add(req.max_timeout_seconds.max(1));
    sign_transfer(network, up.pay_to, up.price, wallet, now, valid_before).await
}

/// Signs one EIP-3009 transfer of `price` to `pay_to` in the domain of the asset the registry
/// lists for `network` (never an asset a seller names alone), valid from `now` (minus the
/// clock skew allowance) until `valid_before`. The caller has checked the asset and the caps.
pub async fn sign_transfer(
    network: &Network,
    pay_to: Address,
    price: U256,
    wallet: &Wallet,
    now: u64,
    valid_before: u64,
) -> Result<ExactEvmPayload, String> {
    let asset = network
        .asset
        .as_ref()
        .ok_or_else(|| format!("obol knows no payment asset on {}", network.caip2))?;
    let auth = TransferWithAuthorization {
        from: wallet.address(),
        to: pay_to,
        value: price,
        validAfter: U256::from(now.saturating_sub(VALID_AFTER_SKEW)),
        validBefore: U256::from(valid_before),
        nonce: B256::from(rand::random::<[u8; 32]>()),
    };
    let domain = eip3009::domain(
        &asset.eip712_name,
        &asset.eip712_version,
        network.chain_id,
        asset.address,
    );
    let signature = match wallet {
        // A local key signs in-process: no need for the wallet's recovery check (≈ 75 µs,
        // there to catch a remote signer that signed something else).
        Wallet::Local(signer) => {
            eip3009::sign_hash_local(signer, eip3009::signing_hash(&auth, &domain))
                .map_err(|e| e.to_string())?
        }
        Wallet::Remote(_) => wallet
            .sign_transfer(&auth, &domain)
            .await
            .map_err(|e| e.to_string())?,
    };
    Ok(eip3009::to_wire(&auth, &signature))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buyer::sidecar::config::UpstreamConfig;
    use crate::buyer::sidecar::metrics::Metrics;
    use crate::buyer::sidecar::pool::AuthPool;
    use crate::buyer::sidecar::source::UpstreamSpec;
    use crate::buyer::sidecar::upstream::resolve;
    use crate::x402::codec::{PAYMENT_SIGNATURE, X_PAYMENT, decode_header};
    use crate::x402::wire::{
        PaymentRequiredV1, PaymentRequiredV2, PaymentRequirements, PaymentRequirementsV1,
    };
    use std::sync::Arc;

    const PAY_TO: &str = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";
    const USDC: &str = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
    const KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
    const NOW: u64 = 1_800_000_000;

    fn upstream(live: bool) -> Upstream {
        let spec = UpstreamSpec {
            name: "u".into(),
            config: UpstreamConfig {
                url: "http://seller".into(),
                remote_model: "m".into(),
                network: "base-sepolia".into(),
                pay_to: PAY_TO.into(),
                asset: USDC.into(),
                price: "1000".into(),
                live_signing: live,
                ..Default::default()
            },
            auths: vec![],
            origin: "t".into(),
        };
        resolve(&spec, &Registry::builtin(), "0.10", NOW)
            .unwrap()
            .into_upstream(
                Arc::new(AuthPool::new()),
                Metrics::new().series("u", "m", "c"),
            )
    }

    fn v2(entries: Vec<(&str, &str, &str, &str)>) -> PaymentRequired {
        PaymentRequired::V2(PaymentRequiredV2::new(
            None,
            None,
            entries
                .into_iter()
                .map(|(network, asset, pay_to, amount)| PaymentRequirements {
                    scheme: "exact".into(),
                    network: network.into(),
                    amount: amount.into(),
                    asset: asset.into(),
                    pay_to: pay_to.into(),
                    max_timeout_seconds: 60,
                    extra: Some(serde_json::json!({"name": "USDC", "version": "2"})),
                })
                .collect(),
        ))
    }

    #[test]
    fn picks_the_agreed_option_among_others() {
        let up = upstream(false);
        let reg = Registry::builtin();
        let other_payee = "0x1111111111111111111111111111111111111111";
        let r = v2(vec![
            ("eip155:8453", USDC, PAY_TO, "1000"),
            ("eip155:84532", USDC, other_payee, "1000"),
            (
                "eip155:84532",
                &USDC.to_lowercase(),
                &PAY_TO.to_lowercase(),
                "1000",
            ),
        ]);
        let req = pick(&up, &r, &reg).unwrap();
        assert_eq!(req.pay_to, PAY_TO.to_lowercase());
    }

    #[test]
    fn a_price_change_and_a_foreign_offer_are_refused() {
        let up = upstream(false);
        let reg = Registry::builtin();
        let err = pick(&up, &v2(vec![("eip155:84532", USDC, PAY_TO, "2000")]), &reg).unwrap_err();
        assert_eq!(
            err,
            Mismatch::PriceChanged {
                agreed: U256::from(1000u64),
                asked: "2000".into()
            }
        );
        assert!(err.message(&up).contains("asks 2000"));
        // Cheaper is also a change: the agreed price is exact.
        assert!(matches!(
            pick(&up, &v2(vec![("eip155:84532", USDC, PAY_TO, "999")]), &reg),
            Err(Mismatch::PriceChanged { .. })
        ));
        let err = pick(&up, &v2(vec![("eip155:8453", USDC, PAY_TO, "1000")]), &reg).unwrap_err();
        assert!(matches!(err, Mismatch::NoMatch { .. }));
        assert!(
            err.message(&up).contains("eip155:8453"),
            "{}",
            err.message(&up)
        );
        let empty = pick(&up, &v2(vec![]), &reg).unwrap_err();
        assert!(empty.message(&up).contains("offers: nothing"));
    }

    #[test]
    fn a_v1_402_with_a_network_name_matches() {
        let up = upstream(false);
        let r = PaymentRequired::V1(PaymentRequiredV1 {
            x402_version: 1,
            error: None,
            accepts: vec![PaymentRequirementsV1 {
                scheme: "exact".into(),
                network: "base-sepolia".into(),
                max_amount_required: "1000".into(),
                asset: USDC.into(),
                pay_to: PAY_TO.into(),
                resource: "http://seller/v1/chat/completions".into(),
                description: String::new(),
                mime_type: None,
                output_schema: None,
                max_timeout_seconds: 60,
                extra: None,
            }],
        });
        let req = pick(&up, &r, &Registry::builtin()).unwrap();
        let auth = PoolAuth {
            key: "k".into(),
            payload: eip3009::to_wire(
                &TransferWithAuthorization {
                    from: Address::ZERO,
                    to: up.pay_to,
                    value: up.price,
                    validAfter: U256::ZERO,
                    validBefore: U256::from(NOW + 600),
                    nonce: B256::ZERO,
                },
                &[0x11; 65],
            ),
            valid_before: NOW + 600,
        };
        let h = from_pool(&r, &req, &auth);
        assert_eq!(h.name, X_PAYMENT);
        let json: serde_json::Value = decode_header(&h.value).unwrap();
        assert_eq!(json["x402Version"], 1);
        assert_eq!(json["network"], "base-sepolia");
        assert_eq!(json["payload"]["authorization"]["value"], "1000");
    }

    #[tokio::test]
    async fn live_signatures_answer_in_the_402s_version_and_recover_to_the_wallet() {
        let up = upstream(true);
        let reg = Registry::builtin();
        let signer = crate::buyer::wallet::parse_private_key(KEY, "test").unwrap();
        let wallet = Wallet::Local(signer);
        let r = v2(vec![("eip155:84532", USDC, PAY_TO, "1000")]);
        let req = pick(&up, &r, &reg).unwrap();
        let h = header(
            &r,
            &req,
            sign_live(&req, &up, &wallet, NOW, 3600).await.unwrap(),
        );
        assert_eq!(h.name, PAYMENT_SIGNATURE);
        assert!(!format!("{h:?}").contains(&h.value[..20]));
        let p = PaymentPayload::from_header(h.name, &h.value).unwrap();
        let evm = p.evm();
        assert_eq!(evm.authorization.value, "1000");
        assert_eq!(evm.authorization.valid_before, (NOW + 60).to_string());
        let auth = eip3009::parse_authorization(&evm.authorization).unwrap();
        let domain = eip3009::domain("USDC", "2", 84532, USDC.parse().unwrap());
        let sig = eip3009::parse_signature_hex(&evm.signature).unwrap();
        let who = eip3009::recover(&sig, eip3009::signing_hash(&auth, &domain)).unwrap();
        assert_eq!(who, wallet.address());
        let json: serde_json::Value = decode_header(&h.value).unwrap();
        assert_eq!(json["accepted"]["amount"], "1000");

        // Without live signing allowed nothing is signed.
        let mut off = upstream(true);
        off.live_check = Err("nope".into());
        assert_eq!(
            sign_live(&req, &off, &wallet, NOW, 3600).await.unwrap_err(),
            "nope"
        );
        // Nor for a window over the cap, however large (no overflow).
        for asked in [3601, 1_000_000_000_000, u64::MAX] {
            let mut long = req.clone();
            long.max_timeout_seconds = asked;
            let err = sign_live(&long, &up, &wallet, NOW, 3600).await.unwrap_err();
            assert!(err.contains("--max-timeout"), "{err}");
            // Raised by the operator, the window saturates instead of wrapping.
            let evm = sign_live(&long, &up, &wallet, NOW, u64::MAX).await.unwrap();
            let vb: U256 = evm.authorization.valid_before.parse().unwrap();
            assert!(vb >= U256::from(NOW + 3601), "{vb}");
        }
    }
}
