//! Reads of mirrored repositories (issue 10): end-3 (manifests), end-2 (blobs, ranges included)
//! and end-8 (tags) for names that `crate::mirror::Mirror::route` sends upstream. Everything
//! else, and every write, is served by the local handlers.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Response, StatusCode};
use axum::response::IntoResponse;

use super::blobs::{parse_range, ByteRange};
use super::error::{ApiError, Kind};
use super::{parse_digest, ApiResult, Ctx};
use crate::mirror::fill::{self, BlobSource};
use crate::mirror::upstream::{body_within, UpstreamError};
use crate::mirror::{Mirror, MirrorError, Target};
use crate::route::Route;

/// Makes the body of bytes `start..start+len`.
type BodyOf = Box<dyn FnOnce(u64, u64) -> Result<Body, ApiError> + Send>;

/// Answers `route` from the mirror when it is a read of a mirrored name; `None`: not mirrored.
pub async fn handle(ctx: &Ctx, mirror: &Arc<Mirror>, route: &Route) -> Option<ApiResult> {
    let reading = ctx.method == Method::GET || ctx.method == Method::HEAD;
    let name = match route {
        Route::Manifest { name, .. } | Route::Blob { name, .. } | Route::Tags { name } => name,
        _ => return None,
    };
    if !reading {
        if matches!(route, Route::Manifest { .. }) && ctx.method == Method::PUT {
            mirror.note_push(&ctx.registry, name);
        }
        return None;
    }
    let target = match &ctx.routed {
        Some(t) => t.clone(),
        None => mirror.route(&ctx.registry, name, ctx.query.get("ns"))?,
    };
    Some(match route {
        Route::Manifest { reference, .. } => manifest(ctx, mirror, &target, reference).await,
        Route::Blob { digest, .. } => blob(ctx, mirror, &target, digest).await,
        Route::Tags { .. } => tags(ctx, mirror, name, &target).await,
        _ => return None,
    })
}

/// A mirror failure the local error table covers: storage failures and "not found".
fn error(e: MirrorError, blob: bool) -> ApiError {
    let kind_404 = if blob {
        Kind::BlobUnknown
    } else {
        Kind::ManifestUnknown
    };
    match e {
        MirrorError::Service(s) => s.into(),
        other => ApiError::new(kind_404, other.to_string()),
    }
}

/// Sends an upstream failure with its own status: `503 UNAVAILABLE` when the upstream is down,
/// `502` when it misbehaved or refused the mirror's credentials.
fn failure(e: MirrorError, blob: bool) -> axum::response::Response {
    let unavailable = matches!(&e, MirrorError::Upstream(u) if u.is_unavailable())
        || matches!(
            &e,
            MirrorError::Negative {
                not_found: false,
                ..
            }
        );
    let passthrough = matches!(
        &e,
        MirrorError::Service(_)
            | MirrorError::Upstream(UpstreamError::NotFound { .. })
            | MirrorError::Negative {
                not_found: true,
                ..
            }
    );
    if passthrough {
        return error(e, blob).into_response();
    }
    let (status, code) = if unavailable {
        (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE")
    } else {
        (StatusCode::BAD_GATEWAY, "UNKNOWN")
    };
    let message = crate::mirror::manifest::error_chain(&e);
    tracing::warn!(status = status.as_u16(), message, "mirror request failed");
    let body = serde_json::json!({"errors": [{"code": code, "message": message}]});
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn manifest(ctx: &Ctx, mirror: &Arc<Mirror>, t: &Target, reference: &str) -> ApiResult {
    // Only a tag or a digest is ever put into an upstream URL.
    let valid = if reference.contains(':') {
        crate::digest::parse(reference).is_ok()
    } else {
        crate::route::valid_tag(reference)
    };
    if !valid {
        return Err(ApiError::new(
            Kind::ManifestUnknown,
            format!("`{reference}` is neither a tag nor a digest"),
        ));
    }
    if ctx.method == Method::HEAD {
        match mirror
            .head_uncached(t, reference, &super::manifests::accept_list(ctx))
            .await
        {
            Ok(Some(h)) => {
                let digest = h.digest.to_string();
                return Ok(Response::builder()
                    .status(StatusCode::OK)
                    .header(header::CONTENT_TYPE, h.media_type.as_str())
                    .header(header::CONTENT_LENGTH, h.length)
                    .header(header::ETAG, format!("\"{digest}\""))
                    .header("docker-content-digest", digest)
                    .body(Body::empty())
                    .expect("valid response"));
            }
            Ok(None) => {}
            Err(e) => return Ok(failure(e, false)),
        }
    }
    let entry = match mirror.manifest(t, reference).await {
        Ok(e) => e,
        Err(e) => return Ok(failure(e, false)),
    };
    let accept = super::manifests::accept_list(ctx);
    let mut negotiated = mirror.store.negotiate(&t.repo, entry.clone(), &accept);
    if let Err(crate::service::ServiceError::ManifestUnknown {
        reference: child, ..
    }) = &negotiated
    {
        // The index's linux/amd64 child is not cached yet.
        if let Err(e) = mirror.manifest(t, child).await {
            return Ok(failure(e, false));
        }
        negotiated = mirror.store.negotiate(&t.repo, entry, &accept);
    }
    let entry = negotiated?;
    let digest = entry.digest.to_string();
    let body = if ctx.method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(entry.bytes.clone())
    };
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, entry.media_type.as_str())
        .header(header::CONTENT_LENGTH, entry.bytes.len())
        .header(header::ETAG, format!("\"{digest}\""))
        .header("docker-content-digest", digest)
        .body(body)
        .expect("valid response"))
}

