//! The pull-through mirror sections of the registry configuration (issue 10): `[[mirror]]`,
//! `[cache]` and `sparse_manifests`.
//!
//! ```toml
//! sparse_manifests = false        # accept manifests whose blobs/children are absent (local repos)
//!
//! [[mirror]]
//! registry = "docker.io"          # the name clients use (`?ns=`, path prefix); default: URL host
//! url = "https://registry-1.docker.io"
//! username = "me"                 # optional; credentials for the upstream only
//! password_file = "/etc/berth/hub-token"   # or `password = "…"`
//! tag_recheck_secs = 300          # HEAD a cached tag upstream at most this often
//! default = true                  # requests with neither `?ns=` nor a host prefix go here
//!
//! [cache]
//! max_bytes = 53687091200         # LRU eviction of upstream content past this size
//! max_age_secs = 2592000          # evict upstream content not used for this long
//! max_concurrent_fills = 64       # upstream blob downloads at once; past it: 429
//! ```
//!
//! Environment: `BERTH_REGISTRY_MIRROR` (`[REGISTRY=]URL`, several separated by commas; appended
//! to the file's), `BERTH_REGISTRY_MIRROR_TAG_RECHECK_SECS` (for mirrors that set none),
//! `BERTH_REGISTRY_CACHE_MAX_BYTES`, `BERTH_REGISTRY_CACHE_MAX_AGE_SECS`,
//! `BERTH_REGISTRY_CACHE_MAX_CONCURRENT_FILLS`,
//! `BERTH_REGISTRY_SPARSE_MANIFESTS`. The command line's repeatable `--mirror [REGISTRY=]URL`
//! comes last. Without `default = true` anywhere, the first mirror is the default upstream.

use std::path::PathBuf;

use serde::Deserialize;

use crate::registry::{invalid, parse_bool, parse_u64, Result};

/// Default seconds between two revalidations of one cached tag.
pub const DEFAULT_TAG_RECHECK_SECS: u64 = 300;

/// One upstream registry, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorConfig {
    /// The registry name clients use for it (`docker.io`, `ghcr.io`, …).
    pub registry: String,
    /// Base URL of its API (`https://registry-1.docker.io`), without `/v2`.
    pub url: String,
    /// User name for the upstream (never a client's).
    pub username: Option<String>,
    /// Password for the upstream, inline.
    pub password: Option<String>,
    /// File holding the password (first line), read at start.
    pub password_file: Option<PathBuf>,
    /// Seconds a cached tag is served without asking the upstream.
    pub tag_recheck_secs: u64,
    /// Requests with neither `?ns=` nor a host prefix go to this upstream.
    pub default: bool,
}

/// `[cache]`, validated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheConfig {
    /// Upstream content kept at most, in bytes; least recently used images go first.
    pub max_bytes: Option<u64>,
    /// Upstream content not used for this long is removed.
    pub max_age_secs: Option<u64>,
    /// Blob downloads from upstreams at once (`None`: [`DEFAULT_MAX_CONCURRENT_FILLS`]); a miss
    /// past it is answered `429` with `Retry-After`, so clients asking for many uncached blobs
    /// cannot open unbounded upstream connections and files.
    pub max_concurrent_fills: Option<u64>,
}

/// Default of `[cache] max_concurrent_fills`: ten Docker clients pulling six layers each.
pub const DEFAULT_MAX_CONCURRENT_FILLS: u64 = 64;

/// `[[mirror]]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileMirror {
    registry: Option<String>,
    url: Option<String>,
    username: Option<String>,
    password: Option<String>,
    password_file: Option<PathBuf>,
    tag_recheck_secs: Option<u64>,
    default: Option<bool>,
}

/// `[cache]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileCache {
    max_bytes: Option<u64>,
    max_age_secs: Option<u64>,
    max_concurrent_fills: Option<u64>,
}

/// The mirror keys the loader collects before validation.
#[derive(Debug, Default)]
pub(crate) struct Raw {
    pub(crate) mirror: Vec<FileMirror>,
    pub(crate) cache: Option<FileCache>,
    pub(crate) sparse_manifests: Option<bool>,
}

