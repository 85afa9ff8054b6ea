//! Stage micro-benchmarks and the per-core limit (README.md "Performance").
//!
//! Each stage of shipper's data path is timed on its own, on one thread pinned to the
//! subject's CPU, over a sample of the benchmark data, with the production code where it is
//! a library (lz4 + `split_log_groups` from shipper-sls, the plugins through
//! shipper-runtime's `PluginInstance::process`, the sinks' `render`, the HEC sink's gzip (ISA-L at level 1),
//! rustls with ring) and the thread's own CPU clock (so other work on the machine does not
//! count). Each figure is the best of three rounds, in µs per log:
//!
//! | stage | what is timed |
//! |---|---|
//! | `pull_decode` | lz4 decompress of a PullLogs body (≤ 8 MiB raw, as the emulator serves) + split into LogGroups |
//! | `plugin_hec` / `plugin_syslog` | splunk-hec / syslog-kv through the runtime, one call per LogGroup |
//! | `render_hec` / `render_syslog` | the sink's `render` of each emit into an `EventBatch` (HEC envelope / RFC 5424 octet-counted) |
//! | `gzip_l1` | gzip level 1 of each ~1 MB HEC batch body |
//! | `tls_encrypt` | rustls client: write each 256 KiB syslog batch, produce TLS records |
//! | `tcp_send` | loopback TCP `write` in 64 KiB chunks, per byte × the bytes each path sends |
//!
//! The limit of a path is `1 / Σ (its stages' µs per log)` logs/s, times the raw bytes per
//! log. Not timed (small per log): the HTTP exchange of PullLogs and HEC requests
//! beyond the socket write, the consumer-group protocol, tokio scheduling.

use std::io::{Read as _, Write as _};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use shipper_runtime::{BatchInfo, PluginEngine, PluginLimits, Timestamp as RtTimestamp};
use shipper_sinks::{EventBatch, Payload, Sink, SinkConfig};
use shipper_sls::codec::{self, Compression};
use shipper_sls::proto;
use tokio_util::sync::CancellationToken;

use crate::dataset::{Group, Shards};
use crate::machine;

/// PullLogs raw body size cap the emulator serves by default.
const PULL_BODY_BYTES: usize = 8 << 20;

/// Per-log costs (µs) and sizes (bytes) measured on the sample.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StageCosts {
    /// Logs in the sample.
    pub sample_logs: u64,
    /// Raw bytes per log (LogGroupList encoding).
    pub raw_bytes_per_log: f64,
    /// µs per log: lz4 + split.
    pub pull_decode: f64,
    /// µs per log: splunk-hec plugin call.
    pub plugin_hec: f64,
    /// µs per log: HEC envelope + batch.
    pub render_hec: f64,
    /// µs per log: gzip level 1.
    pub gzip_l1: f64,
    /// µs per log: syslog-kv plugin call.
    pub plugin_syslog: f64,
    /// µs per log: RFC 5424 render + octet counting.
    pub render_syslog: f64,
    /// µs per log: TLS record encryption.
    pub tls_encrypt: f64,
    /// ns per byte written to a loopback TCP socket.
    pub tcp_ns_per_byte: f64,
    /// HEC JSON bytes per log.
    pub hec_bytes_per_log: f64,
    /// gzip bytes per log.
    pub gzip_bytes_per_log: f64,
    /// Syslog bytes per log (framed).
    pub syslog_bytes_per_log: f64,
    /// TLS bytes per log.
    pub tls_bytes_per_log: f64,
}

/// One path's limit.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Limit {
    /// Path name (matches the shipper subject).
    pub path: &'static str,
    /// Σ stage costs, µs per log.
    pub us_per_log: f64,
    /// Raw MB/s one core could do if only these stages cost anything.
    pub raw_mb_per_s: f64,
    /// `(stage, µs per log)`.
    pub stages: Vec<(&'static str, f64)>,
}

