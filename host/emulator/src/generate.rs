//! Deterministic sample logs for demos and benchmarks: ActionTrail-style audit events
//! (topic `actiontrail_audit_event`, content `event` = nested JSON of ~1 KB) and nginx access
//! logs (17 fields, 200–1500 bytes). Same seed, same logs, on every platform: the PRNG is a
//! self-contained SplitMix64, not a crate whose streams may change between versions.
//!
//! [`Generator`] makes LogGroups; the emulator uses it for `--generate RATE` and
//! [`crate::EmulatorHandle::preload`] (benchmarks preload gigabytes through it, so it writes
//! protobuf directly into one buffer per group instead of building prost messages).
//! Not here: deciding where groups go (that is the caller's job).

use std::fmt::Write as _;
use std::str::FromStr;

use bytes::Bytes;

/// Which samples to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SampleKind {
    /// ActionTrail audit events.
    Audit,
    /// nginx access logs.
    Nginx,
    /// Alternating groups of both.
    #[default]
    Mixed,
}

impl FromStr for SampleKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "audit" | "actiontrail" => Ok(Self::Audit),
            "nginx" => Ok(Self::Nginx),
            "mixed" => Ok(Self::Mixed),
            _ => Err(format!("unknown sample kind {s:?} (audit, nginx or mixed)")),
        }
    }
}

/// Topic of audit groups (as ActionTrail delivers them to SLS).
pub const AUDIT_TOPIC: &str = "actiontrail_audit_event";
/// Topic of nginx groups.
pub const NGINX_TOPIC: &str = "nginx_access_log";

/// SplitMix64: tiny, fast, and its output is fixed by its definition.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }

    fn hex(&mut self, out: &mut String, digits: usize) {
        for _ in 0..digits {
            let d = self.below(16) as u32;
            out.push(char::from_digit(d, 16).expect("< 16").to_ascii_uppercase());
        }
    }
}

/// Produces sample LogGroups.
#[derive(Debug, Clone)]
pub struct Generator {
    rng: Rng,
    kind: SampleKind,
    groups: u64,
    scratch: String,
}

/// Unix seconds → (year, month, day, hour, minute, second), UTC (civil-from-days).
fn civil(ts: u32) -> (i64, u32, u32, u32, u32, u32) {
    let secs = i64::from(ts);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400) as u32;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, rem / 3600, rem / 60 % 60, rem % 60)
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, tag: u8, b: &[u8]) {
    out.push(tag);
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Appends a `Content`/`LogTag` (key=1, value=2) as field `tag`.
fn put_pair(out: &mut Vec<u8>, tag: u8, key: &str, value: &[u8]) {
    let inner = 2 + key.len() + value.len() + 10;
    let mut buf = Vec::with_capacity(inner);
    put_bytes(&mut buf, 0x0a, key.as_bytes());
    put_bytes(&mut buf, 0x12, value);
    put_bytes(out, tag, &buf);
}

const REGIONS: &[&str] = &[
    "cn-hangzhou",
    "cn-shanghai",
    "cn-beijing",
    "ap-southeast-1",
    "eu-central-1",
];
const SERVICES: &[(&str, &str, &str, &[&str])] = &[
    (
        "ecs.aliyuncs.com",
        "Ecs",
        "ACS::ECS::Instance",
        &[
            "DescribeInstances",
            "StartInstance",
            "StopInstance",
            "RunInstances",
            "ModifyInstanceAttribute",
        ],
    ),
    (
        "oss.aliyuncs.com",
        "Oss",
        "ACS::OSS::Bucket",
        &[
            "GetBucketAcl",
            "PutBucketPolicy",
            "ListObjects",
            "DeleteObject",
        ],
    ),
    (
        "ram.aliyuncs.com",
        "Ram",
        "ACS::RAM::User",
        &[
            "CreateUser",
            "AttachPolicyToUser",
            "CreateAccessKey",
            "ListUsers",
        ],
    ),
    (
        "sls.aliyuncs.com",
        "Sls",
        "ACS::SLS::Project",
        &["GetLogStoreLogs", "CreateLogStore", "UpdateConsumerGroup"],
    ),
    (
        "signin.aliyun.com",
        "Signin",
        "ACS::Account::Login",
        &["ConsoleSignin", "ConsoleSignout"],
    ),
];
const USERS: &[&str] = &[
    "alice",
    "bob",
    "carol",
    "dave",
    "ops-robot",
    "ci-deployer",
    "auditor",
];
const AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "aliyun-cli/3.0.200 (linux; amd64) Go/1.22",
    "AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/2.13.36 python-requests/2.31.0",
    "curl/8.5.0",
    "Terraform/1.7.5 terraform-provider-alicloud/1.219.0",
];
const PATHS: &[&str] = &[
    "/",
    "/index.html",
    "/api/v1/orders",
    "/api/v1/users/me",
    "/static/js/app.4f1c2b.js",
    "/static/css/main.css",
    "/login",
    "/logout",
    "/healthz",
    "/api/v2/search",
    "/images/logo.png",
    "/cart/checkout",
    "/wp-login.php",
    "/.env",
    "/api/v1/payments/callback",
];
const METHODS: &[&str] = &[
    "GET", "GET", "GET", "GET", "POST", "POST", "PUT", "DELETE", "HEAD",
];
const STATUSES: &[&str] = &[
    "200", "200", "200", "200", "200", "200", "304", "301", "404", "403", "500", "502",
];
const REFERERS: &[&str] = &[
    "-",
    "-",
    "https://www.example.com/",
    "https://www.google.com/search?q=shop",
    "https://shop.example.com/cart",
];

