//! In-process checks of issue 9's API-level rules: reads of a reference that cannot exist are
//! `MANIFEST_UNKNOWN`, upload slots answer `429` with `Retry-After`, a stalled body ends with
//! `408` and leaves the session where it was, storage failures answer the JSON envelope, and
//! every answer carries an `X-Request-Id`.

mod common;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use bytes::Bytes;
use common::*;
use rstest::rstest;

#[rstest]
#[case(".INVALID_MANIFEST_NAME")]
#[case("-bad")]
#[case("sha256:xyz")]
#[case("md5:d41d8cd98f00b204e9800998ecf8427e")]
#[tokio::test]
async fn reads_of_an_impossible_reference_are_manifest_unknown(#[case] reference: &str) {
    let h = Harness::new();
    let img = h.push_image("lim/ref", "v1", &[b"l"]).await;
    let url = format!("/v2/lim/ref/manifests/{reference}");
    assert_error(
        &h.get(&url).await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    );
    let r = h.head(&url).await;
    r.expect(StatusCode::NOT_FOUND);
    assert!(r.body.is_empty());
    // Writes still refuse it as invalid.
    if !reference.contains(':') {
        let r = h
            .put_manifest("lim/ref", reference, OCI_MANIFEST, &img.manifest)
            .await;
        assert_error_status(&r, StatusCode::BAD_REQUEST);
        assert!(
            ["TAG_INVALID", "MANIFEST_INVALID"]
                .iter()
                .any(|c| r.error_codes().iter().any(|x| x == c)),
            "{}",
            r.text()
        );
    }
}

/// A PATCH whose body sends a few bytes and then nothing, until the test drops the sender.
fn stalled_patch(location: &str) -> (Request<Body>, tokio::sync::mpsc::Sender<()>) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
    let stream = async_stream_frames(async move {
        let _ = rx.recv().await;
    });
    let req = Request::builder()
        .method(Method::PATCH)
        .uri(location)
        .header("content-type", "application/octet-stream")
        .body(Body::from_stream(stream))
        .unwrap();
    (req, tx)
}

/// `ab`, then waits for `until`, then ends.
fn async_stream_frames(
    until: impl std::future::Future<Output = ()> + Send + 'static,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    futures_util::stream::unfold((0, Some(Box::pin(until))), |(n, until)| async move {
        match n {
            0 => Some((Ok(Bytes::from_static(b"ab")), (1, until))),
            _ => {
                until?.await;
                None
            }
        }
    })
}

#[tokio::test]
async fn uploads_past_the_limit_are_429_with_retry_after() {
    let h = Harness::with(|c| {
        c.limits.max_concurrent_uploads = 2;
        c.limits.body_timeout_secs = 30;
    });
    let mut held = Vec::new();
    for _ in 0..2 {
        let loc = h.start_upload("lim/busy").await;
        let (req, tx) = stalled_patch(&loc);
        let router = h.router.clone();
        held.push((tx, tokio::spawn(async move { send_to(&router, req).await })));
    }
    // Let both PATCHes take their slots.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    let r = h
        .send(req_body(
            Method::POST,
            &format!("/v2/lim/busy/blobs/uploads/?digest={}", sha256(b"x")),
            &b"x"[..],
        ))
        .await;
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS");
    assert!(r.header("retry-after").parse::<u64>().unwrap() >= 1);
    // Small requests need no slot.
    h.get("/v2/").await.expect(StatusCode::OK);
    // Finished uploads give their slots back.
    for (tx, task) in held {
        drop(tx);
        task.await.unwrap().expect(StatusCode::ACCEPTED);
    }
    h.push_blob("lim/busy", b"x").await;
}

#[tokio::test]
async fn a_stalled_body_ends_with_408_and_the_session_resumes() {
    let h = Harness::with(|c| c.limits.body_timeout_secs = 1);
    let loc = h.start_upload("lim/stall").await;
    h.patch_chunk(&loc, 0, b"first ")
        .await
        .expect(StatusCode::ACCEPTED);
    let (req, _tx) = stalled_patch(&loc);
    let start = Instant::now();
    let r = h.send(req).await;
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert_error(&r, StatusCode::REQUEST_TIMEOUT, "BLOB_UPLOAD_INVALID");
    // The session is where the last complete chunk left it, and goes on from there.
    let status = h.get(&loc).await;
    status.expect(StatusCode::NO_CONTENT);
    assert_eq!(status.header("range"), "0-5");
    h.patch_chunk(&loc, 6, b"second")
        .await
        .expect(StatusCode::ACCEPTED);
    let digest = sha256(b"first second");
    h.finish(&loc, &digest).await.expect(StatusCode::CREATED);
    let r = h.get(&format!("/v2/lim/stall/blobs/{digest}")).await;
    assert_eq!(r.body.as_ref(), b"first second");
}

#[tokio::test]
async fn a_storage_failure_answers_the_json_envelope() {
    let h = Harness::new();
    let loc = h.start_upload("lim/io").await;
    let id = loc.rsplit('/').next().unwrap();
    // Make the session's data file unwritable: a directory in its place.
    let data = h.tmp.path().join("_uploads").join(id).join("data");
    std::fs::remove_file(&data).unwrap();
    std::fs::create_dir(&data).unwrap();
    let r = h.patch_stream(&loc, b"bytes").await;
    assert_error(&r, StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN");
    assert!(
        !r.error_message().contains("_uploads"),
        "no paths on the wire: {}",
        r.text()
    );
}

#[tokio::test]
async fn every_answer_has_a_fresh_request_id() {
    let h = Harness::new();
    let a = h.get("/v2/").await;
    let b = h
        .send(req_with(
            Method::GET,
            "/v2/nope/tags/list",
            &[("x-request-id", "forged\"id")],
            None,
        ))
        .await;
    let (a, b) = (a.header("x-request-id"), b.header("x-request-id"));
    assert_ne!(a, b);
    assert!(!b.contains("forged"), "{b}");
}

#[tokio::test]
async fn a_stalled_manifest_body_ends_with_408() {
    let h = Harness::with(|c| c.limits.body_timeout_secs = 1);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let stream = async_stream_frames(async move {
        let _ = rx.await;
    });
    let req = Request::builder()
        .method(Method::PUT)
        .uri("/v2/lim/man/manifests/v1")
        .header("content-type", OCI_MANIFEST)
        .body(Body::from_stream(stream))
        .unwrap();
    let start = Instant::now();
    let r = h.send(req).await;
    drop(tx);
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert_error(&r, StatusCode::REQUEST_TIMEOUT, "BLOB_UPLOAD_INVALID");
}
