//! A local EVM chain (anvil from npm, chain id 31337) and our EIP-3009 test token on it.
//!
//! Accounts are anvil's well-known dev accounts ("test test ... junk" mnemonic):
//! 0 = facilitator (pays gas, settles), 1 = payer, 2 = seller (`payTo`), 3 = token deployer/owner.
//! The token is deployed and minted by account 3 so that those transactions never race the
//! facilitator's nonces.

use std::process::Command;
use std::time::Duration;

use alloy_primitives::ruint::UintTryFrom;
use alloy_primitives::{Address, B256, U256, address};
use serde_json::{Value, json};

use super::process::{ChildGuard, READY_TIMEOUT, contracts_dir, off_runtime, rail_bin, run_ok};

pub const CHAIN_ID: u64 = 31337;
pub const CAIP2: &str = "eip155:31337";

/// Account 0: the facilitator's key (pays gas, submits `transferWithAuthorization`).
pub const FACILITATOR_KEY: &str =
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
pub const FACILITATOR_ADDRESS: Address = address!("f39Fd6e51aad88F6F4ce6aB8827279cffFb92266");

/// Account 1: the buyer who signs EIP-3009 authorizations.
pub const PAYER_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
pub const PAYER_ADDRESS: Address = address!("70997970C51812dc3A010C7d01b50e0d17dc79C8");

/// Account 2: the seller's `payTo`.
pub const SELLER_KEY: &str = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";
pub const SELLER_ADDRESS: Address = address!("3C44CdDdB6a900fa2b585dd299e03d12FA4293BC");

/// Account 3: deploys the token and owns `mint`.
pub const DEPLOYER_KEY: &str = "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6";
pub const DEPLOYER_ADDRESS: Address = address!("90F79bf6EB2c4f870365E785982E1f101E93b906");

/// Where every public chain has Multicall3; [`Anvil::start`] installs `TestMulticall` there.
pub const MULTICALL3_ADDRESS: Address = address!("cA11bde05977b3631167028862bE2a173976CA11");

/// A running anvil node on 127.0.0.1 (random port, chain id 31337, `--silent`), killed on drop.
pub struct Anvil {
    guard: ChildGuard,
    port: u16,
}

impl Anvil {
    /// Starts anvil and waits until it answers `eth_chainId`. Also installs a Multicall3-compatible
    /// contract at the canonical address, as on real chains: the x402 reference facilitator needs
    /// it to tell "nonce already used" or "insufficient balance" from a generic simulation failure.
    pub fn start() -> Anvil {
        let anvil = rail_bin("anvil");
        let (guard, port) = ChildGuard::spawn_on_free_port(
            "anvil",
            READY_TIMEOUT,
            |port| {
                let mut cmd = Command::new(&anvil);
                cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
                    .args(["--chain-id", &CHAIN_ID.to_string(), "--silent"]);
                cmd
            },
            |port| {
                let url = format!("http://127.0.0.1:{port}");
                match json_rpc(&url, "eth_chainId", json!([])) {
                    Ok(Value::String(id)) if id == format!("{CHAIN_ID:#x}") => Ok(()),
                    Ok(other) => Err(format!("eth_chainId returned {other}")),
                    Err(err) => Err(err),
                }
            },
        );
        let anvil = Anvil { guard, port };
        let runtime = read_hex_file("TestMulticall.bin-runtime");
        anvil.rpc(
            "anvil_setCode",
            json!([MULTICALL3_ADDRESS.to_string(), format!("0x{runtime}")]),
        );
        anvil
    }

    pub fn rpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn chain_id(&self) -> u64 {
        CHAIN_ID
    }

    /// A JSON-RPC call (e.g. `evm_increaseTime`, `evm_mine`, `anvil_setBalance`); panics on error.
    pub fn rpc(&self, method: &str, params: Value) -> Value {
        json_rpc(&self.rpc_url(), method, params)
            .unwrap_or_else(|err| panic!("anvil {method}: {err}"))
    }

    /// The latest block's timestamp (seconds).
    pub fn block_timestamp(&self) -> u64 {
        let block = self.rpc("eth_getBlockByNumber", json!(["latest", false]));
        let ts = block["timestamp"].as_str().expect("block timestamp");
        u64::from_str_radix(ts.trim_start_matches("0x"), 16).expect("hex timestamp")
    }

    /// Runs `cast <args>` against this node (via `ETH_RPC_URL`) and returns its trimmed stdout; panics on failure.
    pub fn cast(&self, args: &[&str]) -> String {
        let mut cmd = Command::new(rail_bin("cast"));
        // ETH_RPC_URL rather than --rpc-url: `cast send --create` takes trailing args as constructor args.
        cmd.args(args).env("ETH_RPC_URL", self.rpc_url());
        run_ok(cmd)
    }

    /// The underlying process (log tail, pid).
    pub fn process(&mut self) -> &mut ChildGuard {
        &mut self.guard
    }
}

