//! `obol buy request NAME`: probe the seller, check price, caps and balance, pre-sign a pool of
//! authorizations, apply the PurchaseRequest and wait until the sidecar reports it Ready.
//! Every check runs before anything is signed; nothing prints a signature.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{Hinted, WithHint, wallet::open_wallet};
use crate::buyer::SpendingPolicy;
use crate::buyer::purchase::{self, Caps, Offer, PoolView, PurchaseError, Readiness, unix_now};
use crate::buyer::sidecar::upstream::normalize_model;
use crate::cli::{BuyRequestArgs, OutputFormat};
use crate::k8s::types::PurchaseRequest;
use crate::k8s::{K8sError, KubeClient, apply};
use crate::offers::resolve::valid_name;
use crate::x402::amount;
use crate::x402::networks::Registry;

/// How often an apply is tried when the PurchaseRequest changes in between.
const APPLY_ATTEMPTS: u32 = 3;
/// How often the PurchaseRequest is read while waiting.
const POLL: Duration = Duration::from_millis(300);

fn purchase_error(e: PurchaseError) -> anyhow::Error {
    Hinted::error(e.to_string(), e.hint())
}

fn kube_error(e: K8sError) -> anyhow::Error {
    Hinted::error(e.to_string(), e.hint())
}

/// Progress on stderr: on a terminal one line that is a spinner for the steps and a bar while
/// signing; plain lines otherwise.
struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    fn new() -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(100));
        Progress(Some(bar))
    }

    fn tty(&self) -> bool {
        self.0.is_some()
    }

    /// A step: the spinner's message, or a line.
    fn step(&self, msg: String) {
        match &self.0 {
            Some(bar) => bar.set_message(msg),
            None => eprintln!("{msg}"),
        }
    }

    /// Turns the line into a bar of `count` signatures (when there are enough to watch).
    fn start_signing(&self, count: u64) {
        self.step(format!("signing {}", authorizations(count)));
        if let Some(bar) = &self.0
            && count >= 50
            && let Ok(style) = indicatif::ProgressStyle::with_template(
                "signing {bar:30} {pos}/{len} authorizations ({per_sec})",
            )
        {
            bar.set_style(style);
            bar.set_length(count);
            bar.set_position(0);
        }
    }

    /// `n` signed so far.
    fn signed(&self, n: u64) {
        if let Some(bar) = &self.0
            && (n.is_multiple_of(16) || Some(n) == bar.length())
        {
            bar.set_position(n);
        }
    }

    /// Back to a spinner.
    fn end_signing(&self) {
        if let Some(bar) = &self.0 {
            bar.set_style(indicatif::ProgressStyle::default_spinner());
        }
    }

    fn done(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

pub(super) async fn run(args: BuyRequestArgs) -> anyhow::Result<()> {
    if !valid_name(&args.name) {
        return Err(Hinted::error(
            format!("{:?} is not a valid PurchaseRequest name", args.name),
            "use lowercase letters, digits and '-', at most 63 characters, e.g. `qwen-1`",
        ));
    }
    let endpoint = purchase::chat_endpoint(&args.endpoint).map_err(purchase_error)?;
    if !args.auto_refill {
        let given: Vec<&str> = [
            (args.refill_threshold.is_some(), "--refill-threshold"),
            (args.refill_count.is_some(), "--refill-count"),
        ]
        .into_iter()
        .filter_map(|(set, flag)| set.then_some(flag))
        .collect();
        if !given.is_empty() {
            return Err(Hinted::error(
                format!(
                    "{} only {} with --auto-refill",
                    given.join(" and "),
                    if given.len() == 1 { "applies" } else { "apply" }
                ),
                "add --auto-refill, or drop them (--max-total and --max-spend-per-day work \
                 without it); nothing was signed",
            ));
        }
    }
    if let Some(max_total) = args.max_total
        && max_total < args.count
    {
        return Err(purchase_error(PurchaseError::MaxTotalBelowCount {
            max_total,
            count: args.count,
        }));
    }
    let caps = Caps {
        auto_refill: args.auto_refill,
        refill_threshold: args.refill_threshold,
        refill_count: args.refill_count,
        max_total: args.max_total,
        max_spend_per_day: args.max_spend_per_day.clone(),
    };
    let registry = Registry::load().with_hint(
        "fix or remove the networks file (OBOL_NETWORKS or $XDG_CONFIG_HOME/obol/networks.yaml)",
    )?;

    // The cluster first: an unreachable one fails before the seller is even asked.
    let client = KubeClient::new(&args.cluster.client_options())
        .await
        .map_err(kube_error)?;
    let ns = client.namespace().to_owned();
    let api = client.purchase_requests(None);
    let progress = Progress::new();
    progress.step(format!(
        "reading the PurchaseRequests of namespace {ns} from {}",
        client.server()
    ));
    let all = api.list(&Default::default()).await.map_err(|e| {
        progress.done();
        kube_error(client.error(format!("listing PurchaseRequests in namespace {ns}"), e))
    })?;
    let mut existing = None;
    for pr in all.items {
        let name = pr.metadata.name.clone().unwrap_or_default();
        if name == args.name {
            existing = Some(pr);
        } else if normalize_model(&pr.spec.model) == normalize_model(&args.model) {
            progress.done();
            return Err(Hinted::error(
                format!(
                    "PurchaseRequest {ns}/{name} already buys model {} (the sidecar serves it as \
                     paid/{}); a second pool for it would never be spent",
                    pr.spec.model,
                    normalize_model(&pr.spec.model)
                ),
                format!(
                    "top that pool up with `obol buy request {name} ...`, or delete it first \
                     (`kubectl delete purchaserequest {name} -n {ns}`); nothing was signed"
                ),
            ));
        }
    }

    progress.step(format!("asking {endpoint} for its price"));
    let checked = check(
        &args,
        &caps,
        &registry,
        &endpoint,
        existing.as_ref(),
        &progress,
    )
    .await;
    let Checked {
        offer,
        wallet,
        auto_refill,
        kept,
    } = match checked {
        Ok(c) => c,
        Err(e) => {
            progress.done();
            return Err(e);
        }
    };
    let now = unix_now();
    let valid_before = now.saturating_add(args.auth_ttl.as_secs());
    let purchase_request = |pool| {
        purchase::purchase_request(
            &args.name,
            &ns,
            endpoint.as_str(),
            &args.model,
            offer.payment(),
            pool,
            auto_refill.clone(),
        )
    };
    if args.dry_run {
        progress.done();
        let pr = purchase_request(Vec::new());
        return print_dry_run(pr, &args, &offer, wallet.address(), kept, valid_before);
    }

    // Sign.
    let started = Instant::now();
    progress.start_signing(args.count);
    let new = purchase::presign(&wallet, &offer, args.count, valid_before, &|n| {
        progress.signed(n)
    })
    .await;
    progress.end_signing();
    let new = new.map_err(|e| {
        progress.done();
        purchase_error(e)
    })?;
    let signing = started.elapsed();
    if !progress.tty() {
        eprintln!(
            "signed {} in {} ms",
            authorizations(args.count),
            signing.as_millis()
        );
    }

    // Apply. A top-up applies on the version it read (resourceVersion precondition): when the
    // sidecar wrote to it meanwhile (status, a refill), it is read again and merged again.
    progress.step(format!("applying PurchaseRequest {ns}/{}", args.name));
    let mut base = existing.filter(|_| !args.replace);
    let mut attempt = 0;
    let (applied, kept) = loop {
        attempt += 1;
        let base_auths = base
            .as_ref()
            .map(|pr| pr.spec.pre_signed_auths.as_slice())
            .unwrap_or_default();
        let (pool, kept) = purchase::merge_pool(base_auths, new.clone(), now);
        let mut pr = purchase_request(pool);
        pr.metadata.resource_version = base
            .as_ref()
            .and_then(|b| b.metadata.resource_version.clone());
        match apply::apply(&api, &pr).await {
            Ok(applied) => break (applied, kept),
            Err(kube::Error::Api(status)) if status.code == 409 && attempt < APPLY_ATTEMPTS => {
                tracing::debug!(
                    "PurchaseRequest {ns}/{} changed meanwhile; merging again",
                    args.name
                );
            }
            Err(e) => {
                progress.done();
                return Err(kube_error(
                    client.error(format!("applying PurchaseRequest {ns}/{}", args.name), e),
                ));
            }
        }
        base = api.get_opt(&args.name).await.map_err(|e| {
            progress.done();
            kube_error(client.error(format!("reading PurchaseRequest {ns}/{}", args.name), e))
        })?;
        if let Some(current) = &base {
            let payment = offer.payment();
            let recheck = if purchase::same_terms(&current.spec.payment, &payment, &registry) {
                purchase::kept_count(&current.spec.pre_signed_auths, args.count, now).map(|_| ())
            } else {
                Err(PurchaseError::TermsChanged {
                    name: args.name.clone(),
                    existing: purchase::describe_terms(&current.spec.payment),
                    new: purchase::describe_terms(&payment),
                })
            };
            if let Err(e) = recheck {
                progress.done();
                return Err(purchase_error(e));
            }
        }
    };
    let generation = applied.metadata.generation.unwrap_or(0);
    let summary = Summary {
        signer: wallet.address().to_string(),
        signed: args.count,
        kept,
        valid_before,
        generation,
        waited: !args.no_wait,
        dry_run: false,
    };
    if args.no_wait {
        progress.done();
        return print_result(&args.output, &applied, &summary, false);
    }

    // Wait for the sidecar.
    let deadline = Instant::now() + args.wait_timeout;
    let mut last = String::new();
    let mut current = applied;
    loop {
        let state = purchase::readiness(&current);
        let line = match &state {
            Readiness::Ready => break,
            Readiness::NotReady { reason, message } => {
                progress.done();
                return Err(not_ready(&ns, &args.name, reason, message));
            }
            Readiness::Pending { observed } => format!(
                "waiting for the buyer sidecar to load generation {generation} of {ns}/{} ({})",
                args.name,
                match observed {
                    Some(g) => format!("it reported generation {g}"),
                    None => "no status yet".to_owned(),
                }
            ),
        };
        if line != last {
            progress.step(line.clone());
            last = line;
        }
        if Instant::now() >= deadline {
            progress.done();
            return Err(Hinted::error(
                format!(
                    "the buyer sidecar did not report PurchaseRequest {ns}/{} Ready within {}s",
                    args.name,
                    args.wait_timeout.as_secs()
                ),
                format!(
                    "the PurchaseRequest is applied and its authorizations are in it; is the \
                     sidecar running with `obol serve buyer --source kube` in namespace {ns}? \
                     Check with `obol buy list -n {ns}`, or skip waiting with --no-wait"
                ),
            ));
        }
        tokio::time::sleep(POLL).await;
        current = match api.get_opt(&args.name).await {
            Ok(Some(pr)) => pr,
            Ok(None) => {
                progress.done();
                return Err(Hinted::error(
                    format!(
                        "PurchaseRequest {ns}/{} was deleted while waiting for it",
                        args.name
                    ),
                    "run `obol buy request` again",
                ));
            }
            Err(e) => {
                // A transient error: keep waiting until the deadline.
                tracing::debug!("reading PurchaseRequest {ns}/{}: {e}", args.name);
                continue;
            }
        };
    }
    progress.done();
    print_result(&args.output, &current, &summary, true)
}

/// "1 authorization", "5 authorizations".
fn authorizations(n: u64) -> String {
    if n == 1 {
        "1 authorization".to_owned()
    } else {
        format!("{n} authorizations")
    }
}

/// What the checks produced.
struct Checked {
    offer: Offer,
    wallet: crate::buyer::Wallet,
    auto_refill: Option<crate::k8s::types::PurchaseAutoRefill>,
    kept: usize,
}

/// Probe, policy, terms of an existing pool, caps, wallet and balance: everything that must
/// hold before signing.
async fn check(
    args: &BuyRequestArgs,
    caps: &Caps,
    registry: &Registry,
    endpoint: &reqwest::Url,
    existing: Option<&PurchaseRequest>,
    progress: &Progress,
) -> anyhow::Result<Checked> {
    // The pool's window is --auth-ttl, never the 402's maxTimeoutSeconds.
    let policy = SpendingPolicy {
        max_amount: args.max_amount.clone(),
        network: args.network.clone(),
        max_timeout: None,
    };
    let offer = purchase::probe_offer(endpoint, &args.model, &policy, registry)
        .await
        .map_err(purchase_error)?;
    let payment = offer.payment();
    let now = unix_now();
    let (kept, unspent_kept) = match existing {
        Some(pr) if !args.replace => {
            if !purchase::same_terms(&pr.spec.payment, &payment, registry) {
                return Err(purchase_error(PurchaseError::TermsChanged {
                    name: args.name.clone(),
                    existing: purchase::describe_terms(&pr.spec.payment),
                    new: purchase::describe_terms(&payment),
                }));
            }
            let kept = purchase::kept_count(&pr.spec.pre_signed_auths, args.count, now)
                .map_err(purchase_error)?;
            let remaining = pr
                .status
                .as_ref()
                .and_then(|s| s.remaining)
                .and_then(|r| usize::try_from(r).ok())
                .unwrap_or(kept);
            (kept, remaining.min(kept))
        }
        _ => (0, 0),
    };
    let auto_refill = if caps.any() {
        Some(
            caps.to_auto_refill(&offer, args.count)
                .map_err(purchase_error)?,
        )
    } else {
        // A top-up without cap flags keeps the caps the pool has.
        existing
            .filter(|_| !args.replace)
            .and_then(|pr| pr.spec.auto_refill.clone())
    };
    let wallet = open_wallet(&args.wallet).await?;
    if !args.force {
        let c = &offer.choice;
        progress.step(format!(
            "checking the {} balance of {} on {}",
            c.asset.symbol,
            wallet.address(),
            c.network.name
        ));
        let balance = purchase::token_balance(
            &c.network,
            c.asset.address,
            &c.asset.symbol,
            wallet.address(),
        )
        .await
        .map_err(purchase_error)?;
        let covered = args.count + u64::try_from(unspent_kept).unwrap_or(u64::MAX);
        purchase::check_balance(&offer, wallet.address(), balance, covered)
            .map_err(purchase_error)?;
    }
    Ok(Checked {
        offer,
        wallet,
        auto_refill,
        kept,
    })
}

fn not_ready(ns: &str, name: &str, reason: &str, message: &str) -> anyhow::Error {
    use crate::buyer::sidecar::kube_source::reason as r;
    let what = match reason {
        r::BUDGET_EXHAUSTED => format!(
            "raise the caps on a top-up (`obol buy request {name} ... --max-total X \
             --max-spend-per-day USDC` replaces them), or wait for the next UTC day"
        ),
        r::PRICING_MISMATCH => format!(
            "the seller's terms changed: buy a new pool with `obol buy request {name} ... --replace`"
        ),
        r::NO_AUTHS | r::EXHAUSTED => format!("top the pool up with `obol buy request {name} ...`"),
        r::PROBE_FAILED => "check that the sidecar can reach the seller's endpoint".to_owned(),
        _ => format!("fix the cause and run `obol buy request {name}` again"),
    };
    let reason = if reason.is_empty() {
        "no reason"
    } else {
        reason
    };
    Hinted::error(
        format!(
            "the buyer sidecar reports PurchaseRequest {ns}/{name} not Ready: {reason}: {message}"
        ),
        format!(
            "{what}; the PurchaseRequest is applied and its authorizations are kept \
             (`obol buy list -n {ns}` shows it)"
        ),
    )
}

/// What this run did, printed with the pool.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Summary {
    signer: String,
    /// New authorizations signed.
    signed: u64,
    /// Authorizations kept from the existing pool.
    kept: usize,
    /// `validBefore` of the new authorizations (Unix seconds).
    valid_before: u64,
    generation: i64,
    waited: bool,
    dry_run: bool,
}

