//! End-to-end tests: the real `shipper` binary against the emulator and real receivers.

/// `shipper plugin test` output of every plugin against tests/fixtures/plugins (golden files).
mod plugin_golden;
