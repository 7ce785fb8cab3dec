//! `obol sell create|list|delete|pause|resume`, on the local offers file or on a cluster's
//! ServiceOffers (which one: [`select`], documented in `obol sell --help`).

use std::path::PathBuf;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use super::{Hinted, WithHint as _};
use crate::cli::{
    OffersFileArgs, OutputFormat, SellCommand, SellCreateArgs, SellListArgs, SellNameArgs,
    SellTargetArgs,
};
use crate::k8s::{KubeClient, active_context};
use crate::offers::cluster::{
    self, ClusterOfferError, ClusterOfferSpec, ClusterOfferView, ClusterStore,
};
use crate::offers::{self, Created, OfferError, OfferSpec, OfferStore, OfferView};
use crate::x402::networks::Registry;

pub async fn run(cmd: SellCommand) -> anyhow::Result<()> {
    match cmd {
        SellCommand::Create(args) => match select(&args.target).await? {
            Target::File(store) => create(&store, *args),
            Target::Cluster(store) => cluster_create(&store, *args).await,
        },
        SellCommand::List(args) => match select(&args.target).await? {
            Target::File(store) => list(&store, args),
            Target::Cluster(store) => cluster_list(&store, args).await,
        },
        SellCommand::Delete(args) => match select(&args.target).await? {
            Target::File(store) => {
                store.delete(&args.name).map_err(|e| explain(e, &store))?;
                println!(
                    "deleted offer {} from {}",
                    args.name,
                    store.path().display()
                );
                Ok(())
            }
            Target::Cluster(store) => cluster_delete(&store, &args).await,
        },
        SellCommand::Pause(args) => pause(args, true).await,
        SellCommand::Resume(args) => pause(args, false).await,
    }
}

/// Where the offers are.
enum Target {
    File(OfferStore),
    Cluster(Box<ClusterStore>),
}

fn registry() -> anyhow::Result<Registry> {
    Registry::load().with_hint(
        "fix or remove the networks file (OBOL_NETWORKS or $XDG_CONFIG_HOME/obol/networks.yaml)",
    )
}

/// The cluster when `--kube` is given, or when a kubeconfig context is active (or named with
/// --kubeconfig/--context) and no offers file is named; otherwise the offers file.
async fn select(t: &SellTargetArgs) -> anyhow::Result<Target> {
    let registry = registry()?;
    let opts = t.cluster.client_options();
    let cluster = if t.kube {
        true
    } else if t.file.offers_file.is_some() {
        false
    } else if opts.kubeconfig.is_some() || opts.context.is_some() {
        true
    } else {
        match active_context(&opts) {
            Ok(ctx) => ctx.is_some(),
            Err(e) => {
                return Err(Hinted::error(
                    format!("cannot tell whether a cluster is selected: {e}"),
                    format!(
                        "{}; or work on the local offers file with --offers-file FILE",
                        e.hint()
                    ),
                ));
            }
        }
    };
    if !cluster {
        return Ok(Target::File(OfferStore::new(file_of(&t.file), registry)));
    }
    let client = KubeClient::new(&opts)
        .await
        .map_err(|e| Hinted::error(e.to_string(), e.hint()))?;
    tracing::debug!(
        "sell: cluster {} ({}), namespace {}",
        client.server(),
        client.source(),
        client.namespace()
    );
    Ok(Target::Cluster(Box::new(ClusterStore::new(
        client, registry,
    ))))
}

fn file_of(args: &OffersFileArgs) -> PathBuf {
    args.offers_file
        .clone()
        .unwrap_or_else(offers::default_file)
}

/// Adds the hint that fits each failure.
fn explain(e: OfferError, store: &OfferStore) -> anyhow::Error {
    let path = store.path().display().to_string();
    let hint = match &e {
        OfferError::File(offers::FileError::Parse { .. }) => {
            format!("fix the YAML in {path} (or move it away to start fresh)")
        }
        OfferError::File(_) => format!("check that {path} and its directory are writable"),
        OfferError::Invalid(_) => {
            "nothing was written; fix the values above (price needs at most the asset's decimals, \
             payTo a 0x address, chain a known network: see networks.yaml)"
                .to_string()
        }
        OfferError::BadName(_) => "use e.g. `my-llm-1`".to_string(),
        OfferError::BadPath(_) => "use e.g. --path /services/my-offer".to_string(),
        OfferError::NotFound(_) => "see the offers with `obol sell list`".to_string(),
        OfferError::PathTaken { .. } => {
            "choose another --path, or delete the other offer first".to_string()
        }
        OfferError::NoPayTo => {
            format!("pass --pay-to 0xYourAddress, or set `wallet: 0x...` in {path}")
        }
    };
    Hinted::error(e.to_string(), hint)
}

