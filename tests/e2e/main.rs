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

/// The official Rust SDK against `shipper emulator`: project forms (bare-endpoint create, UpdateProject), logs, consumer groups.
mod emulator_rust_sdk;

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

/// `[plugin.canary]`: a canary changing one field is reported by that field (also after a reload) and ships nothing.
mod run_canary;

/// `shipper reconcile`: OK after a full run; exactly the shard and range a test hook took out of the ledger.
mod run_reconcile;

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

/// deploy/prometheus alert rules in a real Prometheus scraping `shipper run`: the sink alert fires.
mod prometheus_alerts;

/// `shipper validate`: every problem named by its key (text and JSON), exit 0/2/3, `--connect`.
mod validate;

/// `shipper receive hec|syslog`, the development receiver: Splunk's answers, framing, bounded memory.
mod receive;
/// Temporary credentials: every provider ships through 15-second tokens; a refresh outage pauses and resumes.
mod run_credentials;

/// tinyproxy as the only route out of a network namespace: SLS and HEC over HTTPS through CONNECT, proxy auth, 407 and refusal errors.
mod run_proxy;

/// `shipper emulator --data-dir`: logs (byte for byte), cursors and a checkpoint survive a SIGTERM restart.
mod emulator_data_dir;

/// Four HEC endpoints, one slow, one killed and restarted: nothing lost, fair shares, back in rotation.
mod run_hec_endpoints;

/// Syslog failover between two real rsyslogs over TLS: primary killed, secondary takes over, traffic back.
mod run_syslog_failover;

/// HEC and rsyslog as two sinks with their own plugins; rsyslog down 20 s holds the checkpoints.
mod run_two_sinks;

/// Rate caps (events, bytes) against a backlog: ±5 % at the receiver, flat memory, lag grows then drains.
mod run_rate_cap;

/// A receiver refusing bodies over 100 KB: every log delivered, the request size adapted.
mod run_hec_413;

/// Event IDs: three kill -9s under load, de-duplication by ID gives exactly the written logs.
mod run_event_ids;

/// Reload of the whole config under load: plugin + config, sink settings, refusals.
mod run_reload;

/// Secrets (AccessKey secret, STS token, HEC token, proxy password) stay out of trace logs,
/// the command line, metrics and dead letters.
mod threat_secrets;

/// SLS 100 ms away with a per-shard read quota: delivered whole, refusals backed off.
mod run_distance;

/// Peak memory at 4, 64 and 256 shards against the memory budget (a measurement, ignored).
mod run_memory;

/// `shipper replay` (a window of 8 shards beside a live run, kill -9 and `--state`) and `shipper dead-letter replay`; bad input exits 2.
mod replay;
