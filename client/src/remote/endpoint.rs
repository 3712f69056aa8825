//! Where to talk to: mirrors before the upstream ([`pull_endpoints`]), Docker Hub's API host, and
//! whether a host may use plain HTTP or unverified TLS (`insecure-registries`, loopback).

use std::net::IpAddr;
use std::time::Duration;

use berth_config::DaemonConfig;

use super::client::Client;
use super::error::{RemoteError, Result};
use super::{is_docker_hub, RemoteOptions, DOCKER_HUB, DOCKER_HUB_REGISTRY};

/// One place to pull from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A mirror base URL from `daemon.json` (`https://mirror.example:5000`).
    Mirror(String),
    /// The registry itself (`host[:port]`, `docker.io` for Docker Hub).
    Upstream(String),
}

impl Endpoint {
    /// A client for this endpoint ([`Client::mirror`] or [`Client::connect`]).
    ///
    /// # Errors
    /// As those functions.
    pub async fn connect(&self, opts: &RemoteOptions) -> Result<Client> {
        match self {
            Self::Mirror(url) => Client::mirror(url, opts).await,
            Self::Upstream(host) => Client::connect(host, opts).await,
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Mirror(u) => write!(f, "mirror {u}"),
            Self::Upstream(h) => f.write_str(h),
        }
    }
}

/// Endpoints to try, in order, when pulling from `registry_host`: its mirrors
/// ([`DaemonConfig::mirrors_for`]), then the upstream unless `registry-mirrors-only` is set and
/// there is at least one mirror.
#[must_use]
pub fn pull_endpoints(registry_host: &str, daemon: &DaemonConfig) -> Vec<Endpoint> {
    let host = canonical_registry(registry_host);
    let mirrors = daemon.mirrors_for(&host);
    // `registry-mirror-map` mirrors serve several registries from one address: tell them which
    // one with `?ns=` (containerd's convention; berth-registry routes on it, other registries
    // ignore it). Docker's `registry-mirrors` is docker.io only and sends nothing extra.
    let mapped = daemon.registry_mirror_map.contains_key(&host);
    let mut out: Vec<Endpoint> = mirrors
        .iter()
        .map(|m| {
            if mapped && !m.contains('?') {
                Endpoint::Mirror(format!("{}?ns={host}", m.trim_end_matches('/')))
            } else {
                Endpoint::Mirror(m.clone())
            }
        })
        .collect();
    if mirrors.is_empty() || !daemon.registry_mirrors_only {
        out.push(Endpoint::Upstream(host));
    }
    out
}

/// `docker.io` for Docker Hub aliases; otherwise the host lowercased, without scheme or path.
#[must_use]
pub fn canonical_registry(registry: &str) -> String {
    let r = registry
        .strip_prefix("https://")
        .or_else(|| registry.strip_prefix("http://"))
        .unwrap_or(registry);
    let host = r.split('/').next().unwrap_or(r).to_ascii_lowercase();
    if is_docker_hub(&host) {
        DOCKER_HUB.to_owned()
    } else {
        host
    }
}

/// A server name as users type it after `berth login`/`logout` (`host[:port]`, optionally with
/// `https://`; Docker Hub's `https://index.docker.io/v1/` too) -> the registry (`docker.io` or
/// `host[:port]`).
///
/// # Errors
/// [`RemoteError::InvalidAddress`] for a path (other than Docker Hub's `/v1/`) or a bad host.
pub fn endpoint_name(server: &str) -> Result<String> {
    let registry = canonical_registry(server.trim());
    let without_scheme = server
        .trim()
        .strip_prefix("https://")
        .or_else(|| server.trim().strip_prefix("http://"))
        .unwrap_or(server.trim());
    let path = without_scheme.split_once('/').map_or("", |(_, p)| p);
    if !path.trim_matches('/').is_empty() && registry != DOCKER_HUB {
        return Err(RemoteError::InvalidAddress {
            address: server.to_owned(),
            reason: "registry addresses have no path; write `host[:port]`".into(),
        });
    }
    validate_host(&registry)?;
    Ok(registry)
}

/// The `host[:port]` serving the registry API for a logical registry.
#[must_use]
pub fn api_host(registry: &str) -> String {
    if is_docker_hub(registry) {
        DOCKER_HUB_REGISTRY.to_owned()
    } else {
        registry.to_owned()
    }
}