/// `--route` values (`None`: keep the offer's routes), or a clear error with an example.
fn routes_of(args: &SellCreateArgs) -> anyhow::Result<Option<Vec<offers::RouteEntry>>> {
    if args.no_routes {
        return Ok(Some(Vec::new()));
    }
    if args.routes.is_empty() {
        return Ok(None);
    }
    offers::declared::parse_route_flags(&args.routes)
        .map(Some)
        .map_err(|e| {
            Hinted::error(
                e,
                format!(
                    "nothing was written; declare routes like {}",
                    offers::declared::ROUTE_FLAG_EXAMPLE
                ),
            )
        })
}

fn create(store: &OfferStore, args: SellCreateArgs) -> anyhow::Result<()> {
    if args.gate.is_some() {
        return Err(Hinted::error(
            "--gate is for offers on a cluster",
            "on a laptop the verifier's --mode chooses the gate: `obol serve verifier --mode proxy` \
             settles after the upstream succeeded",
        ));
    }
    let routes = routes_of(&args)?;
    let spec = OfferSpec {
        name: args.name.clone(),
        upstream: args.upstream,
        price: args.price,
        chain: args.chain,
        pay_to: args.pay_to,
        path: args.path,
        description: args.description,
        upstream_auth: args.upstream_auth,
        max_timeout_seconds: args.max_timeout_seconds,
        routes,
    };
    let (what, view) = store.create(&spec).map_err(|e| explain(e, store))?;
    match args.output {
        OutputFormat::Json => {
            let out = serde_json::json!({
                "result": what,
                "file": store.path(),
                "offer": view,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        OutputFormat::Table => {
            println!(
                "{} offer {}: {}/* -> {} for {} {} on {} ({}), paid to {}{}",
                verb(what),
                view.name,
                view.path,
                view.upstream.as_deref().unwrap_or("-"),
                view.price,
                view.asset_symbol,
                view.chain,
                view.network,
                view.pay_to,
                if view.paused { " [paused]" } else { "" },
            );
            print_routes(&view.path, &view.routes, &view.asset_symbol);
            println!("wrote {}", store.path().display());
            println!(
                "serve it with: obol serve verifier --offers-file {}",
                store.path().display()
            );
        }
    }
    Ok(())
}

/// The declared routes under an offer, most specific first, and what the rest gets.
fn print_routes(path: &str, routes: &[offers::declared::RouteView], symbol: &str) {
    if routes.is_empty() {
        return;
    }
    let path = path.trim_end_matches('/');
    for r in routes {
        let what = match &r.price {
            Some(p) => format!("{p} {symbol}"),
            None => "free".to_string(),
        };
        let methods = if r.methods.is_empty() {
            String::new()
        } else {
            format!(" [{}]", r.methods.join("|"))
        };
        println!("  route {path}{}{methods}: {what}", r.path);
    }
    if !routes.iter().any(|r| r.path == "/*") {
        println!("  every other path under {path}/ is refused (404): it is not declared");
    }
}

fn verb(what: Created) -> &'static str {
    match what {
        Created::Created => "created",
        Created::Updated => "updated",
    }
}

fn list(store: &OfferStore, args: SellListArgs) -> anyhow::Result<()> {
    let offers = store.list().map_err(|e| explain(e, store))?;
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&offers)?),
        OutputFormat::Table => {
            if offers.is_empty() {
                println!(
                    "no offers in {} (create one with `obol sell create NAME --upstream URL --price USDC`)",
                    store.path().display()
                );
            } else {
                println!("{}", table(&offers));
            }
        }
    }
    Ok(())
}

fn table(offers: &[OfferView]) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED);
    t.set_header([
        "NAME", "PATH", "PRICE", "CHAIN", "PAY TO", "UPSTREAM", "ROUTES", "PAUSED",
    ]);
    for o in offers {
        t.add_row([
            if o.name.is_empty() {
                "-".to_string()
            } else {
                o.name.clone()
            },
            o.path.clone(),
            format!("{} {}", o.price, o.asset_symbol),
            o.chain.clone(),
            o.pay_to.clone(),
            o.upstream.clone().unwrap_or_else(|| "-".into()),
            routes_count(o.routes.len()),
            if o.paused { "yes" } else { "no" }.to_string(),
        ]);
    }
    t
}

