//! Body compression as SLS does it (docs/sls-protocol.md §6.2 "Compression"): LZ4 is one raw
//! LZ4 *block* (no frame, no size prefix); the uncompressed size travels in
//! `x-log-bodyrawsize`.
//!
//! Every decompression in the project goes through [`decompress`], which refuses sizes above
//! a cap *before* allocating: a peer that announces 4 GiB must not make us allocate 4 GiB.
//! (clippy.toml bans the uncapped lz4_flex entry points for that reason.)

mod pool;

/// Largest uncompressed body we accept by default. SLS caps a LogGroup at 5 MB and PutLogs
/// at 10 MB raw (docs/sls-protocol.md §12 "Limits and quotas"); PullLogs replies are
/// size-bounded by the server. 64 MiB leaves room for large pulls while bounding what one
/// malformed header can make us allocate.
pub const DEFAULT_MAX_RAW_SIZE: usize = 64 << 20;

/// Compression named by `x-log-compresstype` / `Accept-Encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// No compression (header absent or empty).
    None,
    /// Raw LZ4 block.
    Lz4,
}

impl Compression {
    /// Parses a header value; `None` for anything we do not implement (e.g. `zstd`).
    pub fn from_header(value: &str) -> Option<Self> {
        match value.trim() {
            "" => Some(Self::None),
            v if v.eq_ignore_ascii_case("lz4") => Some(Self::Lz4),
            _ => None,
        }
    }

    /// The header value for this compression.
    pub fn as_header(self) -> &'static str {
        match self {
            Self::None => "",
            Self::Lz4 => "lz4",
        }
    }
}

/// Why a body could not be decompressed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The announced raw size is above the cap.
    #[error("announced raw body size {raw_size} exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The size from `x-log-bodyrawsize`.
        raw_size: usize,
        /// The cap.
        limit: usize,
    },
    /// The LZ4 block is malformed or does not expand to the announced size.
    #[error("invalid LZ4 body: {0}")]
    Lz4(String),
    /// An uncompressed body whose length differs from the announced raw size.
    #[error("body is {actual} bytes but x-log-bodyrawsize says {announced}")]
    SizeMismatch {
        /// Header value.
        announced: usize,
        /// Actual length.
        actual: usize,
    },
}

/// Compresses `raw` as one raw LZ4 block (what SLS expects and serves).
pub fn compress_lz4(raw: &[u8]) -> Vec<u8> {
    lz4_flex::block::compress(raw)
}

/// Decompresses an SLS body announced as `raw_size` bytes, refusing sizes above `limit`.
pub fn decompress(
    compression: Compression,
    body: &[u8],
    raw_size: usize,
    limit: usize,
) -> Result<Vec<u8>, CodecError> {
    check_cap(raw_size, limit)?;
    match compression {
        Compression::None => {
            check_plain(body, raw_size)?;
            Ok(body.to_vec())
        }
        Compression::Lz4 => {
            // Writes into uninitialised capacity of exactly `raw_size` bytes (checked against
            // the cap above) and fails if the block would expand past it: no zero-filling of
            // a multi-MiB buffer per pull (it showed up as memset + page faults in profiles).
            #[expect(
                clippy::disallowed_methods,
                reason = "this is the capped wrapper: raw_size was checked against the limit"
            )]
            let out = lz4_flex::block::decompress(body, raw_size)
                .map_err(|e| CodecError::Lz4(e.to_string()))?;
            check_expanded(out.len(), raw_size)?;
            Ok(out)
        }
    }
}

fn check_cap(raw_size: usize, limit: usize) -> Result<(), CodecError> {
    if raw_size > limit {
        return Err(CodecError::TooLarge { raw_size, limit });
    }
    Ok(())
}

fn check_plain(body: &[u8], raw_size: usize) -> Result<(), CodecError> {
    if body.len() != raw_size {
        return Err(CodecError::SizeMismatch {
            announced: raw_size,
            actual: body.len(),
        });
    }
    Ok(())
}

fn check_expanded(written: usize, raw_size: usize) -> Result<(), CodecError> {
    if written != raw_size {
        return Err(CodecError::Lz4(format!(
            "expanded to {written} bytes, x-log-bodyrawsize says {raw_size}"
        )));
    }
    Ok(())
}

