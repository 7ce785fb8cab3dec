//! `obol serve buyer`: the paying sidecar.

use std::sync::Arc;

use crate::buyer::sidecar::{
    Clock, FileSource, KubeSource, KubeSourceConfig, PoolSource, Sidecar, SidecarConfig,
    SystemClock,
};
use crate::buyer::wallet::Wallet;
use crate::cli::{BuyerSource, ServeBuyerArgs};
use crate::k8s::{ClientOptions, KubeClient};
use crate::x402::amount::{self, Rounding};
use crate::x402::networks::Registry;

use super::{Hinted, WithHint as _};

pub async fn run(args: ServeBuyerArgs) -> anyhow::Result<()> {
    let registry = Registry::load().with_hint(
        "fix or remove the networks file (OBOL_NETWORKS or $XDG_CONFIG_HOME/obol/networks.yaml)",
    )?;
    if amount::parse_decimal(&args.max_amount, 6, Rounding::Exact).is_err() {
        return Err(Hinted::error(
            format!("--max-amount {:?} is not an amount", args.max_amount),
            "give a decimal in USDC, e.g. 0.10",
        ));
    }
    let signer = live_signer(&args).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut sources: Vec<Arc<dyn PoolSource>> = Vec::new();
    if matches!(args.source, BuyerSource::Files | BuyerSource::Both) {
        let base = crate::paths::config_dir().join("buyer");
        sources.push(Arc::new(FileSource {
            config_dir: args
                .config_dir
                .clone()
                .unwrap_or_else(|| base.join("config")),
            auths_dir: args.auths_dir.clone().unwrap_or_else(|| base.join("auths")),
        }));
    }
    if matches!(args.source, BuyerSource::Kube | BuyerSource::Both) {
        let source = kube_source(&args, &registry, signer.clone(), Arc::clone(&clock)).await?;
        sources.push(Arc::new(source));
    }
    let config = SidecarConfig {
        listen: args.listen,
        state_path: args
            .state
            .unwrap_or_else(|| crate::paths::state_dir().join("buyer-state.json")),
        reload_interval: args.reload_interval,
        registry,
        signer,
        max_amount: args.max_amount,
        sources,
        clock,
        max_timeout: args.max_timeout,
        admin_token: admin_token(args.admin_token_file.as_deref())?,
    };
    let sidecar = Sidecar::new(config).await.with_hint(
        "the state file must be readable JSON; move a broken one aside only if you know no authorization in it was spent",
    )?;
    sidecar.serve(super::shutdown_signal()).await.with_hint(
        "check --listen (e.g. :8402 or 127.0.0.1:8402); is another process using the port?",
    )
}

/// The token of `--admin-token-file` (trimmed), if given; an empty or unreadable file is an
/// error, never "no token".
fn admin_token(path: Option<&std::path::Path>) -> anyhow::Result<Option<String>> {
    let Some(path) = path else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        Hinted::error(
            format!("--admin-token-file {}: {e}", path.display()),
            "give a readable file holding the token (one line)",
        )
    })?;
    let token = text.trim();
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Hinted::error(
            format!(
                "--admin-token-file {}: the file holds no usable token",
                path.display()
            ),
            "write one line of visible ASCII characters (e.g. `openssl rand -hex 32`)",
        ));
    }
    Ok(Some(token.to_owned()))
}

/// The PurchaseRequest source. A cluster that cannot be reached is not fatal: the watch
/// retries, the other sources are served meanwhile.
async fn kube_source(
    args: &ServeBuyerArgs,
    registry: &Registry,
    signer: Option<Arc<Wallet>>,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<KubeSource> {
    let opts = ClientOptions {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
        namespace: args.namespace.clone().filter(|n| !n.trim().is_empty()),
    };
    let client = KubeClient::new(&opts)
        .await
        .map_err(|e| Hinted::error(format!("--source kube: {e}"), e.hint()))?;
    let namespace = client.namespace().to_owned();
    tracing::info!(
        "watching the PurchaseRequests of namespace {namespace} on {} ({})",
        client.server(),
        client.source()
    );
    Ok(KubeSource::start(KubeSourceConfig {
        client,
        namespace,
        registry: registry.clone(),
        max_amount: args.max_amount.clone(),
        signer,
        clock,
        watch_timeout: Some(args.kube_watch_timeout),
    }))
}

/// The wallet for live signing, when one is configured explicitly (a daemon never waits on
/// a desktop keyring).
async fn live_signer(args: &ServeBuyerArgs) -> anyhow::Result<Option<Arc<Wallet>>> {
    let env_key = std::env::var("OBOL_PRIVATE_KEY").is_ok_and(|k| !k.trim().is_empty());
    if args.wallet.private_key_file.is_none() && args.wallet.signer_url.is_none() && !env_key {
        return Ok(None);
    }
    let wallet = super::wallet::open_wallet(&args.wallet).await?;
    Ok(Some(Arc::new(wallet)))
}
