//! Typed errors of the registry protocol. Every variant keeps the URL it concerns; registry
//! answers are parsed from the distribution-spec `{"errors":[{"code","message","detail"}]}`
//! envelope so the user sees the registry's own code and message.

use oci_spec::image::Digest;

use crate::Hint;

/// Result type of the `remote` module.
pub type Result<T> = std::result::Result<T, RemoteError>;

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// 401 even after authenticating (or no credentials to answer the challenge with).
    #[error("unauthorized: {message} ({url})")]
    Unauthorized {
        /// The request (or token service) URL.
        url: String,
        /// The logical registry host, for `berth login HOST`.
        registry: String,
        /// The registry's message, or a summary.
        message: String,
        /// Whether credentials were sent.
        with_credentials: bool,
    },
    /// 403: authenticated, but not allowed.
    #[error("denied: {message} ({url})")]
    Denied {
        /// The request URL.
        url: String,
        /// The logical registry host.
        registry: String,
        /// The registry's message.
        message: String,
    },
    /// 404 with `MANIFEST_UNKNOWN`, `BLOB_UNKNOWN`, `NAME_UNKNOWN` (or no envelope).
    #[error("not found: {code}: {message} ({url})")]
    NotFound {
        /// The request URL.
        url: String,
        /// The error code from the envelope (`NOT_FOUND` when there was none).
        code: String,
        /// The registry's message.
        message: String,
    },
    /// 429 after the retries ran out (or a `Retry-After` longer than we wait).
    #[error("too many requests to {url}{}", retry_after.map(|s| format!(" (retry after {s}s)")).unwrap_or_default())]
    TooManyRequests {
        /// The request URL.
        url: String,
        /// Seconds from the `Retry-After` header.
        retry_after: Option<u64>,
        /// The registry's message.
        message: String,
    },
    /// Any other 4xx/5xx answer.
    #[error("{method} {url} failed with status {status}: {code}: {message}")]
    Status {
        /// HTTP method.
        method: String,
        /// The request URL.
        url: String,
        /// HTTP status code.
        status: u16,
        /// The envelope's error code (`UNKNOWN` when there was none).
        code: String,
        /// The envelope's message, or the start of the body.
        message: String,
    },
    /// Connection refused, TLS failure, timeout, a body cut short.
    #[error("cannot reach {url}")]
    Transport {
        /// The request URL.
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// The registry speaks plain HTTP (or has an unverifiable certificate) but is not listed in
    /// `insecure-registries`.
    #[error("registry {registry} does not speak verified HTTPS ({url})")]
    InsecureRefused {
        /// The HTTPS URL that failed.
        url: String,
        /// `host[:port]`.
        registry: String,
        /// What the TLS attempt reported.
        #[source]
        source: reqwest::Error,
    },
    /// Content does not hash to the digest it was asked for or announced with.
    #[error("digest mismatch at {url}: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The request URL.
        url: String,
        /// The digest asked for or announced.
        expected: Digest,
        /// The digest of the bytes received.
        actual: Digest,
    },
    /// A successful answer that breaks the protocol (bad JSON, missing `Location`, …).
    #[error("invalid response from {url}: {reason}")]
    InvalidResponse {
        /// The request URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// A URL that cannot be used (bad mirror or registry name).
    #[error("invalid registry address `{address}`: {reason}")]
    InvalidAddress {
        /// The address as given.
        address: String,
        /// What is wrong.
        reason: String,
    },
    /// A local file could not be read (the blob to upload).
    #[error("cannot read `{}`", path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A registry's certificates directory (`certs.d/HOST:PORT`) holds a file that cannot be
    /// used.
    #[error("cannot use the certificates in `{}`: {reason}", path.display())]
    Certificates {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The credentials file could not be read or written.
    #[error("cannot use credentials file `{}`: {reason}", path.display())]
    Credentials {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
        /// The I/O cause, if any.
        #[source]
        source: Option<std::io::Error>,
    },
}

impl RemoteError {
    /// Whether trying again may help (connection errors, 5xx, 429).
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Transport { .. } | Self::TooManyRequests { .. } => true,
            Self::Status { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// The URL the error concerns, when there is one.
    #[must_use]
    pub fn url(&self) -> Option<&str> {
        match self {
            Self::Unauthorized { url, .. }
            | Self::Denied { url, .. }
            | Self::NotFound { url, .. }
            | Self::TooManyRequests { url, .. }
            | Self::Status { url, .. }
            | Self::Transport { url, .. }
            | Self::InsecureRefused { url, .. }
            | Self::DigestMismatch { url, .. }
            | Self::InvalidResponse { url, .. } => Some(url),
            _ => None,
        }
    }
}

impl Hint for RemoteError {
    fn hint(&self) -> Option<String> {
        match self {
            Self::Unauthorized {
                registry,
                with_credentials: false,
                ..
            } => Some(format!(
                "the registry needs credentials: run `{}`",
                login_cmd(registry)
            )),
            Self::Unauthorized { registry, .. } => Some(format!(
                "the credentials were refused: run `{}` again",
                login_cmd(registry)
            )),
            Self::Denied { registry, .. } => Some(format!(
                "the account has no access to this repository on {registry}; check the name or log in as another user with `{}`",
                login_cmd(registry)
            )),
            Self::NotFound { code, .. } if code == "NAME_UNKNOWN" => {
                Some("check the repository name; it does not exist on this registry".into())
            }
            Self::NotFound { code, .. } if code == "MANIFEST_UNKNOWN" => {
                Some("check the tag or digest; the repository has no such manifest".into())
            }
            Self::TooManyRequests { .. } => Some(
                "the registry is rate limiting; wait and try again, or log in to get a higher limit"
                    .into(),
            ),
            Self::Transport { url, source } if needs_client_certificate(source) => Some(format!(
                "the registry asks for a client certificate: put NAME.cert and NAME.key in {}/{}/ (or Docker's /etc/docker/certs.d)",
                crate::remote::certs::search_dirs()[0].display(),
                reqwest::Url::parse(url).ok().map_or_else(String::new, |u| match (u.host_str(), u.port()) {
                    (Some(h), Some(p)) => format!("{h}:{p}"),
                    (Some(h), None) => h.to_owned(),
                    _ => String::new(),
                })
            )),
            Self::Transport { .. } => Some(
                "check the registry address and that it is running; proxies and firewalls can also block it"
                    .into(),
            ),
            Self::InsecureRefused { registry, .. } => Some(format!(
                "if you trust it, add \"{registry}\" to `insecure-registries` in daemon.json (/etc/berth/daemon.json)"
            )),
            Self::DigestMismatch { .. } => Some(
                "the registry served corrupted or substituted content; nothing was stored".into(),
            ),
            Self::Status { status, .. } if *status >= 500 => {
                Some("the registry failed; try again later or ask its operator".into())
            }
            _ => None,
        }
    }
}

/// The `berth login` command for a registry (no server argument for Docker Hub).
fn login_cmd(registry: &str) -> String {
    if super::is_docker_hub(registry) {
        "berth login".into()
    } else {
        format!("berth login {registry}")
    }
}

/// One entry of the distribution-spec error envelope.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct WireError {
    /// `MANIFEST_UNKNOWN`, `UNAUTHORIZED`, …
    #[serde(default)]
    pub code: String,
    /// Human-readable message.
    #[serde(default)]
    pub message: String,
}

#[derive(serde::Deserialize)]
struct Envelope {
    #[serde(default)]
    errors: Vec<WireError>,
}

/// The first error of a `{"errors":[…]}` body; otherwise the body's first line as message.
#[must_use]
pub fn parse_envelope(body: &[u8]) -> WireError {
    if let Ok(env) = serde_json::from_slice::<Envelope>(body) {
        if let Some(first) = env.errors.into_iter().next() {
            return first;
        }
    }
    // Token services answer `{"details": "..."}` or `{"error": "..."}`.
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(body) {
        for key in ["details", "detail", "error", "message"] {
            if let Some(serde_json::Value::String(s)) = map.get(key) {
                return WireError {
                    code: String::new(),
                    message: s.clone(),
                };
            }
        }
    }
    let text = String::from_utf8_lossy(body);
    let line = text.lines().next().unwrap_or("").trim();
    WireError {
        code: String::new(),
        message: line.chars().take(200).collect(),
    }
}

/// Builds the error for a failed response (status >= 400) from its parts.
#[must_use]
pub fn from_status(
    method: &str,
    url: &str,
    registry: &str,
    status: u16,
    retry_after: Option<u64>,
    body: &[u8],
    with_credentials: bool,
) -> RemoteError {
    let wire = parse_envelope(body);
    let message = if wire.message.is_empty() {
        reason(status).to_owned()
    } else {
        wire.message
    };
    let url = url.to_owned();
    match status {
        401 => RemoteError::Unauthorized {
            url,
            registry: registry.to_owned(),
            message,
            with_credentials,
        },
        403 => RemoteError::Denied {
            url,
            registry: registry.to_owned(),
            message,
        },
        404 => RemoteError::NotFound {
            url,
            code: if wire.code.is_empty() {
                "NOT_FOUND".into()
            } else {
                wire.code
            },
            message,
        },
        429 => RemoteError::TooManyRequests {
            url,
            retry_after,
            message,
        },
        _ => RemoteError::Status {
            method: method.to_owned(),
            url,
            status,
            code: if wire.code.is_empty() {
                "UNKNOWN".into()
            } else {
                wire.code
            },
            message,
        },
    }
}

fn reason(status: u16) -> &'static str {
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("error")
}

