//! The delivery toolkit both sinks share: batching triggers
//! ([`batch`]), retry settings and backoff ([`retry`]), rustls client configs from files
//! ([`tls`]) and the check of one receiver or a list of them (`addresses`). Each sink supplies only its defaults and its response classifier. Also
//! `push_digits`, the fixed-width decimal writer both renderers use for time fields.

pub(crate) mod addresses;
pub mod batch;
pub mod retry;
pub mod tls;
pub(crate) mod units;

/// Appends the last `width` decimal digits of `v`, zero-padded. For time fields on the
/// render path, where `core::fmt` showed up in profiles.
pub(crate) fn push_digits(out: &mut Vec<u8>, mut v: u32, width: usize) {
    let start = out.len();
    out.resize(start + width, b'0');
    for d in out[start..].iter_mut().rev() {
        *d = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// The sink's proxy keys, with a proxy URL checked now (no scheme, bad port) so the problem
/// is reported with the other config errors, under `sink.proxy`.
pub(crate) fn proxy_config(
    proxy: &Option<String>,
    no_proxy: &Option<String>,
    credentials_file: &Option<std::path::PathBuf>,
) -> Result<shipper_net::proxy::ProxyConfig, crate::error::ConfigError> {
    if let Some(url) = proxy {
        shipper_net::proxy::parse_proxy_url(url, "sink.proxy")
            .map_err(|e| crate::error::ConfigError::new("proxy", e.message))?;
    }
    Ok(shipper_net::proxy::ProxyConfig {
        proxy: proxy.clone(),
        no_proxy: no_proxy.clone(),
        credentials_file: credentials_file.clone(),
    })
}
