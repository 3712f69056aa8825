//! Content discovery: end-8 (tags, paginated), `/v2/_catalog`, end-12 (referrers, filtered).

mod common;

use axum::http::{Method, StatusCode};
use common::*;
use serde_json::Value;

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().expect("string").to_owned())
        .collect()
}

/// Pushes one small manifest under each tag.
async fn tag_all(h: &Harness, name: &str, tags: &[&str]) -> Image {
    let img = h.push_image(name, tags[0], &[b"layer"]).await;
    for tag in &tags[1..] {
        h.push_manifest(name, tag, OCI_MANIFEST, &img.manifest)
            .await;
    }
    img
}

#[tokio::test]
async fn tags_are_listed_sorted() {
    let h = Harness::new();
    tag_all(&h, "disc/tags", &["latest", "b", "a", "1.0", "C", "_x"]).await;
    let r = h.get("/v2/disc/tags/tags/list").await;
    r.expect(StatusCode::OK);
    assert!(r.header("content-type").starts_with("application/json"));
    let v = r.json();
    assert_eq!(v["name"], "disc/tags");
    assert_eq!(strings(&v["tags"]), ["1.0", "C", "_x", "a", "b", "latest"]);
    assert!(r.header_opt("link").is_none());
}

#[tokio::test]
async fn tags_paginate_with_link_header() {
    let h = Harness::new();
    tag_all(&h, "disc/page", &["a", "b", "c", "d", "e"]).await;

    let r = h.get("/v2/disc/page/tags/list?n=2").await;
    r.expect(StatusCode::OK);
    assert_eq!(strings(&r.json()["tags"]), ["a", "b"]);
    assert_eq!(
        r.header("link"),
        r#"</v2/disc/page/tags/list?n=2&last=b>; rel="next""#
    );

    let r = h.get("/v2/disc/page/tags/list?n=2&last=b").await;
    r.expect(StatusCode::OK);
    assert_eq!(strings(&r.json()["tags"]), ["c", "d"]);
    assert_eq!(
        r.header("link"),
        r#"</v2/disc/page/tags/list?n=2&last=d>; rel="next""#
    );

    let r = h.get("/v2/disc/page/tags/list?n=2&last=d").await;
    r.expect(StatusCode::OK);
    assert_eq!(strings(&r.json()["tags"]), ["e"]);
    assert!(r.header_opt("link").is_none());

    // Exactly the number left: no next page.
    let r = h.get("/v2/disc/page/tags/list?n=5").await;
    assert_eq!(strings(&r.expect(StatusCode::OK).json()["tags"]).len(), 5);
    assert!(r.header_opt("link").is_none());

    // `last` alone, and `last` between two tags.
    let r = h.get("/v2/disc/page/tags/list?last=c").await;
    assert_eq!(
        strings(&r.expect(StatusCode::OK).json()["tags"]),
        ["d", "e"]
    );
    let r = h.get("/v2/disc/page/tags/list?n=1&last=bb").await;
    assert_eq!(strings(&r.expect(StatusCode::OK).json()["tags"]), ["c"]);
    let r = h.get("/v2/disc/page/tags/list?last=z").await;
    assert!(strings(&r.expect(StatusCode::OK).json()["tags"]).is_empty());
}

