//! [`Client`]: one registry endpoint, and the request loop every operation goes through
//! (authentication, retries with backoff, error mapping). The operations themselves live in
//! `fetch.rs` (reads) and `upload.rs` (writes).

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use reqwest::header::{HeaderMap, AUTHORIZATION, RETRY_AFTER, USER_AGENT, WWW_AUTHENTICATE};
use reqwest::{Method, Response, StatusCode, Url};

use super::auth::{self, AuthState, Challenge, Scope};
use super::endpoint::{api_host, canonical_registry, is_insecure, validate_host};
use super::error::{self, RemoteError, Result};
use super::{is_docker_hub, RemoteOptions, DOCKER_HUB_INDEX};

/// First retry delay; doubled on each retry up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// Longest delay between two attempts (unless `Retry-After` asks for more, up to
/// [`MAX_RETRY_AFTER`]).
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Longest `Retry-After` we wait for; a longer one fails at once with `TooManyRequests`.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
/// TCP + TLS connection timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// No bytes for this long on a connection is a failure (there is no overall timeout, so big
/// blobs can take as long as they need).
const READ_TIMEOUT: Duration = Duration::from_secs(120);
/// Largest error body we read.
const MAX_ERROR_BODY: usize = 64 << 10;

/// A connection to one registry endpoint: the upstream (`Client::connect`) or a mirror
/// (`Client::mirror`). Cheap to clone; clones share the token cache and connection pool, so one
/// client can serve concurrent layer downloads.
#[derive(Clone)]
pub struct Client {
    pub(super) inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base_str)
            .field("registry", &self.inner.registry)
            .finish_non_exhaustive()
    }
}

pub(super) struct Inner {
    pub(super) http: reqwest::Client,
    /// `scheme://host[:port]`, no trailing slash.
    pub(super) base: Url,
    pub(super) base_str: String,
    /// Logical registry (`docker.io`, `host:port`, or the mirror's `host:port`).
    pub(super) registry: String,
    /// Where Docker's v1 search lives (Docker Hub's index), else the base.
    pub(super) index: Url,
    /// `ns=` sent with every request to a mirror (containerd's convention, which berth-registry
    /// follows): the registry the mirror should fetch from.
    pub(super) ns: Option<String>,
    credentials: Option<(String, String)>,
    user_agent: String,
    pub(super) attempts: u32,
    /// Bytes per `PATCH` of a chunked upload.
    pub(super) chunk_size: std::sync::atomic::AtomicU64,
    daemon: berth_config::DaemonConfig,
    auth: Mutex<AuthState>,
}

/// The shared HTTP client for verified (`true`) or unverified TLS: one connection pool each.
fn http_client(host: &str, verify: bool) -> Result<reqwest::Client> {
    static VERIFIED: OnceLock<reqwest::Client> = OnceLock::new();
    static UNVERIFIED: OnceLock<reqwest::Client> = OnceLock::new();
    static PER_HOST: OnceLock<Mutex<std::collections::HashMap<String, reqwest::Client>>> =
        OnceLock::new();
    let builder = || {
        reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .tcp_keepalive(Duration::from_secs(30))
            .danger_accept_invalid_certs(!verify)
    };
    let build = |b: reqwest::ClientBuilder| {
        b.build().map_err(|source| RemoteError::Transport {
            url: String::new(),
            source,
        })
    };
    // A registry with its own CA or client certificate (certs.d) gets a client of its own
    // (the client certificate also when the server's is not verified: an insecure registry
    // may still want mutual TLS).
    if let Some(certs) = super::certs::for_host(host)? {
        let key = format!("{host} {verify}");
        let cache = PER_HOST.get_or_init(Mutex::default);
        if let Some(c) = cache.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(c);
        }
        tracing::debug!(host, dir = %certs.dir.display(), "using the registry's certificates");
        let mut b = builder();
        for root in certs.roots {
            b = b.add_root_certificate(root);
        }
        if let Some(id) = certs.identity {
            b = b.identity(id);
        }
        let c = build(b)?;
        if let Ok(mut m) = cache.lock() {
            m.insert(key, c.clone());
        }
        return Ok(c);
    }
    let cell = if verify { &VERIFIED } else { &UNVERIFIED };
    if let Some(c) = cell.get() {
        return Ok(c.clone());
    }
    let c = build(builder())?;
    Ok(cell.get_or_init(|| c).clone())
}