/// Parses one `[REGISTRY=]URL` as `--mirror` and `BERTH_REGISTRY_MIRROR` take it.
fn parse_spec(spec: &str) -> FileMirror {
    let spec = spec.trim();
    let (registry, url) = match spec.split_once('=') {
        Some((r, u)) if !r.contains('/') => (Some(r.trim().to_owned()), u.trim()),
        _ => (None, spec),
    };
    FileMirror {
        registry,
        url: Some(url.to_owned()),
        ..FileMirror::default()
    }
}

/// The registry name clients use for `url` when none is given: Docker Hub's API hosts are
/// `docker.io`, anything else its `host[:port]`.
#[must_use]
pub fn registry_of_url(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split('/').next().unwrap_or(rest).to_ascii_lowercase();
    match host.as_str() {
        "registry-1.docker.io" | "index.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_owned()
        }
        _ => host,
    }
}

/// Applies env variables and `--mirror` flags over the file's values.
pub(crate) fn overlay(
    raw: &mut Raw,
    env: &dyn Fn(&str) -> Option<String>,
    cli_mirrors: &[String],
) -> Result<()> {
    let env_str = |name: &str| env(name).filter(|v| !v.is_empty());
    if let Some(v) = env_str("BERTH_REGISTRY_MIRROR") {
        raw.mirror.extend(
            v.split(',')
                .filter(|s| !s.trim().is_empty())
                .map(parse_spec),
        );
    }
    if let Some(v) = env_str("BERTH_REGISTRY_MIRROR_TAG_RECHECK_SECS") {
        let secs = parse_u64("BERTH_REGISTRY_MIRROR_TAG_RECHECK_SECS", &v)?;
        for m in &mut raw.mirror {
            m.tag_recheck_secs.get_or_insert(secs);
        }
    }
    // Flags come last; a flag naming a registry already configured replaces its URL only.
    let mut first_flag = true;
    for spec in cli_mirrors {
        let mut m = parse_spec(spec);
        if first_flag && !raw.mirror.iter().any(|x| x.default == Some(true)) {
            // "the first one is the default upstream"
            m.default = Some(true);
        }
        first_flag = false;
        raw.mirror.push(m);
    }
    let cache = raw.cache.get_or_insert_with(FileCache::default);
    if let Some(v) = env_str("BERTH_REGISTRY_CACHE_MAX_BYTES") {
        cache.max_bytes = Some(parse_u64("BERTH_REGISTRY_CACHE_MAX_BYTES", &v)?);
    }
    if let Some(v) = env_str("BERTH_REGISTRY_CACHE_MAX_CONCURRENT_FILLS") {
        cache.max_concurrent_fills =
            Some(parse_u64("BERTH_REGISTRY_CACHE_MAX_CONCURRENT_FILLS", &v)?);
    }
    if let Some(v) = env_str("BERTH_REGISTRY_CACHE_MAX_AGE_SECS") {
        cache.max_age_secs = Some(parse_u64("BERTH_REGISTRY_CACHE_MAX_AGE_SECS", &v)?);
    }
    if let Some(v) = env_str("BERTH_REGISTRY_SPARSE_MANIFESTS") {
        raw.sparse_manifests = Some(parse_bool("BERTH_REGISTRY_SPARSE_MANIFESTS", &v)?);
    }
    Ok(())
}

