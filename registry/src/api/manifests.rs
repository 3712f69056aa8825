//! Manifests: end-3 (GET/HEAD), end-7 (PUT, with `?tag=`), end-9 (DELETE); referrers: end-12.

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, Response, StatusCode};
use bytes::Bytes;

use super::error::{ApiError, Kind};
use super::{blocking, empty, parse_digest, ApiResult, Ctx};

/// Media types listed in the request's `Accept` headers, parameters (`;q=`) stripped.
pub(crate) fn accept_list(ctx: &Ctx) -> Vec<String> {
    ctx.headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.split(';').next().unwrap_or("").trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect()
}

/// end-3: `GET`/`HEAD /v2/<name>/manifests/<reference>`.
pub fn get(ctx: &Ctx, name: &str, reference: &str) -> ApiResult {
    let entry = ctx.registry.get_manifest(name, reference)?;
    let entry = ctx.registry.negotiate(name, entry, &accept_list(ctx))?;
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

/// end-7a/7b: `PUT /v2/<name>/manifests/<reference>[?tag=…]`.
pub async fn put(ctx: &Ctx, name: &str, reference: &str, body: Body) -> ApiResult {
    let limit = ctx.registry.config().max_manifest_bytes;
    let too_large = || {
        ApiError::new(
            Kind::ManifestTooLarge,
            format!("the limit is {limit} bytes"),
        )
    };
    let declared = ctx
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    // Manifests are small: the whole body must arrive within the body timeout, so a stalled
    // client cannot keep the request (and its connection) open forever.
    let secs = ctx.registry.config().limits.body_timeout_secs;
    let read = axum::body::to_bytes(body, usize::try_from(limit).unwrap_or(usize::MAX));
    let bytes: Bytes = tokio::time::timeout(std::time::Duration::from_secs(secs), read)
        .await
        .map_err(|_| {
            ApiError::new(
                Kind::BodyTimeout,
                format!("the manifest did not arrive within {secs} s"),
            )
        })?
        .map_err(|e| {
            let limited = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if limited {
                too_large()
            } else {
                ApiError::new(
                    Kind::ManifestInvalid,
                    format!("could not read the request body: {e}"),
                )
            }
        })?;
    let content_type = ctx
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let extra_tags = ctx.query.all("tag");
    let put = ctx
        .registry
        .put_manifest(name, reference, content_type, bytes, &extra_tags)?;
    let digest = put.digest.to_string();
    let mut resp = empty(
        StatusCode::CREATED,
        &[
            ("location", format!("/v2/{name}/manifests/{digest}")),
            ("docker-content-digest", digest),
        ],
    );
    if let Some(subject) = put.subject {
        if let Ok(v) = HeaderValue::from_str(subject.as_ref()) {
            resp.headers_mut().insert("oci-subject", v);
        }
    }
    for tag in put.tags.iter().filter(|t| extra_tags.contains(t)) {
        if let Ok(v) = HeaderValue::from_str(tag) {
            resp.headers_mut().append("oci-tag", v);
        }
    }
    Ok(resp)
}

/// end-9: `DELETE /v2/<name>/manifests/<reference>`.
pub async fn delete(ctx: &Ctx, name: String, reference: String) -> ApiResult {
    blocking(&ctx.registry, move |reg| {
        reg.delete_manifest(&name, &reference)
    })
    .await?;
    Ok(empty(StatusCode::ACCEPTED, &[]))
}

/// end-12a/12b: `GET /v2/<name>/referrers/<digest>[?artifactType=…]`.
pub fn referrers(ctx: &Ctx, name: &str, digest: &str) -> ApiResult {
    let subject = parse_digest(digest)?;
    let filter = ctx.query.get("artifactType").filter(|t| !t.is_empty());
    let index = ctx.registry.referrers(name, &subject, filter)?;
    let mut b = Response::builder().status(StatusCode::OK).header(
        header::CONTENT_TYPE,
        "application/vnd.oci.image.index.v1+json",
    );
    if filter.is_some() {
        b = b.header("oci-filters-applied", "artifactType");
    }
    Ok(b.body(Body::from(
        serde_json::to_vec(&index).expect("serializable"),
    ))
    .expect("valid response"))
}
