//! Content management: end-9 (manifest and tag DELETE), end-10 (blob DELETE), with deletion
//! disabled, and read-only mode.

mod common;

use axum::http::{Method, StatusCode};
use common::*;

#[tokio::test]
async fn delete_manifest_by_digest_removes_it_and_its_tags() {
    let h = Harness::new();
    let img = h.push_image("mgmt/m", "v1", &[b"layer"]).await;
    h.push_manifest("mgmt/m", "v1-alias", OCI_MANIFEST, &img.manifest)
        .await;
    let keep = h.push_image("mgmt/m", "keep", &[b"other layer"]).await;
    // Warm the read path first, so a cached answer would show.
    h.get("/v2/mgmt/m/manifests/v1")
        .await
        .expect(StatusCode::OK);
    h.get(&format!("/v2/mgmt/m/manifests/{}", img.digest))
        .await
        .expect(StatusCode::OK);

    let r = h
        .delete(&format!("/v2/mgmt/m/manifests/{}", img.digest))
        .await;
    r.expect(StatusCode::ACCEPTED);
    for reference in ["v1", "v1-alias", img.digest.as_str()] {
        let url = format!("/v2/mgmt/m/manifests/{reference}");
        assert_error(
            &h.get(&url).await,
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
        );
        h.head(&url).await.expect(StatusCode::NOT_FOUND);
    }
    let tags = h
        .get("/v2/mgmt/m/tags/list")
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(tags["tags"], serde_json::json!(["keep"]));
    keep.assert_intact(&h).await;
    // Its blobs stay: only the manifest was deleted.
    h.get(&format!("/v2/mgmt/m/blobs/{}", img.layer_digests[0]))
        .await
        .expect(StatusCode::OK);

    // Deleting again is 404, and the same manifest can be pushed back.
    let again = h
        .delete(&format!("/v2/mgmt/m/manifests/{}", img.digest))
        .await;
    assert_error(&again, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN");
    h.push_manifest("mgmt/m", "v1", OCI_MANIFEST, &img.manifest)
        .await;
    img.assert_intact(&h).await;
}

#[tokio::test]
async fn delete_tag_keeps_the_manifest() {
    let h = Harness::new();
    let img = h.push_image("mgmt/t", "v1", &[b"layer"]).await;
    h.push_manifest("mgmt/t", "v2", OCI_MANIFEST, &img.manifest)
        .await;
    h.get("/v2/mgmt/t/manifests/v1")
        .await
        .expect(StatusCode::OK);

    h.delete("/v2/mgmt/t/manifests/v1")
        .await
        .expect(StatusCode::ACCEPTED);
    assert_error(
        &h.get("/v2/mgmt/t/manifests/v1").await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    );
    let r = h.get(&format!("/v2/mgmt/t/manifests/{}", img.digest)).await;
    assert_eq!(
        r.expect(StatusCode::OK).body.as_ref(),
        img.manifest.as_slice()
    );
    let r = h.get("/v2/mgmt/t/manifests/v2").await;
    assert_eq!(
        r.expect(StatusCode::OK).body.as_ref(),
        img.manifest.as_slice()
    );
    let tags = h
        .get("/v2/mgmt/t/tags/list")
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(tags["tags"], serde_json::json!(["v2"]));
    assert_error(
        &h.delete("/v2/mgmt/t/manifests/v1").await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    );
}

#[tokio::test]
async fn delete_blob() {
    let h = Harness::new();
    let data = b"deletable";
    let digest = h.push_blob("mgmt/b", data).await;
    h.push_blob("mgmt/other", data).await;
    let r = h.delete(&format!("/v2/mgmt/b/blobs/{digest}")).await;
    r.expect(StatusCode::ACCEPTED);
    assert_error(
        &h.get(&format!("/v2/mgmt/b/blobs/{digest}")).await,
        StatusCode::NOT_FOUND,
        "BLOB_UNKNOWN",
    );
    h.head(&format!("/v2/mgmt/b/blobs/{digest}"))
        .await
        .expect(StatusCode::NOT_FOUND);
    // Another repository holding the same content still serves it.
    let r = h.get(&format!("/v2/mgmt/other/blobs/{digest}")).await;
    assert_eq!(r.expect(StatusCode::OK).body.as_ref(), data);
    assert_error(
        &h.delete(&format!("/v2/mgmt/b/blobs/{digest}")).await,
        StatusCode::NOT_FOUND,
        "BLOB_UNKNOWN",
    );
    // And it can be pushed again.
    h.push_blob("mgmt/b", data).await;
    h.get(&format!("/v2/mgmt/b/blobs/{digest}"))
        .await
        .expect(StatusCode::OK);
}

#[tokio::test]
async fn deleting_unknown_things_is_404() {
    let h = Harness::new();
    let img = h.push_image("mgmt/u", "v1", &[b"l"]).await;
    let missing = sha256(b"missing");
    assert_error(
        &h.delete(&format!("/v2/mgmt/u/manifests/{missing}")).await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    );
    assert_error(
        &h.delete("/v2/mgmt/u/manifests/nope").await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    );
    assert_error(
        &h.delete(&format!("/v2/mgmt/u/blobs/{missing}")).await,
        StatusCode::NOT_FOUND,
        "BLOB_UNKNOWN",
    );
    assert_error(
        &h.delete(&format!("/v2/mgmt/none/blobs/{missing}")).await,
        StatusCode::NOT_FOUND,
        "BLOB_UNKNOWN",
    );
    assert_error(
        &h.delete("/v2/mgmt/none/manifests/v1").await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    );
    // A manifest of this repository asked for in another one.
    assert_error(
        &h.delete(&format!("/v2/mgmt/none/manifests/{}", img.digest))
            .await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    );
    // Malformed digests are 400.
    assert_error(
        &h.delete("/v2/mgmt/u/manifests/sha256:xyz").await,
        StatusCode::BAD_REQUEST,
        "DIGEST_INVALID",
    );
    assert_error(
        &h.delete("/v2/mgmt/u/blobs/sha256:xyz").await,
        StatusCode::BAD_REQUEST,
        "DIGEST_INVALID",
    );
    img.assert_intact(&h).await;
}

#[tokio::test]
async fn deletes_disabled_are_405_unsupported_and_keep_data() {
    let h = Harness::with(|c| c.delete_enabled = false);
    let img = h.push_image("mgmt/nodelete", "v1", &[b"layer"]).await;
    let urls = [
        format!("/v2/mgmt/nodelete/manifests/{}", img.digest),
        "/v2/mgmt/nodelete/manifests/v1".to_owned(),
        format!("/v2/mgmt/nodelete/blobs/{}", img.layer_digests[0]),
        format!("/v2/mgmt/nodelete/blobs/{}", img.config_digest),
    ];
    for url in &urls {
        assert_error(
            &h.delete(url).await,
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
        );
    }
    img.assert_intact(&h).await;
    // Cancelling an upload is not a deletion of content and still works.
    let loc = h.start_upload("mgmt/nodelete").await;
    h.delete(&loc).await.expect(StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn read_only_refuses_every_write_and_serves_reads() {
    let h = Harness::new();
    let img = h.push_image("mgmt/ro", "v1", &[b"layer"]).await;
    let loc = h.start_upload("mgmt/ro").await;
    h.patch_stream(&loc, b"partial")
        .await
        .expect(StatusCode::ACCEPTED);
    let ro = h.reopen(|c| c.read_only = true);

    let d = sha256(b"new");
    let writes = [
        req(Method::POST, "/v2/mgmt/ro/blobs/uploads/"),
        req_body(
            Method::POST,
            &format!("/v2/mgmt/ro/blobs/uploads/?digest={d}"),
            b"new".to_vec(),
        ),
        req(
            Method::POST,
            &format!(
                "/v2/mgmt/ro/blobs/uploads/?mount={}&from=mgmt/ro",
                img.config_digest
            ),
        ),
        req_body(Method::PATCH, &loc, b"more".to_vec()),
        req(
            Method::PUT,
            &with_query(&loc, &format!("digest={}", sha256(b"partial"))),
        ),
        req(Method::DELETE, &loc),
        req_with(
            Method::PUT,
            "/v2/mgmt/ro/manifests/v2",
            &[("content-type", OCI_MANIFEST)],
            Some(&img.manifest),
        ),
        req(
            Method::DELETE,
            &format!("/v2/mgmt/ro/manifests/{}", img.digest),
        ),
        req(Method::DELETE, "/v2/mgmt/ro/manifests/v1"),
        req(
            Method::DELETE,
            &format!("/v2/mgmt/ro/blobs/{}", img.layer_digests[0]),
        ),
        req(Method::POST, "/v2/mgmt/new/blobs/uploads/"),
    ];
    for request in writes {
        let what = format!("{} {}", request.method(), request.uri());
        let r = send_to(&ro, request).await;
        assert_error(&r, StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED");
        let message = r.error_message();
        assert!(
            message.contains("read-only"),
            "{what}: message {message:?} should mention read-only"
        );
    }

    assert_image_served(&ro, &img).await;
    send_to(&ro, req(Method::GET, "/v2/"))
        .await
        .expect(StatusCode::OK);
    send_to(
        &ro,
        req(
            Method::HEAD,
            &format!("/v2/mgmt/ro/manifests/{}", img.digest),
        ),
    )
    .await
    .expect(StatusCode::OK);
    send_to(
        &ro,
        req(
            Method::HEAD,
            &format!("/v2/mgmt/ro/blobs/{}", img.config_digest),
        ),
    )
    .await
    .expect(StatusCode::OK);
    let tags = send_to(&ro, req(Method::GET, "/v2/mgmt/ro/tags/list")).await;
    assert_eq!(
        tags.expect(StatusCode::OK).json()["tags"],
        serde_json::json!(["v1"])
    );
    let cat = send_to(&ro, req(Method::GET, "/v2/_catalog")).await;
    assert_eq!(
        cat.expect(StatusCode::OK).json()["repositories"],
        serde_json::json!(["mgmt/ro"])
    );
    let refs = send_to(
        &ro,
        req(
            Method::GET,
            &format!("/v2/mgmt/ro/referrers/{}", img.digest),
        ),
    )
    .await;
    refs.expect(StatusCode::OK);
    let status = send_to(&ro, req(Method::GET, &loc)).await;
    assert_eq!(status.expect(StatusCode::NO_CONTENT).header("range"), "0-6");

    // Nothing was written: back in read-write mode the state is as before.
    img.assert_intact(&h).await;
    assert_error(
        &h.get("/v2/mgmt/ro/manifests/v2").await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    );
    assert_error(
        &h.get(&format!("/v2/mgmt/ro/blobs/{d}")).await,
        StatusCode::NOT_FOUND,
        "BLOB_UNKNOWN",
    );
}

#[tokio::test]
async fn multi_component_names_work_everywhere() {
    let h = Harness::new();
    let name = "a/b/c/d";
    let img = h.push_image(name, "v1", &[b"deep layer"]).await;
    img.assert_intact(&h).await;
    let loc = h.start_upload(name).await;
    assert!(loc.starts_with("/v2/a/b/c/d/blobs/uploads/"), "{loc}");
    h.patch_chunk(&loc, 0, b"chunk")
        .await
        .expect(StatusCode::ACCEPTED);
    assert_eq!(
        h.get(&loc)
            .await
            .expect(StatusCode::NO_CONTENT)
            .header("range"),
        "0-4"
    );
    h.finish(&loc, &sha256(b"chunk"))
        .await
        .expect(StatusCode::CREATED);
    let r = h
        .send(req(
            Method::POST,
            &format!(
                "/v2/e/f/g/blobs/uploads/?mount={}&from={name}",
                img.layer_digests[0]
            ),
        ))
        .await;
    r.expect(StatusCode::CREATED);
    let tags = h
        .get("/v2/a/b/c/d/tags/list")
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(tags["name"], name);
    h.get(&format!("/v2/{name}/referrers/{}", img.digest))
        .await
        .expect(StatusCode::OK);
    h.delete("/v2/a/b/c/d/manifests/v1")
        .await
        .expect(StatusCode::ACCEPTED);
    h.delete(&format!("/v2/a/b/c/d/manifests/{}", img.digest))
        .await
        .expect(StatusCode::ACCEPTED);
    h.delete(&format!("/v2/a/b/c/d/blobs/{}", img.layer_digests[0]))
        .await
        .expect(StatusCode::ACCEPTED);
    // The mount into e/f/g is independent of the delete in a/b/c/d.
    h.get(&format!("/v2/e/f/g/blobs/{}", img.layer_digests[0]))
        .await
        .expect(StatusCode::OK);
}

#[tokio::test]
async fn names_containing_endpoint_words_work() {
    let h = Harness::new();
    for name in [
        "x/blobs",
        "x/manifests",
        "x/tags",
        "x/referrers",
        "x/blobs/uploads",
        "blobs",
        "manifests/x",
        "uploads",
    ] {
        let img = h.push_image(name, "v1", &[name.as_bytes()]).await;
        img.assert_intact(&h).await;
        let loc = h.start_upload(name).await;
        assert!(
            loc.starts_with(&format!("/v2/{name}/blobs/uploads/")),
            "{loc}"
        );
        h.patch_stream(&loc, b"abc")
            .await
            .expect(StatusCode::ACCEPTED);
        assert_eq!(
            h.get(&loc)
                .await
                .expect(StatusCode::NO_CONTENT)
                .header("range"),
            "0-2"
        );
        h.finish(&loc, &sha256(b"abc"))
            .await
            .expect(StatusCode::CREATED);
        let tags = h
            .get(&format!("/v2/{name}/tags/list"))
            .await
            .expect(StatusCode::OK)
            .json();
        assert_eq!(tags["name"], name);
        assert_eq!(tags["tags"], serde_json::json!(["v1"]));
        h.get(&format!("/v2/{name}/referrers/{}", img.digest))
            .await
            .expect(StatusCode::OK);
    }
}