/// Validates the mirror keys: `(mirrors, cache, sparse_manifests)`.
pub(crate) fn build(raw: Raw) -> Result<(Vec<MirrorConfig>, CacheConfig, bool)> {
    let mut out: Vec<MirrorConfig> = Vec::new();
    for (i, m) in raw.mirror.into_iter().enumerate() {
        let key = |k: &str| format!("mirror[{i}].{k}");
        let url = m
            .url
            .ok_or_else(|| invalid(&key("url"), "is required".into()))?;
        let url = url.trim_end_matches('/').trim_end_matches("/v2").to_owned();
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 10 {
            return Err(invalid(
                &key("url"),
                format!("`{url}` is not an http:// or https:// URL"),
            ));
        }
        let registry = m
            .registry
            .map(|r| r.trim().to_ascii_lowercase())
            .unwrap_or_else(|| registry_of_url(&url));
        if registry.is_empty() || registry.contains('/') {
            return Err(invalid(
                &key("registry"),
                format!("`{registry}` is not a registry host name (e.g. `docker.io`)"),
            ));
        }
        if m.password.is_some() && m.password_file.is_some() {
            return Err(invalid(
                &key("password"),
                "set `password` or `password_file`, not both".into(),
            ));
        }
        let tag_recheck_secs = m.tag_recheck_secs.unwrap_or(DEFAULT_TAG_RECHECK_SECS);
        if tag_recheck_secs > 30 * 86_400 {
            return Err(invalid(
                &key("tag_recheck_secs"),
                format!("{tag_recheck_secs} is outside 0..=2592000"),
            ));
        }
        if let Some(prev) = out.iter_mut().find(|p| p.registry == registry) {
            // A later `--mirror docker.io=URL` overrides the file's URL for that registry.
            prev.url = url;
            if m.default == Some(true) {
                prev.default = true;
            }
            continue;
        }
        out.push(MirrorConfig {
            registry,
            url,
            username: m.username,
            password: m.password,
            password_file: m.password_file,
            tag_recheck_secs,
            default: m.default.unwrap_or(false),
        });
    }
    let defaults = out.iter().filter(|m| m.default).count();
    if defaults > 1 {
        return Err(invalid(
            "mirror.default",
            "at most one [[mirror]] may be the default".into(),
        ));
    }
    if defaults == 0 {
        if let Some(first) = out.first_mut() {
            first.default = true;
        }
    }
    let cache = raw.cache.unwrap_or_default();
    if cache.max_bytes == Some(0) {
        return Err(invalid("cache.max_bytes", "must be at least 1".into()));
    }
    if cache.max_age_secs == Some(0) {
        return Err(invalid("cache.max_age_secs", "must be at least 1".into()));
    }
    if cache
        .max_concurrent_fills
        .is_some_and(|n| !(1..=100_000).contains(&n))
    {
        return Err(invalid(
            "cache.max_concurrent_fills",
            "must be within 1..=100000".into(),
        ));
    }
    Ok((
        out,
        CacheConfig {
            max_bytes: cache.max_bytes,
            max_age_secs: cache.max_age_secs,
            max_concurrent_fills: cache.max_concurrent_fills,
        },
        raw.sparse_manifests.unwrap_or(false),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn flags_make_the_first_one_default() {
        let mut raw = Raw::default();
        let flags = vec![
            "https://registry-1.docker.io".to_owned(),
            "ghcr.io=http://127.0.0.1:9/v2/".to_owned(),
        ];
        overlay(&mut raw, &no_env, &flags).unwrap();
        let (m, cache, sparse) = build(raw).unwrap();
        assert_eq!(m[0].registry, "docker.io");
        assert!(m[0].default);
        assert_eq!(m[1].registry, "ghcr.io");
        assert_eq!(m[1].url, "http://127.0.0.1:9");
        assert!(!m[1].default);
        assert_eq!(m[1].tag_recheck_secs, DEFAULT_TAG_RECHECK_SECS);
        assert_eq!(cache, CacheConfig::default());
        assert!(!sparse);
    }

    #[test]
    fn env_keys() {
        let env = |k: &str| {
            match k {
                "BERTH_REGISTRY_MIRROR" => Some("quay.io=http://127.0.0.1:1,http://127.0.0.1:2"),
                "BERTH_REGISTRY_MIRROR_TAG_RECHECK_SECS" => Some("7"),
                "BERTH_REGISTRY_CACHE_MAX_BYTES" => Some("1000"),
                "BERTH_REGISTRY_SPARSE_MANIFESTS" => Some("true"),
                _ => None,
            }
            .map(str::to_owned)
        };
        let mut raw = Raw::default();
        overlay(&mut raw, &env, &[]).unwrap();
        let (m, cache, sparse) = build(raw).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].registry, "127.0.0.1:2");
        assert!(m[0].default && !m[1].default);
        assert_eq!(m[0].tag_recheck_secs, 7);
        assert_eq!(cache.max_bytes, Some(1000));
        assert!(sparse);
    }

    #[test]
    fn bad_values() {
        let raw = Raw {
            mirror: vec![FileMirror {
                url: Some("ftp://x".into()),
                ..FileMirror::default()
            }],
            ..Raw::default()
        };
        assert!(build(raw)
            .unwrap_err()
            .to_string()
            .contains("mirror[0].url"));
        let raw = Raw {
            cache: Some(FileCache {
                max_bytes: Some(0),
                max_age_secs: None,
                max_concurrent_fills: None,
            }),
            ..Raw::default()
        };
        assert!(build(raw)
            .unwrap_err()
            .to_string()
            .contains("cache.max_bytes"));
    }
}
