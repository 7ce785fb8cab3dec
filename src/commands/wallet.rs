//! `obol wallet import|address`.

use std::io::{IsTerminal, Read};

use super::{Hinted, WithHint};
use crate::buyer::wallet::{WalletError, parse_private_key};
use crate::buyer::{KeyLocation, Keystore, Wallet, WalletSource};
use crate::cli::{
    OutputFormat, WalletAddressArgs, WalletCommand, WalletImportArgs, WalletSourceArgs,
};

pub async fn run(cmd: WalletCommand) -> anyhow::Result<()> {
    match cmd {
        WalletCommand::Import(args) => import(args).await,
        WalletCommand::Address(args) => address(args).await,
    }
}

/// Opens the wallet named by the flags, or explains how to configure one.
pub(super) async fn open_wallet(args: &WalletSourceArgs) -> anyhow::Result<Wallet> {
    let source = WalletSource {
        private_key_file: args.private_key_file.clone(),
        signer_url: args.signer_url.clone(),
    };
    match Wallet::open(&source, &Keystore::new()).await {
        Ok((wallet, _)) => Ok(wallet),
        Err(err) => Err(wallet_error(err)),
    }
}

fn wallet_error(err: WalletError) -> anyhow::Error {
    let hint = match &err {
        WalletError::NoWallet => {
            "import a key with `obol wallet import`, or use --private-key-file, OBOL_PRIVATE_KEY or --signer-url"
        }
        WalletError::Remote { .. } => "check --signer-url (the stack's remote-signer, port 9000)",
        _ => "see `obol wallet --help` for where obol looks for a key",
    };
    Hinted::error(err.to_string(), hint)
}

async fn import(args: WalletImportArgs) -> anyhow::Result<()> {
    let (text, origin) = match &args.private_key_file {
        Some(path) => (
            std::fs::read_to_string(path).with_hint("give a readable file holding the hex key")?,
            format!("key file {}", path.display()),
        ),
        None => {
            if std::io::stdin().is_terminal() {
                eprintln!("paste the private key (hex) and press Enter, then Ctrl-D:");
            }
            let mut buf = String::new();
            std::io::stdin()
                .read_to_string(&mut buf)
                .with_hint("pipe the key on stdin or use --private-key-file")?;
            (buf, "standard input".to_owned())
        }
    };
    let signer = parse_private_key(&text, &origin).map_err(wallet_error)?;
    let key_hex = format!("0x{}", alloy_primitives::hex::encode(signer.to_bytes()));
    let mut store = Keystore::new();
    if args.insecure_storage {
        store = store.file_only();
    }
    let location = tokio::task::spawn_blocking(move || store.store(&key_hex)).await??;
    match &location {
        KeyLocation::Keyring => {
            eprintln!("stored the key for {} in the OS keyring", signer.address())
        }
        KeyLocation::File { path, why } => {
            eprintln!(
                "WARNING: the private key is stored in PLAIN TEXT at {}",
                path.display()
            );
            eprintln!("WARNING: because {why}");
            eprintln!(
                "WARNING: anyone who can read that file as you can spend from {}",
                signer.address()
            );
        }
    }
    println!("{}", signer.address());
    Ok(())
}

async fn address(args: WalletAddressArgs) -> anyhow::Result<()> {
    let source = WalletSource {
        private_key_file: args.wallet.private_key_file.clone(),
        signer_url: args.wallet.signer_url.clone(),
    };
    let (wallet, origin) = Wallet::open(&source, &Keystore::new())
        .await
        .map_err(wallet_error)?;
    match args.output {
        OutputFormat::Table => println!("{}", wallet.address()),
        OutputFormat::Json => println!(
            "{}",
            serde_json::json!({"address": wallet.address().to_string(), "source": origin.to_string()})
        ),
    }
    Ok(())
}
