//! Push workflow, manifests: end-7a (PUT by tag or digest) and end-7b (`?tag=`), for every
//! manifest type. Refused pushes are in `api_errors.rs`.

mod common;

use axum::http::{Method, StatusCode};
use common::*;

#[tokio::test]
async fn manifest_put_by_tag_is_201_with_headers() {
    let h = Harness::new();
    let img = h.push_image("push/img", "latest", &[b"a layer"]).await;
    img.assert_intact(&h).await;
    // No subject, no OCI-Subject.
    let r = h
        .put_manifest("push/img", "again", OCI_MANIFEST, &img.manifest)
        .await;
    r.expect(StatusCode::CREATED);
    assert!(r.header_opt("oci-subject").is_none());
}

#[tokio::test]
async fn manifest_put_by_digest_with_tags() {
    let h = Harness::new();
    let img = h.push_image("push/tags", "first", &[b"l"]).await;
    let other = oci_manifest((OCI_CONFIG, &img.config_digest, img.config.len()), &[]);
    let digest = sha256(&other);
    let r = h
        .send(req_with(
            Method::PUT,
            &format!("/v2/push/tags/manifests/{digest}?tag=a&tag=b"),
            &[("content-type", OCI_MANIFEST)],
            Some(&other),
        ))
        .await;
    r.expect(StatusCode::CREATED);
    assert_eq!(r.header("docker-content-digest"), digest);
    assert_eq!(
        r.header("location"),
        format!("/v2/push/tags/manifests/{digest}")
    );
    let tags: Vec<String> = r
        .header_all("oci-tag")
        .iter()
        .flat_map(|v| {
            v.split(',')
                .map(|t| t.trim().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        tags.contains(&"a".to_owned()) && tags.contains(&"b".to_owned()),
        "{tags:?}"
    );
    for tag in ["a", "b"] {
        let got = h.get(&format!("/v2/push/tags/manifests/{tag}")).await;
        got.expect(StatusCode::OK);
        assert_eq!(got.body.as_ref(), other.as_slice());
        assert_eq!(got.header("docker-content-digest"), digest);
    }
    img.assert_intact(&h).await;
}

#[tokio::test]
async fn manifest_put_by_sha512_digest() {
    let h = Harness::new();
    let img = h.push_image("push/m512", "v", &[]).await;
    let body = oci_manifest((OCI_CONFIG, &img.config_digest, img.config.len()), &[]);
    let digest = sha512(&body);
    let r = h
        .put_manifest("push/m512", &digest, OCI_MANIFEST, &body)
        .await;
    r.expect(StatusCode::CREATED);
    assert_eq!(r.header("docker-content-digest"), digest);
    let got = h.get(&format!("/v2/push/m512/manifests/{digest}")).await;
    got.expect(StatusCode::OK);
    assert_eq!(got.body.as_ref(), body.as_slice());
}

#[tokio::test]
async fn manifest_retag_moves_the_tag() {
    let h = Harness::new();
    let v1 = h.push_image("push/retag", "latest", &[b"one"]).await;
    // Warm any cache, then move the tag.
    h.get("/v2/push/retag/manifests/latest")
        .await
        .expect(StatusCode::OK);
    let v2 = h.push_image("push/retag", "latest", &[b"two"]).await;
    let got = h.get("/v2/push/retag/manifests/latest").await;
    got.expect(StatusCode::OK);
    assert_eq!(got.header("docker-content-digest"), v2.digest);
    assert_eq!(got.body.as_ref(), v2.manifest.as_slice());
    // The old manifest stays reachable by digest.
    let old = h
        .get(&format!("/v2/push/retag/manifests/{}", v1.digest))
        .await;
    assert_eq!(
        old.expect(StatusCode::OK).body.as_ref(),
        v1.manifest.as_slice()
    );
}

#[tokio::test]
async fn manifest_with_a_urls_layer_needs_no_blob() {
    // Non-distributable layers are fetched from their `urls`, not from the registry.
    let h = Harness::new();
    let config = br#"{"os":"windows"}"#;
    let cd = h.push_blob("push/foreign", config).await;
    let foreign = sha256(b"foreign layer");
    let body = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{OCI_CONFIG}","digest":"{cd}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip","digest":"{foreign}","size":13,"urls":["https://example.com/layer"]}}]}}"#,
        config.len()
    );
    h.push_manifest("push/foreign", "v1", OCI_MANIFEST, body.as_bytes())
        .await;
}

#[tokio::test]
async fn manifest_media_type_comes_from_content_type_or_body() {
    let h = Harness::new();
    let name = "push/mt";
    let cd = h.push_blob(name, b"{}").await;
    // Content-Type with parameters: stored and served as the bare type.
    let with_mt = oci_manifest((OCI_CONFIG, &cd, 2), &[]);
    let ct = format!("{OCI_MANIFEST}; charset=utf-8");
    h.push_manifest(name, "params", &ct, &with_mt).await;
    let r = h.get(&format!("/v2/{name}/manifests/params")).await;
    assert_eq!(
        r.expect(StatusCode::OK).header("content-type"),
        OCI_MANIFEST
    );
    // No mediaType in the body: the Content-Type decides.
    let bare = format!(
        r#"{{"schemaVersion":2,"config":{{"mediaType":"{DOCKER_CONFIG}","digest":"{cd}","size":2}},"layers":[]}}"#
    );
    h.push_manifest(name, "docker", DOCKER_MANIFEST, bare.as_bytes())
        .await;
    let r = h.get(&format!("/v2/{name}/manifests/docker")).await;
    assert_eq!(
        r.expect(StatusCode::OK).header("content-type"),
        DOCKER_MANIFEST
    );
    // Neither: the shape decides (an index has `manifests`).
    let idx = br#"{"schemaVersion":2,"manifests":[]}"#;
    let r = h
        .send(req_with(
            Method::PUT,
            &format!("/v2/{name}/manifests/idx"),
            &[],
            Some(idx),
        ))
        .await;
    r.expect(StatusCode::CREATED);
    let r = h.get(&format!("/v2/{name}/manifests/idx")).await;
    assert_eq!(r.expect(StatusCode::OK).header("content-type"), OCI_INDEX);
    assert_eq!(r.body.as_ref(), idx);
}
