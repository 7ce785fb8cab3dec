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

    /// Run the daemons: the seller's payment gate and the buyer's paying sidecar.
    #[command(subcommand)]
    Serve(ServeCommand),

    /// What the seller earned: revenue and settlement per offer and chain.
    #[command(subcommand)]
    Metrics(MetricsCommand),

    /// Sign in for the stack's authenticated RPC: the ID token eRPC sends upstream.
    #[command(subcommand)]
    Auth(AuthCommand),

    /// Print the Kubernetes manifests: CRDs, verifier, RBAC, monitoring, eRPC auth.
    Manifests(ManifestsArgs),

    /// Print shell completions (bash, zsh, fish).
    Completion(CompletionArgs),
}

// ---------------------------------------------------------------------------------------------
// sell

#[derive(Debug, Subcommand)]
#[command(after_help = "\
Where offers live:
  - in a cluster, as ServiceOffers, when --kube is given, or when a kubeconfig context is
    active (--kubeconfig, $KUBECONFIG or ~/.kube/config with a current context, or --context)
    and neither --offers-file nor OBOL_OFFERS_FILE is given;
  - otherwise in the local offers file (pricing.yaml) that `obol serve verifier` reads and
    hot-reloads.
Every write is validated first: bad input is refused before the file or the cluster is touched.
On a cluster, `create` applies the ServiceOffer and its routing (Traefik Middleware, Gateway API
HTTPRoute, owned by the offer) and the verifier (`--route-source kube`) serves it.

Examples:
  obol sell create demo --upstream http://127.0.0.1:9000 --price 0.01 --pay-to 0xYou \\
      --offers-file pricing.yaml
  obol sell create qwen --upstream ollama.llm:11434 --price 0.001 --pay-to 0xYou -n llm
  obol sell create api --upstream http://127.0.0.1:9000 --price 0.01 --pay-to 0xYou \\
      --route \"path=/submit,methods=POST,price=0.5\" --route \"path=/jobs/*,gate=free\"
  obol sell list -A
  obol sell pause qwen -n llm")]
pub enum SellCommand {
    /// Create an offer, or update it in place when NAME exists (price, upstream, ...).
    Create(Box<SellCreateArgs>),
    /// List offers.
    List(SellListArgs),
    /// Delete an offer; the verifier stops charging for it on its next reload.
    Delete(SellNameArgs),
    /// Stop serving an offer without deleting it.
    Pause(SellNameArgs),
    /// Serve a paused offer again.
    Resume(SellNameArgs),
}

/// Which Kubernetes cluster, context and namespace (shared by every command that touches a
/// cluster).
#[derive(Debug, Clone, Default, Args)]
pub struct KubeArgs {
    /// Kubeconfig file [default: $KUBECONFIG, ~/.kube/config, then the in-cluster account].
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context [default: the current context].
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// Namespace [default: the context's, else `default`; `serve verifier`: all namespaces].
    #[arg(long, short = 'n', value_name = "NAME", env = "OBOL_NAMESPACE")]
    pub namespace: Option<String>,
}

impl KubeArgs {
    /// The options `obol::k8s::KubeClient::new` takes.
    pub fn client_options(&self) -> crate::k8s::ClientOptions {
        crate::k8s::ClientOptions {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            namespace: self.namespace.clone(),
        }
    }
}

/// Where `obol sell` keeps offers: the offers file or a cluster (see `obol sell --help`).
#[derive(Debug, Clone, Args)]
pub struct SellTargetArgs {
    #[command(flatten)]
    pub file: OffersFileArgs,

    /// Use the cluster (ServiceOffers) even when an offers file is named.
    #[arg(long)]
    pub kube: bool,

    #[command(flatten)]
    pub cluster: KubeArgs,
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

    /// Where paid requests go. Offers file: a URL, e.g. http://127.0.0.1:9000. Cluster: a
    /// Service as SERVICE[.NAMESPACE]:PORT (e.g. ollama.llm:11434; the namespace defaults to
    /// the offer's), also written http://SERVICE.NAMESPACE.svc.cluster.local:PORT.
    #[arg(long, value_name = "URL|SERVICE[.NS]:PORT")]
    pub upstream: String,

    /// Price per request in the asset's units (USDC), e.g. 0.01.
    #[arg(long, value_name = "USDC")]
    pub price: String,

    /// Chain to be paid on: a name (base, base-sepolia, ...) or a CAIP-2 id (eip155:84532).
    #[arg(long, value_name = "CHAIN")]
    pub chain: Option<String>,

    /// Address that receives the payments [default: the offers file's `wallet`; on a cluster,
    /// the verifier's `wallet`].
    #[arg(long, value_name = "ADDRESS")]
    pub pay_to: Option<String>,

    /// URL path the offer is sold under [default: /services/NAME].
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,

    /// Human description shown in the 402 answer.
    #[arg(long)]
    pub description: Option<String>,

