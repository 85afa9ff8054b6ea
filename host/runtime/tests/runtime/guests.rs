//! The test guests: each one is contained with the right error kind and a message that says
//! what happened and what to do; the host keeps working; a fresh instance works afterwards.
//! Test functions are named after the guest directory so `every_guest_has_a_test` can check
//! at compile time that none is forgotten.

use std::time::Duration;

use prost::Message as _;
use shipper_runtime::{
    ErrorKind, HecBody, LoadErrorKind, Payload, PluginError, PluginLimits, TrapKind,
};
use shipper_sls::proto::Log;
use shipper_test_artifacts as artifacts;

use crate::support::{
    assert_host_still_works, engine, fast_timeout_limits, group, load, load_with, log, process,
};

/// Fails to compile when a guest in tests/guests has no test function of its name here.
macro_rules! assert_test_exists {
    ($name:ident, $dir:literal, $path:expr) => {
        #[expect(
            unused_imports,
            reason = "the import only proves the test function exists"
        )]
        use self::$name as _;
    };
}
shipper_test_artifacts::foreach_guest!(assert_test_exists);

fn expect_trap(result: Result<impl std::fmt::Debug, PluginError>, kind: TrapKind) -> String {
    match result {
        Err(err @ PluginError::Trap { .. }) => {
            assert_eq!(err.trap_kind(), Some(kind), "{err}");
            assert!(err.is_trap());
            err.to_string()
        }
        other => panic!("expected a {kind} trap, got {other:?}"),
    }
}

fn expect_load_error(path: &str, kind: LoadErrorKind) -> String {
    let err = engine()
        .load(&artifacts::read(path), PluginLimits::default())
        .expect_err("the file must be refused");
    assert_eq!(err.load_kind(), Some(kind), "{err}");
    err.to_string()
}

#[tokio::test]
async fn echo() {
    let plugin = load(artifacts::GUEST_ECHO);
    assert_eq!(plugin.hash().len(), 64);
    let mut instance = plugin.instantiate("{}").await.unwrap();
    assert_eq!(instance.info().name, "echo");

    // Every log arrives intact: the guest returns each log's bytes.
    for group in shipper_sls::flat::samples::builtin_groups() {
        let results = process(&mut instance, &group).await.unwrap();
        assert_eq!(results.len(), group.logs.len());
        for (result, original) in results.iter().zip(&group.logs) {
            let emits = result.as_ref().unwrap();
            let Payload::Raw(bytes) = &emits[0].payload else {
                panic!("echo emits raw payloads")
            };
            assert_eq!(&Log::decode(bytes.as_slice()).unwrap(), original);
        }
    }
    let logs: u64 = shipper_sls::flat::samples::builtin_groups()
        .iter()
        .map(|g| g.logs.len() as u64)
        .sum();
    assert_eq!(plugin.counters().get("logs"), Some(logs));
    assert_eq!(
        instance.calls(),
        shipper_sls::flat::samples::builtin_groups().len() as u64
    );
    assert!(instance.memory_high_water() > 0);

    // A per-log error affects only that log.
    let mixed = group(vec![
        log(1, &[("a", "1")]),
        log(2, &[("bad", "x")]),
        log(3, &[]),
    ]);
    let results = process(&mut instance, &mixed).await.unwrap();
    assert!(results[0].is_ok() && results[2].is_ok());
    let err = results[1].as_ref().unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert_eq!(err.message, "content `bad` present");

    // An empty group is fine.
    assert!(
        process(&mut instance, &group(Vec::new()))
            .await
            .unwrap()
            .is_empty()
    );
}

/// A plugin built for WIT 0.1.0 (before `batch-formatter`) still loads as world `formatter` and
/// returns exactly what the same guest built for this host's WIT returns.
#[tokio::test]
async fn old_version() {
    let old = load(artifacts::GUEST_OLD_VERSION);
    assert_eq!(old.metadata().world, shipper_runtime::WORLD);
    assert!(
        old.metadata()
            .imports
            .iter()
            .any(|i| i == "shipper:plugin/host@0.1.0"),
        "{:?}",
        old.metadata()
    );
    let mut old = old.instantiate("{}").await.unwrap();
    let mut new = load(artifacts::GUEST_ECHO).instantiate("{}").await.unwrap();
    for group in shipper_sls::flat::samples::builtin_groups() {
        // The runtime's types have no `PartialEq`: compare their full debug form.
        let from_old = format!("{:?}", process(&mut old, &group).await.unwrap());
        let from_new = format!("{:?}", process(&mut new, &group).await.unwrap());
        assert_eq!(from_old, from_new);
    }
}

