//! The chain + asset registry: the built-in EVM chains of the Obol Stack plus extra networks
//! from a YAML file (env `OBOL_NETWORKS`, default `$XDG_CONFIG_HOME/obol/networks.yaml`).
//!
//! ```yaml
//! networks:
//!   - name: local
//!     caip2: eip155:31337
//!     rpc: http://127.0.0.1:8545
//!     aliases: [anvil]
//!     v1Name: local
//!     asset: {address: "0x5FbDB2315678afecb367f032d93F642f64180aa3", symbol: USDC, decimals: 6,
//!             eip712Name: "USD Coin", eip712Version: "2"}
//! ```
//! An entry with the CAIP-2 id of a built-in chain replaces it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use alloy_primitives::{Address, address};
use serde::Deserialize;

use super::codec::redact_quoted;

/// The token a network is paid in (USDC for the built-ins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asset {
    pub address: Address,
    pub symbol: String,
    pub decimals: u8,
    /// EIP-712 domain `name` of the token contract.
    pub eip712_name: String,
    /// EIP-712 domain `version` of the token contract.
    pub eip712_version: String,
}

/// An EVM chain obol can price and pay on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    /// The canonical name (`base-sepolia`).
    pub name: String,
    /// Other names accepted wherever a chain is named (`base-mainnet`).
    pub aliases: Vec<String>,
    /// `eip155:<chain id>`: the v2 wire name.
    pub caip2: String,
    pub chain_id: u64,
    /// The x402 v1 wire name, when the chain has one.
    pub v1_name: Option<String>,
    /// JSON-RPC endpoint (balance checks, settlement status).
    pub rpc: Option<String>,
    /// The payment asset; `None` for chains that are only normalised, never priced.
    pub asset: Option<Asset>,
}

impl Network {
    /// The name for a v1 wire message: the v1 name, else the CAIP-2 id.
    pub fn v1_or_caip2(&self) -> &str {
        self.v1_name.as_deref().unwrap_or(&self.caip2)
    }

    /// Every name this network answers to: name, aliases, v1 name, CAIP-2 id.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.name.as_str())
            .chain(self.aliases.iter().map(String::as_str))
            .chain(self.v1_name.as_deref())
            .chain(std::iter::once(self.caip2.as_str()))
    }
}

/// Why a network could not be resolved or the networks file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("unknown network {given:?} (known: {known})")]
    Unknown { given: String, known: String },
    #[error("networks file {} does not exist", path.display())]
    Missing { path: PathBuf },
    #[error("cannot read networks file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("networks file {}: {detail}", path.display())]
    Parse { path: PathBuf, detail: String },
    #[error("networks file {}: {entry}: field `{field}`: {detail}", path.display())]
    Invalid {
        path: PathBuf,
        entry: String,
        field: &'static str,
        detail: String,
    },
}

/// The known networks. Resolution is case-insensitive over names, aliases, v1 names and
/// CAIP-2 ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    networks: Vec<Network>,
}

const USDC: &str = "USDC";

fn usdc(address: Address, eip712_name: &str) -> Option<Asset> {
    Some(Asset {
        address,
        symbol: USDC.to_string(),
        decimals: 6,
        eip712_name: eip712_name.to_string(),
        eip712_version: "2".to_string(),
    })
}

fn builtin_network(
    name: &str,
    aliases: &[&str],
    chain_id: u64,
    v1_name: Option<&str>,
    asset: Option<Asset>,
) -> Network {
    Network {
        name: name.to_string(),
        aliases: aliases.iter().map(|a| a.to_string()).collect(),
        caip2: format!("eip155:{chain_id}"),
        chain_id,
        v1_name: v1_name.map(str::to_string),
        rpc: None,
        asset,
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::builtin()
    }
}

/// The environment variable naming the networks file.
pub const NETWORKS_ENV: &str = "OBOL_NETWORKS";

