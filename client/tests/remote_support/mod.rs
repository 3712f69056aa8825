//! A fake registry (axum on `127.0.0.1:0`) for the `remote` client tests: blobs, manifests,
//! uploads, mounts, paginated tags and catalog, Basic or Bearer auth with a token service on
//! another host (`localhost`), and injected failures (5xx, 429, wrong digests, blob redirects
//! to a storage host). Every request is logged with its `Authorization` header.

#![allow(dead_code, clippy::missing_panics_doc)]

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use base64::Engine as _;
use berth_client::remote::{Credentials, RemoteOptions};
use berth_config::DaemonConfig;
use sha2::Digest as _;

/// `sha256:<hex>`.
pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

/// How the fake authenticates.
#[derive(Clone, Debug, Default)]
pub enum AuthMode {
    /// Everything open.
    #[default]
    None,
    /// `WWW-Authenticate: Basic`; these credentials only.
    Basic { user: String, pass: String },
    /// `WWW-Authenticate: Bearer` with a token service on `localhost:<auth port>`; these
    /// credentials, or anonymous pulls when `anonymous_pull`.
    Bearer {
        user: String,
        pass: String,
        anonymous_pull: bool,
    },
}

/// One logged request.
#[derive(Clone, Debug)]
pub struct Logged {
    pub method: String,
    pub path_and_query: String,
    pub authorization: Option<String>,
    pub headers: HeaderMap,
}

/// Failures to inject.
#[derive(Default)]
pub struct Faults {
    /// Answer this many requests with 503 first.
    pub fail_5xx: AtomicU32,
    /// Answer this many requests with 429 first.
    pub fail_429: AtomicU32,
    /// `Retry-After` seconds sent with 429.
    pub retry_after: AtomicU32,
    /// Send a wrong `Docker-Content-Digest` with manifests.
    pub wrong_digest: std::sync::atomic::AtomicBool,
    /// Serve a manifest body that does not match its digest.
    pub corrupt_manifest: std::sync::atomic::AtomicBool,
    /// Redirect blob GETs to the storage host.
    pub redirect_blobs: std::sync::atomic::AtomicBool,
    /// The storage host ignores `Range`.
    pub storage_ignores_range: std::sync::atomic::AtomicBool,
    /// Page size of tags and catalog listings.
    pub page_size: AtomicU32,
}

#[derive(Default)]
pub struct Data {
    pub blobs: HashMap<String, Bytes>,
    /// (repo, reference) -> (media type, bytes)
    pub manifests: HashMap<(String, String), (String, Bytes)>,
    pub tags: BTreeMap<String, Vec<String>>,
    /// upload id -> (repo, bytes so far)
    pub uploads: HashMap<String, (String, Vec<u8>)>,
    pub cancelled: Vec<String>,
}

pub struct Inner {
    pub auth: AuthMode,
    pub faults: Faults,
    pub data: Mutex<Data>,
    pub log: Mutex<Vec<Logged>>,
    pub token_log: Mutex<Vec<Logged>>,
    pub storage_log: Mutex<Vec<Logged>>,
    pub token_requests: AtomicU32,
    pub auth_addr: Mutex<Option<SocketAddr>>,
    pub storage_addr: Mutex<Option<SocketAddr>>,
    next_id: AtomicU32,
}

/// A running fake registry with its token service and storage host.
#[derive(Clone)]
pub struct Fake {
    pub addr: SocketAddr,
    pub inner: Arc<Inner>,
}

pub const SERVICE: &str = "fake-registry";

