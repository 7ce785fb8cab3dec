//! `obol serve verifier`.

use super::Hinted;
use crate::cli::{RouteSourceArg, ServeCommand, ServeVerifierArgs, VerifierMode};
use crate::k8s::KubeClient;
use crate::offers;
use crate::verifier::kube_source::KubeWatch;
use crate::verifier::routes::SourceKind;
use crate::verifier::store::StoreSpec;
use crate::verifier::{self, Mode, VerifierConfig};
use crate::x402::networks::Registry;

use super::WithHint as _;

pub async fn run(cmd: ServeCommand) -> anyhow::Result<()> {
    let limits = match &cmd {
        ServeCommand::Verifier(args) => &args.limits,
        ServeCommand::Buyer(args) => &args.limits,
    };
    crate::daemon::set_limits(crate::daemon::Limits::new(
        limits.header_timeout,
        limits.idle_timeout,
        limits.max_connections,
        limits.max_in_flight,
        crate::daemon::raise_nofile_limit(),
    ));
    match cmd {
        ServeCommand::Verifier(args) => serve_verifier(args).await,
        ServeCommand::Buyer(args) => super::serve_buyer::run(args).await,
    }
}

async fn serve_verifier(args: ServeVerifierArgs) -> anyhow::Result<()> {
    let registry = Registry::load().with_hint(
        "fix or remove the networks file (OBOL_NETWORKS or $XDG_CONFIG_HOME/obol/networks.yaml)",
    )?;
    let route_source = match args.route_source {
        RouteSourceArg::File => SourceKind::File,
        RouteSourceArg::Kube => SourceKind::Kube,
        RouteSourceArg::Both => SourceKind::Both,
    };
    let kube = if route_source.kube() {
        let client = KubeClient::new(&args.cluster.client_options())
            .await
            .map_err(|e| {
                let hint = e.hint();
                super::Hinted::error(
                    format!("--route-source {}: {e}", route_source.as_str()),
                    hint,
                )
            })?;
        // Not fatal: the watch retries with backoff, and /readyz stays 503 until it lists.
        if let Err(e) = client
            .check_reachable(std::time::Duration::from_secs(5))
            .await
        {
            tracing::warn!("{e} (hint: {}); retrying in the background", e.hint());
        }
        Some(KubeWatch {
            client,
            namespace: args.cluster.namespace.clone().filter(|n| !n.is_empty()),
            watch_timeout: Some(args.kube_watch_timeout),
            write_status: true,
        })
    } else {
        None
    };
    let offers_file = args.file.offers_file.unwrap_or_else(offers::default_file);
    let state = match args.state.as_deref().map(str::trim) {
        Some(s) if !s.is_empty() => StoreSpec::parse(s)
            .with_hint("use a file path, memory, or redis://host:6379/0 (rediss:// for TLS)")?,
        _ => StoreSpec::File(verifier::default_state_file(&offers_file)),
    };
    let config = VerifierConfig {
        listen: args.listen,
        internal_listen: args.internal_listen.filter(|s| !s.trim().is_empty()),
        offers_file,
        facilitator: args.facilitator.filter(|s| !s.trim().is_empty()),
        mode: match args.mode {
            VerifierMode::ForwardAuth => Mode::ForwardAuth,
            VerifierMode::Proxy => Mode::Proxy,
            VerifierMode::Both => Mode::Both,
        },
        verify_only: match (args.verify_only, args.settle_before_grant) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        },
        verify_timeout: args.verify_timeout,
        settle_timeout: args.settle_timeout,
        reload_interval: args.reload_interval,
        registry,
        route_source,
        kube,
        state,
    };
    let hint = match &config.facilitator {
        Some(_) => {
            "check --listen (e.g. :8080 or 127.0.0.1:8080) and --facilitator (https://, or http:// on localhost)"
        }
        None => "check --listen (e.g. :8080 or 127.0.0.1:8080); is another process using the port?",
    };
    match verifier::serve(config, super::shutdown_signal()).await {
        Err(e @ verifier::ServeError::State(_)) => Err(Hinted::error(
            e.to_string(),
            "check --state: a file needs a writable directory and one verifier per file \
             (several replicas share redis://); a Redis URL needs a reachable server and the \
             right password",
        )),
        other => other.with_hint(hint),
    }
}
