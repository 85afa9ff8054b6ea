//! End-to-end tests: the real `shipper` binary against the emulator and real receivers.

/// `shipper plugin test` output of every plugin against tests/fixtures/plugins (golden files).
mod plugin_golden;

/// The Python, JavaScript and C splunk-hec plugins print the Rust plugin's golden bytes
/// through `shipper plugin test`; their build scripts name missing toolchains.
mod lang_plugins;

/// `shipper plugin new`: each language's project, generated outside the repository, builds
/// and passes its own test.sh; bad names and non-empty directories are refused.
mod plugin_new;

/// Real-process guards shared by scenarios (`harness::emulator`: `shipper emulator` on port 0).
mod harness;

/// The official Python SDK against `shipper emulator` (docs/sls-protocol.md §13.5, A0–A11).
mod emulator_sdk;

/// `shipper run` → HEC: 100k logs from 4 shards, each exactly once, seed format, checkpoints at the end.
mod run_hec;

/// Restart after SIGTERM (exactly once) and after SIGKILL (duplicates = uncommitted deliveries).
mod run_restart;

/// HEC down for a while (503 bursts, resets, error pages; absent at start) loses nothing.
mod run_sink_outage;

/// `shipper run` → real rsyslog over TCP and TLS with syslog-kv: each log once, byte-exact lines.
mod run_syslog;

/// Two instances split the shards; SIGKILL one, the other takes over; duplicates = uncommitted.
mod run_two_instances;

/// Poison (trap), record-error and HEC-refused logs → dead-letter file; neighbours delivered.
mod run_dead_letter;

/// Config errors (bad key, missing/wrong SLS secret, non-component plugin) exit non-zero with the fix.
mod run_config_errors;

/// Hot swap under load (splunk-hec → json → broken → failing self-test → guest): exactly once, ordered per shard.
mod run_hot_swap;

/// The crash-loop breaker: rollback of a bad swap, passthrough, pause until a SIGHUP fix.
mod run_breaker;

/// Several logstores in one process, with an SPL filter applied by SLS.
mod run_multi;

/// `/metrics` and `/health` report what was shipped; a down sink stops the pulls (back-pressure).
mod run_metrics;

/// No config file: the seed scripts' environment variables alone.
mod run_env_only;

/// A plugin that hangs on some logs: bisection on timeouts dead-letters them, the rest ship once.
mod run_slow_plugin;

/// SLS PullLogs 503s/quota errors and failed heartbeats: each log once, retries counted in `/metrics`.
mod run_sls_faults;

/// `shipper validate`: every problem named by its key (text and JSON), exit 0/2/3, `--connect`.
mod validate;

/// `shipper receive hec|syslog`, the development receiver: Splunk's answers, framing, bounded memory.
mod receive;

/// `shipper emulator --data-dir`: logs (byte for byte), cursors and a checkpoint survive a SIGTERM restart.
mod emulator_data_dir;
