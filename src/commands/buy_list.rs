//! `obol buy list`: the PurchaseRequests of a namespace, as the sidecar reports them.

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use super::Hinted;
use crate::buyer::purchase::PoolView;
use crate::cli::{BuyListArgs, OutputFormat};
use crate::k8s::KubeClient;

pub(super) async fn run(args: BuyListArgs) -> anyhow::Result<()> {
    let client = KubeClient::new(&args.cluster.client_options())
        .await
        .map_err(|e| Hinted::error(e.to_string(), e.hint()))?;
    let ns = client.namespace().to_owned();
    let list = client
        .purchase_requests(None)
        .list(&Default::default())
        .await
        .map_err(|e| {
            let e = client.error(format!("listing PurchaseRequests in namespace {ns}"), e);
            Hinted::error(e.to_string(), e.hint())
        })?;
    let mut pools: Vec<PoolView> = list.items.iter().map(PoolView::of).collect();
    pools.sort_by(|a, b| a.name.cmp(&b.name));
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&pools)?),
        OutputFormat::Table if pools.is_empty() => println!(
            "no PurchaseRequests in namespace {ns} (buy a pool with `obol buy request NAME \
             --endpoint URL --model MODEL --count N -n {ns}`)"
        ),
        OutputFormat::Table => println!("{}", table(&pools)),
    }
    Ok(())
}

fn or_dash<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

/// The table of `obol buy list`.
pub(super) fn table(pools: &[PoolView]) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED);
    t.set_header([
        "NAME",
        "MODEL",
        "ENDPOINT",
        "PRICE",
        "REMAINING",
        "SPENT",
        "TOTAL SPENT",
        "CAPS",
        "READY",
    ]);
    for p in pools {
        let mut caps = Vec::new();
        if let Some(t) = p.max_total {
            caps.push(format!("total {t}"));
        }
        if let Some(d) = &p.max_spend_per_day {
            caps.push(format!("{d} {}/day", p.symbol));
        }
        let ready = match (p.ready, &p.reason) {
            (None, _) => "-".to_owned(),
            (Some(true), _) if p.up_to_date => "True".to_owned(),
            (Some(true), _) => "True (stale)".to_owned(),
            (Some(false), Some(reason)) => format!("False ({reason})"),
            (Some(false), None) => "False".to_owned(),
        };
        t.add_row([
            p.name.clone(),
            p.public_model.clone(),
            p.endpoint.clone(),
            format!("{} {}", p.price, p.symbol),
            or_dash(p.remaining),
            or_dash(p.spent),
            or_dash(p.total_spent.as_ref().map(|s| format!("{s} {}", p.symbol))),
            if caps.is_empty() {
                "-".to_owned()
            } else {
                caps.join(", ")
            },
            ready,
        ]);
    }
    t
}
