//! Push workflow, blobs: end-4a/4b/4c (POST), end-5 (PATCH), end-6 (PUT), end-11 (mount),
//! end-13 (status), end-14 (cancel). Manifest pushes are in `api_push_manifests.rs`.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use bytes::Bytes;
use common::*;

/// Asserts a blob is served in `name` with exactly `data`.
async fn assert_blob(h: &Harness, name: &str, digest: &str, data: &[u8]) {
    let r = h.get(&format!("/v2/{name}/blobs/{digest}")).await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body.as_ref(), data, "content of {digest} in {name}");
    assert_eq!(r.header("docker-content-digest"), digest);
}

#[tokio::test]
async fn post_starts_a_session() {
    let h = Harness::new();
    let r = h.send(req(Method::POST, "/v2/push/a/blobs/uploads/")).await;
    r.expect(StatusCode::ACCEPTED);
    let location = r.header("location");
    let uuid = r.header("docker-upload-uuid");
    assert!(
        location.starts_with("/v2/push/a/blobs/uploads/"),
        "{location}"
    );
    assert!(
        location.contains(uuid),
        "{location} should name session {uuid}"
    );
    assert_eq!(r.header("range"), "0-0");
    // Without the trailing slash too.
    h.send(req(Method::POST, "/v2/push/a/blobs/uploads"))
        .await
        .expect(StatusCode::ACCEPTED);
}

#[tokio::test]
async fn monolithic_post_then_put() {
    let h = Harness::new();
    let data = b"monolithic content";
    let digest = sha256(data);
    let loc = h.start_upload("push/mono").await;
    let r = h
        .send(req_body(
            Method::PUT,
            &with_query(&loc, &format!("digest={digest}")),
            data.to_vec(),
        ))
        .await;
    r.expect(StatusCode::CREATED);
    assert_eq!(
        r.header("location"),
        format!("/v2/push/mono/blobs/{digest}")
    );
    assert_eq!(r.header("docker-content-digest"), digest);
    // The Location is where the blob is.
    let got = h.get(r.header("location")).await;
    got.expect(StatusCode::OK);
    assert_eq!(got.body.as_ref(), data);
}

#[tokio::test]
async fn single_post_with_digest() {
    let h = Harness::new();
    let data = b"single post";
    let digest = sha256(data);
    let r = h
        .send(req_body(
            Method::POST,
            &format!("/v2/push/single/blobs/uploads/?digest={digest}"),
            data.to_vec(),
        ))
        .await;
    r.expect(StatusCode::CREATED);
    assert_eq!(
        r.header("location"),
        format!("/v2/push/single/blobs/{digest}")
    );
    assert_eq!(r.header("docker-content-digest"), digest);
    assert_blob(&h, "push/single", &digest, data).await;
}

#[tokio::test]
async fn single_post_with_wrong_digest_stores_nothing() {
    let h = Harness::new();
    let wrong = sha256(b"something else");
    let r = h
        .send(req_body(
            Method::POST,
            &format!("/v2/push/single/blobs/uploads/?digest={wrong}"),
            b"data".to_vec(),
        ))
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "DIGEST_INVALID");
    assert_error(
        &h.get(&format!("/v2/push/single/blobs/{wrong}")).await,
        StatusCode::NOT_FOUND,
        "BLOB_UNKNOWN",
    );
    let actual = sha256(b"data");
    assert_error(
        &h.get(&format!("/v2/push/single/blobs/{actual}")).await,
        StatusCode::NOT_FOUND,
        "BLOB_UNKNOWN",
    );
}

#[tokio::test]
async fn chunked_upload_in_order() {
    let h = Harness::new();
    let data = pseudo_random(1000, 7);
    let loc = h.start_upload("push/chunked").await;
    let r = h.patch_chunk(&loc, 0, &data[..400]).await;
    r.expect(StatusCode::ACCEPTED);
    assert_eq!(r.header("range"), "0-399");
    let loc2 = r.header("location").to_owned();
    assert!(r.header_opt("docker-upload-uuid").is_some());
    let r = h.patch_chunk(&loc2, 400, &data[400..]).await;
    r.expect(StatusCode::ACCEPTED);
    assert_eq!(r.header("range"), "0-999");
    let digest = sha256(&data);
    let r = h.finish(r.header("location"), &digest).await;
    r.expect(StatusCode::CREATED);
    assert_eq!(r.header("docker-content-digest"), digest);
    assert_eq!(
        r.header("location"),
        format!("/v2/push/chunked/blobs/{digest}")
    );
    assert_blob(&h, "push/chunked", &digest, &data).await;
}

