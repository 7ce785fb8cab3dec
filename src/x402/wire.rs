//! The x402 JSON shapes of both protocol versions, and a version-independent view of a
//! payment requirement ([`Requirement`]).
//!
//! Every field is camelCase on the wire; amounts and timestamps are decimal strings.

use std::fmt;

use alloy_primitives::U256;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::amount::{AmountError, parse_atomic};
use super::codec::{
    DecodeError, PAYMENT_RESPONSE, PAYMENT_SIGNATURE, X_PAYMENT, X_PAYMENT_RESPONSE, decode_header,
    encode_header,
};

/// What a v2 402 (and the payment that answers it) is about.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceInfo {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
}

/// A present field is `Some`, even when it is `null`; an absent one is `None` (via `default`).
fn keep_null<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// One v2 payment option (`accepts[]` entry of a v2 402, `accepted` of a v2 payment).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequirements {
    pub scheme: String,
    /// CAIP-2, e.g. `eip155:84532`.
    pub network: String,
    /// Atomic units, decimal string.
    pub amount: String,
    pub asset: String,
    pub pay_to: String,
    pub max_timeout_seconds: u64,
    /// For EVM `exact`: `{"name", "version"}` of the token's EIP-712 domain. An explicit
    /// `null` on the wire is kept (`Some(Value::Null)`), so the entry echoes back unchanged.
    #[serde(
        default,
        deserialize_with = "keep_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub extra: Option<Value>,
}

impl PaymentRequirements {
    /// The JSON object as it goes on the wire.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// One v1 payment option (`accepts[]` entry of a v1 402 body).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequirementsV1 {
    pub scheme: String,
    /// A v1 network name, e.g. `base-sepolia`.
    pub network: String,
    pub max_amount_required: String,
    pub asset: String,
    pub pay_to: String,
    #[serde(default)]
    pub resource: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    #[serde(
        default,
        deserialize_with = "keep_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub output_schema: Option<Value>,
    pub max_timeout_seconds: u64,
    #[serde(
        default,
        deserialize_with = "keep_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub extra: Option<Value>,
}

impl PaymentRequirementsV1 {
    /// The JSON object as it goes on the wire.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// A v2 402 (the `PAYMENT-REQUIRED` header).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequiredV2 {
    pub x402_version: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceInfo>,
    pub accepts: Vec<PaymentRequirements>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Value>,
}

impl PaymentRequiredV2 {
    /// A v2 402 with `x402Version: 2`.
    pub fn new(
        error: Option<String>,
        resource: Option<ResourceInfo>,
        accepts: Vec<PaymentRequirements>,
    ) -> Self {
        PaymentRequiredV2 {
            x402_version: 2,
            error,
            resource,
            accepts,
            extensions: None,
        }
    }
}

/// A v1 402 (the JSON body).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequiredV1 {
    pub x402_version: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub accepts: Vec<PaymentRequirementsV1>,
}

/// A 402 of either version.
#[derive(Debug, Clone, PartialEq)]
pub enum PaymentRequired {
    V1(PaymentRequiredV1),
    V2(PaymentRequiredV2),
}

/// A payment option, independent of the protocol version.
#[derive(Debug, Clone, PartialEq)]
pub struct Requirement {
    /// 1 or 2: the version of the 402 it came from.
    pub version: u8,
    pub scheme: String,
    /// As on the wire: CAIP-2 for v2, a v1 name (or whatever the server sent) for v1.
    pub network: String,
    /// `amount` (v2) or `maxAmountRequired` (v1), unparsed; see [`Requirement::amount`].
    pub amount_raw: String,
    pub asset: String,
    pub pay_to: String,
    pub max_timeout_seconds: u64,
    /// `extra.name` (or `extra.eip712Domain.name`).
    pub eip712_name: Option<String>,
    /// `extra.version` (or `extra.eip712Domain.version`).
    pub eip712_version: Option<String>,
    /// The resource URL: v2 top-level `resource.url`, v1 the entry's `resource`.
    pub resource: Option<String>,
    /// The wire object of this entry; a v2 payment echoes it as `accepted`. It is the typed
    /// entry serialised again: every field of the spec (and all of `extra`, explicit `null`s
    /// included) survives; top-level fields unknown to the spec do not.
    pub raw: Value,
}

