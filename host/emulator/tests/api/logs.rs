//! PutLogs, GetCursor, GetCursorTime and PullLogs.

use prost::Message as _;
use shipper_sls::codec::{self, Compression};
use shipper_sls::cursor::Cursor;
use shipper_sls::proto::{Content, Log, LogGroup, LogGroupList, LogTag};

use crate::client::{Client, Resp};
use crate::start;

pub fn group(n: usize, tag: &str) -> LogGroup {
    LogGroup {
        logs: (0..n)
            .map(|i| Log {
                time: 1_700_000_000,
                contents: vec![
                    Content {
                        key: "i".into(),
                        value: i.to_string().into_bytes(),
                    },
                    Content {
                        key: "level".into(),
                        value: if i % 2 == 0 {
                            b"INFO".to_vec()
                        } else {
                            b"WARN".to_vec()
                        },
                    },
                    Content {
                        key: "msg".into(),
                        value: "héllo ✓".as_bytes().to_vec(),
                    },
                ],
                time_ns: Some(i as u32),
            })
            .collect(),
        topic: Some("topic".into()),
        source: Some("10.0.0.1".into()),
        log_tags: vec![LogTag {
            key: "tag".into(),
            value: tag.into(),
        }],
        ..Default::default()
    }
}

pub async fn put(c: &Client, path: &str, query: &[(&str, &str)], g: &LogGroup, lz4: bool) -> Resp {
    let raw = g.encode_to_vec();
    let size = raw.len().to_string();
    let (body, mut headers) = if lz4 {
        (
            codec::compress_lz4(&raw),
            vec![("x-log-compresstype", "lz4")],
        )
    } else {
        (raw, vec![])
    };
    headers.push(("x-log-bodyrawsize", &size));
    headers.push(("content-type", "application/x-protobuf"));
    c.send("POST", path, query, &headers, body).await
}

pub async fn cursor(c: &Client, shard: u32, from: &str) -> String {
    let r = c
        .get(
            &format!("/logstores/store/shards/{shard}"),
            &[("type", "cursor"), ("from", from)],
        )
        .await
        .ok();
    r.json()["cursor"].as_str().unwrap().to_owned()
}

pub async fn pull(
    c: &Client,
    shard: u32,
    cursor: &str,
    count: &str,
    extra: &[(&str, &str)],
    lz4: bool,
) -> Resp {
    let mut q = vec![("type", "log"), ("cursor", cursor), ("count", count)];
    q.extend_from_slice(extra);
    c.send(
        "GET",
        &format!("/logstores/store/shards/{shard}"),
        &q,
        &[
            ("accept-encoding", if lz4 { "lz4" } else { "" }),
            ("accept", "application/x-protobuf"),
        ],
        Vec::new(),
    )
    .await
}

pub fn decode(r: &Resp) -> LogGroupList {
    let raw: usize = r.header("x-log-bodyrawsize").parse().unwrap();
    if raw == 0 {
        assert!(r.body.is_empty());
        return LogGroupList::default();
    }
    let compression = match r.headers.get("x-log-compresstype") {
        Some(v) => Compression::from_header(v.to_str().unwrap()).unwrap(),
        None => Compression::None,
    };
    let body = codec::decompress(compression, &r.body, raw, 64 << 20).unwrap();
    LogGroupList::decode(body.as_slice()).unwrap()
}

#[tokio::test]
async fn put_then_pull_returns_exactly_what_was_written() {
    let (emu, c) = start().await;
    let mut written = Vec::new();
    for i in 0..5 {
        let g = group(3, &format!("g{i}"));
        put(
            &c,
            "/logstores/store/shards/route",
            &[("key", "00000000000000000000000000000000")],
            &g,
            i % 2 == 0,
        )
        .await
        .ok();
        written.push(g);
    }
    assert_eq!(emu.log_counts("proj", "store").unwrap(), vec![15, 0, 0, 0]);
    let begin = cursor(&c, 0, "begin").await;
    let end = cursor(&c, 0, "end").await;
    assert_eq!(
        Cursor::parse(&end).unwrap().0 - Cursor::parse(&begin).unwrap().0,
        5
    );

    // Two pulls of 3 then the rest, lz4 and plain: the cursor chain ends with an echo.
    let r1 = pull(&c, 0, &begin, "3", &[], true).await.ok();
    assert_eq!(r1.header("x-log-count"), "3");
    assert_eq!(r1.header("x-log-compresstype"), "lz4");
    assert_eq!(r1.header("content-type"), "application/x-protobuf");
    let next = r1.header("x-log-cursor").to_owned();
    assert_eq!(
        Cursor::parse(&next).unwrap().0,
        Cursor::parse(&begin).unwrap().0 + 3
    );
    assert_eq!(
        r1.header("x-log-read-last-cursor"),
        (Cursor::parse(&next).unwrap().0 - 1).to_string()
    );
    // The same request again (served from the reply cache) is byte-identical.
    let again = pull(&c, 0, &begin, "3", &[], true).await.ok();
    assert_eq!(
        (&again.body, again.header("x-log-cursor")),
        (&r1.body, next.as_str())
    );
    assert_eq!(again.header("x-log-count"), "3");
    let r2 = pull(&c, 0, &next, "1000", &[], false).await.ok();
    assert!(r2.headers.get("x-log-compresstype").is_none());
    assert_eq!(r2.header("x-log-cursor"), end);
    let mut got = decode(&r1).log_groups;
    got.extend(decode(&r2).log_groups);
    assert_eq!(got, written);
    let r3 = pull(&c, 0, &end, "1000", &[], true).await.ok();
    assert_eq!(
        (
            r3.header("x-log-count"),
            r3.header("x-log-bodyrawsize"),
            r3.header("x-log-cursor")
        ),
        ("0", "0", end.as_str())
    );
    assert!(r3.body.is_empty());
    assert_eq!(r3.header("x-log-end-of-cursor"), "0");
    // end_cursor bounds the reply.
    let r4 = pull(&c, 0, &begin, "1000", &[("end_cursor", &next)], true)
        .await
        .ok();
    assert_eq!(
        (r4.header("x-log-count"), r4.header("x-log-cursor")),
        ("3", next.as_str())
    );
}

