//! A TCP proxy that a test can cut off: while blocked it closes every open connection and
//! refuses new ones, so the client behind it sees its SLS endpoint vanish (a network
//! partition, or a process paused with SIGSTOP as far as the server can tell).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub struct Proxy {
    addr: SocketAddr,
    /// Cancelled to cut the current connections; replaced on unblock.
    epoch: Arc<Mutex<Option<CancellationToken>>>,
    task: JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let epoch = Arc::new(Mutex::new(Some(CancellationToken::new())));
        let state = epoch.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let (mut inbound, _) = tokio::select! {
                    accepted = listener.accept() => accepted.unwrap(),
                    Some(_) = conns.join_next(), if !conns.is_empty() => continue,
                };
                let Some(token) = state.lock().unwrap().clone() else {
                    drop(inbound);
                    continue;
                };
                conns.spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        () = token.cancelled() => {}
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    }
                });
            }
        });
        Self { addr, epoch, task }
    }

    /// `127.0.0.1:PORT`, an endpoint for a client.
    pub fn endpoint(&self) -> String {
        self.addr.to_string()
    }

    pub fn block(&self) {
        if let Some(token) = self.epoch.lock().unwrap().take() {
            token.cancel();
        }
    }

    pub fn unblock(&self) {
        self.epoch
            .lock()
            .unwrap()
            .get_or_insert_with(CancellationToken::new);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub use shipper_test_support::tls_front::TlsFront;

/// Generates a throw-away PKI with the team's script; panics with the fix if openssl is
/// missing.
pub fn test_pki(dir: &std::path::Path) {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/support/receivers/certs/gen-certs.sh"
    );
    let out = std::process::Command::new("bash")
        .arg(script)
        .arg(dir)
        .arg("2")
        .output()
        .expect("run gen-certs.sh");
    assert!(
        out.status.success(),
        "gen-certs.sh failed (is openssl installed? `apt-get install openssl`): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
