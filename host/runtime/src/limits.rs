//! `PluginLimits`: every bound a plugin runs under (memory, time, output size), with named
//! defaults and validation; and `StoreLimiter`, the wasmtime `ResourceLimiter` that enforces
//! the memory and instance caps and remembers *why* it refused a grow, so the trap can be
//! reported with numbers instead of "allocation failed".
//!
//! Not here: the epoch deadline itself (instance.rs sets it per call from these numbers).

use std::time::Duration;

/// Default cap on one instance's linear memories, summed. Rust plugins use well under 2 MiB;
/// Python/JS components start at 10–30 MiB, so 64 MiB runs all four languages while a leak
/// or a memory bomb is stopped long before it hurts the host (docs/plugins.md §6.3 "Limits").
pub const DEFAULT_MAX_MEMORY_BYTES: usize = 64 << 20;

/// Default cap on core instances per store. A Rust component has 1–3, componentize-py ~10;
/// the headroom is for adapters, not for plugins that instantiate in a loop.
pub const DEFAULT_MAX_INSTANCES: usize = 64;

/// Default cap on tables per store (function tables of the component's core modules).
pub const DEFAULT_MAX_TABLES: usize = 64;

/// Default cap on linear memories per store (one per core module that defines one).
pub const DEFAULT_MAX_MEMORIES: usize = 16;

/// Default cap on elements per table: large enough for the indirect-call tables of the
/// Python and JS interpreters, small enough that a table bomb is not a host OOM.
pub const DEFAULT_MAX_TABLE_ELEMENTS: usize = 1_000_000;

/// Default fixed part of one `process` call's time budget. Rust formats 500 logs in well
/// under 1 ms; 100 ms absorbs scheduling noise on a busy 2-core machine and the first-call
/// warm-up of interpreters.
pub const DEFAULT_CALL_BUDGET_BASE: Duration = Duration::from_millis(100);

/// Default per-log part of one call's budget: 1 ms per log is ~50× what Python needs per
/// record (~20 µs, docs/plugins.md §6.3 "Limits"), so only a stuck or pathological plugin
/// hits it.
pub const DEFAULT_CALL_BUDGET_PER_LOG: Duration = Duration::from_millis(1);

/// Default budget for instantiation plus `init`: Python/JS components take up to ~1 ms to
/// instantiate and may parse their config; a second is generous and still bounds a plugin
/// that loops in `init`.
pub const DEFAULT_INIT_BUDGET: Duration = Duration::from_secs(1);

/// Default cap on emits for one log: fan-out to a few sinks is normal; thousands means a bug.
pub const DEFAULT_MAX_EMITS_PER_RECORD: usize = 64;

/// Default cap on the bytes of one emit: 1 MiB, the size of a whole HEC request by default.
/// Load balancers and hosted HEC front ends commonly refuse bodies much above 1 MB
/// (docs/rendering.md §3.7), and a single event that large is almost always a plugin bug.
pub const DEFAULT_MAX_EMIT_BYTES: usize = 1 << 20;

/// Default cap on the bytes all emits of one call add up to: a 500-log group of 1 KiB logs
/// renders to ~0.5 MiB; 32 MiB bounds host memory per call at a sane multiple of that.
pub const DEFAULT_MAX_CALL_OUTPUT_BYTES: usize = 32 << 20;

/// Default cap on the config text given to `init`: bounds what one config can make every
/// instance parse (docs/plugins.md §6.3 "Limits").
pub const DEFAULT_MAX_CONFIG_BYTES: usize = 64 << 10;

/// Default cap on the size of a plugin file. Python components are 18–38 MB, JS ~12 MB;
/// Redpanda's 10 MiB would refuse them.
pub const DEFAULT_MAX_WASM_BYTES: usize = 64 << 20;

/// Default cap on plugin log lines (`log` import and stdout/stderr) per second per instance;
/// more is dropped and counted, so a chatty plugin cannot flood the host log.
pub const DEFAULT_LOG_LINES_PER_SECOND: u32 = 100;

/// Default truncation length of one plugin log line (Redpanda truncates at 1024 B too).
pub const DEFAULT_MAX_LOG_LINE_BYTES: usize = 1024;

/// Default cap on distinct counter names per plugin (`counter-add`): each becomes a
/// Prometheus series, so the cap bounds cardinality.
pub const DEFAULT_MAX_COUNTERS: usize = 64;