#[tokio::test]
async fn content_range_forms_clients_send_are_accepted() {
    let h = Harness::new();
    let loc = h.start_upload("push/forms").await;
    let r = h
        .send(req_with(
            Method::PATCH,
            &loc,
            &[("content-range", "bytes 0-2/6")],
            Some(b"abc"),
        ))
        .await;
    r.expect(StatusCode::ACCEPTED);
    assert_eq!(r.header("range"), "0-2");
    let r = h
        .send(req_with(
            Method::PATCH,
            &loc,
            &[("content-range", "bytes=3-5")],
            Some(b"def"),
        ))
        .await;
    r.expect(StatusCode::ACCEPTED);
    assert_eq!(r.header("range"), "0-5");
    h.finish(&loc, &sha256(b"abcdef"))
        .await
        .expect(StatusCode::CREATED);
}

#[tokio::test]
async fn streamed_patch_without_content_range() {
    let h = Harness::new();
    let loc = h.start_upload("push/stream").await;
    let r = h.patch_stream(&loc, b"first part,").await;
    r.expect(StatusCode::ACCEPTED);
    assert_eq!(r.header("range"), "0-10");
    let r = h.patch_stream(r.header("location"), b" second part").await;
    r.expect(StatusCode::ACCEPTED);
    assert_eq!(r.header("range"), "0-22");
    let digest = sha256(b"first part, second part");
    h.finish(r.header("location"), &digest)
        .await
        .expect(StatusCode::CREATED);
    assert_blob(&h, "push/stream", &digest, b"first part, second part").await;
}

#[tokio::test]
async fn streamed_patch_in_many_frames_without_content_length() {
    // Chunked transfer encoding: no Content-Length, the body arrives in many frames.
    let h = Harness::new();
    let data = pseudo_random(600 * 1024, 9);
    let loc = h.start_upload("push/frames").await;
    let frames: Vec<Result<Bytes, std::io::Error>> = data
        .chunks(10_000)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let body = Body::from_stream(futures_util::stream::iter(frames));
    let request = Request::builder()
        .method(Method::PATCH)
        .uri(&loc)
        .header("transfer-encoding", "chunked")
        .body(body)
        .unwrap();
    let r = h.send(request).await;
    r.expect(StatusCode::ACCEPTED);
    assert_eq!(r.header("range"), format!("0-{}", data.len() - 1));
    let digest = sha256(&data);
    h.finish(&loc, &digest).await.expect(StatusCode::CREATED);
    assert_blob(&h, "push/frames", &digest, &data).await;
}

#[tokio::test]
async fn out_of_order_and_repeated_chunks_are_416_and_session_survives() {
    let h = Harness::new();
    let data = pseudo_random(300, 11);
    let loc = h.start_upload("push/order").await;

    // Out of order before anything was written.
    let r = h.patch_chunk(&loc, 100, &data[100..200]).await;
    r.expect(StatusCode::RANGE_NOT_SATISFIABLE);
    let status = h.get(&loc).await;
    status.expect(StatusCode::NO_CONTENT);
    assert_eq!(status.header("range"), "0-0");

    h.patch_chunk(&loc, 0, &data[..100])
        .await
        .expect(StatusCode::ACCEPTED);

    // The same chunk again, then one that skips ahead.
    h.patch_chunk(&loc, 0, &data[..100])
        .await
        .expect(StatusCode::RANGE_NOT_SATISFIABLE);
    h.patch_chunk(&loc, 150, &data[150..200])
        .await
        .expect(StatusCode::RANGE_NOT_SATISFIABLE);
    // An overlapping chunk.
    h.patch_chunk(&loc, 50, &data[50..200])
        .await
        .expect(StatusCode::RANGE_NOT_SATISFIABLE);

    let status = h.get(&loc).await;
    status.expect(StatusCode::NO_CONTENT);
    assert_eq!(status.header("range"), "0-99");

    // The right next chunk is still accepted, and the blob is exactly the in-order bytes.
    let r = h.patch_chunk(&loc, 100, &data[100..]).await;
    r.expect(StatusCode::ACCEPTED);
    assert_eq!(r.header("range"), "0-299");
    let digest = sha256(&data);
    h.finish(&loc, &digest).await.expect(StatusCode::CREATED);
    assert_blob(&h, "push/order", &digest, &data).await;
}

