//! Byte ranges: the blob GET's `Range` header (`api::blobs::parse_range`) and an upload chunk's
//! `Content-Range` (`api::uploads::content_range`).
//!
//! Input: 8 bytes of blob size (little-endian) then the header value; a shorter input is the
//! header value alone, on a blob of as many bytes.
//! Invariants: a partial range lies within the blob (start ≤ end < size), so the response's
//! length `end - start + 1` and slice are in bounds; an accepted `Content-Range` prints back to a
//! value that parses the same, and its length `end - start + 1` (the upload service computes
//! it) fits in a u64.
#![no_main]

use berth_registry::api::blobs::{parse_range, ByteRange};
use berth_registry::api::uploads::content_range;
use http::{header, HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (size, value) = if data.len() >= 8 {
        let (n, rest) = data.split_at(8);
        (u64::from_le_bytes(n.try_into().unwrap()), rest)
    } else {
        (data.len() as u64, data)
    };

    if let Ok(s) = std::str::from_utf8(value) {
        match parse_range(Some(s), size) {
            ByteRange::Partial(start, end) => {
                assert!(start <= end && end < size, "{s:?} on {size}: {start}-{end}");
                let len = end - start + 1;
                assert!(start + len <= size);
            }
            ByteRange::Full => {}
            ByteRange::Unsatisfiable => {
                // A satisfiable single range is never refused: an open range starting inside
                // the blob is always served.
                if let Some(n) = s.trim().strip_prefix("bytes=").and_then(|r| r.trim().strip_suffix('-')) {
                    if let Ok(start) = n.trim().parse::<u64>() {
                        assert!(start >= size, "{s:?} on {size}");
                    }
                }
            }
        }
    }

    let Ok(v) = HeaderValue::from_bytes(value) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_RANGE, v);
    if let Ok(Some((start, end))) = content_range(&headers) {
        let mut again = HeaderMap::new();
        again.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&format!("{start}-{end}")).unwrap(),
        );
        assert_eq!(content_range(&again).ok(), Some(Some((start, end))));
        if start <= end {
            assert!(
                (end - start).checked_add(1).is_some(),
                "Content-Range {start}-{end} declares more than u64::MAX bytes"
            );
        }
    }
});