/// Checks a `host[:port]` for characters that have no business in one.
pub fn validate_host(host: &str) -> Result<()> {
    let ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '_'));
    if ok {
        Ok(())
    } else {
        Err(RemoteError::InvalidAddress {
            address: host.to_owned(),
            reason: "write the registry as `host[:port]`".into(),
        })
    }
}

/// Whether `host[:port]` may use plain HTTP or unverified TLS ([`DaemonConfig::is_insecure`],
/// with the addresses its name resolves to, so CIDR entries match names too).
pub async fn is_insecure(host_port: &str, daemon: &DaemonConfig) -> bool {
    if daemon.is_insecure(host_port, &[]) {
        return true;
    }
    let target = if has_port(host_port) {
        host_port.to_owned()
    } else {
        format!("{host_port}:443")
    };
    let resolved: Vec<IpAddr> =
        match tokio::time::timeout(Duration::from_secs(5), tokio::net::lookup_host(target)).await {
            Ok(Ok(addrs)) => addrs.map(|a| a.ip()).collect(),
            _ => Vec::new(),
        };
    daemon.is_insecure(host_port, &resolved)
}

fn has_port(host_port: &str) -> bool {
    if let Some(rest) = host_port.strip_prefix('[') {
        return rest.contains("]:");
    }
    host_port
        .rsplit_once(':')
        .is_some_and(|(h, p)| !h.contains(':') && p.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn daemon(text: &str) -> DaemonConfig {
        DaemonConfig::parse(Path::new("daemon.json"), text).unwrap()
    }

    #[test]
    fn mirrors_come_first_and_mirrors_only_drops_the_upstream() {
        let d = daemon(
            r#"{"registry-mirrors": ["https://m1.example", "http://m2.example:5000"],
                "registry-mirror-map": {"ghcr.io": ["https://g.example"]}}"#,
        );
        assert_eq!(
            pull_endpoints("index.docker.io", &d),
            [
                Endpoint::Mirror("https://m1.example".into()),
                Endpoint::Mirror("http://m2.example:5000".into()),
                Endpoint::Upstream("docker.io".into()),
            ]
        );
        assert_eq!(
            pull_endpoints("quay.io", &d),
            [Endpoint::Upstream("quay.io".into())]
        );
        let d = daemon(
            r#"{"registry-mirror-map": {"ghcr.io": ["https://g.example"]}, "registry-mirrors-only": true}"#,
        );
        assert_eq!(
            pull_endpoints("ghcr.io", &d),
            [Endpoint::Mirror("https://g.example?ns=ghcr.io".into())]
        );
        // Nothing mirrored: the upstream stays even with mirrors-only.
        assert_eq!(
            pull_endpoints("docker.io", &d),
            [Endpoint::Upstream("docker.io".into())]
        );
    }

    #[test]
    fn names() {
        assert_eq!(
            canonical_registry("https://Registry-1.docker.io/v2/"),
            "docker.io"
        );
        assert_eq!(canonical_registry("reg.example:5000"), "reg.example:5000");
        assert_eq!(api_host("docker.io"), "registry-1.docker.io");
        assert_eq!(
            endpoint_name("https://index.docker.io/v1/").unwrap(),
            "docker.io"
        );
        assert_eq!(
            endpoint_name("http://127.0.0.1:5000/").unwrap(),
            "127.0.0.1:5000"
        );
        assert!(endpoint_name("reg.example/foo/").is_err());
        assert!(validate_host("127.0.0.1:5000").is_ok());
        assert!(validate_host("[::1]:5000").is_ok());
        assert!(validate_host("a/b").is_err());
        assert!(validate_host("").is_err());
        assert!(has_port("[::1]:5000") && !has_port("[::1]") && has_port("a:1") && !has_port("a"));
    }

    #[tokio::test]
    async fn loopback_is_insecure_and_public_names_are_not() {
        let d = DaemonConfig::default();
        assert!(is_insecure("127.0.0.1:5000", &d).await);
        assert!(is_insecure("localhost:5000", &d).await);
        assert!(!is_insecure("192.0.2.1:5000", &d).await);
        let d = daemon(r#"{"insecure-registries": ["192.0.2.0/24"]}"#);
        assert!(is_insecure("192.0.2.1:5000", &d).await);
    }
}