#[tokio::test]
async fn content_range_disagreeing_with_body_is_rejected_and_undone() {
    let h = Harness::new();
    let loc = h.start_upload("push/len").await;
    h.patch_chunk(&loc, 0, b"12345")
        .await
        .expect(StatusCode::ACCEPTED);
    // Claims 10 bytes, sends 3.
    let r = h
        .send(req_with(
            Method::PATCH,
            &loc,
            &[("content-range", "5-14")],
            Some(b"678"),
        ))
        .await;
    assert!(r.status.is_client_error(), "{r:?}");
    let status = h.get(&loc).await;
    status.expect(StatusCode::NO_CONTENT);
    assert_eq!(status.header("range"), "0-4");
    h.patch_chunk(&loc, 5, b"6789")
        .await
        .expect(StatusCode::ACCEPTED);
    let digest = sha256(b"123456789");
    h.finish(&loc, &digest).await.expect(StatusCode::CREATED);
    assert_blob(&h, "push/len", &digest, b"123456789").await;
}

#[tokio::test]
async fn interrupted_chunk_is_undone() {
    let h = Harness::new();
    let loc = h.start_upload("push/interrupted").await;
    h.patch_stream(&loc, b"good ")
        .await
        .expect(StatusCode::ACCEPTED);
    let frames: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(Bytes::from_static(b"partial garbage")),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "client went away",
        )),
    ];
    let request = Request::builder()
        .method(Method::PATCH)
        .uri(&loc)
        .header("transfer-encoding", "chunked")
        .body(Body::from_stream(futures_util::stream::iter(frames)))
        .unwrap();
    let r = h.send(request).await;
    assert!(r.status.is_client_error(), "{r:?}");
    let status = h.get(&loc).await;
    status.expect(StatusCode::NO_CONTENT);
    assert_eq!(status.header("range"), "0-4");
    h.patch_stream(&loc, b"data")
        .await
        .expect(StatusCode::ACCEPTED);
    let digest = sha256(b"good data");
    h.finish(&loc, &digest).await.expect(StatusCode::CREATED);
    assert_blob(&h, "push/interrupted", &digest, b"good data").await;
}

#[tokio::test]
async fn final_chunk_in_put_body() {
    let h = Harness::new();
    let loc = h.start_upload("push/final").await;
    h.patch_chunk(&loc, 0, b"hello ")
        .await
        .expect(StatusCode::ACCEPTED);
    let digest = sha256(b"hello world");
    let url = with_query(&loc, &format!("digest={digest}"));
    // Out of order final chunk: 416, and the session is still there.
    let r = h
        .send(req_with(
            Method::PUT,
            &url,
            &[("content-range", "7-11")],
            Some(b"world"),
        ))
        .await;
    r.expect(StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        h.get(&loc)
            .await
            .expect(StatusCode::NO_CONTENT)
            .header("range"),
        "0-5"
    );
    let r = h
        .send(req_with(
            Method::PUT,
            &url,
            &[("content-range", "6-10")],
            Some(b"world"),
        ))
        .await;
    r.expect(StatusCode::CREATED);
    assert_eq!(r.header("docker-content-digest"), digest);
    assert_blob(&h, "push/final", &digest, b"hello world").await;
}

#[tokio::test]
async fn final_chunk_in_put_body_without_content_range() {
    let h = Harness::new();
    let loc = h.start_upload("push/final2").await;
    h.patch_stream(&loc, b"abc")
        .await
        .expect(StatusCode::ACCEPTED);
    let digest = sha256(b"abcdef");
    let r = h
        .send(req_body(
            Method::PUT,
            &with_query(&loc, &format!("digest={digest}")),
            b"def".to_vec(),
        ))
        .await;
    r.expect(StatusCode::CREATED);
    assert_blob(&h, "push/final2", &digest, b"abcdef").await;
}

