//! `PluginInstance`: one `Store` + instance of a plugin, reused across batches by one shard
//! worker. Each call gets a time budget (epoch ticks, yielding to tokio while in budget), the
//! store's limiter caps memory, and the result is validated against the contract (one result
//! per log, output caps) before the caller sees it.
//!
//! A trap poisons the instance: wasmtime refuses to re-enter a component instance that
//! trapped (wasmtime #11086), so this type refuses too, with a clear error, and the caller
//! instantiates a fresh one ([`PluginInstance::is_poisoned`]). Isolating the poison log by
//! bisection (docs/plugins.md §5.4 "Poison logs and bisection") is the caller's job: it
//! calls `process` on sub-groups built with `LogGroupView::slice` on fresh instances.

use std::time::Duration;

use wasmtime::{Store, UpdateDeadline};

use crate::bindings::batch::BatchFormatter;
use crate::bindings::shipper::plugin::types::{ErrorKind, HecBody, Payload};
use crate::bindings::{BatchInfo, Emit, Formatter, PluginInfo, RecordError};
use crate::engine::EPOCH_TICK;
use crate::error::{PluginError, TrapKind};
use crate::host::HostState;
use crate::limits::Refusal;
use crate::plugin::{Plugin, WorldPre};

/// The instance's exports, of whichever world the plugin targets.
enum WorldBindings {
    PerLog(Formatter),
    Batch(BatchFormatter),
}

/// What `process` returns for each log: its emits, or why it could not be formatted.
pub type RecordResult = Result<Vec<Emit>, RecordError>;

/// What a call returned, before unpacking.
enum Returned {
    PerLog(Vec<RecordResult>),
    Batch(crate::bindings::shipper::plugin::types::BatchOutput),
}

/// Extra wall time past the epoch budget before the host abandons a call that is blocked in
/// a host function (e.g. a WASI sleep, where epoch checks do not run).
const BLOCKED_CALL_GRACE: Duration = Duration::from_millis(500);

/// One instance of a plugin with its own store.
pub struct PluginInstance {
    plugin: Plugin,
    store: Store<HostState>,
    bindings: WorldBindings,
    info: PluginInfo,
    label: String,
    poisoned: Option<TrapKind>,
    calls: u64,
}

impl std::fmt::Debug for PluginInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginInstance")
            .field("label", &self.label)
            .field("poisoned", &self.poisoned)
            .field("calls", &self.calls)
            .finish_non_exhaustive()
    }
}

/// Number of epoch ticks that cover `budget` (at least one).
fn ticks_for(budget: Duration) -> u64 {
    let ticks = budget.as_nanos().div_ceil(EPOCH_TICK.as_nanos());
    u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
}

