//! A deliberately small signed SLS client for these tests: one HTTP/1.1 connection per
//! request, v1 signature via `shipper_sls::sign`, query strings form-encoded the way
//! `requests` does it (so the server's decoding is exercised).

use bytes::Bytes;
use http::{HeaderMap, Method, Request};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use shipper_sls::sign;
use std::net::SocketAddr;

pub const AK_ID: &str = "testAkId";
pub const AK_SECRET: &str = "testAkSecret";

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("missing {name} in {:?}", self.headers))
            .to_str()
            .unwrap()
    }

    /// Asserts an SLS error and returns its code.
    pub fn error_code(&self) -> String {
        let v = self.json();
        assert_eq!(
            v["requestId"].as_str().unwrap(),
            self.header("x-log-requestid")
        );
        assert!(v["errorMessage"].is_string(), "{v}");
        v["errorCode"].as_str().unwrap().to_owned()
    }

    pub fn ok(self) -> Self {
        assert_eq!(self.status, 200, "{}", String::from_utf8_lossy(&self.body));
        self
    }
}

#[derive(Clone)]
pub struct Client {
    pub addr: SocketAddr,
    pub project: Option<String>,
    pub secret: String,
    /// Send an absolute-form request target, as clients behind HTTP_PROXY do.
    pub absolute_form: bool,
    /// Add the v1 `Authorization` header (off: the request carries only the `extra`
    /// headers' one, if any).
    pub sign: bool,
    /// Send this body instead of the signed one (a man in the middle who keeps the headers).
    pub swap_body: Option<Vec<u8>>,
}

/// Form-encodes like Python's `quote_plus`.
fn form(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~')
        .remove(b' ');
    percent_encoding::utf8_percent_encode(s, SET)
        .to_string()
        .replace(' ', "+")
}

impl Client {
    pub fn new(addr: SocketAddr, project: &str) -> Self {
        Self {
            addr,
            project: Some(project.to_owned()),
            secret: AK_SECRET.to_owned(),
            absolute_form: false,
            sign: true,
            swap_body: None,
        }
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        extra: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Resp {
        self.try_send(method, path, query, extra, body)
            .await
            .expect("an HTTP response")
    }

    /// [`send`](Self::send), but a connection that ends without a response is an `Err`.
    pub async fn try_send(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        extra: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Resp, hyper::Error> {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let host = match &self.project {
            Some(p) => format!("{p}.127.0.0.1"),
            None => "127.0.0.1".to_owned(),
        };
        let date = sign::http_date_now();
        let mut headers: Vec<(String, String)> = vec![
            ("x-log-apiversion".into(), sign::API_VERSION.into()),
            (
                "x-log-signaturemethod".into(),
                sign::SIGNATURE_METHOD.into(),
            ),
            ("date".into(), date.clone()),
            ("x-log-date".into(), date.clone()),
        ];
        let mut content_type = String::new();
        let mut md5 = String::new();
        if !body.is_empty() {
            md5 = sign::content_md5(&body);
            headers.push(("content-md5".into(), md5.clone()));
        }
        for (k, v) in extra {
            if k.eq_ignore_ascii_case("content-type") {
                content_type = (*v).to_owned();
            }
            headers.push(((*k).to_owned(), (*v).to_owned()));
        }
        if body.is_empty() && !extra.iter().any(|(k, _)| *k == "x-log-bodyrawsize") {
            headers.push(("x-log-bodyrawsize".into(), "0".into()));
        }
        let params: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let parts = sign::SignedParts {
            method: method.as_str(),
            path,
            query: &params,
            content_md5: &md5,
            content_type: &content_type,
            date: &date,
        };
        let sts = sign::string_to_sign(
            &parts,
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        );
        let auth = sign::authorization(AK_ID, &sign::signature(&self.secret, &sts));
        let qs: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{}={}", form(k), form(v)))
            .collect();
        let mut target = path.to_owned();
        if !qs.is_empty() {
            target = format!("{target}?{}", qs.join("&"));
        }
        if self.absolute_form {
            target = format!("http://{host}:80{target}");
        }
        let mut req = Request::builder()
            .method(method)
            .uri(target)
            .header("host", &host);
        for (k, v) in &headers {
            req = req.header(k.as_str(), v.as_str());
        }
        if self.sign {
            req = req.header("authorization", auth);
        }
        let body = self.swap_body.clone().unwrap_or(body);
        let req = req
            .header("content-length", body.len())
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let resp = sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await?.to_bytes();
        assert!(
            headers.contains_key("x-log-requestid"),
            "every response has a request id"
        );
        Ok(Resp {
            status,
            headers,
            body,
        })
    }

    pub async fn get(&self, path: &str, query: &[(&str, &str)]) -> Resp {
        self.send("GET", path, query, &[], Vec::new()).await
    }

    pub async fn post_json(
        &self,
        path: &str,
        query: &[(&str, &str)],
        body: serde_json::Value,
    ) -> Resp {
        self.send(
            "POST",
            path,
            query,
            &[("content-type", "application/json")],
            body.to_string().into_bytes(),
        )
        .await
    }
}
