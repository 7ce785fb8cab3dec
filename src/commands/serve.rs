//! `obol serve verifier`.

use crate::cli::{ServeCommand, ServeVerifierArgs, VerifierMode};
use crate::offers;
use crate::verifier::{self, Mode, VerifierConfig};
use crate::x402::networks::Registry;

use super::WithHint as _;

pub async fn run(cmd: ServeCommand) -> anyhow::Result<()> {
    match cmd {
        ServeCommand::Verifier(args) => serve_verifier(args).await,
    }
}

async fn serve_verifier(args: ServeVerifierArgs) -> anyhow::Result<()> {
    let registry = Registry::load().with_hint(
        "fix or remove the networks file (OBOL_NETWORKS or $XDG_CONFIG_HOME/obol/networks.yaml)",
    )?;
    let config = VerifierConfig {
        listen: args.listen,
        offers_file: args.file.offers_file.unwrap_or_else(offers::default_file),
        facilitator: args.facilitator.filter(|s| !s.trim().is_empty()),
        mode: match args.mode {
            VerifierMode::ForwardAuth => Mode::ForwardAuth,
            VerifierMode::Proxy => Mode::Proxy,
            VerifierMode::Both => Mode::Both,
        },
        settle_before_grant: args.settle_before_grant,
        verify_timeout: args.verify_timeout,
        settle_timeout: args.settle_timeout,
        reload_interval: args.reload_interval,
        registry,
    };
    let hint = match &config.facilitator {
        Some(_) => {
            "check --listen (e.g. :8080 or 127.0.0.1:8080) and --facilitator (https://, or http:// on localhost)"
        }
        None => "check --listen (e.g. :8080 or 127.0.0.1:8080); is another process using the port?",
    };
    verifier::serve(config, shutdown_signal())
        .await
        .with_hint(hint)
}

/// Resolves on SIGTERM (Kubernetes) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