fn rfc3339(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| secs.to_string())
}

fn caps_text(v: &PoolView) -> String {
    let mut parts = Vec::new();
    if let Some(t) = v.max_total {
        parts.push(format!("at most {t} payments in total"));
    }
    if let Some(d) = &v.max_spend_per_day {
        parts.push(format!("at most {d} {} per UTC day", v.symbol));
    }
    if v.auto_refill {
        parts.push("auto-refill on".to_owned());
    }
    if parts.is_empty() {
        "none (the pool size is the cap)".to_owned()
    } else {
        parts.join(", ")
    }
}

fn print_result(
    output: &OutputFormat,
    pr: &PurchaseRequest,
    summary: &Summary,
    ready: bool,
) -> anyhow::Result<()> {
    let view = PoolView::of(pr);
    match output {
        OutputFormat::Json => {
            #[derive(Serialize)]
            struct Out<'a> {
                #[serde(flatten)]
                pool: &'a PoolView,
                #[serde(flatten)]
                summary: &'a Summary,
            }
            let out = Out {
                pool: &view,
                summary,
            };
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        OutputFormat::Table => {
            if ready {
                println!(
                    "PurchaseRequest {}/{} is Ready: use model {}",
                    view.namespace, view.name, view.public_model
                );
            } else {
                println!(
                    "applied PurchaseRequest {}/{} (generation {}); not waiting for the sidecar, \
                     which will serve it as {}",
                    view.namespace, view.name, summary.generation, view.public_model
                );
            }
            println!("  endpoint  {}", view.endpoint);
            println!(
                "  price     {} {} per request ({} atomic) on {}",
                view.price, view.symbol, view.price_atomic, view.network
            );
            let pool = match (view.remaining, view.spent) {
                (Some(r), Some(s)) if ready => format!("{r} remaining, {s} spent"),
                _ => format!("{} authorizations", view.count),
            };
            println!(
                "  pool      {pool} (signed {} new, kept {}; new ones valid until {})",
                summary.signed,
                summary.kept,
                rfc3339(summary.valid_before)
            );
            println!("  signer    {}", summary.signer);
            println!("  caps      {}", caps_text(&view));
        }
    }
    Ok(())
}

