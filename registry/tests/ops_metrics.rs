//! `/metrics`, `/livez`, `/readyz` in process: names, bounded labels, no auth needed.

mod common;

use axum::http::StatusCode;
use common::*;

#[tokio::test]
async fn metrics_count_requests_by_route_template_without_repository_labels() {
    let h = Harness::new();
    let img = h.push_image("team/metrics-app", "v1", &[b"layer"]).await;
    h.get(&format!("/v2/team/metrics-app/manifests/{}", img.tag))
        .await
        .expect(StatusCode::OK);
    h.get("/v2/team/metrics-app/manifests/missing")
        .await
        .expect(StatusCode::NOT_FOUND);
    let m = h.get("/metrics").await;
    m.expect(StatusCode::OK);
    assert!(m
        .header("content-type")
        .starts_with("text/plain; version=0.0.4"));
    let text = m.text();
    for needle in [
        "# TYPE registry_http_requests_total counter",
        "registry_http_requests_total{handler=\"manifest\",method=\"GET\",code=\"2xx\"}",
        "registry_http_requests_total{handler=\"manifest\",method=\"GET\",code=\"4xx\"}",
        "registry_http_requests_total{handler=\"blob_upload\",method=\"POST\",code=\"2xx\"}",
        "# TYPE registry_http_request_duration_seconds histogram",
        "registry_http_request_size_bytes_bucket",
        "registry_http_response_size_bytes_bucket",
        "registry_http_in_flight_requests{handler=\"metrics\"} 1",
        "registry_storage_action_seconds_bucket{driver=\"filesystem\",action=\"put\"",
        "berth_registry_gc_runs_total",
        "berth_registry_upload_sessions_open 0",
        "berth_registry_auth_failures_total",
    ] {
        assert!(text.contains(needle), "missing {needle} in:\n{text}");
    }
    assert!(!text.contains("metrics-app"), "no repository labels");
    assert!(!text.contains("sha256:"), "no digest labels");
    h.get("/livez").await.expect(StatusCode::OK);
    h.get("/readyz").await.expect(StatusCode::OK);
}

#[tokio::test]
async fn readyz_fails_when_storage_is_not_writable() {
    let h = Harness::new();
    // A file where the probe's directory should be.
    std::fs::write(h.tmp.path().join("_health"), b"not a directory").unwrap();
    h.get("/readyz")
        .await
        .expect(StatusCode::SERVICE_UNAVAILABLE);
    h.get("/livez").await.expect(StatusCode::OK);
}