    /// Authorization header value sent to the upstream on paid requests (e.g. "Bearer sk-...").
    /// Offers file only.
    #[arg(
        long,
        value_name = "VALUE",
        env = "OBOL_UPSTREAM_AUTH",
        hide_env_values = true
    )]
    pub upstream_auth: Option<crate::secret::Secret>,

    /// How long a buyer's signed authorization may stay valid, in seconds.
    #[arg(long, value_name = "SECONDS")]
    pub max_timeout_seconds: Option<u64>,

    /// Declare a route under the offer's path (repeat for more): `path=/x` is that path only,
    /// `path=/x/*` it and everything under it, `path=/` the offer's root, `path=/*` the rest;
    /// optional `methods=POST|GET` (metadata, not enforced), `gate=paid|free` (default paid),
    /// `price=USDC` (instead of --price), `summary=TEXT` (no ','). The most specific path
    /// wins. Once any route is declared, the offer's other paths are refused (404). Replaces
    /// the offer's routes on update. E.g. --route "path=/v1/chat/completions,methods=POST"
    /// --route "path=/v1/models,gate=free".
    #[arg(long = "route", value_name = "path=/x[,gate=..][,price=..][,..]")]
    pub routes: Vec<String>,

    /// Remove the offer's declared routes (its whole path is paid at --price again).
    #[arg(long, conflicts_with = "routes")]
    pub no_routes: bool,

    /// Cluster only: how a paid request reaches the upstream. `proxy`: through the verifier,
    /// settled after the upstream answered 2xx (the buyer pays only for a success).
    /// `forward-auth`: Traefik asks the verifier first, the payment is settled before the
    /// upstream is asked (paid even if it then fails; with the verifier's `verifyOnly: true`,
    /// access without payment). [default: the offer's, else proxy]
    #[arg(long, value_enum, value_name = "MODE")]
    pub gate: Option<crate::k8s::types::GateMode>,

    #[command(flatten)]
    pub target: SellTargetArgs,

    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct SellListArgs {
    #[command(flatten)]
    pub target: SellTargetArgs,

    /// On a cluster: the offers of every namespace.
    #[arg(long, short = 'A')]
    pub all_namespaces: bool,

    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct SellNameArgs {
    /// Offer name.
    pub name: String,

    #[command(flatten)]
    pub target: SellTargetArgs,
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

    /// Pre-sign a pool of payments for a model and hand it to the buyer sidecar as a
    /// PurchaseRequest; waits until the sidecar reports it Ready.
    #[command(after_help = "\
Checked before anything is signed: the seller answers 402 for --model (POST of a minimal
chat request to --endpoint; a URL without a path gets /v1/chat/completions), its price is
at most --max-amount on a network obol knows in the asset that network lists, the wallet's
balance on chain covers the pool (COUNT x price; skip with --force), and the caps are
consistent. Then COUNT EIP-3009 authorizations are signed (validAfter 0, validBefore now +
--auth-ttl) and the PurchaseRequest is applied (server-side apply, field manager obol).

Running it again for an existing NAME tops the pool up: the authorizations still valid are
kept (the sidecar skips those it already spent) and COUNT new ones are added; spec.count
is then the size of the whole pool. A seller whose payTo, asset, network or price changed
is refused unless --replace, which starts a fresh pool. Caps and refill flags replace the
existing ones when given, and are kept when none is given.

Examples:
  obol buy request qwen --endpoint https://seller.example/services/qwen --model qwen3:8b \\
      --count 100 -n llm
  obol buy request qwen --endpoint https://seller.example/services/qwen --model qwen3:8b \\
      --count 500 --max-total 2000 --max-spend-per-day 5 --auto-refill -n llm
  obol buy request qwen ... --dry-run      # print the PurchaseRequest, sign nothing")]
    Request(BuyRequestArgs),

    /// List the PurchaseRequests of a namespace: model, price, remaining, spent, caps, Ready.
    #[command(after_help = "\
REMAINING, SPENT and TOTAL SPENT are what the buyer sidecar (`obol serve buyer --source kube`)
wrote back; `-` until it did. READY shows the reason when it is False.

Examples:
  obol buy list -n llm
  obol buy list -n llm -o json     # prices and caps as USDC decimals and atomic units")]
    List(BuyListArgs),
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

    /// Longest validity, in seconds, a seller's 402 may ask for the signed payment
    /// (maxTimeoutSeconds); a 402 asking for more is refused before signing.
    #[arg(long, value_name = "SECONDS", default_value_t = crate::buyer::policy::DEFAULT_MAX_TIMEOUT_SECS, env = "OBOL_MAX_TIMEOUT")]
    pub max_timeout: u64,

    /// How often to resend the same payment after a timeout or 5xx (never a new signature).
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub retries: u32,

    #[command(flatten)]
    pub wallet: WalletSourceArgs,

    /// `table` prints the body and a receipt line; `json` prints one JSON object.
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct BuyRequestArgs {
    /// PurchaseRequest name: lowercase letters, digits and '-', at most 63 characters.
    pub name: String,

    /// The seller's x402-gated chat endpoint (a base URL gets /v1/chat/completions).
    #[arg(long, value_name = "URL")]
    pub endpoint: String,

    /// The seller's model id; served by the sidecar as paid/MODEL.
    #[arg(long, value_name = "MODEL")]
    pub model: String,

    /// How many payments to pre-sign (1 to 2500).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=2500))]
    pub count: u64,

    /// Let a signer refill the pool when it runs low (writes autoRefill.enabled).
    #[arg(long)]
    pub auto_refill: bool,

    /// With --auto-refill: refill when fewer than T authorizations remain [default: COUNT / 5].
    #[arg(long, value_name = "T")]
    pub refill_threshold: Option<u64>,

    /// With --auto-refill: authorizations to sign per refill [default: COUNT].
    #[arg(long, value_name = "C", value_parser = clap::value_parser!(u64).range(1..))]
    pub refill_count: Option<u64>,

    /// Cap on the payments the sidecar ever makes for this pool (at least COUNT).
    #[arg(long, value_name = "X")]
    pub max_total: Option<u64>,

    /// Cap on the sidecar's spend per UTC day, in USDC (e.g. 0.5).
    #[arg(long, value_name = "USDC")]
    pub max_spend_per_day: Option<String>,

    /// Most one request may cost, in USDC.
    #[arg(
        long,
        value_name = "USDC",
        default_value = "0.10",
        env = "OBOL_MAX_AMOUNT"
    )]
    pub max_amount: String,

    /// Only pay on this network (name or CAIP-2 id).
    #[arg(long, value_name = "CHAIN", env = "OBOL_BUY_NETWORK")]
    pub network: Option<String>,

    /// How long each authorization stays valid: e.g. 30d, 12h, 90m (at least 10m).
    #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = parse_auth_ttl)]
    pub auth_ttl: Duration,

    /// Sign even when the balance cannot be checked or does not cover the pool.
    #[arg(long)]
    pub force: bool,

    /// Drop the existing pool of NAME (also when the seller's terms changed) instead of
    /// topping it up.
    #[arg(long)]
    pub replace: bool,

    /// Return after the apply, without waiting for the sidecar.
    #[arg(long)]
    pub no_wait: bool,

    /// How long to wait for the sidecar to report the pool Ready.
    #[arg(long, value_name = "DURATION", default_value = "180s", value_parser = parse_duration)]
    pub wait_timeout: Duration,

    /// Run every check and print the PurchaseRequest (without authorizations); sign and apply
    /// nothing.
    #[arg(long)]
    pub dry_run: bool,

    #[command(flatten)]
    pub cluster: KubeArgs,

    #[command(flatten)]
    pub wallet: WalletSourceArgs,

    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct BuyListArgs {
    #[command(flatten)]
    pub cluster: KubeArgs,

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
    /// The buyer sidecar: an OpenAI-compatible proxy that pays sellers' 402s from a pool of
    /// pre-signed authorizations (or a live signer) under spend caps.
    Buyer(ServeBuyerArgs),
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

/// Where `obol serve verifier` gets its routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RouteSourceArg {
    /// The offers file's routes.
    File,
    /// The cluster's ServiceOffers; the offers file gives only wallet, chain, facilitatorURL
    /// and verifyOnly.
    Kube,
    /// ServiceOffers first, then the offers file's routes.
    Both,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Endpoints: /verify (ForwardAuth), /healthz, /readyz, /metrics, and in proxy mode every
offer's path. The offers file is re-read when it changes; no restart is needed.

With --route-source kube or both, ServiceOffers are watched (every namespace, or -n) and
served ahead of the file's routes; /readyz waits for the first complete list. Paused offers
are answered 404 offer_paused, offers whose RoutePublished condition is False are not served,
and a broken offer is answered 503 offer_unavailable and gets PaymentGateReady=False with the
reason on its status. The offers file's `chain` and `wallet` fill what an offer leaves empty.")]
pub struct ServeVerifierArgs {
    /// Address to listen on (":8080" means all interfaces). In modes proxy and both this is the
    /// public listener: it carries the paying proxy and /healthz, /readyz, nothing else.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = ":8080",
        env = "OBOL_LISTEN"
    )]
    pub listen: String,

    /// Listener for the cluster network: ForwardAuth (/verify) and /metrics. Without it they
    /// are served on --listen only in mode forward-auth or when --listen is loopback; mode both
    /// on a non-loopback --listen refuses to start without it.
    #[arg(long, value_name = "ADDR", env = "OBOL_INTERNAL_LISTEN")]
    pub internal_listen: Option<String>,

    #[command(flatten)]
    pub file: OffersFileArgs,

    /// Facilitator URL (overrides the offers file's `facilitatorURL`).
    #[arg(long, value_name = "URL", env = "OBOL_FACILITATOR_URL")]
    pub facilitator: Option<String>,

    /// Which endpoints to serve.
    #[arg(long, value_enum, default_value_t = VerifierMode::Both, env = "OBOL_VERIFIER_MODE")]
    pub mode: VerifierMode,

    /// ForwardAuth: settle the payment before answering 200 even when the offers file says
    /// `verifyOnly: true`. Settling before the grant is the default; this overrides the file.
    #[arg(long, env = "OBOL_SETTLE_BEFORE_GRANT", conflicts_with = "verify_only")]
    pub settle_before_grant: bool,

    /// ForwardAuth: answer 200 after the facilitator's /verify without settling: ACCESS
    /// WITHOUT PAYMENT (the buyer's authorization is used once, nothing moves on chain; counted
    /// as verify_only_grants, never as revenue). Also `verifyOnly: true` in the offers file.
    #[arg(long, env = "OBOL_VERIFY_ONLY")]
    pub verify_only: bool,

    /// Where payment state lives (used payments, settlements in flight): a file for one
    /// verifier process (kept across restarts), `redis://[user:password@]host:6379/0` or
    /// `rediss://…` (TLS) shared by replicas (`?prefix=NAME` for the key prefix, default
    /// obol:x402), or `memory` (forgotten on restart: a verify-only payment could be used
    /// again). [default: payment-state.redb next to the offers file]
    #[arg(
        long,
        value_name = "PATH|redis://…|memory",
        env = "OBOL_STATE",
        hide_env_values = true
    )]
    pub state: Option<String>,

    /// Facilitator /verify time limit.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub verify_timeout: Duration,

    /// Facilitator /settle time limit.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub settle_timeout: Duration,

    /// How often to check the offers file for changes.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub reload_interval: Duration,

    /// Where routes come from: the offers file, the cluster's ServiceOffers, or both.
    #[arg(long, value_enum, default_value_t = RouteSourceArg::File, env = "OBOL_ROUTE_SOURCE")]
    pub route_source: RouteSourceArg,

    #[command(flatten)]
    pub cluster: KubeArgs,

    #[command(flatten)]
    pub limits: DaemonLimitsArgs,

    /// Length of each ServiceOffer watch request before it is resumed.
    #[arg(long, value_name = "DURATION", default_value = "290s", value_parser = parse_duration, hide = true)]
    pub kube_watch_timeout: Duration,
}