impl Requirement {
    /// The amount in atomic units (`amount_raw` as a wire integer).
    pub fn amount(&self) -> Result<U256, AmountError> {
        parse_atomic(&self.amount_raw)
    }

    /// Whether this is the EVM `exact` scheme.
    pub fn is_exact(&self) -> bool {
        self.scheme == "exact"
    }
}

fn extra_str(extra: Option<&Value>, key: &str) -> Option<String> {
    let extra = extra?;
    extra
        .get(key)
        .and_then(Value::as_str)
        .or_else(|| {
            extra
                .get("eip712Domain")
                .and_then(|d| d.get(key))
                .and_then(Value::as_str)
        })
        .map(str::to_owned)
}

impl PaymentRequired {
    pub fn version(&self) -> u8 {
        match self {
            PaymentRequired::V1(_) => 1,
            PaymentRequired::V2(_) => 2,
        }
    }

    /// The server's `error` text, if any.
    pub fn error(&self) -> Option<&str> {
        match self {
            PaymentRequired::V1(r) => r.error.as_deref(),
            PaymentRequired::V2(r) => r.error.as_deref(),
        }
    }

    /// Every `accepts[]` entry as a [`Requirement`], in the server's order.
    pub fn requirements(&self) -> Vec<Requirement> {
        match self {
            PaymentRequired::V2(r) => {
                let url = r.resource.as_ref().map(|res| res.url.clone());
                r.accepts
                    .iter()
                    .map(|a| Requirement {
                        version: 2,
                        scheme: a.scheme.clone(),
                        network: a.network.clone(),
                        amount_raw: a.amount.clone(),
                        asset: a.asset.clone(),
                        pay_to: a.pay_to.clone(),
                        max_timeout_seconds: a.max_timeout_seconds,
                        eip712_name: extra_str(a.extra.as_ref(), "name"),
                        eip712_version: extra_str(a.extra.as_ref(), "version"),
                        resource: url.clone(),
                        raw: a.to_value(),
                    })
                    .collect()
            }
            PaymentRequired::V1(r) => r
                .accepts
                .iter()
                .map(|a| Requirement {
                    version: 1,
                    scheme: a.scheme.clone(),
                    network: a.network.clone(),
                    amount_raw: a.max_amount_required.clone(),
                    asset: a.asset.clone(),
                    pay_to: a.pay_to.clone(),
                    max_timeout_seconds: a.max_timeout_seconds,
                    eip712_name: extra_str(a.extra.as_ref(), "name"),
                    eip712_version: extra_str(a.extra.as_ref(), "version"),
                    resource: (!a.resource.is_empty()).then(|| a.resource.clone()),
                    raw: a.to_value(),
                })
                .collect(),
        }
    }
}

const NO_402: &str = "PAYMENT-REQUIRED header or x402 JSON body";

fn version_of(v: &Value) -> Option<u64> {
    v.get("x402Version").and_then(Value::as_u64)
}

/// Parses `accepts[]` entry by entry: entries this implementation cannot read (another chain
/// family's shape, say) are skipped, so one odd option does not hide the usable ones. An
/// `accepts` that is not empty but has no readable entry is an error.
fn parse_accepts<T: serde::de::DeserializeOwned>(
    obj: &mut serde_json::Map<String, Value>,
) -> Result<Vec<T>, DecodeError> {
    let entries = match obj.remove("accepts") {
        Some(Value::Array(a)) => a,
        Some(_) => return Err(DecodeError::Json("`accepts` is not an array".into())),
        None => return Err(DecodeError::Missing("accepts")),
    };
    let mut typed = Vec::with_capacity(entries.len());
    let mut first_err = None;
    for entry in entries {
        match serde_json::from_value::<T>(entry) {
            Ok(t) => typed.push(t),
            Err(e) => {
                first_err.get_or_insert_with(|| DecodeError::json(&e));
            }
        }
    }
    match first_err {
        Some(e) if typed.is_empty() => Err(e),
        _ => Ok(typed),
    }
}