/// `HOST[:PORT]` of a URL, as `certs.d` names its folders.
fn host_port(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        _ => String::new(),
    }
}

/// How a request may be repeated.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Replay {
    /// The body can be rebuilt: retry on failures and after authenticating.
    Yes,
    /// A streamed body: one attempt only.
    No,
}

impl Client {
    /// A client for the registry `registry_host` (`host[:port]`, or `docker.io` and its aliases,
    /// which use `https://registry-1.docker.io`). Uses verified HTTPS; for insecure hosts
    /// ([`berth_config::DaemonConfig::is_insecure`], loopback always) HTTPS without verification
    /// first, then plain HTTP. Pings `/v2/` to choose, and to learn the auth challenge.
    ///
    /// # Errors
    /// [`RemoteError::InsecureRefused`] for a plain-HTTP registry that is not listed as
    /// insecure, [`RemoteError::Transport`] when nothing answers.
    pub async fn connect(registry_host: &str, opts: &RemoteOptions) -> Result<Client> {
        Self::connect_with(registry_host, opts, None).await
    }

    /// Like [`Client::connect`], but authenticating with `credentials` instead of the stored
    /// ones (what `berth login` checks before storing them).
    ///
    /// # Errors
    /// As [`Client::connect`].
    pub async fn connect_as(
        registry_host: &str,
        opts: &RemoteOptions,
        user: &str,
        pass: &str,
    ) -> Result<Client> {
        Self::connect_with(
            registry_host,
            opts,
            Some((user.to_owned(), pass.to_owned())),
        )
        .await
    }