impl Fake {
    /// Starts the registry on `127.0.0.1:0`, plus token service and storage on `localhost`.
    pub async fn start(auth: AuthMode) -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap(), auth).await
    }

    /// Starts the registry on a given address.
    pub async fn start_on(bind: SocketAddr, auth: AuthMode) -> Self {
        let inner = Arc::new(Inner {
            auth,
            faults: Faults::default(),
            data: Mutex::new(Data::default()),
            log: Mutex::new(Vec::new()),
            token_log: Mutex::new(Vec::new()),
            storage_log: Mutex::new(Vec::new()),
            token_requests: AtomicU32::new(0),
            auth_addr: Mutex::new(None),
            storage_addr: Mutex::new(None),
            next_id: AtomicU32::new(0),
        });
        let aux = serve(
            "127.0.0.1:0".parse().unwrap(),
            Router::new()
                .route("/token", any(token))
                .route("/storage/{digest}", any(storage))
                .with_state(inner.clone()),
        )
        .await;
        *inner.auth_addr.lock().unwrap() = Some(aux);
        *inner.storage_addr.lock().unwrap() = Some(aux);
        let app = Router::new()
            .route("/v2/", any(registry))
            .route("/v2/{*rest}", any(registry))
            .route("/v1/{*rest}", any(not_found))
            .layer(DefaultBodyLimit::disable())
            .with_state(inner.clone());
        let addr = serve(bind, app).await;
        Self { addr, inner }
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds a blob to the store.
    pub fn put_blob(&self, data: &[u8]) -> String {
        let d = sha256(data);
        self.inner
            .data
            .lock()
            .unwrap()
            .blobs
            .insert(d.clone(), Bytes::copy_from_slice(data));
        d
    }

    /// Adds a manifest under its digest and `tag`.
    pub fn put_manifest(&self, repo: &str, tag: &str, media_type: &str, data: &[u8]) -> String {
        let d = sha256(data);
        let mut g = self.inner.data.lock().unwrap();
        let v = (media_type.to_owned(), Bytes::copy_from_slice(data));
        g.manifests.insert((repo.into(), d.clone()), v.clone());
        g.manifests.insert((repo.into(), tag.into()), v);
        g.tags.entry(repo.into()).or_default().push(tag.into());
        d
    }

    pub fn log(&self) -> Vec<Logged> {
        self.inner.log.lock().unwrap().clone()
    }

    pub fn storage_log(&self) -> Vec<Logged> {
        self.inner.storage_log.lock().unwrap().clone()
    }

    pub fn token_log(&self) -> Vec<Logged> {
        self.inner.token_log.lock().unwrap().clone()
    }
}

async fn serve(bind: SocketAddr, app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    addr
}

/// Options with the given credentials (in memory, nothing of the user's read) and daemon.json.
pub fn options(daemon_json: &str, creds: &[(&str, &str, &str)]) -> RemoteOptions {
    let daemon = DaemonConfig::parse(std::path::Path::new("daemon.json"), daemon_json).unwrap();
    let dir = std::env::temp_dir().join(format!("berth-remote-test-{}", uuid_like()));
    let mut c = Credentials::load_from(dir.join("config.json"), None).unwrap();
    for (host, user, pass) in creds {
        c.insert(host, user, pass);
    }
    RemoteOptions::new(&daemon, c)
}

fn uuid_like() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn logged(method: &Method, uri: &Uri, headers: &HeaderMap) -> Logged {
    Logged {
        method: method.to_string(),
        path_and_query: uri
            .path_and_query()
            .map(ToString::to_string)
            .unwrap_or_default(),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        headers: headers.clone(),
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        [("content-type", "application/json")],
        format!(r#"{{"errors":[{{"code":"{code}","message":"{message}","detail":null}}]}}"#),
    )
        .into_response()
}

fn basic_ok(headers: &HeaderMap, user: &str, pass: &str) -> bool {
    let want = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    );
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == want)
}

/// Token service: checks `service`, collects `scope`s, checks Basic credentials.
async fn token(
    State(s): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    s.token_requests.fetch_add(1, Ordering::SeqCst);
    s.token_log
        .lock()
        .unwrap()
        .push(logged(&method, &uri, &headers));
    let AuthMode::Bearer { user, pass, .. } = &s.auth else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let query = uri.query().unwrap_or("");
    let mut service = None;
    let mut scopes = Vec::new();
    for (k, v) in url_pairs(query) {
        match k.as_str() {
            "service" => service = Some(v),
            "scope" => scopes.push(v),
            _ => {}
        }
    }
    if service.as_deref() != Some(SERVICE) {
        return (StatusCode::BAD_REQUEST, r#"{"details":"wrong service"}"#).into_response();
    }
    let who = if headers.contains_key("authorization") {
        if !basic_ok(&headers, user, pass) {
            return (
                StatusCode::UNAUTHORIZED,
                [("content-type", "application/json")],
                r#"{"details":"incorrect username or password"}"#,
            )
                .into_response();
        }
        "user"
    } else {
        "anon"
    };
    let token = format!("tok|{who}|{}", scopes.join(" "));
    let body = serde_json::json!({"access_token": token, "expires_in": 300});
    axum::Json(body).into_response()
}

fn url_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let s = s.replace('+', " ");
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// Storage host: serves blobs (honouring `Range` unless told not to), logs `Authorization`.
async fn storage(
    State(s): State<Arc<Inner>>,
    axum::extract::Path(digest): axum::extract::Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    s.storage_log
        .lock()
        .unwrap()
        .push(logged(&method, &uri, &headers));
    let Some(data) = s.data.lock().unwrap().blobs.get(&digest).cloned() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    serve_bytes(&s, &headers, data)
}

fn serve_bytes(s: &Inner, headers: &HeaderMap, data: Bytes) -> Response {
    let range = headers
        .get("range")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.strip_suffix('-'))
        .and_then(|v| v.parse::<usize>().ok());
    match range {
        // As Go's `http.ServeContent` (distribution) and berth-registry: a range starting at or
        // past the end cannot be satisfied.
        Some(start) if start >= data.len() => (
            StatusCode::RANGE_NOT_SATISFIABLE,
            [("content-range", format!("bytes */{}", data.len()))],
        )
            .into_response(),
        Some(start) if !s.faults.storage_ignores_range.load(Ordering::SeqCst) => {
            let total = data.len();
            (
                StatusCode::PARTIAL_CONTENT,
                [(
                    "content-range",
                    format!("bytes {start}-{}/{total}", total - 1),
                )],
                data.slice(start..),
            )
                .into_response()
        }
        _ => (StatusCode::OK, data).into_response(),
    }
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "NOT_FOUND", "no v1 here")
}

