//! rustls client configs from files, with the ring provider (no aws-lc build). Used by the
//! HEC sink (handed to reqwest) and by the syslog TLS transport (tokio-rustls).
//!
//! Trust: `ca_file` replaces the system roots (a private SIEM CA is the normal case); without
//! it the system roots are loaded (rustls-native-certs). `verify = false` accepts any server
//! certificate (signatures are still checked) and logs a WARN at build. Client authentication
//! (mTLS) with `cert_file` + `key_file`. TLS 1.2 and 1.3 only (RFC 5425 / RFC 9662).

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use serde::Deserialize;

use crate::error::{ConfigError, Side, SinkError};

/// TLS client options (config table `tls`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM file with the CA certificate(s) to trust instead of the system roots (e.g.
    /// Splunk's `SplunkCommonCA`, or the SIEM's private CA).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain for mutual TLS (needs `key_file`).
    pub cert_file: Option<PathBuf>,
    /// PEM (PKCS#8, PKCS#1 or SEC1) private key of `cert_file`.
    pub key_file: Option<PathBuf>,
    /// Verify the server certificate and host name. `false` is for tests only: anyone on
    /// the path can then read and alter the data; the sink logs a WARN at start.
    pub verify: bool,
    /// Name to send as SNI and to verify the certificate against, when it differs from the
    /// host in the address/URL (e.g. connecting by IP to a certificate issued for a name).
    pub server_name: Option<String>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            ca_file: None,
            cert_file: None,
            key_file: None,
            verify: true,
            server_name: None,
        }
    }
}

impl TlsConfig {
    /// Checks that the options fit together (pure; files are read by [`Self::client_config`]).
    pub fn validate(&self) -> Result<(), ConfigError> {
        match (&self.cert_file, &self.key_file) {
            (Some(_), None) => Err(ConfigError::new(
                "tls.key_file",
                "tls.cert_file is set but tls.key_file is not: mutual TLS needs both",
            )),
            (None, Some(_)) => Err(ConfigError::new(
                "tls.cert_file",
                "tls.key_file is set but tls.cert_file is not: mutual TLS needs both",
            )),
            _ => Ok(()),
        }?;
        if let Some(name) = &self.server_name
            && ServerName::try_from(name.as_str()).is_err()
        {
            return Err(ConfigError::new(
                "tls.server_name",
                format!("{name:?} is not a valid DNS name or IP address"),
            ));
        }
        Ok(())
    }

    /// Reads the files and builds the rustls client config. Errors name the file and say
    /// what to fix.
    pub fn client_config(&self, sink: &str) -> Result<ClientConfig, SinkError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| SinkError::tls(sink, Side::Client, format!("TLS set-up: {e}")))?;
        let builder = if self.verify {
            builder.with_root_certificates(self.roots(sink)?)
        } else {
            tracing::warn!(
                sink,
                "tls.verify = false: the server certificate is NOT verified; anyone on the path can read and alter the data"
            );
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
        };
        let config = match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => {
                let certs = read_certs(sink, cert)?;
                let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                    SinkError::tls(
                        sink,
                        Side::Client,
                        format!(
                            "cannot read a PEM private key from tls.key_file {}: {e}",
                            key.display()
                        ),
                    )
                })?;
                builder.with_client_auth_cert(certs, key).map_err(|e| {
                    SinkError::tls(
                        sink,
                        Side::Client,
                        format!("tls.cert_file and tls.key_file do not form a usable pair: {e}"),
                    )
                })?
            }
            _ => builder.with_no_client_auth(),
        };
        Ok(config)
    }

    fn roots(&self, sink: &str) -> Result<RootCertStore, SinkError> {
        let mut roots = RootCertStore::empty();
        if let Some(ca) = &self.ca_file {
            for cert in read_certs(sink, ca)? {
                roots.add(cert).map_err(|e| {
                    SinkError::tls(
                        sink,
                        Side::Client,
                        format!("tls.ca_file {}: unusable CA certificate: {e}", ca.display()),
                    )
                })?;
            }
        } else {
            let found = rustls_native_certs::load_native_certs();
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(SinkError::tls(
                    sink,
                    Side::Client,
                    format!(
                        "no system CA certificates found ({:?}): install ca-certificates or set tls.ca_file",
                        found.errors
                    ),
                ));
            }
        }
        Ok(roots)
    }

    /// The name to present as SNI and verify against: `server_name`, else `host`.
    pub fn server_name(&self, sink: &str, host: &str) -> Result<ServerName<'static>, SinkError> {
        let name = self.server_name.as_deref().unwrap_or(host);
        let name = name.trim_start_matches('[').trim_end_matches(']');
        ServerName::try_from(name.to_owned()).map_err(|e| {
            SinkError::config(
                sink,
                format!("{name:?} is not a valid TLS server name ({e}): set tls.server_name"),
            )
        })
    }
}

fn read_certs(sink: &str, path: &PathBuf) -> Result<Vec<CertificateDer<'static>>, SinkError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            SinkError::tls(
                sink,
                Side::Client,
                format!("cannot read PEM certificates from {}: {e}", path.display()),
            )
        })?;
    if certs.is_empty() {
        return Err(SinkError::tls(
            sink,
            Side::Client,
            format!(
                "{} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)",
                path.display()
            ),
        ));
    }
    Ok(certs)
}

/// `verify = false`: accepts any certificate but still checks handshake signatures, so the
/// connection is at least consistent with the presented key.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cert_needs_key_and_vice_versa() {
        let c = TlsConfig {
            cert_file: Some("c.pem".into()),
            ..Default::default()
        };
        assert_eq!(c.validate().unwrap_err().field, "tls.key_file");
        let c = TlsConfig {
            key_file: Some("k.pem".into()),
            ..Default::default()
        };
        assert_eq!(c.validate().unwrap_err().field, "tls.cert_file");
        let c = TlsConfig {
            server_name: Some("bad name!".into()),
            ..Default::default()
        };
        assert_eq!(c.validate().unwrap_err().field, "tls.server_name");
        TlsConfig::default().validate().unwrap();
    }

    #[test]
    fn missing_ca_file_is_named() {
        let c = TlsConfig {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        };
        let e = c.client_config("s").unwrap_err();
        assert!(e.message.contains("/nonexistent/ca.pem"), "{e}");
    }

    #[test]
    fn server_name_override_and_ip() {
        let c = TlsConfig::default();
        assert!(matches!(
            c.server_name("s", "127.0.0.1").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            c.server_name("s", "[::1]").unwrap(),
            ServerName::IpAddress(_)
        ));
        let c = TlsConfig {
            server_name: Some("localhost".into()),
            ..Default::default()
        };
        assert_eq!(
            c.server_name("s", "127.0.0.1").unwrap().to_str(),
            "localhost"
        );
    }
}