impl StageCosts {
    /// The per-core limits of the four shipper paths.
    pub fn limits(&self) -> Vec<Limit> {
        let tcp = |bytes: f64| self.tcp_ns_per_byte * bytes / 1_000.0;
        let paths: [(&'static str, Vec<(&'static str, f64)>); 4] = [
            (
                "shipper-hec",
                vec![
                    ("pull_decode", self.pull_decode),
                    ("plugin_hec", self.plugin_hec),
                    ("render_hec", self.render_hec),
                    ("gzip_l1", self.gzip_l1),
                    ("tcp_send", tcp(self.gzip_bytes_per_log)),
                ],
            ),
            (
                "shipper-hec-nogzip",
                vec![
                    ("pull_decode", self.pull_decode),
                    ("plugin_hec", self.plugin_hec),
                    ("render_hec", self.render_hec),
                    ("tcp_send", tcp(self.hec_bytes_per_log)),
                ],
            ),
            (
                "shipper-syslog-tcp",
                vec![
                    ("pull_decode", self.pull_decode),
                    ("plugin_syslog", self.plugin_syslog),
                    ("render_syslog", self.render_syslog),
                    ("tcp_send", tcp(self.syslog_bytes_per_log)),
                ],
            ),
            (
                "shipper-syslog-tls",
                vec![
                    ("pull_decode", self.pull_decode),
                    ("plugin_syslog", self.plugin_syslog),
                    ("render_syslog", self.render_syslog),
                    ("tls_encrypt", self.tls_encrypt),
                    ("tcp_send", tcp(self.tls_bytes_per_log)),
                ],
            ),
        ];
        paths
            .into_iter()
            .map(|(path, stages)| {
                let us: f64 = stages.iter().map(|(_, c)| c).sum();
                Limit {
                    path,
                    us_per_log: us,
                    raw_mb_per_s: self.raw_bytes_per_log / us,
                    stages,
                }
            })
            .collect()
    }
}

/// Where the plugins and certificates are.
#[derive(Debug, Clone)]
pub struct StageInputs {
    /// splunk-hec component.
    pub hec_plugin: std::path::PathBuf,
    /// syslog-kv component.
    pub syslog_plugin: std::path::PathBuf,
    /// Server certificate and key (PEM) for the in-memory TLS peer.
    pub server_cert: std::path::PathBuf,
    /// Server key.
    pub server_key: std::path::PathBuf,
    /// CA that signed it.
    pub ca: std::path::PathBuf,
}

/// Best of three rounds of `f` (which returns the logs it processed), each round at least
/// `secs` of this thread's CPU time; µs of thread CPU per log.
fn best_us_per_log(secs: f64, mut f: impl FnMut() -> u64) -> f64 {
    std::hint::black_box(f());
    let budget = Duration::from_secs_f64(secs);
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let start = machine::thread_cpu();
        let mut logs = 0u64;
        while machine::thread_cpu() - start < budget || logs == 0 {
            logs += std::hint::black_box(f());
        }
        let us = (machine::thread_cpu() - start).as_secs_f64() * 1e6 / logs as f64;
        best = best.min(us);
    }
    best
}

/// A sample of about `max_logs` logs, taken from every shard in turn.
fn sample(data: &Shards, max_logs: u64) -> Vec<Group> {
    let mut out = Vec::new();
    let mut logs = 0u64;
    let deepest = data.0.iter().map(Vec::len).max().unwrap_or(0);
    'outer: for i in 0..deepest {
        for shard in &data.0 {
            if let Some(g) = shard.get(i) {
                out.push(g.clone());
                logs += u64::from(g.logs);
                if logs >= max_logs {
                    break 'outer;
                }
            }
        }
    }
    out
}

/// LogGroupList bodies of at most [`PULL_BODY_BYTES`] raw: (lz4 body, raw size, logs).
fn pull_bodies(groups: &[Group]) -> Vec<(Vec<u8>, usize, u64)> {
    let mut bodies = Vec::new();
    let mut raw = Vec::with_capacity(PULL_BODY_BYTES + (1 << 20));
    let mut logs = 0u64;
    let mut flush = |raw: &mut Vec<u8>, logs: &mut u64| {
        if !raw.is_empty() {
            bodies.push((codec::compress_lz4(raw), raw.len(), *logs));
            raw.clear();
            *logs = 0;
        }
    };
    for g in groups {
        if raw.len() + g.bytes.len() > PULL_BODY_BYTES {
            flush(&mut raw, &mut logs);
        }
        raw.push(0x0a);
        let mut v = g.bytes.len() as u64;
        while v >= 0x80 {
            raw.push((v as u8) | 0x80);
            v >>= 7;
        }
        raw.push(v as u8);
        raw.extend_from_slice(&g.bytes);
        logs += u64::from(g.logs);
    }
    flush(&mut raw, &mut logs);
    bodies
}

