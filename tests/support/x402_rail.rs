//! The x402 reference components from npm, run by node: a facilitator on the local chain and a
//! seller behind the reference Express payment middleware; plus [`Rail`], which starts the lot.

use std::path::{Path, PathBuf};
use std::process::Command;

use alloy_primitives::Address;

use super::chain::{Anvil, CAIP2, FACILITATOR_KEY, PAYER_ADDRESS, SELLER_ADDRESS, Token};
use super::process::{ChildGuard, READY_TIMEOUT, http_probe, node_bin, rail_dir, rail_script};

/// The x402 reference facilitator (`tests/support/rail/facilitator.mjs`: `@x402/core`
/// `x402Facilitator` + `@x402/evm` exact scheme + viem) serving `eip155:31337` (x402 v2) and the
/// v1 network name `local`, settling with account 0. Killed on drop.
pub struct Facilitator {
    guard: ChildGuard,
    port: u16,
}

impl Facilitator {
    /// The v1 network name the facilitator registers for the local chain.
    pub const V1_NETWORK: &'static str = "local";

    /// Starts the facilitator against `anvil`; ready once `GET /supported` answers.
    pub fn start(anvil: &Anvil) -> Facilitator {
        let node = node_bin();
        let script = rail_script("facilitator.mjs");
        let rpc_url = anvil.rpc_url();
        let (guard, port) = ChildGuard::spawn_on_free_port(
            "facilitator",
            READY_TIMEOUT,
            |port| {
                let mut cmd = Command::new(&node);
                cmd.arg(&script)
                    .current_dir(rail_dir())
                    .env("RPC_URL", &rpc_url)
                    .env("FACILITATOR_PRIVATE_KEY", FACILITATOR_KEY)
                    .env("PORT", port.to_string())
                    .env("V1_NETWORK", Self::V1_NETWORK);
                cmd
            },
            |port| http_probe(&format!("http://127.0.0.1:{port}/supported")),
        );
        Facilitator { guard, port }
    }

    /// Base URL, e.g. `http://127.0.0.1:40123` (endpoints: /verify, /settle, /supported, /health).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Its log: one line per verify/settle, e.g. `verify v2 eip155:31337 from=… -> valid`.
    pub fn log(&self) -> String {
        self.guard.log_contents()
    }

    pub fn process(&mut self) -> &mut ChildGuard {
        &mut self.guard
    }
}

/// The reference seller (`tests/support/rail/seller.mjs`: `@x402/express` payment middleware,
/// x402 v2): `GET /paid` costs `price_atomic` of `token`, paid to `pay_to` on `eip155:31337`,
/// and returns `{"secret":"paid content"}`; `GET /free` needs no payment. Killed on drop.
pub struct ReferenceSeller {
    guard: ChildGuard,
    port: u16,
    pay_to: Address,
    price_atomic: u64,
}

/// Starts a node script of the rail that sells behind `@x402/express` (`seller.mjs`,
/// `paid_llm.mjs`): `pay_to` is paid `price_atomic` of `token` on the local chain through
/// `facilitator`. Ready once `GET <ready_path>` answers; returns the child and its port.
pub fn spawn_paywalled_node(
    name: &str,
    script: &str,
    ready_path: &str,
    facilitator: &Facilitator,
    token: &Token,
    pay_to: Address,
    price_atomic: u64,
) -> (ChildGuard, u16) {
    let node = node_bin();
    let script = rail_script(script);
    ChildGuard::spawn_on_free_port(
        name,
        READY_TIMEOUT,
        |port| {
            let mut cmd = Command::new(&node);
            cmd.arg(&script)
                .current_dir(rail_dir())
                .env("FACILITATOR_URL", facilitator.url())
                .env("PAY_TO", pay_to.to_string())
                .env("TOKEN_ADDRESS", token.address().to_string())
                .env("PRICE_ATOMIC", price_atomic.to_string())
                .env("TOKEN_NAME", token.name())
                .env("NETWORK", CAIP2)
                .env("PORT", port.to_string());
            cmd
        },
        |port| http_probe(&format!("http://127.0.0.1:{port}{ready_path}")),
    )
}