    async fn connect_with(
        registry_host: &str,
        opts: &RemoteOptions,
        credentials: Option<(String, String)>,
    ) -> Result<Client> {
        let registry = canonical_registry(registry_host);
        validate_host(&registry)?;
        let host = api_host(&registry);
        let credentials = credentials.or_else(|| opts.credentials.get(&registry));
        let insecure = is_insecure(&host, &opts.daemon).await;
        let index = if is_docker_hub(&registry) {
            Some(format!("https://{DOCKER_HUB_INDEX}"))
        } else {
            None
        };
        let make = |scheme: &str, verify: bool| {
            Self::build(
                &format!("{scheme}://{host}"),
                &registry,
                index.as_deref(),
                credentials.clone(),
                opts,
                verify,
            )
        };
        let mut delay = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            let outcome = if insecure {
                let https = make("https", false)?;
                match https.probe().await {
                    Ok(()) => Ok(https),
                    Err(tls) => {
                        let http = make("http", true)?;
                        match http.probe().await {
                            Ok(()) => Ok(http),
                            Err(_) => Err(tls),
                        }
                    }
                }
            } else {
                let https = make("https", true)?;
                match https.probe().await {
                    Ok(()) => Ok(https),
                    Err(RemoteError::Transport { url, source }) => {
                        // Tell "speaks plain HTTP" apart from "down".
                        let http = make("http", true)?;
                        if http.probe().await.is_ok() {
                            return Err(RemoteError::InsecureRefused {
                                url,
                                registry: registry.clone(),
                                source,
                            });
                        }
                        Err(RemoteError::Transport { url, source })
                    }
                    Err(e) => Err(e),
                }
            };
            match outcome {
                Err(e) if e.is_retryable() && attempt < opts.daemon.max_download_attempts => {
                    tracing::debug!(registry, attempt, error = %e, "registry not reachable; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(MAX_BACKOFF);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// A client for a mirror base URL from `daemon.json` (`https://mirror:5000`). The upstream's
    /// credentials are never sent to it; only credentials stored for the mirror's own
    /// `host[:port]` are. HTTPS is verified unless the mirror's host is insecure.
    ///
    /// # Errors
    /// [`RemoteError::InvalidAddress`] for a bad URL, [`RemoteError::Transport`] when it does not
    /// answer.
    pub async fn mirror(url: &str, opts: &RemoteOptions) -> Result<Client> {
        let parsed = Url::parse(url).map_err(|e| RemoteError::InvalidAddress {
            address: url.to_owned(),
            reason: e.to_string(),
        })?;
        let Some(host) = parsed.host_str() else {
            return Err(RemoteError::InvalidAddress {
                address: url.to_owned(),
                reason: "the URL has no host".into(),
            });
        };
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(RemoteError::InvalidAddress {
                address: url.to_owned(),
                reason: "mirrors are http:// or https:// URLs".into(),
            });
        }
        let host_port = match parsed.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_owned(),
        };
        let verify = parsed.scheme() == "http" || !is_insecure(&host_port, &opts.daemon).await;
        let credentials = opts.credentials.get(&host_port);
        let base = format!("{}://{host_port}", parsed.scheme());
        let mut client = Self::build(&base, &host_port, None, credentials, opts, verify)?;
        let ns = parsed
            .query_pairs()
            .find(|(k, _)| k == "ns")
            .map(|(_, v)| v.into_owned());
        if let Some(inner) = Arc::get_mut(&mut client.inner) {
            inner.ns = ns;
        }
        client.probe().await?;
        Ok(client)
    }

    fn build(
        base: &str,
        registry: &str,
        index: Option<&str>,
        credentials: Option<(String, String)>,
        opts: &RemoteOptions,
        verify: bool,
    ) -> Result<Client> {
        let parse = |u: &str| {
            Url::parse(u).map_err(|e| RemoteError::InvalidAddress {
                address: u.to_owned(),
                reason: e.to_string(),
            })
        };
        let base_url = parse(base)?;
        let index = match index {
            Some(i) => parse(i)?,
            None => base_url.clone(),
        };
        Ok(Client {
            inner: Arc::new(Inner {
                http: http_client(&host_port(&base_url), verify)?,
                base_str: base.trim_end_matches('/').to_owned(),
                base: base_url,
                registry: registry.to_owned(),
                index,
                ns: None,
                credentials,
                user_agent: opts.user_agent.clone(),
                attempts: opts.daemon.max_download_attempts.max(1),
                chunk_size: std::sync::atomic::AtomicU64::new(super::upload::CHUNK_SIZE),
                daemon: opts.daemon.clone(),
                auth: Mutex::new(AuthState::default()),
            }),
        })
    }

    /// The endpoint's base URL (`https://registry-1.docker.io`, `http://127.0.0.1:5000`).
    #[must_use]
    pub fn base_url(&self) -> &str {
        &self.inner.base_str
    }

    /// Sets the size of each `PATCH` of chunked uploads (default [`super::upload::CHUNK_SIZE`];
    /// at least 1 MiB), for registries or proxies that limit request sizes.
    pub fn set_upload_chunk_size(&self, bytes: u64) {
        self.inner
            .chunk_size
            .store(bytes.max(1 << 20), std::sync::atomic::Ordering::Relaxed);
    }

    /// The logical registry: `docker.io`, `host[:port]`, or the mirror's `host[:port]`.
    #[must_use]
    pub fn registry(&self) -> &str {
        &self.inner.registry
    }

    /// `base/v2/<path>`.
    pub(super) fn url(&self, path: &str) -> Result<Url> {
        let mut url = self.join(&format!("/v2/{path}"))?;
        if let Some(ns) = &self.inner.ns {
            url.query_pairs_mut().append_pair("ns", ns);
        }
        Ok(url)
    }

    /// Resolves a path or URL (a `Location` or `Link` target) against the base.
    pub(super) fn join(&self, target: &str) -> Result<Url> {
        self.inner
            .base
            .join(target)
            .map_err(|e| RemoteError::InvalidResponse {
                url: self.inner.base_str.clone(),
                reason: format!("bad URL `{target}`: {e}"),
            })
    }

    /// One unauthenticated `GET /v2/` without retries: any HTTP answer means the endpoint
    /// speaks this scheme. A 401 teaches us the challenge.
    async fn probe(&self) -> Result<()> {
        let url = self.url("")?;
        let resp = self
            .inner
            .http
            .get(url.clone())
            .header(USER_AGENT, &self.inner.user_agent)
            .send()
            .await
            .map_err(|source| RemoteError::Transport {
                url: url.to_string(),
                source,
            })?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            self.learn(resp.headers());
        }
        Ok(())
    }

    /// Records the strongest challenge of a 401; true when there was one.
    fn learn(&self, headers: &HeaderMap) -> bool {
        let challenge = headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(auth::parse_challenges)
            .min_by_key(|c| matches!(c, Challenge::Basic));
        let mut state = self.inner.auth.lock().expect("auth state lock");
        match challenge {
            Some(c) => {
                state.challenge = Some(c);
                true
            }
            None => false,
        }
    }

    /// Whether `url` is on the registry's own origin (credentials and tokens go nowhere else).
    fn same_origin(&self, url: &Url) -> bool {
        url.scheme() == self.inner.base.scheme()
            && url.host_str() == self.inner.base.host_str()
            && url.port_or_known_default() == self.inner.base.port_or_known_default()
    }

    /// The `Authorization` value for a request, fetching a token when the registry asked for
    /// Bearer and none is cached for `scope`.
    async fn authorization(&self, scope: &Scope, url: &Url) -> Result<Option<String>> {
        if !self.same_origin(url) {
            return Ok(None);
        }
        let challenge = {
            let state = self.inner.auth.lock().expect("auth state lock");
            if let Some(t) = state.token(scope) {
                return Ok(Some(format!("Bearer {t}")));
            }
            state.challenge.clone()
        };
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(self.inner.credentials.as_ref().map(|(u, p)| {
                use base64::Engine as _;
                let raw = format!("{u}:{p}");
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                )
            })),
            Some(Challenge::Bearer {
                realm,
                service,
                scope: asked,
            }) => {
                let mut scopes = scope.params();
                if scopes.is_empty() {
                    scopes.extend(asked);
                }
                let basic = self
                    .inner
                    .credentials
                    .as_ref()
                    .filter(|_| self.may_send_credentials_to(&realm));
                let (token, lifetime) = auth::fetch_token(
                    &self.inner.http,
                    &self.inner.user_agent,
                    &self.inner.registry,
                    &realm,
                    service.as_deref(),
                    &scopes,
                    basic,
                )
                .await?;
                let header = format!("Bearer {token}");
                self.inner
                    .auth
                    .lock()
                    .expect("auth state lock")
                    .store(scope, token, lifetime);
                Ok(Some(header))
            }
        }
    }

    /// Credentials go to a token realm over HTTPS, or over HTTP only to the registry's own host
    /// or another insecure (e.g. loopback) one.
    fn may_send_credentials_to(&self, realm: &str) -> bool {
        let Ok(u) = Url::parse(realm) else {
            return false;
        };
        if u.scheme() == "https" {
            return true;
        }
        let host = match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            _ => return false,
        };
        u.host_str() == self.inner.base.host_str() || self.inner.daemon.is_insecure(&host, &[])
    }

    /// Sends a request with authentication and (for [`Replay::Yes`]) retries on connection
    /// errors, 5xx and 429, and once after a 401. `build` adds headers and body to each attempt.
    /// Returns the response whatever its status unless retries ran out on a 401 or 429.
    pub(super) async fn send<F>(
        &self,
        method: &Method,
        url: &Url,
        scope: &Scope,
        replay: Replay,
        build: F,
    ) -> Result<Response>
    where
        F: Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    {
        let attempts = if replay == Replay::Yes {
            self.inner.attempts
        } else {
            1
        };
        let mut attempt = 1;
        let mut delay = FIRST_BACKOFF;
        let mut reauthenticated = false;
        loop {
            let authorization = match self.authorization(scope, url).await {
                Ok(a) => a,
                Err(e) if e.is_retryable() && attempt < attempts => {
                    tracing::debug!(%url, attempt, error = %e, "token request failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(MAX_BACKOFF);
                    attempt += 1;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let mut rb = self
                .inner
                .http
                .request(method.clone(), url.clone())
                .header(USER_AGENT, &self.inner.user_agent);
            if let Some(a) = &authorization {
                rb = rb.header(AUTHORIZATION, a);
            }
            let result = build(rb).send().await;
            let resp = match result {
                Ok(r) => r,
                Err(source) => {
                    if attempt < attempts && !source.is_builder() {
                        tracing::debug!(%url, attempt, error = %source, "request failed; retrying");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(MAX_BACKOFF);
                        attempt += 1;
                        continue;
                    }
                    return Err(RemoteError::Transport {
                        url: url.to_string(),
                        source,
                    });
                }
            };
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED {
                let learned = self.learn(resp.headers());
                if authorization.is_some() {
                    self.inner
                        .auth
                        .lock()
                        .expect("auth state lock")
                        .forget(scope);
                }
                let can_answer = {
                    let state = self.inner.auth.lock().expect("auth state lock");
                    match &state.challenge {
                        Some(Challenge::Basic) => {
                            self.inner.credentials.is_some() && authorization.is_none()
                        }
                        Some(Challenge::Bearer { .. }) => true,
                        None => false,
                    }
                };
                if learned && can_answer && !reauthenticated && replay == Replay::Yes {
                    reauthenticated = true;
                    continue;
                }
                return Err(self.error(method, url, resp).await);
            }
            if (status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS)
                && attempt < attempts
            {
                let mut wait = delay;
                if status == StatusCode::TOO_MANY_REQUESTS {
                    if let Some(secs) = retry_after(resp.headers()) {
                        let asked = Duration::from_secs(secs);
                        if asked > MAX_RETRY_AFTER {
                            return Err(self.error(method, url, resp).await);
                        }
                        wait = asked;
                    }
                }
                tracing::debug!(%url, attempt, %status, "registry failed; retrying in {wait:?}");
                tokio::time::sleep(wait).await;
                delay = (delay * 2).min(MAX_BACKOFF);
                attempt += 1;
                continue;
            }
            return Ok(resp);
        }
    }

    /// `send` for requests without a body, replayable.
    pub(super) async fn get(
        &self,
        method: Method,
        url: &Url,
        scope: &Scope,
        headers: HeaderMap,
    ) -> Result<Response> {
        self.send(&method, url, scope, Replay::Yes, |rb| {
            rb.headers(headers.clone())
        })
        .await
    }

    /// Turns a failed response into its [`RemoteError`] (reads at most 64 KiB of the body).
    pub(super) async fn error(
        &self,
        method: &Method,
        url: &Url,
        mut resp: Response,
    ) -> RemoteError {
        let status = resp.status().as_u16();
        let retry = retry_after(resp.headers());
        let mut body = Vec::new();
        while body.len() < MAX_ERROR_BODY {
            match resp.chunk().await {
                Ok(Some(c)) => body.extend_from_slice(&c),
                _ => break,
            }
        }
        error::from_status(
            method.as_str(),
            url.as_str(),
            &self.inner.registry,
            status,
            retry,
            &body,
            self.inner.credentials.is_some(),
        )
    }

    /// The response if it succeeded (2xx, or 3xx left unfollowed), else its error.
    pub(super) async fn check(
        &self,
        method: &Method,
        url: &Url,
        resp: Response,
    ) -> Result<Response> {
        if resp.status().is_client_error() || resp.status().is_server_error() {
            Err(self.error(method, url, resp).await)
        } else {
            Ok(resp)
        }
    }
}

/// `Retry-After` in seconds (the HTTP-date form is not used by registries we know).
fn retry_after(headers: &HeaderMap) -> Option<u64> {
    headers.get(RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()
}
