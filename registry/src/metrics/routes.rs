//! `/metrics`, `/livez`, `/readyz` (no auth) and `POST /_berth/gc` (loopback clients only).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::gc::GcOptions;
use crate::service::{paths, Registry};

/// The ops routes over `registry`.
pub fn routes(registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/livez", get(|| async { health(StatusCode::OK, None) }))
        .route("/readyz", get(readyz))
        .route("/_berth/gc", post(gc))
        .with_state(registry)
}

async fn metrics(State(registry): State<Arc<Registry>>) -> Response {
    let uploads = tokio::task::spawn_blocking(move || {
        registry
            .list_or_empty(paths::UPLOADS)
            .map_or(0, |v| v.len() as u64)
    })
    .await
    .unwrap_or(0);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        super::global().render(uploads),
    )
        .into_response()
}

/// Ready when the storage takes a write (a small file under `_health/`).
async fn readyz(State(registry): State<Arc<Registry>>) -> Response {
    let probe =
        tokio::task::spawn_blocking(move || registry.driver.put("_health/probe", b"ok")).await;
    match probe {
        Ok(Ok(())) => health(StatusCode::OK, None),
        Ok(Err(e)) => health(
            StatusCode::SERVICE_UNAVAILABLE,
            Some(format!("storage is not writable: {e}")),
        ),
        Err(_) => health(
            StatusCode::SERVICE_UNAVAILABLE,
            Some("the storage probe failed".into()),
        ),
    }
}

/// `{"status":"ok"}`, or `{"status":"unavailable","error":…}`.
fn health(status: StatusCode, error: Option<String>) -> Response {
    let body = match error {
        None => serde_json::json!({"status": "ok"}),
        Some(e) => serde_json::json!({"status": "unavailable", "error": e}),
    };
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Runs a GC now and answers its report as JSON; `?dry_run=true` reports only. Loopback only,
/// with the token from `_gc/serving`: this is how `berth-registry gc` reaches a server that
/// serves the same directory.
async fn gc(State(registry): State<Arc<Registry>>, req: Request) -> Response {
    let local = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|c| c.0.ip().is_loopback());
    // The token is in the serving lock file: whoever can read the data directory may ask.
    let token_ok = registry.gc_gate().admin_token.get().is_some_and(|want| {
        req.headers()
            .get(super::GC_TOKEN_HEADER)
            .is_some_and(|got| got.as_bytes() == want.as_bytes())
    });
    if !local || !token_ok {
        return health(
            StatusCode::FORBIDDEN,
            Some("only `berth-registry gc` on this host may trigger GC (loopback, with the token in `_gc/serving`)".into()),
        );
    }
    let dry_run = req.uri().query().is_some_and(|q| {
        form_urlencoded::parse(q.as_bytes())
            .any(|(k, v)| k == "dry_run" && (v == "true" || v == "1"))
    });
    let opts = GcOptions {
        dry_run,
        grace: Duration::from_secs(registry.config().ops.gc.grace_secs),
        retention: true,
    };
    match crate::gc::run(registry, opts).await {
        Ok(report) => (
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::to_string(&report).unwrap_or_default(),
        )
            .into_response(),
        Err(e) => health(
            StatusCode::INTERNAL_SERVER_ERROR,
            Some(format!("gc failed: {e}")),
        ),
    }
}