/// Where `obol serve buyer` reads its upstreams from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BuyerSource {
    /// Per-upstream config and auth files (--config-dir, --auths-dir).
    Files,
    /// The PurchaseRequests of one namespace (-n), watched; their status is written back.
    Kube,
    /// Both (an upstream name defined twice: the files' one wins).
    Both,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Endpoints: POST /v1/chat/completions, /chat/completions, /v1/responses, /responses (routed by
the body's model, `paid/` and `openai/` prefixes ignored), /upstream/NAME/..., GET /status,
POST /admin/reload, /healthz, /readyz, /metrics. It listens on loopback (127.0.0.1:8402) by
default: anything that reaches it can spend its budgets. /admin/* answers loopback peers only,
or peers that send `Authorization: Bearer TOKEN` with the token of --admin-token-file.

Each upstream is a file NAME.json in --config-dir (url, remoteModel, network, payTo, asset,
price, and the caps maxSpendPerDay, maxTotal, liveSigning) with its pre-signed authorizations
in --auths-dir/NAME.json. Spent authorizations and budgets are kept in --state: a restart
never reuses an authorization or resets a budget. The caps count every authorization handed
to a seller: one the seller answered with an error and no receipt stays counted until its
validBefore passed and the network's RPC (networks.yaml `rpc:`) says it was never used, and a
retry of the same request (same body) resends it instead of signing a new one.

With --source kube or both, the PurchaseRequests of one namespace (-n) are watched: each is an
upstream named after it once the seller's 402 matches its spec.payment, its status (remaining,
spent, totalSpent, Ready) is written back, and with autoRefill.enabled and a wallet that signed
its pool, new authorizations are appended below the threshold (never beyond maxTotal). An
unreachable cluster is retried in the background; /readyz waits for the first list.

Live signing (upstreams with \"liveSigning\": true, when their pool is empty) and refills use the
wallet from --private-key-file, --signer-url or OBOL_PRIVATE_KEY; the keyring is not consulted.")]
pub struct ServeBuyerArgs {
    /// Address to listen on (":8402" means all interfaces: anyone who reaches it can spend).
    #[arg(
        long,
        value_name = "ADDR",
        default_value = crate::buyer::sidecar::DEFAULT_LISTEN,
        env = "OBOL_LISTEN"
    )]
    pub listen: String,

    /// File holding a bearer token that lets peers off loopback call /admin/* (without it,
    /// /admin/* answers loopback peers only).
    #[arg(long, value_name = "FILE", env = "OBOL_BUYER_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,

    /// Longest validity, in seconds, a seller's 402 may ask of a live signature
    /// (maxTimeoutSeconds); a 402 asking for more is refused before signing.
    #[arg(long, value_name = "SECONDS", default_value_t = crate::buyer::policy::DEFAULT_MAX_TIMEOUT_SECS, env = "OBOL_MAX_TIMEOUT")]
    pub max_timeout: u64,

    /// Directory of per-upstream config files [default: $XDG_CONFIG_HOME/obol/buyer/config].
    #[arg(long, value_name = "DIR", env = "OBOL_BUYER_CONFIG_DIR")]
    pub config_dir: Option<PathBuf>,

    /// Directory of per-upstream auth files [default: $XDG_CONFIG_HOME/obol/buyer/auths].
    #[arg(long, value_name = "DIR", env = "OBOL_BUYER_AUTHS_DIR")]
    pub auths_dir: Option<PathBuf>,

    /// State file: consumed authorizations and budgets [default: $XDG_STATE_HOME/obol/buyer-state.json].
    #[arg(long, value_name = "FILE", env = "OBOL_BUYER_STATE")]
    pub state: Option<PathBuf>,

    /// Where upstreams come from.
    #[arg(long, value_enum, default_value_t = BuyerSource::Files, env = "OBOL_BUYER_SOURCE")]
    pub source: BuyerSource,

    /// Namespace of the PurchaseRequests [default: the pod's namespace in a cluster, else the
    /// kubeconfig context's, else `default`].
    #[arg(long, short = 'n', value_name = "NAME", env = "OBOL_BUYER_NAMESPACE")]
    pub namespace: Option<String>,

    /// Kubeconfig file [default: $KUBECONFIG, ~/.kube/config, then the in-cluster account].
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context [default: the current context].
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// Length of each PurchaseRequest watch request before it is resumed.
    #[arg(long, value_name = "DURATION", default_value = "290s", value_parser = parse_duration, hide = true)]
    pub kube_watch_timeout: Duration,

    /// How often to re-read the upstreams (POST /admin/reload also triggers a reload).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub reload_interval: Duration,

    /// Most one payment the sidecar signs may cost, live or as a refill, in USDC (pre-signed
    /// pools are not affected).
    #[arg(
        long,
        value_name = "USDC",
        default_value = "0.10",
        env = "OBOL_MAX_AMOUNT"
    )]
    pub max_amount: String,

    #[command(flatten)]
    pub wallet: WalletSourceArgs,

    #[command(flatten)]
    pub limits: DaemonLimitsArgs,
}

/// What a daemon lets its clients hold (`serve verifier`, `serve buyer`).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Under hostile load")]
pub struct DaemonLimitsArgs {
    /// Close a connection that has not sent a complete request head this long after it
    /// opened, or (HTTP/1.1) after its previous response: slow or silent clients cannot hold
    /// connections open. An idle HTTP/1.1 keep-alive connection is closed after this too.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_positive_duration, env = "OBOL_HEADER_TIMEOUT")]
    pub header_timeout: Duration,

    /// Close a connection on which no request started for this long (HTTP/2 included),
    /// after the response it may still be sending.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_positive_duration, env = "OBOL_IDLE_TIMEOUT")]
    pub idle_timeout: Duration,

    /// Open connections at most; at the cap no new one is accepted until one closes (they
    /// wait in the kernel's queue). Lowered to fit the open-file limit (its soft value is
    /// raised to the hard one first): at most the limit minus max(64, a quarter of it).
    #[arg(long, value_name = "N", default_value_t = crate::daemon::DEFAULT_MAX_CONNECTIONS, value_parser = clap::value_parser!(u32).range(1..), env = "OBOL_MAX_CONNECTIONS")]
    pub max_connections: u32,

    /// Requests handled at once at most; more are answered 503 {"error":"overloaded"} with
    /// Retry-After: 1 (/healthz and /readyz always answer). Lowered to fit the open-file
    /// limit: at most a quarter of it, minus 32.
    #[arg(long, value_name = "N", default_value_t = crate::daemon::DEFAULT_MAX_IN_FLIGHT, value_parser = clap::value_parser!(u32).range(1..), env = "OBOL_MAX_IN_FLIGHT")]
    pub max_in_flight: u32,
}

// ---------------------------------------------------------------------------------------------
// metrics

#[derive(Debug, Subcommand)]
pub enum MetricsCommand {
    /// Revenue, charged requests, settlement rate and last payment per offer and chain.
    #[command(after_help = "\
Where the numbers come from (one of):
  --prometheus URL  A Prometheus that scrapes `obol serve verifier` and has obol's recording
                    rules loaded (`obol metrics rules`): revenue over --window (24h or 7d).
  --kube            The same Prometheus inside a cluster, reached through the Kubernetes API
                    server's service proxy: only a kubeconfig is needed, no port-forward.
                    Default service: monitoring/prometheus-operated:9090 (kube-prometheus-stack).
  --scrape URL      No Prometheus: read a verifier's /metrics directly. Lifetime totals since
                    that verifier started; offers deleted since are not counted.
  (none of them)    OBOL_PROMETHEUS_URL if set, else --scrape http://127.0.0.1:8080/metrics
                    (a local `obol serve verifier` on its default port).

Columns: CHARGED paid requests that were charged; REVENUE the charged amount, exact, in the
chain's asset (USDC: 6 decimals); SETTLED payments verified / payment attempts (402 answers,
verified and failed payments), over the last hour with Prometheus; LAST PAYMENT time since the
last charge. A TOTAL row per chain follows the offers. \"≈\" marks an estimate: Prometheus
extrapolates increase() to the window's edges (docs/metrics.md explains what obol does about it).

Examples:
  obol metrics earnings --prometheus http://127.0.0.1:9090
  obol metrics earnings --kube --context prod --window 7d --by chain
  obol metrics earnings --kube --kube-namespace observability --kube-service prometheus:9090
  obol metrics earnings --scrape http://127.0.0.1:8080/metrics --offer local/demo -o json")]
    Earnings(MetricsEarningsArgs),

    /// Print the Prometheus recording and alerting rules that `earnings` reads.
    #[command(after_help = "\
The same rules `obol manifests` puts in its PrometheusRule. For a Prometheus without the
operator: `obol metrics rules > x402-rules.yaml`, list the file under `rule_files:` in
prometheus.yml, and reload Prometheus. Check them with `promtool check rules x402-rules.yaml`.")]
    Rules,
}

/// The revenue window of `obol metrics earnings`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EarningsWindow {
    /// The last 24 hours.
    #[value(name = "24h")]
    Day,
    /// The last 7 days.
    #[value(name = "7d")]
    Week,
}

/// How `obol metrics earnings` groups its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum EarningsBy {
    /// One row per offer and chain, then a total per chain.
    #[default]
    Offer,
    /// One row per chain.
    Chain,
}

#[derive(Debug, Args)]
pub struct MetricsEarningsArgs {
    /// Prometheus base URL, e.g. http://127.0.0.1:9090.
    #[arg(long, value_name = "URL", env = "OBOL_PROMETHEUS_URL")]
    pub prometheus: Option<String>,

    /// Query the cluster's Prometheus through the Kubernetes API server (uses the kubeconfig).
    #[arg(long, conflicts_with = "scrape")]
    pub kube: bool,

    /// Namespace of the Prometheus service (with --kube).
    #[arg(long, value_name = "NAMESPACE", default_value = "monitoring")]
    pub kube_namespace: String,

    /// Prometheus service as NAME:PORT (with --kube); kube-prometheus-stack also has
    /// `<release>-kube-prometheus-prometheus:9090`.
    #[arg(
        long,
        value_name = "NAME:PORT",
        default_value = "prometheus-operated:9090"
    )]
    pub kube_service: String,

    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then the in-cluster account).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context (default: the current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// Read a verifier's /metrics instead of Prometheus: lifetime totals since it started.
    #[arg(long, value_name = "URL")]
    pub scrape: Option<String>,

    /// Revenue window (Prometheus only) [default: 24h].
    #[arg(long, value_enum)]
    pub window: Option<EarningsWindow>,

    /// Rows per offer (and chain) or per chain.
    #[arg(long, value_enum, default_value_t)]
    pub by: EarningsBy,

    /// Only this offer: NAMESPACE/NAME (offers of `obol sell create` are in namespace `local`),
    /// or NAME in any namespace.
    #[arg(long, value_name = "NS/NAME")]
    pub offer: Option<String>,

    /// `table` for people; `json` for scripts (the same numbers, stable field names).
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: OutputFormat,
}

// ---------------------------------------------------------------------------------------------
// auth

#[derive(Debug, Subcommand)]
#[command(after_help = "\
How it fits together: `obol auth login` signs you in to an OpenID Connect issuer (Google by
default) in your browser, checks the ID token it gets back (signature, issuer, audience,
expiry, nonce) and writes it to the Kubernetes Secret erpc/obol-oauth-token, key `token`.
eRPC reads that Secret as OBOL_OAUTH_TOKEN and sends it upstream (X-Nodecore-Token). ID tokens
live about an hour: `obol auth refresh` gets a new one with the refresh token, and
`obol auth refresh --watch` keeps doing so, on a laptop or in a pod.

Where things are kept:
  ID token        Secret erpc/obol-oauth-token key `token` (--secret-namespace, --secret-name)
  refresh token   the OS keyring (service obol, entry oauth-refresh-token); without a usable
                  keyring, $XDG_DATA_HOME/obol/oauth-refresh-token.json (mode 0600), and obol
                  says so when it writes it. OBOL_KEYRING=off skips the keyring.
  who/which cluster  $XDG_STATE_HOME/obol/auth.json (no secrets)
  client settings    flags, OBOL_OAUTH_* variables, or $XDG_CONFIG_HOME/obol/auth.yaml

Examples:
  obol auth login --client-id 1234-abc.apps.googleusercontent.com --client-secret GOCSPX-...
  obol auth login --no-browser --callback-port 8765     # over SSH: ssh -L 8765:127.0.0.1:8765
  obol auth status
  obol auth refresh --watch
  obol auth logout")]
pub enum AuthCommand {
    /// Sign in with your browser and hand the ID token to eRPC.
    #[command(after_help = "\
What happens:
  1. obol reads the issuer's discovery document and checks that the cluster answers.
  2. It listens on http://127.0.0.1:PORT/callback (loopback only; a random port unless
     --callback-port), prints the sign-in URL and opens it in your browser.
  3. You sign in; the issuer redirects the browser to the callback with a one-time code.
     obol checks `state`, exchanges the code (PKCE S256) and checks the ID token.
  4. The ID token goes to Secret erpc/obol-oauth-token (key `token`); the refresh token to the
     OS keyring (or a 0600 file, announced); eRPC's Deployment is restarted by changing its
     pod-template annotation obol.org/oauth-token-hash, unless Stakater Reloader watches the
     Secret (annotation secret.reloader.stakater.com/reload) or --no-restart is given.

Without a browser on this machine (SSH, containers): use --no-browser, open the printed URL
anywhere, and when the browser ends on an unreachable http://127.0.0.1:PORT/callback?... page,
copy that full URL from the address bar and paste it here. Or forward the port:
`ssh -L 8765:127.0.0.1:8765 host` and `obol auth login --callback-port 8765`.

Google: create an OAuth client of type \"Desktop app\" and pass its id and secret; obol asks
for offline access (access_type=offline, prompt=consent) so that a refresh token is issued.
Other issuers: the client must allow the redirect URI http://127.0.0.1/callback on any port
and the scope offline_access.

Examples:
  obol auth login --client-id 1234-abc.apps.googleusercontent.com --client-secret GOCSPX-...
  OBOL_OAUTH_CLIENT_ID=obol-cli obol auth login --issuer https://id.example.com
  obol auth login --no-browser --context prod")]
    Login(AuthLoginArgs),

    /// Get a fresh ID token with the stored refresh token and hand it to eRPC.
    #[command(after_help = "\
The refresh token comes from this machine's store (the one `obol auth login` filled) or, with
--from-secret NAMESPACE/NAME, from a Secret with keys client_id, refresh_token, and optionally
client_secret and issuer (for a refresher running in the cluster). When the issuer rotates
refresh tokens, the new one replaces the old one where it was found; when it returns none
(Google), the old one is kept.

--watch keeps running: it refreshes now, then about 15 minutes before each token expires
(every ~45 minutes for Google's 1-hour tokens; at 75% of the lifetime for tokens shorter than
an hour), retries with backoff when the issuer or the cluster is unreachable, and stops on
SIGTERM/Ctrl-C or when the grant was revoked (exit 1: sign in again).

Examples:
  obol auth refresh
  obol auth refresh --watch
  obol auth refresh --watch --from-secret erpc/nodecore-oauth-refresh --log-format json")]
    Refresh(AuthRefreshArgs),

    /// Who is signed in, until when, and whether the Secret holds that token.
    #[command(after_help = "\
Shows the signed-in account (email, subject), the ID token's expiry, whether the Secret holds
the token obol last wrote (compared by hash), and where the refresh token is stored. Never
prints a token. The Secret check needs the cluster; without it the rest is still shown.

Examples:
  obol auth status
  obol auth status -o json")]
    Status(AuthStatusArgs),

    /// Sign out: revoke the refresh token, empty the Secret, delete what is stored.
    #[command(after_help = "\
Revokes the refresh token at the issuer (when it has a revocation endpoint), empties the
Secret's `token` (and restarts eRPC so it stops sending it, unless --no-restart), and deletes
the stored refresh token and the session record. Running it again is harmless. If revoking
fails (issuer unreachable), everything else is done but the refresh token is kept, so that
running `obol auth logout` again can retry; --no-revoke skips revocation.

Examples:
  obol auth logout
  obol auth logout --no-revoke --context prod")]
    Logout(AuthLogoutArgs),
}

/// The OAuth client and issuer.
#[derive(Debug, Clone, Args)]
pub struct AuthClientArgs {
    /// OpenID Connect issuer [login default: https://accounts.google.com; later commands: the
    /// one you logged in to].
    #[arg(long, value_name = "URL", env = "OBOL_OAUTH_ISSUER")]
    pub issuer: Option<String>,

    /// OAuth client id (Google: a "Desktop app" client).
    #[arg(long, value_name = "ID", env = "OBOL_OAUTH_CLIENT_ID")]
    pub client_id: Option<String>,

    /// OAuth client secret, if the client has one (Google Desktop clients do).
    #[arg(
        long,
        value_name = "SECRET",
        env = "OBOL_OAUTH_CLIENT_SECRET",
        hide_env_values = true
    )]
    pub client_secret: Option<String>,
}

/// The cluster, the token Secret and the eRPC Deployment.
#[derive(Debug, Clone, Args)]
pub struct AuthClusterArgs {
    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then the in-cluster account).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context (default: the current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// Namespace of the token Secret and of the eRPC Deployment [default: erpc].
    #[arg(long, value_name = "NAME", env = "OBOL_OAUTH_SECRET_NAMESPACE")]
    pub secret_namespace: Option<String>,

    /// Name of the token Secret [default: obol-oauth-token].
    #[arg(long, value_name = "NAME", env = "OBOL_OAUTH_SECRET_NAME")]
    pub secret_name: Option<String>,

    /// The eRPC Deployment restarted after a token change [default: erpc].
    #[arg(long, value_name = "NAME")]
    pub erpc_deployment: Option<String>,
}

#[derive(Debug, Args)]
pub struct AuthLoginArgs {
    #[command(flatten)]
    pub client: AuthClientArgs,

    #[command(flatten)]
    pub cluster: AuthClusterArgs,

    /// Listen for the browser's redirect on this port of 127.0.0.1 [default: a free one].
    #[arg(long, value_name = "PORT")]
    pub callback_port: Option<u16>,

    /// Do not open a browser: print the URL, and accept the final redirect URL pasted on stdin.
    #[arg(long)]
    pub no_browser: bool,

    /// Do not restart eRPC after writing the Secret.
    #[arg(long)]
    pub no_restart: bool,

    /// How long to wait for the sign-in.
    #[arg(long, value_name = "DURATION", default_value = "180s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Preselect this account on the issuer's sign-in page (e.g. your email).
    #[arg(long, value_name = "HINT")]
    pub login_hint: Option<String>,
}

#[derive(Debug, Args)]
pub struct AuthRefreshArgs {
    #[command(flatten)]
    pub client: AuthClientArgs,

    #[command(flatten)]
    pub cluster: AuthClusterArgs,

    /// Keep refreshing before each token expires, until stopped (fit to run in a pod).
    #[arg(long)]
    pub watch: bool,

    /// Read client_id, client_secret, refresh_token (and issuer) from this Secret instead of
    /// this machine's store.
    #[arg(long, value_name = "NAMESPACE/NAME", env = "OBOL_OAUTH_FROM_SECRET")]
    pub from_secret: Option<String>,

    /// Do not restart eRPC after writing the Secret.
    #[arg(long)]
    pub no_restart: bool,
}

#[derive(Debug, Args)]
pub struct AuthStatusArgs {
    #[command(flatten)]
    pub cluster: AuthClusterArgs,

    /// `table` for people; `json` for scripts (never contains a token).
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct AuthLogoutArgs {
    #[command(flatten)]
    pub client: AuthClientArgs,

    #[command(flatten)]
    pub cluster: AuthClusterArgs,

    /// Do not revoke the refresh token at the issuer (only forget it here).
    #[arg(long)]
    pub no_revoke: bool,

    /// Do not restart eRPC after emptying the Secret.
    #[arg(long)]
    pub no_restart: bool,
}

// ---------------------------------------------------------------------------------------------
// manifests

#[derive(Debug, Args)]
#[command(after_help = "\
Prints one YAML stream, in apply order: the CRDs serviceoffers.obol.org and
purchaserequests.obol.org; the verifier's Namespace, ServiceAccount, ClusterRole
(ServiceOffers get/list/watch, serviceoffers/status patch) and binding, ConfigMap
x402-pricing, Deployment and Service x402-verifier:8080; the ServiceMonitor, the buyer
PodMonitor and the PrometheusRule (prometheus-operator); in namespace erpc the Secret
obol-oauth-token (no data), the Roles oauth-token-writer and erpc-restarter with their
RoleBindings, and the ConfigMap erpc-obol-values holding the eRPC Helm values.
Nothing is sent to a cluster. docs/kubernetes.md explains each object.

Examples:
  obol manifests | kubectl apply -f -
  obol manifests --namespace payments --image registry.example/obol:dev > obol.yaml
  obol manifests --no-monitoring --no-erpc | kubectl apply --server-side -f -")]
pub struct ManifestsArgs {
    /// Namespace of the verifier.
    #[arg(long, short = 'n', value_name = "NAME", default_value = "x402")]
    pub namespace: String,

    /// Container image of obol [default: ghcr.io/obolnetwork/obol:<this version>].
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,

    /// `chain` of the verifier's base config, for offers that name none.
    #[arg(long, value_name = "CHAIN")]
    pub chain: Option<String>,

    /// `facilitatorURL` of the verifier's base config.
    #[arg(long, value_name = "URL")]
    pub facilitator: Option<String>,

    /// `wallet` of the verifier's base config: payTo of offers that name none.
    #[arg(long, value_name = "ADDRESS")]
    pub wallet: Option<String>,

    /// Leave out ServiceMonitor, PodMonitor and PrometheusRule (no prometheus-operator).
    #[arg(long)]
    pub no_monitoring: bool,

    /// Leave out the eRPC token Secret, its Roles and bindings, and the eRPC values.
    #[arg(long)]
    pub no_erpc: bool,

    /// Also render a Deployment running `obol auth refresh --watch --from-secret
    /// erpc/nodecore-oauth-refresh` (keeps the eRPC token fresh without a laptop), with a Role
    /// that may read and update only that grant Secret.
    #[arg(long, conflicts_with = "no_erpc")]
    pub auth_refresher: bool,

    /// Access WITHOUT payment for forward-auth offers: the verifier's base config says
    /// `verifyOnly: true`, so a verified payment is granted and never settled (nothing moves
    /// on chain; counted as verify_only_grants, never as revenue). Without it, forward-auth
    /// offers are settled before they are granted, and proxy offers (the default) after the
    /// upstream succeeded.
    #[arg(long)]
    pub verify_only: bool,

    /// Verifier replicas. More than one needs --state: replicas share the record of used
    /// payments through Redis (with a PodDisruptionBudget keeping one up).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub replicas: u16,

    /// A shared payment-state store for the verifier, `redis://[user:password@]host:6379/0` or
    /// `rediss://…` (TLS), written into the Secret x402-verifier-state (never into the
    /// Deployment). Without it: one replica with its state file on a PersistentVolumeClaim.
    #[arg(
        long,
        value_name = "redis://…",
        env = "OBOL_MANIFESTS_STATE",
        hide_env_values = true
    )]
    pub state: Option<String>,
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

/// A duration as [`parse_duration`] takes it, longer than zero.
pub fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err(format!(
            "`{}` is zero; give a positive duration, e.g. 10s",
            s.trim()
        )),
        d => Ok(d),
    }
}

/// Parses an authorization lifetime: a duration as [`parse_duration`] takes it, or days (`30d`);
/// at least 10 minutes.
pub fn parse_auth_ttl(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let d = match t.strip_suffix('d') {
        Some(days) => {
            let n: u64 = days
                .parse()
                .map_err(|_| format!("`{t}` is not a duration; use e.g. 30d, 12h, 90m"))?;
            Duration::from_secs(n.saturating_mul(86_400))
        }
        None => parse_duration(t)?,
    };
    if d < Duration::from_secs(600) {
        return Err(format!(
            "`{t}` is too short: authorizations must stay valid at least 10m"
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn auth_ttls_parse() {
        assert_eq!(parse_auth_ttl("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_auth_ttl("12h"), Ok(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_auth_ttl("600"), Ok(Duration::from_secs(600)));
        assert!(parse_auth_ttl("5m").is_err());
        assert!(parse_auth_ttl("d").is_err());
        assert!(parse_auth_ttl("forever").is_err());
    }

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
