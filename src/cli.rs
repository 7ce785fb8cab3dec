//! The clap tree: every command, flag, environment variable and default in one place.
//!
//! Command modules under `src/commands/` receive these structs and never parse arguments
//! themselves.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

const ABOUT: &str =
    "Sell and buy HTTP/LLM services for x402 micropayments (USDC on Base and other EVM chains).";

const AFTER_HELP: &str = "\
Examples:
  obol sell create demo --upstream http://127.0.0.1:9000 --price 0.01 --pay-to 0xYourAddress
  obol serve verifier --mode proxy
  obol buy pay https://seller.example/services/demo/data --max-amount 0.05
  obol wallet address

Files:
  offers     $XDG_CONFIG_HOME/obol/pricing.yaml   (--offers-file, OBOL_OFFERS_FILE)
  networks   $XDG_CONFIG_HOME/obol/networks.yaml  (OBOL_NETWORKS)
  ledger     $XDG_STATE_HOME/obol/payments.jsonl

Exit codes: 0 success, 1 refused or failed (the message says why), 2 a bug in obol.";

#[derive(Debug, Parser)]
#[command(name = "obol", version, about = ABOUT, after_help = AFTER_HELP, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "OBOL_LOG_FORMAT")]
    pub log_format: LogFormat,

    /// More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputFormat {
    #[default]
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Publish services for sale: offers that `obol serve verifier` charges for.
    #[command(subcommand)]
    Sell(SellCommand),

    /// Pay for services sold with x402.
    #[command(subcommand)]
    Buy(BuyCommand),

    /// The buyer's key: import it into the OS keyring, show its address.
    #[command(subcommand)]
    Wallet(WalletCommand),

    /// Run the daemons: the seller's payment gate.
    #[command(subcommand)]
    Serve(ServeCommand),

    /// Print shell completions (bash, zsh, fish).
    Completion(CompletionArgs),
}

// ---------------------------------------------------------------------------------------------
// sell

#[derive(Debug, Subcommand)]
#[command(after_help = "\
Offers live in a local offers file (pricing.yaml) that `obol serve verifier` reads and
hot-reloads. Every write is validated first and replaces the file atomically.")]
pub enum SellCommand {
    /// Create an offer, or update it in place when NAME exists (price, upstream, ...).
    Create(SellCreateArgs),
    /// List offers.
    List(SellListArgs),
    /// Delete an offer; the verifier stops charging for it on its next reload.
    Delete(SellNameArgs),
    /// Stop serving an offer without deleting it.
    Pause(SellNameArgs),
    /// Serve a paused offer again.
    Resume(SellNameArgs),
}

#[derive(Debug, Clone, Args)]
pub struct OffersFileArgs {
    /// The offers file (pricing.yaml) to read and write.
    #[arg(long, env = "OBOL_OFFERS_FILE", value_name = "FILE")]
    pub offers_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SellCreateArgs {
    /// Offer name: lowercase letters, digits and '-', at most 63 characters.
    pub name: String,

    /// Where paid requests go, e.g. http://127.0.0.1:9000.
    #[arg(long, value_name = "URL")]
    pub upstream: String,

    /// Price per request in the asset's units (USDC), e.g. 0.01.
    #[arg(long, value_name = "USDC")]
    pub price: String,

    /// Chain to be paid on: a name (base, base-sepolia, ...) or a CAIP-2 id (eip155:84532).
    #[arg(long, value_name = "CHAIN")]
    pub chain: Option<String>,

    /// Address that receives the payments (defaults to the file's `wallet`).
    #[arg(long, value_name = "ADDRESS")]
    pub pay_to: Option<String>,

    /// URL path the offer is sold under [default: /services/NAME].
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,

    /// Human description shown in the 402 answer.
    #[arg(long)]
    pub description: Option<String>,

    /// Authorization header value sent to the upstream on paid requests (e.g. "Bearer sk-...").
    #[arg(
        long,
        value_name = "VALUE",
        env = "OBOL_UPSTREAM_AUTH",
        hide_env_values = true
    )]
    pub upstream_auth: Option<String>,

    /// How long a buyer's signed authorization may stay valid, in seconds.
    #[arg(long, value_name = "SECONDS")]
    pub max_timeout_seconds: Option<u64>,

    #[command(flatten)]
    pub file: OffersFileArgs,

    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct SellListArgs {
    #[command(flatten)]
    pub file: OffersFileArgs,

    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct SellNameArgs {
    /// Offer name.
    pub name: String,

    #[command(flatten)]
    pub file: OffersFileArgs,
}

// ---------------------------------------------------------------------------------------------
// buy

#[derive(Debug, Subcommand)]
pub enum BuyCommand {
    /// Make one paid HTTP request: probe, read the 402, sign, send, print the response.
    #[command(after_help = "\
The spending policy is checked before anything is signed: the price must be at most
--max-amount, on a network obol knows (built in or in networks.yaml), in the asset that
network lists. The response body goes to stdout; a one-line receipt goes to stderr and
every payment is appended to the ledger ($XDG_STATE_HOME/obol/payments.jsonl).

Examples:
  obol buy pay https://seller.example/services/demo/data
  obol buy pay https://seller.example/v1/chat/completions -X POST -d @request.json \\
      -H 'Content-Type: application/json' --max-amount 0.25 --network base")]
    Pay(BuyPayArgs),
}

#[derive(Debug, Args)]
pub struct BuyPayArgs {
    /// The URL to request.
    pub url: String,

    /// HTTP method.
    #[arg(
        short = 'X',
        long = "request",
        value_name = "METHOD",
        default_value = "GET"
    )]
    pub method: String,

    /// Request body; @FILE reads a file, @- reads stdin.
    #[arg(short = 'd', long = "data", value_name = "BODY")]
    pub data: Option<String>,

    /// Extra request header, "Name: value" (repeatable).
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,

    /// Only pay on this network (name or CAIP-2 id).
    #[arg(long, value_name = "CHAIN", env = "OBOL_BUY_NETWORK")]
    pub network: Option<String>,

    /// Most this one request may cost, in USDC.
    #[arg(
        long,
        value_name = "USDC",
        default_value = "0.10",
        env = "OBOL_MAX_AMOUNT"
    )]
    pub max_amount: String,

    /// Time limit for each HTTP exchange with the seller, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 100)]
    pub timeout: u64,

    /// How often to resend the same payment after a timeout or 5xx (never a new signature).
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub retries: u32,

    #[command(flatten)]
    pub wallet: WalletSourceArgs,

    /// `table` prints the body and a receipt line; `json` prints one JSON object.
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: OutputFormat,
}

