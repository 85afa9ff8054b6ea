//! PullLogs bodies as the consumer reads them: an LZ4 block announced as `x-log-bodyrawsize`
//! bytes, decompressed under the size cap, split into LogGroups, each group's logs located,
//! sliced and decoded.
//!
//! Properties: no panic, no allocation beyond the cap; a body that decompresses is exactly
//! the announced size; both decompression paths agree; the split agrees with a full protobuf decode (prost) whenever prost
//! accepts the body (except protobuf groups, which SLS never sends and the splitter refuses); slicing a group to all of its logs gives back the same group.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use shipper_sls::codec::{self, Compression};
use shipper_sls::proto::{self, LogGroupList};

/// A cap far below the production one (64 MiB), so the fuzzer can reach it cheaply.
const CAP: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    // Two bytes of announced raw size, one of mode, then the body as it came off the wire.
    let [a, b, mode, body @ ..] = data else {
        return;
    };
    let compression = if mode & 1 == 0 {
        Compression::Lz4
    } else {
        Compression::None
    };
    // Mode bit 1 announces a size past the cap: it must be refused before any allocation.
    let raw_size = if mode & 2 != 0 {
        CAP + usize::from(u16::from_le_bytes([*a, *b]))
    } else {
        usize::from(u16::from_le_bytes([*a, *b]))
    };
    let raw = match codec::decompress_to_bytes(compression, body, raw_size, CAP) {
        Ok(raw) => raw,
        Err(_) => {
            assert!(
                codec::decompress(compression, body, raw_size, CAP).is_err(),
                "the pooled and the allocating decompression disagree"
            );
            return;
        }
    };
    let plain = codec::decompress(compression, body, raw_size, CAP).expect("pooled path succeeded");
    assert_eq!(
        &plain[..],
        &raw[..],
        "the pooled and the allocating decompression disagree"
    );
    assert!(raw_size <= CAP, "a body above the cap was decompressed");
    assert_eq!(
        raw.len(),
        raw_size,
        "decompressed size differs from the announced one"
    );
    check_groups(&raw);
    // The decompressed bytes are themselves a body shape: compressing them must round-trip.
    let again = codec::compress_lz4(&raw);
    let back = codec::decompress(Compression::Lz4, &again, raw.len(), CAP).expect("own LZ4 block");
    assert_eq!(&back[..], &raw[..]);
});

fn check_groups(raw: &Bytes) {
    let split = proto::split_log_groups(raw);
    if let Ok(list) = LogGroupList::decode(raw.clone()) {
        // The one known divergence: protobuf's deprecated groups (wire types 3 and 4), which
        // prost skips and the splitter refuses (SLS never sends them).
        if split
            .as_ref()
            .is_err_and(|e| e.what.starts_with("unsupported wire type"))
        {
            return;
        }
        let groups = split
            .as_ref()
            .expect("prost decodes a body the splitter refused");
        assert_eq!(groups.len(), list.log_groups.len());
        for (view, group) in groups.iter().zip(&list.log_groups) {
            assert_eq!(view.log_count, group.logs.len());
        }
    }
    let Ok(groups) = split else {
        return;
    };
    for view in groups {
        let Ok(ranges) = view.log_ranges() else {
            continue;
        };
        assert_eq!(ranges.len(), view.log_count);
        for r in &ranges {
            assert!(r.start <= r.end && r.end <= view.bytes.len());
        }
        let whole = view
            .slice(0..view.log_count)
            .expect("a parsed group slices");
        assert_eq!(whole, view.bytes);
        if view.log_count > 1 {
            // The first half and the second half together hold every log, in order.
            let mid = view.log_count / 2;
            let head = proto::LogGroupView::parse(view.slice(0..mid).expect("slice"))
                .expect("own slice parses");
            let tail = proto::LogGroupView::parse(view.slice(mid..view.log_count).expect("slice"))
                .expect("own slice parses");
            assert_eq!(head.log_count + tail.log_count, view.log_count);
        }
        let _ = view.decode();
    }
}
