//! `shipper plugin`. (Being written; see the issue tracker.)

/// Flags of `shipper plugin`.
#[derive(Debug, clap::Args)]
pub struct PluginArgs {}

/// Runs `shipper plugin`.
pub async fn execute(_args: PluginArgs) -> anyhow::Result<()> {
    anyhow::bail!("`shipper plugin` is not implemented in this build yet")
}