fn required_from_value(value: Value) -> Result<PaymentRequired, DecodeError> {
    let version = version_of(&value).ok_or(DecodeError::Missing("x402Version"))?;
    let Value::Object(mut obj) = value else {
        return Err(DecodeError::Missing("x402Version"));
    };
    match version {
        2 => {
            let accepts = parse_accepts::<PaymentRequirements>(&mut obj)?;
            obj.insert("accepts".into(), Value::Array(Vec::new()));
            let mut r: PaymentRequiredV2 =
                serde_json::from_value(Value::Object(obj)).map_err(|e| DecodeError::json(&e))?;
            r.accepts = accepts;
            Ok(PaymentRequired::V2(r))
        }
        1 => {
            let accepts = parse_accepts::<PaymentRequirementsV1>(&mut obj)?;
            obj.insert("accepts".into(), Value::Array(Vec::new()));
            let mut r: PaymentRequiredV1 =
                serde_json::from_value(Value::Object(obj)).map_err(|e| DecodeError::json(&e))?;
            r.accepts = accepts;
            Ok(PaymentRequired::V1(r))
        }
        other => Err(DecodeError::UnsupportedVersion(other)),
    }
}

/// Reads the payment requirements of a 402 response.
///
/// The `PAYMENT-REQUIRED` header (v2) wins when present; otherwise the JSON body must carry
/// `x402Version: 1` (or `2` with `accepts`, for servers that put v2 in the body only).
pub fn parse_402(
    payment_required_header: Option<&str>,
    body: &[u8],
) -> Result<PaymentRequired, DecodeError> {
    if let Some(h) = payment_required_header.filter(|h| !h.trim_ascii().is_empty()) {
        let value: Value = decode_header(h)?;
        return required_from_value(value);
    }
    let value: Value = serde_json::from_slice(body).map_err(|_| DecodeError::Missing(NO_402))?;
    match version_of(&value) {
        None => Err(DecodeError::Missing(NO_402)),
        Some(2) if value.get("accepts").is_none() => Err(DecodeError::Missing(NO_402)),
        Some(_) => required_from_value(value),
    }
}

/// Accepts a JSON string or a non-negative integer; keeps it as a decimal string.
fn string_or_integer<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        S(String),
        N(u64),
    }
    Ok(match Either::deserialize(d)? {
        Either::S(s) => s,
        Either::N(n) => n.to_string(),
    })
}

/// An EIP-3009 `TransferWithAuthorization` as on the wire (all decimal / hex strings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Authorization {
    pub from: String,
    pub to: String,
    #[serde(deserialize_with = "string_or_integer")]
    pub value: String,
    #[serde(deserialize_with = "string_or_integer")]
    pub valid_after: String,
    #[serde(deserialize_with = "string_or_integer")]
    pub valid_before: String,
    pub nonce: String,
}

/// The `payload` of an EVM `exact` payment: signature + authorization.
///
/// `Debug` leaves the signature out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExactEvmPayload {
    pub signature: String,
    pub authorization: Authorization,
}

impl fmt::Debug for ExactEvmPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExactEvmPayload")
            .field("signature", &"<redacted>")
            .field("authorization", &self.authorization)
            .finish()
    }
}

/// A v2 payment (`PAYMENT-SIGNATURE`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentPayloadV2 {
    pub x402_version: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceInfo>,
    /// The chosen requirement, echoed exactly as the server sent it.
    pub accepted: Value,
    pub payload: ExactEvmPayload,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Value>,
}

/// A v1 payment (`X-PAYMENT`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentPayloadV1 {
    pub x402_version: u8,
    pub scheme: String,
    pub network: String,
    pub payload: ExactEvmPayload,
}

/// A payment of either version.
#[derive(Debug, Clone, PartialEq)]
pub enum PaymentPayload {
    V1(PaymentPayloadV1),
    V2(PaymentPayloadV2),
}

