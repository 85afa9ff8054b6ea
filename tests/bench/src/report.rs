//! The human tables and the JSON summary. Figures only: nothing here judges speed; the one
//! verdict, [`Summary::harness_ok`], is about counting (every event of every run arrived,
//! none malformed).

use std::path::Path;

use anyhow::Context as _;

use crate::dataset::Totals;
use crate::machine::MachineInfo;
use crate::measure::RunResult;
use crate::stages::{Limit, StageCosts};

/// Prints the stage table and the limits.
pub fn print_stages(c: &StageCosts) {
    println!(
        "\nstage micro-benchmarks (one thread on the subject CPU, thread CPU time, best of 3; sample {} logs, {:.0} B raw/log):",
        c.sample_logs, c.raw_bytes_per_log
    );
    let rows = [
        (
            "pull_decode",
            c.pull_decode,
            "lz4 decompress + split into LogGroups",
        ),
        (
            "plugin_hec",
            c.plugin_hec,
            "splunk-hec through PluginInstance::process",
        ),
        (
            "render_hec",
            c.render_hec,
            "HEC envelope into the EventBatch",
        ),
        ("gzip_l1", c.gzip_l1, "gzip level 1 of ~1 MB batch bodies"),
        (
            "plugin_syslog",
            c.plugin_syslog,
            "syslog-kv through PluginInstance::process",
        ),
        (
            "render_syslog",
            c.render_syslog,
            "RFC 5424 + octet counting",
        ),
        (
            "tls_encrypt",
            c.tls_encrypt,
            "rustls/ring records from 256 KiB batches",
        ),
    ];
    for (name, us, what) in rows {
        println!("  {name:<14} {us:>7.3} µs/log   {what}");
    }
    println!(
        "  {:<14} {:>7.3} ns/byte  loopback TCP write, 64 KiB chunks (sender CPU)",
        "tcp_send", c.tcp_ns_per_byte
    );
    println!(
        "  bytes per log: HEC {:.0}, gzip {:.0}, syslog {:.0}, TLS {:.0}",
        c.hec_bytes_per_log, c.gzip_bytes_per_log, c.syslog_bytes_per_log, c.tls_bytes_per_log
    );
    println!("per-core limit = raw bytes per log / Σ stage µs per log:");
    for l in c.limits() {
        let parts: Vec<String> = l
            .stages
            .iter()
            .map(|(s, us)| format!("{s} {:.0}%", 100.0 * us / l.us_per_log))
            .collect();
        println!(
            "  {:<20} {:>6.3} µs/log → {:>6.1} raw MB/s ({:>7.0} logs/s)   [{}]",
            l.path,
            l.us_per_log,
            l.raw_mb_per_s,
            1e6 / l.us_per_log,
            parts.join(", ")
        );
    }
}

/// One line per finished run.
pub fn print_progress(r: &RunResult) {
    println!(
        "  {:<20} {:>9} logs {:>8.1} MB  {:>6.1} s  {:>7.2} CPU-s  {:>7.1} MB/CPU-s  lost {} dup {}{}{}",
        r.subject,
        r.expected_logs,
        r.raw_bytes as f64 / 1e6,
        r.wall_s,
        r.cpu_s,
        r.raw_mb_per_cpu_s,
        r.lost,
        r.duplicated,
        match (r.latency_p50_ms, r.latency_p99_ms) {
            (Some(a), Some(b)) => format!("  p50 {a:.0} ms p99 {b:.0} ms"),
            _ => String::new(),
        },
        r.error
            .as_deref()
            .map(|e| format!("\n    ERROR: {e}"))
            .unwrap_or_default()
    );
}

/// A shipper-vs-baseline comparison.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Ratio {
    /// The shipper subject.
    pub shipper: String,
    /// The baseline subject.
    pub baseline: String,
    /// shipper / baseline, raw MB per CPU-second.
    pub per_cpu_s: f64,
    /// shipper / baseline, wall-clock raw MB/s.
    pub wall: f64,
}

/// A shipper run against its per-core limit.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OfLimit {
    /// The shipper subject.
    pub subject: String,
    /// Its raw MB per CPU-second.
    pub raw_mb_per_cpu_s: f64,
    /// The limit, raw MB/s per core.
    pub limit_raw_mb_per_s: f64,
    /// The first as a percentage of the second.
    pub percent: f64,
}