/// Bounds one plugin runs under. Build with [`PluginLimits::default`] and adjust fields,
/// then [`PluginLimits::validate`] (done by `PluginEngine::load` too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginLimits {
    /// Cap on the sum of an instance's linear memories, in bytes.
    pub max_memory_bytes: usize,
    /// Cap on core instances per store.
    pub max_instances: usize,
    /// Cap on tables per store.
    pub max_tables: usize,
    /// Cap on linear memories per store.
    pub max_memories: usize,
    /// Cap on elements of one table.
    pub max_table_elements: usize,
    /// Fixed part of a `process` call's time budget.
    pub call_budget_base: Duration,
    /// Per-log part of a `process` call's time budget.
    pub call_budget_per_log: Duration,
    /// Budget for instantiation plus `init`.
    pub init_budget: Duration,
    /// Cap on emits for one log.
    pub max_emits_per_record: usize,
    /// Cap on the bytes of one emit (payload strings and bytes plus the route).
    pub max_emit_bytes: usize,
    /// Cap on the bytes of all emits of one call.
    pub max_call_output_bytes: usize,
    /// Cap on the config text given to `init`.
    pub max_config_bytes: usize,
    /// Cap on the size of the plugin file.
    pub max_wasm_bytes: usize,
    /// Plugin log lines per second per instance; the rest are dropped and counted.
    pub log_lines_per_second: u32,
    /// Plugin log lines are truncated to this many bytes.
    pub max_log_line_bytes: usize,
    /// Cap on distinct counter names.
    pub max_counters: usize,
}

impl Default for PluginLimits {
    fn default() -> Self {
        Self {
            max_memory_bytes: DEFAULT_MAX_MEMORY_BYTES,
            max_instances: DEFAULT_MAX_INSTANCES,
            max_tables: DEFAULT_MAX_TABLES,
            max_memories: DEFAULT_MAX_MEMORIES,
            max_table_elements: DEFAULT_MAX_TABLE_ELEMENTS,
            call_budget_base: DEFAULT_CALL_BUDGET_BASE,
            call_budget_per_log: DEFAULT_CALL_BUDGET_PER_LOG,
            init_budget: DEFAULT_INIT_BUDGET,
            max_emits_per_record: DEFAULT_MAX_EMITS_PER_RECORD,
            max_emit_bytes: DEFAULT_MAX_EMIT_BYTES,
            max_call_output_bytes: DEFAULT_MAX_CALL_OUTPUT_BYTES,
            max_config_bytes: DEFAULT_MAX_CONFIG_BYTES,
            max_wasm_bytes: DEFAULT_MAX_WASM_BYTES,
            log_lines_per_second: DEFAULT_LOG_LINES_PER_SECOND,
            max_log_line_bytes: DEFAULT_MAX_LOG_LINE_BYTES,
            max_counters: DEFAULT_MAX_COUNTERS,
        }
    }
}

/// A limit that makes no sense; names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid plugin limit `{field}`: {problem}")]
pub struct LimitsError {
    /// The field of [`PluginLimits`].
    pub field: &'static str,
    /// What is wrong and what would be accepted.
    pub problem: String,
}

/// Smallest memory cap accepted: one wasm page (64 KiB) is the least a module can have.
const MIN_MEMORY_BYTES: usize = 64 << 10;

impl PluginLimits {
    /// Rejects zero caps and budgets below the epoch tick (they could never be met).
    pub fn validate(&self) -> Result<(), LimitsError> {
        let positive = [
            ("max_instances", self.max_instances),
            ("max_tables", self.max_tables),
            ("max_memories", self.max_memories),
            ("max_table_elements", self.max_table_elements),
            ("max_emits_per_record", self.max_emits_per_record),
            ("max_emit_bytes", self.max_emit_bytes),
            ("max_call_output_bytes", self.max_call_output_bytes),
            ("max_config_bytes", self.max_config_bytes),
            ("max_wasm_bytes", self.max_wasm_bytes),
            ("max_log_line_bytes", self.max_log_line_bytes),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(LimitsError {
                    field,
                    problem: "must be greater than 0".into(),
                });
            }
        }
        if self.max_memory_bytes < MIN_MEMORY_BYTES {
            return Err(LimitsError {
                field: "max_memory_bytes",
                problem: format!(
                    "{} bytes is less than one wasm page; use at least {MIN_MEMORY_BYTES}",
                    self.max_memory_bytes
                ),
            });
        }
        if self.max_emit_bytes > self.max_call_output_bytes {
            return Err(LimitsError {
                field: "max_emit_bytes",
                problem: format!(
                    "{} is larger than max_call_output_bytes ({}); one emit could never fit",
                    self.max_emit_bytes, self.max_call_output_bytes
                ),
            });
        }
        for (field, budget) in [
            ("call_budget_base", self.call_budget_base),
            ("init_budget", self.init_budget),
        ] {
            if budget < crate::engine::EPOCH_TICK {
                return Err(LimitsError {
                    field,
                    problem: format!(
                        "{budget:?} is shorter than the epoch tick ({:?}); use at least that",
                        crate::engine::EPOCH_TICK
                    ),
                });
            }
        }
        Ok(())
    }

    /// Time budget of one `process` call over `log_count` logs.
    pub fn call_budget(&self, log_count: usize) -> Duration {
        let per_log = self
            .call_budget_per_log
            .saturating_mul(u32::try_from(log_count).unwrap_or(u32::MAX));
        self.call_budget_base.saturating_add(per_log)
    }
}

