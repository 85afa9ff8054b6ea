//! `shipper run`. (Being written; see the issue tracker.)

/// Flags of `shipper run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {}

/// Runs `shipper run`.
pub async fn execute(_args: RunArgs) -> anyhow::Result<()> {
    anyhow::bail!("`shipper run` is not implemented in this build yet")
}
