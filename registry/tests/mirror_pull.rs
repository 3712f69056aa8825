//! The pull-through mirror (issue 10), in process: a berth-registry holding the images stands in
//! for Docker Hub/ghcr.io on `127.0.0.1:0`, behind a fault layer that counts requests and can go
//! down, slow down, corrupt or truncate blobs, or serve a manifest that does not match its digest.
//! The mirror under test is a second registry configured with `[[mirror]]` upstreams.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use berth_config::registry::{AccessRule, AuthConfig, TokenConfig};
use berth_config::registry_mirror::{CacheConfig, MirrorConfig};
use bytes::Bytes;
use common::{pseudo_random, req, send_to, sha256, Harness, Image};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// What the fake upstream does wrong, and what it saw.
#[derive(Default)]
struct Faults {
    down: AtomicBool,
    bad_manifest: AtomicBool,
    /// Manifests, tag lists and tokens answered with a body that never ends (no length).
    endless: AtomicBool,
    /// Blob digests served with one byte flipped.
    corrupt: Mutex<HashSet<String>>,
    /// Blob digests cut after half their bytes (connection aborted).
    truncate: Mutex<HashSet<String>>,
    /// Delay between 64 KiB chunks of blob bodies.
    slow_ms: Mutex<u64>,
    /// `METHOD path` of every request.
    log: Mutex<Vec<String>>,
}

impl Faults {
    fn count(&self, method: &str, path_suffix: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with(method) && l.ends_with(path_suffix))
            .count()
    }
    fn total(&self) -> usize {
        self.log.lock().unwrap().len()
    }
}

async fn fault_layer(State(f): State<Arc<Faults>>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    f.log
        .lock()
        .unwrap()
        .push(format!("{} {path}", request.method()));
    if f.down.load(Ordering::SeqCst) {
        return Response::builder()
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .body(Body::empty())
            .unwrap();
    }
    let is_blob = path.contains("/blobs/sha256:");
    let is_manifest = path.contains("/manifests/");
    let digest = path.rsplit('/').next().unwrap_or("").to_owned();
    let resp = next.run(request).await;
    let small = is_manifest || path.ends_with("/tags/list") || path == "/auth/token";
    if small && f.endless.load(Ordering::SeqCst) && resp.status() == StatusCode::OK {
        let (mut parts, _) = resp.into_parts();
        parts.headers.remove("content-length");
        let chunk = Bytes::from(vec![b' '; 64 * 1024]);
        let stream =
            futures_util::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()));
        return Response::from_parts(parts, Body::from_stream(stream));
    }
    if is_manifest && f.bad_manifest.load(Ordering::SeqCst) && resp.status() == StatusCode::OK {
        let (parts, body) = resp.into_parts();
        let mut bytes = body.collect().await.unwrap().to_bytes().to_vec();
        bytes.insert(1, b' ');
        let mut parts = parts;
        parts.headers.remove("content-length");
        return Response::from_parts(parts, Body::from(bytes));
    }
    let ok = resp.status() == StatusCode::OK || resp.status() == StatusCode::PARTIAL_CONTENT;
    if !is_blob || !ok {
        return resp;
    }
    let corrupt = f.corrupt.lock().unwrap().contains(&digest);
    let truncate = f.truncate.lock().unwrap().contains(&digest);
    let slow = *f.slow_ms.lock().unwrap();
    let (parts, body) = resp.into_parts();
    let mut bytes = body.collect().await.unwrap().to_bytes().to_vec();
    if corrupt && !bytes.is_empty() {
        let i = bytes.len() / 2;
        bytes[i] ^= 0xff;
    }
    let cut = truncate.then_some(bytes.len() / 2);
    let bytes = Bytes::from(bytes);
    let stream = futures_util::stream::unfold(0usize, move |pos| {
        let bytes = bytes.clone();
        async move {
            let end = cut.unwrap_or(bytes.len());
            if pos >= end {
                if cut.is_some() && pos < bytes.len() {
                    // Let hyper send what it has, then cut the connection.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    return Some((Err(std::io::Error::other("cut")), usize::MAX));
                }
                return None;
            }
            if slow > 0 {
                tokio::time::sleep(Duration::from_millis(slow)).await;
            }
            let next = (pos + 64 * 1024).min(end);
            Some((Ok::<_, std::io::Error>(bytes.slice(pos..next)), next))
        }
    });
    Response::from_parts(parts, Body::from_stream(stream))
}

/// A registry serving on `127.0.0.1:0` behind the fault layer.
struct Upstream {
    h: Harness,
    faults: Arc<Faults>,
    url: String,
}