impl Registry {
    /// The nine chains of the Obol Stack (USDC, 6 decimals) plus `sepolia` (normalise only).
    pub fn builtin() -> Registry {
        const USD_COIN: &str = "USD Coin";
        let n = builtin_network;
        Registry {
            networks: vec![
                n(
                    "base",
                    &["base-mainnet"],
                    8453,
                    Some("base"),
                    usdc(
                        address!("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"),
                        USD_COIN,
                    ),
                ),
                n(
                    "base-sepolia",
                    &[],
                    84532,
                    Some("base-sepolia"),
                    usdc(address!("0x036CbD53842c5426634e7929541eC2318f3dCF7e"), USDC),
                ),
                n(
                    "ethereum",
                    &["ethereum-mainnet", "mainnet"],
                    1,
                    Some("ethereum"),
                    usdc(
                        address!("0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"),
                        USD_COIN,
                    ),
                ),
                n(
                    "polygon",
                    &["polygon-mainnet"],
                    137,
                    Some("polygon"),
                    usdc(
                        address!("0x3c499c542cEF5E3811e1192ce70d8cC03d5c3359"),
                        USD_COIN,
                    ),
                ),
                n(
                    "polygon-amoy",
                    &[],
                    80002,
                    Some("polygon-amoy"),
                    usdc(
                        address!("0x41E94Eb019C0762f9Bfcf9Fb1E58725BfB0e7582"),
                        USD_COIN,
                    ),
                ),
                n(
                    "avalanche",
                    &["avalanche-mainnet"],
                    43114,
                    Some("avalanche"),
                    usdc(
                        address!("0xB97EF9Ef8734C71904D8002F8b6Bc66Dd9c48a6E"),
                        USD_COIN,
                    ),
                ),
                n(
                    "avalanche-fuji",
                    &[],
                    43113,
                    Some("avalanche-fuji"),
                    usdc(
                        address!("0x5425890298aed601595a70AB815c96711a31Bc65"),
                        USD_COIN,
                    ),
                ),
                n(
                    "arbitrum-one",
                    &["arbitrum"],
                    42161,
                    None,
                    usdc(
                        address!("0xaf88d065e77c8cC2239327C5EDb3A432268e5831"),
                        USD_COIN,
                    ),
                ),
                n(
                    "arbitrum-sepolia",
                    &[],
                    421614,
                    None,
                    usdc(
                        address!("0x75faf114eafb1BDbe2F0316DF893fd58CE46AA4d"),
                        USD_COIN,
                    ),
                ),
                n("sepolia", &[], 11155111, Some("sepolia"), None),
            ],
        }
    }

    /// The built-ins plus the networks file: the one named by `OBOL_NETWORKS` (which must
    /// exist), else `$XDG_CONFIG_HOME/obol/networks.yaml` if it exists.
    pub fn load() -> Result<Registry, NetworkError> {
        Self::load_from(
            std::env::var_os(NETWORKS_ENV),
            crate::paths::config_dir().join("networks.yaml"),
        )
    }

    /// [`Registry::load`] with the environment value and default path passed in.
    pub fn load_from(
        explicit: Option<OsString>,
        default_path: PathBuf,
    ) -> Result<Registry, NetworkError> {
        match explicit.filter(|v| !v.is_empty()) {
            Some(path) => Self::with_file(Path::new(&path)),
            None if default_path.is_file() => Self::with_file(&default_path),
            None => Ok(Self::builtin()),
        }
    }

