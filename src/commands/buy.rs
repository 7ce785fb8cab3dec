//! `obol buy pay`: one paid HTTP request; `buy request` and `buy list` live in
//! `buy_request.rs` and `buy_list.rs`.

use std::io::{IsTerminal, Read, Write};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use reqwest::header::{HeaderName, HeaderValue};

use super::{Hinted, WithHint, wallet::open_wallet};
use crate::buyer::pay::{self, PayError, PayRequest, Probe};
use crate::buyer::{Ledger, SpendingPolicy};
use crate::cli::{BuyCommand, BuyPayArgs, OutputFormat};
use crate::x402::networks::Registry;

pub async fn run(cmd: BuyCommand) -> anyhow::Result<()> {
    match cmd {
        BuyCommand::Pay(args) => pay_command(args).await,
        BuyCommand::Request(args) => super::buy_request::run(args).await,
        BuyCommand::List(args) => super::buy_list::run(args).await,
    }
}

async fn pay_command(args: BuyPayArgs) -> anyhow::Result<()> {
    let request = pay_request(&args)?;
    let registry = Registry::load().with_hint("fix or remove the networks file (OBOL_NETWORKS)")?;
    let policy = SpendingPolicy {
        max_amount: args.max_amount.clone(),
        network: args.network.clone(),
        max_timeout: Some(args.max_timeout),
    };
    let spinner = Spinner::new(args.output == OutputFormat::Table);

    spinner.say(format!("asking {} for its price", request.url));
    let (required, url) = match pay::probe(&request).await {
        Ok(Probe::PaymentRequired { required, url }) => (required, url),
        Ok(Probe::Free(response)) => {
            spinner.finish();
            eprintln!(
                "note: the seller did not ask for payment (HTTP {}); nothing was paid",
                response.status
            );
            return print_response(&args.output, response.status, &response.body, None);
        }
        Err(err) => return Err(pay_error(err)),
    };
    let choice = policy.choose(&required, &registry).map_err(|r| {
        spinner.finish();
        Hinted::error(r.message, r.hint)
    })?;

    let wallet = open_wallet(&args.wallet)
        .await
        .inspect_err(|_| spinner.finish())?;
    spinner.say(format!(
        "signing {} {} on {}",
        choice.amount_decimal(),
        choice.asset.symbol,
        choice.network.name
    ));
    let payment = pay::sign_payment(&required, &choice, &wallet)
        .await
        .map_err(pay_error)?;

    spinner.say(format!(
        "paying {} {} and waiting for the seller to settle",
        choice.amount_decimal(),
        choice.asset.symbol
    ));
    let ledger = Ledger::open(Ledger::default_path());
    let on_retry = |attempt: u32, why: &str| {
        spinner.say(format!(
            "no answer yet ({why}); resending the same payment (retry {attempt})"
        ));
        if !spinner.active() {
            eprintln!("retrying with the same payment ({why}), attempt {attempt}");
        }
    };
    let paid = pay::send_paid(&request, &url, payment, &ledger, &on_retry).await;
    spinner.finish();
    let paid = paid.map_err(pay_error)?;

    let entry = &paid.entry;
    let receipt = serde_json::json!({
        "amount": entry.amount_decimal,
        "amountAtomic": entry.amount,
        "symbol": entry.symbol,
        "network": entry.network,
        "payer": entry.payer,
        "payTo": entry.pay_to,
        "nonce": entry.nonce,
        "status": entry.status,
        "transaction": entry.transaction,
    });
    if args.output == OutputFormat::Table {
        let tx = match &entry.transaction {
            Some(tx) => format!("tx {tx}"),
            None => "no settlement receipt (the seller verified but did not settle yet)".to_owned(),
        };
        eprintln!(
            "paid {} {} on {} from {} to {}: {tx}",
            entry.amount_decimal, entry.symbol, entry.network, entry.payer, entry.pay_to
        );
    }
    print_response(
        &args.output,
        paid.response.status,
        &paid.response.body,
        Some(receipt),
    )
}

fn pay_error(err: PayError) -> anyhow::Error {
    match err.hint() {
        Some(hint) => Hinted::error(err.to_string(), hint),
        None => anyhow::Error::new(err),
    }
}

fn print_response(
    output: &OutputFormat,
    status: u16,
    body: &Bytes,
    receipt: Option<serde_json::Value>,
) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match output {
        OutputFormat::Table => {
            stdout.write_all(body)?;
            if !body.ends_with(b"\n") && std::io::stdout().is_terminal() {
                stdout.write_all(b"\n")?;
            }
        }
        OutputFormat::Json => {
            let body_json =
                serde_json::from_slice::<serde_json::Value>(body).unwrap_or_else(|_| {
                    serde_json::Value::String(String::from_utf8_lossy(body).into_owned())
                });
            let out = serde_json::json!({"status": status, "body": body_json, "payment": receipt});
            serde_json::to_writer_pretty(&mut stdout, &out)?;
            stdout.write_all(b"\n")?;
        }
    }
    stdout.flush()?;
    Ok(())
}

fn pay_request(args: &BuyPayArgs) -> anyhow::Result<PayRequest> {
    let url = reqwest::Url::parse(&args.url)
        .with_hint("give a full URL such as https://seller.example/services/demo")?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Hinted::error(
            format!("unsupported URL scheme `{}`", url.scheme()),
            "use an http:// or https:// URL",
        ));
    }
    let method = reqwest::Method::from_bytes(args.method.to_ascii_uppercase().as_bytes())
        .with_hint("use an HTTP method such as GET or POST")?;
    let mut headers = Vec::new();
    for raw in &args.headers {
        let (name, value) = raw.split_once(':').ok_or_else(|| {
            Hinted::error(
                format!("header {raw:?} has no ':'"),
                "write headers as -H 'Name: value'",
            )
        })?;
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .with_hint("write headers as -H 'Name: value'")?;
        let value =
            HeaderValue::from_str(value.trim()).with_hint("header values must be visible ASCII")?;
        headers.push((name, value));
    }
    let body = match args.data.as_deref() {
        None => None,
        Some("@-") => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("reading the body from stdin")?;
            Some(Bytes::from(buf))
        }
        Some(d) if d.starts_with('@') => {
            let path = &d[1..];
            Some(Bytes::from(
                std::fs::read(path).with_context(|| format!("reading the body from {path}"))?,
            ))
        }
        Some(d) => Some(Bytes::from(d.to_owned())),
    };
    Ok(PayRequest {
        url: url.to_string(),
        method,
        headers,
        body,
        timeout: Duration::from_secs(args.timeout.max(1)),
        retries: args.retries,
    })
}

/// A spinner on stderr when it is a terminal and the output is for humans; silent otherwise.
struct Spinner(Option<indicatif::ProgressBar>);

impl Spinner {
    fn new(human: bool) -> Self {
        if !human || !std::io::stderr().is_terminal() {
            return Spinner(None);
        }
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(100));
        Spinner(Some(bar))
    }

    fn say(&self, msg: String) {
        if let Some(bar) = &self.0 {
            bar.set_message(msg);
        }
    }

    fn active(&self) -> bool {
        self.0.is_some()
    }

    fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}
