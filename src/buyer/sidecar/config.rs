//! The per-upstream config and auth files of the obol-stack `x402-buyer`, plus budget fields.
//!
//! Config `<config-dir>/<name>.json` (`name` = file stem = PurchaseRequest name), or the legacy
//! `{"upstreams": {"<name>": {…}}}` in one file:
//! ```json
//! {"url": "https://seller/services/qwen", "remoteModel": "qwen3.5:9b", "network": "base-sepolia",
//!  "payTo": "0x…", "asset": "0x…", "assetSymbol": "USDC", "assetDecimals": 6,
//!  "assetTransferMethod": "eip3009", "eip712Name": "USDC", "eip712Version": "2", "price": "1000",
//!  "maxSpendPerDay": "50000", "maxTotal": 100, "liveSigning": false}
//! ```
//! `price` and `maxSpendPerDay` are atomic units (micro-USDC); `maxTotal` counts payments.
//! The budget fields may also sit in an `autoRefill` object, as in a PurchaseRequest.
//!
//! Auths `<auths-dir>/<name>.json`: an array of pre-signed authorizations, either legacy
//! `{"id"?, "signature", "from", "to", "value", "validAfter", "validBefore", "nonce"}` or
//! `{"id"?, "payment": <x402 payment payload>}`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::x402::wire::{Authorization, ExactEvmPayload};

/// Accepts a JSON string or a non-negative integer; keeps it as a decimal string.
fn opt_string_or_integer<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        S(String),
        N(u64),
    }
    Ok(match Option::<Either>::deserialize(d)? {
        None => None,
        Some(Either::S(s)) => Some(s),
        Some(Either::N(n)) => Some(n.to_string()),
    })
}

/// The budget fields of a PurchaseRequest's `autoRefill` (the others are ignored here).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutoRefillBudget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_total: Option<u64>,
    #[serde(
        default,
        deserialize_with = "opt_string_or_integer",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_spend_per_day: Option<String>,
}

/// One upstream: where to send, what it sells, what was agreed, and the caps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpstreamConfig {
    /// Base URL; the request path (`/v1/chat/completions`, ...) is appended.
    pub url: String,
    pub remote_model: String,
    /// A network name obol knows or a CAIP-2 id.
    pub network: String,
    pub pay_to: String,
    #[serde(default)]
    pub asset: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_symbol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_decimals: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_transfer_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eip712_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eip712_version: Option<String>,
    /// The agreed price per request, atomic units.
    #[serde(deserialize_with = "string_or_integer")]
    pub price: String,
    /// Daily cap (UTC day), atomic units.
    #[serde(
        default,
        deserialize_with = "opt_string_or_integer",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_spend_per_day: Option<String>,
    /// Cap on the number of payments, ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_total: Option<u64>,
    /// May the sidecar sign with its own wallet when the pool is empty (under the caps)?
    #[serde(default)]
    pub live_signing: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_refill: Option<AutoRefillBudget>,
}

fn string_or_integer<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    opt_string_or_integer(d)?.ok_or_else(|| serde::de::Error::custom("`price` is missing"))
}

impl UpstreamConfig {
    /// `maxSpendPerDay`: the top-level field, else `autoRefill.maxSpendPerDay`.
    pub fn effective_max_spend_per_day(&self) -> Option<&str> {
        self.max_spend_per_day
            .as_deref()
            .or_else(|| self.auto_refill.as_ref()?.max_spend_per_day.as_deref())
            .filter(|s| !s.trim().is_empty())
    }

    /// `maxTotal`: the top-level field, else `autoRefill.maxTotal`.
    pub fn effective_max_total(&self) -> Option<u64> {
        self.max_total
            .or_else(|| self.auto_refill.as_ref()?.max_total)
    }
}

