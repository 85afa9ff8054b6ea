//! Host side of the benchmark-only structured-record world
//! (tests/guests/bench_structured/wit): the interface measured against shipper's bytes-in
//! world (docs/plugins.md §3.1 "One LogGroup per call"). The host decodes each log group
//! into owned strings and lowers them as `list<log>` records. Shared by the runtime tests
//! (equivalence with the bytes-in guest) and `benches/plugins.rs` (via `#[path]`), so both
//! measure the same code.

use prost::Message as _;
use shipper_sls::proto::LogGroup as SlsLogGroup;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

wasmtime::component::bindgen!({
    path: "../../tests/guests/bench_structured/wit",
    world: "formatter",
    exports: { default: async },
});

pub use shipper_bench::structured::types::{Field, HecBody, Payload};

/// Store data: just WASI (the structured world imports nothing of ours).
pub struct State {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// One instance of the structured guest, configured like the production engine (Cranelift,
/// epoch interruption compiled in, async exports, WASI p2 linked).
pub struct StructuredRunner {
    store: Store<State>,
    bindings: Formatter,
}

/// What one call returns.
pub type Results = Vec<Result<Vec<Emit>, shipper_bench::structured::types::RecordError>>;

impl StructuredRunner {
    /// Compiles and instantiates the guest.
    pub async fn new(wasm: &[u8]) -> Self {
        let mut config = Config::new();
        config.epoch_interruption(true);
        let engine = Engine::new(&config).expect("engine");
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).expect("link WASI");
        let component = Component::new(&engine, wasm).expect("compile the structured guest");
        let mut store = Store::new(
            &engine,
            State {
                wasi: WasiCtx::builder().build(),
                table: ResourceTable::new(),
            },
        );
        // No ticker runs for this engine, so the deadline is never reached.
        store.set_epoch_deadline(u64::MAX / 2);
        let bindings = Formatter::instantiate_async(&mut store, &component, &linker)
            .await
            .expect("instantiate the structured guest");
        Self { store, bindings }
    }

    /// The host work of the structured interface: decode the group's protobuf bytes and
    /// build owned records (one `String` per key and value).
    pub fn build(group_bytes: &[u8]) -> (LogGroup, Vec<Log>) {
        let group = SlsLogGroup::decode(group_bytes).expect("valid LogGroup");
        let text = |v: Vec<u8>| {
            String::from_utf8(v).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into())
        };
        let logs = group
            .logs
            .into_iter()
            .map(|log| Log {
                time: log.time,
                time_ns: log.time_ns,
                contents: log
                    .contents
                    .into_iter()
                    .map(|c| Field {
                        key: c.key,
                        value: text(c.value),
                    })
                    .collect(),
            })
            .collect();
        let meta = LogGroup {
            topic: group.topic.unwrap_or_default(),
            source: group.source.unwrap_or_default(),
            tags: group
                .log_tags
                .into_iter()
                .map(|t| Field {
                    key: t.key,
                    value: t.value,
                })
                .collect(),
        };
        (meta, logs)
    }

    /// Calls `process` (lowering every record).
    pub async fn process(&mut self, group: &LogGroup, logs: &[Log]) -> Results {
        self.bindings
            .call_process(&mut self.store, group, logs)
            .await
            .expect("the structured guest does not trap")
            .expect("the structured guest does not fail the batch")
    }
}