impl Generator {
    /// A generator of `kind` seeded with `seed`.
    pub fn new(kind: SampleKind, seed: u64) -> Self {
        Self {
            rng: Rng(seed),
            kind,
            groups: 0,
            scratch: String::with_capacity(2048),
        }
    }

    fn ip(&mut self) -> String {
        let r = self.rng.next();
        format!(
            "{}.{}.{}.{}",
            1 + r % 223,
            (r >> 8) % 256,
            (r >> 16) % 256,
            1 + (r >> 24) % 254
        )
    }

    /// One encoded LogGroup of `logs` logs stamped `time` (unix seconds), with topic,
    /// source and the tags Logtail adds (`__hostname__`, `__pack_id__`).
    pub fn group(&mut self, logs: usize, time: u32) -> Bytes {
        let audit = match self.kind {
            SampleKind::Audit => true,
            SampleKind::Nginx => false,
            SampleKind::Mixed => self.groups.is_multiple_of(2),
        };
        self.groups += 1;
        let mut out = Vec::with_capacity(logs * if audit { 1200 } else { 600 } + 128);
        let mut log = Vec::with_capacity(2048);
        for i in 0..logs {
            log.clear();
            log.push(0x08);
            put_varint(&mut log, u64::from(time));
            if audit {
                self.audit_contents(&mut log, time);
            } else {
                self.nginx_contents(&mut log, time);
            }
            // Time_ns (fixed32): spread the logs over the second.
            let ns = (i as u64 * 7_919 + self.rng.below(1_000_000)) % 1_000_000_000;
            log.push(0x25);
            log.extend_from_slice(&(ns as u32).to_le_bytes());
            put_bytes(&mut out, 0x0a, &log);
        }
        put_bytes(
            &mut out,
            0x1a,
            if audit { AUDIT_TOPIC } else { NGINX_TOPIC }.as_bytes(),
        );
        let source = format!("10.0.{}.{}", self.rng.below(8), 10 + self.rng.below(40));
        put_bytes(&mut out, 0x22, source.as_bytes());
        let host = format!(
            "{}-{:02}",
            if audit { "actiontrail" } else { "web" },
            self.rng.below(16)
        );
        put_pair(&mut out, 0x32, "__hostname__", host.as_bytes());
        let mut pack = String::with_capacity(40);
        self.rng.hex(&mut pack, 16);
        pack.push('-');
        let _ = write!(pack, "{:X}", self.groups);
        put_pair(&mut out, 0x32, "__pack_id__", pack.as_bytes());
        Bytes::from(out)
    }

