//! `remote::Client` reads against the fake registry: retries on 5xx and 429 (with
//! `Retry-After`), digest verification, blob redirects to another host without
//! `Authorization`, ranged downloads, `Link` pagination, 404s, and HTTPS/HTTP endpoint choice.

mod remote_support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use berth_client::remote::{Client, RemoteError};
use berth_client::Hint as _;
use oci_spec::image::Digest;
use remote_support::{options, sha256, AuthMode, Fake};

const MT: &str = "application/vnd.oci.image.manifest.v1+json";

fn digest(s: &str) -> Digest {
    s.parse().unwrap()
}

async fn open(fake: &Fake) -> Client {
    Client::connect(&fake.host(), &options("{}", &[]))
        .await
        .unwrap()
}

#[tokio::test]
async fn server_errors_are_retried_then_succeed() {
    let fake = Fake::start(AuthMode::None).await;
    fake.put_manifest("a/b", "v1", MT, b"{}");
    fake.inner.faults.fail_5xx.store(2, Ordering::SeqCst);
    let client = open(&fake).await;
    let started = Instant::now();
    client.manifest("a/b", "v1", &[]).await.unwrap();
    let gets = fake
        .log()
        .iter()
        .filter(|r| r.path_and_query.contains("manifests"))
        .count();
    assert_eq!(gets, 3, "two 503s and a success");
    // Backoff: 200 ms then 400 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(550),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn server_errors_stop_after_max_download_attempts() {
    let fake = Fake::start(AuthMode::None).await;
    fake.put_manifest("a/b", "v1", MT, b"{}");
    fake.inner.faults.fail_5xx.store(100, Ordering::SeqCst);
    let client = Client::connect(
        &fake.host(),
        &options(r#"{"max-download-attempts": 3}"#, &[]),
    )
    .await
    .unwrap();
    let e = client.manifest("a/b", "v1", &[]).await.unwrap_err();
    match &e {
        RemoteError::Status {
            status, code, url, ..
        } => {
            assert_eq!(*status, 503);
            assert_eq!(code, "UNAVAILABLE");
            assert!(url.ends_with("/v2/a/b/manifests/v1"), "{url}");
        }
        other => panic!("expected Status, got {other:?}"),
    }
    assert!(e.hint().is_some());
    assert_eq!(
        fake.log()
            .iter()
            .filter(|r| r.path_and_query.contains("manifests"))
            .count(),
        3
    );
}

#[tokio::test]
async fn too_many_requests_honours_retry_after() {
    let fake = Fake::start(AuthMode::None).await;
    let blob = fake.put_blob(b"hello");
    fake.inner.faults.fail_429.store(1, Ordering::SeqCst);
    fake.inner.faults.retry_after.store(1, Ordering::SeqCst);
    let client = open(&fake).await;
    let started = Instant::now();
    assert_eq!(
        client.blob_size("a/b", &digest(&blob)).await.unwrap(),
        Some(5)
    );
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );

    // A Retry-After beyond what we wait for fails at once, with the delay in the error.
    fake.inner.faults.fail_429.store(1, Ordering::SeqCst);
    fake.inner.faults.retry_after.store(3600, Ordering::SeqCst);
    let started = Instant::now();
    let e = client.blob_size("a/b", &digest(&blob)).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        matches!(
            e,
            RemoteError::TooManyRequests {
                retry_after: Some(3600),
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("3600"), "{e}");
}

#[tokio::test]
async fn wrong_docker_content_digest_is_a_mismatch() {
    let fake = Fake::start(AuthMode::None).await;
    let d = fake.put_manifest("a/b", "v1", MT, br#"{"schemaVersion":2}"#);
    fake.inner.faults.wrong_digest.store(true, Ordering::SeqCst);
    let client = open(&fake).await;
    let e = client.manifest("a/b", "v1", &[]).await.unwrap_err();
    match &e {
        RemoteError::DigestMismatch {
            expected, actual, ..
        } => {
            assert_eq!(expected.to_string(), sha256(b"something else"));
            assert_eq!(actual.to_string(), d);
        }
        other => panic!("expected DigestMismatch, got {other:?}"),
    }
    assert!(e.hint().unwrap().contains("corrupted"));

    // Bytes that do not match the digest asked for, with no header to compare: still caught.
    fake.inner
        .faults
        .wrong_digest
        .store(false, Ordering::SeqCst);
    fake.inner
        .faults
        .corrupt_manifest
        .store(true, Ordering::SeqCst);
    let e = client.manifest("a/b", &d, &[]).await.unwrap_err();
    assert!(
        matches!(&e, RemoteError::DigestMismatch { expected, .. } if expected.to_string() == d),
        "{e:?}"
    );
}

#[tokio::test]
async fn head_manifest_and_not_found() {
    let fake = Fake::start(AuthMode::None).await;
    let body = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#;
    let d = fake.put_manifest("a/b", "v1", MT, body);
    let client = open(&fake).await;
    let (hd, mt, size) = client
        .head_manifest("a/b", "v1", &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (hd.to_string(), mt.as_str(), size),
        (d, MT, body.len() as u64)
    );
    assert!(client
        .head_manifest("a/b", "nope", &[])
        .await
        .unwrap()
        .is_none());
    assert!(client
        .blob_size("a/b", &digest(&sha256(b"x")))
        .await
        .unwrap()
        .is_none());
    let e = client.manifest("a/b", "nope", &[]).await.unwrap_err();
    assert!(
        matches!(&e, RemoteError::NotFound { code, .. } if code == "MANIFEST_UNKNOWN"),
        "{e:?}"
    );
    let e = client.tags("no/such").await.unwrap_err();
    assert!(
        matches!(&e, RemoteError::NotFound { code, .. } if code == "NAME_UNKNOWN"),
        "{e:?}"
    );
    let e = client
        .blob("a/b", &digest(&sha256(b"x")), 0)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, RemoteError::NotFound { code, .. } if code == "BLOB_UNKNOWN"),
        "{e:?}"
    );
}

