//! Listings: end-8 (tags) and `/v2/_catalog`, paginated with `n`/`last` and `Link` headers.

use axum::body::Body;
use axum::http::{header, Response, StatusCode};
use oci_spec::distribution::TagListBuilder;

use super::error::{ApiError, Kind};
use super::{ApiResult, Ctx};
use crate::service::tag::Page;

pub(super) fn page_params(ctx: &Ctx) -> Result<(Option<usize>, Option<&str>), ApiError> {
    let n = match ctx.query.get("n") {
        None | Some("") => None,
        Some(v) => Some(v.parse::<usize>().map_err(|_| {
            ApiError::new(
                Kind::PaginationInvalid,
                format!("`n={v}` must be a non-negative integer"),
            )
        })?),
    };
    Ok((n, ctx.query.get("last").filter(|l| !l.is_empty())))
}

/// The `Link` header value to the page after `last` (`ns`: the `?ns=` a mirrored request
/// came with, kept so the next request goes to the same upstream).
pub(super) fn next_link(base: &str, n: usize, last: &str, ns: Option<&str>) -> String {
    let enc = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    let ns = ns.map(|ns| format!("&ns={}", enc(ns))).unwrap_or_default();
    format!("<{base}?n={n}&last={}{ns}>; rel=\"next\"", enc(last))
}

pub(super) fn json_page(
    base: &str,
    n: Option<usize>,
    page: &Page,
    body: Vec<u8>,
    ns: Option<&str>,
) -> Response<Body> {
    let mut b = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json");
    if let (Some(n), Some(last)) = (n, &page.next_last) {
        b = b.header(header::LINK, next_link(base, n, last, ns));
    }
    b.body(Body::from(body)).expect("valid response")
}

/// end-8a/8b: `GET /v2/<name>/tags/list`.
pub fn list(ctx: &Ctx, name: &str) -> ApiResult {
    let (n, last) = page_params(ctx)?;
    let page = ctx.registry.list_tags(name, n, last)?;
    let list = TagListBuilder::default()
        .name(name)
        .tags(page.items.clone())
        .build()
        .expect("all fields set");
    let body = serde_json::to_vec(&list).expect("serializable");
    Ok(json_page(
        &format!("/v2/{name}/tags/list"),
        n,
        &page,
        body,
        None,
    ))
}

/// `GET /v2/_catalog`.
pub fn catalog(ctx: &Ctx) -> ApiResult {
    let (n, last) = page_params(ctx)?;
    let page = ctx.registry.catalog(n, last)?;
    let body = serde_json::to_vec(&serde_json::json!({ "repositories": page.items }))
        .expect("serializable");
    Ok(json_page("/v2/_catalog", n, &page, body, None))
}
