//! What the chain says about one EIP-3009 authorization, read over JSON-RPC.
//!
//! A facilitator that answers "nonce already used" does not say *by what*: the earlier
//! settlement of this very payment, or the buyer burning the nonce with another authorization
//! (a 0-value transfer to themselves). [`authorization_transfer`] finds the transfer that used
//! the nonce: EIP-3009 tokens (FiatToken and its descendants) emit `AuthorizationUsed(authorizer,
//! nonce)` immediately followed, in the same transaction, by the `Transfer` it authorized.

use std::time::Duration;

use alloy_primitives::{Address, B256, U256, b256};
use serde_json::{Value, json};

/// `keccak256("AuthorizationUsed(address,bytes32)")`.
pub const AUTHORIZATION_USED: B256 =
    b256!("98de503528ee59b575ef0c0a2576a82497bfc029a5685b209e9ec333479b10a5");
/// `keccak256("Transfer(address,address,uint256)")`.
pub const TRANSFER: B256 =
    b256!("ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef");

/// How many blocks back the authorization is looked for (a settlement happens within the
/// payment's validity window, minutes on every supported chain).
pub const LOOKBACK_BLOCKS: u64 = 10_000;

/// The transfer an authorization carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizedTransfer {
    pub transaction: B256,
    pub from: Address,
    pub to: Address,
    pub value: U256,
}

/// Why the chain could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("the chain's RPC endpoint could not be reached: {0}")]
    Unreachable(String),
    #[error("the chain's RPC endpoint answered an error: {0}")]
    Rpc(String),
    #[error("the chain's RPC endpoint answered something unexpected: {0}")]
    Malformed(&'static str),
}

async fn call(
    http: &reqwest::Client,
    rpc: &str,
    method: &str,
    params: Value,
    timeout: Duration,
) -> Result<Value, ChainError> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let resp = http
        .post(rpc)
        .json(&body)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| ChainError::Unreachable(e.without_url().to_string()))?;
    let v: Value = resp
        .json()
        .await
        .map_err(|_| ChainError::Malformed("not JSON"))?;
    if let Some(e) = v.get("error") {
        let msg = e.get("message").and_then(Value::as_str).unwrap_or("error");
        return Err(ChainError::Rpc(msg.chars().take(200).collect()));
    }
    v.get("result")
        .cloned()
        .ok_or(ChainError::Malformed("no result"))
}

fn quantity(v: &Value) -> Result<u64, ChainError> {
    let s = v.as_str().ok_or(ChainError::Malformed("quantity"))?;
    u64::from_str_radix(s.trim_start_matches("0x"), 16)
        .map_err(|_| ChainError::Malformed("quantity"))
}

fn word(v: &Value) -> Result<B256, ChainError> {
    v.as_str()
        .and_then(|s| s.parse::<B256>().ok())
        .ok_or(ChainError::Malformed("32-byte word"))
}

fn address_topic(a: Address) -> B256 {
    a.into_word()
}

fn topic_address(t: B256) -> Address {
    Address::from_word(t)
}

/// The transfer that used `authorizer`'s `nonce` on `asset`, if the nonce was used by a
/// transfer in the last [`LOOKBACK_BLOCKS`] blocks. `Ok(None)`: not used by a transfer (unused,
/// or cancelled).
pub async fn authorization_transfer(
    http: &reqwest::Client,
    rpc: &str,
    asset: Address,
    authorizer: Address,
    nonce: B256,
    timeout: Duration,
) -> Result<Option<AuthorizedTransfer>, ChainError> {
    let latest = quantity(&call(http, rpc, "eth_blockNumber", json!([]), timeout).await?)?;
    let from_block = latest.saturating_sub(LOOKBACK_BLOCKS);
    let logs = call(
        http,
        rpc,
        "eth_getLogs",
        json!([{
            "address": asset,
            "fromBlock": format!("0x{from_block:x}"),
            "toBlock": "latest",
            "topics": [AUTHORIZATION_USED, address_topic(authorizer), nonce],
        }]),
        timeout,
    )
    .await?;
    let Some(used) = logs.as_array().and_then(|l| l.first()) else {
        return Ok(None);
    };
    let transaction = word(&used["transactionHash"])?;
    let index = quantity(&used["logIndex"])?;
    let receipt = call(
        http,
        rpc,
        "eth_getTransactionReceipt",
        json!([transaction]),
        timeout,
    )
    .await?;
    let logs = receipt["logs"]
        .as_array()
        .ok_or(ChainError::Malformed("receipt without logs"))?;
    for log in logs {
        if quantity(&log["logIndex"])? != index + 1 {
            continue;
        }
        let topics: Vec<B256> = log["topics"]
            .as_array()
            .ok_or(ChainError::Malformed("log topics"))?
            .iter()
            .map(word)
            .collect::<Result<_, _>>()?;
        let emitter: Option<Address> = log["address"].as_str().and_then(|s| s.parse().ok());
        if emitter != Some(asset) || topics.len() != 3 || topics[0] != TRANSFER {
            return Err(ChainError::Malformed(
                "AuthorizationUsed is not followed by its Transfer",
            ));
        }
        let data = log["data"]
            .as_str()
            .ok_or(ChainError::Malformed("log data"))?;
        let value = U256::from_str_radix(data.trim_start_matches("0x"), 16)
            .map_err(|_| ChainError::Malformed("transfer value"))?;
        return Ok(Some(AuthorizedTransfer {
            transaction,
            from: topic_address(topics[1]),
            to: topic_address(topics[2]),
            value,
        }));
    }
    Err(ChainError::Malformed(
        "AuthorizationUsed is not followed by its Transfer",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_topics_are_the_keccak_of_their_signatures() {
        assert_eq!(
            alloy_primitives::keccak256("AuthorizationUsed(address,bytes32)"),
            AUTHORIZATION_USED
        );
        assert_eq!(
            alloy_primitives::keccak256("Transfer(address,address,uint256)"),
            TRANSFER
        );
    }

    #[test]
    fn address_topics_round_trip() {
        let a = Address::repeat_byte(0x42);
        assert_eq!(topic_address(address_topic(a)), a);
    }
}
