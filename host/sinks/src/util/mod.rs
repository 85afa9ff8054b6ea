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