/// [`decompress`] into a reused buffer (see `pool`), as a `Bytes` that hands the buffer back
/// when its last slice is dropped. For PullLogs bodies, which come and go at a steady rate.
pub fn decompress_to_bytes(
    compression: Compression,
    body: &[u8],
    raw_size: usize,
    limit: usize,
) -> Result<bytes::Bytes, CodecError> {
    check_cap(raw_size, limit)?;
    let mut out = pool::PULL_BODIES.take(raw_size);
    match compression {
        Compression::None => {
            check_plain(body, raw_size)?;
            out.as_mut_slice().copy_from_slice(body);
        }
        Compression::Lz4 => {
            // The output slice is exactly `raw_size` (checked against the cap above), so a
            // block that would expand past it fails instead of growing anything.
            let written = lz4_flex::block::decompress_into(body, out.as_mut_slice())
                .map_err(|e| CodecError::Lz4(e.to_string()))?;
            check_expanded(written, raw_size)?;
        }
    }
    Ok(bytes::Bytes::from_owner(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::read as testdata;

    #[test]
    fn decompresses_the_sdk_vector() {
        let lz4 = testdata("loggrouplist.pb.lz4");
        let raw = testdata("loggrouplist.pb");
        assert_eq!(raw.len(), 280);
        let out = decompress(Compression::Lz4, &lz4, 280, DEFAULT_MAX_RAW_SIZE).unwrap();
        assert_eq!(out, raw);
    }

    #[test]
    fn putlogs_body_vector() {
        let lz4 = testdata("putlogs_body.lz4");
        let raw = testdata("putlogs_body.loggroup.pb");
        assert_eq!(
            decompress(Compression::Lz4, &lz4, raw.len(), 1 << 20).unwrap(),
            raw
        );
    }

    #[test]
    fn round_trip() {
        let raw: Vec<u8> = (0..10_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let c = compress_lz4(&raw);
        assert_eq!(
            decompress(Compression::Lz4, &c, raw.len(), raw.len()).unwrap(),
            raw
        );
    }

    #[test]
    fn decompress_to_bytes_agrees_with_decompress() {
        let lz4 = testdata("loggrouplist.pb.lz4");
        let raw = testdata("loggrouplist.pb");
        for _ in 0..3 {
            // Reused buffers (after the first round) give the same bytes.
            let out = decompress_to_bytes(Compression::Lz4, &lz4, 280, 1 << 20).unwrap();
            assert_eq!(&out[..], &raw[..]);
        }
        let plain = decompress_to_bytes(Compression::None, &raw, 280, 1 << 20).unwrap();
        assert_eq!(&plain[..], &raw[..]);
        for (compression, body, size) in [
            (Compression::Lz4, &lz4[..], 279),
            (Compression::Lz4, &lz4[..], 400),
            (Compression::Lz4, &[0xff; 32][..], 100),
            (Compression::None, &raw[..], 10),
        ] {
            assert!(decompress_to_bytes(compression, body, size, 1 << 20).is_err());
        }
        let err = decompress_to_bytes(Compression::Lz4, b"x", usize::MAX / 2, 1024).unwrap_err();
        assert!(matches!(err, CodecError::TooLarge { .. }));
    }

    #[test]
    fn cap_is_checked_before_allocating() {
        let err = decompress(Compression::Lz4, b"x", usize::MAX / 2, 1024).unwrap_err();
        assert!(matches!(err, CodecError::TooLarge { .. }));
    }

    #[test]
    fn wrong_size_and_garbage_are_errors() {
        let raw = testdata("loggrouplist.pb");
        let lz4 = testdata("loggrouplist.pb.lz4");
        assert!(decompress(Compression::Lz4, &lz4, 279, 1 << 20).is_err());
        assert!(decompress(Compression::Lz4, &lz4, 400, 1 << 20).is_err());
        assert!(decompress(Compression::Lz4, &[0xff; 32], 100, 1 << 20).is_err());
        assert!(decompress(Compression::None, &raw, 10, 1 << 20).is_err());
    }

    #[test]
    fn header_names() {
        assert_eq!(Compression::from_header("lz4"), Some(Compression::Lz4));
        assert_eq!(Compression::from_header("LZ4"), Some(Compression::Lz4));
        assert_eq!(Compression::from_header(""), Some(Compression::None));
        assert_eq!(Compression::from_header("zstd"), None);
    }
}
