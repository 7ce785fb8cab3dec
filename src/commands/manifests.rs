//! `obol manifests`: print the Kubernetes YAML stream (see `crate::manifests`).

use std::io::Write as _;

use crate::cli::ManifestsArgs;
use crate::commands::Hinted;
use crate::manifests::{self, ManifestError, ManifestOptions};

pub fn run(args: ManifestsArgs) -> anyhow::Result<()> {
    let opts = ManifestOptions {
        namespace: args.namespace,
        image: args.image.unwrap_or_else(manifests::default_image),
        chain: args.chain,
        facilitator: args.facilitator,
        wallet: args.wallet,
        monitoring: !args.no_monitoring,
        erpc: !args.no_erpc,
        auth_refresher: args.auth_refresher,
        verify_only: args.verify_only,
        replicas: args.replicas,
        state: args.state.filter(|s| !s.trim().is_empty()),
    };
    let text = manifests::render_yaml(&opts).map_err(|e| {
        let hint = match &e {
            ManifestError::Namespace(_) => "use e.g. --namespace x402",
            ManifestError::Image(_) => "use e.g. --image ghcr.io/obolnetwork/obol:0.1.0",
            ManifestError::Wallet(_) => "pass the payTo address, e.g. --wallet 0xAbC...",
            ManifestError::Rules(_) => "this is a bug in obol; please report it",
            ManifestError::State(_) => "use e.g. --state redis://:PASSWORD@redis.x402:6379/0",
            ManifestError::Replicas(_) => {
                "add --state redis://HOST:6379/0 (a Redis or Valkey all replicas reach), or use --replicas 1"
            }
        };
        Hinted::error(e.to_string(), hint)
    })?;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        // `obol manifests | head`: the reader left; not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(anyhow::Error::new(e).context("writing the manifests to stdout")),
    }
}