async fn upstream_with(adjust: impl FnOnce(&mut berth_registry::RegistryConfig)) -> Upstream {
    let h = Harness::with(adjust);
    let faults = Arc::new(Faults::default());
    let app = h.router.clone().layer(axum::middleware::from_fn_with_state(
        faults.clone(),
        fault_layer,
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Upstream { h, faults, url }
}

async fn upstream() -> Upstream {
    upstream_with(|_| {}).await
}

fn mirror_cfg(registry: &str, url: &str, recheck: u64) -> MirrorConfig {
    MirrorConfig {
        registry: registry.to_owned(),
        url: url.to_owned(),
        username: None,
        password: None,
        password_file: None,
        tag_recheck_secs: recheck,
        default: false,
    }
}

/// A mirror whose first upstream is the default.
fn mirror(mut upstreams: Vec<MirrorConfig>, cache: CacheConfig) -> Harness {
    upstreams[0].default = true;
    Harness::with(move |c| {
        c.mirrors = upstreams;
        c.cache = cache;
    })
}

/// Pulls `image` through `router` at `name` (`?ns=` in `query`), checking bytes and digests.
async fn pull(router: &axum::Router, name: &str, query: &str, image: &Image) {
    for reference in [&image.tag, &image.digest] {
        let r = send_to(
            router,
            req(
                Method::GET,
                &format!("/v2/{name}/manifests/{reference}{query}"),
            ),
        )
        .await;
        r.expect(StatusCode::OK);
        assert_eq!(r.body.as_ref(), image.manifest.as_slice());
        assert_eq!(r.header("docker-content-digest"), image.digest);
    }
    let blobs = std::iter::once((&image.config_digest, &image.config))
        .chain(image.layer_digests.iter().zip(&image.layers));
    for (digest, data) in blobs {
        let r = send_to(
            router,
            req(Method::GET, &format!("/v2/{name}/blobs/{digest}{query}")),
        )
        .await;
        r.expect(StatusCode::OK);
        assert_eq!(sha256(&r.body), *digest, "blob {digest} through the mirror");
        assert_eq!(r.body.len(), data.len());
    }
}

fn mirror_blob_exists(h: &Harness, digest: &str) -> bool {
    let hex = digest.trim_start_matches("sha256:");
    h.tmp
        .path()
        .join(format!("_mirror/blobs/sha256/{}/{hex}/data", &hex[..2]))
        .exists()
}

#[tokio::test]
async fn routes_by_default_upstream_ns_and_path_prefix() {
    let hub = upstream().await;
    let ghcr = upstream().await;
    let tiny = hub
        .h
        .push_image("library/tiny", "1", &[b"tiny layer"])
        .await;
    let app = ghcr
        .h
        .push_image("org/app", "v1", &[b"app layer", b"second"])
        .await;
    let m = mirror(
        vec![
            mirror_cfg("docker.io", &hub.url, 300),
            mirror_cfg("ghcr.io", &ghcr.url, 300),
        ],
        CacheConfig::default(),
    );
    // Docker's registry-mirrors: docker.io names, `library/` included, no ns.
    pull(&m.router, "library/tiny", "", &tiny).await;
    // containerd hosts.toml: ?ns=
    pull(&m.router, "org/app", "?ns=ghcr.io", &app).await;
    // Podman/CRI-O registries.conf mirror location: a host prefix.
    pull(&m.router, "ghcr.io/org/app", "", &app).await;
    // A short docker.io name gets `library/`.
    let r = send_to(
        &m.router,
        req(Method::GET, "/v2/tiny/manifests/1?ns=docker.io"),
    )
    .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.header("docker-content-digest"), tiny.digest);
    // Each manifest reached its upstream once per reference, each blob once.
    for d in app.layer_digests.iter().chain([&app.config_digest]) {
        assert_eq!(ghcr.faults.count("GET", d), 1, "{d}");
    }
    assert_eq!(hub.faults.count("GET", "/v2/library/tiny/manifests/1"), 1);
    // Cached content sits apart from local content.
    assert!(mirror_blob_exists(&m, &tiny.layer_digests[0]));
    assert!(!m.tmp.path().join("repositories/library").exists());
    // Unknown upstream names are 404 with the upstream's name in the message.
    let r = send_to(&m.router, req(Method::GET, "/v2/library/nope/manifests/1")).await;
    r.expect(StatusCode::NOT_FOUND);
    assert!(
        r.error_message().contains("docker.io"),
        "{}",
        r.error_message()
    );
    // A blob the upstream does not have is BLOB_UNKNOWN, not a gateway error.
    let missing = format!("sha256:{}", "0".repeat(64));
    let r = send_to(
        &m.router,
        req(Method::GET, &format!("/v2/library/tiny/blobs/{missing}")),
    )
    .await;
    common::assert_error(&r, StatusCode::NOT_FOUND, "BLOB_UNKNOWN");
    // Tags come from the upstream.
    let r = send_to(
        &m.router,
        req(Method::GET, "/v2/org/app/tags/list?ns=ghcr.io"),
    )
    .await;
    r.expect(StatusCode::OK);
    assert_eq!(r.json()["tags"], serde_json::json!(["v1"]));
}

#[tokio::test]
async fn a_push_makes_a_local_repository_that_shadows_the_cache() {
    let hub = upstream().await;
    let upstream_image = hub
        .h
        .push_image("library/app", "1", &[b"from upstream"])
        .await;
    let m = mirror(
        vec![mirror_cfg("docker.io", &hub.url, 300)],
        CacheConfig::default(),
    );
    pull(&m.router, "library/app", "", &upstream_image).await;
    let local = m.push_image("library/app", "1", &[b"pushed here"]).await;
    assert_ne!(local.digest, upstream_image.digest);
    local.assert_intact(&m).await;
    // Other local repositories work beside mirrored ones.
    let other = m.push_image("team/tool", "v1", &[b"tool"]).await;
    other.assert_intact(&m).await;
    let before = hub.faults.total();
    local.assert_intact(&m).await;
    assert_eq!(hub.faults.total(), before, "local names never go upstream");
}

#[tokio::test]
async fn tags_are_rechecked_digests_are_not_and_stale_content_survives_outages() {
    let hub = upstream().await;
    let v1 = hub.h.push_image("library/app", "latest", &[b"v1"]).await;
    let m = mirror(
        vec![mirror_cfg("docker.io", &hub.url, 1)],
        CacheConfig::default(),
    );
    pull(&m.router, "library/app", "", &v1).await;
    let gets = hub.faults.count("GET", "/manifests/latest");
    assert_eq!(gets, 1);
    // Within the interval: no upstream traffic at all.
    let before = hub.faults.total();
    pull(&m.router, "library/app", "", &v1).await;
    assert_eq!(hub.faults.total(), before);
    // The tag moves upstream: seen after the interval (HEAD, then one GET).
    let v2 = hub.h.push_image("library/app", "latest", &[b"v2"]).await;
    let r = send_to(
        &m.router,
        req(Method::HEAD, "/v2/library/app/manifests/latest"),
    )
    .await;
    assert_eq!(
        r.header("docker-content-digest"),
        v1.digest,
        "within the interval"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    pull(&m.router, "library/app", "", &v2).await;
    assert_eq!(hub.faults.count("HEAD", "/manifests/latest"), 1);
    // Digests are never revalidated.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let before = hub.faults.total();
    let r = send_to(
        &m.router,
        req(
            Method::GET,
            &format!("/v2/library/app/manifests/{}", v1.digest),
        ),
    )
    .await;
    r.expect(StatusCode::OK);
    assert_eq!(hub.faults.total(), before);
    // Upstream down: cached tag and digests still pull (stale-if-error) ...
    hub.faults.down.store(true, Ordering::SeqCst);
    pull(&m.router, "library/app", "", &v2).await;
    // ... an uncached one fails clearly, and is not retried upstream at once.
    let r = send_to(&m.router, req(Method::GET, "/v2/library/other/manifests/1")).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        r.error_message().contains("docker.io"),
        "{}",
        r.error_message()
    );
    let before = hub.faults.total();
    for _ in 0..5 {
        let r = send_to(&m.router, req(Method::GET, "/v2/library/other/manifests/1")).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            r.error_message().contains("not asked again"),
            "{}",
            r.error_message()
        );
    }
    assert_eq!(hub.faults.total(), before, "negative cache");
    // Misses too.
    hub.faults.down.store(false, Ordering::SeqCst);
    let r = send_to(
        &m.router,
        req(Method::GET, "/v2/library/missing/manifests/1"),
    )
    .await;
    r.expect(StatusCode::NOT_FOUND);
    let before = hub.faults.total();
    let r = send_to(
        &m.router,
        req(Method::GET, "/v2/library/missing/manifests/1"),
    )
    .await;
    r.expect(StatusCode::NOT_FOUND);
    assert_eq!(hub.faults.total(), before, "negative cache for misses");
}

