//! One upstream registry: its HTTP client, its credentials and the token flow Docker Hub uses
//! (`401` with `WWW-Authenticate: Bearer realm=…,service=…` → token from the realm, with the
//! configured credentials as Basic auth when there are any → retry with `Bearer`).
//!
//! Only the mirror's own `[[mirror]]` credentials are ever sent upstream; a client's
//! `Authorization` header never reaches this module.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use berth_config::registry_mirror::MirrorConfig;

use super::MirrorSetupError;

/// Accept list for manifests: every type the registry stores.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// What talking to an upstream can fail with.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No connection, a timeout, or a connection cut.
    #[error("upstream `{registry}` is unreachable")]
    Unreachable {
        /// Upstream name.
        registry: String,
        /// Transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The upstream answered with an error status.
    #[error("upstream `{registry}` answered {status} for {what}")]
    Status {
        /// Upstream name.
        registry: String,
        /// Its status.
        status: u16,
        /// What was asked for.
        what: String,
    },
    /// Not in the upstream.
    #[error("`{what}` is not in upstream `{registry}`")]
    NotFound {
        /// Upstream name.
        registry: String,
        /// What was asked for.
        what: String,
    },
    /// The upstream refused the mirror's credentials (or wants some and none are configured).
    #[error("upstream `{registry}` refused the mirror's credentials: {reason}")]
    Unauthorized {
        /// Upstream name.
        registry: String,
        /// What happened.
        reason: String,
    },
    /// The content does not hash to its digest, or is otherwise unusable; nothing was stored.
    #[error("upstream `{registry}` sent bad content for {what}: {reason}; nothing was stored")]
    BadContent {
        /// Upstream name.
        registry: String,
        /// What was asked for.
        what: String,
        /// What was wrong.
        reason: String,
    },
}

/// The largest answer the mirror reads from a token server: tokens are a few KiB.
const MAX_TOKEN_ANSWER: u64 = 1024 * 1024;

/// The body of `resp` if it stays within `limit` bytes, `Ok(None)` as soon as it passes it (the
/// rest is never read): an upstream, or a token server it names, cannot make the mirror buffer
/// more than `limit`, whether it announces a length or streams without one.
///
/// # Errors
/// A transport failure while reading.
pub async fn body_within(
    mut resp: reqwest::Response,
    limit: u64,
) -> Result<Option<bytes::Bytes>, reqwest::Error> {
    if resp.content_length().is_some_and(|n| n > limit) {
        return Ok(None);
    }
    let mut buf = bytes::BytesMut::new();
    while let Some(chunk) = resp.chunk().await? {
        if (buf.len() + chunk.len()) as u64 > limit {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Some(buf.freeze()))
}

impl UpstreamError {
    /// True when cached content may be served instead (stale-if-error): unreachable, `429`, `5xx`.
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Unreachable { .. } => true,
            Self::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }

    /// The `reason` label of `berth_registry_mirror_upstream_errors_total`.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Unreachable { .. } => "unreachable",
            Self::Status { .. } => "status",
            Self::NotFound { .. } => "not_found",
            Self::Unauthorized { .. } => "unauthorized",
            Self::BadContent { .. } => "bad_content",
        }
    }

    /// Counts this error against its upstream in the metrics; returns it.
    #[must_use]
    pub fn counted(self) -> Self {
        let registry = match &self {
            Self::Unreachable { registry, .. }
            | Self::Status { registry, .. }
            | Self::NotFound { registry, .. }
            | Self::Unauthorized { registry, .. }
            | Self::BadContent { registry, .. } => registry,
        };
        crate::metrics::global().mirror_upstream_error(registry, self.reason());
        self
    }
}

/// See the module docs.
pub struct Upstream {
    /// The name clients use (`docker.io`).
    pub registry: String,
    /// Base URL, without `/v2`.
    pub url: String,
    /// Requests with neither `?ns=` nor a host prefix come here.
    pub default: bool,
    /// Seconds between revalidations of one cached tag.
    pub tag_recheck: Duration,
    http: reqwest::Client,
    basic: Option<(String, String)>,
    /// Bearer tokens by scope, with their expiry.
    tokens: Mutex<HashMap<String, (String, Instant)>>,
}

