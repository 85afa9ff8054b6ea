//! A real forward proxy (Debian's `tinyproxy`) as the only route: `shipper run` runs in a
//! network namespace whose one way out is the proxy port (iptables rejects the rest, and
//! the SLS emulator and the HEC receiver listen on the host's loopback, which the namespace
//! cannot reach), so any bypass fails the run.
//!
//! - SLS over HTTPS (a `CONNECT` tunnel, TLS end to end to a TLS front of the emulator) and
//!   HEC over HTTPS, with proxy authentication from `HTTPS_PROXY`'s user info: every log
//!   delivered, tinyproxy saw both tunnels, the start-up log names the proxy without the
//!   password.
//! - The proxy answering 407 (no credentials) and a proxy that refuses connections: exit 3
//!   with an error that names the proxy and the fix.

use std::path::Path;

use shipper_test_artifacts as artifacts;
use shipper_test_support::certs::TestPki;
use shipper_test_support::hec_receiver::{HecReceiver, HecReceiverConfig, TEST_TOKEN};
use shipper_test_support::ports::reserve_port;
use shipper_test_support::tls_front::TlsFront;

use crate::harness::dataset::{Dataset, Tally, hec_seqs};
use crate::harness::netns::{HostsEntries, NetNs, Tinyproxy, require_tools};
use crate::harness::shipper::{RunConfig, ShipperProcess};
use crate::harness::sls::{AK_ID, AK_SECRET, LOGSTORE, PROJECT, SlsEnv, wait_for_events};

/// The SLS endpoint's name (the proxy resolves `e2e-project.sls-proxy.test`).
const SLS_DOMAIN: &str = "sls-proxy.test";
const HEC_HOST: &str = "hec.sls-proxy.test";
const PROXY_USER: &str = "shipper";
const PROXY_PASSWORD: &str = "pr0xy-s3cret";

#[test]
fn sls_and_hec_over_https_go_only_through_the_proxy_with_auth_and_its_errors_name_it() {
    require_tools();
    let env = SlsEnv::start("proxy", 2);
    let dir = env.dir().to_owned();
    let mut ds = Dataset::new(env.shards(), 10);
    env.load(&mut ds, 2000);
    let pki = TestPki::generate_with_sans(&format!("DNS:*.{SLS_DOMAIN},DNS:{HEC_HOST}"));
    let front = env
        .handle()
        .block_on(TlsFront::start(env.emulator().addr(), pki.dir()));
    let hec = env.handle().block_on(HecReceiver::start(HecReceiverConfig {
        tls: Some((pki.server_cert(), pki.server_key())),
        ..HecReceiverConfig::default()
    }));
    let _hosts = HostsEntries::add(
        "127.0.0.1",
        &[&format!("{PROJECT}.{SLS_DOMAIN}"), SLS_DOMAIN, HEC_HOST],
    );
    let proxy_port = reserve_port();
    let ns = NetNs::create("proxy", proxy_port.port());
    let proxy = Tinyproxy::start(
        &dir,
        &ns.host_addr,
        proxy_port.port(),
        &ns.ns_addr,
        Some((PROXY_USER, PROXY_PASSWORD)),
    );

    let config = |group: &str| {
        RunConfig::new(
            &format!("https://{SLS_DOMAIN}:{}", front.port()),
            PROJECT,
            LOGSTORE,
            group,
            Path::new(artifacts::PLUGIN_SPLUNK_HEC),
            &dir.join(format!("{group}.dead-letter.jsonl")),
        )
        .hec_sink(&format!("https://{HEC_HOST}:{}", hec.addr().port()))
        .set("sink.tls.ca_file", pki.ca().to_str().expect("utf-8"))
        .set("source.ca_file", pki.ca().to_str().expect("utf-8"))
        // /metrics would listen inside the namespace, out of the test's reach.
        .remove("metrics.listen")
    };
    let with_auth = format!(
        "http://{PROXY_USER}:{PROXY_PASSWORD}@{}:{}",
        ns.host_addr,
        proxy_port.port()
    );
    let base_env = [
        ("SLS_AK_ID", AK_ID),
        ("SLS_AK_KEY", AK_SECRET),
        ("SHIPPER_HEC_TOKEN", TEST_TOKEN),
    ];
    let mut run_env: Vec<(&str, &str)> = base_env.to_vec();
    run_env.push(("HTTPS_PROXY", &with_auth));
    let mut shipper = ShipperProcess::start_wrapped(
        &ns.exec_prefix(),
        &dir,
        "through-proxy",
        &config("via-proxy"),
        &run_env,
    );
    wait_for_events(&mut shipper, &hec, ds.len());
    env.wait_checkpoints_at_end("via-proxy");
    shipper.signal("TERM");
    assert!(shipper.wait_exit().success(), "{}", shipper.stderr_tail(30));
    Tally::new(ds.len(), hec_seqs(&hec.events())).assert_at_least_once(&ds, "through the proxy");
    let log = proxy.log();
    for target in [format!("{PROJECT}.{SLS_DOMAIN}"), HEC_HOST.to_owned()] {
        assert!(
            log.contains(&target),
            "tinyproxy never tunnelled to {target}:\n{log}"
        );
    }
    let stderr = shipper.stderr();
    assert!(
        !stderr.contains(PROXY_PASSWORD),
        "the proxy password was logged"
    );
    for side in ["SLS network route", "HEC network route"] {
        let line = shipper
            .logs_with(side)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no {side:?} line:\n{stderr}"));
        let route = line["route"].as_str().unwrap_or_default();
        assert!(
            route.contains(&format!("http://{}:{}", ns.host_addr, proxy_port.port()))
                && route.contains("HTTPS_PROXY"),
            "{side}: {line}"
        );
    }

    // A run that must stop at start-up (exit 3) with an error that names `proxy_url`.
    let fails_through = |name: &str, proxy_url: &str| -> String {
        let mut run_env: Vec<(&str, &str)> = base_env.to_vec();
        run_env.push(("HTTPS_PROXY", proxy_url));
        let mut run =
            ShipperProcess::start_wrapped(&ns.exec_prefix(), &dir, name, &config(name), &run_env);
        let status = run.wait_exit();
        let text = run.stderr();
        assert_eq!(status.code(), Some(3), "{name}: {text}");
        assert!(
            text.contains(proxy_url),
            "{name}: the error names the proxy:\n{text}"
        );
        text
    };

    // 407: the same proxy without credentials. The HEC start-up check meets it first.
    let anonymous = format!("http://{}:{}", ns.host_addr, proxy_port.port());
    let text = fails_through("no-auth", &anonymous);
    assert!(
        text.contains("proxy_credentials_file"),
        "the 407 fix:\n{text}"
    );

    // A proxy that refuses connections (nothing listens on that port of the namespace's
    // only neighbour): SLS cannot be joined, and the error says which proxy.
    let dead_port = reserve_port();
    let dead = format!("http://{}:{}", ns.host_addr, dead_port.port());
    let text = fails_through("dead-proxy", &dead);
    assert!(
        text.contains("cannot connect to the proxy"),
        "the refusal:\n{text}"
    );
}
