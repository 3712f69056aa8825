//! Blob uploads: end-4a/4b/4c (POST), end-11 (mount), end-5 (PATCH), end-6 (PUT),
//! end-13 (GET status), end-14 (DELETE).

use axum::body::{Body, HttpBody};
use axum::http::{header, HeaderMap, StatusCode};

use super::error::{ApiError, Kind};
use super::{blocking, empty, parse_digest, ApiResult, Ctx};

fn session_url(name: &str, id: &str) -> String {
    format!("/v2/{name}/blobs/uploads/{id}")
}

fn blob_url(name: &str, digest: &str) -> String {
    format!("/v2/{name}/blobs/{digest}")
}

/// `Range` as the spec writes it: inclusive end of what the session holds.
fn range_header(size: u64) -> String {
    format!("0-{}", size.saturating_sub(1))
}

fn accepted(name: &str, id: &str, size: u64, status: StatusCode) -> axum::response::Response {
    empty(
        status,
        &[
            ("location", session_url(name, id)),
            ("range", range_header(size)),
            ("docker-upload-uuid", id.to_owned()),
        ],
    )
}

fn created(name: &str, digest: &str) -> axum::response::Response {
    empty(
        StatusCode::CREATED,
        &[
            ("location", blob_url(name, digest)),
            ("docker-content-digest", digest.to_owned()),
        ],
    )
}

/// Parses `Content-Range` of an upload chunk: `start-end` (the spec's form), also accepting a
/// `bytes ` / `bytes=` prefix and a `/total` suffix that some clients send.
#[doc(hidden)] // public for the fuzz target (registry/fuzz)
pub fn content_range(headers: &HeaderMap) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(v) = headers.get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let bad = || {
        ApiError::new(
            Kind::RangeInvalid,
            "Content-Range must look like `<start>-<end>`",
        )
    };
    let s = v.to_str().map_err(|_| bad())?.trim();
    let s = s
        .strip_prefix("bytes")
        .map_or(s, |r| r.trim_start_matches(['=', ' ']));
    let s = s.split('/').next().unwrap_or(s);
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let a: u64 = a.trim().parse().map_err(|_| bad())?;
    let b: u64 = b.trim().parse().map_err(|_| bad())?;
    // The service counts the chunk's bytes as `end - start + 1`: 0-18446744073709551615 (2^64
    // bytes) does not fit. An end before the start passes, for the service to answer with the
    // session's `Range`.
    if a <= b && (b - a).checked_add(1).is_none() {
        return Err(bad());
    }
    Ok(Some((a, b)))
}

/// True when the request carries a body. Decided from the body, not from `Content-Length` /
/// `Transfer-Encoding`: HTTP/2 requests may have neither.
fn has_body(body: &Body) -> bool {
    !HttpBody::is_end_stream(body) && HttpBody::size_hint(body).exact() != Some(0)
}

/// end-4a/4b/4c/11: `POST /v2/<name>/blobs/uploads/`.
pub async fn start(ctx: &Ctx, name: &str, body: Body) -> ApiResult {
    let reg = &ctx.registry;
    if let Some(mount) = ctx.query.get("mount") {
        let digest = parse_digest(mount)?;
        if let Some(from) = ctx
            .query
            .get("from")
            .filter(|f| crate::route::valid_name(f))
        {
            if reg.mount_blob(name, from, &digest)?.is_some() {
                return Ok(created(name, digest.as_ref()));
            }
        }
        // Not mountable: fall back to a normal session, as the spec asks (202).
        let id = reg.start_upload(name, None)?;
        return Ok(accepted(name, &id, 0, StatusCode::ACCEPTED));
    }
    if let Some(d) = ctx.query.get("digest") {
        let digest = parse_digest(d)?;
        reg.upload_monolithic(name, &digest, body.into_data_stream())
            .await?;
        return Ok(created(name, digest.as_ref()));
    }
    let (n, alg) = (
        name.to_owned(),
        ctx.query.get("digest-algorithm").map(str::to_owned),
    );
    let id = blocking(reg, move |r| r.start_upload(&n, alg.as_deref())).await?;
    Ok(accepted(name, &id, 0, StatusCode::ACCEPTED))
}

/// end-5: `PATCH <location>`: with `Content-Range` (chunked) or without (Docker's streamed body).
pub async fn patch(ctx: &Ctx, name: &str, id: &str, body: Body) -> ApiResult {
    let range = content_range(&ctx.headers)?;
    let size = ctx
        .registry
        .append_upload(name, id, range, body.into_data_stream())
        .await?;
    Ok(accepted(name, id, size, StatusCode::ACCEPTED))
}

/// end-6: `PUT <location>?digest=<digest>`, with or without a final chunk.
pub async fn finish(ctx: &Ctx, name: &str, id: &str, body: Body) -> ApiResult {
    let Some(d) = ctx.query.get("digest") else {
        return Err(ApiError::new(
            Kind::DigestInvalid,
            "the closing PUT needs a `digest` query parameter",
        ));
    };
    let digest = parse_digest(d)?;
    let (range, body) = if has_body(&body) {
        (content_range(&ctx.headers)?, Some(body.into_data_stream()))
    } else {
        (None, None)
    };
    ctx.registry
        .finish_upload(name, id, &digest, range, body)
        .await?;
    Ok(created(name, digest.as_ref()))
}

/// end-13: `GET <location>`.
pub async fn status(ctx: &Ctx, name: &str, id: &str) -> ApiResult {
    let size = ctx.registry.upload_status(name, id).await?;
    Ok(accepted(name, id, size, StatusCode::NO_CONTENT))
}

/// end-14: `DELETE <location>`.
pub async fn cancel(ctx: &Ctx, name: &str, id: &str) -> ApiResult {
    ctx.registry.cancel_upload(name, id).await?;
    Ok(empty(StatusCode::NO_CONTENT, &[]))
}

#[cfg(test)]
mod tests {
    use axum::http::{header, HeaderMap, HeaderValue};
    use rstest::rstest;

    use super::content_range;

    #[rstest]
    #[case("0-9", Some((0, 9)))]
    #[case("bytes 10-19/100", Some((10, 19)))]
    #[case("bytes=5-4", Some((5, 4)))]
    #[case("x-1", None)]
    #[case("1-18446744073709551615", Some((1, u64::MAX)))]
    // Found by fuzzing (registry/fuzz, target `range`): 2^64 bytes overflowed the upload
    // service's `end - start + 1`.
    #[case("0-18446744073709551615", None)]
    fn content_ranges(#[case] value: &str, #[case] expected: Option<(u64, u64)>) {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_RANGE, HeaderValue::from_str(value).unwrap());
        assert_eq!(content_range(&h).ok().flatten(), expected, "{value}");
    }
}