// ---------------------------------------------------------------------------------------------
// wallet

#[derive(Debug, Clone, Args)]
pub struct WalletSourceArgs {
    /// Read the private key (hex) from this file instead of the keyring.
    #[arg(
        long,
        value_name = "FILE",
        env = "OBOL_PRIVATE_KEY_FILE",
        conflicts_with = "signer_url"
    )]
    pub private_key_file: Option<PathBuf>,

    /// Sign with the stack's remote-signer at this URL instead of a local key.
    #[arg(long, value_name = "URL", env = "OBOL_SIGNER_URL")]
    pub signer_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum WalletCommand {
    /// Store a private key in the OS keyring (read from --private-key-file or stdin).
    #[command(after_help = "\
The key is read from a file or from standard input, never from the command line.
Without a usable keyring (no D-Bus session, locked, or hanging), obol stores it in a
0600 file under $XDG_DATA_HOME/obol and says so.

Where obol looks for a key, first match wins: --signer-url, --private-key-file,
OBOL_PRIVATE_KEY, the keyring, the fallback file.")]
    Import(WalletImportArgs),
    /// Print the address of the active wallet.
    Address(WalletAddressArgs),
}

#[derive(Debug, Args)]
pub struct WalletImportArgs {
    /// File holding the hex private key (default: read standard input).
    #[arg(long, value_name = "FILE")]
    pub private_key_file: Option<PathBuf>,

    /// Skip the keyring and store the key in the 0600 file directly.
    #[arg(long)]
    pub insecure_storage: bool,
}

#[derive(Debug, Args)]
pub struct WalletAddressArgs {
    #[command(flatten)]
    pub wallet: WalletSourceArgs,

    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: OutputFormat,
}

// ---------------------------------------------------------------------------------------------
// serve

#[derive(Debug, Subcommand)]
pub enum ServeCommand {
    /// The x402 payment gate: Traefik ForwardAuth endpoint and/or paying reverse proxy.
    Verifier(ServeVerifierArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VerifierMode {
    /// Only `/verify` for Traefik ForwardAuth (verifies, never settles unless --settle-before-grant).
    ForwardAuth,
    /// Only the reverse proxy: offers' paths are forwarded upstream, settled after success.
    Proxy,
    /// Both.
    Both,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Endpoints: /verify (ForwardAuth), /healthz, /readyz, /metrics, and in proxy mode every
offer's path. The offers file is re-read when it changes; no restart is needed.")]
pub struct ServeVerifierArgs {
    /// Address to listen on (":8080" means all interfaces).
    #[arg(
        long,
        value_name = "ADDR",
        default_value = ":8080",
        env = "OBOL_LISTEN"
    )]
    pub listen: String,

    #[command(flatten)]
    pub file: OffersFileArgs,

    /// Facilitator URL (overrides the offers file's `facilitatorURL`).
    #[arg(long, value_name = "URL", env = "OBOL_FACILITATOR_URL")]
    pub facilitator: Option<String>,

    /// Which endpoints to serve.
    #[arg(long, value_enum, default_value_t = VerifierMode::Both, env = "OBOL_VERIFIER_MODE")]
    pub mode: VerifierMode,

    /// In ForwardAuth mode, settle the payment before answering 200 (costs one settlement wait).
    #[arg(long, env = "OBOL_SETTLE_BEFORE_GRANT")]
    pub settle_before_grant: bool,

    /// Facilitator /verify time limit.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub verify_timeout: Duration,

    /// Facilitator /settle time limit.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub settle_timeout: Duration,

    /// How often to check the offers file for changes.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub reload_interval: Duration,
}

// ---------------------------------------------------------------------------------------------
// completion

#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell to print completions for.
    pub shell: clap_complete::Shell,
}

/// Parses "500ms", "5s", "2m", "1h" or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{s}` is not a duration; use e.g. 500ms, 5s, 2m, 1h"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(format!("`{s}` has an unknown unit; use ms, s, m or h")),
    };
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }
}