async fn drain(mut s: berth_client::remote::BlobStream) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = s.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

#[tokio::test]
async fn blob_redirects_to_another_host_drop_authorization() {
    let fake = Fake::start(AuthMode::Bearer {
        user: "u".into(),
        pass: "p".into(),
        anonymous_pull: false,
    })
    .await;
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let d = fake.put_blob(&data);
    fake.inner
        .faults
        .redirect_blobs
        .store(true, Ordering::SeqCst);
    let opts = options("{}", &[(&fake.host(), "u", "p")]);
    let client = Client::connect(&fake.host(), &opts).await.unwrap();

    let s = client.blob("a/b", &digest(&d), 0).await.unwrap();
    assert_eq!((s.start, s.total), (0, Some(data.len() as u64)));
    assert!(s.url().contains("/storage/"), "{}", s.url());
    assert_eq!(drain(s).await, data);

    // Resume from an offset: the storage host answers 206.
    let s = client.blob("a/b", &digest(&d), 60_000).await.unwrap();
    assert_eq!((s.start, s.total), (60_000, Some(data.len() as u64)));
    assert_eq!(drain(s).await, &data[60_000..]);

    // The registry got the token; the storage host never got any Authorization.
    let reg = fake.log();
    assert!(reg.iter().any(|r| r.path_and_query.contains("/blobs/")
        && r.authorization
            .as_deref()
            .is_some_and(|a| a.starts_with("Bearer "))));
    let storage = fake.storage_log();
    assert_eq!(storage.len(), 2);
    assert!(
        storage.iter().all(|r| r.authorization.is_none()),
        "{storage:?}"
    );
    assert_eq!(storage[1].headers.get("range").unwrap(), "bytes=60000-");

    // A host that ignores Range restarts from 0, and says so.
    fake.inner
        .faults
        .storage_ignores_range
        .store(true, Ordering::SeqCst);
    let s = client.blob("a/b", &digest(&d), 60_000).await.unwrap();
    assert_eq!(s.start, 0);
    assert_eq!(drain(s).await, data);
}

