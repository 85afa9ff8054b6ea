//! The SLS API calls, as `async` methods on [`Client`](crate::Client), grouped by family
//! (docs/sls-protocol.md §5 "APIs"). Each call builds an `ApiRequest` the way the official SDKs
//! do (same paths, parameters, headers and JSON shapes, so the unit tests can compare built
//! requests with the SDK's recorded ones) and decodes the answer into plain types.
//!
//! Retrying is not done here: every error says whether it is retryable and the caller (the
//! consumer, the app) decides.
//!
//! Layout:
//! - [`project`] — CreateProject, CreateLogstore, ListLogstores (setup, tests, the emulator demo).
//! - [`shards`] — ListShards, SplitShard.
//! - [`logs`] — GetCursor, PullLogs, PutLogs.
//! - [`consumer_group`] — consumer-group CRUD, heartbeat, checkpoints.

pub mod consumer_group;
pub mod logs;
pub mod project;
pub mod shards;

/// `/logstores/{ls}`.
fn logstore_path(logstore: &str) -> String {
    format!("/logstores/{logstore}")
}

/// Parses a JSON response body.
fn parse_json<T: serde::de::DeserializeOwned>(
    op: &'static str,
    body: &[u8],
) -> Result<T, crate::SlsError> {
    serde_json::from_slice(body).map_err(|e| {
        let start: String = String::from_utf8_lossy(body).chars().take(120).collect();
        crate::SlsError::decode(op, format!("invalid JSON ({e}) in {start:?}"))
    })
}

/// A JSON string literal (for the hand-formatted, SDK-shaped bodies).
fn json_str(s: &str) -> String {
    serde_json::to_string(s).expect("a str always serialises")
}

#[cfg(test)]
pub(crate) mod vectors {
    //! The SDK-recorded requests of `tests/fixtures/sls/signature_vectors.json`, and a checker
    //! that a request built by our API code is the same request.

    use crate::client::{ApiRequest, Client, ClientConfig};
    use crate::sign::Credentials;

    pub fn doc() -> serde_json::Value {
        let path = format!(
            "{}/../../tests/fixtures/sls/signature_vectors.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    pub fn case(name: &str) -> serde_json::Value {
        doc()["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no vector {name}"))
            .clone()
    }

    pub fn client(sts: bool) -> Client {
        let mut creds = Credentials::new("testAkId", "testAkSecret");
        if sts {
            creds = creds.with_security_token("testStsToken");
        }
        Client::new(ClientConfig::new(
            "cn-hangzhou.log.aliyuncs.com",
            "test-project",
            creds,
        ))
        .unwrap()
    }

    /// Asserts that `req` is, on the wire, the request the SDK sent in vector `name`: same
    /// method, target, body, every signed and content header, and the same Authorization.
    /// `fixups` rewrite the vector where shipper deliberately differs (documented at the call).
    pub fn assert_same_request(
        name: &str,
        client: &Client,
        req: &ApiRequest,
        fixups: &[(&str, &str)],
    ) {
        let case = case(name);
        let fix = |s: &str| {
            fixups
                .iter()
                .fold(s.to_owned(), |acc, (from, to)| acc.replace(from, to))
        };
        let date = case["headers_sent_by_sdk"]["Date"].as_str().unwrap();
        let now = httpdate::parse_http_date(date).unwrap();
        let creds = client.credentials().current();
        let prepared = client.prepare(req, &creds.credentials, now);
        assert_eq!(req.method.as_str(), case["method"], "{name}: method");
        assert_eq!(
            prepared.target,
            fix(case["request_target_on_wire"].as_str().unwrap()),
            "{name}: request target"
        );
        assert_eq!(
            hex::encode(&req.body),
            case["body_hex"].as_str().unwrap(),
            "{name}: body"
        );
        let expected_sts = fix(case["string_to_sign"].as_str().unwrap());
        assert_eq!(
            prepared.string_to_sign, expected_sts,
            "{name}: string to sign"
        );
        let mut ours: Vec<(String, String)> = prepared
            .headers
            .iter()
            .filter(|(k, _)| *k != "authorization")
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        ours.sort();
        let mut theirs: Vec<(String, String)> = case["headers_sent_by_sdk"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().unwrap().to_owned()))
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "authorization" | "content-length" | "host" | "user-agent" | "x-log-date"
                )
            })
            .collect();
        theirs.sort();
        assert_eq!(ours, theirs, "{name}: headers");
        let auth = prepared
            .headers
            .iter()
            .find(|(k, _)| *k == "authorization")
            .unwrap();
        if fixups.is_empty() {
            assert_eq!(auth.1, case["authorization"], "{name}: authorization");
        } else {
            let sig = crate::sign::signature("testAkSecret", &expected_sts);
            assert_eq!(
                auth.1,
                format!("LOG testAkId:{sig}"),
                "{name}: authorization"
            );
        }
    }
}
