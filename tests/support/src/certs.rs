//! A throw-away test PKI: runs `receivers/certs/gen-certs.sh` into a temp dir (CA, server
//! cert for `localhost`/127.0.0.1/::1, client cert for mTLS).

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

/// The generated files; the directory is deleted on drop.
#[derive(Debug)]
pub struct TestPki {
    dir: TempDir,
}

impl TestPki {
    /// Generates a fresh PKI (needs `openssl`; fails with the install command otherwise).
    pub fn generate() -> Self {
        Self::generate_with_sans("")
    }

    /// [`generate`](Self::generate) with extra names in the server certificate
    /// (`DNS:*.sls.test,DNS:hec.test`), for servers reached by name.
    pub fn generate_with_sans(extra_sans: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("shipper-pki-")
            .tempdir()
            .expect("temp dir");
        let script = crate::receivers_dir().join("certs/gen-certs.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg(dir.path())
            .env("EXTRA_SERVER_SAN", extra_sans)
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "{} failed ({}); needs openssl: apt-get install -y openssl\nstderr: {}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        Self { dir }
    }

    /// The directory (`ca.pem server.pem server.key client.pem client.key`), usable as
    /// rsyslog's `RS_CERTS` / syslog-ng's `SNG_CERTS`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
    /// CA certificate.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
    /// Server certificate (SAN localhost, 127.0.0.1, ::1).
    pub fn server_cert(&self) -> PathBuf {
        self.dir.path().join("server.pem")
    }
    /// Server key.
    pub fn server_key(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }
    /// Client certificate (mTLS).
    pub fn client_cert(&self) -> PathBuf {
        self.dir.path().join("client.pem")
    }
    /// Client key.
    pub fn client_key(&self) -> PathBuf {
        self.dir.path().join("client.key")
    }
}