/// Times `plugin` over `groups`; returns µs per log and every emit (as sink payloads).
fn plugin_stage(
    rt: &tokio::runtime::Runtime,
    engine: &PluginEngine,
    wasm: &std::path::Path,
    groups: &[Group],
    secs: f64,
) -> anyhow::Result<(f64, Vec<Payload>)> {
    use anyhow::Context as _;
    let bytes = std::fs::read(wasm).with_context(|| format!("reading {}", wasm.display()))?;
    let plugin = engine
        .load(&bytes, PluginLimits::default())
        .with_context(|| format!("loading {}", wasm.display()))?;
    let mut instance = rt
        .block_on(plugin.instantiate("{}"))
        .with_context(|| format!("instantiating {}", wasm.display()))?;
    let info = BatchInfo {
        project: crate::PROJECT.into(),
        logstore: "stages".into(),
        shard: 0,
        received: RtTimestamp {
            seconds: 1_764_000_000,
            nanos: 0,
        },
    };
    let mut payloads = Vec::new();
    for g in groups {
        let out = rt
            .block_on(instance.process(&info, &g.bytes, g.logs as usize))
            .context("plugin call")?;
        for record in out {
            let emits = record.map_err(|e| anyhow::anyhow!("plugin refused a log: {e:?}"))?;
            payloads.extend(
                emits
                    .into_iter()
                    .map(|e| shipper::convert::payload(e.payload)),
            );
        }
    }
    let us = best_us_per_log(secs, || {
        let mut logs = 0;
        for g in groups {
            let out = rt
                .block_on(instance.process(&info, &g.bytes, g.logs as usize))
                .expect("the plugin keeps working");
            std::hint::black_box(out);
            logs += u64::from(g.logs);
        }
        logs
    });
    Ok((us, payloads))
}

/// Times `sink.render` of every payload; returns µs per log and the batch bodies.
fn render_stage(
    sink: &Arc<dyn Sink>,
    payloads: &[Payload],
    secs: f64,
) -> (f64, Vec<(Vec<u8>, u64)>) {
    let max = sink.batch_config().max_bytes;
    let mut batch = EventBatch::with_capacity(max + (64 << 10), max / 256);
    let mut bodies = Vec::new();
    for p in payloads {
        sink.render(p, &mut batch).expect("render");
        if batch.bytes_len() >= max {
            bodies.push((
                batch.iter().flatten().copied().collect(),
                batch.len() as u64,
            ));
            batch.clear();
        }
    }
    if !batch.is_empty() {
        bodies.push((
            batch.iter().flatten().copied().collect(),
            batch.len() as u64,
        ));
        batch.clear();
    }
    let us = best_us_per_log(secs, || {
        for p in payloads {
            sink.render(p, &mut batch).expect("render");
            if batch.bytes_len() >= max {
                batch.clear();
            }
        }
        payloads.len() as u64
    });
    (us, bodies)
}

fn server_config(inputs: &StageInputs) -> anyhow::Result<rustls::ServerConfig> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs =
        CertificateDer::pem_file_iter(&inputs.server_cert)?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(&inputs.server_key)?;
    Ok(rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)?)
}

fn client_config(inputs: &StageInputs) -> anyhow::Result<rustls::ClientConfig> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&inputs.ca)? {
        roots.add(cert?)?;
    }
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

/// Times TLS record encryption of the syslog batches on an in-memory connection (the same
/// provider and defaults as the syslog sink: rustls + ring, TLS 1.3).
fn tls_stage(
    inputs: &StageInputs,
    bodies: &[(Vec<u8>, u64)],
    secs: f64,
) -> anyhow::Result<(f64, f64)> {
    let name = rustls_pki_types::ServerName::try_from("localhost")?.to_owned();
    let mut client = rustls::ClientConnection::new(Arc::new(client_config(inputs)?), name)?;
    let mut server = rustls::ServerConnection::new(Arc::new(server_config(inputs)?))?;
    // Whole batches go in at once (the sink's TLS stream writes them in pieces; the record
    // encryption is the same).
    client.set_buffer_limit(None);
    let mut wire = Vec::new();
    while client.is_handshaking() || server.is_handshaking() {
        wire.clear();
        client.write_tls(&mut wire)?;
        server.read_tls(&mut &wire[..])?;
        server.process_new_packets()?;
        wire.clear();
        server.write_tls(&mut wire)?;
        client.read_tls(&mut &wire[..])?;
        client.process_new_packets()?;
    }
    let logs: u64 = bodies.iter().map(|(_, n)| n).sum();
    let mut out = Vec::with_capacity(1 << 20);
    let mut tls_bytes = 0u64;
    for (body, _) in bodies {
        client.writer().write_all(body)?;
        out.clear();
        while client.wants_write() {
            client.write_tls(&mut out)?;
        }
        tls_bytes += out.len() as u64;
    }
    let us = best_us_per_log(secs, || {
        for (body, _) in bodies {
            client.writer().write_all(body).expect("plaintext in");
            out.clear();
            while client.wants_write() {
                client.write_tls(&mut out).expect("records out");
            }
        }
        logs
    });
    Ok((us, tls_bytes as f64 / logs as f64))
}

