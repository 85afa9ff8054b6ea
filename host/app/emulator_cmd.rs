//! `shipper emulator`. (Being written; see the issue tracker.)

/// Flags of `shipper emulator`.
#[derive(Debug, clap::Args)]
pub struct EmulatorArgs {}

/// Runs `shipper emulator`.
pub async fn execute(_args: EmulatorArgs) -> anyhow::Result<()> {
    anyhow::bail!("`shipper emulator` is not implemented in this build yet")
}
