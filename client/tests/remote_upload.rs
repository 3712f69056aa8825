//! `remote::Client` writes against the fake registry: monolithic and chunked uploads streamed
//! from a file (with `Content-Range`, progress, retry from a new session), mounts, and manifest
//! PUTs.

mod remote_support;

use std::sync::atomic::Ordering;
use std::sync::Mutex;

use berth_client::remote::{Client, RemoteError, MONOLITHIC_MAX};
use oci_spec::image::Digest;
use remote_support::{options, sha256, AuthMode, Fake};

fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn bearer() -> AuthMode {
    AuthMode::Bearer {
        user: "u".into(),
        pass: "p".into(),
        anonymous_pull: false,
    }
}

async fn write_blob(dir: &std::path::Path, data: &[u8]) -> (std::path::PathBuf, Digest) {
    let path = dir.join("blob");
    tokio::fs::write(&path, data).await.unwrap();
    (path, sha256(data).parse().unwrap())
}

#[tokio::test]
async fn small_blobs_go_in_one_put() {
    let fake = Fake::start(bearer()).await;
    let client = Client::connect(&fake.host(), &options("{}", &[(&fake.host(), "u", "p")]))
        .await
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let data = noise(1000);
    let (path, d) = write_blob(tmp.path(), &data).await;
    let seen = Mutex::new(Vec::new());
    client
        .upload("team/app", &d, data.len() as u64, &path, &|n| {
            seen.lock().unwrap().push(n)
        })
        .await
        .unwrap();
    assert_eq!(*seen.lock().unwrap(), [1000]);
    assert_eq!(
        fake.inner.data.lock().unwrap().blobs[&d.to_string()].len(),
        1000
    );
    let methods: Vec<String> = fake
        .log()
        .iter()
        .filter(|r| r.path_and_query.contains("/blobs/uploads/"))
        .map(|r| r.method.clone())
        .collect();
    // The challenge was learned when connecting, so the token is fetched before the POST.
    assert_eq!(methods, ["POST", "PUT"]);
    assert!(client.blob_size("team/app", &d).await.unwrap() == Some(1000));
}

#[tokio::test]
async fn big_blobs_stream_in_chunks_with_content_range() {
    let fake = Fake::start(bearer()).await;
    let client = Client::connect(&fake.host(), &options("{}", &[(&fake.host(), "u", "p")]))
        .await
        .unwrap();
    client.set_upload_chunk_size(4 << 20);
    let tmp = tempfile::tempdir().unwrap();
    let size = MONOLITHIC_MAX as usize + (1 << 20) + 123;
    let data = noise(size);
    let (path, d) = write_blob(tmp.path(), &data).await;
    let seen = Mutex::new(Vec::new());
    client
        .upload("team/app", &d, size as u64, &path, &|n| {
            seen.lock().unwrap().push(n)
        })
        .await
        .unwrap();
    assert_eq!(
        fake.inner.data.lock().unwrap().blobs[&d.to_string()].len(),
        size
    );
    let patches: Vec<String> = fake
        .log()
        .iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| {
            r.headers
                .get("content-range")
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let m = 4 << 20;
    assert_eq!(
        patches,
        [
            format!("0-{}", m - 1),
            format!("{m}-{}", 2 * m - 1),
            format!("{}-{}", 2 * m, size - 1)
        ]
    );
    let seen = seen.lock().unwrap();
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    assert_eq!(*seen.last().unwrap(), size as u64);
    // Every PATCH and the PUT carried the push token.
    for r in fake
        .log()
        .iter()
        .filter(|r| r.method == "PATCH" || r.method == "PUT")
    {
        assert!(
            r.authorization.as_deref().unwrap().contains("pull,push"),
            "{r:?}"
        );
    }
}

#[tokio::test]
async fn uploads_check_the_size_and_the_registry_checks_the_digest() {
    let fake = Fake::start(AuthMode::None).await;
    let client = Client::connect(&fake.host(), &options("{}", &[]))
        .await
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let data = noise(5000);
    let (path, d) = write_blob(tmp.path(), &data).await;

    // Wrong size on disk is an I/O error naming the file.
    let e = client
        .upload("a/b", &d, 4000, &path, &|_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(&e, RemoteError::Io { path: p, .. } if *p == path),
        "{e:?}"
    );

    // Content that does not hash to the digest: the registry's DIGEST_INVALID, not retried.
    let wrong: Digest = sha256(b"other").parse().unwrap();
    let e = client
        .upload("a/b", &wrong, 5000, &path, &|_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(&e, RemoteError::Status { status: 400, code, .. } if code == "DIGEST_INVALID"),
        "{e:?}"
    );
}

#[tokio::test]
async fn server_errors_during_upload_are_retried() {
    let fake = Fake::start(AuthMode::None).await;
    let client = Client::connect(&fake.host(), &options("{}", &[]))
        .await
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let data = noise(3000);
    let (path, d) = write_blob(tmp.path(), &data).await;
    fake.inner.faults.fail_5xx.store(2, Ordering::SeqCst);
    client
        .upload("a/b", &d, 3000, &path, &|_| {})
        .await
        .unwrap();
    assert!(fake
        .inner
        .data
        .lock()
        .unwrap()
        .blobs
        .contains_key(&d.to_string()));
}

#[tokio::test]
async fn mounts_report_whether_the_registry_mounted() {
    let fake = Fake::start(bearer()).await;
    let client = Client::connect(&fake.host(), &options("{}", &[(&fake.host(), "u", "p")]))
        .await
        .unwrap();
    let have: Digest = fake.put_blob(b"shared layer").parse().unwrap();
    assert!(client.mount("team/app", &have, "team/base").await.unwrap());
    let token_scopes = fake.token_log().last().unwrap().path_and_query.clone();
    assert!(
        token_scopes.contains("repository%3Ateam%2Fbase%3Apull"),
        "{token_scopes}"
    );

    let missing: Digest = sha256(b"not there").parse().unwrap();
    assert!(!client
        .mount("team/app", &missing, "team/base")
        .await
        .unwrap());
    // The session the registry opened instead was cancelled.
    let data = fake.inner.data.lock().unwrap();
    assert_eq!(data.cancelled.len(), 1);
    assert!(data.uploads.is_empty());
}

#[tokio::test]
async fn manifests_are_put_and_their_digest_returned() {
    let fake = Fake::start(AuthMode::None).await;
    let client = Client::connect(&fake.host(), &options("{}", &[]))
        .await
        .unwrap();
    let body = bytes::Bytes::from_static(br#"{"schemaVersion":2,"layers":[]}"#);
    let mt = "application/vnd.oci.image.manifest.v1+json";
    let d = client
        .put_manifest("a/b", "v1", mt, body.clone())
        .await
        .unwrap();
    assert_eq!(d.to_string(), sha256(&body));
    let m = client.manifest("a/b", "v1", &[mt]).await.unwrap();
    assert_eq!((m.bytes, m.media_type, m.digest), (body, mt.to_owned(), d));
    assert_eq!(client.tags("a/b").await.unwrap(), ["v1"]);
}
