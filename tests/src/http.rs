//! Plain HTTP against a registry: requests whatever their status, JSON, and small pushes.

use std::time::Duration;

use serde_json::{json, Value};

use crate::*;

/// GETs JSON from a URL.
#[must_use]
pub fn get_json(url: &str) -> Value {
    ureq::get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .into_json()
        .unwrap()
}

/// Every manifest media type a registry client accepts (as Docker and containers/image send).
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// A complete HTTP response, whatever its status.
#[derive(Debug)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers, names lowercased, in order.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// First value of header `name` (case-insensitive).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Body parsed as JSON.
    #[must_use]
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Body as text (lossy).
    #[must_use]
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn into_response(r: ureq::Response) -> HttpResponse {
    let status = r.status();
    let headers = r
        .headers_names()
        .into_iter()
        .flat_map(|n| {
            r.all(&n)
                .into_iter()
                .map(|v| (n.to_ascii_lowercase(), v.to_owned()))
                .collect::<Vec<_>>()
        })
        .collect();
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut r.into_reader(), &mut body).expect("read response body");
    HttpResponse {
        status,
        headers,
        body,
    }
}

/// Sends one request and returns the response whatever its status; panics only on transport
/// errors. No redirects are followed.
pub fn http(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> HttpResponse {
    let agent = ureq::AgentBuilder::new()
        .redirects(0)
        .timeout(Duration::from_secs(60))
        .build();
    let mut req = agent.request(method, url);
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let result = match body {
        Some(b) => req.send_bytes(b),
        None => req.call(),
    };
    match result {
        Ok(r) | Err(ureq::Error::Status(_, r)) => into_response(r),
        Err(e) => panic!("{method} {url}: {e}"),
    }
}

/// `GET /v2/<repo>/manifests/<reference>` accepting every manifest type.
#[must_use]
pub fn get_manifest(base_url: &str, repo: &str, reference: &str) -> HttpResponse {
    http(
        "GET",
        &format!("{base_url}/v2/{repo}/manifests/{reference}"),
        &[("Accept", ACCEPT_MANIFESTS)],
        None,
    )
}

/// Uploads a blob in one `POST ?digest=` request; asserts 201 and returns its digest.
pub fn push_blob(base_url: &str, repo: &str, data: &[u8]) -> String {
    let digest = sha256(data);
    let r = http(
        "POST",
        &format!("{base_url}/v2/{repo}/blobs/uploads/?digest={digest}"),
        &[("Content-Type", "application/octet-stream")],
        Some(data),
    );
    assert_eq!(
        r.status,
        201,
        "monolithic upload of {digest} to {repo}: {}",
        r.text()
    );
    digest
}

/// Pushes a manifest under `reference`; asserts 201 and returns the digest the registry reports.
pub fn push_manifest(
    base_url: &str,
    repo: &str,
    reference: &str,
    media_type: &str,
    bytes: &[u8],
) -> String {
    let r = http(
        "PUT",
        &format!("{base_url}/v2/{repo}/manifests/{reference}"),
        &[("Content-Type", media_type)],
        Some(bytes),
    );
    assert_eq!(
        r.status,
        201,
        "PUT manifest {repo}:{reference}: {}",
        r.text()
    );
    let digest = r
        .header("docker-content-digest")
        .expect("Docker-Content-Digest on manifest PUT");
    assert_eq!(
        digest,
        sha256(bytes),
        "digest reported for manifest {repo}:{reference}"
    );
    digest.to_owned()
}

/// Pushes a tiny OCI image (config + one layer) through the HTTP API; returns the manifest
/// bytes and digest.
pub fn push_small_image(base_url: &str, repo: &str, tag: &str, seed: u64) -> (Vec<u8>, String) {
    let content = noise(4096, seed);
    let (layer_bytes, diff_id) = layer(&[("data/noise", &content, 0o644)]);
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }))
    .unwrap();
    let config_digest = push_blob(base_url, repo, &config);
    let layer_digest = push_blob(base_url, repo, &layer_bytes);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer_bytes.len()}],
    }))
    .unwrap();
    let digest = push_manifest(
        base_url,
        repo,
        tag,
        "application/vnd.oci.image.manifest.v1+json",
        &manifest,
    );
    (manifest, digest)
}
