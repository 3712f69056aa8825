//! Configuration of `berth-registry`.
//!
//! Precedence, lowest to highest: embedded defaults, the TOML file (`--config FILE`), environment
//! variables (`BERTH_REGISTRY_*`), command-line flags. The file is versioned (`version = 1`) and
//! unknown keys are rejected, so a typo never silently falls back to a default.
//!
//! ```toml
//! version = 1
//! addr = "0.0.0.0:5000"
//! data_dir = "/var/lib/berth-registry"
//! read_only = false
//! delete_enabled = false          # default: true with [auth], false without
//! max_manifest_bytes = 4194304
//! shutdown_grace_secs = 30
//!
//! [uploads]
//! max_age_secs = 86400
//! purge_interval_secs = 3600
//! ```
//!
//! `[limits]` (connection caps and timeouts): see [`crate::registry_limits`].
//!
//! `[gc]`, `[[retention]]`, `[metrics]`, `[[notifications]]`: see [`crate::registry_ops`].
//!
//! `[[mirror]]`, `[cache]`, `sparse_manifests` (the pull-through mirror): see
//! [`crate::registry_mirror`].
//!
//! `[gc]`, `[[retention]]`, `[metrics]`, `[[notifications]]`: see [`crate::registry_ops`].
//!
//! `[tls]`, `[auth]`, `[auth.token]`, `[auth.groups]` and `[[auth.access]]`: see
//! [`crate::registry_auth`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::registry_auth;
pub use crate::registry_auth::{AccessRule, AuthConfig, AuthOverrides, TlsConfig, TokenConfig};
use crate::registry_limits;
pub use crate::registry_limits::Limits;
use crate::registry_mirror;
pub use crate::registry_mirror::{CacheConfig, MirrorConfig};
use crate::registry_ops;

/// Result type of this module.
pub type Result<T> = std::result::Result<T, RegistryConfigError>;

/// Why a registry configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RegistryConfigError {
    /// The file could not be read.
    #[error("cannot read config file")]
    Read(#[source] std::io::Error),
    /// The file is not valid TOML or has a key of the wrong type or an unknown key.
    #[error("invalid config file `{path}`: {message}")]
    Parse {
        /// Path of the file.
        path: PathBuf,
        /// What the parser reported, naming the key.
        message: String,
    },
    /// A key has a value outside its allowed range.
    #[error("invalid value for `{key}`: {reason}")]
    Invalid {
        /// Dotted key name, as written in the file (or the env variable that set it).
        key: String,
        /// What is wrong and what is accepted.
        reason: String,
    },
}

/// Default listen address, as the CNCF registry's.
pub const DEFAULT_ADDR: &str = "0.0.0.0:5000";
/// Default manifest size limit: the spec asks registries to accept at least 4 MiB.
pub const DEFAULT_MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

/// The complete, validated configuration of `berth-registry`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryConfig {
    /// Address to listen on.
    pub addr: SocketAddr,
    /// Directory holding blobs, repositories and upload sessions; created if missing.
    pub data_dir: PathBuf,
    /// Refuse every write (push, delete) with `UNSUPPORTED`.
    pub read_only: bool,
    /// Allow `DELETE` of manifests, tags and blobs (spec: "Registries MAY implement deletion").
    pub delete_enabled: bool,
    /// Largest manifest accepted on `PUT`, in bytes.
    pub max_manifest_bytes: u64,
    /// Age after which an unfinished upload session is removed, in seconds.
    pub upload_max_age_secs: u64,
    /// How often stale upload sessions are looked for, in seconds.
    pub upload_purge_interval_secs: u64,
    /// After SIGTERM/SIGINT, how long in-flight requests may take before the process exits.
    pub shutdown_grace_secs: u64,
    /// `[tls]`: HTTPS; `None` serves plain HTTP.
    pub tls: Option<TlsConfig>,
    /// `[auth]`: users, tokens and rules; `None`: anyone who reaches the address may pull and push.
    pub auth: Option<AuthConfig>,
    /// `[[mirror]]`/`--mirror`: upstream registries mirrored (see [`crate::registry_mirror`]).
    pub mirrors: Vec<MirrorConfig>,
    /// `[cache]`: how much upstream content the mirror keeps.
    pub cache: CacheConfig,
    /// Accept manifests whose referenced blobs or children are absent (local repositories).
    pub sparse_manifests: bool,
    /// `[limits]`: timeouts and caps that keep one client from stalling the others.
    pub limits: Limits,
    /// `[gc]`, `[[retention]]`, `[metrics]`, `[[notifications]]`: see [`crate::registry_ops`].
    pub ops: registry_ops::Ops,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            addr: DEFAULT_ADDR.parse().expect("valid default address"),
            data_dir: default_data_dir(),
            read_only: false,
            delete_enabled: false,
            max_manifest_bytes: DEFAULT_MAX_MANIFEST_BYTES,
            upload_max_age_secs: 24 * 3600,
            upload_purge_interval_secs: 3600,
            shutdown_grace_secs: 30,
            tls: None,
            auth: None,
            mirrors: Vec::new(),
            cache: CacheConfig::default(),
            sparse_manifests: false,
            limits: Limits::default(),
            ops: registry_ops::Ops::default(),
        }
    }
}