/// Which access a request needs: (repo or "catalog", push?).
fn needed(method: &Method, rest: &str) -> Option<(String, bool)> {
    if rest.is_empty() {
        return None;
    }
    if rest == "_catalog" {
        return Some(("catalog".into(), false));
    }
    let push = !matches!(*method, Method::GET | Method::HEAD);
    for marker in ["/manifests/", "/blobs/", "/tags/"] {
        if let Some(i) = rest.find(marker) {
            return Some((rest[..i].to_owned(), push));
        }
    }
    None
}

/// Whether the request's credentials allow it; `Err(response)` with the challenge otherwise.
#[allow(clippy::result_large_err)]
fn authorize(s: &Inner, method: &Method, rest: &str, headers: &HeaderMap) -> Result<(), Response> {
    match &s.auth {
        AuthMode::None => Ok(()),
        AuthMode::Basic { user, pass } => {
            if basic_ok(headers, user, pass) {
                Ok(())
            } else {
                let mut r = error(
                    StatusCode::UNAUTHORIZED,
                    "UNAUTHORIZED",
                    "authentication required",
                );
                r.headers_mut().insert(
                    "www-authenticate",
                    HeaderValue::from_static("Basic realm=\"fake\""),
                );
                Err(r)
            }
        }
        AuthMode::Bearer { anonymous_pull, .. } => {
            let need = needed(method, rest);
            let scope = match &need {
                None => None,
                Some((r, _)) if r == "catalog" => Some("registry:catalog:*".to_owned()),
                Some((r, true)) => Some(format!("repository:{r}:pull,push")),
                Some((r, false)) => Some(format!("repository:{r}:pull")),
            };
            let token = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            let ok = token.is_some_and(|t| {
                let mut parts = t.splitn(3, '|');
                let (Some("tok"), Some(who), Some(scopes)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    return false;
                };
                let push = need.as_ref().is_some_and(|n| n.1);
                if who == "anon" && (!anonymous_pull || push) {
                    return false;
                }
                match &scope {
                    None => true,
                    Some(sc) => scopes.split(' ').any(|g| {
                        g == sc
                            || sc
                                .strip_suffix(":pull")
                                .is_some_and(|base| g == format!("{base}:pull,push"))
                    }),
                }
            });
            if ok {
                return Ok(());
            }
            let realm = format!(
                "http://localhost:{}/token",
                s.auth_addr.lock().unwrap().unwrap().port()
            );
            let mut challenge = format!("Bearer realm=\"{realm}\",service=\"{SERVICE}\"");
            if let Some(sc) = scope {
                challenge.push_str(&format!(",scope=\"{sc}\""));
            }
            let mut r = error(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "authentication required",
            );
            r.headers_mut().insert(
                "www-authenticate",
                HeaderValue::from_str(&challenge).unwrap(),
            );
            Err(r)
        }
    }
}