/// One pre-signed authorization. `Debug` never shows the signature or the payment.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreSignedAuth {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// A full x402 payment payload (`{"x402Version", "accepted", "payload": {...}}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(
        default,
        deserialize_with = "opt_string_or_integer",
        skip_serializing_if = "Option::is_none"
    )]
    pub value: Option<String>,
    #[serde(
        default,
        deserialize_with = "opt_string_or_integer",
        skip_serializing_if = "Option::is_none"
    )]
    pub valid_after: Option<String>,
    #[serde(
        default,
        deserialize_with = "opt_string_or_integer",
        skip_serializing_if = "Option::is_none"
    )]
    pub valid_before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

impl fmt::Debug for PreSignedAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreSignedAuth")
            .field("id", &self.id)
            .field("from", &self.from)
            .field("to", &self.to)
            .field("value", &self.value)
            .field("nonce", &self.nonce)
            .finish_non_exhaustive()
    }
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

fn payload_field<'a>(payment: Option<&'a Value>, path: &[&str]) -> Option<&'a str> {
    let mut v = payment?.get("payload")?;
    for key in path {
        v = v.get(key)?;
    }
    non_empty(v.as_str())
}

impl PreSignedAuth {
    /// The key that marks this auth as consumed in the state file, as the obol-stack buyer
    /// derives it: `id`, else `nonce`, else the payment's `authorization.nonce`, else its
    /// `permit2Authorization.nonce`, else the signature. `None`: the auth cannot be told apart
    /// from others and is never used.
    ///
    /// The key may be a signature: never log it.
    pub fn consume_key(&self) -> Option<String> {
        let payment = self.payment.as_ref();
        non_empty(self.id.as_deref())
            .or_else(|| non_empty(self.nonce.as_deref()))
            .or_else(|| payload_field(payment, &["authorization", "nonce"]))
            .or_else(|| payload_field(payment, &["permit2Authorization", "nonce"]))
            .or_else(|| non_empty(self.signature.as_deref()))
            .or_else(|| payload_field(payment, &["signature"]))
            .map(str::to_owned)
    }

    /// The EIP-3009 signature + authorization: the legacy top-level fields, or the payment's
    /// `payload`. A signature `v` of 0/1 is normalised to 27/28.
    pub fn evm_payload(&self) -> Result<ExactEvmPayload, String> {
        let mut evm = if let Some(sig) = non_empty(self.signature.as_deref())
            && self.payment.is_none()
        {
            let field = |v: &Option<String>, name: &str| {
                non_empty(v.as_deref())
                    .map(str::to_owned)
                    .ok_or_else(|| format!("legacy auth without `{name}`"))
            };
            ExactEvmPayload {
                signature: sig.to_owned(),
                authorization: Authorization {
                    from: field(&self.from, "from")?,
                    to: field(&self.to, "to")?,
                    value: field(&self.value, "value")?,
                    valid_after: non_empty(self.valid_after.as_deref())
                        .unwrap_or("0")
                        .to_owned(),
                    valid_before: field(&self.valid_before, "validBefore")?,
                    nonce: field(&self.nonce, "nonce")?,
                },
            }
        } else if let Some(payment) = &self.payment {
            let payload = payment
                .get("payload")
                .ok_or("`payment` without `payload`")?;
            if payload.get("authorization").is_none() {
                return Err(
                    "`payment.payload` is not an EIP-3009 authorization (permit2 is not supported)"
                        .into(),
                );
            }
            serde_json::from_value::<ExactEvmPayload>(payload.clone())
                .map_err(|e| crate::x402::codec::DecodeError::json(&e).to_string())?
        } else {
            return Err("neither `signature` nor `payment`".into());
        };
        evm.signature = normalise_v(&evm.signature);
        Ok(evm)
    }
}

/// `0x…00`/`0x…01` as the last byte of a 65-byte signature becomes `1b`/`1c`.
fn normalise_v(sig: &str) -> String {
    let hex = sig.strip_prefix("0x").unwrap_or(sig);
    if hex.len() == 130 && hex.is_ascii() {
        let (head, v) = hex.split_at(128);
        let v = match v {
            "00" => Some("1b"),
            "01" => Some("1c"),
            _ => None,
        };
        if let Some(v) = v {
            return format!("0x{head}{v}");
        }
    }
    if sig.starts_with("0x") {
        sig.to_owned()
    } else {
        format!("0x{sig}")
    }
}