#[tokio::test]
async fn final_chunk_without_content_length_header_is_not_ignored() {
    // Over HTTP/2 a request body needs no Content-Length (and has no Transfer-Encoding).
    let h = Harness::new();
    let loc = h.start_upload("push/h2").await;
    h.patch_stream(&loc, b"abc")
        .await
        .expect(StatusCode::ACCEPTED);
    let digest = sha256(b"abcdef");
    let request = Request::builder()
        .method(Method::PUT)
        .uri(with_query(&loc, &format!("digest={digest}")))
        .body(Body::from(&b"def"[..]))
        .unwrap();
    let r = h.send(request).await;
    r.expect(StatusCode::CREATED);
    assert_blob(&h, "push/h2", &digest, b"abcdef").await;
}

#[tokio::test]
async fn upload_status_reports_range_and_location() {
    let h = Harness::new();
    let loc = h.start_upload("push/status").await;
    let r = h.get(&loc).await;
    r.expect(StatusCode::NO_CONTENT);
    assert_eq!(r.header("range"), "0-0");
    assert_eq!(r.header("location"), loc);
    h.patch_stream(&loc, b"0123456789")
        .await
        .expect(StatusCode::ACCEPTED);
    let r = h.get(&loc).await;
    r.expect(StatusCode::NO_CONTENT);
    assert_eq!(r.header("range"), "0-9");
    assert_eq!(r.header("location"), loc);
    assert!(r
        .header_opt("docker-upload-uuid")
        .is_some_and(|u| loc.ends_with(u)));
}

#[tokio::test]
async fn cancelled_session_is_unknown() {
    let h = Harness::new();
    let loc = h.start_upload("push/cancel").await;
    h.patch_stream(&loc, b"data")
        .await
        .expect(StatusCode::ACCEPTED);
    h.delete(&loc).await.expect(StatusCode::NO_CONTENT);
    assert_error(
        &h.get(&loc).await,
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    );
    assert_error(
        &h.patch_stream(&loc, b"more").await,
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    );
    assert_error(
        &h.finish(&loc, &sha256(b"data")).await,
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    );
    assert_error(
        &h.delete(&loc).await,
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    );
}

#[tokio::test]
async fn finished_session_is_unknown() {
    let h = Harness::new();
    let loc = h.start_upload("push/done").await;
    h.patch_stream(&loc, b"data")
        .await
        .expect(StatusCode::ACCEPTED);
    h.finish(&loc, &sha256(b"data"))
        .await
        .expect(StatusCode::CREATED);
    assert_error(
        &h.get(&loc).await,
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    );
    assert_error(
        &h.patch_stream(&loc, b"x").await,
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    );
}

#[tokio::test]
async fn unknown_or_garbage_session_is_blob_upload_unknown() {
    let h = Harness::new();
    for session in [
        "0b3c1a7e-3f0a-4c57-9c1e-2d6f1b9a7e11",
        "garbage",
        "..",
        "a%2F..%2Fb",
    ] {
        let loc = format!("/v2/push/x/blobs/uploads/{session}");
        assert_error(
            &h.get(&loc).await,
            StatusCode::NOT_FOUND,
            "BLOB_UPLOAD_UNKNOWN",
        );
        assert_error(
            &h.patch_stream(&loc, b"data").await,
            StatusCode::NOT_FOUND,
            "BLOB_UPLOAD_UNKNOWN",
        );
        assert_error(
            &h.finish(&loc, &sha256(b"data")).await,
            StatusCode::NOT_FOUND,
            "BLOB_UPLOAD_UNKNOWN",
        );
        assert_error(
            &h.delete(&loc).await,
            StatusCode::NOT_FOUND,
            "BLOB_UPLOAD_UNKNOWN",
        );
    }
}

#[tokio::test]
async fn session_is_bound_to_its_repository() {
    let h = Harness::new();
    let loc = h.start_upload("push/owner").await;
    h.patch_stream(&loc, b"data")
        .await
        .expect(StatusCode::ACCEPTED);
    let id = loc.rsplit('/').next().unwrap();
    let foreign = format!("/v2/push/intruder/blobs/uploads/{id}");
    assert_error(
        &h.get(&foreign).await,
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    );
    assert_error(
        &h.patch_stream(&foreign, b"x").await,
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    );
    assert_error(
        &h.finish(&foreign, &sha256(b"data")).await,
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    );
    assert_error(
        &h.delete(&foreign).await,
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    );
    // Untouched in its own repository.
    assert_eq!(
        h.get(&loc)
            .await
            .expect(StatusCode::NO_CONTENT)
            .header("range"),
        "0-3"
    );
    let digest = sha256(b"data");
    h.finish(&loc, &digest).await.expect(StatusCode::CREATED);
    assert_error(
        &h.get(&format!("/v2/push/intruder/blobs/{digest}")).await,
        StatusCode::NOT_FOUND,
        "BLOB_UNKNOWN",
    );
}

