//! `/metrics`, `/livez`, `/readyz` (no auth) and `POST /_berth/gc` (loopback clients only).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use super::ScrapeGauges;
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
    let mirror = registry.mirror().cloned();
    let uploads = tokio::task::spawn_blocking(move || {
        registry
            .list_or_empty(paths::UPLOADS)
            .map_or(0, |v| v.len() as u64)
    })
    .await
    .unwrap_or(0);
    let gauges = ScrapeGauges {
        uploads_open: uploads,
        mirror_cached_bytes: mirror.as_ref().map(|m| m.cached_bytes()),
        mirror_fills: mirror.as_ref().map(|m| m.fills_in_progress() as u64),
    };
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        super::global().render(gauges),
    )
        .into_response()
}

/// Ready when the storage takes a write (a small file under `_health/`) and, with a mirror,
/// every upstream answers HTTP (probed at most every [`crate::mirror::READINESS_TTL`]).
async fn readyz(State(registry): State<Arc<Registry>>) -> Response {
    let mirror = registry.mirror().cloned();
    let probe =
        tokio::task::spawn_blocking(move || registry.driver.put("_health/probe", b"ok")).await;
    let storage = match probe {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(format!("storage is not writable: {e}")),
        Err(_) => Some("the storage probe failed".into()),
    };
    let upstreams = match mirror {
        Some(m) => Some(m.readiness().await),
        None => None,
    };
    let unreachable: Vec<String> = upstreams
        .iter()
        .flatten()
        .filter_map(|r| {
            r.error
                .as_ref()
                .map(|e| format!("upstream `{}` is unreachable ({e})", r.registry))
        })
        .collect();
    let error = storage.into_iter().chain(unreachable).collect::<Vec<_>>();
    let status = if error.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = health_body((!error.is_empty()).then(|| error.join("; ")));
    if let Some(u) = upstreams {
        body["upstreams"] = u
            .iter()
            .map(|r| {
                (
                    r.registry.clone(),
                    serde_json::json!(r.error.as_deref().map_or("ok", |_| "unreachable")),
                )
            })
            .collect::<serde_json::Map<_, _>>()
            .into();
    }
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn health_body(error: Option<String>) -> serde_json::Value {
    match error {
        None => serde_json::json!({"status": "ok"}),
        Some(e) => serde_json::json!({"status": "unavailable", "error": e}),
    }
}

/// `{"status":"ok"}`, or `{"status":"unavailable","error":…}`.
fn health(status: StatusCode, error: Option<String>) -> Response {
    let body = health_body(error);
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