/// Why the limiter refused something: kept in the store so the trap can be classified and
/// explained after wasmtime unwinds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// A linear memory wanted to grow from `current` to `desired` bytes past `limit`.
    Memory {
        current: usize,
        desired: usize,
        limit: usize,
    },
    /// A table wanted `desired` elements past `limit`.
    Table { desired: usize, limit: usize },
}

/// The `ResourceLimiter` of one store. Memory is summed over all linear memories of the
/// store (a component may have several), unlike `StoreLimits`, which caps each memory.
#[derive(Debug)]
pub(crate) struct StoreLimiter {
    limits: PluginLimits,
    /// Bytes of linear memory in use across the store.
    memory_in_use: usize,
    /// Highest `memory_in_use` seen (a recycling signal, docs/plugins.md §7 "Instances").
    pub(crate) memory_high_water: usize,
    /// The last refusal, taken by the trap classifier.
    pub(crate) refusal: Option<Refusal>,
}

impl StoreLimiter {
    pub(crate) fn new(limits: PluginLimits) -> Self {
        Self {
            limits,
            memory_in_use: 0,
            memory_high_water: 0,
            refusal: None,
        }
    }
}

impl wasmtime::ResourceLimiter for StoreLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self
            .memory_in_use
            .saturating_sub(current)
            .saturating_add(desired);
        if total > self.limits.max_memory_bytes {
            self.refusal = Some(Refusal::Memory {
                current: self.memory_in_use,
                desired: total,
                limit: self.limits.max_memory_bytes,
            });
            // An error (not `Ok(false)`) makes the grow a trap: the guest cannot swallow it
            // as a null allocation and limp on (the `trap_on_grow_failure` behaviour).
            wasmtime::bail!(
                "plugin memory limit reached: growing to {total} bytes, limit {}",
                self.limits.max_memory_bytes
            );
        }
        self.memory_in_use = total;
        self.memory_high_water = self.memory_high_water.max(total);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limits.max_table_elements {
            self.refusal = Some(Refusal::Table {
                desired,
                limit: self.limits.max_table_elements,
            });
            wasmtime::bail!(
                "plugin table limit reached: {desired} elements, limit {}",
                self.limits.max_table_elements
            );
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.limits.max_instances
    }

    fn tables(&self) -> usize {
        self.limits.max_tables
    }

    fn memories(&self) -> usize {
        self.limits.max_memories
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter as _;

    #[test]
    fn defaults_are_valid() {
        PluginLimits::default().validate().unwrap();
    }

    #[test]
    fn zero_and_tiny_limits_are_rejected_with_the_field_name() {
        let limits = PluginLimits {
            max_emits_per_record: 0,
            ..PluginLimits::default()
        };
        let err = limits.validate().unwrap_err();
        assert_eq!(err.field, "max_emits_per_record");
        assert!(err.to_string().contains("greater than 0"), "{err}");

        let limits = PluginLimits {
            max_memory_bytes: 1000,
            ..PluginLimits::default()
        };
        assert_eq!(limits.validate().unwrap_err().field, "max_memory_bytes");

        let limits = PluginLimits {
            call_budget_base: Duration::from_millis(1),
            ..PluginLimits::default()
        };
        let err = limits.validate().unwrap_err();
        assert_eq!(err.field, "call_budget_base");
        assert!(err.to_string().contains("epoch tick"), "{err}");

        let limits = PluginLimits {
            max_emit_bytes: 10,
            max_call_output_bytes: 5,
            ..PluginLimits::default()
        };
        assert_eq!(limits.validate().unwrap_err().field, "max_emit_bytes");
    }

    #[test]
    fn call_budget_grows_with_log_count() {
        let limits = PluginLimits::default();
        assert_eq!(limits.call_budget(0), Duration::from_millis(100));
        assert_eq!(limits.call_budget(500), Duration::from_millis(600));
        // No overflow panic for absurd counts.
        let _ = limits.call_budget(usize::MAX);
    }

    #[test]
    fn limiter_sums_memories_and_records_the_refusal() {
        let limits = PluginLimits {
            max_memory_bytes: 1 << 20,
            ..PluginLimits::default()
        };
        let mut limiter = StoreLimiter::new(limits);
        assert!(limiter.memory_growing(0, 512 << 10, None).unwrap());
        assert!(limiter.memory_growing(0, 512 << 10, None).unwrap());
        assert_eq!(limiter.memory_high_water, 1 << 20);
        let err = limiter
            .memory_growing(512 << 10, 576 << 10, None)
            .unwrap_err();
        assert!(err.to_string().contains("limit 1048576"), "{err}");
        assert_eq!(
            limiter.refusal,
            Some(Refusal::Memory {
                current: 1 << 20,
                desired: (1 << 20) + (64 << 10),
                limit: 1 << 20
            })
        );
    }
}
