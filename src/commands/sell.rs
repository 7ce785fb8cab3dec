//! `obol sell ...`.

use crate::cli::SellCommand;

pub async fn run(_cmd: SellCommand) -> anyhow::Result<()> {
    anyhow::bail!("`obol sell` is not available in this build yet")
}
