//! Credentials against the emulator's temporary-credentials mode: providers fetching from
//! its metadata service, STS and credentials URI; a 401 for an expired token refreshes and
//! retries once; v4 signing end to end; the clock-skew report.

use std::time::Duration;

use shipper_emulator::{Emulator, EmulatorConfig, EmulatorHandle, StsConfig};
use shipper_net::proxy::ProxyConfig;
use shipper_sls::credentials::chain::Spec;
use shipper_sls::credentials::file::FileSource;
use shipper_sls::credentials::static_keys::{Secret, StaticProvider};
use shipper_sls::sign::SignatureVersion;
use shipper_sls::{Client, ClientConfig, RefreshingCredentials};

use crate::harness::{AK_ID, AK_SECRET, PROJECT, group, init_tracing, setup, shard_routes};

async fn sts_emulator(lifetime: Duration) -> EmulatorHandle {
    init_tracing();
    let mut cfg = EmulatorConfig::new(AK_ID, AK_SECRET);
    cfg.sts = Some(StsConfig {
        token_lifetime: lifetime,
        require_temporary: false,
    });
    Emulator::start(cfg).await.expect("start the emulator")
}

fn client(emu: &EmulatorHandle, credentials: RefreshingCredentials, v4: bool) -> Client {
    let mut cfg = ClientConfig::new(emu.endpoint(), PROJECT, credentials);
    if v4 {
        cfg.signature = SignatureVersion::V4 {
            region: "cn-hangzhou".into(),
        };
    }
    Client::new(cfg).expect("client")
}

async fn start(spec: Spec) -> RefreshingCredentials {
    let provider = spec
        .build(&ProxyConfig::default(), &|_| None)
        .expect("provider");
    RefreshingCredentials::start(provider)
        .await
        .expect("first fetch")
}

/// Each HTTP provider fetches from the emulator and keeps working across several
/// 3-second lifetimes; v4 and v1 both verify; nothing is refused as expired.
#[tokio::test]
async fn http_providers_rotate_without_an_expired_answer() {
    let emu = sts_emulator(Duration::from_secs(3)).await;
    let base = format!("http://{}", emu.endpoint());
    let admin = crate::harness::client(&emu);
    setup(&admin, "creds", 1).await;
    let specs = [
        Spec::EcsRamRole {
            metadata_endpoint: base.clone(),
            role_name: None,
        },
        Spec::CredentialsUri {
            uri: format!("{base}/credentials"),
        },
        Spec::RamRoleArn {
            base: Box::new(Spec::Static(StaticProvider {
                access_key_id: AK_ID.into(),
                secret: Secret::Value(AK_SECRET.to_owned().into()),
                security_token: None,
            })),
            sts_endpoint: base.clone(),
            role_arn: "acs:ram::1:role/r".into(),
            session_name: "t".into(),
            duration: Duration::from_secs(900),
            policy: None,
            external_id: None,
        },
    ];
    let mut clients = Vec::new();
    for (i, spec) in specs.into_iter().enumerate() {
        let holder = start(spec).await;
        clients.push((holder.clone(), client(&emu, holder, i % 2 == 0)));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    while tokio::time::Instant::now() < deadline {
        for (_, c) in &clients {
            c.list_shards("creds")
                .await
                .expect("list shards with fresh credentials");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for (holder, _) in &clients {
        assert!(
            holder.stats().refreshes() >= 2,
            "{}",
            holder.provider_name()
        );
    }
    let stats = emu.sts_stats().unwrap();
    assert_eq!(
        (stats.expired_refusals, stats.invalid_refusals),
        (0, 0),
        "{stats:?}"
    );
}

/// A token the server considers expired while the file claims it is not: the 401
/// (`SecurityTokenExpired`) makes the client re-read the file and retry once.
#[tokio::test]
async fn an_expired_token_401_refreshes_and_retries_once() {
    let emu = sts_emulator(Duration::from_secs(1)).await;
    let admin = crate::harness::client(&emu);
    setup(&admin, "retry", 1).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("creds.json");
    let write = |c: &shipper_emulator::IssuedCredentials| {
        let mut json = c.to_json();
        // Lie about the expiry, so only the server knows.
        json["Expiration"] = "2999-01-01T00:00:00Z".into();
        std::fs::write(&path, json.to_string()).unwrap();
    };
    write(&emu.issue_credentials().unwrap());
    let holder = start(Spec::File(FileSource::Json(path.clone()))).await;
    let c = client(&emu, holder.clone(), false);
    c.list_shards("retry").await.expect("fresh token");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    write(&emu.issue_credentials().unwrap());
    c.list_shards("retry")
        .await
        .expect("the 401 re-read the file and the retry succeeded");
    assert_eq!(emu.sts_stats().unwrap().expired_refusals, 1);
    // Without a fresh file the retry fails too, with the SLS code.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let e = c.list_shards("retry").await.unwrap_err();
    assert_eq!(e.code(), Some("SecurityTokenExpired"), "{e}");
    assert!(e.is_refreshable_auth());
}

/// shipper's v4 signer against the emulator's verifier: put, pull, consumer-group calls.
#[tokio::test]
async fn v4_signed_requests_round_trip() {
    let emu = sts_emulator(Duration::from_secs(60)).await;
    let admin = crate::harness::client(&emu);
    setup(&admin, "v4", 2).await;
    let c = client(
        &emu,
        shipper_sls::sign::Credentials::new(AK_ID, AK_SECRET).into(),
        true,
    );
    let routes = shard_routes(&c, "v4").await;
    c.put_logs("v4", &routes[1], &group("v4", 3))
        .await
        .expect("v4 PutLogs");
    let cursor = c
        .get_cursor("v4", 1, shipper_sls::CursorPosition::Begin)
        .await
        .expect("v4 GetCursor");
    let pulled = c
        .pull_logs("v4", 1, &shipper_sls::PullRequest::new(cursor))
        .await
        .expect("v4 PullLogs");
    assert_eq!(pulled.log_count(), 3);
    let mut wrong_cfg = ClientConfig::new(
        emu.endpoint(),
        PROJECT,
        shipper_sls::sign::Credentials::new(AK_ID, "wrong"),
    );
    wrong_cfg.signature = SignatureVersion::V4 {
        region: "cn-hangzhou".into(),
    };
    let e = Client::new(wrong_cfg)
        .unwrap()
        .list_shards("v4")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("SignatureNotMatch"), "{e}");
}

/// An emulator whose clock is an hour ahead refuses the request time, and the error says
/// how far this machine's clock is from the server's.
#[tokio::test]
async fn a_skewed_clock_is_refused_and_reported() {
    init_tracing();
    let mut cfg = EmulatorConfig::new(AK_ID, AK_SECRET);
    cfg.clock_offset_secs = 3600;
    let emu = Emulator::start(cfg).await.unwrap();
    let e = crate::harness::client(&emu)
        .list_shards("x")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("RequestTimeExpired"), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("s behind SLS's") && text.contains("NTP"),
        "{text}"
    );
}