impl PaymentPayload {
    /// The payment answering `required` with option `chosen` (one of `required.requirements()`).
    /// v2 echoes `chosen.raw` as `accepted` and copies `resource` and `extensions`.
    pub fn build(
        required: &PaymentRequired,
        chosen: &Requirement,
        payload: ExactEvmPayload,
    ) -> PaymentPayload {
        match required {
            PaymentRequired::V2(r) => PaymentPayload::V2(PaymentPayloadV2 {
                x402_version: 2,
                resource: r.resource.clone(),
                accepted: chosen.raw.clone(),
                payload,
                extensions: r.extensions.clone(),
            }),
            PaymentRequired::V1(_) => PaymentPayload::V1(PaymentPayloadV1 {
                x402_version: 1,
                scheme: chosen.scheme.clone(),
                network: chosen.network.clone(),
                payload,
            }),
        }
    }

    pub fn version(&self) -> u8 {
        match self {
            PaymentPayload::V1(_) => 1,
            PaymentPayload::V2(_) => 2,
        }
    }

    /// `PAYMENT-SIGNATURE` for v2, `X-PAYMENT` for v1.
    pub fn header_name(&self) -> &'static str {
        match self {
            PaymentPayload::V1(_) => X_PAYMENT,
            PaymentPayload::V2(_) => PAYMENT_SIGNATURE,
        }
    }

    /// The header value (base64 JSON).
    pub fn to_header(&self) -> String {
        match self {
            PaymentPayload::V1(p) => encode_header(p),
            PaymentPayload::V2(p) => encode_header(p),
        }
    }

    /// The JSON object (what a facilitator gets as `paymentPayload`).
    pub fn to_json(&self) -> Value {
        match self {
            PaymentPayload::V1(p) => serde_json::to_value(p),
            PaymentPayload::V2(p) => serde_json::to_value(p),
        }
        .unwrap_or(Value::Null)
    }

    pub fn evm(&self) -> &ExactEvmPayload {
        match self {
            PaymentPayload::V1(p) => &p.payload,
            PaymentPayload::V2(p) => &p.payload,
        }
    }

    /// The network the payment is for: v1 `network`, v2 `accepted.network`.
    pub fn network(&self) -> Option<&str> {
        match self {
            PaymentPayload::V1(p) => Some(&p.network),
            PaymentPayload::V2(p) => p.accepted.get("network").and_then(Value::as_str),
        }
    }

    /// Reads a payment header. `name` is matched case-insensitively:
    /// - `PAYMENT-SIGNATURE` must carry `x402Version: 2`;
    /// - `X-PAYMENT` carries `x402Version: 1`, or `2`: the obol-stack Go buyer and `buy.py`
    ///   send v2 payloads under `X-PAYMENT`, and those buyers must keep working.
    pub fn from_header(name: &str, value: &str) -> Result<PaymentPayload, DecodeError> {
        let is_v2_header = name.eq_ignore_ascii_case(PAYMENT_SIGNATURE);
        if !is_v2_header && !name.eq_ignore_ascii_case(X_PAYMENT) {
            return Err(DecodeError::Missing(
                "PAYMENT-SIGNATURE or X-PAYMENT header",
            ));
        }
        let json: Value = decode_header(value)?;
        let version = version_of(&json).ok_or(DecodeError::Missing("x402Version"))?;
        match (version, is_v2_header) {
            (2, _) => serde_json::from_value(json)
                .map(PaymentPayload::V2)
                .map_err(|e| DecodeError::json(&e)),
            (1, false) => serde_json::from_value(json)
                .map(PaymentPayload::V1)
                .map_err(|e| DecodeError::json(&e)),
            (other, _) => Err(DecodeError::UnsupportedVersion(other)),
        }
    }
}

/// A settlement receipt (`PAYMENT-RESPONSE` / `X-PAYMENT-RESPONSE`, and `/settle`'s answer).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettleResponse {
    pub success: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<String>,
    #[serde(default)]
    pub transaction: String,
    #[serde(default)]
    pub network: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Value>,
}

/// `/verify`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyResponse {
    pub is_valid: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<String>,
}

/// One entry of `/supported`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupportedKind {
    pub x402_version: u8,
    pub scheme: String,
    pub network: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Value>,
}