#[tokio::test]
async fn load_balancing_and_hash_routing() {
    let (emu, c) = start().await;
    for _ in 0..8 {
        put(&c, "/logstores/store/shards/lb", &[], &group(1, "x"), true)
            .await
            .ok();
    }
    assert_eq!(emu.log_counts("proj", "store").unwrap(), vec![2, 2, 2, 2]);
    put(
        &c,
        "/logstores/store/shards/route",
        &[("key", "c0000000000000000000000000000001")],
        &group(1, "x"),
        true,
    )
    .await
    .ok();
    put(&c, "/logstores/store", &[], &group(1, "x"), false)
        .await
        .ok();
    put(&c, "/logstores/store/shards/2", &[], &group(1, "x"), true)
        .await
        .ok();
    let counts = emu.log_counts("proj", "store").unwrap();
    assert_eq!(
        counts[3], 3,
        "key c000…01 is in the last quarter: {counts:?}"
    );
    assert_eq!(counts.iter().sum::<usize>(), 11);
}

#[tokio::test]
async fn cursor_by_time_and_cursor_time() {
    let (_emu, c) = start().await;
    put(
        &c,
        "/logstores/store/shards/route",
        &[("key", "0")],
        &group(1, "x"),
        true,
    )
    .await
    .ok();
    let begin = cursor(&c, 0, "begin").await;
    assert_eq!(
        cursor(&c, 0, "0").await,
        begin,
        "a time before the data is the begin"
    );
    assert_eq!(
        cursor(&c, 0, "99999999999").await,
        cursor(&c, 0, "end").await
    );
    let t = c
        .get(
            "/logstores/store/shards/0",
            &[("type", "cursor_time"), ("cursor", &begin)],
        )
        .await
        .ok()
        .json()["cursor_time"]
        .as_u64()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(t <= now && t + 60 > now, "{t} vs {now}");
    assert_eq!(cursor(&c, 0, &t.to_string()).await, begin);
    assert_eq!(
        cursor(&c, 0, &(t + 1).to_string()).await,
        cursor(&c, 0, "end").await
    );
}

#[tokio::test]
async fn pull_errors() {
    let (_emu, c) = start().await;
    let begin = cursor(&c, 1, "begin").await;
    for count in ["0", "1001", "x"] {
        let r = pull(&c, 1, &begin, count, &[], true).await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (400, "ParameterInvalid"),
            "{count}"
        );
    }
    for bad in [
        "garbage!",
        "MTIzYQ==",
        &Cursor(Cursor::parse(&begin).unwrap().0 + 1).encode(),
        &Cursor(5).encode(),
    ] {
        let r = pull(&c, 1, bad, "10", &[], true).await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (400, "InvalidCursor"),
            "{bad}"
        );
    }
    let r = pull(&c, 9, &begin, "10", &[], true).await;
    assert_eq!((r.status, r.error_code().as_str()), (400, "ShardNotExist"));
    let r = pull(
        &c,
        1,
        &begin,
        "10",
        &[("query", "* | stats count(*)")],
        true,
    )
    .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "ParameterInvalid")
    );
    let r = c
        .get(
            "/logstores/store/shards/1",
            &[("type", "cursor"), ("from", "yesterday")],
        )
        .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "ParameterInvalid")
    );
}

