//! Pull workflow: end-1 (base), end-2 (blobs, with ranges), end-3 (manifests, with `Accept`
//! negotiation), for every stored manifest type.

mod common;

use axum::http::{Method, StatusCode};
use common::*;
use rstest::rstest;

#[tokio::test]
async fn base_endpoint_answers_200_with_api_version() {
    let h = Harness::new();
    let r = h.get("/v2/").await;
    r.expect(StatusCode::OK);
    assert_eq!(r.header("docker-distribution-api-version"), "registry/2.0");
    h.get("/v2").await.expect(StatusCode::OK);
    h.head("/v2/").await.expect(StatusCode::OK);
}

#[tokio::test]
async fn blob_get_and_head_return_content_and_headers() {
    let h = Harness::new();
    let data = b"hello blob".to_vec();
    let digest = h.push_blob("pull/blob", &data).await;

    let r = h.get(&format!("/v2/pull/blob/blobs/{digest}")).await;
    r.expect(StatusCode::OK);
    assert_eq!(r.body.as_ref(), data.as_slice());
    assert_eq!(r.header("docker-content-digest"), digest);
    assert_eq!(r.header("content-length"), data.len().to_string());

    let r = h.head(&format!("/v2/pull/blob/blobs/{digest}")).await;
    r.expect(StatusCode::OK);
    assert!(r.body.is_empty());
    assert_eq!(r.header("docker-content-digest"), digest);
    assert_eq!(r.header("content-length"), data.len().to_string());
}

#[tokio::test]
async fn unknown_blob_is_blob_unknown() {
    let h = Harness::new();
    h.push_blob("pull/a", b"x").await;
    let missing = sha256(b"never pushed");
    assert_error(
        &h.get(&format!("/v2/pull/a/blobs/{missing}")).await,
        StatusCode::NOT_FOUND,
        "BLOB_UNKNOWN",
    );
    h.head(&format!("/v2/pull/a/blobs/{missing}"))
        .await
        .expect(StatusCode::NOT_FOUND);
    // A repository that does not exist at all.
    assert_error(
        &h.get(&format!("/v2/nowhere/blobs/{missing}")).await,
        StatusCode::NOT_FOUND,
        "BLOB_UNKNOWN",
    );
}

#[tokio::test]
async fn blob_of_another_repository_is_not_served() {
    let h = Harness::new();
    let digest = h.push_blob("pull/owner", b"private to owner").await;
    h.push_blob("pull/other", b"something else").await;
    assert_error(
        &h.get(&format!("/v2/pull/other/blobs/{digest}")).await,
        StatusCode::NOT_FOUND,
        "BLOB_UNKNOWN",
    );
    h.head(&format!("/v2/pull/other/blobs/{digest}"))
        .await
        .expect(StatusCode::NOT_FOUND);
    h.get(&format!("/v2/pull/owner/blobs/{digest}"))
        .await
        .expect(StatusCode::OK);
}

#[rstest]
#[case("bytes=0-9", 0, 9)]
#[case("bytes=10-19", 10, 19)]
#[case("bytes=90-", 90, 99)]
#[case("bytes=-5", 95, 99)]
#[case("bytes=0-0", 0, 0)]
#[case("bytes=50-5000", 50, 99)]
#[case("bytes=-1000", 0, 99)]
#[tokio::test]
async fn blob_range_is_206_with_content_range(
    #[case] range: &str,
    #[case] start: usize,
    #[case] end: usize,
) {
    let h = Harness::new();
    let data = pseudo_random(100, 1);
    let digest = h.push_blob("pull/range", &data).await;
    let r = h
        .get_range(&format!("/v2/pull/range/blobs/{digest}"), range)
        .await;
    r.expect(StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.body.as_ref(), &data[start..=end]);
    assert_eq!(
        r.header("content-range"),
        format!("bytes {start}-{end}/100")
    );
    assert_eq!(r.header("content-length"), (end - start + 1).to_string());
    assert_eq!(r.header("docker-content-digest"), digest);
}