/// `/supported`'s answer.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupportedResponse {
    #[serde(default)]
    pub kinds: Vec<SupportedKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signers: Option<Value>,
}

/// The settlement receipt of a paid response, if it has one: `PAYMENT-RESPONSE` first, then
/// `X-PAYMENT-RESPONSE`. `headers` looks a header up by name.
pub fn read_settlement(
    headers: impl Fn(&str) -> Option<String>,
) -> Option<Result<SettleResponse, DecodeError>> {
    [PAYMENT_RESPONSE, X_PAYMENT_RESPONSE]
        .into_iter()
        .find_map(&headers)
        .map(|v| decode_header(&v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x402::codec::PAYMENT_REQUIRED;
    use serde_json::json;

    const SIG: &str = "0x2d6a7588d6acca505cbf0d9a4a227e0c52c6c34008c8e8986a1283259764173608a2ce6496642e377d6da8dbbf5836e9bd15092f9ecab05ded3d6293af148b571c";

    fn v2_required_json() -> Value {
        json!({
            "x402Version": 2,
            "error": "PAYMENT-SIGNATURE header is required",
            "resource": {"url": "https://api.example.com/premium-data", "description": "Access to premium market data", "mimeType": "application/json"},
            "accepts": [{
                "scheme": "exact", "network": "eip155:84532", "amount": "10000",
                "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
                "payTo": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
                "maxTimeoutSeconds": 60,
                "extra": {"name": "USDC", "version": "2", "assetTransferMethod": "eip3009"},
                "futureField": [1, 2]
            }],
            "extensions": {}
        })
    }

    fn v1_body() -> Value {
        json!({
            "x402Version": 1,
            "error": "X-PAYMENT header is required",
            "accepts": [{
                "scheme": "exact", "network": "base-sepolia", "maxAmountRequired": "10000",
                "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
                "payTo": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
                "resource": "https://api.example.com/premium-data",
                "description": "Access to premium market data",
                "mimeType": "application/json", "outputSchema": null,
                "maxTimeoutSeconds": 60, "extra": {"name": "USDC", "version": "2"}
            }]
        })
    }

    fn evm() -> ExactEvmPayload {
        ExactEvmPayload {
            signature: SIG.into(),
            authorization: Authorization {
                from: "0x857b06519E91e3A54538791bDbb0E22373e36b66".into(),
                to: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C".into(),
                value: "10000".into(),
                valid_after: "1740672089".into(),
                valid_before: "1740672154".into(),
                nonce: "0xf3746613c2d920b5fdabc0856f2aeb2d4f88ee6037b8cc5d04a71a4462f13480".into(),
            },
        }
    }

    #[test]
    fn parses_v2_header_and_keeps_raw() {
        let header = encode_header(&v2_required_json());
        let pr = parse_402(Some(&header), b"{}").unwrap();
        assert_eq!(pr.version(), 2);
        assert_eq!(pr.error(), Some("PAYMENT-SIGNATURE header is required"));
        let reqs = pr.requirements();
        assert_eq!(reqs.len(), 1);
        let r = &reqs[0];
        assert_eq!(r.version, 2);
        assert_eq!(r.network, "eip155:84532");
        assert_eq!(r.amount(), Ok(U256::from(10_000u64)));
        assert_eq!(r.eip712_name.as_deref(), Some("USDC"));
        assert_eq!(r.eip712_version.as_deref(), Some("2"));
        assert_eq!(
            r.resource.as_deref(),
            Some("https://api.example.com/premium-data")
        );
        assert_eq!(r.max_timeout_seconds, 60);
        // raw is the entry as received, minus top-level fields the spec does not know
        let mut want = v2_required_json()["accepts"][0].clone();
        want.as_object_mut().unwrap().remove("futureField");
        assert_eq!(r.raw, want);
        assert_eq!(r.raw["extra"]["assetTransferMethod"], "eip3009");
    }

    #[test]
    fn parses_v1_body() {
        let body = serde_json::to_vec(&v1_body()).unwrap();
        let pr = parse_402(None, &body).unwrap();
        assert_eq!(pr.version(), 1);
        let r = &pr.requirements()[0];
        assert_eq!(r.version, 1);
        assert_eq!(r.network, "base-sepolia");
        assert_eq!(r.amount_raw, "10000");
        assert_eq!(
            r.resource.as_deref(),
            Some("https://api.example.com/premium-data")
        );
        assert_eq!(r.raw, v1_body()["accepts"][0]);
        // the header wins over a body
        let header = encode_header(&v2_required_json());
        assert_eq!(parse_402(Some(&header), &body).unwrap().version(), 2);
        // an empty header counts as absent
        assert_eq!(parse_402(Some("  "), &body).unwrap().version(), 1);
    }

    #[test]
    fn v2_in_body_without_header_is_accepted() {
        let body = serde_json::to_vec(&v2_required_json()).unwrap();
        assert_eq!(parse_402(None, &body).unwrap().version(), 2);
    }

    #[test]
    fn parse_402_errors() {
        let missing = Err(DecodeError::Missing(NO_402));
        assert_eq!(parse_402(None, b""), missing);
        assert_eq!(parse_402(None, b"<html>pay me</html>"), missing);
        assert_eq!(parse_402(None, b"{}"), missing);
        assert_eq!(parse_402(None, br#"{"x402Version":2}"#), missing);
        assert_eq!(
            parse_402(None, br#"{"x402Version":3,"accepts":[]}"#),
            Err(DecodeError::UnsupportedVersion(3))
        );
        assert_eq!(parse_402(Some("%%%"), b""), Err(DecodeError::Base64));
        let no_version = encode_header(&json!({"accepts": []}));
        assert_eq!(
            parse_402(Some(&no_version), b""),
            Err(DecodeError::Missing("x402Version"))
        );
        let no_accepts = encode_header(&json!({"x402Version": 2}));
        assert_eq!(
            parse_402(Some(&no_accepts), b""),
            Err(DecodeError::Missing("accepts"))
        );
        let bad_accepts = encode_header(&json!({"x402Version": 2, "accepts": [{"scheme": 1}]}));
        assert!(matches!(
            parse_402(Some(&bad_accepts), b""),
            Err(DecodeError::Json(_))
        ));
        let not_array = encode_header(&json!({"x402Version": 2, "accepts": {}}));
        assert!(matches!(
            parse_402(Some(&not_array), b""),
            Err(DecodeError::Json(_))
        ));
        let scalar = encode_header(&json!(2));
        assert_eq!(
            parse_402(Some(&scalar), b""),
            Err(DecodeError::Missing("x402Version"))
        );
    }

    #[test]
    fn unreadable_entries_are_skipped() {
        let mut v = v2_required_json();
        let mut good = v["accepts"][0].clone();
        good.as_object_mut().unwrap().remove("futureField");
        v["accepts"] = json!([{"scheme": "weird"}, good.clone()]);
        let pr = parse_402(Some(&encode_header(&v)), b"").unwrap();
        let reqs = pr.requirements();
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].raw, good);
    }

    #[test]
    fn locally_built_402_serialises_typed_entries() {
        let req = PaymentRequirements {
            scheme: "exact".into(),
            network: "eip155:8453".into(),
            amount: "1000".into(),
            asset: "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913".into(),
            pay_to: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C".into(),
            max_timeout_seconds: 300,
            extra: Some(json!({"name": "USD Coin", "version": "2"})),
        };
        let pr = PaymentRequired::V2(PaymentRequiredV2::new(None, None, vec![req.clone()]));
        let r = &pr.requirements()[0];
        assert_eq!(r.raw, req.to_value());
        assert_eq!(r.raw["payTo"], "0x209693Bc6afc0C5328bA36FaF03C514EF312287C");
        assert_eq!(r.eip712_name.as_deref(), Some("USD Coin"));
        // and a round trip through the header gives the same 402
        let PaymentRequired::V2(inner) = &pr else {
            unreachable!()
        };
        let back = parse_402(Some(&encode_header(inner)), b"").unwrap();
        assert_eq!(back, pr);
    }

    #[test]
    fn explicit_nulls_survive_the_echo() {
        let mut v = v2_required_json();
        v["accepts"][0]["extra"] = Value::Null;
        v["accepts"][0]
            .as_object_mut()
            .unwrap()
            .remove("futureField");
        let pr = parse_402(Some(&encode_header(&v)), b"").unwrap();
        let r = &pr.requirements()[0];
        assert_eq!(r.raw, v["accepts"][0]);
        assert_eq!(r.eip712_name, None);
        // absent stays absent
        v["accepts"][0].as_object_mut().unwrap().remove("extra");
        let pr = parse_402(Some(&encode_header(&v)), b"").unwrap();
        assert_eq!(pr.requirements()[0].raw, v["accepts"][0]);
    }

    #[test]
    fn eip712_domain_fallback_key() {
        let extra = json!({"eip712Domain": {"name": "USDC", "version": "2"}});
        assert_eq!(extra_str(Some(&extra), "name").as_deref(), Some("USDC"));
        assert_eq!(extra_str(None, "name"), None);
    }

    #[test]
    fn v2_payment_echoes_accepted_and_round_trips() {
        let header = encode_header(&v2_required_json());
        let pr = parse_402(Some(&header), b"").unwrap();
        let chosen = pr.requirements().remove(0);
        let p = PaymentPayload::build(&pr, &chosen, evm());
        assert_eq!(p.version(), 2);
        assert_eq!(p.header_name(), "PAYMENT-SIGNATURE");
        let j = p.to_json();
        assert_eq!(j["x402Version"], 2);
        let mut entry = v2_required_json()["accepts"][0].clone();
        entry.as_object_mut().unwrap().remove("futureField");
        assert_eq!(j["accepted"], entry);
        assert_eq!(j["resource"], v2_required_json()["resource"]);
        assert_eq!(j["extensions"], json!({}));
        assert_eq!(j["payload"]["authorization"]["validBefore"], "1740672154");
        let back = PaymentPayload::from_header("payment-signature", &p.to_header()).unwrap();
        assert_eq!(back, p);
        assert_eq!(back.evm().signature, SIG);
        assert_eq!(back.network(), Some("eip155:84532"));
    }

    #[test]
    fn v1_payment_round_trips() {
        let body = serde_json::to_vec(&v1_body()).unwrap();
        let pr = parse_402(None, &body).unwrap();
        let chosen = pr.requirements().remove(0);
        let p = PaymentPayload::build(&pr, &chosen, evm());
        assert_eq!(p.header_name(), "X-PAYMENT");
        assert_eq!(
            p.to_json(),
            json!({"x402Version": 1, "scheme": "exact", "network": "base-sepolia",
                   "payload": serde_json::to_value(evm()).unwrap()})
        );
        let back = PaymentPayload::from_header("x-payment", &p.to_header()).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn from_header_checks_version_and_name() {
        let v1 = PaymentPayload::V1(PaymentPayloadV1 {
            x402_version: 1,
            scheme: "exact".into(),
            network: "base".into(),
            payload: evm(),
        });
        assert_eq!(
            PaymentPayload::from_header(PAYMENT_SIGNATURE, &v1.to_header()),
            Err(DecodeError::UnsupportedVersion(1))
        );
        // legacy obol-stack buyers: v2 payloads under X-PAYMENT
        let v2 = json!({"x402Version": 2, "accepted": {"scheme": "exact"},
                        "payload": serde_json::to_value(evm()).unwrap()});
        let p = PaymentPayload::from_header(X_PAYMENT, &encode_header(&v2)).unwrap();
        assert_eq!(p.version(), 2);
        let v3 = json!({"x402Version": 3});
        assert_eq!(
            PaymentPayload::from_header(X_PAYMENT, &encode_header(&v3)),
            Err(DecodeError::UnsupportedVersion(3))
        );
        assert!(matches!(
            PaymentPayload::from_header(PAYMENT_REQUIRED, &v1.to_header()),
            Err(DecodeError::Missing(_))
        ));
        assert_eq!(
            PaymentPayload::from_header(X_PAYMENT, &encode_header(&json!({}))),
            Err(DecodeError::Missing("x402Version"))
        );
        let no_sig = json!({"x402Version": 1, "scheme": "exact", "network": "base",
                            "payload": {"authorization": serde_json::to_value(evm().authorization).unwrap()}});
        let err = PaymentPayload::from_header(X_PAYMENT, &encode_header(&no_sig)).unwrap_err();
        assert!(err.to_string().contains("signature"), "{err}");
        assert_eq!(
            PaymentPayload::from_header(X_PAYMENT, "!!"),
            Err(DecodeError::Base64)
        );
    }

    #[test]
    fn authorization_accepts_integer_fields() {
        let a: Authorization = serde_json::from_value(json!({
            "from": "0x1", "to": "0x2", "value": 10000, "validAfter": 0,
            "validBefore": "4294967295", "nonce": "0x00"
        }))
        .unwrap();
        assert_eq!(a.value, "10000");
        assert_eq!(a.valid_after, "0");
        assert_eq!(serde_json::to_value(&a).unwrap()["validAfter"], json!("0"));
        assert!(
            serde_json::from_value::<Authorization>(json!({
                "from": "0x1", "to": "0x2", "value": -1, "validAfter": 0,
                "validBefore": "1", "nonce": "0x00"
            }))
            .is_err()
        );
    }

    #[test]
    fn debug_hides_the_signature() {
        let text = format!("{:?}", evm());
        assert!(!text.contains("2d6a7588"), "{text}");
        assert!(text.contains("<redacted>"));
        let p = PaymentPayload::V1(PaymentPayloadV1 {
            x402_version: 1,
            scheme: "exact".into(),
            network: "base".into(),
            payload: evm(),
        });
        assert!(!format!("{p:?}").contains("2d6a7588"));
    }

    #[test]
    fn reads_settlement_headers_in_order() {
        let ok = SettleResponse {
            success: true,
            transaction: "0xabc".into(),
            network: "eip155:84532".into(),
            payer: Some("0x857b06519E91e3A54538791bDbb0E22373e36b66".into()),
            ..Default::default()
        };
        let legacy = SettleResponse {
            transaction: "0xold".into(),
            ..ok.clone()
        };
        let both = |name: &str| match name {
            "PAYMENT-RESPONSE" => Some(encode_header(&ok)),
            "X-PAYMENT-RESPONSE" => Some(encode_header(&legacy)),
            _ => None,
        };
        assert_eq!(read_settlement(both), Some(Ok(ok.clone())));
        let only_legacy =
            |name: &str| (name == "X-PAYMENT-RESPONSE").then(|| encode_header(&legacy));
        assert_eq!(read_settlement(only_legacy), Some(Ok(legacy)));
        assert_eq!(read_settlement(|_| None), None);
        assert_eq!(
            read_settlement(|_| Some("***".to_string())),
            Some(Err(DecodeError::Base64))
        );
        // a failure receipt with the documented defaults
        let fail: SettleResponse =
            serde_json::from_value(json!({"success": false, "errorReason": "insufficient_funds"}))
                .unwrap();
        assert_eq!(fail.transaction, "");
        assert_eq!(fail.error_reason.as_deref(), Some("insufficient_funds"));
    }

    #[test]
    fn facilitator_shapes_parse() {
        let v: VerifyResponse = serde_json::from_value(
            json!({"isValid": false, "invalidReason": "insufficient_funds", "payer": "0x1"}),
        )
        .unwrap();
        assert!(!v.is_valid);
        assert_eq!(v.invalid_reason.as_deref(), Some("insufficient_funds"));
        let s: SupportedResponse = serde_json::from_value(json!({
            "kinds": [{"x402Version": 2, "scheme": "exact", "network": "eip155:84532"},
                      {"x402Version": 1, "scheme": "exact", "network": "base-sepolia"}],
            "extensions": [], "signers": {"eip155:*": ["0x1"]}
        }))
        .unwrap();
        assert_eq!(s.kinds.len(), 2);
        assert_eq!(s.kinds[1].network, "base-sepolia");
        assert_eq!(s.extensions, Some(json!([])));
    }
}