/// Everything one benchmark run produced.
#[derive(Debug, serde::Serialize)]
pub struct Summary {
    /// Options.
    pub config: serde_json::Value,
    /// The machine.
    pub machine: MachineInfo,
    /// Subjects pinned to CPU 1, rig to CPU 0.
    pub pinned: bool,
    /// The full backlog.
    pub data_full: Totals,
    /// The seed HEC script's prefix.
    pub data_seed_hec_prefix: Totals,
    /// The other Python subjects' prefix.
    pub data_python_prefix: Totals,
    /// Stage costs.
    pub stages: Option<StageCosts>,
    /// Per-core limits.
    pub limits: Vec<Limit>,
    /// Every run.
    pub runs: Vec<RunResult>,
    /// shipper / baseline ratios (saturation runs).
    pub ratios: Vec<Ratio>,
    /// shipper runs as a percentage of their limits.
    pub of_limit: Vec<OfLimit>,
}

const COMPARISONS: [(&str, &str); 5] = [
    ("shipper-hec", "seed-hec"),
    ("shipper-hec", "careful-hec"),
    ("shipper-hec-nogzip", "seed-hec"),
    ("shipper-syslog-tcp", "seed-syslog-tcp"),
    ("shipper-syslog-tls", "seed-syslog-tcp"),
];

impl Summary {
    /// Derives the ratios and percentages.
    #[expect(clippy::too_many_arguments, reason = "one flat record")]
    pub fn new(
        config: &serde_json::Value,
        machine: MachineInfo,
        pinned: bool,
        data_full: Totals,
        data_seed_hec_prefix: Totals,
        data_python_prefix: Totals,
        stages: Option<StageCosts>,
        runs: Vec<RunResult>,
    ) -> Self {
        let sat = |name: &str| {
            runs.iter()
                .find(|r| r.kind == "saturation" && r.subject == name && r.complete)
        };
        let ratios = COMPARISONS
            .iter()
            .filter_map(|(s, b)| {
                let (s, b) = (sat(s)?, sat(b)?);
                Some(Ratio {
                    shipper: s.subject.clone(),
                    baseline: b.subject.clone(),
                    per_cpu_s: s.raw_mb_per_cpu_s / b.raw_mb_per_cpu_s,
                    wall: s.raw_mb_per_s / b.raw_mb_per_s,
                })
            })
            .collect();
        let limits = stages.as_ref().map(StageCosts::limits).unwrap_or_default();
        let of_limit = limits
            .iter()
            .filter_map(|l| {
                let r = sat(l.path)?;
                Some(OfLimit {
                    subject: r.subject.clone(),
                    raw_mb_per_cpu_s: r.raw_mb_per_cpu_s,
                    limit_raw_mb_per_s: l.raw_mb_per_s,
                    percent: 100.0 * r.raw_mb_per_cpu_s / l.raw_mb_per_s,
                })
            })
            .collect();
        Self {
            config: config.clone(),
            machine,
            pinned,
            data_full,
            data_seed_hec_prefix,
            data_python_prefix,
            stages,
            limits,
            runs,
            ratios,
            of_limit,
        }
    }

    /// Every run counted every event, none malformed, no subject failed.
    pub fn harness_ok(&self) -> bool {
        self.runs.iter().all(|r| {
            r.error.is_none() && r.complete && r.lost == 0 && r.invalid == 0 && r.unexpected == 0
        })
    }

