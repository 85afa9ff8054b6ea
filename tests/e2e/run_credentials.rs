//! Temporary SLS credentials end to end: the emulator issues 15-second credentials (STS,
//! metadata service, credentials URI, and a file a test thread renews), and `shipper run`
//! ships through many rotations with each provider, the way it would through hours of real
//! STS tokens.
//!
//! - Every provider (`file`, `ecs_ram_role`, `oidc_role_arn`, `ram_role_arn`,
//!   `credentials_uri`) runs as its own process with its own consumer group and HEC
//!   receiver, all at once on one logstore (the providers share the 90 seconds, and each
//!   is checked on its own): every log delivered, refreshes counted, and the emulator
//!   answered no request with `SecurityTokenExpired` or a token mismatch. Two of them sign
//!   v4, so shipper's v4 signer runs through the emulator's verifier too.
//! - A refresh source down for longer than a token's life: one WARN, the pipeline pauses,
//!   resumes when the source is back, nothing lost.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use shipper_emulator::StsConfig;
use shipper_test_artifacts as artifacts;
use shipper_test_support::eventually::eventually;
use shipper_test_support::hec_receiver::{HecReceiver, TEST_TOKEN};

use crate::harness::dataset::{Dataset, Tally, hec_seqs};
use crate::harness::shipper::{RunConfig, ShipperProcess, http_get};
use crate::harness::sls::{AK_ID, AK_SECRET, LOGSTORE, PROJECT, SlsEnv};

/// Lifetime of every credential the emulator issues.
const LIFETIME: Duration = Duration::from_secs(15);
/// How long the providers ship under rotation.
const SHIP_FOR: Duration = Duration::from_secs(90);
/// How often the file writer renews the credentials file.
const FILE_RENEWAL: Duration = Duration::from_secs(3);

fn sts_emulator(test: &str) -> SlsEnv {
    SlsEnv::start_with(test, 2, |mut c| {
        c.sts = Some(StsConfig {
            token_lifetime: LIFETIME,
            require_temporary: false,
        });
        c
    })
}