#[tokio::test]
async fn put_with_wrong_digest_is_400_and_stores_nothing() {
    let h = Harness::new();
    let loc = h.start_upload("push/wrong").await;
    h.patch_stream(&loc, b"real content")
        .await
        .expect(StatusCode::ACCEPTED);
    let wrong = sha256(b"claimed content");
    assert_error(
        &h.finish(&loc, &wrong).await,
        StatusCode::BAD_REQUEST,
        "DIGEST_INVALID",
    );
    assert_error(
        &h.get(&format!("/v2/push/wrong/blobs/{wrong}")).await,
        StatusCode::NOT_FOUND,
        "BLOB_UNKNOWN",
    );
    let actual = sha256(b"real content");
    assert_error(
        &h.get(&format!("/v2/push/wrong/blobs/{actual}")).await,
        StatusCode::NOT_FOUND,
        "BLOB_UNKNOWN",
    );
}

#[tokio::test]
async fn put_without_or_with_malformed_digest_is_400() {
    let h = Harness::new();
    let loc = h.start_upload("push/nodigest").await;
    h.patch_stream(&loc, b"content")
        .await
        .expect(StatusCode::ACCEPTED);
    let r = h.send(req(Method::PUT, &loc)).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "DIGEST_INVALID");
    assert_error(
        &h.finish(&loc, "sha256:xyz").await,
        StatusCode::BAD_REQUEST,
        "DIGEST_INVALID",
    );
    assert_error(
        &h.finish(&loc, "nocolon").await,
        StatusCode::BAD_REQUEST,
        "DIGEST_INVALID",
    );
    // The session is still usable with the right digest.
    let digest = sha256(b"content");
    h.finish(&loc, &digest).await.expect(StatusCode::CREATED);
    assert_blob(&h, "push/nodigest", &digest, b"content").await;
}

#[tokio::test]
async fn sha512_upload() {
    let h = Harness::new();
    let data = pseudo_random(5000, 13);
    let r = h
        .send(req(
            Method::POST,
            "/v2/push/sha512/blobs/uploads/?digest-algorithm=sha512",
        ))
        .await;
    r.expect(StatusCode::ACCEPTED);
    let loc = r.header("location").to_owned();
    h.patch_chunk(&loc, 0, &data[..2000])
        .await
        .expect(StatusCode::ACCEPTED);
    h.patch_chunk(&loc, 2000, &data[2000..])
        .await
        .expect(StatusCode::ACCEPTED);
    let digest = sha512(&data);
    let r = h.finish(&loc, &digest).await;
    r.expect(StatusCode::CREATED);
    assert_eq!(r.header("docker-content-digest"), digest);
    assert_blob(&h, "push/sha512", &digest, &data).await;

    // Single POST with a sha512 digest.
    let data2 = b"monolithic sha512";
    let d2 = sha512(data2);
    h.send(req_body(
        Method::POST,
        &format!("/v2/push/sha512/blobs/uploads/?digest={d2}"),
        data2.to_vec(),
    ))
    .await
    .expect(StatusCode::CREATED);
    assert_blob(&h, "push/sha512", &d2, data2).await;
}

#[tokio::test]
async fn closing_digest_may_use_another_algorithm_than_the_session() {
    let h = Harness::new();
    let data = b"hashed two ways";
    // A sha256 session closed with a sha512 digest.
    let loc = h.start_upload("push/cross").await;
    h.patch_stream(&loc, data)
        .await
        .expect(StatusCode::ACCEPTED);
    h.finish(&loc, &sha512(data))
        .await
        .expect(StatusCode::CREATED);
    assert_blob(&h, "push/cross", &sha512(data), data).await;
    // A sha512 session closed with a sha256 digest.
    let r = h
        .send(req(
            Method::POST,
            "/v2/push/cross/blobs/uploads/?digest-algorithm=sha512",
        ))
        .await;
    let loc = r.expect(StatusCode::ACCEPTED).header("location").to_owned();
    h.patch_stream(&loc, data)
        .await
        .expect(StatusCode::ACCEPTED);
    h.finish(&loc, &sha256(data))
        .await
        .expect(StatusCode::CREATED);
    assert_blob(&h, "push/cross", &sha256(data), data).await;
}