/// True when the TLS handshake ended because the server wants a client certificate.
fn needs_client_certificate(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        let text = err.to_string();
        if text.contains("CertificateRequired") || text.contains("certificate required") {
            return true;
        }
        cur = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_codes_become_variants() {
        let body =
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
        let e = from_status(
            "GET",
            "http://r/v2/a/manifests/x",
            "r",
            404,
            None,
            body,
            false,
        );
        assert!(
            matches!(&e, RemoteError::NotFound { code, message, .. } if code == "MANIFEST_UNKNOWN" && message == "manifest unknown"),
            "{e:?}"
        );
        let e = from_status("PUT", "http://r/x", "r", 400, None, b"", false);
        assert!(
            matches!(&e, RemoteError::Status { status: 400, code, message, .. } if code == "UNKNOWN" && message == "Bad Request"),
            "{e:?}"
        );
        let e = from_status("GET", "http://r/x", "r", 500, None, b"boom\nmore", false);
        assert!(e.is_retryable());
        assert!(e.to_string().contains("boom"), "{e}");
    }

    #[test]
    fn hints_name_the_registry() {
        assert!(!needs_client_certificate(&std::io::Error::other("refused")));
        let e = from_status("GET", "u", "reg.example:5000", 401, None, b"", false);
        assert!(crate::Hint::hint(&e)
            .unwrap()
            .contains("berth login reg.example:5000"));
        let e = from_status("GET", "u", "docker.io", 401, None, b"", true);
        assert!(crate::Hint::hint(&e).unwrap().contains("`berth login`"));
    }
}