/// Renews a JSON credentials file from the emulator's credentials URI every
/// [`FILE_RENEWAL`] (written to a temporary name, then renamed), until dropped; `pause`
/// stops renewing (the refresh source is down).
struct FileRenewer {
    pause: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FileRenewer {
    fn start(endpoint: &str, path: PathBuf) -> Self {
        let addr = endpoint.parse().expect("emulator address");
        let pause = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let write = move || {
            let body = http_get(addr, "/credentials").expect("credentials from the emulator");
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, body).expect("write credentials");
            std::fs::rename(&tmp, &path).expect("rename credentials");
        };
        write();
        let thread = {
            let (pause, stop) = (pause.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(FILE_RENEWAL);
                    if !pause.load(Ordering::Relaxed) {
                        write();
                    }
                }
            })
        };
        Self {
            pause,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for FileRenewer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn base_config(env: &SlsEnv, group: &str, hec: &HecReceiver, dir: &Path) -> RunConfig {
    RunConfig::new(
        &env.endpoint(),
        PROJECT,
        LOGSTORE,
        group,
        Path::new(artifacts::PLUGIN_SPLUNK_HEC),
        &dir.join(format!("{group}.dead-letter.jsonl")),
    )
    .hec_sink(&hec.url())
    // A loaded CI machine must not lose heartbeats to scheduling: 10 s of slack.
    .set("source.timeout", 10)
}

/// The WARN lines of `shipper` that say the credentials expired.
fn expiry_warnings(shipper: &ShipperProcess) -> usize {
    shipper
        .log_lines()
        .iter()
        .filter(|l| {
            l["level"] == "WARN"
                && l["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("SLS credentials expired"))
        })
        .count()
}

#[test]
fn every_provider_ships_through_15_second_tokens_without_an_expired_answer() {
    let env = sts_emulator("credentials-providers");
    let dir = env.dir().to_owned();
    let base = format!("http://{}", env.endpoint());
    let _renewer = FileRenewer::start(&env.endpoint(), dir.join("credentials.json"));
    let oidc_token = dir.join("oidc-token");
    std::fs::write(&oidc_token, "eyJhbGciOiJSUzI1NiJ9.e2e.signature\n").expect("token file");

    let providers = [
        "file",
        "ecs_ram_role",
        "oidc_role_arn",
        "ram_role_arn",
        "credentials_uri",
    ];
    let mut running = Vec::new();
    for provider in providers {
        let hec = env.hec_receiver();
        let group = format!("cred-{}", provider.replace('_', "-"));
        let mut config =
            base_config(&env, &group, &hec, &dir).set("source.credentials.type", provider);
        let mut process_env = vec![("SHIPPER_HEC_TOKEN", TEST_TOKEN)];
        config = match provider {
            "file" => config.set(
                "source.credentials.path",
                dir.join("credentials.json").to_str().expect("utf-8"),
            ),
            "ecs_ram_role" => config
                .set("source.credentials.metadata_endpoint", base.as_str())
                .set("source.signature_version", "v4")
                .set("source.region", "cn-hangzhou"),
            "oidc_role_arn" => config
                .set("source.credentials.sts_endpoint", base.as_str())
                .set("source.credentials.role_arn", "acs:ram::1234:role/shipper")
                .set(
                    "source.credentials.oidc_provider_arn",
                    "acs:ram::1234:oidc-provider/ack-rrsa-e2e",
                )
                .set(
                    "source.credentials.oidc_token_file",
                    oidc_token.to_str().expect("utf-8"),
                ),
            "ram_role_arn" => {
                // The base credentials: the seed variables, the emulator's long-term key.
                process_env.extend([("SLS_AK_ID", AK_ID), ("SLS_AK_KEY", AK_SECRET)]);
                config
                    .set("source.credentials.sts_endpoint", base.as_str())
                    .set(
                        "source.credentials.role_arn",
                        "acs:ram::5678:role/soc-reader",
                    )
            }
            "credentials_uri" => config
                .set("source.credentials.uri", format!("{base}/credentials"))
                .set("source.signature_version", "v4")
                .set("source.region", "cn-hangzhou"),
            _ => unreachable!(),
        };
        let shipper = ShipperProcess::start(&dir, provider, &config, &[], &process_env);
        running.push((provider, group, hec, shipper));
    }

    // Load continuously while the credentials rotate (six times each).
    let mut ds = Dataset::new(env.shards(), 10);
    let started = Instant::now();
    while started.elapsed() < SHIP_FOR {
        env.load(&mut ds, 40);
        for (provider, _, _, shipper) in &mut running {
            assert!(
                shipper.try_status().is_none(),
                "{provider}: shipper exited\n{}",
                shipper.stderr_tail(30)
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }

    for (provider, group, hec, shipper) in &mut running {
        eventually(&format!("{provider}: every log delivered"), || {
            shipper.assert_running();
            let got = hec.event_count() as u64;
            if got >= ds.len() {
                Ok(())
            } else {
                Err(format!("{got} of {} events", ds.len()))
            }
        });
        env.wait_checkpoints_at_end(group);
        let metrics = shipper.scrape().expect("metrics");
        let refreshes = metrics.sum("shipper_sls_credential_refreshes_total");
        assert!(
            refreshes >= 6.0,
            "{provider}: {refreshes} refreshes in {SHIP_FOR:?} of {LIFETIME:?} credentials\n{}",
            metrics.0
        );
        let expiry = metrics.sum("shipper_sls_credential_expiry_seconds");
        assert!(
            expiry > 0.0 && expiry <= LIFETIME.as_secs_f64(),
            "{provider}: expiry gauge {expiry}"
        );
        assert_eq!(
            expiry_warnings(shipper),
            0,
            "{provider}: {}",
            shipper.stderr_tail(20)
        );
        shipper.signal("TERM");
        assert!(shipper.wait_exit().success(), "{provider}: clean exit");
        let dup = Tally::new(ds.len(), hec_seqs(&hec.events())).assert_at_least_once(&ds, provider);
        eprintln!(
            "{provider}: {} logs, {dup} delivered twice, {refreshes} refreshes",
            ds.len()
        );
    }
    let stats = env
        .emulator()
        .sts_stats()
        .expect("temporary credentials on");
    assert_eq!(
        (stats.expired_refusals, stats.invalid_refusals),
        (0, 0),
        "the emulator refused requests for expired or mismatched tokens: {stats:?}"
    );
    assert!(stats.issued >= 30, "{stats:?}");
}

#[test]
fn a_refresh_source_down_past_the_token_life_pauses_with_one_warn_and_resumes() {
    let env = sts_emulator("credentials-outage");
    let dir = env.dir().to_owned();
    let renewer = FileRenewer::start(&env.endpoint(), dir.join("credentials.json"));
    let hec = env.hec_receiver();
    let config = base_config(&env, "cred-outage", &hec, &dir)
        .set("source.timeout", 3)
        .set("source.credentials.type", "file")
        .set(
            "source.credentials.path",
            dir.join("credentials.json").to_str().expect("utf-8"),
        );
    let mut shipper = ShipperProcess::start(
        &dir,
        "shipper",
        &config,
        &[],
        &[("SHIPPER_HEC_TOKEN", TEST_TOKEN)],
    );
    let mut ds = Dataset::new(env.shards(), 10);
    env.load(&mut ds, 500);
    crate::harness::sls::wait_for_events(&mut shipper, &hec, ds.len());

    // The source goes down: the file's credentials expire within LIFETIME.
    renewer.pause.store(true, Ordering::Relaxed);
    eventually("the expiry WARN", || match expiry_warnings(&shipper) {
        0 => Err("no WARN yet".to_owned()),
        n => Ok(n),
    });
    env.load(&mut ds, 500);
    // Paused: nothing new is pulled while the credentials are expired.
    std::thread::sleep(Duration::from_secs(8));
    let during = hec.event_count() as u64;
    assert!(
        during < ds.len(),
        "shipped {during} of {} without credentials",
        ds.len()
    );
    shipper.assert_running();

    renewer.pause.store(false, Ordering::Relaxed);
    crate::harness::sls::wait_for_events(&mut shipper, &hec, ds.len());
    env.wait_checkpoints_at_end("cred-outage");
    assert_eq!(expiry_warnings(&shipper), 1, "{}", shipper.stderr_tail(40));
    assert!(
        shipper.logs_with("SLS credentials refreshed again").len() == 1,
        "{}",
        shipper.stderr_tail(40)
    );
    let errors: Vec<_> = shipper
        .log_lines()
        .into_iter()
        .filter(|l| l["level"] == "ERROR")
        .collect();
    assert!(
        errors.is_empty(),
        "no ERROR for a credentials outage: {errors:#?}"
    );
    shipper.signal("TERM");
    assert!(shipper.wait_exit().success());
    Tally::new(ds.len(), hec_seqs(&hec.events())).assert_at_least_once(&ds, "credentials outage");
    let stats = env
        .emulator()
        .sts_stats()
        .expect("temporary credentials on");
    assert_eq!(stats.expired_refusals, 0, "{stats:?}");
}
