//! The few JSON-RPC reads the buyer makes on a network's `rpc` (from the registry or
//! networks.yaml): a token balance, and whether an EIP-3009 authorization was used.

use std::time::Duration;

use alloy_primitives::{Address, B256, U256};

/// `eth_call` of `data` on `to` at the latest block: the 0x-hex result, or why not.
pub async fn eth_call(rpc: &str, to: Address, data: String) -> Result<String, String> {
    let body = serde_json::json!({
        "jsonrpc": "2.0", "id": 1, "method": "eth_call",
        "params": [{"to": to.to_string(), "data": data}, "latest"],
    });
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("obol/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.to_string())?;
    let resp = client.post(rpc).json(&body).send().await.map_err(|e| {
        if e.is_timeout() {
            "timed out".to_owned()
        } else {
            e.to_string()
        }
    })?;
    let status = resp.status();
    let json: serde_json::Value = resp
        .json()
        .await
        .map_err(|e| format!("HTTP {status}, not a JSON-RPC answer ({e})"))?;
    if let Some(err) = json.get("error") {
        let msg = err
            .get("message")
            .and_then(|m| m.as_str())
            .unwrap_or("error");
        return Err(msg.chars().take(200).collect());
    }
    json.get("result")
        .and_then(|r| r.as_str())
        .map(str::to_owned)
        .ok_or_else(|| "no `result` in the answer".to_owned())
}

/// A 32-byte `eth_call` result as a number.
pub fn parse_uint_result(hex: &str) -> Option<U256> {
    let digits = hex.strip_prefix("0x")?;
    if digits.is_empty() || digits.len() > 64 {
        return None;
    }
    U256::from_str_radix(digits, 16).ok()
}

/// `balanceOf(owner)` calldata.
pub fn balance_of_call(owner: Address) -> String {
    format!(
        "0x70a08231{}",
        alloy_primitives::hex::encode(owner.into_word())
    )
}

/// `authorizationState(authorizer, nonce)` calldata (EIP-3009).
pub fn authorization_state_call(authorizer: Address, nonce: B256) -> String {
    let selector = &alloy_primitives::keccak256(b"authorizationState(address,bytes32)")[..4];
    format!(
        "0x{}{}{}",
        alloy_primitives::hex::encode(selector),
        alloy_primitives::hex::encode(authorizer.into_word()),
        alloy_primitives::hex::encode(nonce)
    )
}

/// Whether the EIP-3009 authorization `(authorizer, nonce)` of `token` was used (or cancelled)
/// on chain, read from `rpc`.
pub async fn authorization_state(
    rpc: &str,
    token: Address,
    authorizer: Address,
    nonce: B256,
) -> Result<bool, String> {
    let result = eth_call(rpc, token, authorization_state_call(authorizer, nonce)).await?;
    match parse_uint_result(&result) {
        Some(v) if v == U256::ZERO => Ok(false),
        Some(v) if v == U256::from(1u8) => Ok(true),
        _ => Err(format!(
            "`{}` is not a bool (is {token} an EIP-3009 token?)",
            result.chars().take(80).collect::<String>()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calldata_has_the_eip3009_selector_and_padded_arguments() {
        let who: Address = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
            .parse()
            .unwrap();
        let call = authorization_state_call(who, B256::repeat_byte(0xab));
        assert!(call.starts_with("0xe94a0102"), "{call}");
        assert_eq!(call.len(), 2 + 8 + 64 + 64);
        assert!(call.contains("70997970c51812dc3a010c7d01b50e0d17dc79c8"));
        assert!(balance_of_call(who).starts_with("0x70a08231"));
    }

    #[test]
    fn eth_call_results_parse() {
        assert_eq!(
            parse_uint_result(&format!("0x{:064x}", 10_000_000u64)),
            Some(U256::from(10_000_000u64))
        );
        assert_eq!(parse_uint_result("0x"), None);
        assert_eq!(parse_uint_result("0x01"), Some(U256::from(1u8)));
        assert_eq!(parse_uint_result("nope"), None);
        assert_eq!(parse_uint_result(&format!("0x{}", "f".repeat(65))), None);
    }
}