fn print_dry_run(
    pr: PurchaseRequest,
    args: &BuyRequestArgs,
    offer: &Offer,
    signer: alloy_primitives::Address,
    kept: usize,
    valid_before: u64,
) -> anyhow::Result<()> {
    let mut pr = pr;
    let total = u64::try_from(kept).unwrap_or(0) + args.count;
    pr.spec.count = i64::try_from(total).unwrap_or(i64::MAX);
    match args.output {
        OutputFormat::Json => {
            let out = serde_json::json!({
                "dryRun": true,
                "purchaseRequest": pr,
                "wouldSign": args.count,
                "kept": kept,
                "signer": signer.to_string(),
                "validBefore": valid_before,
                "cost": amount::format_atomic(offer.cost(args.count), offer.choice.asset.decimals),
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        OutputFormat::Table => {
            println!("# obol buy request --dry-run: nothing was signed or applied.");
            println!(
                "# spec.preSignedAuths would hold {} new EIP-3009 authorizations of {} {} each \
                 from {signer} (valid until {}){}.",
                args.count,
                offer.price_decimal(),
                offer.choice.asset.symbol,
                rfc3339(valid_before),
                if kept > 0 {
                    format!(" after the {kept} kept from the existing pool")
                } else {
                    String::new()
                }
            );
            print!("{}", serde_yaml_ng::to_string(&pr)?);
        }
    }
    Ok(())
}