#[tokio::test]
async fn purged_stale_session_is_unknown() {
    let h = Harness::new();
    let loc = h.start_upload("push/stale").await;
    h.patch_stream(&loc, b"old")
        .await
        .expect(StatusCode::ACCEPTED);
    let purged = h
        .registry
        .purge_stale_uploads(std::time::Duration::ZERO)
        .unwrap();
    assert_eq!(purged, 1);
    assert_error(
        &h.get(&loc).await,
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    );
    assert_error(
        &h.finish(&loc, &sha256(b"old")).await,
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    );
    // Recent sessions are kept.
    let fresh = h.start_upload("push/stale").await;
    assert_eq!(
        h.registry
            .purge_stale_uploads(std::time::Duration::from_secs(3600))
            .unwrap(),
        0
    );
    h.get(&fresh).await.expect(StatusCode::NO_CONTENT);
    // A session caught between its data file and its info file (a purge running while it is
    // being started) is kept too: its directory is new.
    let id = fresh
        .split('?')
        .next()
        .and_then(|p| p.rsplit('/').next())
        .unwrap()
        .to_owned();
    let dir = find_dir(h.tmp.path(), &id).expect("the session's directory");
    std::fs::remove_file(dir.join("info")).unwrap();
    assert_eq!(
        h.registry
            .purge_stale_uploads(std::time::Duration::from_secs(3600))
            .unwrap(),
        0
    );
    h.get(&fresh).await.expect(StatusCode::NO_CONTENT);
    // Without info and old, it is what a crash left: purged.
    assert_eq!(
        h.registry
            .purge_stale_uploads(std::time::Duration::ZERO)
            .unwrap(),
        1
    );
    assert!(!dir.exists());
}

/// The directory named `name` below `root`.
fn find_dir(root: &std::path::Path, name: &str) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(root).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if entry.file_name() == name {
                return Some(path);
            }
            if let Some(found) = find_dir(&path, name) {
                return Some(found);
            }
        }
    }
    None
}