/// POSTs one JSON-RPC request and returns `result`, or a description of the failure.
pub fn json_rpc(url: &str, method: &str, params: Value) -> Result<Value, String> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    off_runtime(|| {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(10))
            .no_proxy()
            .build()
            .map_err(|e| e.to_string())?;
        let resp: Value = client
            .post(url)
            .json(&body)
            .send()
            .map_err(|e| format!("POST {url} {method}: {e}"))?
            .json()
            .map_err(|e| format!("{method}: bad JSON-RPC response: {e}"))?;
        match resp.get("error") {
            Some(err) => Err(format!("{method}: {err}")),
            None => Ok(resp.get("result").cloned().unwrap_or(Value::Null)),
        }
    })
}

fn read_hex_file(name: &str) -> String {
    let path = contracts_dir().join(name);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let hex = text.trim().trim_start_matches("0x").to_string();
    assert!(
        !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "{} is not hex bytecode (regenerate with tests/support/contracts/build.sh)",
        path.display()
    );
    hex
}

/// Our EIP-3009 token (`tests/support/contracts/TestUSDC.sol`, committed bytecode): 6 decimals,
/// symbol "USDC", EIP-712 version "2".
pub struct Token {
    rpc_url: String,
    address: Address,
    name: String,
}

impl Token {
    pub const SYMBOL: &'static str = "USDC";
    pub const DECIMALS: u8 = 6;
    pub const EIP712_VERSION: &'static str = "2";

    /// Deploys the committed bytecode from the deployer account with constructor
    /// `(name, "USDC")`. `name` is also the token's EIP-712 domain name.
    pub fn deploy(anvil: &Anvil, name: &str) -> Token {
        let bytecode = read_hex_file("TestUSDC.bin");
        let args = cast_offline(&[
            "abi-encode",
            "constructor(string,string)",
            name,
            Self::SYMBOL,
        ]);
        let create = format!("0x{bytecode}{}", args.trim_start_matches("0x"));
        let out = anvil.cast(&[
            "send",
            "--private-key",
            DEPLOYER_KEY,
            "--json",
            "--create",
            &create,
        ]);
        let receipt: Value = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("cast send --create output {out}: {e}"));
        assert_eq!(
            receipt["status"], "0x1",
            "token deployment reverted: {receipt}"
        );
        let address: Address = receipt["contractAddress"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no contractAddress in {receipt}"));
        Token {
            rpc_url: anvil.rpc_url(),
            address,
            name: name.to_string(),
        }
    }

    pub fn address(&self) -> Address {
        self.address
    }

    /// The EIP-712 domain name (constructor `name`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Mints `amount` atomic units to `to` (owner-only; sent by the deployer account).
    pub fn mint<T>(&self, to: Address, amount: T)
    where
        U256: UintTryFrom<T>,
    {
        let amount = U256::from(amount);
        let out = self.cast(&[
            "send",
            "--private-key",
            DEPLOYER_KEY,
            "--json",
            &self.address.to_string(),
            "mint(address,uint256)",
            &to.to_string(),
            &amount.to_string(),
        ]);
        let receipt: Value = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("cast send mint output {out}: {e}"));
        assert_eq!(receipt["status"], "0x1", "mint reverted: {receipt}");
    }

    /// `balanceOf(addr)` read on chain.
    pub fn balance_of(&self, addr: Address) -> U256 {
        let out = self.call("balanceOf(address)(uint256)", &[&addr.to_string()]);
        parse_cast_uint(&out)
    }

    /// `authorizationState(from, nonce)`: true once the EIP-3009 nonce is used or canceled.
    pub fn authorization_state(&self, from: Address, nonce: B256) -> bool {
        let out = self.call(
            "authorizationState(address,bytes32)(bool)",
            &[&from.to_string(), &nonce.to_string()],
        );
        match out.as_str() {
            "true" => true,
            "false" => false,
            other => panic!("authorizationState returned {other:?}"),
        }
    }

    pub fn total_supply(&self) -> U256 {
        parse_cast_uint(&self.call("totalSupply()(uint256)", &[]))
    }

    /// `cast call <token> <sig> <args...>`, trimmed stdout.
    pub fn call(&self, sig: &str, args: &[&str]) -> String {
        let address = self.address.to_string();
        let mut all = vec!["call", address.as_str(), sig];
        all.extend_from_slice(args);
        self.cast(&all)
    }

    fn cast(&self, args: &[&str]) -> String {
        let mut cmd = Command::new(rail_bin("cast"));
        cmd.args(args).env("ETH_RPC_URL", &self.rpc_url);
        run_ok(cmd)
    }
}

/// `cast` subcommands that need no node.
pub fn cast_offline(args: &[&str]) -> String {
    let mut cmd = Command::new(rail_bin("cast"));
    cmd.args(args);
    run_ok(cmd)
}

/// cast prints uint results as `10000000 [1e7]`; keep the decimal part.
fn parse_cast_uint(out: &str) -> U256 {
    let first = out.split_whitespace().next().unwrap_or_default();
    first
        .parse()
        .unwrap_or_else(|e| panic!("cannot parse cast uint output {out:?}: {e}"))
}