    /// Prints the tables.
    pub fn print(&self) {
        let m = &self.machine;
        println!(
            "\n=== shipper-bench results — {}, {} ({} vCPU, {:.0} GiB), kernel {}, git {}, load at start {} ===",
            m.date, m.cpu_model, m.cpus, m.mem_gib, m.kernel, m.git, m.load_average
        );
        println!(
            "{}",
            if self.pinned {
                "subject pinned to CPU 1, emulator + receivers (rig) to CPU 0"
            } else {
                "NOT pinned"
            }
        );
        println!(
            "\nthroughput (saturation: backlog from the beginning; CPU = subject utime+stime incl. start-up; wall = first → last event):"
        );
        println!(
            "{:<24} {:>8} {:>9} {:>9} {:>7} {:>8} {:>9} {:>7} {:>9} {:>9} {:>7} {:>5} {:>4} {:>5} {:>5} {:>5} {:>5}",
            "subject",
            "raw MB",
            "logs",
            "received",
            "wall s",
            "MB/s",
            "logs/s",
            "CPU-s",
            "MB/CPU-s",
            "logs/CPU",
            "RSS MiB",
            "lost",
            "dup",
            "sub%",
            "wait%",
            "rig%",
            "ckpt"
        );
        for r in self.runs.iter().filter(|r| r.kind == "saturation") {
            let busy = |cpu: f64| {
                if r.wall_from_start_s > 0.0 {
                    100.0 * cpu / r.wall_from_start_s
                } else {
                    0.0
                }
            };
            println!(
                "{:<24} {:>8.1} {:>9} {:>9} {:>7.2} {:>8.1} {:>9.0} {:>7.2} {:>9.2} {:>9.0} {:>7.1} {:>5} {:>4} {:>5.0} {:>5.0} {:>5.0} {:>5}{}",
                r.subject,
                r.raw_bytes as f64 / 1e6,
                r.expected_logs,
                r.received_events,
                r.wall_s,
                r.raw_mb_per_s,
                r.logs_per_s,
                r.cpu_s,
                r.raw_mb_per_cpu_s,
                r.logs_per_cpu_s,
                r.peak_rss_mib,
                r.lost,
                r.duplicated,
                busy(r.cpu_s),
                busy(r.cpu_wait_s),
                busy(r.rig_cpu_s),
                if r.checkpoints_at_end { "yes" } else { "no" },
                r.error
                    .as_deref()
                    .map(|e| format!("  ERROR: {e}"))
                    .unwrap_or_default()
            );
        }
        println!(
            "  (over process start → last event: sub% = subject CPU; wait% = subject runnable but waiting for its CPU (others' work);\n   rig% = emulator + receivers CPU, should stay < 80 %; ckpt = every checkpoint reached its end cursor)"
        );
        if !self.ratios.is_empty() {
            println!("\nratios (saturation, shipper / baseline):");
            for r in &self.ratios {
                println!(
                    "  {:<20} / {:<16} raw MB per CPU-s ×{:>7.1}   wall-clock MB/s ×{:>7.1}",
                    r.shipper, r.baseline, r.per_cpu_s, r.wall
                );
            }
        }
        if !self.of_limit.is_empty() {
            println!("\nend to end vs the per-core limit (stage micro-benchmarks above):");
            for o in &self.of_limit {
                println!(
                    "  {:<20} {:>7.1} raw MB/CPU-s of a {:>6.1} MB/s limit = {:>5.1} %",
                    o.subject, o.raw_mb_per_cpu_s, o.limit_raw_mb_per_s, o.percent
                );
            }
        }
        let trickles: Vec<&RunResult> = self.runs.iter().filter(|r| r.kind == "trickle").collect();
        if !trickles.is_empty() {
            println!("\nlatency (trickle: generation → receipt, after the warm-up):");
            println!(
                "{:<20} {:>8} {:>8} {:>5} {:>4} {:>9} {:>9} {:>9} {:>9} {:>7} {:>7}",
                "subject",
                "logs/s",
                "logs",
                "lost",
                "dup",
                "p50 ms",
                "p99 ms",
                "p99.9 ms",
                "max ms",
                "CPU-s",
                "RSS MiB"
            );
            let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.0}"));
            for r in trickles {
                println!(
                    "{:<20} {:>8.0} {:>8} {:>5} {:>4} {:>9} {:>9} {:>9} {:>9} {:>7.2} {:>7.1}{}",
                    r.subject,
                    r.trickle_rate.unwrap_or(0.0),
                    r.expected_logs,
                    r.lost,
                    r.duplicated,
                    ms(r.latency_p50_ms),
                    ms(r.latency_p99_ms),
                    ms(r.latency_p999_ms),
                    ms(r.latency_max_ms),
                    r.cpu_s,
                    r.peak_rss_mib,
                    r.error
                        .as_deref()
                        .map(|e| format!("  ERROR: {e}"))
                        .unwrap_or_default()
                );
            }
        }
    }

    /// Writes the JSON summary.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    }
}