/// ns of sender CPU per byte written to a loopback TCP socket in 64 KiB writes; the reader
/// runs on `reader_cpu`.
fn tcp_stage(secs: f64, reader_cpu: Option<usize>) -> anyhow::Result<f64> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let reader = std::thread::spawn(move || {
        if let Some(cpu) = reader_cpu {
            let _ = machine::pin_current_thread(cpu);
        }
        if let Ok((mut s, _)) = listener.accept() {
            let mut buf = vec![0u8; 1 << 20];
            while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
        }
    });
    let mut s = std::net::TcpStream::connect(addr)?;
    let chunk = vec![b'x'; 64 << 10];
    const CHUNKS: u64 = 64;
    // "logs" here are bytes: the helper's unit is whatever `f` returns.
    let us_per_byte = best_us_per_log(secs, || {
        for _ in 0..CHUNKS {
            s.write_all(&chunk).expect("loopback write");
        }
        CHUNKS * chunk.len() as u64
    });
    drop(s);
    let _ = reader.join();
    Ok(us_per_byte * 1_000.0)
}

/// Runs every stage on the calling thread (pin it first). `max_logs` bounds the sample.
pub fn measure(
    data: &Shards,
    inputs: &StageInputs,
    max_logs: u64,
    secs: f64,
    reader_cpu: Option<usize>,
) -> anyhow::Result<StageCosts> {
    let groups = sample(data, max_logs);
    let sample_logs: u64 = groups.iter().map(|g| u64::from(g.logs)).sum();
    let bodies = pull_bodies(&groups);
    let raw: usize = bodies.iter().map(|(_, r, _)| r).sum();
    let mut c = StageCosts {
        sample_logs,
        raw_bytes_per_log: raw as f64 / sample_logs as f64,
        ..Default::default()
    };

    c.pull_decode = best_us_per_log(secs, || {
        let mut logs = 0u64;
        for (lz4, raw_size, _) in &bodies {
            // The production path: PullLogs bodies expand into reused buffers.
            let body = codec::decompress_to_bytes(Compression::Lz4, lz4, *raw_size, usize::MAX)
                .expect("lz4 body");
            let groups = proto::split_log_groups(&body).expect("LogGroupList");
            logs += groups.iter().map(|g| g.log_count as u64).sum::<u64>();
        }
        logs
    });

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let engine = PluginEngine::new()?;
    let stop = CancellationToken::new();
    let build = |config: serde_json::Value| -> anyhow::Result<Arc<dyn Sink>> {
        let cfg: SinkConfig = serde_json::from_value(config)?;
        Ok(rt.block_on(cfg.build("stages", stop.clone()))?)
    };

    let (us, hec_payloads) = plugin_stage(&rt, &engine, &inputs.hec_plugin, &groups, secs)?;
    c.plugin_hec = us;
    let hec = build(json!({"type": "hec", "endpoint": "http://127.0.0.1:9", "token": "stages"}))?;
    let (us, hec_bodies) = render_stage(&hec, &hec_payloads, secs);
    c.render_hec = us;
    drop(hec_payloads);
    let hec_logs: u64 = hec_bodies.iter().map(|(_, n)| n).sum();
    c.hec_bytes_per_log =
        hec_bodies.iter().map(|(b, _)| b.len()).sum::<usize>() as f64 / hec_logs as f64;
    // The sink's own gzip (one reused deflate state per thread).
    let gzip = |body: &[u8]| shipper_sinks::hec::gzip(body, 1);
    c.gzip_bytes_per_log =
        hec_bodies.iter().map(|(b, _)| gzip(b).len()).sum::<usize>() as f64 / hec_logs as f64;
    c.gzip_l1 = best_us_per_log(secs, || {
        for (b, _) in &hec_bodies {
            std::hint::black_box(gzip(b));
        }
        hec_logs
    });
    drop(hec_bodies);

    let (us, syslog_payloads) = plugin_stage(&rt, &engine, &inputs.syslog_plugin, &groups, secs)?;
    c.plugin_syslog = us;
    let syslog = build(json!({"type": "syslog", "address": "127.0.0.1:9", "transport": "tcp"}))?;
    let (us, syslog_bodies) = render_stage(&syslog, &syslog_payloads, secs);
    c.render_syslog = us;
    let syslog_logs: u64 = syslog_bodies.iter().map(|(_, n)| n).sum();
    c.syslog_bytes_per_log =
        syslog_bodies.iter().map(|(b, _)| b.len()).sum::<usize>() as f64 / syslog_logs as f64;
    let (us, tls_per_log) = tls_stage(inputs, &syslog_bodies, secs)?;
    c.tls_encrypt = us;
    c.tls_bytes_per_log = tls_per_log;
    c.tcp_ns_per_byte = tcp_stage(secs, reader_cpu)?;
    stop.cancel();
    Ok(c)
}
