//! HTTP API: routing, the access log, and one module per endpoint family.
//!
//! Handlers are thin: parse the request, call `crate::service`, build the response. All `/v2/…`
//! paths go to [`dispatch`], which parses the path from the right (`crate::route`) because
//! repository names contain `/`.

pub mod access_log;
pub mod blobs;
pub mod error;
pub mod identity;
pub mod manifests;
pub mod mirror;
pub mod tags;
pub mod uploads;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;

use self::error::{ApiError, Kind};
use crate::route::{self, Route, RouteError};
use crate::service::Registry;

/// Result of a handler.
pub type ApiResult = Result<Response, ApiError>;

/// Builds the application: every route, the API-version header and the access log.
pub fn router(registry: Arc<Registry>) -> Router {
    router_with_auth(registry, None)
}

/// [`router`] with the auth layer in front of every `/v2/…` route and the token server's
/// `/auth/…` routes beside them (reachable without authentication).
pub fn router_with_auth(registry: Arc<Registry>, auth: Option<Arc<crate::auth::Auth>>) -> Router {
    // The auth layer asks the mirror where `?ns=` requests go (see `crate::auth::layer`).
    let registry_for_auth = registry.clone();
    let mut app = Router::new()
        .route("/v2", any(dispatch))
        .route("/v2/", any(dispatch))
        .route("/v2/{*rest}", any(dispatch))
        .fallback(|| async { ApiError::bare(Kind::RouteUnknown) })
        .with_state(registry);
    if let Some(auth) = auth {
        app = app
            .layer(middleware::from_fn_with_state(
                (auth.clone(), registry_for_auth),
                crate::auth::layer,
            ))
            .merge(crate::auth::server::routes(auth));
    }
    app.layer(middleware::from_fn(access_log::access_log))
}

/// Query parameters in order, with repeats (`?tag=a&tag=b`).
pub struct Query(Vec<(String, String)>);

impl Query {
    fn parse(q: Option<&str>) -> Self {
        Self(
            form_urlencoded::parse(q.unwrap_or("").as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// First value of `key`.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`.
    #[must_use]
    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// Everything a handler may need from the request.
pub struct Ctx {
    /// Shared registry.
    pub registry: Arc<Registry>,
    /// Request method.
    pub method: Method,
    /// Request headers.
    pub headers: HeaderMap,
    /// Parsed query.
    pub query: Query,
    /// Where the auth layer found a `?ns=` request to go (its grant was checked for that name):
    /// the mirror serves it from there, whatever a concurrent push changed since.
    pub routed: Option<crate::mirror::Target>,
}

async fn dispatch(
    State(registry): State<Arc<Registry>>,
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    routed: Option<axum::Extension<crate::mirror::Target>>,
    body: Body,
) -> Response {
    let path = uri.path();
    let rest = path.strip_prefix("/v2").unwrap_or(path);
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    let ctx = Ctx {
        registry,
        method,
        headers,
        query: Query::parse(uri.query()),
        routed: routed.map(|axum::Extension(t)| t),
    };
    let result = match route::parse(rest) {
        Ok(r) => handle(ctx, r, body).await,
        Err(RouteError::NotFound) => Err(ApiError::new(Kind::RouteUnknown, path.to_owned())),
        Err(RouteError::NameInvalid(n)) => Err(ApiError::new(
            Kind::NameInvalid,
            format!("`{n}`: use lowercase letters, digits and separators (. _ __ -) in /-separated components"),
        )),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn handle(ctx: Ctx, route: Route, body: Body) -> ApiResult {
    let cfg = ctx.registry.config();
    let writes = matches!(
        ctx.method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    if writes && cfg.read_only {
        return Err(ApiError::bare(Kind::ReadOnly));
    }
    if let Some(m) = ctx.registry.mirror().cloned() {
        if let Some(answer) = mirror::handle(&ctx, &m, &route).await {
            return answer;
        }
    }
    match (route, ctx.method.clone()) {
        (Route::Base, Method::GET | Method::HEAD) => Ok(base()),
        (Route::Catalog, Method::GET | Method::HEAD) => tags::catalog(&ctx),
        (Route::Tags { name }, Method::GET | Method::HEAD) => tags::list(&ctx, &name),
        (Route::Manifest { name, reference }, Method::GET | Method::HEAD) => {
            manifests::get(&ctx, &name, &reference)
        }
        (Route::Manifest { name, reference }, Method::PUT) => {
            let result = manifests::put(&ctx, &name, &reference, body).await;
            if let Some(m) = ctx.registry.mirror() {
                m.pushed(); // the name may be local now: routing looks again
            }
            result
        }
        (Route::Manifest { name, reference }, Method::DELETE) => {
            deletes_allowed(cfg.delete_enabled)?;
            manifests::delete(&ctx, name, reference).await
        }
        (Route::Blob { name, digest }, Method::GET | Method::HEAD) => {
            blobs::get(&ctx, &name, &digest)
        }
        (Route::Blob { name, digest }, Method::DELETE) => {
            deletes_allowed(cfg.delete_enabled)?;
            blobs::delete(&ctx, name, digest).await
        }
        (Route::Referrers { name, digest }, Method::GET | Method::HEAD) => {
            manifests::referrers(&ctx, &name, &digest)
        }
        (Route::UploadStart { name }, Method::POST) => uploads::start(&ctx, &name, body).await,
        (Route::Upload { name, session }, Method::GET | Method::HEAD) => {
            uploads::status(&ctx, &name, &session).await
        }
        (Route::Upload { name, session }, Method::PATCH) => {
            uploads::patch(&ctx, &name, &session, body).await
        }
        (Route::Upload { name, session }, Method::PUT) => {
            uploads::finish(&ctx, &name, &session, body).await
        }
        (Route::Upload { name, session }, Method::DELETE) => {
            uploads::cancel(&ctx, &name, &session).await
        }
        (_, m) => Err(ApiError::new(Kind::MethodNotAllowed, format!("{m}"))),
    }
}

fn deletes_allowed(enabled: bool) -> Result<(), ApiError> {
    if enabled {
        Ok(())
    } else {
        Err(ApiError::bare(Kind::DeleteDisabled))
    }
}

/// end-1
fn base() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        "{}",
    )
        .into_response()
}

/// Runs a storage-writing service call (it fsyncs) on the blocking pool, so slow disks never
/// stall the async workers that serve reads.
pub(crate) async fn blocking<T, F>(registry: &Arc<Registry>, f: F) -> Result<T, ApiError>
where
    F: FnOnce(&Registry) -> crate::service::Result<T> + Send + 'static,
    T: Send + 'static,
{
    let registry = registry.clone();
    match tokio::task::spawn_blocking(move || f(&registry)).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(join) => Err(crate::service::ServiceError::from(join).into()),
    }
}

/// Parses a required digest parameter, mapping failure to `DIGEST_INVALID`.
pub(crate) fn parse_digest(s: &str) -> Result<oci_spec::image::Digest, ApiError> {
    crate::digest::parse(s).map_err(|reason| ApiError::new(Kind::DigestInvalid, reason))
}

/// An empty response with the given status and headers.
pub(crate) fn empty(status: StatusCode, headers: &[(&'static str, String)]) -> Response {
    let mut b = Response::builder().status(status);
    for (k, v) in headers {
        b = b.header(*k, v.as_str());
    }
    if status != StatusCode::NO_CONTENT {
        b = b.header(header::CONTENT_LENGTH, "0");
    }
    b.body(Body::empty()).expect("valid response")
}