#[tokio::test]
async fn echo_init_and_batch_errors_are_reported_and_do_not_poison() {
    let plugin = load(artifacts::GUEST_ECHO);
    let err = plugin
        .instantiate(r#"{"fail_init": "field `index` is required"}"#)
        .await
        .unwrap_err();
    assert!(matches!(err, PluginError::Init { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("rejected its config: field `index` is required"),
        "{err}"
    );

    let mut instance = plugin
        .instantiate(r#"{"fail_batch": "upstream table missing"}"#)
        .await
        .unwrap();
    let sample = group(vec![log(1, &[("k", "v")])]);
    let err = process(&mut instance, &sample).await.unwrap_err();
    assert!(matches!(err, PluginError::Guest { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "plugin `echo@0.0.1` failed the batch: upstream table missing"
    );
    assert!(!instance.is_poisoned());
    assert!(
        process(&mut instance, &sample).await.is_err(),
        "still callable"
    );
}

#[tokio::test]
async fn config_over_the_cap_is_refused_before_init() {
    let plugin = load_with(
        artifacts::GUEST_ECHO,
        PluginLimits {
            max_config_bytes: 8,
            ..PluginLimits::default()
        },
    );
    let err = plugin.instantiate(r#"{"a": "long"}"#).await.unwrap_err();
    assert!(matches!(err, PluginError::Config(_)), "{err:?}");
    assert!(
        err.to_string().contains("13 bytes, over the limit of 8"),
        "{err}"
    );
}

#[tokio::test]
async fn spin_loop() {
    let plugin = load_with(artifacts::GUEST_SPIN_LOOP, fast_timeout_limits());
    let mut instance = plugin.instantiate("{}").await.unwrap();
    let sample = group(vec![log(1, &[("k", "v")]), log(2, &[("k", "w")])]);
    let message = expect_trap(process(&mut instance, &sample).await, TrapKind::Timeout);
    assert_eq!(
        message,
        "plugin `spin-loop@0.0.1` ran past its 52 ms budget for 2 logs and was interrupted. If \
         the plugin is merely slow, raise its time budget (`[plugin] timeout` for shipper run; \
         `PluginLimits::call_budget_*`); if it hangs on some input, that log is poison and will \
         be isolated; the instance was discarded"
    );
    assert!(instance.is_poisoned());
    let again = process(&mut instance, &sample).await.unwrap_err();
    assert!(
        matches!(
            again,
            PluginError::Poisoned {
                reason: TrapKind::Timeout,
                ..
            }
        ),
        "{again:?}"
    );
    assert!(
        again.to_string().contains("instantiate a new one"),
        "{again}"
    );

    // A fresh instance of the same plugin starts fine; the host is healthy.
    plugin.instantiate("{}").await.unwrap();
    assert_host_still_works().await;
}

#[tokio::test]
async fn spin_loop_yields_to_other_tasks_while_in_budget() {
    // On a current-thread runtime, a task running the looping plugin must still let another
    // task make progress: the call yields at every epoch tick.
    let plugin = load_with(
        artifacts::GUEST_SPIN_LOOP,
        PluginLimits {
            call_budget_base: Duration::from_millis(300),
            ..PluginLimits::default()
        },
    );
    let mut instance = plugin.instantiate("{}").await.unwrap();
    let sample = group(vec![log(1, &[])]);
    let ticker = tokio::spawn(async {
        let mut ticks = 0u32;
        loop {
            tokio::task::yield_now().await;
            ticks += 1;
            if ticks == 3 {
                return ticks;
            }
        }
    });
    let result = process(&mut instance, &sample).await;
    expect_trap(result, TrapKind::Timeout);
    assert!(
        ticker.is_finished(),
        "the other task ran while the plugin looped"
    );
}

#[tokio::test]
async fn grow_memory() {
    // This test is about the memory cap: give the call time enough that a loaded machine
    // cannot turn it into a deadline trap before the guest reaches the cap.
    let plugin = load_with(
        artifacts::GUEST_GROW_MEMORY,
        PluginLimits {
            call_budget_base: std::time::Duration::from_secs(30),
            ..PluginLimits::default()
        },
    );
    let mut instance = plugin.instantiate("{}").await.unwrap();
    let message = expect_trap(
        process(&mut instance, &group(vec![log(1, &[])])).await,
        TrapKind::Memory,
    );
    assert!(
        message.starts_with("plugin `grow-memory@0.0.1` tried to grow its memory from "),
        "{message}"
    );
    assert!(
        message.contains("over the limit of 67108864 bytes (limits.max_memory_bytes)"),
        "{message}"
    );
    assert!(instance.is_poisoned());
    assert!(instance.memory_high_water() <= 64 << 20);
    plugin.instantiate("{}").await.unwrap();
    assert_host_still_works().await;
}

#[tokio::test]
async fn deep_recursion() {
    let plugin = load(artifacts::GUEST_DEEP_RECURSION);
    let mut instance = plugin.instantiate("{}").await.unwrap();
    let message = expect_trap(
        process(&mut instance, &group(vec![log(1, &[("k", "v")])])).await,
        TrapKind::Other,
    );
    assert!(
        message.starts_with("plugin `deep-recursion@0.0.1` trapped: "),
        "{message}"
    );
    assert!(message.contains("call stack exhausted"), "{message}");
    assert!(message.ends_with("the instance was discarded"), "{message}");
    assert!(instance.is_poisoned());
    // The guest's stack is its own: the host thread and a fresh instance are fine.
    plugin.instantiate("{}").await.unwrap();
    assert_host_still_works().await;
}

#[tokio::test]
async fn slow_init() {
    let limits = PluginLimits {
        init_budget: Duration::from_millis(200),
        ..PluginLimits::default()
    };
    let plugin = load_with(artifacts::GUEST_SLOW_INIT, limits);
    let started = std::time::Instant::now();
    let err = plugin
        .instantiate("{}")
        .await
        .expect_err("an init that never returns must not give an instance");
    assert_eq!(err.trap_kind(), Some(TrapKind::Timeout), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("ran past its 200 ms budget for instantiation and init"),
        "{message}"
    );
    assert!(
        message.contains("Check that init does not loop"),
        "{message}"
    );
    // The epoch deadline interrupted the spinning guest itself; the outer timeout (for a
    // guest blocked in a host call) is only the second line of defence.
    assert!(!message.contains("while blocked"), "{message}");
    // Interrupted near its budget, not whenever the guest would have stopped (never).
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_host_still_works().await;
}

/// Many core instances or tables (an interpreter bundling modules, or a component built to
/// exhaust the host) are refused at instantiation when past the store's caps: the caps are
/// enforced by the store's limiter, shown here with a real component and caps set below
/// what it needs.
#[tokio::test]
async fn instance_and_table_caps_refuse_a_component_that_needs_more() {
    for (what, limits) in [
        (
            "instances",
            PluginLimits {
                max_instances: 1,
                ..PluginLimits::default()
            },
        ),
        (
            "tables",
            PluginLimits {
                max_tables: 1,
                ..PluginLimits::default()
            },
        ),
    ] {
        let plugin = load_with(artifacts::GUEST_ECHO, limits);
        let err = plugin
            .instantiate("{}")
            .await
            .expect_err("a component past the cap must not instantiate");
        let message = err.to_string();
        assert!(
            message.contains("resource limit exceeded")
                && message.contains(what.trim_end_matches('s')),
            "{what}: {message}"
        );
    }
    // The same component instantiates under the default caps.
    load(artifacts::GUEST_ECHO).instantiate("{}").await.unwrap();
    assert_host_still_works().await;
}

#[tokio::test]
async fn trap() {
    let plugin = load(artifacts::GUEST_TRAP);
    let mut instance = plugin.instantiate("{}").await.unwrap();
    let message = expect_trap(
        process(&mut instance, &group(vec![log(1, &[("k", "v")])])).await,
        TrapKind::Panic,
    );
    assert!(
        message.starts_with("plugin `trap@0.0.1` panicked or aborted (stderr: "),
        "{message}"
    );
    assert!(message.contains("boom: plugin bug on a"), "{message}");
    assert!(
        message.contains("This is a bug in the plugin: report it"),
        "{message}"
    );
    assert!(instance.is_poisoned());
    assert_host_still_works().await;
}

#[tokio::test]
async fn sandbox_escape() {
    // A real listener the guest is told to connect to: it must see no connection.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();

    let plugin = load(artifacts::GUEST_SANDBOX_ESCAPE);
    let mut instance = plugin
        .instantiate(&format!(r#"{{"connect": "{addr}"}}"#))
        .await
        .unwrap();
    let results = process(&mut instance, &group(vec![log(1, &[])]))
        .await
        .unwrap();
    let emits = results[0].as_ref().unwrap();
    let Payload::Hec(event) = &emits[0].payload else {
        panic!("the guest reports in an HEC text event")
    };
    let HecBody::Text(report) = &event.body else {
        panic!("text body")
    };
    let attempts: Vec<&str> = report.split("; ").collect();
    assert_eq!(attempts.len(), 10, "{report}");
    for attempt in &attempts {
        assert!(
            attempt.contains("=denied: "),
            "sandbox let this through: {attempt}"
        );
    }
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the guest reached the host's listener"
    );
    assert!(!instance.is_poisoned());
    assert_host_still_works().await;
}

#[tokio::test]
async fn wrong_length() {
    let plugin = load(artifacts::GUEST_WRONG_LENGTH);
    let mut instance = plugin.instantiate("{}").await.unwrap();
    let err = process(&mut instance, &group(vec![log(1, &[]), log(2, &[])]))
        .await
        .unwrap_err();
    assert!(matches!(err, PluginError::Output { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with(
            "plugin `wrong-length@0.0.1` returned invalid output: it returned 3 results for 2 \
             logs; a plugin must return exactly one result per log"
        ),
        "{err}"
    );
    assert!(!err.is_trap() && !instance.is_poisoned());
    assert_host_still_works().await;
}

#[tokio::test]
async fn huge_output() {
    let plugin = load(artifacts::GUEST_HUGE_OUTPUT);
    let sample = group(vec![log(1, &[]), log(2, &[("small", "")])]);

    let mut instance = plugin
        .instantiate(r#"{"mode": "many_emits"}"#)
        .await
        .unwrap();
    let results = process(&mut instance, &sample).await.unwrap();
    let err = results[0].as_ref().unwrap_err();
    assert_eq!(err.kind, ErrorKind::Internal);
    assert_eq!(
        err.message,
        "the plugin produced 1000 emits for this log, over the limit of 64 \
         (limits.max_emits_per_record)"
    );
    assert_eq!(
        results[1].as_ref().unwrap().len(),
        1,
        "the neighbour still ships"
    );

    let mut instance = plugin.instantiate(r#"{"mode": "big_emit"}"#).await.unwrap();
    let results = process(&mut instance, &sample).await.unwrap();
    assert_eq!(
        results[0].as_ref().unwrap_err().message,
        "emit 0 of this log is 2097152 bytes, over the limit of 1048576 bytes \
         (limits.max_emit_bytes)"
    );
    assert!(results[1].is_ok());

    let small_calls = load_with(
        artifacts::GUEST_HUGE_OUTPUT,
        PluginLimits {
            max_call_output_bytes: 1 << 20,
            ..PluginLimits::default()
        },
    );
    let mut instance = small_calls
        .instantiate(r#"{"mode": "total"}"#)
        .await
        .unwrap();
    let four = group((0..4).map(|i| log(i, &[])).collect());
    let err = process(&mut instance, &four).await.unwrap_err();
    assert!(matches!(err, PluginError::Output { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("passed 1048576 bytes at log 2 of 4, over the per-call limit"),
        "{err}"
    );
    assert!(!instance.is_poisoned());
    assert_host_still_works().await;
}

#[tokio::test]
async fn slow() {
    let plugin = load_with(artifacts::GUEST_SLOW, fast_timeout_limits());
    let logs = vec![
        log(1, &[("k", "a")]),
        log(2, &[("k", "b")]),
        log(3, &[("slow", "true")]),
        log(4, &[("k", "d")]),
    ];
    let mut instance = plugin.instantiate("{}").await.unwrap();
    expect_trap(
        process(&mut instance, &group(logs.clone())).await,
        TrapKind::Timeout,
    );

    // What poison bisection (docs/plugins.md §5.4) does: halves on fresh instances.
    let mut fresh = plugin.instantiate("{}").await.unwrap();
    let first_half = process(&mut fresh, &group(logs[..2].to_vec()))
        .await
        .unwrap();
    assert!(first_half.iter().all(Result::is_ok));
    let mut fresh = plugin.instantiate("{}").await.unwrap();
    expect_trap(
        process(&mut fresh, &group(logs[2..].to_vec())).await,
        TrapKind::Timeout,
    );
    let mut fresh = plugin.instantiate("{}").await.unwrap();
    let last = process(&mut fresh, &group(logs[3..].to_vec()))
        .await
        .unwrap();
    assert_eq!(last.len(), 1);
}

#[tokio::test]
async fn poison_json() {
    // The e2e dead-letter guest: json-plugin output plus a `formatter` field; a record error
    // for a `reject` log; a trap (with its message) for a `poison` log.
    let plugin = load(artifacts::GUEST_POISON_JSON);
    let mut instance = plugin.instantiate(r#"{"index":"main"}"#).await.unwrap();
    assert_eq!(instance.info().name, "guest-poison-json");
    let logs = vec![
        log(1_700_000_000, &[("seq", "1"), ("msg", "héllo")]),
        log(1_700_000_001, &[("seq", "2"), ("reject", "bad input")]),
    ];
    let results = process(&mut instance, &group(logs)).await.unwrap();
    let Payload::Hec(event) = &results[0].as_ref().unwrap()[0].payload else {
        panic!("not an HEC event: {results:?}")
    };
    let HecBody::Json(body) = &event.body else {
        panic!("not a JSON body: {event:?}")
    };
    assert_eq!(
        body,
        r#"{"__topic__":"test","__source__":"127.0.0.1","seq":"1","msg":"héllo"}"#
    );
    assert_eq!(event.index.as_deref(), Some("main"));
    assert_eq!(event.fields.len(), 1);
    assert_eq!(
        (event.fields[0].key.as_str(), event.fields[0].value.as_str()),
        ("formatter", "poison_json")
    );
    let err = results[1].as_ref().unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert_eq!(err.message, "log seq=2 rejected: bad input");

    let poisoned = group(vec![
        log(1, &[("seq", "3")]),
        log(2, &[("seq", "4"), ("poison", "1")]),
    ]);
    let message = expect_trap(process(&mut instance, &poisoned).await, TrapKind::Panic);
    assert!(message.contains("poison log seq=4"), "{message}");
    assert!(instance.is_poisoned());
}

#[tokio::test]
async fn wrong_version() {
    let message = expect_load_error(artifacts::GUEST_WRONG_VERSION, LoadErrorKind::WrongVersion);
    assert!(
        message.starts_with(
            "cannot load plugin: the plugin was built for shipper:plugin@0.2.0 (it imports \
             `shipper:plugin/"
        ),
        "{message}"
    );
    assert!(
        message.contains("this shipper runs shipper:plugin@0.1.1"),
        "{message}"
    );
    assert_host_still_works().await;
}

#[tokio::test]
async fn missing_export() {
    let message = expect_load_error(artifacts::GUEST_MISSING_EXPORT, LoadErrorKind::WrongWorld);
    assert_eq!(
        message,
        "cannot load plugin: the plugin does not export `process` (it exports: init); a \
         formatter must target world shipper:plugin/formatter@0.1.1 and export `init` and \
         `process`, or world shipper:plugin/batch-formatter@0.1.1 and export `init` and \
         `process-batch` — with the Rust SDK, add the `export!` line"
    );
    assert_host_still_works().await;
}

#[tokio::test]
async fn bad_import() {
    let message = expect_load_error(artifacts::GUEST_BAD_IMPORT, LoadErrorKind::DisallowedImport);
    assert!(
        message.starts_with("cannot load plugin: the plugin imports `shipper:guest/dial`, which"),
        "{message}"
    );
    assert_host_still_works().await;
}

#[tokio::test]
async fn core_module() {
    let message = expect_load_error(artifacts::GUEST_CORE_MODULE, LoadErrorKind::CoreModule);
    assert!(
        message.contains("is a core WebAssembly module, not a component; build the plugin with"),
        "{message}"
    );
    assert_host_still_works().await;
}

#[tokio::test]
async fn random_bytes_and_truncated_components_are_refused() {
    let err = engine()
        .load(b"#!/bin/sh\necho not wasm\n", PluginLimits::default())
        .unwrap_err();
    assert_eq!(err.load_kind(), Some(LoadErrorKind::NotWasm), "{err}");
    assert!(
        err.to_string()
            .contains("not WebAssembly (it starts with `23 21 2f 62"),
        "{err}"
    );

    let echo = artifacts::read(artifacts::GUEST_ECHO);
    let err = engine()
        .load(&echo[..echo.len() / 2], PluginLimits::default())
        .unwrap_err();
    assert_eq!(err.load_kind(), Some(LoadErrorKind::Compile), "{err}");
    assert!(
        err.to_string().contains("could not compile the component"),
        "{err}"
    );

    let err = engine()
        .load(
            &echo,
            PluginLimits {
                max_wasm_bytes: 1000,
                ..PluginLimits::default()
            },
        )
        .unwrap_err();
    assert_eq!(err.load_kind(), Some(LoadErrorKind::TooLarge), "{err}");

    let err = engine()
        .load(
            &echo,
            PluginLimits {
                max_memories: 0,
                ..PluginLimits::default()
            },
        )
        .unwrap_err();
    assert!(matches!(err, PluginError::Limits(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "invalid plugin limit `max_memories`: must be greater than 0"
    );
}

#[tokio::test]
async fn metadata_lists_imports_and_exports() {
    let plugin = load(artifacts::GUEST_ECHO);
    let meta = plugin.metadata();
    assert_eq!(meta.world, "shipper:plugin/formatter@0.1.1");
    assert!(meta.exports.iter().any(|e| e == "process"), "{meta:?}");
    assert!(
        meta.imports
            .iter()
            .any(|i| i.starts_with("shipper:plugin/host@0.1.")),
        "{meta:?}"
    );
    assert!(
        meta.imports.iter().any(|i| i.starts_with("wasi:cli/")),
        "{meta:?}"
    );
    assert_eq!(meta.size, artifacts::read(artifacts::GUEST_ECHO).len());
}

/// The benchmark's bytes-in guest formats every log of a realistic group into an HEC event
/// whose body is valid JSON holding the log's contents.
#[tokio::test]
async fn bench_bytes() {
    let plugin = load(artifacts::GUEST_BENCH_BYTES);
    let mut instance = plugin.instantiate("{}").await.unwrap();
    let group = shipper_sls::flat::samples::nginx_group(20);
    let results = process(&mut instance, &group).await.unwrap();
    assert_eq!(results.len(), 20);
    for (result, log) in results.iter().zip(&group.logs) {
        let Payload::Hec(event) = &result.as_ref().unwrap()[0].payload else {
            panic!("HEC payload")
        };
        let HecBody::Json(body) = &event.body else {
            panic!("JSON body")
        };
        let parsed: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(parsed.as_object().unwrap().len(), log.contents.len());
        assert_eq!(event.time.unwrap().seconds, i64::from(log.time));
        assert_eq!(event.source.as_deref(), Some("nginx_access"));
    }
}

/// The structured-record twin is not a shipper plugin (the runtime refuses it), and it
/// formats exactly like the bytes-in guest, so the benchmark compares interfaces only.
#[tokio::test]
async fn bench_structured() {
    let message = expect_load_error(
        artifacts::GUEST_BENCH_STRUCTURED,
        LoadErrorKind::DisallowedImport,
    );
    assert!(
        message.contains("imports `shipper-bench:structured/types@0.1.0`"),
        "{message}"
    );

    let group = shipper_sls::flat::samples::nginx_group(20);
    let bytes = shipper_sls::proto::encode_group(&group);
    let plugin = load(artifacts::GUEST_BENCH_BYTES);
    let mut instance = plugin.instantiate("{}").await.unwrap();
    let from_bytes = instance
        .process(&crate::support::batch(), &bytes, 20)
        .await
        .unwrap();

    let mut runner = crate::structured::StructuredRunner::new(&artifacts::read(
        artifacts::GUEST_BENCH_STRUCTURED,
    ))
    .await;
    let (meta, logs) = crate::structured::StructuredRunner::build(&bytes);
    let from_records = runner.process(&meta, &logs).await;
    assert_eq!(from_records.len(), from_bytes.len());
    for (a, b) in from_bytes.iter().zip(&from_records) {
        let (Payload::Hec(a), crate::structured::Payload::Hec(b)) = (
            &a.as_ref().unwrap()[0].payload,
            &b.as_ref().unwrap()[0].payload,
        ) else {
            panic!("both emit HEC events")
        };
        let (HecBody::Json(a_body), crate::structured::HecBody::Json(b_body)) = (&a.body, &b.body)
        else {
            panic!("both emit JSON bodies")
        };
        assert_eq!(a_body, b_body);
        assert_eq!(a.host, b.host);
        assert_eq!(a.source, b.source);
        let (ta, tb) = (a.time.unwrap(), b.time.unwrap());
        assert_eq!((ta.seconds, ta.nanos), (tb.seconds, tb.nanos));
    }
}
