//! The offers file (`pricing.yaml`): its model, loading and atomic saving.
//!
//! The keys are those of the obol-stack verifier's config (`wallet, chain, facilitatorURL,
//! verifyOnly, routes[]`), so a file written for the old stack loads here and vice versa.
//! Keys obol does not know (e.g. `priceModel`, `perMTok`) are kept and written back unchanged.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};

use super::declared::RouteEntry;
use crate::secret::Secret;

/// Chain used when neither a route nor the file names one.
pub const DEFAULT_CHAIN: &str = "base-sepolia";

/// Facilitator used when neither the command line nor the file names one.
pub const DEFAULT_FACILITATOR_URL: &str = "https://x402.gcp.obol.tech";

/// The namespace of offers created by `obol sell create` (no cluster involved).
pub const LOCAL_NAMESPACE: &str = "local";

/// The whole offers file.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PricingConfig {
    /// Global payTo fallback for routes without their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wallet: Option<String>,
    /// Global chain for routes without their own `network` (default `base-sepolia`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<String>,
    #[serde(
        rename = "facilitatorURL",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub facilitator_url: Option<String>,
    /// `false` asks ForwardAuth to settle before granting (same as `--settle-before-grant`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_only: Option<bool>,
    /// First match wins.
    #[serde(default, deserialize_with = "null_as_default")]
    pub routes: Vec<RouteRule>,
    /// Keys obol does not know, preserved as read.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_yaml_ng::Value>,
}

impl PricingConfig {
    /// The file's global settings without its routes (no copy of the routes is made).
    pub fn without_routes(&self) -> PricingConfig {
        PricingConfig {
            wallet: self.wallet.clone(),
            chain: self.chain.clone(),
            facilitator_url: self.facilitator_url.clone(),
            verify_only: self.verify_only,
            routes: Vec::new(),
            extra: self.extra.clone(),
        }
    }
}

/// One route (one offer): a URL pattern and its price.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteRule {
    pub pattern: String,
    /// Human decimal in the asset's units, e.g. `"0.001"`. An unquoted YAML number is read as
    /// the number's shortest decimal text.
    #[serde(default, deserialize_with = "string_or_number")]
    pub price: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pay_to: Option<String>,
    /// Chain name, alias or CAIP-2 id; overrides the file's `chain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Sent as `Authorization` to the upstream on paid requests. A secret: never logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_auth: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer_namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer_name: Option<String>,
    #[serde(
        rename = "upstreamURL",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub upstream_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strip_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_timeout_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_symbol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_decimals: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eip712_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eip712_version: Option<String>,
    /// A paused route is matched but not served.
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "null_as_default"
    )]
    pub paused: bool,
    /// The offer's declared routes (see [`super::declared`]): paths relative to the offer's,
    /// each paid (at the offer's price or its own) or free. Once any is declared, the offer's
    /// other paths are refused. Empty: the whole pattern is paid at `price`.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub routes: Vec<RouteEntry>,
    /// Keys obol does not know, preserved as read.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_yaml_ng::Value>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Treats an explicit `null` (`routes:` with nothing after it) like a missing key.
pub(super) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Reads a price written as a string (`"0.01"`) or as a bare YAML number (`0.01`).
///
/// A bare number reaches us as an `f64`; its shortest round-trip text (Rust's `Display`, never
/// an exponent) reproduces the digits written for any price of up to 15 significant digits.
/// Only the text is kept: the amount is parsed from it as a decimal, never as a float.
pub(super) fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        S(String),
        U(u64),
        F(f64),
        Null(()),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::S(s) => s,
        Raw::U(u) => u.to_string(),
        Raw::F(f) => f.to_string(),
        Raw::Null(()) => String::new(),
    })
}

impl fmt::Debug for PricingConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PricingConfig")
            .field("wallet", &self.wallet)
            .field("chain", &self.chain)
            .field("facilitator_url", &self.facilitator_url)
            .field("verify_only", &self.verify_only)
            .field("routes", &self.routes)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for RouteRule {
    /// Leaves out unknown keys (`upstreamAuth` is a [`Secret`]: it prints `<redacted>`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouteRule")
            .field("pattern", &self.pattern)
            .field("price", &self.price)
            .field("pay_to", &self.pay_to)
            .field("network", &self.network)
            .field("offer_namespace", &self.offer_namespace)
            .field("offer_name", &self.offer_name)
            .field("upstream_url", &self.upstream_url)
            .field("upstream_auth", &self.upstream_auth)
            .field("paused", &self.paused)
            .field("routes", &self.routes)
            .finish_non_exhaustive()
    }
}

