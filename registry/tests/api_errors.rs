//! Refusals: unknown endpoints and methods, invalid names and tags, invalid manifests — and that
//! no refused request changes what the registry already serves.

mod common;

use axum::http::{Method, StatusCode};
use common::*;
use rstest::rstest;

#[tokio::test]
async fn unknown_endpoint_is_404_json() {
    let h = Harness::new();
    for url in [
        "/v2/x/other/thing",
        "/v2/x",
        "/v2/x/",
        "/v2/x/manifests/",
        "/v3/",
        "/",
        "/foo/bar",
        "/v2/x/blobs/",
    ] {
        let r = h.get(url).await;
        assert_error_status(&r, StatusCode::NOT_FOUND);
        assert!(
            r.header("content-type").starts_with("application/json"),
            "{url}"
        );
    }
}

#[rstest]
#[case(Method::POST, "/v2/x/tags/list")]
#[case(Method::PUT, "/v2/x/tags/list")]
#[case(Method::DELETE, "/v2/x/tags/list")]
#[case(Method::POST, "/v2/")]
#[case(Method::PUT, "/v2/")]
#[case(Method::DELETE, "/v2/_catalog")]
#[case(Method::POST, "/v2/_catalog")]
#[case(Method::GET, "/v2/x/blobs/uploads/")]
#[case(Method::PUT, "/v2/x/blobs/uploads/")]
#[case(Method::POST, "/v2/x/manifests/latest")]
#[case(Method::PATCH, "/v2/x/manifests/latest")]
#[case(
    Method::POST,
    "/v2/x/blobs/sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)]
#[case(
    Method::PUT,
    "/v2/x/blobs/sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)]
#[case(
    Method::POST,
    "/v2/x/blobs/uploads/0b3c1a7e-3f0a-4c57-9c1e-2d6f1b9a7e11"
)]
#[tokio::test]
async fn wrong_method_is_405(#[case] method: Method, #[case] url: &str) {
    let h = Harness::new();
    let r = h.send(req(method, url)).await;
    assert_error(&r, StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED");
}

#[rstest]
#[case("UPPER")]
#[case("a//b")]
#[case("-a")]
#[case("a-")]
#[case("a___b")]
#[case("a__%20_b")]
#[case("a._b")]
#[case("a/./b")]
#[case("a/../b")]
#[case("a%2Fb")]
#[case("caf%C3%A9")]
#[tokio::test]
async fn invalid_names_are_name_invalid(#[case] name: &str) {
    let h = Harness::new();
    let d = sha256(b"x");
    let urls = [
        format!("/v2/{name}/tags/list"),
        format!("/v2/{name}/manifests/latest"),
        format!("/v2/{name}/blobs/{d}"),
        format!("/v2/{name}/referrers/{d}"),
    ];
    for url in urls {
        assert_error(&h.get(&url).await, StatusCode::BAD_REQUEST, "NAME_INVALID");
    }
    let r = h
        .send(req(Method::POST, &format!("/v2/{name}/blobs/uploads/")))
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "NAME_INVALID");
    let r = h.put_manifest(name, "latest", OCI_MANIFEST, b"{}").await;
    assert_error(&r, StatusCode::BAD_REQUEST, "NAME_INVALID");
    // Nothing was created under any spelling of the name.
    let cat = h.get("/v2/_catalog").await.expect(StatusCode::OK).json();
    assert_eq!(cat["repositories"], serde_json::json!([]));
}

#[tokio::test]
async fn overlong_name_is_name_invalid() {
    let h = Harness::new();
    let name = vec!["abcdefghij"; 24].join("/"); // 263 bytes
    assert!(name.len() > 255);
    assert_error(
        &h.get(&format!("/v2/{name}/tags/list")).await,
        StatusCode::BAD_REQUEST,
        "NAME_INVALID",
    );
    let ok = vec!["abcdefghij"; 23].join("/"); // 252 bytes
    h.push_image(&ok, "v1", &[b"l"]).await;
}

#[rstest]
#[case("-bad")]
#[case(".bad")]
#[case("a%3Ab")]
#[case("bad%20tag")]
#[case(&"a".repeat(129))]
#[tokio::test]
async fn invalid_tag_is_400(#[case] tag: &str) {
    let h = Harness::new();
    let img = h.push_image("err/tag", "v1", &[b"l"]).await;
    let r = h
        .put_manifest("err/tag", tag, OCI_MANIFEST, &img.manifest)
        .await;
    assert_error_status(&r, StatusCode::BAD_REQUEST);
    // As an extra `?tag=` on a push by digest: refused as a whole.
    let other = oci_manifest((OCI_CONFIG, &img.config_digest, img.config.len()), &[]);
    let d = sha256(&other);
    let r = h
        .send(req_with(
            Method::PUT,
            &format!("/v2/err/tag/manifests/{d}?tag=good&tag={tag}"),
            &[("content-type", OCI_MANIFEST)],
            Some(&other),
        ))
        .await;
    assert_error_status(&r, StatusCode::BAD_REQUEST);
    assert_error(
        &h.get(&format!("/v2/err/tag/manifests/{d}")).await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    );
    assert_error(
        &h.get("/v2/err/tag/manifests/good").await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    );
    let tags = h
        .get("/v2/err/tag/tags/list")
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(tags["tags"], serde_json::json!(["v1"]));
    img.assert_intact(&h).await;
}