#[tokio::test]
async fn tags_and_catalog_follow_link_pagination() {
    let fake = Fake::start(AuthMode::None).await;
    for t in ["v1", "v2", "v3", "v4", "v5"] {
        fake.put_manifest("a/b", t, MT, t.as_bytes());
    }
    for r in ["c/one", "c/two", "c/three"] {
        fake.put_manifest(r, "latest", MT, b"{}");
    }
    fake.inner.faults.page_size.store(2, Ordering::SeqCst);
    let client = open(&fake).await;
    assert_eq!(
        client.tags("a/b").await.unwrap(),
        ["v1", "v2", "v3", "v4", "v5"]
    );
    let pages = fake
        .log()
        .iter()
        .filter(|r| r.path_and_query.contains("tags/list"))
        .count();
    assert_eq!(pages, 3);
    assert_eq!(
        client.catalog().await.unwrap(),
        ["a/b", "c/one", "c/three", "c/two"]
    );
}

#[tokio::test]
async fn search_v1_is_none_where_the_registry_has_none() {
    let fake = Fake::start(AuthMode::None).await;
    let client = open(&fake).await;
    assert!(client.search_v1("x", 10).await.unwrap().is_none());
}

#[tokio::test]
async fn unreachable_registries_are_transport_errors_with_a_hint() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let opts = options(r#"{"max-download-attempts": 2}"#, &[]);
    let e = Client::connect(&format!("127.0.0.1:{port}"), &opts)
        .await
        .unwrap_err();
    assert!(matches!(e, RemoteError::Transport { .. }), "{e:?}");
    assert!(e.hint().unwrap().contains("running"));
}

/// A non-loopback address of this machine (the source address of the default route).
fn outside_ip() -> std::net::IpAddr {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    s.connect("192.0.2.250:9")
        .or_else(|_| s.connect("10.255.255.1:9"))
        .expect(
            "this test needs a non-loopback IPv4 address with a route (any interface besides lo)",
        );
    let ip = s.local_addr().unwrap().ip();
    assert!(!ip.is_loopback(), "no non-loopback address found");
    ip
}

#[tokio::test]
async fn plain_http_registries_must_be_listed_as_insecure() {
    let ip = outside_ip();
    let fake = Fake::start_on(std::net::SocketAddr::new(ip, 0), AuthMode::None).await;
    let e = Client::connect(&fake.host(), &options("{}", &[]))
        .await
        .unwrap_err();
    match &e {
        RemoteError::InsecureRefused { registry, url, .. } => {
            assert_eq!(registry, &fake.host());
            assert!(url.starts_with("https://"), "{url}");
        }
        other => panic!("expected InsecureRefused, got {other:?}"),
    }
    let hint = e.hint().unwrap();
    assert!(
        hint.contains("insecure-registries") && hint.contains(&fake.host()),
        "{hint}"
    );

    let listed = options(
        &format!(r#"{{"insecure-registries": ["{}"]}}"#, fake.host()),
        &[],
    );
    let client = Client::connect(&fake.host(), &listed).await.unwrap();
    assert_eq!(client.base_url(), fake.url());
    client.ping().await.unwrap();
}

#[tokio::test]
async fn clients_are_shared_across_tasks() {
    let fake = Fake::start(AuthMode::None).await;
    let blobs: Vec<String> = (0..8)
        .map(|i| fake.put_blob(format!("blob {i}").as_bytes()))
        .collect();
    let client = open(&fake).await;
    let mut tasks = Vec::new();
    for b in blobs {
        let c = client.clone();
        tasks.push(tokio::spawn(async move {
            let s = c.blob("a/b", &digest(&b), 0).await.unwrap();
            sha256(&drain(s).await) == b
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap());
    }
}