#[tokio::test]
async fn following_tag_links_visits_every_tag_once() {
    let h = Harness::new();
    let tags = ["t0", "t1", "t2", "t3", "t4", "t5", "t6"];
    tag_all(&h, "disc/follow", &tags).await;
    let mut url = "/v2/disc/follow/tags/list?n=3".to_owned();
    let mut seen = Vec::new();
    loop {
        let r = h.get(&url).await;
        r.expect(StatusCode::OK);
        seen.extend(strings(&r.json()["tags"]));
        match r.header_opt("link") {
            Some(link) => {
                url = link
                    .split('>')
                    .next()
                    .unwrap()
                    .trim_start_matches('<')
                    .to_owned();
                assert!(link.ends_with(r#"; rel="next""#), "{link}");
            }
            None => break,
        }
    }
    assert_eq!(seen, tags);
}

#[tokio::test]
async fn n_zero_is_an_empty_page_without_link() {
    let h = Harness::new();
    tag_all(&h, "disc/zero", &["a", "b"]).await;
    let r = h.get("/v2/disc/zero/tags/list?n=0").await;
    r.expect(StatusCode::OK);
    assert!(strings(&r.json()["tags"]).is_empty());
    assert!(r.header_opt("link").is_none());
}

#[tokio::test]
async fn bad_n_is_400() {
    let h = Harness::new();
    tag_all(&h, "disc/badn", &["a"]).await;
    for n in ["abc", "-1", "1.5"] {
        assert_error_status(
            &h.get(&format!("/v2/disc/badn/tags/list?n={n}")).await,
            StatusCode::BAD_REQUEST,
        );
        assert_error_status(
            &h.get(&format!("/v2/_catalog?n={n}")).await,
            StatusCode::BAD_REQUEST,
        );
    }
}

#[tokio::test]
async fn tags_of_unknown_repository_is_name_unknown() {
    let h = Harness::new();
    assert_error(
        &h.get("/v2/disc/nothing/tags/list").await,
        StatusCode::NOT_FOUND,
        "NAME_UNKNOWN",
    );
}

#[tokio::test]
async fn tags_of_a_name_prefix_is_name_unknown() {
    // `a/b` was never pushed to; only `a/b/c/d` was.
    let h = Harness::new();
    tag_all(&h, "a/b/c/d", &["v1"]).await;
    let r = h.get("/v2/a/b/c/d/tags/list").await;
    assert_eq!(strings(&r.expect(StatusCode::OK).json()["tags"]), ["v1"]);
    assert_error(
        &h.get("/v2/a/b/tags/list").await,
        StatusCode::NOT_FOUND,
        "NAME_UNKNOWN",
    );
}

#[tokio::test]
async fn catalog_lists_multi_component_names_and_paginates() {
    let h = Harness::new();
    let names = [
        "a/b/c/d",
        "alpine",
        "library/ubuntu",
        "x/blobs",
        "x/manifests",
        "zeta",
    ];
    for name in names.iter().rev() {
        h.push_image(name, "v1", &[b"l"]).await;
    }
    let r = h.get("/v2/_catalog").await;
    r.expect(StatusCode::OK);
    assert_eq!(strings(&r.json()["repositories"]), names);
    assert!(r.header_opt("link").is_none());

    // Pages of two, following Link.
    let mut url = "/v2/_catalog?n=2".to_owned();
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let r = h.get(&url).await;
        r.expect(StatusCode::OK);
        let page = strings(&r.json()["repositories"]);
        assert!(page.len() <= 2);
        seen.extend(page);
        pages += 1;
        match r.header_opt("link") {
            Some(link) => {
                assert!(link.starts_with("</v2/_catalog?n=2&last="), "{link}");
                assert!(link.ends_with(r#">; rel="next""#), "{link}");
                url = link
                    .split('>')
                    .next()
                    .unwrap()
                    .trim_start_matches('<')
                    .to_owned();
            }
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(seen, names);

    let r = h.get("/v2/_catalog?n=0").await;
    assert!(strings(&r.expect(StatusCode::OK).json()["repositories"]).is_empty());
    assert!(r.header_opt("link").is_none());
    let r = h
        .get(&format!("/v2/_catalog?n=1&last={}", enc("a/b/c/d")))
        .await;
    assert_eq!(
        strings(&r.expect(StatusCode::OK).json()["repositories"]),
        ["alpine"]
    );
}

#[tokio::test]
async fn empty_catalog() {
    let h = Harness::new();
    let r = h.get("/v2/_catalog").await;
    assert!(strings(&r.expect(StatusCode::OK).json()["repositories"]).is_empty());
}

// ---- referrers (end-12) ----

const ARTIFACT_TYPE: &str = "application/vnd.example.sbom.v1+json";
const CONFIG_ARTIFACT_TYPE: &str = "application/vnd.example.signature.config.v1+json";

/// An artifact manifest referring to `subject`, with the empty config, one layer and annotations.
fn artifact(
    subject: (&str, usize),
    layer: (&str, usize),
    artifact_type: Option<&str>,
    note: &str,
) -> Vec<u8> {
    let at = artifact_type
        .map(|t| format!("\"artifactType\":\"{t}\","))
        .unwrap_or_default();
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}",{at}"config":{{"mediaType":"{OCI_EMPTY}","digest":"{EMPTY_JSON_SHA256}","size":2}},"layers":[{{"mediaType":"application/octet-stream","digest":"{}","size":{}}}],"subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":{}}},"annotations":{{"org.example.note":"{note}"}}}}"#,
        layer.0, layer.1, subject.0, subject.1
    )
    .into_bytes()
}

fn find<'a>(manifests: &'a [Value], digest: &str) -> &'a Value {
    manifests
        .iter()
        .find(|m| m["digest"] == digest)
        .unwrap_or_else(|| panic!("{digest} not among {manifests:?}"))
}

#[tokio::test]
async fn referrers_are_listed_and_filtered() {
    let h = Harness::new();
    let name = "disc/ref";
    let img = h.push_image(name, "v1", &[b"base layer"]).await;
    assert_eq!(h.push_blob(name, b"{}").await, EMPTY_JSON_SHA256);
    let sbom_layer = b"sbom contents";
    let sbom_layer_d = h.push_blob(name, sbom_layer).await;

    // A referrer with an artifactType.
    let sbom = artifact(
        (&img.digest, img.manifest.len()),
        (&sbom_layer_d, sbom_layer.len()),
        Some(ARTIFACT_TYPE),
        "sbom",
    );
    let sbom_d = sha256(&sbom);
    let r = h.put_manifest(name, &sbom_d, OCI_MANIFEST, &sbom).await;
    r.expect(StatusCode::CREATED);
    assert_eq!(r.header("oci-subject"), img.digest);

    // A referrer without one: its config media type stands in.
    let sig_config = br#"{"kind":"signature"}"#.to_vec();
    let sig_config_d = h.push_blob(name, &sig_config).await;
    let sig = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{CONFIG_ARTIFACT_TYPE}","digest":"{sig_config_d}","size":{}}},"layers":[],"subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":{}}}}}"#,
        sig_config.len(),
        img.digest,
        img.manifest.len()
    )
    .into_bytes();
    let sig_d = sha256(&sig);
    let r = h.put_manifest(name, "sig", OCI_MANIFEST, &sig).await;
    r.expect(StatusCode::CREATED);
    assert_eq!(r.header("oci-subject"), img.digest);

    let r = h.get(&format!("/v2/{name}/referrers/{}", img.digest)).await;
    r.expect(StatusCode::OK);
    assert_eq!(r.header("content-type"), OCI_INDEX);
    assert!(r.header_opt("oci-filters-applied").is_none());
    let v = r.json();
    assert_eq!(v["schemaVersion"], 2);
    assert_eq!(v["mediaType"], OCI_INDEX);
    let manifests = v["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 2, "{v}");
    let d = find(manifests, &sbom_d);
    assert_eq!(d["mediaType"], OCI_MANIFEST);
    assert_eq!(d["size"], sbom.len());
    assert_eq!(d["artifactType"], ARTIFACT_TYPE);
    assert_eq!(d["annotations"]["org.example.note"], "sbom");
    let d = find(manifests, &sig_d);
    assert_eq!(d["size"], sig.len());
    assert_eq!(d["artifactType"], CONFIG_ARTIFACT_TYPE);

    // Filtered (the type has a `+`, so it must be percent-encoded).
    let r = h
        .get(&format!(
            "/v2/{name}/referrers/{}?artifactType={}",
            img.digest,
            enc(ARTIFACT_TYPE)
        ))
        .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.header("oci-filters-applied"), "artifactType");
    let v = r.json();
    let manifests = v["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1, "{v}");
    assert_eq!(manifests[0]["digest"], sbom_d.as_str());

    let r = h
        .get(&format!(
            "/v2/{name}/referrers/{}?artifactType={}",
            img.digest,
            enc(CONFIG_ARTIFACT_TYPE)
        ))
        .await;
    let v = r.expect(StatusCode::OK).json();
    assert_eq!(v["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(v["manifests"][0]["digest"], sig_d.as_str());

    let r = h
        .get(&format!(
            "/v2/{name}/referrers/{}?artifactType=application/none",
            img.digest
        ))
        .await;
    assert_eq!(
        r.expect(StatusCode::OK).header("oci-filters-applied"),
        "artifactType"
    );
    assert!(r.json()["manifests"].as_array().unwrap().is_empty());

    // Deleting a referrer takes it out of the list.
    h.delete(&format!("/v2/{name}/manifests/{sbom_d}"))
        .await
        .expect(StatusCode::ACCEPTED);
    let v = h
        .get(&format!("/v2/{name}/referrers/{}", img.digest))
        .await
        .expect(StatusCode::OK)
        .json();
    let manifests = v["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1, "{v}");
    assert_eq!(manifests[0]["digest"], sig_d.as_str());

    // The artifact pushes did not disturb the image.
    img.assert_intact(&h).await;
}

#[tokio::test]
async fn referrer_subject_need_not_exist() {
    let h = Harness::new();
    let name = "disc/dangling";
    h.push_blob(name, b"{}").await;
    let layer_d = h.push_blob(name, b"payload").await;
    let subject = sha256(b"a manifest pushed later, or never");
    let body = artifact((&subject, 123), (&layer_d, 7), Some(ARTIFACT_TYPE), "early");
    let r = h.put_manifest(name, "early", OCI_MANIFEST, &body).await;
    r.expect(StatusCode::CREATED);
    assert_eq!(r.header("oci-subject"), subject);
    let v = h
        .get(&format!("/v2/{name}/referrers/{subject}"))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(v["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(v["manifests"][0]["digest"], sha256(&body).as_str());
}

#[tokio::test]
async fn index_with_subject_is_a_referrer() {
    let h = Harness::new();
    let name = "disc/idxref";
    let img = h.push_image(name, "v1", &[b"l"]).await;
    let body = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","artifactType":"{ARTIFACT_TYPE}","manifests":[],"subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":{}}},"annotations":{{"k":"v"}}}}"#,
        img.digest,
        img.manifest.len()
    )
    .into_bytes();
    let r = h.put_manifest(name, &sha256(&body), OCI_INDEX, &body).await;
    r.expect(StatusCode::CREATED);
    assert_eq!(r.header("oci-subject"), img.digest);
    let v = h
        .get(&format!("/v2/{name}/referrers/{}", img.digest))
        .await
        .expect(StatusCode::OK)
        .json();
    let d = &v["manifests"][0];
    assert_eq!(d["mediaType"], OCI_INDEX);
    assert_eq!(d["artifactType"], ARTIFACT_TYPE);
    assert_eq!(d["annotations"]["k"], "v");
}

#[tokio::test]
async fn referrers_are_per_repository() {
    let h = Harness::new();
    let img = h.push_image("disc/r1", "v1", &[b"l"]).await;
    h.push_blob("disc/r1", b"{}").await;
    let ld = h.push_blob("disc/r1", b"x").await;
    let body = artifact(
        (&img.digest, img.manifest.len()),
        (&ld, 1),
        Some(ARTIFACT_TYPE),
        "n",
    );
    h.push_manifest("disc/r1", "art", OCI_MANIFEST, &body).await;
    let v = h
        .get(&format!("/v2/disc/r2/referrers/{}", img.digest))
        .await
        .expect(StatusCode::OK)
        .json();
    assert!(v["manifests"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn referrers_of_unknown_subject_is_an_empty_index() {
    let h = Harness::new();
    h.push_image("disc/none", "v1", &[b"l"]).await;
    let unknown = sha256(b"nothing refers to this");
    let r = h.get(&format!("/v2/disc/none/referrers/{unknown}")).await;
    r.expect(StatusCode::OK);
    assert_eq!(r.header("content-type"), OCI_INDEX);
    let v = r.json();
    assert_eq!(v["schemaVersion"], 2);
    assert_eq!(v["mediaType"], OCI_INDEX);
    assert!(v["manifests"]
        .as_array()
        .expect("manifests is an array")
        .is_empty());
}

#[tokio::test]
async fn referrers_with_bad_digest_is_400() {
    let h = Harness::new();
    for digest in [
        "sha256:xyz",
        "nocolon",
        "md5:d41d8cd98f00b204e9800998ecf8427e",
    ] {
        let r = h.get(&format!("/v2/disc/x/referrers/{digest}")).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "DIGEST_INVALID");
    }
}

#[tokio::test]
async fn referrers_endpoint_accepts_only_get() {
    let h = Harness::new();
    let d = sha256(b"x");
    for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
        let r = h
            .send(req(method, &format!("/v2/disc/x/referrers/{d}")))
            .await;
        assert_error_status(&r, StatusCode::METHOD_NOT_ALLOWED);
    }
}

#[tokio::test]
async fn listings_answer_head_without_a_body() {
    let h = Harness::new();
    tag_all(&h, "disc/head", &["a"]).await;
    let subject = format!("sha256:{}", "ab".repeat(32));
    for uri in [
        "/v2/disc/head/tags/list".to_owned(),
        "/v2/_catalog".to_owned(),
        format!("/v2/disc/head/referrers/{subject}"),
    ] {
        let r = h.head(&uri).await;
        r.expect(StatusCode::OK);
        assert!(
            r.header("content-type").starts_with("application/"),
            "{uri}"
        );
        assert!(r.body.is_empty(), "HEAD {uri} sent a body");
    }
    let location = h.start_upload("disc/head").await;
    let r = h.head(&location).await;
    r.expect(StatusCode::NO_CONTENT);
    assert_eq!(r.header("range"), "0-0");
}