#[rstest]
#[case("bytes=100-")]
#[case("bytes=100-200")]
#[case("bytes=5000-")]
#[case("bytes=-0")]
#[tokio::test]
async fn unsatisfiable_range_is_416(#[case] range: &str) {
    let h = Harness::new();
    let data = pseudo_random(100, 2);
    let digest = h.push_blob("pull/range", &data).await;
    let r = h
        .get_range(&format!("/v2/pull/range/blobs/{digest}"), range)
        .await;
    r.expect(StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(r.header("content-range"), "bytes */100");
}

#[tokio::test]
async fn large_blob_streams_whole_and_in_ranges() {
    let h = Harness::new();
    let data = pseudo_random(3 * 1024 * 1024 + 17, 3);
    let loc = h.start_upload("pull/large").await;
    // Three streamed PATCHes of about 1 MiB, then the closing PUT.
    let mut loc = loc;
    for chunk in data.chunks(1024 * 1024 + 1) {
        let r = h.patch_stream(&loc, chunk).await;
        r.expect(StatusCode::ACCEPTED);
        loc = r.header("location").to_owned();
    }
    let digest = sha256(&data);
    h.finish(&loc, &digest).await.expect(StatusCode::CREATED);

    let url = format!("/v2/pull/large/blobs/{digest}");
    let r = h.get(&url).await;
    r.expect(StatusCode::OK);
    assert_eq!(r.header("content-length"), data.len().to_string());
    assert_eq!(r.body.len(), data.len());
    assert!(
        r.body.as_ref() == data.as_slice(),
        "large blob content differs"
    );

    let r = h.head(&url).await;
    r.expect(StatusCode::OK);
    assert_eq!(r.header("content-length"), data.len().to_string());
    assert!(r.body.is_empty());

    // A range crossing several internal chunk boundaries, in the middle of the blob.
    let (a, b) = (1_000_003usize, 2_600_000usize);
    let r = h.get_range(&url, &format!("bytes={a}-{b}")).await;
    r.expect(StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        r.header("content-range"),
        format!("bytes {a}-{b}/{}", data.len())
    );
    assert_eq!(r.header("content-length"), (b - a + 1).to_string());
    assert!(r.body.as_ref() == &data[a..=b], "middle range differs");

    let r = h.get_range(&url, "bytes=-10").await;
    r.expect(StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.body.as_ref(), &data[data.len() - 10..]);

    let r = h.get_range(&url, &format!("bytes={}-", data.len())).await;
    r.expect(StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(r.header("content-range"), format!("bytes */{}", data.len()));
}

#[rstest]
#[case("sha256:xyz")]
#[case("nocolon")]
#[case("sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855")]
#[case("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85")]
#[case("md5:d41d8cd98f00b204e9800998ecf8427e")]
#[case("sha256:")]
#[tokio::test]
async fn malformed_blob_digest_is_400_digest_invalid(#[case] digest: &str) {
    let h = Harness::new();
    h.push_blob("pull/bad", b"content").await;
    for method in [Method::GET, Method::DELETE] {
        let r = h
            .send(req(method, &format!("/v2/pull/bad/blobs/{digest}")))
            .await;
        assert_error(&r, StatusCode::BAD_REQUEST, "DIGEST_INVALID");
    }
    // HEAD answers carry no body, so only the status shows.
    h.head(&format!("/v2/pull/bad/blobs/{digest}"))
        .await
        .expect(StatusCode::BAD_REQUEST);
    // On manifest reads a reference that cannot exist (a malformed digest, or a valid tag that
    // is not there) is simply unknown.
    h.head(&format!("/v2/pull/bad/manifests/{digest}"))
        .await
        .expect(StatusCode::NOT_FOUND);
    let r = h.get(&format!("/v2/pull/bad/manifests/{digest}")).await;
    assert_error(&r, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN");
}

#[tokio::test]
async fn empty_blob_is_served_with_zero_length() {
    let h = Harness::new();
    let digest = h.push_blob("pull/empty", b"").await;
    assert_eq!(digest, EMPTY_SHA256);
    let r = h.get(&format!("/v2/pull/empty/blobs/{digest}")).await;
    r.expect(StatusCode::OK);
    assert!(r.body.is_empty());
    assert_eq!(r.header("content-length"), "0");
    assert_eq!(r.header("docker-content-digest"), EMPTY_SHA256);
    // No byte range is satisfiable on an empty blob.
    let r = h
        .get_range(&format!("/v2/pull/empty/blobs/{digest}"), "bytes=0-")
        .await;
    r.expect(StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(r.header("content-range"), "bytes */0");
}

#[tokio::test]
async fn manifest_get_by_tag_and_digest_is_byte_exact() {
    let h = Harness::new();
    let img = h
        .push_image("pull/img", "v1", &[b"layer one", b"layer two"])
        .await;
    let expected_digest = sha256(&img.manifest);
    assert_eq!(img.digest, expected_digest);
    for reference in ["v1", img.digest.as_str()] {
        let url = format!("/v2/pull/img/manifests/{reference}");
        let r = h.get(&url).await;
        r.expect(StatusCode::OK);
        assert_eq!(r.body.as_ref(), img.manifest.as_slice());
        assert_eq!(r.header("content-type"), OCI_MANIFEST);
        assert_eq!(r.header("docker-content-digest"), expected_digest);
        assert_eq!(r.header("content-length"), img.manifest.len().to_string());

        let r = h.head(&url).await;
        r.expect(StatusCode::OK);
        assert!(r.body.is_empty());
        assert_eq!(r.header("content-type"), OCI_MANIFEST);
        assert_eq!(r.header("docker-content-digest"), expected_digest);
        assert_eq!(r.header("content-length"), img.manifest.len().to_string());
    }
}

#[tokio::test]
async fn unknown_manifest_is_manifest_unknown() {
    let h = Harness::new();
    let img = h.push_image("pull/img", "v1", &[b"l"]).await;
    assert_error(
        &h.get("/v2/pull/img/manifests/nope").await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    );
    h.head("/v2/pull/img/manifests/nope")
        .await
        .expect(StatusCode::NOT_FOUND);
    let missing = sha256(b"no such manifest");
    assert_error(
        &h.get(&format!("/v2/pull/img/manifests/{missing}")).await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    );
    assert_error(
        &h.get("/v2/pull/none/manifests/v1").await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    );
    // A manifest of another repository, and a blob (not a manifest) of this one.
    assert_error(
        &h.get(&format!("/v2/pull/other/manifests/{}", img.digest))
            .await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    );
    let layer = &img.layer_digests[0];
    assert_error(
        &h.get(&format!("/v2/pull/img/manifests/{layer}")).await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    );
}

/// Pushes one manifest of each of the four types into `name`; returns (media type, bytes, digest).
async fn push_all_four(h: &Harness, name: &str) -> Vec<(&'static str, Vec<u8>, String)> {
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let layer = b"a docker layer";
    let cd = h.push_blob(name, config).await;
    let ld = h.push_blob(name, layer).await;

    let oci = oci_manifest(
        (OCI_CONFIG, &cd, config.len()),
        &[(OCI_LAYER, &ld, layer.len())],
    );
    let oci_d = h.push_manifest(name, "oci", OCI_MANIFEST, &oci).await;

    let docker = format!(
        "{{\"schemaVersion\":2,\"mediaType\":\"{DOCKER_MANIFEST}\",\n\"config\":{{\"mediaType\":\"{DOCKER_CONFIG}\",\"size\":{},\"digest\":\"{cd}\"}},\n\"layers\":[{{\"mediaType\":\"{DOCKER_LAYER}\",\"size\":{},\"digest\":\"{ld}\"}}]}}",
        config.len(),
        layer.len()
    )
    .into_bytes();
    let docker_d = h
        .push_manifest(name, "docker", DOCKER_MANIFEST, &docker)
        .await;

    let oci_index = index(OCI_INDEX, &[(OCI_MANIFEST, &oci_d, oci.len(), "amd64")]);
    let oci_index_d = h
        .push_manifest(name, "ociindex", OCI_INDEX, &oci_index)
        .await;

    let list = index(
        DOCKER_LIST,
        &[(DOCKER_MANIFEST, &docker_d, docker.len(), "amd64")],
    );
    let list_d = h
        .push_manifest(name, "dockerlist", DOCKER_LIST, &list)
        .await;

    vec![
        (OCI_MANIFEST, oci, oci_d),
        (DOCKER_MANIFEST, docker, docker_d),
        (OCI_INDEX, oci_index, oci_index_d),
        (DOCKER_LIST, list, list_d),
    ]
}

#[tokio::test]
async fn each_manifest_type_is_served_with_its_own_media_type() {
    let h = Harness::new();
    let pushed = push_all_four(&h, "pull/types").await;
    let tags = ["oci", "docker", "ociindex", "dockerlist"];
    for ((media_type, bytes, digest), tag) in pushed.iter().zip(tags) {
        for reference in [tag, digest.as_str()] {
            let r = h
                .get(&format!("/v2/pull/types/manifests/{reference}"))
                .await;
            r.expect(StatusCode::OK);
            assert_eq!(r.header("content-type"), *media_type, "{reference}");
            assert_eq!(r.header("docker-content-digest"), digest);
            assert_eq!(r.body.as_ref(), bytes.as_slice());
        }
    }
}

#[tokio::test]
async fn accept_negotiation() {
    let h = Harness::new();
    let pushed = push_all_four(&h, "pull/accept").await;
    let (_, oci, oci_d) = &pushed[0];
    let (_, _, docker_d) = &pushed[1];
    let (_, oci_index, oci_index_d) = &pushed[2];

    // An index asked for by a client that only takes single OCI manifests: the linux/amd64 child.
    let r = h
        .get_accept("/v2/pull/accept/manifests/ociindex", &[OCI_MANIFEST])
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.header("content-type"), OCI_MANIFEST);
    assert_eq!(r.header("docker-content-digest"), oci_d);
    assert_eq!(r.body.as_ref(), oci.as_slice());

    // A client taking indexes gets the index itself (one Accept header per type, as Docker sends).
    let r = h
        .get_accept(
            "/v2/pull/accept/manifests/ociindex",
            &[DOCKER_MANIFEST, OCI_MANIFEST, OCI_INDEX],
        )
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.header("docker-content-digest"), oci_index_d);
    assert_eq!(r.body.as_ref(), oci_index.as_slice());
    let joined = format!("{OCI_MANIFEST}, {OCI_INDEX};q=0.9");
    let r = h
        .get_accept("/v2/pull/accept/manifests/ociindex", &[&joined])
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.header("docker-content-digest"), oci_index_d);

    // A single manifest the client does not take.
    let r = h
        .get_accept("/v2/pull/accept/manifests/oci", &[DOCKER_MANIFEST])
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN");
    let r = h
        .get_accept(
            &format!("/v2/pull/accept/manifests/{docker_d}"),
            &[OCI_MANIFEST],
        )
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN");

    // Wildcards take anything.
    for accept in ["*/*", "application/*"] {
        let r = h
            .get_accept("/v2/pull/accept/manifests/oci", &[accept])
            .await;
        r.expect(StatusCode::OK);
        assert_eq!(r.header("docker-content-digest"), oci_d);
        let r = h
            .get_accept("/v2/pull/accept/manifests/ociindex", &[accept])
            .await;
        r.expect(StatusCode::OK);
        assert_eq!(r.header("docker-content-digest"), oci_index_d);
    }

    // HEAD negotiates the same way.
    let r = h
        .send(req_with(
            Method::HEAD,
            "/v2/pull/accept/manifests/ociindex",
            &[("accept", OCI_MANIFEST)],
            None,
        ))
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.header("docker-content-digest"), oci_d);
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn docker_list_negotiates_to_its_docker_child() {
    let h = Harness::new();
    let pushed = push_all_four(&h, "pull/list").await;
    let (_, docker, docker_d) = &pushed[1];
    let r = h
        .get_accept("/v2/pull/list/manifests/dockerlist", &[DOCKER_MANIFEST])
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.header("content-type"), DOCKER_MANIFEST);
    assert_eq!(r.header("docker-content-digest"), docker_d);
    assert_eq!(r.body.as_ref(), docker.as_slice());
    // Its only child is a Docker manifest, which an OCI-only client does not take.
    let r = h
        .get_accept("/v2/pull/list/manifests/dockerlist", &[OCI_MANIFEST])
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN");
}

#[tokio::test]
async fn pull_after_restart_serves_the_same_content() {
    let h = Harness::new();
    let img = h
        .push_image("pull/restart", "v1", &[b"persisted layer"])
        .await;
    let reopened = h.reopen(|_| {});
    assert_image_served(&reopened, &img).await;
}
