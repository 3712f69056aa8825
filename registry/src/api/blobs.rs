//! Blob reads and deletes: end-2 (GET/HEAD, with byte ranges) and end-10 (DELETE).

use axum::body::Body;
use axum::http::{header, Method, Response, StatusCode};

use super::error::{ApiError, Kind};
use super::{blocking, empty, parse_digest, ApiResult, Ctx};
use crate::service::blob::BlobHandle;

/// Blobs up to this size are read in one call on the request's thread; larger ones stream.
const INLINE_MAX: u64 = 256 * 1024;

/// A parsed `Range` request header against a blob of known size.
#[derive(Debug, PartialEq, Eq)]
pub enum ByteRange {
    /// No (usable) range: send everything.
    Full,
    /// Inclusive range to send with 206.
    Partial(u64, u64),
    /// Outside the blob: 416.
    Unsatisfiable,
}

/// Parses a single `bytes=` range (RFC 9110 §14.1.2). Multiple ranges and malformed headers are
/// ignored (the whole blob is sent), as the RFC allows.
#[must_use]
pub fn parse_range(value: Option<&str>, size: u64) -> ByteRange {
    let Some(spec) = value.and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return ByteRange::Full;
    };
    if spec.contains(',') {
        return ByteRange::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return ByteRange::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        // Suffix range: the last `b` bytes.
        return match b.parse::<u64>() {
            Ok(0) => ByteRange::Unsatisfiable,
            Ok(n) if size == 0 => {
                let _ = n;
                ByteRange::Unsatisfiable
            }
            Ok(n) => ByteRange::Partial(size.saturating_sub(n), size - 1),
            Err(_) => ByteRange::Full,
        };
    }
    let Ok(start) = a.parse::<u64>() else {
        return ByteRange::Full;
    };
    let end = if b.is_empty() {
        size.saturating_sub(1)
    } else {
        match b.parse::<u64>() {
            Ok(e) if e >= start => e.min(size.saturating_sub(1)),
            _ => return ByteRange::Full,
        }
    };
    if start >= size {
        ByteRange::Unsatisfiable
    } else {
        ByteRange::Partial(start, end)
    }
}

/// end-2: `GET`/`HEAD /v2/<name>/blobs/<digest>`.
pub fn get(ctx: &Ctx, name: &str, digest: &str) -> ApiResult {
    let digest = parse_digest(digest)?;
    let blob = ctx.registry.open_blob(name, &digest, INLINE_MAX)?;
    let size = match &blob {
        BlobHandle::Small(c) => c.bytes.len() as u64,
        BlobHandle::Large(size) => *size,
    };
    let range = parse_range(
        ctx.headers.get(header::RANGE).and_then(|v| v.to_str().ok()),
        size,
    );
    let (status, start, len) = match range {
        ByteRange::Full => (StatusCode::OK, 0, size),
        ByteRange::Partial(a, b) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
        ByteRange::Unsatisfiable => {
            return Err(
                ApiError::new(Kind::RangeNotSatisfiable, format!("blob has {size} bytes"))
                    .with_header(header::CONTENT_RANGE, &format!("bytes */{size}")),
            );
        }
    };
    let digest_s = digest.to_string();
    let mut b = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, len)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ETAG, format!("\"{digest_s}\""))
        .header(header::CACHE_CONTROL, "max-age=31536000")
        .header("docker-content-digest", &digest_s);
    if status == StatusCode::PARTIAL_CONTENT {
        b = b.header(
            header::CONTENT_RANGE,
            format!("bytes {}-{}/{size}", start, start + len - 1),
        );
    }
    let body = match blob {
        _ if ctx.method == Method::HEAD || len == 0 => Body::empty(),
        #[allow(clippy::cast_possible_truncation)] // small blobs are at most INLINE_MAX bytes
        BlobHandle::Small(c) => Body::from(c.bytes.slice(start as usize..(start + len) as usize)),
        BlobHandle::Large(_) => Body::from_stream(ctx.registry.blob_stream(&digest, start, len)?),
    };
    Ok(b.body(body).expect("valid response"))
}

/// end-10: `DELETE /v2/<name>/blobs/<digest>`.
pub async fn delete(ctx: &Ctx, name: String, digest: String) -> ApiResult {
    let digest = parse_digest(&digest)?;
    let d = digest.clone();
    blocking(&ctx.registry, move |reg| reg.delete_blob(&name, &d)).await?;
    Ok(empty(
        StatusCode::ACCEPTED,
        &[("docker-content-digest", digest.to_string())],
    ))
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case(None, ByteRange::Full)]
    #[case(Some("bytes=0-9"), ByteRange::Partial(0, 9))]
    #[case(Some("bytes=10-"), ByteRange::Partial(10, 99))]
    #[case(Some("bytes=-10"), ByteRange::Partial(90, 99))]
    #[case(Some("bytes=-1000"), ByteRange::Partial(0, 99))]
    #[case(Some("bytes=50-1000"), ByteRange::Partial(50, 99))]
    #[case(Some("bytes=100-"), ByteRange::Unsatisfiable)]
    #[case(Some("bytes=-0"), ByteRange::Unsatisfiable)]
    #[case(Some("bytes=9-1"), ByteRange::Full)]
    #[case(Some("bytes=0-1,5-6"), ByteRange::Full)]
    #[case(Some("items=0-1"), ByteRange::Full)]
    #[case(Some("bytes=x-y"), ByteRange::Full)]
    fn ranges(#[case] header: Option<&str>, #[case] expected: ByteRange) {
        assert_eq!(parse_range(header, 100), expected);
    }
}