impl RouteRule {
    /// True when this rule is the offer `namespace/name` (a missing namespace counts as
    /// [`LOCAL_NAMESPACE`]).
    pub fn is_offer(&self, namespace: &str, name: &str) -> bool {
        self.offer_name.as_deref() == Some(name)
            && self
                .offer_namespace
                .as_deref()
                .filter(|n| !n.is_empty())
                .unwrap_or(LOCAL_NAMESPACE)
                == namespace
    }
}

/// Why the offers file could not be read or written. Never quotes file content beyond the
/// YAML parser's location and message.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read the offers file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the offers file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("cannot write the offers file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot serialise the offers: {0}")]
    Serialise(String),
}

/// Parses offers file text. Empty text is an empty file.
///
/// `serde-saphyr` deserialises straight from the parser's events: `serde_yaml_ng` first loads
/// every event of the document, about 13 times the text (32 MB for 10,000 offers), which a
/// verifier would need on every reload (docs/architecture.md).
pub fn parse(text: &str, path: &Path) -> Result<PricingConfig, FileError> {
    if text.trim().is_empty() {
        return Ok(PricingConfig::default());
    }
    serde_saphyr::from_str::<Option<PricingConfig>>(text)
        .map(Option::unwrap_or_default)
        .map_err(|e| FileError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}

/// Parses the offers file from `reader` as it is read (the text is never held whole: the
/// verifier's reload of 10,000 offers then needs only the old table and the parsed file).
/// An empty or comment-only file is an empty one.
pub fn parse_reader(reader: impl std::io::Read, path: &Path) -> Result<PricingConfig, FileError> {
    serde_saphyr::from_reader::<_, Option<PricingConfig>>(reader)
        .map(Option::unwrap_or_default)
        .map_err(|e| FileError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}

/// Loads the offers file; a missing file is an empty one (defaults, no routes).
pub fn load(path: &Path) -> Result<PricingConfig, FileError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(PricingConfig::default()),
        Err(source) => Err(FileError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Serialises the offers to YAML text.
pub fn to_yaml(cfg: &PricingConfig) -> Result<String, FileError> {
    let text = serde_yaml_ng::to_string(cfg).map_err(|e| FileError::Serialise(e.to_string()))?;
    // The emitter and the parser disagree on some characters (U+2029 in a block scalar, found
    // by fuzzing): never write a file that would not read back.
    if parse(&text, Path::new("offers file")).is_err() {
        return Err(FileError::Serialise(
            "a value holds characters the offers file cannot store (e.g. U+2028/U+2029 line separators)".into(),
        ));
    }
    Ok(text)
}

/// Writes the offers file atomically: a temporary file in the same directory, written,
/// flushed to disk, mode 0644, then renamed over `path` (and the directory synced). A reader
/// (the verifier) sees the old file or the new one, never a half-written one. The caller
/// validates first.
pub fn save(cfg: &PricingConfig, path: &Path) -> Result<(), FileError> {
    let text = to_yaml(cfg)?;
    write_atomic(path, text.as_bytes()).map_err(|source| FileError::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "pricing.yaml".to_string());
    let tmp = dir.join(format!(
        ".{file_name}.tmp-{}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    let result = (|| {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            opts.mode(0o644);
        }
        let mut f = opts.open(&tmp)?;
        #[cfg(unix)]
        {
            // The umask may have narrowed the mode given to open().
            use std::os::unix::fs::PermissionsExt as _;
            f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        }
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return result;
    }
    // Make the rename itself durable; not every filesystem allows syncing a directory.
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD_STACK_FILE: &str = r#"
wallet: "0x1111111111111111111111111111111111111111"
chain: "base-sepolia"
facilitatorURL: "https://x402.gcp.obol.tech"
verifyOnly: true
routes:
  - pattern: "/services/qwen/*"
    price: "0.001"
    description: "qwen"
    payTo: "0x2222222222222222222222222222222222222222"
    network: "eip155:84532"
    upstreamAuth: "Bearer sk-secret"
    priceModel: perMTok
    perMTok: "1"
    approxTokensPerRequest: 1000
    offerNamespace: "llm"
    offerName: "my-qwen"
    upstreamURL: "http://litellm.llm.svc.cluster.local:4000"
    stripPrefix: "/services/qwen"
    maxTimeoutSeconds: 120
    assetDecimals: 6
    paused: true
futureTopLevelKey: {a: 1}
"#;

    #[test]
    fn reads_every_key_of_the_old_stack_and_keeps_unknown_ones() {
        let cfg = parse(OLD_STACK_FILE, Path::new("p.yaml")).unwrap();
        assert_eq!(cfg.chain.as_deref(), Some("base-sepolia"));
        assert_eq!(cfg.verify_only, Some(true));
        let r = &cfg.routes[0];
        assert_eq!(r.price, "0.001");
        assert_eq!(r.offer_name.as_deref(), Some("my-qwen"));
        assert_eq!(
            r.upstream_url.as_deref(),
            Some("http://litellm.llm.svc.cluster.local:4000")
        );
        assert_eq!(r.max_timeout_seconds, Some(120));
        assert_eq!(r.asset_decimals, Some(6));
        assert!(r.paused);
        assert!(r.extra.contains_key("priceModel"));
        assert!(r.extra.contains_key("approxTokensPerRequest"));
        assert!(cfg.extra.contains_key("futureTopLevelKey"));

        // Round trip: unknown keys survive a save.
        let text = to_yaml(&cfg).unwrap();
        assert!(text.contains("facilitatorURL:"));
        assert!(text.contains("upstreamURL:"));
        assert!(text.contains("priceModel: perMTok"));
        assert!(text.contains("futureTopLevelKey"));
        let again = parse(&text, Path::new("p.yaml")).unwrap();
        assert_eq!(again, cfg);
    }

    #[test]
    fn debug_output_never_shows_upstream_auth() {
        let cfg = parse(OLD_STACK_FILE, Path::new("p.yaml")).unwrap();
        let dbg = format!("{cfg:?}");
        assert!(!dbg.contains("sk-secret"), "{dbg}");
        assert!(dbg.contains("<redacted>"));
    }

    #[test]
    fn empty_null_and_missing_files_are_defaults() {
        assert_eq!(parse("", Path::new("x")).unwrap(), PricingConfig::default());
        assert_eq!(
            parse("  \n", Path::new("x")).unwrap(),
            PricingConfig::default()
        );
        assert_eq!(
            parse("~\n", Path::new("x")).unwrap(),
            PricingConfig::default()
        );
        let cfg = parse("routes:\nwallet:\n", Path::new("x")).unwrap();
        assert!(cfg.routes.is_empty());
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            load(&dir.path().join("absent.yaml")).unwrap(),
            PricingConfig::default()
        );
    }

    #[test]
    fn bare_number_prices_keep_their_digits() {
        let cfg = parse(
            "routes:\n  - pattern: /a\n    price: 0.001\n  - pattern: /b\n    price: 2\n  - pattern: /c\n    price: 0.0000001\n",
            Path::new("x"),
        )
        .unwrap();
        assert_eq!(cfg.routes[0].price, "0.001");
        assert_eq!(cfg.routes[1].price, "2");
        assert_eq!(cfg.routes[2].price, "0.0000001");
    }

    #[test]
    fn parse_errors_name_the_file() {
        let err = parse("routes: [", Path::new("/tmp/p.yaml")).unwrap_err();
        assert!(err.to_string().contains("/tmp/p.yaml"), "{err}");
    }

    #[test]
    fn reading_from_a_reader_gives_what_parsing_the_text_gives() {
        let path = Path::new("/tmp/p.yaml");
        for text in [
            "",
            "  \n",
            "# only a comment\n",
            "chain: base\nroutes:\n  - pattern: /a\n    price: 0.001\n",
        ] {
            assert_eq!(
                parse_reader(text.as_bytes(), path).unwrap(),
                parse(text, path).unwrap(),
                "{text:?}"
            );
        }
        let err = parse_reader("routes: [".as_bytes(), path).unwrap_err();
        assert!(err.to_string().contains("/tmp/p.yaml"), "{err}");
    }

    #[test]
    fn parse_errors_say_where_and_what() {
        let text = "chain: base\nroutes:\n  - pattern: /a\n    price: [1, 2]\n";
        let err = parse(text, Path::new("/tmp/p.yaml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 4"), "names the line: {err}");
        let err = parse("wallet: 0x1\nwallet: 0x2\n", Path::new("/tmp/p.yaml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("wallet"), "names the duplicated key: {err}");
    }

    #[test]
    fn atomic_save_leaves_no_temp_file_and_is_0644() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("pricing.yaml");
        let mut cfg = PricingConfig {
            chain: Some("base".into()),
            ..Default::default()
        };
        save(&cfg, &path).unwrap();
        cfg.wallet = Some("0x1111111111111111111111111111111111111111".into());
        save(&cfg, &path).unwrap();
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["pricing.yaml".to_string()]);
        assert_eq!(load(&path).unwrap(), cfg);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o644);
        }
    }

    #[test]
    fn failed_save_removes_its_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        // Renaming a file over a non-empty directory fails.
        let path = dir.path().join("pricing.yaml");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("keep"), "x").unwrap();
        assert!(save(&PricingConfig::default(), &path).is_err());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["pricing.yaml".to_string()]);
    }
}