#[tokio::test]
async fn longest_valid_tag_is_accepted() {
    let h = Harness::new();
    let img = h.push_image("err/longtag", "v1", &[b"l"]).await;
    let tag = format!("_{}", "a".repeat(127));
    h.push_manifest("err/longtag", &tag, OCI_MANIFEST, &img.manifest)
        .await;
    h.get(&format!("/v2/err/longtag/manifests/{tag}"))
        .await
        .expect(StatusCode::OK);
}

#[tokio::test]
async fn manifest_with_missing_blobs_is_manifest_blob_unknown() {
    let h = Harness::new();
    let name = "err/missing";
    let config = b"{\"os\":\"linux\"}";
    let layer = b"present layer";
    let cd = h.push_blob(name, config).await;
    let ld = h.push_blob(name, layer).await;
    let absent = sha256(b"absent");
    let foreign = h
        .push_blob("err/elsewhere", b"only in another repository")
        .await;

    let cases = [
        oci_manifest((OCI_CONFIG, &cd, config.len()), &[(OCI_LAYER, &absent, 6)]),
        oci_manifest((OCI_CONFIG, &absent, 6), &[(OCI_LAYER, &ld, layer.len())]),
        oci_manifest(
            (OCI_CONFIG, &cd, config.len()),
            &[(OCI_LAYER, &ld, layer.len()), (OCI_LAYER, &foreign, 26)],
        ),
    ];
    for body in cases {
        let r = h.put_manifest(name, "v1", OCI_MANIFEST, &body).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN");
        let r = h
            .put_manifest(name, &sha256(&body), OCI_MANIFEST, &body)
            .await;
        assert_error(&r, StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN");
        assert_error(
            &h.get(&format!("/v2/{name}/manifests/{}", sha256(&body)))
                .await,
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
        );
    }
    assert_error(
        &h.get(&format!("/v2/{name}/manifests/v1")).await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    );
}

#[tokio::test]
async fn index_with_missing_child_is_manifest_blob_unknown() {
    let h = Harness::new();
    let img = h.push_image("err/index", "v1", &[b"l"]).await;
    let missing = sha256(b"child never pushed");
    let cases = [
        (
            OCI_INDEX,
            index(
                OCI_INDEX,
                &[
                    (OCI_MANIFEST, &img.digest, img.manifest.len(), "amd64"),
                    (OCI_MANIFEST, &missing, 10, "arm64"),
                ],
            ),
        ),
        (
            DOCKER_LIST,
            index(DOCKER_LIST, &[(DOCKER_MANIFEST, &missing, 10, "amd64")]),
        ),
        // The child is in the repository, but as a blob, not as a manifest.
        (
            OCI_INDEX,
            index(
                OCI_INDEX,
                &[(OCI_MANIFEST, &img.layer_digests[0], 1, "amd64")],
            ),
        ),
    ];
    for (media_type, body) in cases {
        let r = h
            .put_manifest("err/index", "multi", media_type, &body)
            .await;
        assert_error(&r, StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN");
    }
    // A child in another repository does not count either.
    let r = h
        .put_manifest(
            "err/other",
            "multi",
            OCI_INDEX,
            &index(
                OCI_INDEX,
                &[(OCI_MANIFEST, &img.digest, img.manifest.len(), "amd64")],
            ),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN");
    assert_error(
        &h.get("/v2/err/index/manifests/multi").await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    );
    img.assert_intact(&h).await;
}

#[tokio::test]
async fn schema1_is_manifest_invalid_naming_schema_1() {
    let h = Harness::new();
    let s1 = br#"{"schemaVersion":1,"name":"err/s1","tag":"v1","architecture":"amd64","fsLayers":[],"history":[],"signatures":[]}"#;
    for content_type in [
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/json",
    ] {
        let r = h.put_manifest("err/s1", "v1", content_type, s1).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "MANIFEST_INVALID");
        let m = r.error_message();
        assert!(m.to_lowercase().contains("schema 1"), "{content_type}: {m}");
    }
    // The schema 1 Content-Type alone is enough.
    let r = h
        .put_manifest(
            "err/s1",
            "v1",
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            b"{\"schemaVersion\":2}",
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "MANIFEST_INVALID");
    assert!(r.error_message().to_lowercase().contains("schema 1"));
}

#[tokio::test]
async fn invalid_manifests_are_manifest_invalid() {
    let h = Harness::new();
    let img = h.push_image("err/inv", "v1", &[b"l"]).await;
    let config = format!(
        r#"{{"mediaType":"{OCI_CONFIG}","digest":"{}","size":{}}}"#,
        img.config_digest,
        img.config.len()
    );
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (OCI_MANIFEST, b"{not json".to_vec()),
        (OCI_MANIFEST, b"".to_vec()),
        (OCI_MANIFEST, b"[]".to_vec()),
        (OCI_MANIFEST, b"\"a string\"".to_vec()),
        (OCI_MANIFEST, b"{}".to_vec()),
        (OCI_MANIFEST, format!(r#"{{"schemaVersion":3,"config":{config},"layers":[]}}"#).into_bytes()),
        // mediaType disagrees with Content-Type.
        (DOCKER_MANIFEST, format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{config},"layers":[]}}"#).into_bytes()),
        (OCI_INDEX, format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{config},"layers":[]}}"#).into_bytes()),
        (OCI_MANIFEST, format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[]}}"#).into_bytes()),
        // Structurally wrong: no config, bad digest in a descriptor, layers not an array.
        (OCI_MANIFEST, format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","layers":[]}}"#).into_bytes()),
        (OCI_MANIFEST, format!(r#"{{"schemaVersion":2,"config":{{"mediaType":"{OCI_CONFIG}","digest":"sha256:zz","size":1}},"layers":[]}}"#).into_bytes()),
        (OCI_MANIFEST, format!(r#"{{"schemaVersion":2,"config":{config},"layers":{{}}}}"#).into_bytes()),
        (OCI_INDEX, format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":"x"}}"#).into_bytes()),
        // Unknown manifest media type.
        ("application/vnd.example.unknown+json", format!(r#"{{"schemaVersion":2,"mediaType":"application/vnd.example.unknown+json","config":{config},"layers":[]}}"#).into_bytes()),
    ];
    for (content_type, body) in cases {
        let r = h.put_manifest("err/inv", "v1", content_type, &body).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "MANIFEST_INVALID");
        img.assert_intact(&h).await;
    }
}

#[tokio::test]
async fn oversized_manifest_is_413() {
    let h = Harness::new();
    let img = h.push_image("err/big", "v1", &[b"l"]).await;
    let mut body = img.manifest.clone();
    // Valid JSON padded with whitespace past 4 MiB.
    body.splice(1..1, vec![b' '; 4 * 1024 * 1024 + 1]);
    let r = h.put_manifest("err/big", "v1", OCI_MANIFEST, &body).await;
    assert_error_status(&r, StatusCode::PAYLOAD_TOO_LARGE);
    // Without a Content-Length (chunked), the limit still holds.
    let request = axum::http::Request::builder()
        .method(Method::PUT)
        .uri("/v2/err/big/manifests/v1")
        .header("content-type", OCI_MANIFEST)
        .header("transfer-encoding", "chunked")
        .body(axum::body::Body::from(body.clone()))
        .unwrap();
    assert_error_status(&h.send(request).await, StatusCode::PAYLOAD_TOO_LARGE);
    img.assert_intact(&h).await;
}

#[tokio::test]
async fn configured_manifest_limit_applies() {
    let h = Harness::with(|c| c.max_manifest_bytes = 1024);
    let name = "err/limit";
    let cd = h.push_blob(name, b"{}").await;
    let small = oci_manifest((OCI_CONFIG, &cd, 2), &[]);
    assert!(small.len() < 1024);
    h.push_manifest(name, "small", OCI_MANIFEST, &small).await;
    let mut big = small.clone();
    big.splice(1..1, vec![b' '; 1024]);
    assert_error_status(
        &h.put_manifest(name, "big", OCI_MANIFEST, &big).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    );
}

#[tokio::test]
async fn put_by_digest_that_does_not_match_is_digest_invalid() {
    let h = Harness::new();
    let img = h.push_image("err/dig", "v1", &[b"l"]).await;
    let other = oci_manifest((OCI_CONFIG, &img.config_digest, img.config.len()), &[]);
    // The URL names the stored manifest, the body is another one: nothing may change.
    let r = h
        .put_manifest("err/dig", &img.digest, OCI_MANIFEST, &other)
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "DIGEST_INVALID");
    let wrong = sha256(b"not the manifest");
    let r = h
        .put_manifest("err/dig", &wrong, OCI_MANIFEST, &other)
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "DIGEST_INVALID");
    assert_error(
        &h.get(&format!("/v2/err/dig/manifests/{wrong}")).await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    );
    assert_error(
        &h.get(&format!("/v2/err/dig/manifests/{}", sha256(&other)))
            .await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    );
    let r = h
        .put_manifest("err/dig", "sha256:xyz", OCI_MANIFEST, &other)
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "DIGEST_INVALID");
    img.assert_intact(&h).await;
}

/// Every refused request against a repository that holds an image leaves the image as it was.
#[tokio::test]
async fn refused_requests_leave_stored_data_unchanged() {
    let h = Harness::new();
    let name = "err/keep";
    let img = h
        .push_image(name, "v1", &[b"layer one", &pseudo_random(300_000, 5)])
        .await;
    let layer = img.layer_digests[0].clone();
    let other = oci_manifest((OCI_CONFIG, &img.config_digest, img.config.len()), &[]);
    let missing = sha256(b"missing");

    // Blob uploads claiming an existing digest with other content.
    let r = h
        .send(req_body(
            Method::POST,
            &format!("/v2/{name}/blobs/uploads/?digest={layer}"),
            b"impostor".to_vec(),
        ))
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "DIGEST_INVALID");
    img.assert_intact(&h).await;

    let loc = h.start_upload(name).await;
    h.patch_stream(&loc, b"impostor content")
        .await
        .expect(StatusCode::ACCEPTED);
    assert_error(
        &h.finish(&loc, &layer).await,
        StatusCode::BAD_REQUEST,
        "DIGEST_INVALID",
    );
    img.assert_intact(&h).await;

    let loc = h.start_upload(name).await;
    h.patch_chunk(&loc, 0, b"abc")
        .await
        .expect(StatusCode::ACCEPTED);
    h.patch_chunk(&loc, 0, b"abc")
        .await
        .expect(StatusCode::RANGE_NOT_SATISFIABLE);
    let r = h
        .send(req_with(
            Method::PUT,
            &with_query(&loc, &format!("digest={}", img.config_digest)),
            &[("content-range", "9-11")],
            Some(b"xyz"),
        ))
        .await;
    r.expect(StatusCode::RANGE_NOT_SATISFIABLE);
    img.assert_intact(&h).await;

    // Manifests: retag to something invalid, wrong digest, missing blob, garbage, schema 1,
    // too large, invalid tag, mismatched media type.
    let refused = [
        h.put_manifest(name, "v1", OCI_MANIFEST, b"{garbage").await,
        h.put_manifest(name, &img.digest, OCI_MANIFEST, &other)
            .await,
        h.put_manifest(
            name,
            "v1",
            OCI_MANIFEST,
            &oci_manifest((OCI_CONFIG, &missing, 1), &[]),
        )
        .await,
        h.put_manifest(
            name,
            "v1",
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            &other,
        )
        .await,
        h.put_manifest(name, "v1", DOCKER_MANIFEST, &img.manifest)
            .await,
        h.put_manifest(name, "-v1", OCI_MANIFEST, &other).await,
        h.put_manifest(name, "v1", OCI_MANIFEST, &vec![b' '; 4 * 1024 * 1024 + 10])
            .await,
        h.put_manifest(
            name,
            "v1",
            OCI_INDEX,
            &index(OCI_INDEX, &[(OCI_MANIFEST, &missing, 5, "amd64")]),
        )
        .await,
    ];
    for r in &refused {
        assert!(r.status.is_client_error(), "{r:?}");
        img.assert_intact(&h).await;
    }

    // Deletes of things that are not there, or with bad digests.
    for url in [
        format!("/v2/{name}/manifests/{missing}"),
        format!("/v2/{name}/manifests/nope"),
        format!("/v2/{name}/manifests/sha256:xyz"),
        format!("/v2/{name}/blobs/{missing}"),
        format!("/v2/{name}/blobs/nocolon"),
    ] {
        assert!(h.delete(&url).await.status.is_client_error());
    }
    // Requests on invalid names that spell this one differently.
    for url in ["/v2/ERR/KEEP/manifests/v1", "/v2/err//keep/manifests/v1"] {
        assert_error(
            &h.delete(url).await,
            StatusCode::BAD_REQUEST,
            "NAME_INVALID",
        );
    }
    // Ranges and bad reads.
    h.get_range(&format!("/v2/{name}/blobs/{layer}"), "bytes=999999-")
        .await
        .expect(StatusCode::RANGE_NOT_SATISFIABLE);
    img.assert_intact(&h).await;

    let tags = h
        .get(&format!("/v2/{name}/tags/list"))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(tags["tags"], serde_json::json!(["v1"]));
    // And it all survives a restart unchanged.
    assert_image_served(&h.reopen(|_| {}), &img).await;
}