/// The ROUTES column: how many routes an offer declares, `-` for none (all of it is paid).
fn routes_count(n: usize) -> String {
    if n == 0 { "-".into() } else { n.to_string() }
}

async fn pause(args: SellNameArgs, paused: bool) -> anyhow::Result<()> {
    let (done, already) = if paused {
        ("paused", "already paused:")
    } else {
        ("resumed", "not paused:")
    };
    match select(&args.target).await? {
        Target::File(store) => {
            let changed = store
                .set_paused(&args.name, paused)
                .map_err(|e| explain(e, &store))?;
            println!(
                "{} offer {} in {}",
                if changed { done } else { already },
                args.name,
                store.path().display()
            );
        }
        Target::Cluster(store) => {
            let changed = store
                .set_paused(&args.name, paused)
                .await
                .map_err(|e| explain_cluster(e, &store))?;
            println!(
                "{} offer {} in namespace {}{}",
                if changed { done } else { already },
                args.name,
                store.namespace(),
                match (changed, paused) {
                    (true, true) =>
                        " (annotation obol.org/paused=true: the verifier answers its path with 404 offer_paused)",
                    (true, false) => " (the verifier charges for it again)",
                    _ => "",
                }
            );
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// cluster

fn explain_cluster(e: ClusterOfferError, store: &ClusterStore) -> anyhow::Error {
    let ns = store.namespace().to_string();
    let hint = match &e {
        ClusterOfferError::BadName(_) => "use e.g. `my-llm-1`".to_string(),
        ClusterOfferError::BadUpstream(_) => {
            "on a cluster --upstream names a Service: SERVICE[.NAMESPACE]:PORT, e.g. \
             ollama.llm:11434 (to sell a URL from this machine, use --offers-file)"
                .to_string()
        }
        ClusterOfferError::BadPath(_) => "use e.g. --path /services/my-offer".to_string(),
        ClusterOfferError::Invalid(_) => {
            "nothing was sent to the cluster; fix the values above (price needs at most the \
             asset's decimals, payTo a 0x address, chain a known network: see networks.yaml)"
                .to_string()
        }
        ClusterOfferError::Kube(k) => k.hint(),
        ClusterOfferError::NotFound { .. } => {
            format!("see the offers with `obol sell list -n {ns}` (or -A for every namespace)")
        }
        ClusterOfferError::Children {
            name,
            child,
            source,
            ..
        } => {
            let cause = if source.is_not_found() {
                let kind = child.split('/').next().unwrap_or("");
                let from = if kind == "Middleware" {
                    "Traefik's CRDs (traefik.io)"
                } else {
                    "the Gateway API CRDs (gateway.networking.k8s.io)"
                };
                format!("the cluster does not serve {kind}: install {from}")
            } else {
                source.hint()
            };
            format!(
                "{cause}; the ServiceOffer exists: fix the cause and run `obol sell create {name}` \
                 again, or remove it with `obol sell delete {name}`"
            )
        }
    };
    Hinted::error(e.to_string(), hint)
}

async fn cluster_create(store: &ClusterStore, args: SellCreateArgs) -> anyhow::Result<()> {
    if args.upstream_auth.is_some() {
        return Err(Hinted::error(
            "--upstream-auth (OBOL_UPSTREAM_AUTH) is not supported on a cluster",
            "give the upstream Service its own credentials, or sell from a local offers file \
             with --offers-file (unset OBOL_UPSTREAM_AUTH if it comes from the environment)",
        ));
    }
    let routes = routes_of(&args)?;
    let spec = ClusterOfferSpec {
        name: args.name.clone(),
        upstream: args.upstream,
        price: args.price,
        chain: args.chain,
        pay_to: args.pay_to,
        path: args.path,
        description: args.description,
        max_timeout_seconds: args.max_timeout_seconds,
        routes,
        gate: args.gate,
    };
    let out = store
        .create(&spec)
        .await
        .map_err(|e| explain_cluster(e, store))?;
    for w in &out.warnings {
        eprintln!("warning: {w}");
    }
    let client = store.client();
    let v = &out.view;
    match args.output {
        OutputFormat::Json => {
            let json = serde_json::json!({
                "result": out.created,
                "cluster": {
                    "server": client.server(),
                    "source": client.source().to_string(),
                    "namespace": client.namespace(),
                },
                "offer": v,
                "children": out.children,
                "warnings": out.warnings,
            });
            println!("{}", serde_json::to_string_pretty(&json)?);
        }
        OutputFormat::Table => {
            println!(
                "{} offer {} in namespace {}: {} -> {} for {} on {}, paid to {}{}",
                verb(out.created),
                v.name,
                v.namespace,
                v.pattern,
                v.upstream.as_deref().unwrap_or("-"),
                price_text(v),
                chain_text(v),
                if v.pay_to.is_empty() {
                    "the verifier's wallet"
                } else {
                    &v.pay_to
                },
                if v.paused { " [paused]" } else { "" },
            );
            print_routes(&v.path, &v.routes, &v.asset_symbol);
            println!(
                "applied ServiceOffer {}/{} and {} on {} ({})",
                v.namespace,
                v.name,
                out.children.join(", "),
                client.server(),
                client.source()
            );
            println!(
                "served by `obol serve verifier --route-source kube` (deployed by `obol manifests`)"
            );
        }
    }
    Ok(())
}

fn price_text(v: &ClusterOfferView) -> String {
    if v.price.is_empty() {
        return "-".into();
    }
    match (v.price_model.as_deref(), v.price_written.as_deref()) {
        (Some("perMTok"), Some(w)) => format!("{} {} ({w}/MTok)", v.price, v.asset_symbol),
        (Some("perHour"), Some(w)) => format!("{} {} ({w}/hour)", v.price, v.asset_symbol),
        _ => format!("{} {}", v.price, v.asset_symbol),
    }
}

fn chain_text(v: &ClusterOfferView) -> String {
    if v.chain.is_empty() {
        "the verifier's chain".into()
    } else if v.network.is_empty() || v.network == v.chain {
        v.chain.clone()
    } else {
        format!("{} ({})", v.chain, v.network)
    }
}

async fn cluster_list(store: &ClusterStore, args: SellListArgs) -> anyhow::Result<()> {
    let offers = store
        .list(args.all_namespaces)
        .await
        .map_err(|e| explain_cluster(e, store))?;
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&offers)?),
        OutputFormat::Table => {
            if offers.is_empty() {
                println!(
                    "no ServiceOffers {} (create one with `obol sell create NAME --upstream SERVICE.NAMESPACE:PORT --price USDC`)",
                    if args.all_namespaces {
                        "in any namespace".to_string()
                    } else {
                        format!("in namespace {}", store.namespace())
                    }
                );
                return Ok(());
            }
            let mut t = Table::new();
            t.load_style(UTF8_FULL_CONDENSED);
            t.set_header([
                "NAME",
                "NAMESPACE",
                "PRICE",
                "CHAIN",
                "PATH",
                "ROUTES",
                "PAUSED",
                "READY",
                "AGE",
            ]);
            for o in &offers {
                t.add_row([
                    o.name.clone(),
                    o.namespace.clone(),
                    price_text(o),
                    if o.chain.is_empty() {
                        "(verifier's)".to_string()
                    } else {
                        o.chain.clone()
                    },
                    o.path.clone(),
                    routes_count(o.routes.len()),
                    if o.paused { "yes" } else { "no" }.to_string(),
                    o.ready.clone().unwrap_or_else(|| "-".into()),
                    o.created
                        .as_deref()
                        .map(cluster::age)
                        .unwrap_or_else(|| "-".into()),
                ]);
            }
            println!("{t}");
            for o in offers.iter().filter(|o| o.problem.is_some()) {
                println!(
                    "{}/{} is not served: {}",
                    o.namespace,
                    o.name,
                    o.problem.as_deref().unwrap_or("")
                );
            }
        }
    }
    Ok(())
}

async fn cluster_delete(store: &ClusterStore, args: &SellNameArgs) -> anyhow::Result<()> {
    let warnings = store
        .delete(&args.name)
        .await
        .map_err(|e| explain_cluster(e, store))?;
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    println!(
        "deleted ServiceOffer {}/{} (its Middleware and HTTPRoute go with it); the verifier stops charging for it",
        store.namespace(),
        args.name
    );
    Ok(())
}