async fn registry(
    State(s): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    s.log.lock().unwrap().push(logged(&method, &uri, &headers));
    let rest = uri
        .path()
        .trim_start_matches("/v2/")
        .trim_start_matches("/v2")
        .to_owned();
    if let Err(r) = authorize(&s, &method, &rest, &headers) {
        return r;
    }
    if s.faults.fail_5xx.load(Ordering::SeqCst) > 0 && !rest.is_empty() {
        s.faults.fail_5xx.fetch_sub(1, Ordering::SeqCst);
        return error(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", "try later");
    }
    if s.faults.fail_429.load(Ordering::SeqCst) > 0 && !rest.is_empty() {
        s.faults.fail_429.fetch_sub(1, Ordering::SeqCst);
        let mut r = error(
            StatusCode::TOO_MANY_REQUESTS,
            "TOOMANYREQUESTS",
            "slow down",
        );
        r.headers_mut().insert(
            "retry-after",
            HeaderValue::from(s.faults.retry_after.load(Ordering::SeqCst)),
        );
        return r;
    }
    if rest.is_empty() {
        return (StatusCode::OK, "{}").into_response();
    }
    if rest == "_catalog" {
        let repos: Vec<String> = s.data.lock().unwrap().tags.keys().cloned().collect();
        return page(&s, &uri, "/v2/_catalog", "repositories", repos, None);
    }
    let query = url_pairs(uri.query().unwrap_or(""));
    let q = |k: &str| query.iter().find(|(kk, _)| kk == k).map(|(_, v)| v.clone());
    if let Some((repo, tail)) = rest.split_once("/manifests/") {
        return manifests(&s, &method, repo, tail, &headers, body);
    }
    if let Some(repo) = rest.strip_suffix("/tags/list") {
        let tags = s.data.lock().unwrap().tags.get(repo).cloned();
        let Some(mut tags) = tags else {
            return error(
                StatusCode::NOT_FOUND,
                "NAME_UNKNOWN",
                "repository name not known to registry",
            );
        };
        tags.sort();
        return page(
            &s,
            &uri,
            &format!("/v2/{repo}/tags/list"),
            "tags",
            tags,
            Some(repo),
        );
    }
    if let Some((repo, tail)) = rest.split_once("/blobs/uploads") {
        let id = tail.trim_start_matches('/');
        return uploads(&s, &method, repo, id, &headers, body, &q);
    }
    if let Some((_repo, digest)) = rest.split_once("/blobs/") {
        let data = s.data.lock().unwrap().blobs.get(digest).cloned();
        let Some(data) = data else {
            return error(
                StatusCode::NOT_FOUND,
                "BLOB_UNKNOWN",
                "blob unknown to registry",
            );
        };
        if method == Method::HEAD {
            return (
                StatusCode::OK,
                [
                    ("content-length", data.len().to_string()),
                    ("docker-content-digest", digest.to_owned()),
                ],
            )
                .into_response();
        }
        if s.faults.redirect_blobs.load(Ordering::SeqCst) {
            let port = s.storage_addr.lock().unwrap().unwrap().port();
            return (
                StatusCode::TEMPORARY_REDIRECT,
                [(
                    "location",
                    format!("http://localhost:{port}/storage/{digest}"),
                )],
            )
                .into_response();
        }
        return serve_bytes(&s, &headers, data);
    }
    error(StatusCode::NOT_FOUND, "NOT_FOUND", "unknown route")
}

fn page(
    s: &Inner,
    uri: &Uri,
    path: &str,
    field: &str,
    mut items: Vec<String>,
    name: Option<&str>,
) -> Response {
    let query = url_pairs(uri.query().unwrap_or(""));
    let last = query
        .iter()
        .find(|(k, _)| k == "last")
        .map(|(_, v)| v.clone());
    let n = query
        .iter()
        .find(|(k, _)| k == "n")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(s.faults.page_size.load(Ordering::SeqCst).max(1) as usize);
    items.sort();
    if let Some(l) = last {
        items.retain(|t| *t > l);
    }
    let more = items.len() > n;
    items.truncate(n);
    let mut body = serde_json::json!({ field: items });
    if let Some(name) = name {
        body["name"] = name.into();
    }
    let mut r = axum::Json(body).into_response();
    if more {
        let link = format!(
            "<{path}?n={n}&last={}>; rel=\"next\"",
            items.last().unwrap()
        );
        r.headers_mut()
            .insert("link", HeaderValue::from_str(&link).unwrap());
    }
    r
}

fn manifests(
    s: &Inner,
    method: &Method,
    repo: &str,
    reference: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    if *method == Method::PUT {
        let media_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let d = sha256(&body);
        let mut g = s.data.lock().unwrap();
        g.manifests
            .insert((repo.into(), d.clone()), (media_type.clone(), body.clone()));
        if !reference.starts_with("sha256:") {
            g.manifests
                .insert((repo.into(), reference.into()), (media_type, body));
            g.tags
                .entry(repo.into())
                .or_default()
                .push(reference.into());
        }
        return (
            StatusCode::CREATED,
            [
                ("docker-content-digest", d.clone()),
                ("location", format!("/v2/{repo}/manifests/{d}")),
            ],
        )
            .into_response();
    }
    let found = s
        .data
        .lock()
        .unwrap()
        .manifests
        .get(&(repo.to_owned(), reference.to_owned()))
        .cloned();
    let Some((media_type, mut bytes)) = found else {
        return error(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            "manifest unknown",
        );
    };
    let mut digest = sha256(&bytes);
    if s.faults.wrong_digest.load(Ordering::SeqCst) {
        digest = sha256(b"something else");
    }
    if s.faults.corrupt_manifest.load(Ordering::SeqCst) {
        let mut v = bytes.to_vec();
        v.extend_from_slice(b" ");
        bytes = v.into();
        if !s.faults.wrong_digest.load(Ordering::SeqCst) {
            // Announce nothing, so only the requested digest can catch it.
            return (StatusCode::OK, [("content-type", media_type)], bytes).into_response();
        }
    }
    let len = bytes.len();
    let hdrs = [
        ("content-type", media_type),
        ("docker-content-digest", digest),
        ("content-length", len.to_string()),
    ];
    if *method == Method::HEAD {
        return (StatusCode::OK, hdrs).into_response();
    }
    (StatusCode::OK, hdrs, bytes).into_response()
}

fn uploads(
    s: &Inner,
    method: &Method,
    repo: &str,
    id: &str,
    headers: &HeaderMap,
    body: Bytes,
    q: &dyn Fn(&str) -> Option<String>,
) -> Response {
    let mut g = s.data.lock().unwrap();
    match (method.as_str(), id.is_empty()) {
        ("POST", true) => {
            if let (Some(d), Some(_from)) = (q("mount"), q("from")) {
                if g.blobs.contains_key(&d) {
                    return (
                        StatusCode::CREATED,
                        [("location", format!("/v2/{repo}/blobs/{d}"))],
                    )
                        .into_response();
                }
            }
            let id = format!("u{}", s.next_id.fetch_add(1, Ordering::SeqCst));
            g.uploads.insert(id.clone(), (repo.to_owned(), Vec::new()));
            (
                StatusCode::ACCEPTED,
                [
                    (
                        "location",
                        format!("/v2/{repo}/blobs/uploads/{id}?_state=x"),
                    ),
                    ("range", "0-0".into()),
                ],
            )
                .into_response()
        }
        ("PATCH", false) => {
            let Some((_, data)) = g.uploads.get_mut(id) else {
                return error(
                    StatusCode::NOT_FOUND,
                    "BLOB_UPLOAD_UNKNOWN",
                    "upload unknown",
                );
            };
            if let Some(range) = headers.get("content-range").and_then(|v| v.to_str().ok()) {
                let (start, end) = range.split_once('-').unwrap();
                let (start, end): (usize, usize) = (start.parse().unwrap(), end.parse().unwrap());
                if start != data.len() || end + 1 - start != body.len() {
                    return error(
                        StatusCode::RANGE_NOT_SATISFIABLE,
                        "BLOB_UPLOAD_INVALID",
                        "bad range",
                    );
                }
            }
            data.extend_from_slice(&body);
            let end = data.len().saturating_sub(1);
            (
                StatusCode::ACCEPTED,
                [
                    (
                        "location",
                        format!("/v2/{repo}/blobs/uploads/{id}?_state=y"),
                    ),
                    ("range", format!("0-{end}")),
                ],
            )
                .into_response()
        }
        ("PUT", false) => {
            let Some((_, mut data)) = g.uploads.remove(id) else {
                return error(
                    StatusCode::NOT_FOUND,
                    "BLOB_UPLOAD_UNKNOWN",
                    "upload unknown",
                );
            };
            data.extend_from_slice(&body);
            let Some(d) = q("digest") else {
                return error(StatusCode::BAD_REQUEST, "DIGEST_INVALID", "no digest");
            };
            if sha256(&data) != d {
                return error(
                    StatusCode::BAD_REQUEST,
                    "DIGEST_INVALID",
                    "provided digest did not match uploaded content",
                );
            }
            g.blobs.insert(d.clone(), data.into());
            (
                StatusCode::CREATED,
                [
                    ("docker-content-digest", d.clone()),
                    ("location", format!("/v2/{repo}/blobs/{d}")),
                ],
            )
                .into_response()
        }
        ("DELETE", false) => {
            g.uploads.remove(id);
            g.cancelled.push(id.to_owned());
            StatusCode::NO_CONTENT.into_response()
        }
        _ => error(StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED", "unsupported"),
    }
}
