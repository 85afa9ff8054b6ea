//! The `bindgen!`s over the repo-root `wit/`, like spin's `crates/world`: world `formatter`
//! here, world `batch-formatter` in [`batch`] (sharing the `types` and `host` interfaces, so
//! one set of types and one host implementation serve both). Everything else in this crate
//! uses these generated types; the public ones are re-exported from the crate root.
//!
//! Exports are `async` so a plugin call runs on the shard's tokio task and yields to the
//! executor at every epoch tick while it is within its budget
//! (docs/plugins.md §6.4 "Time budget"). The host imports (`log`, `log-enabled`,
//! `counter-add`) stay synchronous: they never wait on I/O, and a sync import is cheaper to
//! call than an async one.

#![expect(missing_docs, reason = "generated code; the WIT documents every item")]

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "formatter",
    exports: { default: async },
});

/// World `batch-formatter` (`process-batch`, docs/plugins.md §12).
pub mod batch {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "batch-formatter",
        exports: { default: async },
        with: {
            "shipper:plugin/types": super::shipper::plugin::types,
            "shipper:plugin/host": super::shipper::plugin::host,
        },
    });
}

impl shipper::plugin::types::BatchInfo {
    /// The batch info `shipper plugin test` and plugin self-tests pass: fixed values, so
    /// output is reproducible.
    pub fn sample() -> Self {
        Self {
            project: "sample-project".into(),
            logstore: "sample-logstore".into(),
            shard: 0,
            received: shipper::plugin::types::Timestamp {
                seconds: 1_700_000_100,
                nanos: 0,
            },
        }
    }
}
