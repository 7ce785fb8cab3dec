//! x402 payments built without obol: EIP-3009 typed data signed by `cast wallet sign`, and the
//! v2 header encodings done here with serde_json + base64. Use these as the independent
//! counterpart when testing obol's buyer or verifier.

use std::io::Write;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use alloy_primitives::ruint::UintTryFrom;
use alloy_primitives::{Address, B256, U256};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::process::{rail_bin, run_ok};

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock before 1970")
        .as_secs()
}

/// Base64 (standard, padded) of compact JSON, as x402 headers carry it.
pub fn encode_b64_json(value: &Value) -> String {
    STANDARD.encode(serde_json::to_vec(value).expect("serialize JSON"))
}

/// Decodes an x402 header (`PAYMENT-REQUIRED`, `PAYMENT-SIGNATURE`, `PAYMENT-RESPONSE`).
pub fn decode_b64_json(header: &str) -> Value {
    let bytes = STANDARD
        .decode(header.trim())
        .unwrap_or_else(|e| panic!("header is not base64 ({e}): {header}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "header is not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    })
}

/// The EIP-3009 `TransferWithAuthorization` message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorization {
    pub from: Address,
    pub to: Address,
    pub value: U256,
    pub valid_after: u64,
    pub valid_before: u64,
    pub nonce: B256,
}

impl Authorization {
    /// What the reference client builds: random nonce, `validAfter = now - 600`,
    /// `validBefore = now + max_timeout_seconds`.
    pub fn new<T>(from: Address, to: Address, value: T, max_timeout_seconds: u64) -> Authorization
    where
        U256: UintTryFrom<T>,
    {
        let now = unix_now();
        Authorization {
            from,
            to,
            value: U256::from(value),
            valid_after: now - 600,
            valid_before: now + max_timeout_seconds,
            nonce: B256::random(),
        }
    }

    /// The JSON form used in `payload.authorization` (decimal strings, checksummed addresses).
    pub fn to_json(&self) -> Value {
        json!({
            "from": self.from.to_string(),
            "to": self.to.to_string(),
            "value": self.value.to_string(),
            "validAfter": self.valid_after.to_string(),
            "validBefore": self.valid_before.to_string(),
            "nonce": self.nonce.to_string(),
        })
    }
}

/// EIP-712 typed data (the JSON `cast wallet sign --data` reads) for `auth` under the domain
/// `(name, version, chain_id, token)`.
pub fn typed_data(
    token: Address,
    name: &str,
    version: &str,
    chain_id: u64,
    auth: &Authorization,
) -> Value {
    json!({
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"}
            ],
            "TransferWithAuthorization": [
                {"name": "from", "type": "address"},
                {"name": "to", "type": "address"},
                {"name": "value", "type": "uint256"},
                {"name": "validAfter", "type": "uint256"},
                {"name": "validBefore", "type": "uint256"},
                {"name": "nonce", "type": "bytes32"}
            ]
        },
        "primaryType": "TransferWithAuthorization",
        "domain": {
            "name": name,
            "version": version,
            "chainId": chain_id,
            "verifyingContract": token.to_string()
        },
        "message": auth.to_json()
    })
}

/// Signs `typed` with `private_key` via `cast wallet sign --data --from-file`: 65-byte r‖s‖v hex.
pub fn cast_sign_typed_data(private_key: &str, typed: &Value) -> String {
    let mut file = tempfile::Builder::new()
        .suffix(".json")
        .tempfile()
        .expect("temp typed-data file");
    file.write_all(&serde_json::to_vec(typed).expect("serialize typed data"))
        .expect("write typed data");
    let mut cmd = Command::new(rail_bin("cast"));
    cmd.args([
        "wallet",
        "sign",
        "--private-key",
        private_key,
        "--data",
        "--from-file",
    ])
    .arg(file.path());
    let sig = run_ok(cmd);
    assert!(
        sig.starts_with("0x") && sig.len() == 132,
        "unexpected signature from cast: {sig}"
    );
    sig
}

/// Chain id of an `eip155:<id>` network.
pub fn eip155_chain_id(network: &str) -> u64 {
    network
        .strip_prefix("eip155:")
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("not an eip155 network: {network}"))
}

/// A v2 `PAYMENT-SIGNATURE` value for `accepted` (one entry of a 402's `accepts`, echoed
/// verbatim), signed by `payer_key` (address `payer`). Returns the header and the authorization.
pub fn payment_signature(
    payment_required: &Value,
    accepted: &Value,
    payer_key: &str,
    payer: Address,
) -> (String, Authorization) {
    let str_field = |name: &str| -> &str {
        accepted[name]
            .as_str()
            .unwrap_or_else(|| panic!("requirement has no string {name}: {accepted}"))
    };
    let pay_to: Address = str_field("payTo").parse().expect("payTo address");
    let asset: Address = str_field("asset").parse().expect("asset address");
    let amount: U256 = str_field("amount").parse().expect("amount");
    let chain_id = eip155_chain_id(str_field("network"));
    let timeout = accepted["maxTimeoutSeconds"].as_u64().unwrap_or(300);
    let name = accepted["extra"]["name"].as_str().expect("extra.name");
    let version = accepted["extra"]["version"]
        .as_str()
        .expect("extra.version");

    let auth = Authorization::new(payer, pay_to, amount, timeout);
    let signature = cast_sign_typed_data(
        payer_key,
        &typed_data(asset, name, version, chain_id, &auth),
    );
    let mut payload = json!({
        "x402Version": 2,
        "accepted": accepted,
        "payload": {"signature": signature, "authorization": auth.to_json()},
    });
    if let Some(resource) = payment_required.get("resource") {
        payload["resource"] = resource.clone();
    }
    if let Some(extensions) = payment_required.get("extensions") {
        payload["extensions"] = extensions.clone();
    }
    (encode_b64_json(&payload), auth)
}
