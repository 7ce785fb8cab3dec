//! `obol metrics earnings|rules`.

use super::{Hinted, WithHint};
use crate::cli::{EarningsBy, EarningsWindow, MetricsCommand, MetricsEarningsArgs, OutputFormat};
use crate::earnings::{
    self, By, KubeTarget, OfferFilter, Prometheus, PrometheusError, QueryError, Report,
    ScrapeError, Window, render,
};
use crate::x402::networks::Registry;

/// Scraped when no source is given: `obol serve verifier` on its default port.
const LOCAL_VERIFIER_METRICS: &str = "http://127.0.0.1:8080/metrics";

const PROMETHEUS_ENV: &str = "OBOL_PROMETHEUS_URL";

pub async fn run(cmd: MetricsCommand) -> anyhow::Result<()> {
    match cmd {
        MetricsCommand::Earnings(args) => earnings(args).await,
        MetricsCommand::Rules => {
            print!("{}", earnings::RULES_YAML);
            Ok(())
        }
    }
}

/// Where the numbers come from.
enum Source {
    Prometheus(String),
    Kube(KubeTarget),
    Scrape(String),
}

/// `--kube` and `--scrape` win over a Prometheus URL that comes from the environment; the same
/// URL given as a flag next to them is a mistake worth saying.
fn source(args: &MetricsEarningsArgs) -> anyhow::Result<Source> {
    let from_env = std::env::var(PROMETHEUS_ENV).ok();
    let flag_prometheus = args
        .prometheus
        .as_deref()
        .filter(|p| from_env.as_deref() != Some(*p));
    if flag_prometheus.is_some() && (args.kube || args.scrape.is_some()) {
        return Err(Hinted::error(
            "--prometheus cannot be combined with --kube or --scrape",
            "pick one source: --prometheus URL, --kube, or --scrape URL",
        ));
    }
    Ok(if args.kube {
        Source::Kube(KubeTarget {
            kubeconfig: args.kubeconfig.clone(),
            context: args.context.clone(),
            namespace: args.kube_namespace.clone(),
            service: args.kube_service.clone(),
        })
    } else if let Some(url) = &args.scrape {
        Source::Scrape(url.clone())
    } else if let Some(url) = &args.prometheus {
        Source::Prometheus(url.clone())
    } else {
        Source::Scrape(LOCAL_VERIFIER_METRICS.to_string())
    })
}

fn query_error(e: QueryError) -> anyhow::Error {
    let hint = e.hint();
    Hinted::error(e.to_string(), hint)
}

fn prometheus_error(e: PrometheusError) -> anyhow::Error {
    query_error(QueryError::Prometheus(e))
}

fn scrape_error(e: ScrapeError, implicit: bool) -> anyhow::Error {
    let mut hint = e.hint();
    if implicit && matches!(e, ScrapeError::Unreachable { .. }) {
        hint = format!(
            "no source was given, so obol read the local verifier's {LOCAL_VERIFIER_METRICS}; pass --prometheus URL, --kube or --scrape URL (see `obol metrics earnings --help`)"
        );
    }
    Hinted::error(e.to_string(), hint)
}

async fn earnings(args: MetricsEarningsArgs) -> anyhow::Result<()> {
    let filter = args
        .offer
        .as_deref()
        .map(str::parse::<OfferFilter>)
        .transpose()
        .map_err(|e| Hinted::error(e, "see the offers with `obol sell list`"))?;
    let by = match args.by {
        EarningsBy::Offer => By::Offer,
        EarningsBy::Chain => By::Chain,
    };
    let window = match args.window.unwrap_or(EarningsWindow::Day) {
        EarningsWindow::Day => Window::Day,
        EarningsWindow::Week => Window::Week,
    };
    let source = source(&args)?;
    if args.window.is_some() && matches!(source, Source::Scrape(_)) {
        return Err(Hinted::error(
            "--window needs Prometheus: a verifier's /metrics only has lifetime totals",
            "drop --window, or use --prometheus URL or --kube",
        ));
    }
    let registry = Registry::load().with_hint("fix or remove the networks file (OBOL_NETWORKS)")?;
    let report: Report = match source {
        Source::Prometheus(url) => {
            let prom = Prometheus::http(&url).map_err(prometheus_error)?;
            earnings::from_prometheus(&prom, window, by, filter.as_ref(), &registry)
                .await
                .map_err(query_error)?
        }
        Source::Kube(target) => {
            let prom = Prometheus::kube(&target).await.map_err(prometheus_error)?;
            earnings::from_prometheus(&prom, window, by, filter.as_ref(), &registry)
                .await
                .map_err(query_error)?
        }
        Source::Scrape(url) => {
            let implicit = args.scrape.is_none();
            earnings::from_scrape(&url, by, filter.as_ref(), &registry)
                .await
                .map_err(|e| scrape_error(e, implicit))?
        }
    };
    match args.output {
        OutputFormat::Table => println!("{}", render::table(&report)),
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&render::json(&report))?),
    }
    Ok(())
}
