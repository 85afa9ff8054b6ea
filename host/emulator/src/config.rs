//! [`EmulatorConfig`] and its parts: credentials, pre-created logstores
//! (`PROJECT/LOGSTORE:SHARDS`), persistence, the sample-log generator and the PullLogs size
//! cap. Validation lives here ([`EmulatorConfig::validate`]); nothing here touches the network
//! or the disk.

use secrecy::ExposeSecret as _;
use std::path::PathBuf;
use std::str::FromStr;

use shipper_sls::sign::Credentials;

use crate::error::EmulatorError;
use crate::generate::SampleKind;
use crate::quota::ReadQuota;
use crate::sts::StsConfig;

/// Default PullLogs response cap (raw, before compression). SLS documents no cap
/// (docs/sls-protocol.md §5.6 "PullLogs", §12 "Limits and quotas"); 8 MiB keeps one reply's
/// lz4 work around 10 ms while still filling `count=1000` for groups of up to ~8 KiB.
pub const DEFAULT_MAX_PULL_BYTES: usize = 8 << 20;

/// Default cap on a request body. SLS accepts 10 MB raw per PutLogs; the Python SDK allows
/// 30 MB (docs/sls-protocol.md §12 "Limits and quotas"), so 32 MiB accepts everything an SDK
/// sends.
pub const DEFAULT_MAX_BODY_BYTES: usize = 32 << 20;

/// Default size of the cache of compressed PullLogs replies (see `pull::PullCache`): enough for
/// ~1 GB of raw sample logs at their ~3.7× lz4 ratio, so benchmark re-runs cost no compression.
pub const DEFAULT_PULL_CACHE_BYTES: usize = 256 << 20;

/// Default shard count for a logstore created by the generator when it does not exist.
pub const DEFAULT_GENERATE_SHARDS: u32 = 4;

/// Default seed of the sample generator: runs are reproducible unless asked otherwise.
pub const DEFAULT_SEED: u64 = 42;

/// Everything the emulator needs to run.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// The one AccessKey pair whose signatures are accepted (STS tokens are accepted as sent:
    /// they are signed like any other header but not checked against an issuer).
    pub credentials: Credentials,
    /// Logstores created at start-up (with their project) when missing.
    pub logstores: Vec<LogstoreSpec>,
    /// Persist projects, logstores, logs and consumer-group checkpoints under this directory
    /// (restart keeps them). `None`: everything is in memory.
    pub data_dir: Option<PathBuf>,
    /// Produce sample logs continuously.
    pub generate: Option<GenerateConfig>,
    /// Largest raw (uncompressed) PullLogs body; at least one LogGroup is always returned.
    pub max_pull_bytes: usize,
    /// Largest accepted request body (compressed as sent) and raw PutLogs body.
    pub max_body_bytes: usize,
    /// Bytes of compressed PullLogs replies kept for re-reads (0 disables the cache).
    pub pull_cache_bytes: usize,
    /// Issue and accept temporary credentials (`crate::sts`); `None`: STS tokens are
    /// signed like any header but not checked.
    pub sts: Option<StsConfig>,
    /// Seconds the emulator's clock is ahead of the real one (negative: behind), to test
    /// how clients report clock skew.
    pub clock_offset_secs: i64,
    /// Delay added to every response, as if the server were this far away (a WAN between a
    /// cloud region and an on-premises consumer): each request costs at least this round trip.
    pub latency: std::time::Duration,
    /// Per-shard read limits of PullLogs (`crate::quota`); [`ReadQuota::OFF`] disables them.
    pub read_quota: ReadQuota,
}

impl EmulatorConfig {
    /// A config with the given key pair and defaults for everything else.
    pub fn new(access_key_id: impl Into<String>, access_key_secret: impl Into<String>) -> Self {
        Self {
            credentials: Credentials::new(access_key_id, access_key_secret),
            logstores: Vec::new(),
            data_dir: None,
            generate: None,
            max_pull_bytes: DEFAULT_MAX_PULL_BYTES,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            pull_cache_bytes: DEFAULT_PULL_CACHE_BYTES,
            sts: None,
            clock_offset_secs: 0,
            latency: std::time::Duration::ZERO,
            read_quota: ReadQuota::default(),
        }
    }

    /// Adds a pre-created logstore.
    pub fn with_logstore(mut self, spec: LogstoreSpec) -> Self {
        self.logstores.push(spec);
        self
    }