impl PluginInstance {
    pub(crate) async fn start(
        plugin: Plugin,
        mut store: Store<HostState>,
        pre: &WorldPre,
        config_json: &str,
    ) -> Result<Self, PluginError> {
        store.limiter(|state| &mut state.limiter);
        // Count down the call's budget one tick at a time; yield to the executor at each
        // tick while in budget so a slow plugin never blocks a runtime thread.
        store.epoch_deadline_callback(|mut ctx| {
            let state = ctx.data_mut();
            state.ticks_left = state.ticks_left.saturating_sub(1);
            if state.ticks_left == 0 {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        let budget = plugin.limits().init_budget;
        let label = plugin.short_hash_label();
        // With epoch interruption on, a new store's deadline is "now": set it before
        // instantiating or even the start function traps (docs/plugins.md §6.4 "Time budget").
        store.data_mut().ticks_left = ticks_for(budget);
        store.set_epoch_deadline(1);

        let started = tokio::time::timeout(budget + BLOCKED_CALL_GRACE, async {
            wasmtime::Result::Ok(match pre {
                WorldPre::PerLog(pre) => {
                    let bindings = pre.instantiate_async(&mut store).await?;
                    let init = bindings.call_init(&mut store, config_json).await?;
                    (WorldBindings::PerLog(bindings), init)
                }
                WorldPre::Batch(pre) => {
                    let bindings = pre.instantiate_async(&mut store).await?;
                    let init = bindings.call_init(&mut store, config_json).await?;
                    (WorldBindings::Batch(bindings), init)
                }
            })
        })
        .await;
        let (bindings, init) = match started {
            Ok(Ok(done)) => done,
            Ok(Err(e)) => return Err(classify(&mut store, &e, &label, budget, None)),
            Err(_elapsed) => return Err(blocked_timeout(&label, budget, None)),
        };
        let info = init.map_err(|message| PluginError::Init {
            plugin: label.clone(),
            message,
        })?;
        let label = format!("{}@{}", info.name, info.version);
        store.data().log.set_label(&label);
        Ok(Self {
            plugin,
            store,
            bindings,
            info,
            label,
            poisoned: None,
            calls: 0,
        })
    }

    /// What `init` said about the plugin.
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// The plugin this instance runs.
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    /// True after a trap: every further call fails with [`PluginError::Poisoned`]; drop this
    /// instance and call `Plugin::instantiate` again.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.is_some()
    }

    /// Number of `process` calls made on this instance (a recycling signal).
    pub fn calls(&self) -> u64 {
        self.calls
    }

    /// Highest linear-memory total this instance reached, in bytes (a recycling signal:
    /// memory never shrinks, docs/plugins.md §7 "Instances").
    pub fn memory_high_water(&self) -> usize {
        self.store.data().limiter.memory_high_water
    }

    /// Formats one log group: `group` is one SLS `LogGroup` in protobuf wire encoding with
    /// `log_count` logs. Returns one result per log, in order. Must run inside a tokio
    /// runtime with the time driver enabled; the call yields to it at every epoch tick.
    ///
    /// Errors: [`PluginError::Trap`] (this instance is now poisoned),
    /// [`PluginError::Guest`] (the plugin failed the batch), [`PluginError::Output`] (the
    /// plugin broke the contract), [`PluginError::Poisoned`]. Per-emit and per-log output
    /// caps turn that log into a `RecordError` instead, so its neighbours still ship.
    pub async fn process(
        &mut self,
        batch: &BatchInfo,
        group: &[u8],
        log_count: usize,
    ) -> Result<Vec<RecordResult>, PluginError> {
        if let Some(reason) = self.poisoned {
            return Err(PluginError::Poisoned {
                plugin: self.label.clone(),
                reason,
            });
        }
        self.calls += 1;
        let budget = self.plugin.limits().call_budget(log_count);
        self.store.data_mut().ticks_left = ticks_for(budget);
        self.store.set_epoch_deadline(1);
        // Drop stderr from earlier calls so a trap quotes only its own output.
        let _ = self.store.data().log.take_stderr_tail();

        let call = tokio::time::timeout(budget + BLOCKED_CALL_GRACE, async {
            match &self.bindings {
                WorldBindings::PerLog(b) => {
                    let returned = b.call_process(&mut self.store, batch, group).await?;
                    wasmtime::Result::Ok(returned.map(Returned::PerLog))
                }
                WorldBindings::Batch(b) => {
                    let returned = b.call_process_batch(&mut self.store, batch, group).await?;
                    wasmtime::Result::Ok(returned.map(Returned::Batch))
                }
            }
        })
        .await;
        let returned = match call {
            Ok(Ok(returned)) => returned,
            Ok(Err(e)) => {
                let err = classify(&mut self.store, &e, &self.label, budget, Some(log_count));
                self.poisoned = err.trap_kind();
                return Err(err);
            }
            Err(_elapsed) => {
                self.poisoned = Some(TrapKind::Timeout);
                return Err(blocked_timeout(&self.label, budget, Some(log_count)));
            }
        };
        let results = match returned {
            Ok(Returned::PerLog(results)) => results,
            Ok(Returned::Batch(output)) => {
                crate::packed::unpack(output, log_count).map_err(|message| PluginError::Output {
                    plugin: self.label.clone(),
                    message,
                })?
            }
            Err(message) => {
                return Err(PluginError::Guest {
                    plugin: self.label.clone(),
                    message,
                });
            }
        };
        self.validate(results, log_count)
    }

    /// Checks the contract: exactly one result per log, and the output caps.
    fn validate(
        &self,
        mut results: Vec<RecordResult>,
        log_count: usize,
    ) -> Result<Vec<RecordResult>, PluginError> {
        if results.len() != log_count {
            return Err(PluginError::Output {
                plugin: self.label.clone(),
                message: format!(
                    "it returned {} results for {log_count} logs; a plugin must return exactly \
                     one result per log, in order (a bug in the plugin or its SDK: report it \
                     to the plugin author)",
                    results.len()
                ),
            });
        }
        let limits = self.plugin.limits();
        let mut total = 0usize;
        for (index, result) in results.iter_mut().enumerate() {
            let Ok(emits) = result else { continue };
            if emits.len() > limits.max_emits_per_record {
                *result = Err(host_record_error(format!(
                    "the plugin produced {} emits for this log, over the limit of {} \
                     (limits.max_emits_per_record)",
                    emits.len(),
                    limits.max_emits_per_record
                )));
                continue;
            }
            let mut record_bytes = 0usize;
            let mut oversized = None;
            for (emit_index, emit) in emits.iter().enumerate() {
                let size = emit_size(emit);
                if size > limits.max_emit_bytes {
                    oversized = Some((emit_index, size));
                    break;
                }
                record_bytes += size;
            }
            if let Some((emit_index, size)) = oversized {
                *result = Err(host_record_error(format!(
                    "emit {emit_index} of this log is {size} bytes, over the limit of {} bytes \
                     (limits.max_emit_bytes)",
                    limits.max_emit_bytes
                )));
                continue;
            }
            total += record_bytes;
            if total > limits.max_call_output_bytes {
                return Err(PluginError::Output {
                    plugin: self.label.clone(),
                    message: format!(
                        "its output passed {} bytes at log {index} of {log_count}, over the \
                         per-call limit (limits.max_call_output_bytes); lower the batch size or \
                         raise the limit",
                        limits.max_call_output_bytes
                    ),
                });
            }
        }
        Ok(results)
    }
}

/// A record error made by the host (output caps), in the plugin's own error type.
fn host_record_error(message: String) -> RecordError {
    RecordError {
        kind: ErrorKind::Internal,
        message,
    }
}

/// Bytes an emit carries (strings and bytes of its payload plus the route).
pub fn emit_size(emit: &Emit) -> usize {
    let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    let fields = |f: &[crate::bindings::shipper::plugin::types::Field]| {
        f.iter().map(|f| f.key.len() + f.value.len()).sum::<usize>()
    };
    let payload = match &emit.payload {
        Payload::Hec(hec) => {
            let body = match &hec.body {
                HecBody::Text(s) | HecBody::Json(s) => s.len(),
            };
            body + opt(&hec.host)
                + opt(&hec.source)
                + opt(&hec.sourcetype)
                + opt(&hec.index)
                + fields(&hec.fields)
        }
        Payload::Syslog(msg) => {
            msg.msg.len()
                + opt(&msg.hostname)
                + opt(&msg.app_name)
                + opt(&msg.proc_id)
                + opt(&msg.msg_id)
                + msg
                    .structured_data
                    .iter()
                    .map(|sd| sd.id.len() + fields(&sd.params))
                    .sum::<usize>()
        }
        Payload::Raw(bytes) => bytes.len(),
    };
    payload + opt(&emit.route)
}

fn describe_scope(budget: Duration, log_count: Option<usize>) -> String {
    match log_count {
        Some(1) => format!("its {} ms budget for 1 log", budget.as_millis()),
        Some(n) => format!("its {} ms budget for {n} logs", budget.as_millis()),
        None => format!(
            "its {} ms budget for instantiation and init",
            budget.as_millis()
        ),
    }
}

fn timeout_advice(log_count: Option<usize>) -> &'static str {
    match log_count {
        Some(_) => {
            "If the plugin is merely slow, raise its time budget (`[plugin] timeout` for \
             shipper run; `PluginLimits::call_budget_*`); if it hangs on some input, that log \
             is poison and will be isolated"
        }
        None => {
            "Check that init does not loop or wait (its budget is fixed in shipper run; \
             `PluginLimits::init_budget` for embedders)"
        }
    }
}

fn blocked_timeout(label: &str, budget: Duration, log_count: Option<usize>) -> PluginError {
    PluginError::Trap {
        kind: TrapKind::Timeout,
        message: format!(
            "plugin `{label}` ran past {} while blocked in a host call (e.g. a sleep) and was \
             abandoned; the instance was discarded. {}",
            describe_scope(budget, log_count),
            timeout_advice(log_count)
        ),
    }
}

/// Turns a wasmtime error from a call into a `PluginError` with the kind and the numbers.
fn classify(
    store: &mut Store<HostState>,
    error: &wasmtime::Error,
    label: &str,
    budget: Duration,
    log_count: Option<usize>,
) -> PluginError {
    let stderr = store.data().log.take_stderr_tail();
    let refusal = store.data_mut().limiter.refusal.take();
    let trap = error.downcast_ref::<wasmtime::Trap>().copied();
    let (kind, what) = if let Some(refusal) = refusal {
        let what = match refusal {
            Refusal::Memory {
                current,
                desired,
                limit,
            } => format!(
                "tried to grow its memory from {current} to {desired} bytes, over the limit of \
                 {limit} bytes (limits.max_memory_bytes). Raise the limit if the plugin really \
                 needs that much, otherwise it leaks or allocates without bound"
            ),
            Refusal::Table { desired, limit } => format!(
                "tried to grow a table to {desired} elements, over the limit of {limit} \
                 (limits.max_table_elements)"
            ),
        };
        (TrapKind::Memory, what)
    } else if trap == Some(wasmtime::Trap::Interrupt) {
        (
            TrapKind::Timeout,
            format!(
                "ran past {} and was interrupted. {}",
                describe_scope(budget, log_count),
                timeout_advice(log_count)
            ),
        )
    } else if trap == Some(wasmtime::Trap::UnreachableCodeReached) {
        let said = if stderr.is_empty() {
            String::from("no message on stderr")
        } else {
            format!("stderr: {stderr}")
        };
        (
            TrapKind::Panic,
            format!("panicked or aborted ({said}). This is a bug in the plugin: report it"),
        )
    } else {
        let mut what = format!("trapped: {}", root_message(error));
        if !stderr.is_empty() {
            what.push_str(&format!(" (stderr: {stderr})"));
        }
        (TrapKind::Other, what)
    };
    PluginError::Trap {
        kind,
        message: format!("plugin `{label}` {what}; the instance was discarded"),
    }
}

/// The innermost message of an error chain (the trap's own description).
fn root_message(error: &wasmtime::Error) -> String {
    error
        .chain()
        .last()
        .map_or_else(|| error.to_string(), ToString::to_string)
}
