//! Sample logs: the built-in samples `shipper plugin test` and plugin self-tests use, and
//! the deterministic shapes the benchmarks measure (nginx access logs with 16 fields,
//! application logs with 10).

use crate::proto::{Content, Log, LogGroup, LogTag};

/// The built-in samples as flattened JSONL: an ActionTrail audit group (nested JSON in
/// `event`), an nginx access group (16 fields) and an edge-case group (unicode, empty values,
/// `=`, `|`, `\`, quotes, newlines, tabs, control characters).
pub const BUILTIN_JSONL: &str = include_str!("builtin.jsonl");

/// The built-in samples as log groups.
pub fn builtin_groups() -> Vec<LogGroup> {
    super::parse(BUILTIN_JSONL).expect("the built-in samples are valid (tested)")
}

/// Field names of the benchmark's nginx-style log (16 fields, the benchmark's "nginx16" data).
const NGINX_FIELDS: [&str; 16] = [
    "remote_addr",
    "remote_user",
    "time_local",
    "request_method",
    "request_uri",
    "protocol",
    "status",
    "body_bytes_sent",
    "http_referer",
    "http_user_agent",
    "request_time",
    "upstream_response_time",
    "upstream_addr",
    "host",
    "http_x_forwarded_for",
    "request_id",
];

/// A deterministic nginx-access log group with `logs` logs of 16 fields (~550 bytes each
/// encoded), the shape the benchmarks measure: for benchmarks.
pub fn nginx_group(logs: usize) -> LogGroup {
    let methods = ["GET", "POST", "PUT", "DELETE"];
    let statuses = ["200", "201", "301", "404", "500", "200", "200"];
    let mut group = LogGroup {
        logs: Vec::with_capacity(logs),
        reserved: None,
        topic: Some("nginx_access".into()),
        source: Some("10.20.30.40".into()),
        machine_uuid: None,
        log_tags: vec![
            LogTag {
                key: "__hostname__".into(),
                value: "web-frontend-01".into(),
            },
            LogTag {
                key: "__path__".into(),
                value: "/var/log/nginx/access.log".into(),
            },
            LogTag {
                key: "__pack_id__".into(),
                value: "5F3A2B1C0D9E8F7A-1".into(),
            },
        ],
    };
    for i in 0..logs {
        let values: [String; 16] = [
            format!("192.168.{}.{}", i % 256, (i * 7) % 256),
            "-".into(),
            "24/Nov/2026:15:58:01 +0000".into(),
            methods[i % methods.len()].into(),
            format!("/api/v1/orders/{}?page={}&sort=desc", 100_000 + i, i % 10),
            "HTTP/1.1".into(),
            statuses[i % statuses.len()].into(),
            format!("{}", 512 + (i * 37) % 20_000),
            "https://shop.example.com/cart".into(),
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/120.0 Safari/537.36"
                .into(),
            format!("0.{:03}", (i * 13) % 1000),
            format!("0.{:03}", (i * 11) % 1000),
            format!("10.0.{}.{}:8080", i % 4, i % 16),
            "shop.example.com".into(),
            "-".into(),
            format!("{:032x}", (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        ];
        group.logs.push(Log {
            time: 1_700_000_000 + u32::try_from(i % 86_400).expect("small"),
            contents: NGINX_FIELDS
                .iter()
                .zip(values)
                .map(|(key, value)| Content {
                    key: (*key).into(),
                    value: value.into_bytes(),
                })
                .collect(),
            time_ns: Some(u32::try_from((i * 1_000_003) % 1_000_000_000).expect("small")),
        });
    }
    group
}

/// Field names of [`app_group`]'s logs.
const APP_FIELDS: [&str; 10] = [
    "level",
    "logger",
    "thread",
    "trace_id",
    "span_id",
    "service",
    "env",
    "user_id",
    "latency_ms",
    "message",
];

/// A log group of `logs` application logs with 10 fields (~350 bytes each, the benchmark's
/// `app10` shape), for benchmarks next to the 16-field [`nginx_group`].
pub fn app_group(logs: usize) -> LogGroup {
    let levels = ["INFO", "INFO", "INFO", "WARN", "ERROR", "DEBUG"];
    let mut group = LogGroup {
        logs: Vec::with_capacity(logs),
        reserved: None,
        topic: Some("app".into()),
        source: Some("10.20.30.41".into()),
        machine_uuid: None,
        log_tags: vec![LogTag {
            key: "__hostname__".into(),
            value: "orders-7d9f8-x2k4p".into(),
        }],
    };
    for i in 0..logs {
        let values: [String; 10] = [
            levels[i % levels.len()].into(),
            "com.example.orders.OrderService".into(),
            format!("http-nio-8080-exec-{}", i % 32),
            format!("{:032x}", (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            format!("{:016x}", (i as u64).wrapping_mul(0x2545_f491_4f6c_dd1d)),
            "orders".into(),
            "prod".into(),
            format!("u{}", 10_000 + i % 5_000),
            format!("{}", (i * 7) % 900),
            format!(
                "order {} placed: {} items, total {}.{:02} EUR, payment authorised",
                200_000 + i,
                1 + i % 9,
                10 + i % 500,
                i % 100
            ),
        ];
        group.logs.push(Log {
            time: 1_700_000_000 + u32::try_from(i % 86_400).expect("small"),
            contents: APP_FIELDS
                .iter()
                .zip(values)
                .map(|(key, value)| Content {
                    key: (*key).into(),
                    value: value.into_bytes(),
                })
                .collect(),
            time_ns: Some(u32::try_from((i * 1_000_003) % 1_000_000_000).expect("small")),
        });
    }
    group
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::encode_group;

    #[test]
    fn builtin_samples_cover_the_advertised_cases() {
        let groups = builtin_groups();
        assert!(groups.len() >= 3, "{}", groups.len());
        assert!(
            groups
                .iter()
                .any(|g| g.topic.as_deref() == Some("actiontrail_audit_event"))
        );
        let all_values: Vec<String> = groups
            .iter()
            .flat_map(|g| &g.logs)
            .flat_map(|l| &l.contents)
            .map(|c| String::from_utf8(c.value.clone()).unwrap())
            .collect();
        for needle in ["\n", "\\", "=", "|", "\"", "中文", ""] {
            assert!(
                all_values.iter().any(|v| v.contains(needle)),
                "no value with {needle:?}"
            );
        }
        for group in &groups {
            let bytes = encode_group(group);
            let view = crate::proto::LogGroupView::parse(bytes.into()).unwrap();
            assert_eq!(view.log_ranges().unwrap().len(), group.logs.len());
        }
    }

    #[test]
    fn nginx_group_has_16_fields_of_realistic_size() {
        let group = nginx_group(500);
        assert_eq!(group.logs.len(), 500);
        assert!(group.logs.iter().all(|l| l.contents.len() == 16));
        let per_log = encode_group(&group).len() / 500;
        assert!((400..700).contains(&per_log), "{per_log} bytes per log");
    }
}