    /// The built-ins plus the networks in `path` (which must exist).
    pub fn with_file(path: &Path) -> Result<Registry, NetworkError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(NetworkError::Missing {
                    path: path.to_path_buf(),
                });
            }
            Err(source) => {
                return Err(NetworkError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let mut registry = Self::builtin();
        for network in parse_networks_yaml(&text, path)? {
            registry.add(network);
        }
        Ok(registry)
    }

    /// Adds a network; one with the CAIP-2 id of a known network replaces it in place.
    pub fn add(&mut self, network: Network) {
        match self
            .networks
            .iter_mut()
            .find(|n| n.caip2.eq_ignore_ascii_case(&network.caip2))
        {
            Some(slot) => *slot = network,
            None => self.networks.push(network),
        }
    }

    /// The network named `s` (case-insensitive; surrounding whitespace ignored). A CAIP-2 id
    /// wins over names, names over aliases, aliases over v1 names; among equals the network
    /// added last wins.
    pub fn resolve(&self, s: &str) -> Option<&Network> {
        let s = s.trim();
        if s.is_empty() {
            return None;
        }
        let eq = |a: &str| a.eq_ignore_ascii_case(s);
        let rev = || self.networks.iter().rev();
        rev()
            .find(|n| eq(&n.caip2))
            .or_else(|| rev().find(|n| eq(&n.name)))
            .or_else(|| rev().find(|n| n.aliases.iter().any(|a| eq(a))))
            .or_else(|| rev().find(|n| n.v1_name.as_deref().is_some_and(eq)))
    }

    /// [`Registry::resolve`], or an error listing the known names.
    pub fn resolve_or_err(&self, s: &str) -> Result<&Network, NetworkError> {
        self.resolve(s).ok_or_else(|| NetworkError::Unknown {
            given: s.chars().take(100).collect(),
            known: self
                .networks
                .iter()
                .map(|n| n.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    /// Every network, built-ins first.
    pub fn all(&self) -> &[Network] {
        &self.networks
    }

    /// The network with this chain id.
    pub fn by_chain_id(&self, chain_id: u64) -> Option<&Network> {
        self.networks.iter().rev().find(|n| n.chain_id == chain_id)
    }

    /// The CAIP-2 id for `s`: a known network's, else `s` itself in canonical form when it is
    /// a well-formed `eip155:<chain id>` (v2 works with any chain id). `None` otherwise.
    /// Use [`Registry::resolve`] to ask whether a network is *known*.
    pub fn caip2_of(&self, s: &str) -> Option<String> {
        match self.resolve(s) {
            Some(n) => Some(n.caip2.clone()),
            None => parse_caip2(s.trim()).map(|id| format!("eip155:{id}")),
        }
    }
}

/// `eip155:<chain id>` (prefix case-insensitive, decimal id without leading zeros, > 0).
pub fn parse_caip2(s: &str) -> Option<u64> {
    let (ns, id) = s.split_once(':')?;
    if !ns.eq_ignore_ascii_case("eip155")
        || id.is_empty()
        || !id.bytes().all(|b| b.is_ascii_digit())
        || id.starts_with('0')
    {
        return None;
    }
    id.parse().ok()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworksFile {
    #[serde(default)]
    networks: Vec<FileNetwork>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FileNetwork {
    name: String,
    caip2: String,
    #[serde(default)]
    rpc: Option<String>,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    v1_name: Option<String>,
    #[serde(default)]
    asset: Option<FileAsset>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FileAsset {
    address: String,
    symbol: String,
    decimals: u8,
    eip712_name: String,
    eip712_version: String,
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(char::is_whitespace)
}

/// A `0x`-prefixed 20-byte hex address; mixed case must be a valid EIP-55 checksum.
fn parse_address(s: &str) -> Result<Address, &'static str> {
    let hex = s
        .strip_prefix("0x")
        .ok_or("expected 0x followed by 40 hex digits")?;
    if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("expected 0x followed by 40 hex digits");
    }
    let mixed =
        hex.bytes().any(|b| b.is_ascii_uppercase()) && hex.bytes().any(|b| b.is_ascii_lowercase());
    if mixed {
        Address::parse_checksummed(s, None).map_err(|_| "bad EIP-55 checksum (mixed case)")
    } else {
        s.parse()
            .map_err(|_| "expected 0x followed by 40 hex digits")
    }
}

fn parse_networks_yaml(text: &str, path: &Path) -> Result<Vec<Network>, NetworkError> {
    let file: NetworksFile = if text.trim().is_empty() {
        NetworksFile {
            networks: Vec::new(),
        }
    } else {
        serde_yaml_ng::from_str(text).map_err(|e| NetworkError::Parse {
            path: path.to_path_buf(),
            detail: redact_quoted(&e.to_string()),
        })?
    };
    let mut out: Vec<Network> = Vec::with_capacity(file.networks.len());
    for (i, entry) in file.networks.into_iter().enumerate() {
        let label = format!(
            "networks[{i}] ({})",
            entry.name.chars().take(40).collect::<String>()
        );
        let invalid = |field: &'static str, detail: &str| NetworkError::Invalid {
            path: path.to_path_buf(),
            entry: label.clone(),
            field,
            detail: detail.to_string(),
        };
        if !is_token(&entry.name) {
            return Err(invalid("name", "must be a non-empty word without spaces"));
        }
        if entry.name.contains(':') {
            return Err(invalid(
                "name",
                "must not contain ':' (that is a CAIP-2 id)",
            ));
        }
        let chain_id = parse_caip2(entry.caip2.trim())
            .ok_or_else(|| invalid("caip2", "expected eip155:<chain id>, e.g. eip155:31337"))?;
        let caip2 = format!("eip155:{chain_id}");
        if out.iter().any(|n| n.caip2 == caip2) {
            return Err(invalid("caip2", "duplicate of an earlier entry"));
        }
        if let Some(rpc) = &entry.rpc {
            let ok = ["http://", "https://", "ws://", "wss://"].iter().any(|p| {
                rpc.len() > p.len()
                    && rpc
                        .get(..p.len())
                        .is_some_and(|h| h.eq_ignore_ascii_case(p))
            });
            if !ok {
                return Err(invalid("rpc", "expected an http(s):// or ws(s):// URL"));
            }
        }
        if !entry
            .aliases
            .iter()
            .all(|a| is_token(a) && !a.contains(':'))
        {
            return Err(invalid(
                "aliases",
                "each alias must be a non-empty word without spaces or ':'",
            ));
        }
        if entry.v1_name.as_deref().is_some_and(|v| !is_token(v)) {
            return Err(invalid("v1Name", "must be a non-empty word without spaces"));
        }
        let asset = match entry.asset {
            None => None,
            Some(a) => {
                let address =
                    parse_address(a.address.trim()).map_err(|d| invalid("asset.address", d))?;
                if a.symbol.trim().is_empty() {
                    return Err(invalid("asset.symbol", "must not be empty"));
                }
                if a.decimals > 77 {
                    return Err(invalid("asset.decimals", "must be at most 77"));
                }
                if a.eip712_name.is_empty() {
                    return Err(invalid("asset.eip712Name", "must not be empty"));
                }
                if a.eip712_version.is_empty() {
                    return Err(invalid("asset.eip712Version", "must not be empty"));
                }
                Some(Asset {
                    address,
                    symbol: a.symbol.trim().to_string(),
                    decimals: a.decimals,
                    eip712_name: a.eip712_name,
                    eip712_version: a.eip712_version,
                })
            }
        };
        out.push(Network {
            name: entry.name,
            aliases: entry.aliases,
            caip2,
            chain_id,
            v1_name: entry.v1_name,
            rpc: entry.rpc,
            asset,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: &str = r#"
networks:
  - name: local
    caip2: eip155:31337
    rpc: http://127.0.0.1:8545
    aliases: [anvil]
    asset: {address: "0x5FbDB2315678afecb367f032d93F642f64180aa3", symbol: USDC, decimals: 6, eip712Name: "USD Coin", eip712Version: "2"}
"#;

    fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
        let p = dir.path().join("networks.yaml");
        std::fs::write(&p, text).unwrap();
        p
    }

    fn err_of(text: &str) -> NetworkError {
        parse_networks_yaml(text, Path::new("n.yaml")).unwrap_err()
    }

    #[test]
    fn builtin_table_matches_the_reference() {
        let r = Registry::builtin();
        let table = [
            (
                "base",
                8453,
                "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
                "USD Coin",
                Some("base"),
            ),
            (
                "base-sepolia",
                84532,
                "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
                "USDC",
                Some("base-sepolia"),
            ),
            (
                "ethereum",
                1,
                "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48",
                "USD Coin",
                Some("ethereum"),
            ),
            (
                "polygon",
                137,
                "0x3c499c542cEF5E3811e1192ce70d8cC03d5c3359",
                "USD Coin",
                Some("polygon"),
            ),
            (
                "polygon-amoy",
                80002,
                "0x41E94Eb019C0762f9Bfcf9Fb1E58725BfB0e7582",
                "USD Coin",
                Some("polygon-amoy"),
            ),
            (
                "avalanche",
                43114,
                "0xB97EF9Ef8734C71904D8002F8b6Bc66Dd9c48a6E",
                "USD Coin",
                Some("avalanche"),
            ),
            (
                "avalanche-fuji",
                43113,
                "0x5425890298aed601595a70AB815c96711a31Bc65",
                "USD Coin",
                Some("avalanche-fuji"),
            ),
            (
                "arbitrum-one",
                42161,
                "0xaf88d065e77c8cC2239327C5EDb3A432268e5831",
                "USD Coin",
                None,
            ),
            (
                "arbitrum-sepolia",
                421614,
                "0x75faf114eafb1BDbe2F0316DF893fd58CE46AA4d",
                "USD Coin",
                None,
            ),
        ];
        assert_eq!(r.all().len(), 10);
        for (name, id, addr, eip712, v1) in table {
            let n = r.resolve(name).unwrap();
            assert_eq!(n.chain_id, id, "{name}");
            assert_eq!(n.caip2, format!("eip155:{id}"));
            assert_eq!(n.v1_name.as_deref(), v1, "{name}");
            let a = n.asset.as_ref().unwrap();
            assert_eq!(a.address.to_checksum(None), addr, "{name}");
            assert_eq!(a.eip712_name, eip712, "{name}");
            assert_eq!(a.eip712_version, "2");
            assert_eq!(a.decimals, 6);
            assert_eq!(a.symbol, "USDC");
        }
        let sepolia = r.resolve("sepolia").unwrap();
        assert_eq!(sepolia.caip2, "eip155:11155111");
        assert!(sepolia.asset.is_none());
    }

    #[test]
    fn resolves_names_aliases_v1_and_caip2_case_insensitively() {
        let r = Registry::builtin();
        for s in [
            "base",
            "BASE",
            "base-mainnet",
            "eip155:8453",
            "EIP155:8453",
            " base ",
        ] {
            assert_eq!(r.resolve(s).map(|n| n.name.as_str()), Some("base"), "{s}");
        }
        assert_eq!(r.resolve("mainnet").unwrap().name, "ethereum");
        assert_eq!(r.resolve("arbitrum").unwrap().name, "arbitrum-one");
        assert!(r.resolve("solana").is_none());
        assert!(r.resolve("").is_none());
        assert!(r.resolve("eip155:31337").is_none());
        assert_eq!(
            r.resolve("arbitrum-one").unwrap().v1_or_caip2(),
            "eip155:42161"
        );
        assert_eq!(
            r.resolve("base-sepolia").unwrap().v1_or_caip2(),
            "base-sepolia"
        );
        assert_eq!(r.by_chain_id(84532).unwrap().name, "base-sepolia");
    }

    #[test]
    fn unknown_lists_known_names() {
        let r = Registry::builtin();
        let e = r.resolve_or_err("dogechain").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("dogechain"), "{text}");
        assert!(text.contains("base-sepolia"), "{text}");
        assert!(text.contains("arbitrum-sepolia"), "{text}");
        assert_eq!(r.resolve_or_err("base").unwrap().chain_id, 8453);
    }

    #[test]
    fn caip2_of_normalises() {
        let r = Registry::builtin();
        assert_eq!(r.caip2_of("base-sepolia").as_deref(), Some("eip155:84532"));
        assert_eq!(r.caip2_of("EIP155:31337").as_deref(), Some("eip155:31337"));
        assert_eq!(r.caip2_of("eip155:0031337"), None);
        assert_eq!(r.caip2_of("eip155:"), None);
        assert_eq!(r.caip2_of("eip155:-1"), None);
        assert_eq!(r.caip2_of("eip155:99999999999999999999999"), None);
        assert_eq!(r.caip2_of("nope"), None);
    }

    #[test]
    fn file_adds_and_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "{LOCAL}  - name: my-base\n    caip2: eip155:8453\n    asset: {{address: \"0x0000000000000000000000000000000000000001\", symbol: XUSD, decimals: 18, eip712Name: X, eip712Version: \"1\"}}\n"
        );
        let p = write(&dir, &text);
        let r = Registry::with_file(&p).unwrap();
        assert_eq!(r.all().len(), 11);
        let local = r.resolve("anvil").unwrap();
        assert_eq!(local.name, "local");
        assert_eq!(local.chain_id, 31337);
        assert_eq!(local.rpc.as_deref(), Some("http://127.0.0.1:8545"));
        assert_eq!(local.v1_or_caip2(), "eip155:31337");
        assert_eq!(local.asset.as_ref().unwrap().eip712_name, "USD Coin");
        // the built-in base is replaced in place
        let b = r.resolve("eip155:8453").unwrap();
        assert_eq!(b.name, "my-base");
        assert_eq!(b.asset.as_ref().unwrap().decimals, 18);
        assert!(r.resolve("base").is_none());
        assert_eq!(r.all().iter().filter(|n| n.chain_id == 8453).count(), 1);
    }

    #[test]
    fn load_from_env_and_default() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, LOCAL);
        // explicit file
        let r = Registry::load_from(
            Some(p.clone().into_os_string()),
            PathBuf::from("/nonexistent"),
        )
        .unwrap();
        assert!(r.resolve("local").is_some());
        // explicit missing file is an error
        let missing = dir.path().join("nope.yaml");
        assert!(matches!(
            Registry::load_from(Some(missing.into_os_string()), p.clone()),
            Err(NetworkError::Missing { .. })
        ));
        // default file used when it exists
        let r = Registry::load_from(None, p).unwrap();
        assert!(r.resolve("local").is_some());
        // missing default is fine; empty env counts as unset
        let r = Registry::load_from(Some(OsString::new()), dir.path().join("absent.yaml")).unwrap();
        assert_eq!(r, Registry::builtin());
    }

    #[test]
    fn empty_file_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            Registry::with_file(&write(&dir, "")).unwrap(),
            Registry::builtin()
        );
        assert_eq!(
            Registry::with_file(&write(&dir, "networks: []\n")).unwrap(),
            Registry::builtin()
        );
    }

    #[test]
    fn validation_names_entry_and_field() {
        let cases = [
            ("networks:\n  - {name: x, caip2: \"eip155:abc\"}\n", "caip2"),
            ("networks:\n  - {name: x, caip2: \"cosmos:1\"}\n", "caip2"),
            ("networks:\n  - {name: x, caip2: \"eip155:0\"}\n", "caip2"),
            (
                "networks:\n  - {name: \"a b\", caip2: \"eip155:5\"}\n",
                "name",
            ),
            (
                "networks:\n  - {name: \"eip155:5\", caip2: \"eip155:5\"}\n",
                "name",
            ),
            (
                "networks:\n  - {name: x, caip2: \"eip155:5\", rpc: \"ftp://h\"}\n",
                "rpc",
            ),
            (
                "networks:\n  - {name: x, caip2: \"eip155:5\", aliases: [\"\"]}\n",
                "aliases",
            ),
            (
                "networks:\n  - {name: x, caip2: \"eip155:5\", v1Name: \"\"}\n",
                "v1Name",
            ),
            (
                "networks:\n  - {name: x, caip2: \"eip155:5\", asset: {address: \"0x1234\", symbol: U, decimals: 6, eip712Name: U, eip712Version: \"1\"}}\n",
                "asset.address",
            ),
            (
                "networks:\n  - {name: x, caip2: \"eip155:5\", asset: {address: \"0x833589fcD6eDb6E08f4c7C32D4f71b54bdA02913\", symbol: U, decimals: 6, eip712Name: U, eip712Version: \"1\"}}\n",
                "asset.address",
            ),
            (
                "networks:\n  - {name: x, caip2: \"eip155:5\", asset: {address: \"0x833589fcd6edb6e08f4c7c32d4f71b54bda02913\", symbol: \"\", decimals: 6, eip712Name: U, eip712Version: \"1\"}}\n",
                "asset.symbol",
            ),
            (
                "networks:\n  - {name: x, caip2: \"eip155:5\", asset: {address: \"0x833589fcd6edb6e08f4c7c32d4f71b54bda02913\", symbol: U, decimals: 90, eip712Name: U, eip712Version: \"1\"}}\n",
                "asset.decimals",
            ),
            (
                "networks:\n  - {name: x, caip2: \"eip155:5\", asset: {address: \"0x833589fcd6edb6e08f4c7c32d4f71b54bda02913\", symbol: U, decimals: 6, eip712Name: \"\", eip712Version: \"1\"}}\n",
                "asset.eip712Name",
            ),
            (
                "networks:\n  - {name: a, caip2: \"eip155:5\"}\n  - {name: b, caip2: \"EIP155:5\"}\n",
                "caip2",
            ),
        ];
        for (text, want) in cases {
            match err_of(text) {
                NetworkError::Invalid { field, entry, .. } => {
                    assert_eq!(field, want, "{text}");
                    assert!(entry.starts_with("networks["), "{entry}");
                }
                other => panic!("{text}: unexpected {other}"),
            }
        }
        // the second entry is named
        match err_of("networks:\n  - {name: a, caip2: \"eip155:5\"}\n  - {name: b, caip2: \"x\"}\n")
        {
            NetworkError::Invalid { entry, .. } => assert_eq!(entry, "networks[1] (b)"),
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn structural_errors_are_parse_errors_without_values() {
        for text in [
            "networks:\n  - {name: x}\n",
            "networks:\n  - {name: x, caip2: \"eip155:5\", typo: 1}\n",
            "nets: []\n",
            "networks: [",
            "networks:\n  - {name: x, caip2: \"eip155:5\", asset: {address: \"0x1\", symbol: U, decimals: \"secret-ish\", eip712Name: U, eip712Version: \"1\"}}\n",
        ] {
            match err_of(text) {
                NetworkError::Parse { detail, .. } => {
                    assert!(!detail.contains("secret-ish"), "{detail}")
                }
                other => panic!("{text}: unexpected {other}"),
            }
        }
        let missing_caip2 = err_of("networks:\n  - {name: x}\n").to_string();
        assert!(missing_caip2.contains("caip2"), "{missing_caip2}");
    }

    #[test]
    fn parse_address_rules() {
        assert!(parse_address("0x833589fcd6edb6e08f4c7c32d4f71b54bda02913").is_ok());
        assert!(parse_address("0x833589FCD6EDB6E08F4C7C32D4F71B54BDA02913").is_ok());
        assert!(parse_address("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913").is_ok());
        assert!(parse_address("833589fcd6edb6e08f4c7c32d4f71b54bda02913").is_err());
        assert!(parse_address("0x833589fcd6edb6e08f4c7c32d4f71b54bda0291g").is_err());
        assert!(parse_address("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02914").is_err());
    }
}