    fn audit_contents(&mut self, log: &mut Vec<u8>, time: u32) {
        let (y, mo, d, h, mi, s) = civil(time);
        let (source, service, resource_type, actions) =
            SERVICES[self.rng.below(SERVICES.len() as u64) as usize];
        let action = self.rng.pick(actions);
        let region = self.rng.pick(REGIONS);
        let user = self.rng.pick(USERS);
        let agent = self.rng.pick(AGENTS);
        let ip = self.ip();
        let account = 1_000_000_000_000_000 + self.rng.below(9_000_000_000_000_000);
        let principal = 200_000_000_000_000_000 + self.rng.below(99_999_999_999_999_999);
        let ok = self.rng.below(10) != 0;
        let mut request_id = String::with_capacity(40);
        self.rng.hex(&mut request_id, 8);
        request_id.push('-');
        self.rng.hex(&mut request_id, 4);
        request_id.push('-');
        self.rng.hex(&mut request_id, 4);
        request_id.push('-');
        self.rng.hex(&mut request_id, 4);
        request_id.push('-');
        self.rng.hex(&mut request_id, 12);
        let mut key = String::from("LTAI");
        self.rng.hex(&mut key, 20);
        let instance = format!("i-{}{:x}", &region[..2], self.rng.next() & 0xffff_ffff_ffff);
        let e = &mut self.scratch;
        e.clear();
        let _ = write!(
            e,
            concat!(
                "{{\"eventId\":\"{rid}\",\"eventVersion\":1,\"eventSource\":\"{src}\",",
                "\"sourceIpAddress\":\"{ip}\",\"userAgent\":\"{ua}\",\"eventType\":\"ApiCall\",",
                "\"eventName\":\"{act}\",\"eventTime\":\"{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z\",",
                "\"eventRW\":\"{rw}\",\"acsRegion\":\"{reg}\",\"requestId\":\"{rid}\",",
                "\"apiVersion\":\"2014-05-26\",\"serviceName\":\"{svc}\",\"isGlobal\":false,",
                "\"userIdentity\":{{\"type\":\"ram-user\",\"principalId\":\"{pid}\",",
                "\"accountId\":\"{acct}\",\"userName\":\"{user}\",\"accessKeyId\":\"{key}\",",
                "\"sessionContext\":{{\"attributes\":{{\"creationDate\":\"{y:04}-{mo:02}-{d:02}T{h:02}:00:00Z\",",
                "\"mfaAuthenticated\":\"{mfa}\"}}}}}},",
                "\"requestParameters\":{{\"RegionId\":\"{reg}\",\"InstanceId\":\"{inst}\",",
                "\"PageSize\":50,\"PageNumber\":1,\"HostId\":\"{src}\",\"RequestId\":\"{rid}\",",
                "\"AcsHost\":\"{svc_lc}.{reg}.aliyuncs.com\"}},",
                "\"responseElements\":{{\"RequestId\":\"{rid}\"}},",
                "\"resourceType\":\"{rt}\",\"resourceName\":\"{inst}\",",
                "\"errorCode\":\"{ec}\",\"errorMessage\":\"{em}\",",
                "\"referencedResources\":{{\"{rt}\":[\"{inst}\"]}},",
                "\"additionalEventData\":{{\"callerBucket\":\"\",\"loginAccount\":\"{user}@{acct}.onaliyun.com\"}}}}"
            ),
            y = y,
            mo = mo,
            d = d,
            h = h,
            mi = mi,
            s = s,
            rid = request_id,
            src = source,
            ip = ip,
            ua = agent,
            act = action,
            rw = if action.starts_with("Describe")
                || action.starts_with("Get")
                || action.starts_with("List")
            {
                "Read"
            } else {
                "Write"
            },
            reg = region,
            svc = service,
            svc_lc = service.to_ascii_lowercase(),
            pid = principal,
            acct = account,
            user = user,
            key = key,
            mfa = ok,
            inst = instance,
            rt = resource_type,
            ec = if ok { "" } else { "Forbidden.RAM" },
            em = if ok {
                ""
            } else {
                "User not authorized to operate on the specified resource."
            },
        );
        put_pair(log, 0x12, "event", e.as_bytes());
    }