/// A config file: one upstream (named after the file) or the legacy `upstreams` map.
pub fn parse_config_file(stem: &str, text: &str) -> Result<Vec<(String, UpstreamConfig)>, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    if let Some(map) = value.get("upstreams") {
        let map = map.as_object().ok_or("`upstreams` is not an object")?;
        return map
            .iter()
            .map(|(name, v)| {
                serde_json::from_value(v.clone())
                    .map(|c| (name.clone(), c))
                    .map_err(|e| format!("upstream {name:?}: {e}"))
            })
            .collect();
    }
    serde_json::from_value(value)
        .map(|c| vec![(stem.to_owned(), c)])
        .map_err(|e| e.to_string())
}

/// An auths file: a JSON array of [`PreSignedAuth`].
pub fn parse_auths_file(text: &str) -> Result<Vec<PreSignedAuth>, String> {
    serde_json::from_str(text).map_err(|e| crate::x402::codec::DecodeError::json(&e).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SIG: &str = "0x2d6a7588d6acca505cbf0d9a4a227e0c52c6c34008c8e8986a1283259764173608a2ce6496642e377d6da8dbbf5836e9bd15092f9ecab05ded3d6293af148b571c";

    fn legacy() -> PreSignedAuth {
        serde_json::from_value(json!({
            "signature": SIG, "from": "0x857b06519E91e3A54538791bDbb0E22373e36b66",
            "to": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C", "value": "1000",
            "validAfter": "0", "validBefore": 4294967295u64, "nonce": "0xaa"
        }))
        .unwrap()
    }

    #[test]
    fn parses_the_reference_config_and_budget_fields() {
        let text = r#"{"url":"https://seller/services/qwen","remoteModel":"qwen3.5:9b","network":"base-sepolia",
            "payTo":"0x209693Bc6afc0C5328bA36FaF03C514EF312287C","asset":"0x036CbD53842c5426634e7929541eC2318f3dCF7e",
            "assetSymbol":"USDC","assetDecimals":6,"assetTransferMethod":"eip3009","eip712Name":"USDC",
            "eip712Version":"2","price":"1000","someFutureField":true}"#;
        let cfgs = parse_config_file("qwen", text).unwrap();
        assert_eq!(cfgs.len(), 1);
        let (name, c) = &cfgs[0];
        assert_eq!(name, "qwen");
        assert_eq!(c.remote_model, "qwen3.5:9b");
        assert_eq!(c.price, "1000");
        assert_eq!(c.effective_max_total(), None);
        assert!(!c.live_signing);

        let text = r#"{"url":"u","remoteModel":"m","network":"base","payTo":"p","price":1000,
            "maxSpendPerDay":50000,"liveSigning":true,"autoRefill":{"enabled":true,"maxTotal":7,"maxSpendPerDay":"1"}}"#;
        let (_, c) = parse_config_file("x", text).unwrap().remove(0);
        assert_eq!(c.price, "1000");
        assert_eq!(c.effective_max_spend_per_day(), Some("50000"));
        assert_eq!(
            c.effective_max_total(),
            Some(7),
            "autoRefill.maxTotal applies"
        );
        assert!(c.live_signing);
    }

    #[test]
    fn parses_the_legacy_upstreams_map() {
        let text = r#"{"upstreams":{"a":{"url":"u","remoteModel":"m1","network":"base","payTo":"p","price":"1"},
                                   "b":{"url":"u","remoteModel":"m2","network":"base","payTo":"p","price":"2"}}}"#;
        let cfgs = parse_config_file("config", text).unwrap();
        let names: Vec<_> = cfgs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert!(parse_config_file("x", r#"{"upstreams":[]}"#).is_err());
        assert!(parse_config_file("x", "{").is_err());
        assert!(parse_config_file("x", r#"{"url":"u"}"#).is_err());
    }

    #[test]
    fn consume_keys_follow_the_reference_order() {
        let mut a = legacy();
        a.id = Some("auth-1".into());
        assert_eq!(a.consume_key().as_deref(), Some("auth-1"));
        a.id = Some("  ".into());
        assert_eq!(a.consume_key().as_deref(), Some("0xaa"));
        a.nonce = None;
        assert_eq!(a.consume_key().as_deref(), Some(SIG));

        let p: PreSignedAuth = serde_json::from_value(json!({
            "payment": {"x402Version": 2, "payload": {"signature": SIG,
                "authorization": {"from": "0x1", "to": "0x2", "value": "1", "validAfter": "0",
                                  "validBefore": "9", "nonce": "0xbb"}}}
        }))
        .unwrap();
        assert_eq!(p.consume_key().as_deref(), Some("0xbb"));
        let p2: PreSignedAuth = serde_json::from_value(json!({
            "payment": {"payload": {"signature": SIG, "permit2Authorization": {"nonce": "77"}}}
        }))
        .unwrap();
        assert_eq!(p2.consume_key().as_deref(), Some("77"));
        let p3: PreSignedAuth =
            serde_json::from_value(json!({"payment": {"payload": {"signature": SIG}}})).unwrap();
        assert_eq!(p3.consume_key().as_deref(), Some(SIG));
        assert_eq!(PreSignedAuth::default().consume_key(), None);
    }

    #[test]
    fn evm_payload_from_either_shape() {
        let evm = legacy().evm_payload().unwrap();
        assert_eq!(evm.authorization.value, "1000");
        assert_eq!(evm.authorization.valid_before, "4294967295");
        assert_eq!(evm.signature, SIG);

        let p: PreSignedAuth = serde_json::from_value(json!({
            "id": "x",
            "payment": {"x402Version": 2, "payload": {"signature": SIG,
                "authorization": {"from": "0x1", "to": "0x2", "value": 5, "validAfter": "0",
                                  "validBefore": "9", "nonce": "0xbb"}}}
        }))
        .unwrap();
        assert_eq!(p.evm_payload().unwrap().authorization.value, "5");

        let permit2: PreSignedAuth = serde_json::from_value(
            json!({"payment": {"payload": {"signature": SIG, "permit2Authorization": {}}}}),
        )
        .unwrap();
        assert!(permit2.evm_payload().unwrap_err().contains("permit2"));
        let mut broken = legacy();
        broken.to = None;
        assert!(broken.evm_payload().unwrap_err().contains("`to`"));
    }

    #[test]
    fn signature_v_is_normalised_and_debug_hides_secrets() {
        let mut a = legacy();
        let zero_v = format!("{}00", &SIG[..130]);
        a.signature = Some(zero_v);
        assert!(a.evm_payload().unwrap().signature.ends_with("1b"));
        a.signature = Some(format!("{}01", &SIG[2..130]));
        let sig = a.evm_payload().unwrap().signature;
        assert!(sig.starts_with("0x") && sig.ends_with("1c"), "{sig}");
        let dbg = format!("{:?}", legacy());
        assert!(!dbg.contains(&SIG[2..20]), "{dbg}");
    }

    #[test]
    fn auth_files_are_arrays_and_errors_do_not_echo_values() {
        let text = format!(r#"[{{"signature":"{SIG}","nonce":"0x1"}}]"#);
        assert_eq!(parse_auths_file(&text).unwrap().len(), 1);
        let err =
            parse_auths_file(&format!(r#"[{{"signature":"{SIG}","value":[1]}}]"#)).unwrap_err();
        assert!(!err.contains(&SIG[2..20]), "{err}");
        assert!(parse_auths_file("{}").is_err());
    }
}