#[tokio::test]
async fn unsupported_digest_algorithm_is_400() {
    let h = Harness::new();
    for alg in ["md5", "bogus", "SHA256"] {
        let r = h
            .send(req(
                Method::POST,
                &format!("/v2/push/alg/blobs/uploads/?digest-algorithm={alg}"),
            ))
            .await;
        assert_error_status(&r, StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn cross_repository_mount() {
    let h = Harness::new();
    let data = b"mountable layer";
    let digest = h.push_blob("push/source", data).await;
    let r = h
        .send(req(
            Method::POST,
            &format!("/v2/push/target/blobs/uploads/?mount={digest}&from=push/source"),
        ))
        .await;
    r.expect(StatusCode::CREATED);
    assert_eq!(
        r.header("location"),
        format!("/v2/push/target/blobs/{digest}")
    );
    assert_eq!(r.header("docker-content-digest"), digest);
    assert_blob(&h, "push/target", &digest, data).await;
    // Encoded `from` works too, and mounting what the repository already has is fine.
    let r = h
        .send(req(
            Method::POST,
            &format!(
                "/v2/push/target/blobs/uploads/?mount={digest}&from={}",
                enc("push/source")
            ),
        ))
        .await;
    r.expect(StatusCode::CREATED);
}

#[tokio::test]
async fn mount_that_cannot_be_done_falls_back_to_a_session() {
    let h = Harness::new();
    let data = b"only in source";
    let digest = h.push_blob("push/source", data).await;
    let urls = [
        format!("/v2/push/target/blobs/uploads/?mount={digest}&from=push/empty"),
        format!("/v2/push/target/blobs/uploads/?mount={digest}"),
        format!("/v2/push/target/blobs/uploads/?mount={digest}&from=NOT..VALID"),
    ];
    for url in urls {
        let r = h.send(req(Method::POST, &url)).await;
        r.expect(StatusCode::ACCEPTED);
        let loc = r.header("location").to_owned();
        assert!(loc.starts_with("/v2/push/target/blobs/uploads/"), "{loc}");
        assert_error(
            &h.get(&format!("/v2/push/target/blobs/{digest}")).await,
            StatusCode::NOT_FOUND,
            "BLOB_UNKNOWN",
        );
        // The fallback session works like any other.
        h.patch_stream(&loc, data)
            .await
            .expect(StatusCode::ACCEPTED);
        h.finish(&loc, &digest).await.expect(StatusCode::CREATED);
        assert_blob(&h, "push/target", &digest, data).await;
        h.delete(&format!("/v2/push/target/blobs/{digest}"))
            .await
            .expect(StatusCode::ACCEPTED);
    }
    let r = h
        .send(req(
            Method::POST,
            "/v2/push/target/blobs/uploads/?mount=sha256:xyz&from=push/source",
        ))
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "DIGEST_INVALID");
}

#[tokio::test]
async fn empty_blob_uploads() {
    let h = Harness::new();
    // Single POST with an empty body.
    let digest = h.push_blob("push/empty1", b"").await;
    assert_eq!(digest, EMPTY_SHA256);
    assert_blob(&h, "push/empty1", EMPTY_SHA256, b"").await;
    // POST then PUT with no body at all.
    let loc = h.start_upload("push/empty2").await;
    h.finish(&loc, EMPTY_SHA256)
        .await
        .expect(StatusCode::CREATED);
    assert_blob(&h, "push/empty2", EMPTY_SHA256, b"").await;
    // POST, empty PATCH, PUT.
    let loc = h.start_upload("push/empty3").await;
    h.patch_stream(&loc, b"").await.expect(StatusCode::ACCEPTED);
    h.finish(&loc, EMPTY_SHA256)
        .await
        .expect(StatusCode::CREATED);
    assert_blob(&h, "push/empty3", EMPTY_SHA256, b"").await;
}

#[tokio::test]
async fn upload_survives_a_restart() {
    let h = Harness::new();
    let data = pseudo_random(70_000, 17);
    let loc = h.start_upload("push/restart").await;
    h.patch_chunk(&loc, 0, &data[..30_000])
        .await
        .expect(StatusCode::ACCEPTED);

    let restarted = h.reopen(|_| {});
    let status = send_to(&restarted, req(Method::GET, &loc)).await;
    status.expect(StatusCode::NO_CONTENT);
    assert_eq!(status.header("range"), "0-29999");
    let digest = sha256(&data);
    let url = with_query(&loc, &format!("digest={digest}"));
    let r = send_to(
        &restarted,
        req_with(
            Method::PUT,
            &url,
            &[("content-range", "30000-69999")],
            Some(&data[30_000..]),
        ),
    )
    .await;
    r.expect(StatusCode::CREATED);
    assert_eq!(r.header("docker-content-digest"), digest);
    let got = send_to(
        &restarted,
        req(Method::GET, &format!("/v2/push/restart/blobs/{digest}")),
    )
    .await;
    got.expect(StatusCode::OK);
    assert!(got.body.as_ref() == data.as_slice());
}

#[tokio::test]
async fn upload_survives_a_restart_with_sha512() {
    let h = Harness::new();
    let data = b"sha512 across restart";
    let r = h
        .send(req(
            Method::POST,
            "/v2/push/r512/blobs/uploads/?digest-algorithm=sha512",
        ))
        .await;
    let loc = r.expect(StatusCode::ACCEPTED).header("location").to_owned();
    h.patch_stream(&loc, &data[..6])
        .await
        .expect(StatusCode::ACCEPTED);
    let restarted = h.reopen(|_| {});
    let patched = send_to(
        &restarted,
        req_with(Method::PATCH, &loc, &[], Some(&data[6..])),
    )
    .await;
    patched.expect(StatusCode::ACCEPTED);
    let digest = sha512(data);
    send_to(
        &restarted,
        req(Method::PUT, &with_query(&loc, &format!("digest={digest}"))),
    )
    .await
    .expect(StatusCode::CREATED);
    let got = send_to(
        &restarted,
        req(Method::GET, &format!("/v2/push/r512/blobs/{digest}")),
    )
    .await;
    assert_eq!(got.expect(StatusCode::OK).body.as_ref(), data);
}

#[tokio::test]
async fn same_blob_pushed_twice_and_to_two_repositories() {
    let h = Harness::new();
    let data = b"shared layer";
    let d1 = h.push_blob("push/one", data).await;
    let d2 = h.push_blob("push/one", data).await;
    let d3 = h.push_blob("push/two", data).await;
    assert_eq!(d1, d2);
    assert_eq!(d1, d3);
    assert_blob(&h, "push/one", &d1, data).await;
    assert_blob(&h, "push/two", &d1, data).await;
}