    /// Checks the values that cannot be right.
    pub fn validate(&self) -> Result<(), EmulatorError> {
        if self.credentials.access_key_id.is_empty() {
            return Err(EmulatorError::Config(
                "the access key id is empty (set --access-key-id or SLS_AK_ID)".into(),
            ));
        }
        if self
            .credentials
            .access_key_secret
            .expose_secret()
            .is_empty()
        {
            return Err(EmulatorError::Config(
                "the access key secret is empty (set --access-key-secret or SLS_AK_KEY)".into(),
            ));
        }
        if self.max_pull_bytes == 0 || self.max_body_bytes == 0 {
            return Err(EmulatorError::Config(
                "size caps must be greater than zero".into(),
            ));
        }
        if let Some(sts) = &self.sts
            && sts.token_lifetime < std::time::Duration::from_secs(1)
        {
            return Err(EmulatorError::Config(
                "the token lifetime must be at least one second".into(),
            ));
        }
        if let Some(g) = &self.generate
            && !(g.rate.is_finite() && g.rate > 0.0)
        {
            return Err(EmulatorError::Config(format!(
                "generate rate must be a positive number of logs per second, got {}",
                g.rate
            )));
        }
        Ok(())
    }
}

/// A `PROJECT/LOGSTORE:SHARDS` specification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogstoreSpec {
    /// Project name.
    pub project: String,
    /// Logstore name.
    pub logstore: String,
    /// Number of shards (1..=256).
    pub shards: u32,
}

impl LogstoreSpec {
    /// Builds a spec, validating the names and the shard count.
    pub fn try_new(project: &str, logstore: &str, shards: u32) -> Result<Self, String> {
        validate_project_name(project)?;
        validate_logstore_name(logstore)?;
        if !(1..=MAX_SHARDS).contains(&shards) {
            return Err(format!(
                "shard count must be 1..={MAX_SHARDS}, got {shards}"
            ));
        }
        Ok(Self {
            project: project.to_owned(),
            logstore: logstore.to_owned(),
            shards,
        })
    }
}

/// Upper bound on shards per logstore: far above anything a test needs, low enough that a
/// typo cannot make the emulator allocate millions of shards.
pub const MAX_SHARDS: u32 = 256;

impl FromStr for LogstoreSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let usage = || format!("expected PROJECT/LOGSTORE or PROJECT/LOGSTORE:SHARDS, got {s:?}");
        let (path, shards) = match s.rsplit_once(':') {
            Some((p, n)) => (
                p,
                n.parse::<u32>()
                    .map_err(|_| format!("{}: bad shard count {n:?}", usage()))?,
            ),
            None => (s, DEFAULT_GENERATE_SHARDS),
        };
        let (project, logstore) = path.split_once('/').ok_or_else(usage)?;
        Self::try_new(project, logstore, shards).map_err(|e| format!("{s:?}: {e}"))
    }
}

impl std::fmt::Display for LogstoreSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}:{}", self.project, self.logstore, self.shards)
    }
}

/// SLS project names: 3–63 of `[a-z0-9-]`, starting and ending with a letter or digit.
pub fn validate_project_name(name: &str) -> Result<(), String> {
    let ok = (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid project name {name:?}: use 3-63 characters of a-z, 0-9 and '-', not starting or ending with '-'"
        ))
    }
}

/// SLS logstore names: 2–63 of `[a-z0-9_-]`, starting and ending with a letter or digit.
pub fn validate_logstore_name(name: &str) -> Result<(), String> {
    let ok = (2..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid logstore name {name:?}: use 2-63 characters of a-z, 0-9, '_' and '-', starting and ending with a letter or digit"
        ))
    }
}

/// Continuous sample-log generation (`--generate RATE`).
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateConfig {
    /// Logs per second.
    pub rate: f64,
    /// Where to write (created with [`DEFAULT_GENERATE_SHARDS`] shards if missing, unless
    /// `logstores` names it with another shard count).
    pub project: String,
    /// Logstore name.
    pub logstore: String,
    /// Which samples to produce.
    pub kind: SampleKind,
    /// PRNG seed (same seed, same logs).
    pub seed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logstore_specs() {
        let s: LogstoreSpec = "proj/store:4".parse().unwrap();
        assert_eq!(s, LogstoreSpec::try_new("proj", "store", 4).unwrap());
        assert_eq!(s.to_string(), "proj/store:4");
        assert_eq!("proj/store".parse::<LogstoreSpec>().unwrap().shards, 4);
        for bad in [
            "proj",
            "proj/store:0",
            "proj/store:x",
            "Proj/store:1",
            "p/store:1",
            "proj/:2",
        ] {
            assert!(bad.parse::<LogstoreSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn validation_names_the_problem() {
        let mut c = EmulatorConfig::new("id", "");
        assert!(c.validate().unwrap_err().to_string().contains("secret"));
        c = EmulatorConfig::new("id", "secret");
        c.validate().unwrap();
        c.max_pull_bytes = 0;
        assert!(c.validate().is_err());
    }
}
