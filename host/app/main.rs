//! The `shipper` binary.
fn main() {}