#[tokio::test]
async fn malformed_put_bodies_get_sls_errors() {
    let (emu, c) = start().await;
    let raw = group(2, "x").encode_to_vec();
    let lz4 = codec::compress_lz4(&raw);
    type Case<'a> = (Vec<(&'a str, String)>, Vec<u8>, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![
                ("x-log-compresstype", "lz4".into()),
                ("x-log-bodyrawsize", (raw.len() + 5).to_string()),
            ],
            lz4.clone(),
            "PostBodyUncompressError",
        ),
        (
            vec![
                ("x-log-compresstype", "lz4".into()),
                ("x-log-bodyrawsize", raw.len().to_string()),
            ],
            vec![0xff; 40],
            "PostBodyUncompressError",
        ),
        (
            vec![("x-log-compresstype", "lz4".into())],
            lz4.clone(),
            "MissingBodyRawSize",
        ),
        (
            vec![
                ("x-log-compresstype", "lz4".into()),
                ("x-log-bodyrawsize", "ten".into()),
            ],
            lz4.clone(),
            "InvalidBodyRawSize",
        ),
        (
            vec![
                ("x-log-compresstype", "zstd".into()),
                ("x-log-bodyrawsize", raw.len().to_string()),
            ],
            lz4.clone(),
            "InvalidCompressType",
        ),
        (
            vec![("x-log-bodyrawsize", "3".into())],
            raw.clone(),
            "InvalidBodyRawSize",
        ),
        (vec![], vec![0x0a, 0xff, 0xff, 0x01], "PostBodyInvalid"),
        (
            vec![
                ("x-log-compresstype", "lz4".into()),
                ("x-log-bodyrawsize", (1u64 << 40).to_string()),
            ],
            lz4.clone(),
            "PostBodyTooLarge",
        ),
    ];
    for (headers, body, code) in cases {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = c
            .send("POST", "/logstores/store/shards/lb", &[], &h, body)
            .await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (400, code),
            "{headers:?}"
        );
    }
    assert_eq!(
        emu.log_counts("proj", "store").unwrap(),
        vec![0; 4],
        "nothing written"
    );
}

#[tokio::test]
async fn spl_filters_projects_and_still_advances_the_cursor() {
    let (_emu, c) = start().await;
    put(
        &c,
        "/logstores/store/shards/route",
        &[("key", "0")],
        &group(4, "a"),
        true,
    )
    .await
    .ok();
    put(
        &c,
        "/logstores/store/shards/route",
        &[("key", "0")],
        &group(2, "b"),
        true,
    )
    .await
    .ok();
    let begin = cursor(&c, 0, "begin").await;
    let end = cursor(&c, 0, "end").await;
    let q = "* | where level = 'WARN' and __tag__:tag in ('a') | project msg, i";
    let r = pull(
        &c,
        0,
        &begin,
        "1000",
        &[("query", q), ("pullMode", "scan_on_stream")],
        true,
    )
    .await
    .ok();
    let list = decode(&r);
    assert_eq!(list.log_groups.len(), 1);
    let logs = &list.log_groups[0].logs;
    assert_eq!(logs.len(), 2);
    assert!(
        logs.iter()
            .all(|l| l.contents.iter().map(|c| c.key.as_str()).eq(["msg", "i"]))
    );
    assert_eq!(r.header("x-log-cursor"), end);
    assert_eq!(r.header("x-log-rawdatacount"), "2");
    assert_eq!(r.header("x-log-rawdatalines"), "6");
    assert_eq!(r.header("x-log-resultlines"), "2");
    assert!(r.header("x-log-rawdatasize").parse::<usize>().unwrap() > 0);
    // Nothing matches: empty body, but the cursor moves past the scanned groups.
    let r = pull(
        &c,
        0,
        &begin,
        "1000",
        &[("query", "* | where level = 'NOPE'")],
        true,
    )
    .await
    .ok();
    assert_eq!(
        (r.header("x-log-count"), r.header("x-log-bodyrawsize")),
        ("0", "0")
    );
    assert_eq!(r.header("x-log-cursor"), end);
    // `*` alone is the identity.
    let r = pull(&c, 0, &begin, "1000", &[("query", "*")], true)
        .await
        .ok();
    assert_eq!(
        decode(&r)
            .log_groups
            .iter()
            .map(|g| g.logs.len())
            .sum::<usize>(),
        6
    );
}

#[tokio::test]
async fn pull_replies_are_capped_in_bytes() {
    let mut config = shipper_emulator::EmulatorConfig::new(crate::AK_ID, crate::AK_SECRET);
    config.max_pull_bytes = 10_000;
    let emu = shipper_emulator::Emulator::start(config).await.unwrap();
    emu.create_logstore("proj", "store", 1).unwrap();
    let c = Client::new(emu.addr(), "proj");
    let big = group(40, "x"); // ~2.5 KB
    for _ in 0..20 {
        put(&c, "/logstores/store/shards/lb", &[], &big, true)
            .await
            .ok();
    }
    let mut cur = cursor(&c, 0, "begin").await;
    let end = cursor(&c, 0, "end").await;
    let mut total = 0;
    let mut pulls = 0;
    while cur != end {
        let r = pull(&c, 0, &cur, "1000", &[], true).await.ok();
        let raw: usize = r.header("x-log-bodyrawsize").parse().unwrap();
        assert!(raw <= 10_000, "{raw}");
        total += decode(&r).log_groups.len();
        cur = r.header("x-log-cursor").to_owned();
        pulls += 1;
    }
    assert_eq!(total, 20);
    assert!(pulls >= 4, "{pulls}");
}