async fn blob(ctx: &Ctx, mirror: &Arc<Mirror>, t: &Target, digest: &str) -> ApiResult {
    let digest = parse_digest(digest)?;
    let source = if ctx.method == Method::HEAD {
        match mirror
            .store
            .driver
            .stat(&crate::service::paths::blob_data(&digest))
        {
            Ok(info) => BlobSource::Stored(info.size),
            Err(_) => match mirror.blob_head(t, &digest).await {
                Ok(size) => return Ok(headers_only(&digest, size)),
                Err(e) => return Ok(failure(e, true)),
            },
        }
    } else {
        match mirror.blob_source(t, &digest) {
            Ok(s) => s,
            Err(e) => return Ok(failure(e, true)),
        }
    };
    let (size, body_of): (Option<u64>, BodyOf) = match source {
        BlobSource::Stored(size) => {
            let reg = Arc::clone(mirror);
            let d = digest.clone();
            (
                Some(size),
                Box::new(move |start, len| {
                    Ok(Body::from_stream(reg.store.blob_stream(&d, start, len)?))
                }),
            )
        }
        BlobSource::Filling { file, mut state } => {
            // Readers of a fill count as downloads, like readers of stored blobs (the fill
            // itself goes on either way).
            let slot = if ctx.method == Method::HEAD {
                None
            } else {
                Some(mirror.store.slots.download()?)
            };
            let size = match fill::wait_for_size(&mut state).await {
                Ok(s) => s,
                Err(e) => return Ok(fill_failure(&e)),
            };
            (
                size,
                Box::new(move |start, len| {
                    Ok(Body::from_stream(fill::tail(
                        file,
                        state,
                        start,
                        Some(start + len),
                        slot,
                    )))
                }),
            )
        }
    };
    let digest_s = digest.to_string();
    let Some(size) = size else {
        // The upstream did not say how long: stream it all, chunked.
        let mut resp = Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header("docker-content-digest", &digest_s);
        if ctx.method == Method::HEAD {
            resp = resp.header(header::CONTENT_LENGTH, 0);
        }
        let body = body_of(0, u64::MAX / 2)?;
        return Ok(resp.body(body).expect("valid response"));
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
    let body = if ctx.method == Method::HEAD || len == 0 {
        Body::empty()
    } else {
        body_of(start, len)?
    };
    Ok(b.body(body).expect("valid response"))
}

/// A fill that failed before the first byte: 404 when the upstream does not have the blob, 503
/// when it is down, 502 otherwise.
fn fill_failure(e: &fill::FillError) -> axum::response::Response {
    if e.not_found {
        return ApiError::new(Kind::BlobUnknown, e.message.clone()).into_response();
    }
    let (status, code) = if e.unavailable {
        (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE")
    } else {
        (StatusCode::BAD_GATEWAY, "UNKNOWN")
    };
    tracing::warn!(
        status = status.as_u16(),
        message = e.message,
        "mirror blob request failed"
    );
    let body = serde_json::json!({"errors": [{"code": code, "message": e.message}]});
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn headers_only(digest: &oci_spec::image::Digest, size: Option<u64>) -> axum::response::Response {
    let mut b = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::ACCEPT_RANGES, "bytes")
        .header("docker-content-digest", digest.to_string());
    if let Some(s) = size {
        b = b.header(header::CONTENT_LENGTH, s);
    }
    b.body(Body::empty()).expect("valid response")
}

/// The largest tag list read from an upstream (a page of Docker Hub's is a few KiB; ten
/// thousand tags in one answer are a few hundred). A longer answer, like an unreachable
/// upstream, is answered from the cached tags.
const MAX_TAG_LIST_BYTES: u64 = 16 * 1024 * 1024;

/// end-8 for a mirrored name: the upstream's page of tags, its `Link` to the next page turned
/// into one to this registry under the name the client used (with its `?ns=`); the cached
/// tags, paginated here, when the upstream is unavailable.
async fn tags(ctx: &Ctx, mirror: &Arc<Mirror>, name: &str, t: &Target) -> ApiResult {
    let (n, last) = super::tags::page_params(ctx)?;
    let base = format!("/v2/{name}/tags/list");
    let ns = ctx.query.get("ns");
    let mut path = "tags/list".to_owned();
    // (The serializer is not `Send`: finish it before any await.)
    let q = {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if let Some(n) = n {
            q.append_pair("n", &n.to_string());
        }
        if let Some(last) = last {
            q.append_pair("last", last);
        }
        q.finish()
    };
    if !q.is_empty() {
        path = format!("{path}?{q}");
    }
    let upstream = t
        .upstream
        .send(Method::GET, &t.remote, &path, &HeaderMap::new())
        .await;
    if let Ok(resp) = upstream {
        if resp.status().is_success() {
            let next = resp
                .headers()
                .get(header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(next_page);
            let body = body_within(resp, MAX_TAG_LIST_BYTES).await.ok().flatten();
            if let Some(v) = body.and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            {
                let tags = v.get("tags").cloned().unwrap_or(serde_json::json!([]));
                let body = serde_json::json!({"name": name, "tags": tags});
                let mut b = Response::builder()
                    .status(StatusCode::OK)
                    .header(header::CONTENT_TYPE, "application/json");
                if let Some((page_n, next_last)) = next {
                    let page_n = page_n.or(n).unwrap_or(tags.as_array().map_or(0, Vec::len));
                    let link = super::tags::next_link(&base, page_n, &next_last, ns);
                    b = b.header(header::LINK, link);
                }
                return Ok(b
                    .body(Body::from(body.to_string()))
                    .expect("valid response"));
            }
        } else if resp.status() == StatusCode::NOT_FOUND {
            return Err(ApiError::new(
                Kind::NameUnknown,
                format!(
                    "`{}` is not in upstream `{}`",
                    t.remote, t.upstream.registry
                ),
            ));
        }
    }
    let page = mirror.store.list_tags(&t.repo, n, last)?;
    let body = serde_json::json!({"name": name, "tags": page.items});
    Ok(super::tags::json_page(
        &base,
        n,
        &page,
        body.to_string().into_bytes(),
        ns,
    ))
}

/// `(n, last)` of the next page from an upstream's `Link: <…?n=…&last=…>; rel="next"` (the URL
/// relative or absolute); `None` without a next page.
fn next_page(link: &str) -> Option<(Option<usize>, String)> {
    let (url, params) = link.split_once('>')?;
    if !params.contains("rel=\"next\"") && !params.contains("rel=next") {
        return None;
    }
    let query = url.trim_start().strip_prefix('<')?.split_once('?')?.1;
    let mut n = None;
    let mut last = None;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match &*k {
            "n" => n = v.parse().ok(),
            "last" => last = Some(v.into_owned()),
            _ => {}
        }
    }
    Some((n, last?))
}

#[cfg(test)]
mod tests {
    use super::next_page;

    #[test]
    fn next_page_reads_relative_and_absolute_links() {
        assert_eq!(
            next_page(r#"</v2/org/app/tags/list?n=2&last=b>; rel="next""#),
            Some((Some(2), "b".to_owned()))
        );
        assert_eq!(
            next_page(r#"<https://ghcr.io/v2/org/app/tags/list?last=v%2B1&n=50>; rel="next""#),
            Some((Some(50), "v+1".to_owned()))
        );
        assert_eq!(
            next_page("</v2/x/tags/list?last=z>; rel=next"),
            Some((None, "z".to_owned()))
        );
        // No next page, or none to find.
        assert_eq!(
            next_page(r#"</v2/x/tags/list?n=2&last=b>; rel="prev""#),
            None
        );
        assert_eq!(next_page(r#"</v2/x/tags/list?n=2>; rel="next""#), None);
        assert_eq!(next_page("garbage"), None);
    }
}
