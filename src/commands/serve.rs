//! `obol serve ...`.

use crate::cli::ServeCommand;

pub async fn run(_cmd: ServeCommand) -> anyhow::Result<()> {
    anyhow::bail!("`obol serve` is not available in this build yet")
}
