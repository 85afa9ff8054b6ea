//! The syslog sink through an HTTP proxy (`CONNECT`), against an in-process proxy and an
//! in-process TCP receiver: the messages arrive through the tunnel with the proxy's
//! credentials; a proxy answering 407 gets an error naming it and the fix. (tinyproxy and
//! the HEC/SLS sides are tested end to end in tests/e2e/run_proxy.rs.)

use std::sync::{Arc, Mutex};

use serde_json::json;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::rsyslog::numbered;
use crate::{build, render_all};

/// A CONNECT proxy on 127.0.0.1: records each request head, answers `status` (tunnelling
/// on 200).
async fn connect_proxy(status: &'static str) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let (client, _) = listener.accept().await.unwrap();
            let log = log.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(client);
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                let target = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                log.lock().unwrap().push(head);
                let mut client = reader.into_inner();
                let _ = client
                    .write_all(format!("HTTP/1.1 {status}\r\n\r\n").as_bytes())
                    .await;
                if status.starts_with("200")
                    && let Ok(mut upstream) = TcpStream::connect(&target).await
                {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                }
            });
        }
    });
    (port, seen)
}

#[tokio::test]
async fn syslog_tcp_goes_through_a_connect_tunnel_with_proxy_credentials() {
    let receiver = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = receiver.local_addr().unwrap();
    let received = tokio::spawn(async move {
        let (mut s, _) = receiver.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        while !String::from_utf8_lossy(&buf).contains("via-proxy seq=49") {
            let n = s.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed before every message arrived");
            buf.extend_from_slice(&chunk[..n]);
        }
        String::from_utf8(buf).unwrap()
    });
    let (port, seen) = connect_proxy("200 Connection established").await;
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("proxy-credentials");
    std::fs::write(&creds, "alice:s3cret\n").unwrap();
    let stop = CancellationToken::new();
    let sink = build(
        json!({
            "type": "syslog",
            "address": address.to_string(),
            "transport": "tcp",
            // An explicit key: loopback is proxied too.
            "proxy": format!("http://127.0.0.1:{port}"),
            "proxy_credentials_file": creds,
        }),
        &stop,
    )
    .await;
    let batch = render_all(sink.as_ref(), &numbered("via-proxy", 50));
    let d = sink.send(batch).await;
    assert!(d.is_complete_success(), "{d:?}");
    let text = received.await.unwrap();
    assert!(text.contains("via-proxy seq=0") && text.contains("via-proxy seq=49"));
    let heads = seen.lock().unwrap().clone();
    assert_eq!(heads.len(), 1, "{heads:?}");
    assert!(
        heads[0].starts_with(&format!("CONNECT {address} HTTP/1.1")),
        "{heads:?}"
    );
    assert!(
        heads[0].contains("Proxy-Authorization: Basic YWxpY2U6czNjcmV0"),
        "{heads:?}"
    );
    stop.cancel();
}

#[tokio::test]
async fn a_407_from_the_proxy_names_it_and_the_fix() {
    let (port, _) = connect_proxy("407 Proxy Authentication Required").await;
    let stop = CancellationToken::new();
    let sink = build(
        json!({
            "type": "syslog",
            "address": "127.0.0.1:9",
            "transport": "tcp",
            "proxy": format!("http://127.0.0.1:{port}"),
        }),
        &stop,
    )
    .await;
    let e = sink.healthcheck().await.unwrap_err().to_string();
    assert!(
        e.contains(&format!("http://127.0.0.1:{port}")) && e.contains("proxy_credentials_file"),
        "{e}"
    );
    stop.cancel();
}