/// Ten concurrent cold pulls of an 8-layer image: each blob is fetched upstream once, every
/// client (one of them with a Range request) gets verified content while the fill runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_cold_pulls_fetch_each_blob_once() {
    let hub = upstream().await;
    let layers: Vec<Vec<u8>> = (0..8)
        .map(|i| pseudo_random(600_000 + i * 1000, i as u64))
        .collect();
    let refs: Vec<&[u8]> = layers.iter().map(Vec::as_slice).collect();
    let image = hub.h.push_image("library/big", "1", &refs).await;
    *hub.faults.slow_ms.lock().unwrap() = 5;
    let m = mirror(
        vec![mirror_cfg("docker.io", &hub.url, 300)],
        CacheConfig::default(),
    );
    let mut tasks = Vec::new();
    for i in 0..10 {
        let router = m.router.clone();
        let image = image.clone();
        tasks.push(tokio::spawn(async move {
            pull(&router, "library/big", "", &image).await;
            if i == 0 {
                let d = &image.layer_digests[3];
                let r = send_to(
                    &router,
                    common::req_with(
                        Method::GET,
                        &format!("/v2/library/big/blobs/{d}"),
                        &[("range", "bytes=1000-1999")],
                        None,
                    ),
                )
                .await;
                r.expect(StatusCode::PARTIAL_CONTENT);
                assert_eq!(r.body.as_ref(), &image.layers[3][1000..2000]);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for d in image.layer_digests.iter().chain([&image.config_digest]) {
        assert_eq!(hub.faults.count("GET", d), 1, "blob {d} fetched once");
    }
    assert_eq!(hub.faults.count("GET", "/manifests/1"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_leaving_mid_blob_does_not_stop_the_fill() {
    let hub = upstream().await;
    let layer = pseudo_random(2_000_000, 7);
    let image = hub.h.push_image("library/slow", "1", &[&layer]).await;
    *hub.faults.slow_ms.lock().unwrap() = 10;
    let m = mirror(
        vec![mirror_cfg("docker.io", &hub.url, 300)],
        CacheConfig::default(),
    );
    let d = image.layer_digests[0].clone();
    let resp = m
        .router
        .clone()
        .oneshot(req(Method::GET, &format!("/v2/library/slow/blobs/{d}")))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert!(first.data_ref().is_some_and(|b| !b.is_empty()));
    drop(body); // the client goes away
    for _ in 0..200 {
        if mirror_blob_exists(&m, &d) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        mirror_blob_exists(&m, &d),
        "the fill went on and was published"
    );
    *hub.faults.slow_ms.lock().unwrap() = 0;
    pull(&m.router, "library/slow", "", &image).await;
    assert_eq!(hub.faults.count("GET", &d), 1);
}

#[tokio::test]
async fn bad_upstream_content_is_never_stored_and_the_next_pull_retries() {
    let hub = upstream().await;
    let image = hub
        .h
        .push_image(
            "library/bad",
            "1",
            &[&pseudo_random(300_000, 1), &pseudo_random(300_000, 2)],
        )
        .await;
    let m = mirror(
        vec![mirror_cfg("docker.io", &hub.url, 300)],
        CacheConfig::default(),
    );
    let (corrupt, cut) = (&image.layer_digests[0], &image.layer_digests[1]);
    hub.faults.corrupt.lock().unwrap().insert(corrupt.clone());
    hub.faults.truncate.lock().unwrap().insert(cut.clone());
    for d in [corrupt, cut] {
        let resp = m
            .router
            .clone()
            .oneshot(req(Method::GET, &format!("/v2/library/bad/blobs/{d}")))
            .await
            .unwrap();
        let ok = resp.status() == StatusCode::OK;
        let body = resp.into_body().collect().await;
        assert!(!ok || body.is_err(), "{d}: the client must see an error");
        assert!(!mirror_blob_exists(&m, d), "{d} must not be stored");
    }
    // The truncated one was resumed with Range before giving up.
    assert!(hub.faults.count("GET", cut) > 1);
    // Bad manifest digest: an error, nothing stored.
    hub.faults.bad_manifest.store(true, Ordering::SeqCst);
    let r = send_to(
        &m.router,
        req(
            Method::GET,
            &format!("/v2/library/bad/manifests/{}", image.digest),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert!(
        r.error_message().contains("hash to"),
        "{}",
        r.error_message()
    );
    let r = send_to(&m.router, req(Method::GET, "/v2/library/bad/manifests/1")).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert!(
        r.error_message().contains("Docker-Content-Digest"),
        "{}",
        r.error_message()
    );
    // A manifest that never ends: refused once past the manifest size limit, not buffered.
    hub.faults.bad_manifest.store(false, Ordering::SeqCst);
    hub.faults.endless.store(true, Ordering::SeqCst);
    let r = tokio::time::timeout(
        Duration::from_secs(30),
        send_to(&m.router, req(Method::GET, "/v2/library/bad/manifests/1")),
    )
    .await
    .expect("an endless manifest must be cut off, not read for ever");
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert!(
        r.error_message().contains("larger than"),
        "{}",
        r.error_message()
    );
    hub.faults.endless.store(false, Ordering::SeqCst);
    // Faults gone: the next pull fetches again and works.
    hub.faults.corrupt.lock().unwrap().clear();
    hub.faults.truncate.lock().unwrap().clear();
    pull(&m.router, "library/bad", "", &image).await;
}

#[tokio::test]
async fn size_cap_evicts_least_recently_used_and_never_a_shared_blob() {
    let hub = upstream().await;
    let shared = pseudo_random(400_000, 100);
    let imgs = [
        hub.h
            .push_image("library/a", "1", &[&shared, &pseudo_random(400_000, 1)])
            .await,
        hub.h
            .push_image("library/b", "1", &[&shared, &pseudo_random(400_000, 2)])
            .await,
        hub.h
            .push_image("library/c", "1", &[&pseudo_random(400_000, 3)])
            .await,
    ];
    let m = mirror(
        vec![mirror_cfg("docker.io", &hub.url, 300)],
        CacheConfig {
            max_bytes: Some(1_300_000),
            ..CacheConfig::default()
        },
    );
    let local = m
        .push_image("team/local", "v1", &[&shared, b"local only"])
        .await;
    pull(&m.router, "library/a", "", &imgs[0]).await;
    pull(&m.router, "library/b", "", &imgs[1]).await;
    // a + b = shared + two uniques ≈ 1.2 MB: fits.
    assert!(mirror_blob_exists(&m, &imgs[0].layer_digests[1]));
    pull(&m.router, "library/c", "", &imgs[2]).await;
    // Eviction runs when c's last blob is published, just after its client got the bytes.
    for _ in 0..100 {
        if !mirror_blob_exists(&m, &imgs[0].layer_digests[1]) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(m.registry.mirror().unwrap().cached_bytes() <= 1_300_000);
    // c pushed the total over: a (least recently used) goes, the shared layer stays for b.
    assert!(
        !mirror_blob_exists(&m, &imgs[0].layer_digests[1]),
        "a's own layer evicted"
    );
    assert!(
        mirror_blob_exists(&m, &shared_digest(&imgs[1])),
        "shared layer kept for b"
    );
    assert!(mirror_blob_exists(&m, &imgs[1].layer_digests[1]));
    // Local content is untouched, and a evicted pulls again.
    local.assert_intact(&m).await;
    pull(&m.router, "library/a", "", &imgs[0]).await;
    local.assert_intact(&m).await;
}

fn shared_digest(i: &Image) -> String {
    i.layer_digests[0].clone()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn an_upstream_with_token_auth_takes_the_configured_credentials() {
    let files = tempfile::tempdir().unwrap();
    let htpasswd = files.path().join("htpasswd");
    berth_registry::auth::htpasswd::add_user(&htpasswd, "mirror", "s3cret").unwrap();
    // The images are pushed before auth is switched on.
    let seed = Harness::new();
    let image = seed
        .push_image("library/private", "1", &[b"private layer"])
        .await;
    let data_dir = seed.tmp.path().to_owned();
    let hub = upstream_with(move |c| {
        c.data_dir = data_dir;
        c.auth = Some(AuthConfig {
            htpasswd: Some(htpasswd),
            anonymous_pull: false,
            token: Some(TokenConfig {
                issuer: "hub".into(),
                service: "hub-svc".into(),
                expiry_secs: 300,
                key: None,
                cert: None,
                realm: None,
                root_certificates: None,
            }),
            groups: Default::default(),
            access: vec![AccessRule {
                repositories: strings(&["**"]),
                users: strings(&["mirror"]),
                groups: Vec::new(),
                actions: strings(&["pull"]),
            }],
        });
    })
    .await;
    let mut good = mirror_cfg("docker.io", &hub.url, 300);
    good.username = Some("mirror".into());
    good.password = Some("s3cret".into());
    let m = mirror(vec![good], CacheConfig::default());
    // A client's own credentials are never what the upstream sees: it sends none here.
    pull(&m.router, "library/private", "", &image).await;
    assert!(
        hub.faults.count("GET", "/auth/token") >= 1,
        "{:?}",
        hub.faults.log.lock().unwrap()
    );
    let mut bad = mirror_cfg("docker.io", &hub.url, 300);
    bad.username = Some("mirror".into());
    bad.password = Some("wrong".into());
    let m2 = mirror(vec![bad], CacheConfig::default());
    let r = send_to(
        &m2.router,
        req(Method::GET, "/v2/library/private/manifests/1"),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert!(
        r.error_message()
            .contains("refused the mirror's credentials"),
        "{}",
        r.error_message()
    );
    // A token server whose answer never ends: refused after a bounded read.
    hub.faults.endless.store(true, Ordering::SeqCst);
    let mut good = mirror_cfg("docker.io", &hub.url, 300);
    good.username = Some("mirror".into());
    good.password = Some("s3cret".into());
    let m3 = mirror(vec![good], CacheConfig::default());
    let r = tokio::time::timeout(
        Duration::from_secs(30),
        send_to(
            &m3.router,
            req(Method::GET, "/v2/library/private/manifests/1"),
        ),
    )
    .await
    .expect("an endless token answer must be cut off, not read for ever");
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert!(
        r.error_message().contains("answered more than"),
        "{}",
        r.error_message()
    );
    drop(seed);
}

/// `[auth]` with a mirror: mirrored names (`ghcr.io/**` by path prefix, Docker Hub's `library/**`)
/// are anonymous-pull, local ones need credentials, and nobody may push over a mirrored name.
#[tokio::test]
async fn mirrored_names_can_be_anonymous_while_local_ones_need_credentials() {
    use base64::Engine as _;
    let hub = upstream().await;
    let ghcr = upstream().await;
    let tiny = hub.h.push_image("library/tiny", "1", &[b"tiny"]).await;
    let app = ghcr.h.push_image("org/app", "v1", &[b"app"]).await;
    let files = tempfile::tempdir().unwrap();
    let htpasswd = files.path().join("htpasswd");
    berth_registry::auth::htpasswd::add_user(&htpasswd, "dev", "pw").unwrap();
    let mut mirrors = vec![
        mirror_cfg("docker.io", &hub.url, 300),
        mirror_cfg("ghcr.io", &ghcr.url, 300),
    ];
    mirrors[0].default = true;
    let m = Harness::with(move |c| {
        c.mirrors = mirrors;
        c.auth = Some(AuthConfig {
            htpasswd: Some(htpasswd),
            anonymous_pull: false,
            token: None,
            groups: Default::default(),
            access: vec![
                AccessRule {
                    repositories: strings(&["ghcr.io/**", "library/**"]),
                    users: strings(&["anonymous", "*"]),
                    groups: Vec::new(),
                    actions: strings(&["pull"]),
                },
                AccessRule {
                    repositories: strings(&["team/**"]),
                    users: strings(&["dev"]),
                    groups: Vec::new(),
                    actions: strings(&["pull", "push"]),
                },
            ],
        });
    });
    // Anonymous pulls of mirrored names work.
    pull(&m.router, "library/tiny", "", &tiny).await;
    pull(&m.router, "ghcr.io/org/app", "", &app).await;
    // Local names need credentials.
    let r = send_to(&m.router, req(Method::GET, "/v2/team/app/manifests/v1")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("dev:pw")
    );
    let r = send_to(
        &m.router,
        common::req_with(
            Method::POST,
            "/v2/team/app/blobs/uploads/",
            &[("authorization", &basic)],
            None,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    // Nobody pushes over a mirrored name: the rules give only pull there.
    let r = send_to(
        &m.router,
        common::req_with(
            Method::POST,
            "/v2/library/tiny/blobs/uploads/",
            &[("authorization", &basic)],
            None,
        ),
    )
    .await;
    assert!(
        r.status == StatusCode::FORBIDDEN || r.status == StatusCode::UNAUTHORIZED,
        "{:?}",
        r.status
    );
}

/// The value of the sample `line_start` (name and labels) in a Prometheus exposition.
fn sample(text: &str, line_start: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(line_start)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sample `{line_start}` in\n{text}"))
}

#[tokio::test]
async fn metrics_count_hits_misses_upstream_bytes_and_errors_and_readyz_probes_upstreams() {
    // Upstream names of their own: the metrics are process-wide and other tests run beside.
    let up = upstream().await;
    let img =
        up.h.push_image("org/metered", "v1", &[b"metered layer one", b"two"])
            .await;
    let m = mirror(
        vec![mirror_cfg("metrics.test", &up.url, 300)],
        CacheConfig::default(),
    );
    let ready = m.get("/readyz").await;
    ready.expect(StatusCode::OK);
    assert_eq!(ready.json()["upstreams"]["metrics.test"], "ok");
    pull(&m.router, "org/metered", "", &img).await;
    // The fills publish (fsync, rename) just after their last byte: wait, so that the second
    // pull finds the blobs stored rather than joining a fill.
    for _ in 0..200 {
        let text = m.get("/metrics").await.text();
        if sample(&text, "berth_registry_mirror_fills_in_progress") == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    pull(&m.router, "org/metered", "", &img).await;
    let r = send_to(
        &m.router,
        req(Method::GET, "/v2/org/metered/manifests/nope"),
    )
    .await;
    r.expect(StatusCode::NOT_FOUND);

    let text = m.get("/metrics").await.text();
    let blobs = 1 + img.layers.len() as u64;
    let l = |family: &str, rest: &str| {
        format!("berth_registry_mirror_{family}{{upstream=\"metrics.test\"{rest}}}")
    };
    // First pull: the tag is fetched (a miss), the digest is then cached; every blob is a miss.
    // Second pull: all hits.
    assert_eq!(
        sample(&text, &l("misses_total", ",kind=\"manifest\"")),
        2,
        "tag + the missing tag"
    );
    assert_eq!(sample(&text, &l("hits_total", ",kind=\"manifest\"")), 3);
    assert_eq!(sample(&text, &l("misses_total", ",kind=\"blob\"")), blobs);
    assert_eq!(sample(&text, &l("hits_total", ",kind=\"blob\"")), blobs);
    let content: u64 = img.manifest.len() as u64
        + img.config.len() as u64
        + img.layers.iter().map(|x| x.len() as u64).sum::<u64>();
    assert_eq!(sample(&text, &l("upstream_bytes_total", "")), content);
    assert_eq!(
        sample(&text, &l("upstream_errors_total", ",reason=\"not_found\"")),
        1
    );
    assert!(sample(&text, "berth_registry_mirror_cache_bytes") > 0);
    assert!(!text.contains("org/metered"), "no repository labels");

    // An upstream that does not answer: /readyz says which, and a pull counts the error.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let m2 = mirror(
        vec![mirror_cfg("down.test", &dead, 300)],
        CacheConfig::default(),
    );
    let ready = m2.get("/readyz").await;
    ready.expect(StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.json()["upstreams"]["down.test"], "unreachable");
    assert!(
        ready.json()["error"]
            .as_str()
            .unwrap()
            .contains("`down.test`"),
        "{}",
        ready.json()
    );
    m2.get("/livez").await.expect(StatusCode::OK);
    let r = send_to(&m2.router, req(Method::GET, "/v2/org/metered/manifests/v1")).await;
    assert!(r.status.is_server_error(), "{}", r.status);
    let text = m2.get("/metrics").await.text();
    assert_eq!(
        sample(
            &text,
            "berth_registry_mirror_upstream_errors_total{upstream=\"down.test\",reason=\"unreachable\"}"
        ),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fills_past_the_cap_are_refused_with_retry_after() {
    let hub = upstream().await;
    let slow = pseudo_random(1_000_000, 11);
    let image = hub
        .h
        .push_image("library/capped", "1", &[&slow, b"second layer"])
        .await;
    *hub.faults.slow_ms.lock().unwrap() = 20;
    let m = mirror(
        vec![mirror_cfg("docker.io", &hub.url, 300)],
        CacheConfig {
            max_concurrent_fills: Some(1),
            ..CacheConfig::default()
        },
    );
    let (first, second) = (&image.layer_digests[0], &image.layer_digests[1]);
    // The first miss holds the only fill while the upstream trickles.
    let resp = m
        .router
        .clone()
        .oneshot(req(
            Method::GET,
            &format!("/v2/library/capped/blobs/{first}"),
        ))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let r = send_to(
        &m.router,
        req(Method::GET, &format!("/v2/library/capped/blobs/{second}")),
    )
    .await;
    common::assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS");
    assert!(r.header("retry-after").parse::<u64>().is_ok());
    assert!(
        r.error_message().contains("blob downloads from upstreams"),
        "{}",
        r.error_message()
    );
    // A second client of the same blob joins the fill rather than needing another.
    let joined = m
        .router
        .clone()
        .oneshot(req(
            Method::GET,
            &format!("/v2/library/capped/blobs/{first}"),
        ))
        .await
        .unwrap();
    assert_eq!(joined.status(), StatusCode::OK);
    *hub.faults.slow_ms.lock().unwrap() = 0;
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(sha256(&body), *first);
    let body = joined.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(sha256(&body), *first);
    // Once it is done, the other blob fills.
    for _ in 0..200 {
        if mirror_blob_exists(&m, first) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    pull(&m.router, "library/capped", "", &image).await;
    assert_eq!(hub.faults.count("GET", first), 1);
}

#[tokio::test]
async fn head_of_an_uncached_manifest_is_a_head_upstream_and_caches_nothing() {
    let hub = upstream().await;
    let image = hub.h.push_image("library/headed", "1", &[b"layer"]).await;
    let m = mirror(
        vec![mirror_cfg("docker.io", &hub.url, 300)],
        CacheConfig::default(),
    );
    // As Docker sends it: one `Accept` line per type.
    let head = |path: &str, types: &[&str]| {
        let mut b = axum::http::Request::builder()
            .method(Method::HEAD)
            .uri(path);
        for t in types {
            b = b.header("accept", *t);
        }
        b.body(Body::empty()).unwrap()
    };
    let docker = [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
    ];
    let r = send_to(&m.router, head("/v2/library/headed/manifests/1", &docker)).await;
    r.expect(StatusCode::OK);
    assert_eq!(r.header("docker-content-digest"), image.digest);
    assert_eq!(r.header("content-length"), image.manifest.len().to_string());
    assert!(r.body.is_empty());
    assert_eq!(
        hub.faults.count("HEAD", "/v2/library/headed/manifests/1"),
        1
    );
    assert_eq!(
        hub.faults.count("GET", "/manifests/1"),
        0,
        "no GET for a HEAD"
    );
    assert!(!m
        .tmp
        .path()
        .join("_mirror/repositories/docker.io/library/headed")
        .exists());
    // A HEAD of a missing tag is a 404, remembered for a while.
    let r = send_to(&m.router, head("/v2/library/headed/manifests/2", &docker)).await;
    r.expect(StatusCode::NOT_FOUND);
    // A client that accepts only another type is not answered from the upstream's HEAD: the
    // GET path fetches and negotiates (an image manifest is not an index: not found), and
    // caches the tag.
    let index = ["application/vnd.oci.image.index.v1+json"];
    let r = send_to(&m.router, head("/v2/library/headed/manifests/1", &index)).await;
    assert_ne!(r.status, StatusCode::OK, "no index to offer");
    assert_eq!(hub.faults.count("GET", "/manifests/1"), 1, "the GET path");
    // Pulls are served from what that GET cached; later HEADs are answered locally.
    pull(&m.router, "library/headed", "", &image).await;
    let before = hub.faults.total();
    let r = send_to(&m.router, head("/v2/library/headed/manifests/1", &docker)).await;
    r.expect(StatusCode::OK);
    assert_eq!(r.header("docker-content-digest"), image.digest);
    assert_eq!(hub.faults.total(), before);
}

#[tokio::test]
async fn tag_pages_link_back_to_the_mirror_under_the_name_the_client_used() {
    let ghcr = upstream().await;
    let mut images = Vec::new();
    for tag in ["a", "b", "c", "d", "e"] {
        images.push(ghcr.h.push_image("org/app", tag, &[tag.as_bytes()]).await);
    }
    let m = mirror(
        vec![mirror_cfg("ghcr.io", &ghcr.url, 300)],
        CacheConfig::default(),
    );
    let page = |path: String| {
        let router = m.router.clone();
        async move {
            let r = send_to(&router, req(Method::GET, &path)).await;
            r.expect(StatusCode::OK);
            let link = r.header_opt("link").unwrap_or_default().to_owned();
            (r.json(), link)
        }
    };
    // `?ns=`: the upstream's `Link` comes back pointing here, with the same `ns`.
    let (body, link) = page("/v2/org/app/tags/list?ns=ghcr.io&n=2".into()).await;
    assert_eq!(body["name"], "org/app");
    assert_eq!(body["tags"], serde_json::json!(["a", "b"]));
    assert_eq!(
        link,
        r#"</v2/org/app/tags/list?n=2&last=b&ns=ghcr.io>; rel="next""#
    );
    let (body, link) = page("/v2/org/app/tags/list?n=2&last=b&ns=ghcr.io".into()).await;
    assert_eq!(body["tags"], serde_json::json!(["c", "d"]));
    assert_eq!(
        link,
        r#"</v2/org/app/tags/list?n=2&last=d&ns=ghcr.io>; rel="next""#
    );
    let (body, link) = page("/v2/org/app/tags/list?n=2&last=d&ns=ghcr.io".into()).await;
    assert_eq!(body["tags"], serde_json::json!(["e"]));
    assert_eq!(link, "", "no page after the last");
    // A host prefix: the same pages under the prefixed name.
    let (body, link) = page("/v2/ghcr.io/org/app/tags/list?n=3".into()).await;
    assert_eq!(body["name"], "ghcr.io/org/app");
    assert_eq!(body["tags"], serde_json::json!(["a", "b", "c"]));
    assert_eq!(
        link,
        r#"</v2/ghcr.io/org/app/tags/list?n=3&last=c>; rel="next""#
    );
    // A bad `n` is refused here, as for local names, without asking the upstream.
    let before = ghcr.faults.total();
    let r = send_to(
        &m.router,
        req(Method::GET, "/v2/org/app/tags/list?ns=ghcr.io&n=x"),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(ghcr.faults.total(), before);
    // Upstream down: the cached tags, paginated here the same way.
    for image in &images[..3] {
        pull(&m.router, "org/app", "?ns=ghcr.io", image).await;
    }
    // A tag list that never ends is cut off and answered from the cache, like an outage.
    ghcr.faults.endless.store(true, Ordering::SeqCst);
    let (body, _) = tokio::time::timeout(
        Duration::from_secs(30),
        page("/v2/org/app/tags/list?ns=ghcr.io".into()),
    )
    .await
    .expect("an endless tag list must be cut off, not read for ever");
    assert_eq!(body["tags"], serde_json::json!(["a", "b", "c"]));
    ghcr.faults.endless.store(false, Ordering::SeqCst);
    ghcr.faults.down.store(true, Ordering::SeqCst);
    let (body, link) = page("/v2/org/app/tags/list?ns=ghcr.io&n=2".into()).await;
    assert_eq!(body["tags"], serde_json::json!(["a", "b"]));
    assert_eq!(
        link,
        r#"</v2/org/app/tags/list?n=2&last=b&ns=ghcr.io>; rel="next""#
    );
    let (body, link) = page("/v2/org/app/tags/list?n=2&last=b&ns=ghcr.io".into()).await;
    assert_eq!(body["tags"], serde_json::json!(["c"]));
    assert_eq!(link, "");
}