    fn nginx_contents(&mut self, log: &mut Vec<u8>, time: u32) {
        let (y, mo, d, h, mi, s) = civil(time);
        let ip = self.ip();
        let method = self.rng.pick(METHODS);
        let mut uri = String::from(self.rng.pick(PATHS));
        // Query strings make the size vary from ~200 B to ~1.5 KB per log.
        let params = self.rng.below(24);
        for p in 0..params {
            let _ = write!(
                uri,
                "{}p{p}={:x}",
                if p == 0 { '?' } else { '&' },
                self.rng.next() >> (self.rng.below(48) as u32)
            );
        }
        let status = self.rng.pick(STATUSES);
        let bytes = self.rng.below(200_000).to_string();
        let rt = self.rng.below(3000);
        let fields: [(&str, String); 17] = [
            ("remote_addr", ip.clone()),
            (
                "remote_user",
                if self.rng.below(5) == 0 {
                    self.rng.pick(USERS).to_owned()
                } else {
                    "-".to_owned()
                },
            ),
            (
                "time_local",
                format!(
                    "{d:02}/{}/{y:04}:{h:02}:{mi:02}:{s:02} +0000",
                    MONTHS[(mo - 1) as usize]
                ),
            ),
            ("request_method", method.to_owned()),
            ("request_uri", uri),
            (
                "server_protocol",
                if self.rng.below(3) == 0 {
                    "HTTP/2.0"
                } else {
                    "HTTP/1.1"
                }
                .to_owned(),
            ),
            ("status", status.to_owned()),
            ("body_bytes_sent", bytes),
            ("http_referer", self.rng.pick(REFERERS).to_owned()),
            ("http_user_agent", self.rng.pick(AGENTS).to_owned()),
            (
                "http_x_forwarded_for",
                if self.rng.below(2) == 0 {
                    "-".to_owned()
                } else {
                    format!("{ip}, 10.0.0.1")
                },
            ),
            ("request_time", format!("{}.{:03}", rt / 1000, rt % 1000)),
            (
                "upstream_response_time",
                format!("{}.{:03}", rt / 1000, (rt % 1000).saturating_sub(1)),
            ),
            (
                "upstream_addr",
                format!("10.1.{}.{}:8080", self.rng.below(4), 2 + self.rng.below(20)),
            ),
            ("host", "shop.example.com".to_owned()),
            ("request_length", (200 + self.rng.below(1800)).to_string()),
            ("scheme", "https".to_owned()),
        ];
        for (k, v) in &fields {
            put_pair(log, 0x12, k, v.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use shipper_sls::proto::LogGroup;

    #[test]
    fn deterministic_and_decodable() {
        let a = Generator::new(SampleKind::Mixed, 7).group(10, 1_700_000_000);
        let b = Generator::new(SampleKind::Mixed, 7).group(10, 1_700_000_000);
        assert_eq!(a, b);
        let c = Generator::new(SampleKind::Mixed, 8).group(10, 1_700_000_000);
        assert_ne!(a, c);
        let g = LogGroup::decode(a).unwrap();
        assert_eq!(g.logs.len(), 10);
        assert_eq!(g.topic.as_deref(), Some(AUDIT_TOPIC));
        assert_eq!(g.log_tags.len(), 2);
        assert!(
            g.logs
                .iter()
                .all(|l| l.time == 1_700_000_000 && l.time_ns.is_some())
        );
    }

    #[test]
    fn audit_events_are_json_of_about_a_kilobyte() {
        let mut generator = Generator::new(SampleKind::Audit, 1);
        let g = LogGroup::decode(generator.group(50, 1_700_000_000)).unwrap();
        for log in &g.logs {
            assert_eq!(log.contents.len(), 1);
            assert_eq!(log.contents[0].key, "event");
            let v: serde_json::Value = serde_json::from_slice(&log.contents[0].value).unwrap();
            assert_eq!(v["eventTime"], "2023-11-14T22:13:20Z");
            assert!(v["userIdentity"]["userName"].is_string());
            let len = log.contents[0].value.len();
            assert!((800..1600).contains(&len), "{len}");
        }
    }

    #[test]
    fn nginx_logs_have_17_fields_and_vary_in_size() {
        let mut generator = Generator::new(SampleKind::Nginx, 3);
        let g = LogGroup::decode(generator.group(500, 1_700_000_000)).unwrap();
        assert_eq!(g.topic.as_deref(), Some(NGINX_TOPIC));
        let sizes: Vec<usize> = g.logs.iter().map(|l| l.encoded_len()).collect();
        assert!(g.logs.iter().all(|l| l.contents.len() == 17));
        let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
        assert!(*min >= 200 && *max <= 1500, "{min}..{max}");
        assert!(max - min > 300, "{min}..{max}");
        let t = &g.logs[0].contents[2];
        assert_eq!(t.key, "time_local");
        assert_eq!(t.value, b"14/Nov/2023:22:13:20 +0000");
    }
}