impl Upstream {
    /// Builds the client of one `[[mirror]]`.
    ///
    /// # Errors
    /// When the password file cannot be read.
    pub fn new(m: &MirrorConfig) -> Result<Self, MirrorSetupError> {
        let setup = |reason: String| MirrorSetupError::Upstream {
            registry: m.registry.clone(),
            reason,
        };
        let password = match (&m.password, &m.password_file) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(f)) => Some(
                fs_err::read_to_string(f)
                    .map_err(|e| setup(e.to_string()))?
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_owned(),
            ),
            (None, None) => None,
        };
        let basic = m
            .username
            .clone()
            .map(|u| (u, password.clone().unwrap_or_default()));
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .user_agent(concat!(
                "berth-registry/",
                env!("CARGO_PKG_VERSION"),
                " (mirror)"
            ))
            .build()
            .map_err(|e| setup(e.to_string()))?;
        Ok(Self {
            registry: m.registry.clone(),
            url: m.url.clone(),
            default: m.default,
            tag_recheck: Duration::from_secs(m.tag_recheck_secs),
            http,
            basic,
            tokens: Mutex::default(),
        })
    }

    /// Sends `method` to `/v2/<repo>/<path>` with `headers`, authenticating as the upstream
    /// asks. Error statuses other than 404 and 401 come back as responses (the caller decides).
    ///
    /// # Errors
    /// `Unreachable`; `Unauthorized` when the upstream still refuses after authenticating.
    /// Each is counted in the metrics.
    pub async fn send(
        &self,
        method: Method,
        repo: &str,
        path: &str,
        headers: &HeaderMap,
    ) -> Result<reqwest::Response, UpstreamError> {
        self.send_uncounted(method, repo, path, headers)
            .await
            .map_err(UpstreamError::counted)
    }

    /// Whether the upstream answers HTTP at `/v2/` (any status: `401` is an answer), within
    /// `timeout`. Used by `/readyz`.
    ///
    /// # Errors
    /// The transport error, as text.
    pub async fn probe(&self, timeout: Duration) -> Result<(), String> {
        let url = format!("{}/v2/", self.url);
        match self.http.get(&url).timeout(timeout).send().await {
            Ok(_) => Ok(()),
            Err(e) => Err(format!("{url}: {}", super::manifest::error_chain(&e))),
        }
    }

    async fn send_uncounted(
        &self,
        method: Method,
        repo: &str,
        path: &str,
        headers: &HeaderMap,
    ) -> Result<reqwest::Response, UpstreamError> {
        let url = format!("{}/v2/{repo}/{path}", self.url);
        let scope = format!("repository:{repo}:pull");
        let cached = self.token(&scope);
        let resp = self
            .request(method.clone(), &url, headers, cached.as_deref())
            .await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let challenge = resp
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let auth = if challenge.to_ascii_lowercase().starts_with("bearer") {
            let token = self.fetch_token(&challenge, &scope).await?;
            format!("Bearer {token}")
        } else if let Some((u, p)) = &self.basic {
            use base64::Engine as _;
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        } else {
            return Err(self.unauthorized("it requires credentials and none are configured"));
        };
        let resp = self.request(method, &url, headers, Some(&auth)).await?;
        if resp.status() == StatusCode::UNAUTHORIZED || resp.status() == StatusCode::FORBIDDEN {
            return Err(self.unauthorized(&format!(
                "{} for {repo} after authenticating",
                resp.status()
            )));
        }
        Ok(resp)
    }

    fn unauthorized(&self, reason: &str) -> UpstreamError {
        UpstreamError::Unauthorized {
            registry: self.registry.clone(),
            reason: reason.to_owned(),
        }
    }

    async fn request(
        &self,
        method: Method,
        url: &str,
        headers: &HeaderMap,
        auth: Option<&str>,
    ) -> Result<reqwest::Response, UpstreamError> {
        let mut req = self.http.request(method, url).headers(headers.clone());
        if let Some(a) = auth {
            if let Ok(v) = HeaderValue::from_str(a) {
                req = req.header(header::AUTHORIZATION, v);
            }
        }
        req.send()
            .await
            .map_err(|source| UpstreamError::Unreachable {
                registry: self.registry.clone(),
                source,
            })
    }

    fn token(&self, scope: &str) -> Option<String> {
        let tokens = self.tokens.lock().expect("token lock");
        tokens
            .get(scope)
            .filter(|(_, until)| *until > Instant::now())
            .map(|(t, _)| t.clone())
    }

    /// Gets a token from the challenge's realm for `scope`.
    async fn fetch_token(&self, challenge: &str, scope: &str) -> Result<String, UpstreamError> {
        let params = parse_challenge(challenge);
        let realm = params
            .get("realm")
            .ok_or_else(|| self.unauthorized("its Bearer challenge has no realm"))?;
        let mut query: Vec<(&str, &str)> = vec![("scope", scope)];
        if let Some(s) = params.get("service") {
            query.push(("service", s));
        }
        let mut req = self.http.get(realm.as_str()).query(&query);
        if let Some((u, p)) = &self.basic {
            req = req.basic_auth(u, Some(p));
        }
        let resp = req
            .send()
            .await
            .map_err(|source| UpstreamError::Unreachable {
                registry: self.registry.clone(),
                source,
            })?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(self.unauthorized(&format!(
                "the token server {realm} answered {status}{}",
                if self.basic.is_some() {
                    "; check the [[mirror]] username and password"
                } else {
                    "; configure a username and password for this [[mirror]]"
                }
            )));
        }
        if !status.is_success() {
            return Err(UpstreamError::Status {
                registry: self.registry.clone(),
                status: status.as_u16(),
                what: format!("a token from {realm}"),
            });
        }
        let body = body_within(resp, MAX_TOKEN_ANSWER)
            .await
            .map_err(|source| UpstreamError::Unreachable {
                registry: self.registry.clone(),
                source,
            })?
            .ok_or_else(|| {
                self.unauthorized(&format!(
                    "the token server {realm} answered more than {MAX_TOKEN_ANSWER} bytes"
                ))
            })?;
        let body: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
            self.unauthorized(&format!("the token server {realm} answered no JSON: {e}"))
        })?;
        let token = body
            .get("token")
            .or_else(|| body.get("access_token"))
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| self.unauthorized("the token server's answer has no token"))?
            .to_owned();
        let secs = body
            .get("expires_in")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(60)
            .clamp(10, 3600);
        // Renew a little early.
        let until = Instant::now() + Duration::from_secs(secs - secs / 10);
        let bearer = format!("Bearer {token}");
        self.tokens
            .lock()
            .expect("token lock")
            .insert(scope.to_owned(), (bearer, until));
        Ok(token)
    }
}

/// `Bearer realm="…",service="…"` → its parameters.
#[must_use]
pub fn parse_challenge(challenge: &str) -> HashMap<String, String> {
    let rest = challenge.split_once(' ').map_or("", |(_, r)| r).trim();
    let mut out = HashMap::new();
    let mut s = rest;
    while !s.is_empty() {
        let Some((key, after)) = s.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            match q.find('"') {
                Some(end) => (&q[..end], &q[end + 1..]),
                None => (q, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        out.insert(key, value.to_owned());
        s = next.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#,
        );
        assert_eq!(c["realm"], "https://auth.docker.io/token");
        assert_eq!(c["service"], "registry.docker.io");
        assert_eq!(c["scope"], "repository:library/alpine:pull");
        let c = parse_challenge("Bearer realm=http://x/t, service=s");
        assert_eq!(c["realm"], "http://x/t");
        assert_eq!(c["service"], "s");
        assert!(parse_challenge("Bearer").is_empty());
    }
}