/// `/var/lib/berth-registry` for root, else `$XDG_DATA_HOME/berth-registry` (or
/// `~/.local/share/berth-registry`), else `./berth-registry-data`.
#[must_use]
pub fn default_data_dir() -> PathBuf {
    let is_root = std::env::var_os("USER").is_some_and(|u| u == "root")
        || Path::new("/proc/self").exists() && is_uid_zero();
    if is_root {
        return PathBuf::from("/var/lib/berth-registry");
    }
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(xdg).join("berth-registry");
    }
    if let Some(home) = std::env::var_os("HOME") {
        return PathBuf::from(home).join(".local/share/berth-registry");
    }
    PathBuf::from("berth-registry-data")
}

fn is_uid_zero() -> bool {
    // `/proc/self/status` carries "Uid:\t<real>\t<effective>..."; avoids an unsafe libc call.
    fs_err::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// The file as written by users; every field optional so defaults fill the gaps.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    version: Option<u32>,
    addr: Option<String>,
    data_dir: Option<PathBuf>,
    read_only: Option<bool>,
    delete_enabled: Option<bool>,
    max_manifest_bytes: Option<u64>,
    shutdown_grace_secs: Option<u64>,
    uploads: Option<FileUploads>,
    tls: Option<registry_auth::FileTls>,
    auth: Option<registry_auth::FileAuth>,
    #[serde(default)]
    mirror: Vec<registry_mirror::FileMirror>,
    cache: Option<registry_mirror::FileCache>,
    sparse_manifests: Option<bool>,
    limits: Option<registry_limits::FileLimits>,
    gc: Option<registry_ops::FileGc>,
    retention: Option<Vec<registry_ops::RetentionRule>>,
    metrics: Option<registry_ops::FileMetrics>,
    notifications: Option<Vec<registry_ops::FileNotification>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileUploads {
    max_age_secs: Option<u64>,
    purge_interval_secs: Option<u64>,
}

/// Values given on the command line; `None` means "not given".
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--addr`
    pub addr: Option<String>,
    /// `--data-dir`
    pub data_dir: Option<PathBuf>,
    /// `--read-only` (only ever turns it on)
    pub read_only: bool,
    /// `--no-delete` (only ever turns deletion off)
    pub no_delete: bool,
    /// `--delete` (turns deletion on; `--no-delete` wins)
    pub delete: bool,
    /// `--tls-cert`, `--tls-key`, `--htpasswd`
    pub auth: AuthOverrides,
    /// `--mirror [REGISTRY=]URL`, in order (the first is the default upstream)
    pub mirrors: Vec<String>,
}

impl RegistryConfig {
    /// Builds the configuration from an optional file, an environment lookup and CLI overrides.
    ///
    /// `env` is a lookup function so tests need not touch the process environment.
    ///
    /// # Errors
    /// When the file cannot be read or parsed, or a value is out of range; the error names the key.
    pub fn load(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
        cli: &Overrides,
    ) -> Result<Self> {
        let mut raw = match file {
            Some(path) => {
                let text = fs_err::read_to_string(path).map_err(RegistryConfigError::Read)?;
                parse_file(path, &text)?
            }
            None => FileConfig::default(),
        };
        if let Some(v) = raw.version {
            if v != 1 {
                return Err(invalid(
                    "version",
                    format!("unsupported version {v}; this build reads version 1"),
                ));
            }
        }
        // Environment overlay: one variable per key.
        let env_str = |name: &str| env(name).filter(|v| !v.is_empty());
        if let Some(v) = env_str("BERTH_REGISTRY_ADDR") {
            raw.addr = Some(v);
        }
        if let Some(v) = env_str("BERTH_REGISTRY_DATA_DIR") {
            raw.data_dir = Some(PathBuf::from(v));
        }
        if let Some(v) = env_str("BERTH_REGISTRY_READ_ONLY") {
            raw.read_only = Some(parse_bool("BERTH_REGISTRY_READ_ONLY", &v)?);
        }
        if let Some(v) = env_str("BERTH_REGISTRY_DELETE_ENABLED") {
            raw.delete_enabled = Some(parse_bool("BERTH_REGISTRY_DELETE_ENABLED", &v)?);
        }
        if let Some(v) = env_str("BERTH_REGISTRY_MAX_MANIFEST_BYTES") {
            raw.max_manifest_bytes = Some(parse_u64("BERTH_REGISTRY_MAX_MANIFEST_BYTES", &v)?);
        }
        if let Some(v) = env_str("BERTH_REGISTRY_SHUTDOWN_GRACE_SECS") {
            raw.shutdown_grace_secs = Some(parse_u64("BERTH_REGISTRY_SHUTDOWN_GRACE_SECS", &v)?);
        }
        let uploads = raw.uploads.get_or_insert_with(FileUploads::default);
        if let Some(v) = env_str("BERTH_REGISTRY_UPLOADS_MAX_AGE_SECS") {
            uploads.max_age_secs = Some(parse_u64("BERTH_REGISTRY_UPLOADS_MAX_AGE_SECS", &v)?);
        }
        if let Some(v) = env_str("BERTH_REGISTRY_UPLOADS_PURGE_INTERVAL_SECS") {
            uploads.purge_interval_secs =
                Some(parse_u64("BERTH_REGISTRY_UPLOADS_PURGE_INTERVAL_SECS", &v)?);
        }
        // Command line wins.
        if let Some(v) = &cli.addr {
            raw.addr = Some(v.clone());
        }
        if let Some(v) = &cli.data_dir {
            raw.data_dir = Some(v.clone());
        }
        if cli.read_only {
            raw.read_only = Some(true);
        }
        registry_auth::overlay(&mut raw.tls, &mut raw.auth, env, &cli.auth)?;
        registry_limits::overlay(&mut raw.limits, env)?;
        let mut ops = registry_ops::FileOps {
            gc: raw.gc.take(),
            retention: raw.retention.take(),
            metrics: raw.metrics.take(),
            notifications: raw.notifications.take(),
        };
        registry_ops::overlay(&mut ops, env)?;
        (raw.gc, raw.retention, raw.metrics, raw.notifications) =
            (ops.gc, ops.retention, ops.metrics, ops.notifications);
        let mut mirror = registry_mirror::Raw {
            mirror: std::mem::take(&mut raw.mirror),
            cache: raw.cache.take(),
            sparse_manifests: raw.sparse_manifests.take(),
        };
        registry_mirror::overlay(&mut mirror, env, &cli.mirrors)?;
        (raw.mirror, raw.cache, raw.sparse_manifests) =
            (mirror.mirror, mirror.cache, mirror.sparse_manifests);
        if cli.delete {
            raw.delete_enabled = Some(true);
        }
        if cli.no_delete {
            raw.delete_enabled = Some(false);
        }
        Self::from_raw(raw)
    }

    fn from_raw(raw: FileConfig) -> Result<Self> {
        let defaults = Self::default();
        let addr = match raw.addr {
            Some(a) => parse_addr(&a)?,
            None => defaults.addr,
        };
        let data_dir = raw.data_dir.unwrap_or(defaults.data_dir);
        if data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "must not be empty".into()));
        }
        let max_manifest_bytes = raw
            .max_manifest_bytes
            .unwrap_or(defaults.max_manifest_bytes);
        if !(1024..=64 * 1024 * 1024).contains(&max_manifest_bytes) {
            return Err(invalid(
                "max_manifest_bytes",
                format!("{max_manifest_bytes} is outside 1024..=67108864"),
            ));
        }
        let uploads = raw.uploads.unwrap_or_default();
        let upload_max_age_secs = uploads.max_age_secs.unwrap_or(defaults.upload_max_age_secs);
        if upload_max_age_secs == 0 {
            return Err(invalid("uploads.max_age_secs", "must be at least 1".into()));
        }
        let upload_purge_interval_secs = uploads
            .purge_interval_secs
            .unwrap_or(defaults.upload_purge_interval_secs);
        if upload_purge_interval_secs == 0 {
            return Err(invalid(
                "uploads.purge_interval_secs",
                "must be at least 1".into(),
            ));
        }
        let shutdown_grace_secs = raw
            .shutdown_grace_secs
            .unwrap_or(defaults.shutdown_grace_secs);
        let (tls, auth) = registry_auth::build(raw.tls, raw.auth)?;
        let limits = registry_limits::build(raw.limits)?;
        let ops = registry_ops::build(registry_ops::FileOps {
            gc: raw.gc,
            retention: raw.retention,
            metrics: raw.metrics,
            notifications: raw.notifications,
        })?;
        let (mirrors, cache, sparse_manifests) = registry_mirror::build(registry_mirror::Raw {
            mirror: raw.mirror,
            cache: raw.cache,
            sparse_manifests: raw.sparse_manifests,
        })?;
        // As the CNCF registry: no deletes unless asked for; with users, deletes follow the rules.
        let delete_enabled = raw.delete_enabled.unwrap_or(auth.is_some());
        Ok(Self {
            addr,
            data_dir,
            read_only: raw.read_only.unwrap_or(defaults.read_only),
            delete_enabled,
            max_manifest_bytes,
            upload_max_age_secs,
            upload_purge_interval_secs,
            shutdown_grace_secs,
            tls,
            auth,
            mirrors,
            cache,
            sparse_manifests,
            limits,
            ops,
        })
    }
}

fn parse_file(path: &Path, text: &str) -> Result<FileConfig> {
    toml::from_str(text).map_err(|e| {
        let key = e.span().and_then(|s| key_at(text, s.start));
        match key {
            // A value of the wrong type: name the key, as for range errors.
            Some(key) if !e.message().starts_with("unknown field") => {
                RegistryConfigError::Invalid {
                    key,
                    reason: e.message().to_owned(),
                }
            }
            _ => RegistryConfigError::Parse {
                path: path.to_owned(),
                message: e.message().to_owned()
                    + &e.span()
                        .map(|s| format!(" (line {})", line_of(text, s.start)))
                        .unwrap_or_default(),
            },
        }
    })
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The dotted key (`uploads.max_age_secs`) of the `key = value` line holding byte `offset`.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next()?;
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"');
    if key.is_empty() || key.starts_with('[') {
        return None;
    }
    let section = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && l.ends_with(']'))
        .map(|l| l.trim_matches(['[', ']']).trim().to_owned());
    Some(match section {
        Some(sec) => format!("{sec}.{key}"),
        None => key.to_owned(),
    })
}

fn parse_addr(value: &str) -> Result<SocketAddr> {
    // Accept ":5000" like the CNCF registry does.
    let full = if value.starts_with(':') {
        format!("0.0.0.0{value}")
    } else {
        value.to_owned()
    };
    full.parse().map_err(|_| {
        invalid(
            "addr",
            format!("`{value}` is not an IP:PORT address (e.g. `127.0.0.1:5000`)"),
        )
    })
}

pub(crate) fn parse_bool(key: &str, value: &str) -> Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(invalid(
            key,
            format!("`{value}` is not a boolean (true/false)"),
        )),
    }
}

pub(crate) fn parse_u64(key: &str, value: &str) -> Result<u64> {
    value
        .parse()
        .map_err(|_| invalid(key, format!("`{value}` is not a non-negative integer")))
}

/// `invalid value for KEY: REASON`, shared by every section of the registry config.
pub(crate) fn invalid(key: &str, reason: String) -> RegistryConfigError {
    RegistryConfigError::Invalid {
        key: key.to_owned(),
        reason,
    }
}

/// Loads a config from `text` with `env` as the environment (tests of every section).
#[cfg(test)]
pub(crate) fn load_text(text: &str, env: &[(&str, &str)]) -> Result<RegistryConfig> {
    use std::io::Write as _;
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let lookup = move |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    RegistryConfig::load(Some(f.path()), &lookup, &Overrides::default())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::io::Write;

    use rstest::rstest;

    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn load_text(text: &str) -> Result<RegistryConfig> {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        RegistryConfig::load(Some(f.path()), &no_env, &Overrides::default())
    }

    #[test]
    fn defaults_need_no_file() {
        let c = RegistryConfig::load(None, &no_env, &Overrides::default()).unwrap();
        assert_eq!(c.addr.to_string(), "0.0.0.0:5000");
        assert!(!c.delete_enabled, "deletes are off without [auth]");
        assert!(!c.read_only);
        assert_eq!(c.max_manifest_bytes, 4 * 1024 * 1024);
    }

    #[test]
    fn file_then_env_then_cli() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "version = 1\naddr = \"127.0.0.1:6000\"\ndata_dir = \"/a\"\n[uploads]\nmax_age_secs = 5").unwrap();
        let env: HashMap<&str, &str> = [("BERTH_REGISTRY_DATA_DIR", "/b")].into();
        let lookup = |k: &str| env.get(k).map(|v| (*v).to_owned());
        let c = RegistryConfig::load(Some(f.path()), &lookup, &Overrides::default()).unwrap();
        assert_eq!(c.addr.to_string(), "127.0.0.1:6000");
        assert_eq!(c.data_dir, PathBuf::from("/b"));
        assert_eq!(c.upload_max_age_secs, 5);
        let cli = Overrides {
            addr: Some(":7000".into()),
            no_delete: true,
            read_only: true,
            ..Overrides::default()
        };
        let c = RegistryConfig::load(Some(f.path()), &lookup, &cli).unwrap();
        assert_eq!(c.addr.to_string(), "0.0.0.0:7000");
        assert!(!c.delete_enabled);
        assert!(c.read_only);
    }

    #[rstest]
    #[case("addr = \"nonsense\"", "`addr`")]
    #[case("version = 2", "`version`")]
    #[case("max_manifest_bytes = 10", "`max_manifest_bytes`")]
    #[case("[uploads]\nmax_age_secs = 0", "`uploads.max_age_secs`")]
    #[case("adr = \"x\"", "unknown field `adr`")]
    #[case("read_only = \"maybe\"", "`read_only`")]
    #[case("delete_enabled = 1", "`delete_enabled`")]
    #[case("[uploads]\nmax_age_secs = \"x\"", "`uploads.max_age_secs`")]
    #[case("this is not toml", "invalid config file")]
    fn bad_values_name_the_key(#[case] text: &str, #[case] expected: &str) {
        let err = load_text(text).unwrap_err().to_string();
        assert!(
            err.contains(expected),
            "{err:?} should contain {expected:?}"
        );
    }

    #[test]
    fn bad_env_value_names_the_variable() {
        let lookup = |k: &str| (k == "BERTH_REGISTRY_READ_ONLY").then(|| "perhaps".to_owned());
        let err = RegistryConfig::load(None, &lookup, &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("BERTH_REGISTRY_READ_ONLY"));
    }
}
