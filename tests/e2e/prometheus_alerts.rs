//! The alert rules of deploy/prometheus with a real Prometheus (Debian's `prometheus`)
//! scraping `shipper run`: while the sink accepts events nothing fires; once the sink fails
//! every request, `ShipperSinkFailing` fires. The rules are used as shipped except their time
//! scales: `for:` durations become seconds and rate windows 10 s, so the test takes seconds
//! instead of the minutes an operator wants before a page. Every metric the rules and the
//! Grafana dashboard query is checked to exist in shipper's live `/metrics`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use shipper_test_artifacts as artifacts;
use shipper_test_support::eventually::eventually;
use shipper_test_support::hec_receiver::{Fault, HecReceiver};
use shipper_test_support::ports::reserve_port;

use crate::harness::dataset::Dataset;
use crate::harness::shipper::{RunConfig, ShipperProcess, http_get};
use crate::harness::sls::{LOGSTORE, PROJECT, SlsEnv, shipper_env};

/// A Prometheus server; killed and reaped on drop.
struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The shipped rules with test time scales: every `for: Nm` → `for: 2s`, every `[Nm]` range
/// → `[10s]`.
fn scaled_rules() -> String {
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus/shipper-alerts.yml"),
    )
    .expect("deploy/prometheus/shipper-alerts.yml");
    let mut out = String::new();
    for line in shipped.lines() {
        let line = match line.trim_start().strip_prefix("for: ") {
            Some(_) => format!("{}for: 2s", &line[..line.len() - line.trim_start().len()]),
            None => {
                let mut l = line.to_owned();
                for window in ["[5m]", "[10m]", "[15m]"] {
                    l = l.replace(window, "[10s]");
                }
                l
            }
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Firing alerts' names, from Prometheus's API.
fn firing(prometheus: std::net::SocketAddr) -> Result<Vec<String>, String> {
    let body = http_get(prometheus, "/api/v1/alerts").ok_or("Prometheus does not answer")?;
    let doc: serde_json::Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
    Ok(doc["data"]["alerts"]
        .as_array()
        .ok_or_else(|| format!("no alerts list: {body}"))?
        .iter()
        .filter(|a| a["state"] == "firing")
        .filter_map(|a| a["labels"]["alertname"].as_str().map(str::to_owned))
        .collect())
}

#[test]
fn a_real_prometheus_fires_the_sink_alert_when_the_sink_fails() {
    let prometheus_bin = which("prometheus").unwrap_or_else(|| {
        panic!("prometheus is not installed: apt-get install prometheus (.ci/run does)")
    });
    let env = SlsEnv::start("prometheus-alerts", 2);
    let mut ds = Dataset::new(2, 50);
    env.load(&mut ds, 2_000);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let hec = rt.block_on(HecReceiver::start_default());
    let cfg = RunConfig::new(
        &env.endpoint(),
        PROJECT,
        LOGSTORE,
        "e2e-prometheus",
        Path::new(artifacts::PLUGIN_SPLUNK_HEC),
        &env.dir().join("dead-letter.jsonl"),
    )
    .hec_sink(&hec.url());
    let mut shipper = ShipperProcess::start(env.dir(), "shipper", &cfg, &[], &shipper_env());
    let metrics = shipper.metrics_addr();

    let dir = env.dir().join("prometheus");
    std::fs::create_dir_all(&dir).expect("prometheus dir");
    std::fs::write(dir.join("rules.yml"), scaled_rules()).expect("rules");
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files: [rules.yml]\n\
             scrape_configs:\n  - job_name: shipper\n    static_configs:\n      - targets: ['{metrics}']\n"
        ),
    )
    .expect("prometheus.yml");
    let web = reserve_port();
    let web_addr: std::net::SocketAddr = format!("127.0.0.1:{}", web.port()).parse().unwrap();
    drop(web);
    let log = std::fs::File::create(dir.join("prometheus.log")).expect("log");
    let child = Command::new(prometheus_bin)
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={web_addr}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start prometheus");
    let _prometheus = Prometheus(child);
    let prometheus_log = || std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();

    // Healthy: Prometheus scrapes shipper, events flow, nothing fires.
    eventually("Prometheus scraping shipper while events flow", || {
        let up = http_get(
            web_addr,
            "/api/v1/query?query=shipper_sink_events_accepted_total",
        )
        .ok_or_else(|| format!("Prometheus not answering yet\n{}", prometheus_log()))?;
        if up.contains("\"value\"") && hec.event_count() > 0 {
            Ok(())
        } else {
            Err(up)
        }
    });
    let now = firing(web_addr).expect("alerts");
    assert!(
        !now.contains(&"ShipperSinkFailing".to_owned()),
        "fired while healthy: {now:?}"
    );
    // Every series the shipped rules and dashboard query is one shipper exports: a renamed
    // metric would otherwise leave an alert that can never fire and an empty panel.
    let exported = shipper.scrape().expect("/metrics").0;
    let families: BTreeSet<&str> = exported
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    for file in [
        "deploy/prometheus/shipper-alerts.yml",
        "deploy/grafana/shipper-dashboard.json",
    ] {
        let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file))
            .expect("shipped file");
        // Static credentials never expire, so their expiry gauge is absent by design;
        // run_credentials checks it with expiring ones.
        for name in queried_metrics(&text)
            .into_iter()
            .filter(|n| n != "shipper_sls_credential_expiry_seconds")
        {
            let family = ["_total", "_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(&name);
            assert!(
                families.contains(family),
                "{file} queries {name}, which shipper does not export; it exports {families:?}"
            );
        }
    }

    // The sink fails every request from now on; new logs keep shipper trying.
    // More failures than the test can use (shipper retries within a second at most).
    hec.push_fault(Fault::busy(), 100_000);
    env.load(&mut ds, 2_000);
    eventually("ShipperSinkFailing firing in Prometheus", || {
        shipper.assert_running();
        let now = firing(web_addr)?;
        if now.iter().any(|a| a == "ShipperSinkFailing") {
            Ok(())
        } else {
            Err(format!("firing: {now:?}"))
        }
    });
    shipper.kill();
}

/// The `shipper_…` metric names an alert rule file or a dashboard queries.
fn queried_metrics(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("shipper_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}
