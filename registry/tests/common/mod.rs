//! Shared helpers of the in-process HTTP conformance tests: one registry per test on a temporary
//! data directory, request builders, and pushes of blobs, manifests and whole images.
//!
//! Every response goes through [`Harness::send`], which also checks the
//! `Docker-Distribution-API-Version` header that end-1 requires on every answer.

#![allow(dead_code)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use berth_registry::{Registry, RegistryConfig};
use bytes::Bytes;
use http_body_util::BodyExt;
use sha2::{Digest as _, Sha256, Sha512};
use tempfile::TempDir;
use tower::ServiceExt;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Digest of the empty blob.
pub const EMPTY_SHA256: &str =
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// Digest of `{}`, the OCI empty descriptor's content.
pub const EMPTY_JSON_SHA256: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

/// `sha256:<hex>` of `data`.
pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// `sha512:<hex>` of `data`.
pub fn sha512(data: &[u8]) -> String {
    format!("sha512:{}", hex::encode(Sha512::digest(data)))
}

/// Deterministic pseudo-random bytes (xorshift), so large blobs are not all one value.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A collected response.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    /// The header's value as text; panics when it is missing.
    #[track_caller]
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("missing header `{name}` in {self:?}"))
            .to_str()
            .expect("ascii header")
    }

    /// The header's value as text, if present.
    pub fn header_opt(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Every value of a repeated header.
    pub fn header_all(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().expect("ascii header").to_owned())
            .collect()
    }

    /// The body parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.text()))
    }

    /// The body as (lossy) text, for messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts the status, with the body in the message.
    #[track_caller]
    pub fn expect(&self, status: StatusCode) -> &Self {
        assert_eq!(
            self.status,
            status,
            "unexpected status; headers {:?}; body {}",
            self.headers,
            self.text()
        );
        self
    }

    /// The error codes of a `{"errors":[{"code":…}]}` envelope.
    #[track_caller]
    pub fn error_codes(&self) -> Vec<String> {
        let v = self.json();
        let errors = v["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("no `errors` array in {}", self.text()));
        assert!(!errors.is_empty(), "empty `errors` array");
        errors
            .iter()
            .map(|e| e["code"].as_str().expect("`code` is a string").to_owned())
            .collect()
    }

    /// The first error message of the envelope.
    #[track_caller]
    pub fn error_message(&self) -> String {
        self.json()["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// Asserts an error response: its status and that its envelope carries `code`.
#[track_caller]
pub fn assert_error(resp: &Resp, status: StatusCode, code: &str) {
    resp.expect(status);
    let codes = resp.error_codes();
    assert!(
        codes.iter().any(|c| c == code),
        "expected code {code}, got {codes:?}: {}",
        resp.text()
    );
}

/// Asserts an error status with some well-formed error envelope (code not pinned).
#[track_caller]
pub fn assert_error_status(resp: &Resp, status: StatusCode) {
    resp.expect(status);
    resp.error_codes();
}

/// A request with no body.
pub fn req(method: Method, uri: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .expect("valid request")
}

/// A request with a body and its `Content-Length`, as an HTTP/1.1 client sends it.
pub fn req_body(method: Method, uri: &str, body: impl Into<Bytes>) -> Request<Body> {
    let body = body.into();
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_LENGTH, body.len())
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .body(Body::from(body))
        .expect("valid request")
}

/// A request with extra headers and an optional body (`Content-Length` set for a body).
pub fn req_with(
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    match body {
        Some(data) => b
            .header(header::CONTENT_LENGTH, data.len())
            .body(Body::from(data.to_vec()))
            .expect("valid request"),
        None => b.body(Body::empty()).expect("valid request"),
    }
}

/// Appends a query parameter to a URL that may already have a query.
pub fn with_query(url: &str, param: &str) -> String {
    if url.contains('?') {
        format!("{url}&{param}")
    } else {
        format!("{url}?{param}")
    }
}

/// Percent-encodes a query value.
pub fn enc(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// One registry on its own temporary data directory.
pub struct Harness {
    pub tmp: TempDir,
    pub registry: Arc<Registry>,
    pub router: Router,
}

impl Harness {
    /// A registry with the default configuration.
    pub fn new() -> Self {
        Self::with(|_| {})
    }

    /// A registry whose configuration `adjust` tweaks.
    pub fn with(adjust: impl FnOnce(&mut RegistryConfig)) -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        let (registry, router) = build(&tmp, adjust);
        Self {
            tmp,
            registry,
            router,
        }
    }

    /// A second registry process on the same data directory (a restart, or another mode).
    pub fn reopen(&self, adjust: impl FnOnce(&mut RegistryConfig)) -> Router {
        build(&self.tmp, adjust).1
    }

    /// Sends a request; checks the API-version header every response must carry.
    pub async fn send(&self, request: Request<Body>) -> Resp {
        send_to(&self.router, request).await
    }

    pub async fn get(&self, uri: &str) -> Resp {
        self.send(req(Method::GET, uri)).await
    }

    pub async fn head(&self, uri: &str) -> Resp {
        self.send(req(Method::HEAD, uri)).await
    }

    pub async fn delete(&self, uri: &str) -> Resp {
        self.send(req(Method::DELETE, uri)).await
    }

    /// GET with a `Range` header.
    pub async fn get_range(&self, uri: &str, range: &str) -> Resp {
        self.send(req_with(Method::GET, uri, &[("range", range)], None))
            .await
    }

    /// GET with one `Accept` header per entry.
    pub async fn get_accept(&self, uri: &str, accept: &[&str]) -> Resp {
        let headers: Vec<(&str, &str)> = accept.iter().map(|a| ("accept", *a)).collect();
        self.send(req_with(Method::GET, uri, &headers, None)).await
    }

    /// Monolithic single-POST upload (end-4b); asserts 201 and returns the digest.
    pub async fn push_blob(&self, name: &str, data: &[u8]) -> String {
        let digest = sha256(data);
        let r = self
            .send(req_body(
                Method::POST,
                &format!("/v2/{name}/blobs/uploads/?digest={digest}"),
                data.to_vec(),
            ))
            .await;
        r.expect(StatusCode::CREATED);
        assert_eq!(r.header("docker-content-digest"), digest);
        digest
    }

    /// Starts an upload session (end-4a); asserts 202 and returns its `Location`.
    pub async fn start_upload(&self, name: &str) -> String {
        let r = self
            .send(req(Method::POST, &format!("/v2/{name}/blobs/uploads/")))
            .await;
        r.expect(StatusCode::ACCEPTED);
        r.header("location").to_owned()
    }

    /// PATCH of one chunk with `Content-Range: start-end`.
    pub async fn patch_chunk(&self, location: &str, start: u64, data: &[u8]) -> Resp {
        let end = start + data.len() as u64 - 1;
        let range = format!("{start}-{end}");
        self.send(req_with(
            Method::PATCH,
            location,
            &[
                ("content-range", range.as_str()),
                ("content-type", "application/octet-stream"),
            ],
            Some(data),
        ))
        .await
    }

    /// PATCH of a streamed chunk without `Content-Range`, as Docker sends it.
    pub async fn patch_stream(&self, location: &str, data: &[u8]) -> Resp {
        self.send(req_with(
            Method::PATCH,
            location,
            &[("content-type", "application/octet-stream")],
            Some(data),
        ))
        .await
    }

    /// The closing PUT `?digest=` with no body.
    pub async fn finish(&self, location: &str, digest: &str) -> Resp {
        self.send(req(
            Method::PUT,
            &with_query(location, &format!("digest={digest}")),
        ))
        .await
    }

    /// PUT of a manifest with a `Content-Type`.
    pub async fn put_manifest(
        &self,
        name: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> Resp {
        self.send(req_with(
            Method::PUT,
            &format!("/v2/{name}/manifests/{reference}"),
            &[("content-type", media_type)],
            Some(body),
        ))
        .await
    }

    /// Pushes a manifest; asserts 201 and the digest headers; returns the digest.
    pub async fn push_manifest(
        &self,
        name: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> String {
        let r = self.put_manifest(name, reference, media_type, body).await;
        r.expect(StatusCode::CREATED);
        let digest = sha256(body);
        assert_eq!(r.header("docker-content-digest"), digest);
        assert_eq!(
            r.header("location"),
            format!("/v2/{name}/manifests/{digest}")
        );
        digest
    }

    /// Pushes a config and `layers` and an OCI manifest (odd whitespace, so byte-exactness shows)
    /// tagged `tag`.
    pub async fn push_image(&self, name: &str, tag: &str, layers: &[&[u8]]) -> Image {
        let config =
            format!(r#"{{"architecture":"amd64","os":"linux","tag":"{tag}"}}"#).into_bytes();
        let config_digest = self.push_blob(name, &config).await;
        let mut layer_digests = Vec::new();
        for l in layers {
            layer_digests.push(self.push_blob(name, l).await);
        }
        let manifest = oci_manifest(
            (OCI_CONFIG, &config_digest, config.len()),
            &layer_digests
                .iter()
                .zip(layers)
                .map(|(d, l)| (OCI_LAYER, d.as_str(), l.len()))
                .collect::<Vec<_>>(),
        );
        let digest = self.push_manifest(name, tag, OCI_MANIFEST, &manifest).await;
        Image {
            name: name.to_owned(),
            tag: tag.to_owned(),
            config,
            config_digest,
            layers: layers.iter().map(|l| l.to_vec()).collect(),
            layer_digests,
            manifest,
            digest,
        }
    }
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

fn build(tmp: &TempDir, adjust: impl FnOnce(&mut RegistryConfig)) -> (Arc<Registry>, Router) {
    let mut cfg = RegistryConfig {
        data_dir: tmp.path().into(),
        // Deletes are off by default since issue 9; the conformance suite exercises them.
        delete_enabled: true,
        ..Default::default()
    };
    adjust(&mut cfg);
    berth_registry::app(cfg).expect("registry app")
}

/// Sends `request` to `router`, collects the body and checks the API-version header.
pub async fn send_to(router: &Router, request: Request<Body>) -> Resp {
    let what = format!("{} {}", request.method(), request.uri());
    let resp = router
        .clone()
        .oneshot(request)
        .await
        .expect("infallible router");
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.expect("response body").to_bytes();
    let resp = Resp {
        status: parts.status,
        headers: parts.headers,
        body,
    };
    assert_eq!(
        resp.header_opt("docker-distribution-api-version"),
        Some("registry/2.0"),
        "{what}: every response carries Docker-Distribution-API-Version"
    );
    if !resp.status.is_success()
        && resp.status != StatusCode::RANGE_NOT_SATISFIABLE
        && !resp.body.is_empty()
    {
        assert!(
            resp.header_opt("content-type")
                .is_some_and(|c| c.starts_with("application/json")),
            "{what}: error bodies are JSON: {resp:?}"
        );
    }
    resp
}

/// A pushed image and everything in it.
#[derive(Debug, Clone)]
pub struct Image {
    pub name: String,
    pub tag: String,
    pub config: Vec<u8>,
    pub config_digest: String,
    pub layers: Vec<Vec<u8>>,
    pub layer_digests: Vec<String>,
    pub manifest: Vec<u8>,
    pub digest: String,
}

impl Image {
    /// Asserts the image is still served byte-identical: manifest by tag and digest, each blob.
    pub async fn assert_intact(&self, h: &Harness) {
        assert_image_served(&h.router, self).await;
    }
}

/// [`Image::assert_intact`] against any router (e.g. a reopened registry).
pub async fn assert_image_served(router: &Router, image: &Image) {
    let name = &image.name;
    for reference in [&image.tag, &image.digest] {
        let r = send_to(
            router,
            req(Method::GET, &format!("/v2/{name}/manifests/{reference}")),
        )
        .await;
        r.expect(StatusCode::OK);
        assert_eq!(
            r.body.as_ref(),
            image.manifest.as_slice(),
            "manifest {reference} changed"
        );
        assert_eq!(r.header("docker-content-digest"), image.digest);
        assert_eq!(r.header("content-type"), OCI_MANIFEST);
    }
    let blobs = std::iter::once((&image.config_digest, &image.config))
        .chain(image.layer_digests.iter().zip(&image.layers));
    for (digest, data) in blobs {
        let r = send_to(
            router,
            req(Method::GET, &format!("/v2/{name}/blobs/{digest}")),
        )
        .await;
        r.expect(StatusCode::OK);
        assert_eq!(r.body.as_ref(), data.as_slice(), "blob {digest} changed");
    }
}

/// An OCI image manifest with odd whitespace and key order (so only byte-exact storage passes).
pub fn oci_manifest(config: (&str, &str, usize), layers: &[(&str, &str, usize)]) -> Vec<u8> {
    let layers: Vec<String> = layers
        .iter()
        .map(|(mt, d, s)| {
            format!("{{ \"size\" : {s}, \"digest\":\"{d}\",\n   \"mediaType\": \"{mt}\" }}")
        })
        .collect();
    format!(
        "{{\n  \"schemaVersion\":   2,\n\t\"mediaType\" : \"{OCI_MANIFEST}\",\n  \"config\": {{\"size\": {}, \"mediaType\": \"{}\", \"digest\": \"{}\"}},\n  \"layers\": [ {} ],\n  \"annotations\": {{ \"org.example.z\": \"1\", \"org.example.a\": \"2\" }}\n}}\n",
        config.2,
        config.0,
        config.1,
        layers.join(" ,\n ")
    )
    .into_bytes()
}

/// An index (`media_type` OCI index or Docker list) over `(media type, digest, size, arch)` children,
/// all `linux`.
pub fn index(media_type: &str, children: &[(&str, &str, usize, &str)]) -> Vec<u8> {
    let manifests: Vec<String> = children
        .iter()
        .map(|(mt, d, s, arch)| {
            format!(
                r#"{{"mediaType":"{mt}","digest":"{d}","size":{s},"platform":{{"architecture":"{arch}","os":"linux"}}}}"#
            )
        })
        .collect();
    format!(
        "{{ \"schemaVersion\": 2, \"mediaType\": \"{media_type}\",\n \"manifests\": [{}] }}",
        manifests.join(",")
    )
    .into_bytes()
}
