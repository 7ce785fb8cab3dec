//! `obol sell create|list|delete|pause|resume` on the local offers file.

use std::path::PathBuf;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use super::{Hinted, WithHint as _};
use crate::cli::{OffersFileArgs, OutputFormat, SellCommand, SellCreateArgs, SellListArgs};
use crate::offers::{self, Created, OfferError, OfferSpec, OfferStore, OfferView};
use crate::x402::networks::Registry;

pub async fn run(cmd: SellCommand) -> anyhow::Result<()> {
    match cmd {
        SellCommand::Create(args) => create(args),
        SellCommand::List(args) => list(args),
        SellCommand::Delete(args) => {
            let store = store(&args.file)?;
            store.delete(&args.name).map_err(|e| explain(e, &store))?;
            println!(
                "deleted offer {} from {}",
                args.name,
                store.path().display()
            );
            Ok(())
        }
        SellCommand::Pause(args) => {
            let store = store(&args.file)?;
            let changed = store
                .set_paused(&args.name, true)
                .map_err(|e| explain(e, &store))?;
            println!(
                "{} offer {} in {}",
                if changed { "paused" } else { "already paused:" },
                args.name,
                store.path().display()
            );
            Ok(())
        }
        SellCommand::Resume(args) => {
            let store = store(&args.file)?;
            let changed = store
                .set_paused(&args.name, false)
                .map_err(|e| explain(e, &store))?;
            println!(
                "{} offer {} in {}",
                if changed { "resumed" } else { "not paused:" },
                args.name,
                store.path().display()
            );
            Ok(())
        }
    }
}

fn file_of(args: &OffersFileArgs) -> PathBuf {
    args.offers_file
        .clone()
        .unwrap_or_else(offers::default_file)
}

fn store(args: &OffersFileArgs) -> anyhow::Result<OfferStore> {
    let registry = Registry::load().with_hint(
        "fix or remove the networks file (OBOL_NETWORKS or $XDG_CONFIG_HOME/obol/networks.yaml)",
    )?;
    Ok(OfferStore::new(file_of(args), registry))
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

fn create(args: SellCreateArgs) -> anyhow::Result<()> {
    let store = store(&args.file)?;
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
    };
    let (what, view) = store.create(&spec).map_err(|e| explain(e, &store))?;
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
            let verb = match what {
                Created::Created => "created",
                Created::Updated => "updated",
            };
            println!(
                "{verb} offer {}: {}/* -> {} for {} {} on {} ({}), paid to {}{}",
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
            println!("wrote {}", store.path().display());
            println!(
                "serve it with: obol serve verifier --offers-file {}",
                store.path().display()
            );
        }
    }
    Ok(())
}

fn list(args: SellListArgs) -> anyhow::Result<()> {
    let store = store(&args.file)?;
    let offers = store.list().map_err(|e| explain(e, &store))?;
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
        "NAME", "PATH", "PRICE", "CHAIN", "PAY TO", "UPSTREAM", "PAUSED",
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
            if o.paused { "yes" } else { "no" }.to_string(),
        ]);
    }
    t
}
