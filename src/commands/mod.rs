//! One module per command group: turn parsed arguments into library calls and render output.

mod auth;
mod buy;
mod buy_list;
mod buy_request;
mod completion;
mod manifests;
mod metrics;
mod sell;
mod serve;
mod serve_buyer;
mod wallet;

use std::fmt;

use crate::cli::{Cli, Command, GlobalArgs, LogFormat};

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Sell(cmd) => sell::run(cmd).await,
        Command::Buy(cmd) => buy::run(cmd).await,
        Command::Wallet(cmd) => wallet::run(cmd).await,
        Command::Serve(cmd) => serve::run(cmd).await,
        Command::Metrics(cmd) => metrics::run(cmd).await,
        Command::Auth(cmd) => auth::run(cmd).await,
        Command::Manifests(args) => manifests::run(args),
        Command::Completion(args) => completion::run(args),
    }
}

/// An error message for the user with a hint on what to do about it.
///
/// Attach with `Err(Hinted::error("what failed", "what to do"))?` or `.with_hint(..)`; the hint
/// is printed on its own line after the error.
#[derive(Debug)]
pub struct Hinted {
    pub message: String,
    pub hint: String,
}

impl Hinted {
    pub fn error(message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(Hinted {
            message: message.into(),
            hint: hint.into(),
        })
    }
}

impl fmt::Display for Hinted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Hinted {}

/// Adds a hint to any error on its way up.
pub trait WithHint<T> {
    fn with_hint(self, hint: impl Into<String>) -> anyhow::Result<T>;
}

impl<T, E: Into<anyhow::Error>> WithHint<T> for Result<T, E> {
    fn with_hint(self, hint: impl Into<String>) -> anyhow::Result<T> {
        self.map_err(|e| {
            let e: anyhow::Error = e.into();
            Hinted::error(format!("{e:#}"), hint)
        })
    }
}

/// Prints an error as one line (`error: outer: inner`), plus `hint:` lines.
pub fn report_error(err: &anyhow::Error) {
    eprintln!("error: {err:#}");
    for cause in err.chain() {
        if let Some(h) = cause.downcast_ref::<Hinted>() {
            eprintln!("hint: {}", h.hint);
        }
    }
}

/// Logs go to stderr; text by default, JSON with `--log-format json`. RUST_LOG overrides -v.
pub fn init_logging(global: &GlobalArgs) {
    use tracing_subscriber::EnvFilter;
    let default = match global.verbose {
        0 => "warn,obol=info",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match global.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.with_target(false).try_init(),
    };
}

/// Resolves on SIGTERM or Ctrl-C: the daemons' graceful shutdown trigger.
pub(crate) async fn shutdown_signal() {
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