impl ReferenceSeller {
    pub const PAID_BODY: &'static str = r#"{"secret":"paid content"}"#;

    /// Starts the seller; ready once `GET /free` answers. The middleware fetches the facilitator's
    /// `/supported` on its first protected request.
    pub fn start(
        facilitator: &Facilitator,
        token: &Token,
        pay_to: Address,
        price_atomic: u64,
    ) -> ReferenceSeller {
        let (guard, port) = spawn_paywalled_node(
            "seller",
            "seller.mjs",
            "/free",
            facilitator,
            token,
            pay_to,
            price_atomic,
        );
        ReferenceSeller {
            guard,
            port,
            pay_to,
            price_atomic,
        }
    }

    /// Base URL, e.g. `http://127.0.0.1:40124`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `<url>/paid`.
    pub fn paid_url(&self) -> String {
        format!("{}/paid", self.url())
    }

    /// `<url>/free`.
    pub fn free_url(&self) -> String {
        format!("{}/free", self.url())
    }

    pub fn pay_to(&self) -> Address {
        self.pay_to
    }

    pub fn price_atomic(&self) -> u64 {
        self.price_atomic
    }

    pub fn log(&self) -> String {
        self.guard.log_contents()
    }

    pub fn process(&mut self) -> &mut ChildGuard {
        &mut self.guard
    }
}

/// Everything at once: anvil, the token (EIP-712 name "USD Coin"), 10 USDC minted to the payer,
/// the reference facilitator and the reference seller (0.01 USDC per `GET /paid`, paid to
/// account 2). Fields drop in reverse order: seller, facilitator, token, anvil.
pub struct Rail {
    pub seller: ReferenceSeller,
    pub facilitator: Facilitator,
    pub token: Token,
    pub anvil: Anvil,
}

impl Rail {
    pub const TOKEN_NAME: &'static str = "USD Coin";
    /// Minted to [`PAYER_ADDRESS`] at start: 10 USDC.
    pub const PAYER_FUNDS: u64 = 10_000_000;
    /// The seller's price for `GET /paid`: 0.01 USDC.
    pub const PRICE_ATOMIC: u64 = 10_000;
    /// The network name [`Rail::networks_yaml`] gives the chain.
    pub const NETWORK_NAME: &'static str = "local";

    pub fn start() -> Rail {
        let anvil = Anvil::start();
        let token = Token::deploy(&anvil, Self::TOKEN_NAME);
        token.mint(PAYER_ADDRESS, Self::PAYER_FUNDS);
        let facilitator = Facilitator::start(&anvil);
        let seller =
            ReferenceSeller::start(&facilitator, &token, SELLER_ADDRESS, Self::PRICE_ATOMIC);
        Rail {
            seller,
            facilitator,
            token,
            anvil,
        }
    }

    /// An obol networks file describing this chain and token.
    pub fn networks_yaml(&self) -> String {
        format!(
            concat!(
                "networks:\n",
                "  - name: {name}\n",
                "    caip2: \"{caip2}\"\n",
                "    rpc: \"{rpc}\"\n",
                "    asset:\n",
                "      address: \"{address}\"\n",
                "      symbol: {symbol}\n",
                "      decimals: {decimals}\n",
                "      eip712Name: \"{eip712_name}\"\n",
                "      eip712Version: \"{eip712_version}\"\n",
            ),
            name = Self::NETWORK_NAME,
            caip2 = CAIP2,
            rpc = self.anvil.rpc_url(),
            address = self.token.address(),
            symbol = Token::SYMBOL,
            decimals = Token::DECIMALS,
            eip712_name = self.token.name(),
            eip712_version = Token::EIP712_VERSION,
        )
    }

    /// Writes [`Rail::networks_yaml`] to `dir/networks.yaml` and returns the path.
    pub fn write_networks_file(&self, dir: &Path) -> PathBuf {
        let path = dir.join("networks.yaml");
        std::fs::write(&path, self.networks_yaml())
            .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }
}
