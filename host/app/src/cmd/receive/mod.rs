//! `shipper receive hec|syslog`: a development receiver to try a plugin or a config against,
//! without a SIEM. It accepts what a Splunk HEC endpoint or a syslog collector would, prints
//! the first events, and counts the rest.
//!
//! Memory stays bounded however long it runs: events are printed or counted and dropped,
//! never kept; request bodies, decompressed bodies and syslog frames are capped
//! ([`MAX_BODY_BYTES`], [`MAX_FRAME_BYTES`]) and refused above the cap.
//!
//! The first stdout line is `listening on ADDR` (HEC: `http://ADDR` or `https://ADDR`), so
//! scripts can start it on port 0. Events go to stdout, one per line; counts to stderr every
//! `--interval` and once more at exit (`N events received in total`).

mod hec;
mod syslog;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::exit::{Failure, FailureExt as _};

/// Largest request body accepted, compressed or not (HEC answers 413 above it).
pub const MAX_BODY_BYTES: usize = 64 << 20;
/// Largest syslog frame accepted (a longer one closes the connection).
pub const MAX_FRAME_BYTES: usize = 1 << 20;

/// Flags of `shipper receive`.
#[derive(Debug, clap::Args)]
#[command(
    long_about = "A development receiver: accepts what a Splunk HEC endpoint or a syslog \
collector would, prints the first events on stdout and counts the rest on stderr. Use it to \
try a plugin or a config without a SIEM:\n\n  \
shipper receive hec --listen 127.0.0.1:8088 --token dev-token\n  \
SHIPPER_HEC_TOKEN=dev-token shipper run --plugin my.wasm --hec-url http://127.0.0.1:8088\n\n\
The first stdout line is `listening on ADDR`. Memory stays bounded however long it runs: \
nothing is kept after it is printed or counted."
)]
pub struct ReceiveArgs {
    /// What to receive.
    #[command(subcommand)]
    pub kind: ReceiveKind,
}

/// What `shipper receive` listens as.
#[derive(Debug, clap::Subcommand)]
pub enum ReceiveKind {
    /// A Splunk HTTP Event Collector: `/services/collector/event`, `/raw`, `/health`.
    Hec(HecArgs),
    /// A syslog collector over TCP (octet-counted or LF-framed), UDP or TLS.
    Syslog(SyslogArgs),
}

/// Flags both receivers share.
#[derive(Debug, clap::Args)]
pub struct Common {
    /// Address to listen on; port 0 picks a free port (the first stdout line says which).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// How many events to print on stdout: a number, or `all`. The rest are only counted.
    #[arg(long, value_name = "N|all", default_value = "10", value_parser = parse_print)]
    pub print: u64,
    /// Seconds between count lines on stderr (0: only the total at exit).
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub interval: u64,
    /// Serve TLS with this PEM certificate chain (needs `--tls-key`).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of `--tls-cert`.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// Flags of `shipper receive hec`.
#[derive(Debug, clap::Args)]
pub struct HecArgs {
    /// Shared flags.
    #[command(flatten)]
    pub common: Common,
    /// The token clients must send (`Authorization: Splunk TOKEN`); any token when absent.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "SHIPPER_HEC_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
}

/// Syslog transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    /// TCP; each connection's framing (octet counting or LF) is detected from its first byte.
    Tcp,
    /// UDP, one message per datagram.
    Udp,
    /// TLS (needs `--tls-cert` and `--tls-key`); octet counting or LF as for TCP.
    Tls,
}

/// Flags of `shipper receive syslog`.
#[derive(Debug, clap::Args)]
pub struct SyslogArgs {
    /// Shared flags.
    #[command(flatten)]
    pub common: Common,
    /// Transport.
    #[arg(long, value_enum, default_value_t = Transport::Tcp)]
    pub transport: Transport,
}

fn parse_print(text: &str) -> Result<u64, String> {
    if text.eq_ignore_ascii_case("all") {
        return Ok(u64::MAX);
    }
    text.parse()
        .map_err(|_| format!("{text:?} is not a number of events or `all`"))
}

/// Runs `shipper receive`.
pub async fn execute(args: ReceiveArgs) -> Result<(), Failure> {
    let shutdown = CancellationToken::new();
    let common = match &args.kind {
        ReceiveKind::Hec(a) => &a.common,
        ReceiveKind::Syslog(a) => &a.common,
    };
    let tls = match (&common.tls_cert, &common.tls_key) {
        (Some(cert), Some(key)) => Some(tls_config(cert, key).config_error()?),
        _ => None,
    };
    if matches!(&args.kind, ReceiveKind::Syslog(a) if a.transport == Transport::Tls)
        && tls.is_none()
    {
        return Err(anyhow::anyhow!(
            "--transport tls needs --tls-cert and --tls-key (a PEM certificate and its key)"
        ))
        .config_error();
    }
    let out = Arc::new(Output::new(common.print));
    tokio::spawn(report(out.clone(), common.interval, shutdown.clone()));
    let served = {
        let shutdown = shutdown.clone();
        let out = out.clone();
        async move {
            match args.kind {
                ReceiveKind::Hec(a) => hec::serve(a, tls, out, shutdown).await,
                ReceiveKind::Syslog(a) => syslog::serve(a, tls, out, shutdown).await,
            }
        }
    };
    let result = tokio::select! {
        result = served => result,
        () = signal() => Ok(()),
    };
    shutdown.cancel();
    let total = out.events.load(Ordering::Relaxed);
    eprintln!("{total} events received in total");
    result
}

/// Prints the first events and counts all of them.
#[derive(Debug)]
pub struct Output {
    /// Events so far.
    pub events: AtomicU64,
    /// Bytes of events so far (as received, decompressed).
    pub bytes: AtomicU64,
    print: u64,
}

impl Output {
    fn new(print: u64) -> Self {
        Self {
            events: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            print,
        }
    }

    /// One event arrived: printed (one line) while under the `--print` count, then counted.
    pub fn event(&self, text: &[u8]) {
        let n = self.events.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(text.len() as u64, Ordering::Relaxed);
        if n < self.print {
            let mut stdout = std::io::stdout().lock();
            // A line per event: a line feed inside one (LF-framed syslog cannot have any; a
            // JSON event has none) would split it, so it is shown as `\n`.
            let line = String::from_utf8_lossy(text).replace('\n', "\\n");
            let _ = writeln!(stdout, "{line}");
            let _ = stdout.flush();
        }
    }
}

/// Prints "listening on X" as the first stdout line.
fn announce(what: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {what}")
        .and_then(|()| stdout.flush())
        .context("cannot write to stdout")
        .runtime_error()
}

/// Writes the count to stderr every `interval` seconds until `shutdown`.
async fn report(out: Arc<Output>, interval: u64, shutdown: CancellationToken) {
    if interval == 0 {
        return;
    }
    let every = Duration::from_secs(interval);
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    let mut last = 0;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = out.events.load(Ordering::Relaxed);
        if now != last {
            let rate = (now - last) as f64 / every.as_secs_f64();
            eprintln!(
                "{now} events received ({rate:.0}/s, {:.1} MB)",
                out.bytes.load(Ordering::Relaxed) as f64 / 1e6
            );
            last = now;
        }
    }
}

/// A rustls server config from PEM files.
fn tls_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("cannot read the certificate chain {}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("cannot read the private key {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the certificate and the key do not fit together")?;
    Ok(Arc::new(config))
}

/// Resolves on SIGINT or SIGTERM.
async fn signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
