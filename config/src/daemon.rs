//! `daemon.json`: the Docker-compatible client configuration `berth` reads.
//!
//! Keys follow Docker's meaning (`specs/docker-cli/dockerd.md`): `data-root`, `registry-mirrors`,
//! `insecure-registries`, `max-concurrent-downloads`, `max-concurrent-uploads`,
//! `max-download-attempts`, and `log-driver`/`log-opts` (defaults for new containers, checked
//! when a container is created). Two keys go beyond Docker (moby#18818):
//!
//! - `registry-mirror-map`: `{"ghcr.io": ["https://mirror.internal"]}`, mirrors for any registry;
//! - `registry-mirrors-only`: `true` refuses to fall back to the upstream when every mirror fails.
//!
//! Other Docker keys are accepted with a warning that `berth` ignores them; unknown keys also warn.
//! Bad values are errors naming the key.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Result type of this module.
pub type Result<T> = std::result::Result<T, DaemonConfigError>;

/// Why a `daemon.json` could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DaemonConfigError {
    /// The file exists but could not be read.
    #[error("cannot read daemon config")]
    Read(#[source] std::io::Error),
    /// Not JSON, or not an object.
    #[error("invalid daemon config `{path}`: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Parser message with line and column.
        message: String,
    },
    /// A key has a bad value.
    #[error("invalid value for `{key}` in daemon config: {reason}")]
    Invalid {
        /// The key as written.
        key: String,
        /// What is wrong and what is accepted.
        reason: String,
    },
}

/// Docker's documented keys that `berth` does not use: accepted, with a warning.
const IGNORED_DOCKER_KEYS: &[&str] = &[
    "authorization-plugins",
    "bip",
    "bridge",
    "builder",
    "cgroup-parent",
    "containerd",
    "debug",
    "default-address-pools",
    "default-runtime",
    "default-ulimits",
    "dns",
    "dns-opts",
    "dns-search",
    "exec-opts",
    "experimental",
    "features",
    "group",
    "hosts",
    "icc",
    "init",
    "iptables",
    "ip-forward",
    "ip-masq",
    "ipv6",
    "labels",
    "live-restore",
    "log-level",
    "mtu",
    "runtimes",
    "seccomp-profile",
    "selinux-enabled",
    "storage-driver",
    "storage-opts",
    "tls",
    "tlscacert",
    "tlscert",
    "tlskey",
    "tlsverify",
    "userland-proxy",
    "userns-remap",
];

/// An `insecure-registries` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Insecure {
    /// `host[:port]`
    Host(String),
    /// `a.b.c.d/n` or an IPv6 CIDR.
    Cidr(IpAddr, u8),
}

impl std::fmt::Display for Insecure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Host(h) => f.write_str(h),
            Self::Cidr(net, bits) => write!(f, "{net}/{bits}"),
        }
    }
}

impl Insecure {
    fn contains(&self, ip: IpAddr) -> bool {
        let Self::Cidr(net, bits) = self else {
            return false;
        };
        match (net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = if *bits == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(*bits))
                };
                u32::from(*n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = if *bits == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(*bits))
                };
                u128::from(*n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonConfig {
    /// `data-root`, when set.
    pub data_root: Option<PathBuf>,
    /// `registry-mirrors`: for `docker.io`, tried in order before the upstream.
    pub registry_mirrors: Vec<String>,
    /// `registry-mirror-map`: mirrors for other registries, by registry host.
    pub registry_mirror_map: BTreeMap<String, Vec<String>>,
    /// `registry-mirrors-only`: never fall back to the upstream for mirrored registries.
    pub registry_mirrors_only: bool,
    /// `insecure-registries`.
    pub insecure_registries: Vec<Insecure>,
    /// `max-concurrent-downloads` (Docker's default 3).
    pub max_concurrent_downloads: u32,
    /// `max-concurrent-uploads` (Docker's default 5).
    pub max_concurrent_uploads: u32,
    /// `max-download-attempts` (Docker's default 5).
    pub max_download_attempts: u32,
    /// `log-driver`: new containers' logging driver (Docker's default `json-file`).
    pub log_driver: Option<String>,
    /// `log-opts`: its options (`max-size`, `max-file`), as strings like Docker's.
    pub log_opts: BTreeMap<String, String>,
    /// Warnings about ignored or unknown keys, for the caller to print.
    pub warnings: Vec<String>,
    /// Where the settings came from (`None`: built-in defaults).
    pub source: Option<PathBuf>,
    /// The settings are the registry keys of Docker's `daemon.json` ([`DaemonConfig::load_default`]).
    pub from_docker: bool,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        Self {
            data_root: None,
            registry_mirrors: Vec::new(),
            registry_mirror_map: BTreeMap::new(),
            registry_mirrors_only: false,
            insecure_registries: Vec::new(),
            max_concurrent_downloads: 3,
            max_concurrent_uploads: 5,
            max_download_attempts: 5,
            log_driver: None,
            log_opts: BTreeMap::new(),
            warnings: Vec::new(),
            source: None,
            from_docker: false,
        }
    }
}

/// Default location of the file.
pub const DEFAULT_PATH: &str = "/etc/berth/daemon.json";

/// Docker's `daemon.json`, whose registry keys berth takes when [`DEFAULT_PATH`] does not exist
/// (`BERTH_DOCKER_DAEMON_JSON` points elsewhere).
pub const DOCKER_PATH: &str = "/etc/docker/daemon.json";

/// The keys berth takes from Docker's `daemon.json`: how to reach registries. Never its
/// `data-root` (Docker's store is not berth's) nor anything else.
pub const DOCKER_REGISTRY_KEYS: [&str; 7] = [
    "registry-mirrors",
    "registry-mirror-map",
    "registry-mirrors-only",
    "insecure-registries",
    "max-concurrent-downloads",
    "max-concurrent-uploads",
    "max-download-attempts",
];

impl DaemonConfig {
    /// Reads `path`. A missing file at the default location means defaults; a missing file that
    /// was asked for explicitly is an error.
    ///
    /// # Errors
    /// Unreadable file, invalid JSON, bad values.
    pub fn load(path: &Path, explicit: bool) -> Result<Self> {
        match fs_err::read_to_string(path) {
            Ok(text) => Self::parse(path, &text).map(|mut c| {
                c.source = Some(path.to_owned());
                c
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => Ok(Self::default()),
            Err(e) => Err(DaemonConfigError::Read(e)),
        }
    }

    /// berth's own file when it exists; otherwise the registry keys of Docker's
    /// ([`DOCKER_REGISTRY_KEYS`]), so the mirrors a Docker user already has apply; otherwise the
    /// defaults. Docker's file is Docker's: its other keys are ignored without a word, and a
    /// file berth cannot use gives a warning, not an error.
    ///
    /// # Errors
    /// berth's own file is unreadable or invalid.
    pub fn load_default(own: &Path, docker: &Path) -> Result<Self> {
        if own.exists() {
            return Self::load(own, true);
        }
        let Ok(text) = fs_err::read_to_string(docker) else {
            return Ok(Self::default());
        };
        let filtered = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.as_object().cloned())
            .map(|obj| {
                obj.into_iter()
                    .filter(|(k, _)| DOCKER_REGISTRY_KEYS.contains(&k.as_str()))
                    .collect::<serde_json::Map<_, _>>()
            });
        let parsed = filtered
            .ok_or_else(|| "not a JSON object".to_owned())
            .and_then(|obj| {
                Self::parse(docker, &serde_json::Value::Object(obj).to_string())
                    .map_err(|e| e.to_string())
            });
        match parsed {
            Ok(mut c) => {
                c.source = Some(docker.to_owned());
                c.from_docker = true;
                Ok(c)
            }
            Err(why) => {
                let mut c = Self::default();
                c.warnings.push(format!(
                    "cannot use the registry settings of `{}` ({why}); using defaults",
                    docker.display()
                ));
                Ok(c)
            }
        }
    }

    /// Parses the file's text (`path` is only used in messages).
    ///
    /// # Errors
    /// Invalid JSON or bad values.
    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| DaemonConfigError::Parse {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
        let obj = value.as_object().ok_or_else(|| DaemonConfigError::Parse {
            path: path.to_owned(),
            message: "the top level must be a JSON object".into(),
        })?;
        let mut c = Self::default();
        for (key, v) in obj {
            match key.as_str() {
                "data-root" => {
                    let s = string(key, v)?;
                    if !Path::new(&s).is_absolute() {
                        return Err(invalid(key, format!("`{s}` must be an absolute path")));
                    }
                    c.data_root = Some(PathBuf::from(s));
                }
                "registry-mirrors" => {
                    c.registry_mirrors = strings(key, v)?
                        .iter()
                        .map(|m| mirror_url(key, m))
                        .collect::<Result<_>>()?;
                }
                "registry-mirror-map" => {
                    let map = v.as_object().ok_or_else(|| {
                        invalid(
                            key,
                            "must be an object of registry host to a list of mirror URLs".into(),
                        )
                    })?;
                    for (host, list) in map {
                        let k = format!("{key}.{host}");
                        if host.is_empty() || host.contains('/') {
                            return Err(invalid(
                                &k,
                                "keys are registry hosts like `ghcr.io`".into(),
                            ));
                        }
                        let urls = strings(&k, list)?
                            .iter()
                            .map(|m| mirror_url(&k, m))
                            .collect::<Result<Vec<_>>>()?;
                        c.registry_mirror_map.insert(host.clone(), urls);
                    }
                }
                "registry-mirrors-only" => {
                    c.registry_mirrors_only = v
                        .as_bool()
                        .ok_or_else(|| invalid(key, "must be true or false".into()))?;
                }
                "insecure-registries" => {
                    c.insecure_registries = strings(key, v)?
                        .iter()
                        .map(|e| insecure_entry(key, e))
                        .collect::<Result<_>>()?;
                }
                "max-concurrent-downloads" => c.max_concurrent_downloads = positive(key, v)?,
                "max-concurrent-uploads" => c.max_concurrent_uploads = positive(key, v)?,
                "max-download-attempts" => c.max_download_attempts = positive(key, v)?,
                "log-driver" => c.log_driver = Some(string(key, v)?),
                "log-opts" => {
                    let map = v.as_object().ok_or_else(|| {
                        invalid(key, "must be an object of option names to strings".into())
                    })?;
                    for (name, value) in map {
                        let value = string(&format!("{key}.{name}"), value)?;
                        c.log_opts.insert(name.clone(), value);
                    }
                }
                k if IGNORED_DOCKER_KEYS.contains(&k) => {
                    c.warnings.push(format!(
                        "daemon config key `{k}` is a dockerd setting berth does not use; ignored"
                    ));
                }
                k => c
                    .warnings
                    .push(format!("unknown daemon config key `{k}`; ignored")),
            }
        }
        Ok(c)
    }

    /// Mirrors to try, in order, for a registry host (`docker.io` uses `registry-mirrors`).
    #[must_use]
    pub fn mirrors_for(&self, registry: &str) -> &[String] {
        if let Some(m) = self.registry_mirror_map.get(registry) {
            return m;
        }
        if registry == "docker.io" {
            &self.registry_mirrors
        } else {
            &[]
        }
    }

    /// Whether `host[:port]` (whose name resolved to `resolved`) may use plain HTTP or unverified
    /// TLS: listed by name, inside a listed CIDR, or on loopback (always, as Docker does).
    #[must_use]
    pub fn is_insecure(&self, host_port: &str, resolved: &[IpAddr]) -> bool {
        let host = strip_port(host_port);
        let literal: Option<IpAddr> = host.trim_matches(['[', ']']).parse().ok();
        let ips: Vec<IpAddr> = literal
            .into_iter()
            .chain(resolved.iter().copied())
            .collect();
        if host == "localhost" || ips.iter().any(IpAddr::is_loopback) {
            return true;
        }
        self.insecure_registries.iter().any(|e| match e {
            Insecure::Host(h) => h == host_port || h == host,
            Insecure::Cidr(..) => ips.iter().any(|ip| e.contains(*ip)),
        })
    }
}

fn strip_port(host_port: &str) -> &str {
    if let Some(rest) = host_port.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host_port.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) && !h.contains(':') => h,
        _ => host_port,
    }
}

fn invalid(key: &str, reason: String) -> DaemonConfigError {
    DaemonConfigError::Invalid {
        key: key.to_owned(),
        reason,
    }
}

fn string(key: &str, v: &serde_json::Value) -> Result<String> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| invalid(key, format!("must be a string, not {v}")))
}

fn strings(key: &str, v: &serde_json::Value) -> Result<Vec<String>> {
    let arr = v
        .as_array()
        .ok_or_else(|| invalid(key, "must be a list of strings".into()))?;
    arr.iter().map(|x| string(key, x)).collect()
}

fn positive(key: &str, v: &serde_json::Value) -> Result<u32> {
    v.as_u64()
        .filter(|n| (1..=1024).contains(n))
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| invalid(key, format!("must be an integer from 1 to 1024, not {v}")))
}

fn mirror_url(key: &str, raw: &str) -> Result<String> {
    let u = url::Url::parse(raw).map_err(|e| {
        invalid(
            key,
            format!("`{raw}` is not a URL ({e}); write e.g. `https://mirror.example:5000`"),
        )
    })?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err(invalid(
            key,
            format!("`{raw}` must be an http:// or https:// URL with a host"),
        ));
    }
    if u.path() != "/" || u.query().is_some() || u.fragment().is_some() {
        return Err(invalid(
            key,
            format!("`{raw}` must not have a path, query or fragment"),
        ));
    }
    Ok(u.as_str().trim_end_matches('/').to_owned())
}

fn insecure_entry(key: &str, raw: &str) -> Result<Insecure> {
    if raw.contains("://") {
        return Err(invalid(
            key,
            format!("`{raw}`: write `host:port` or a CIDR, without a scheme"),
        ));
    }
    if let Some((ip, bits)) = raw.split_once('/') {
        let ip: IpAddr = ip
            .parse()
            .map_err(|_| invalid(key, format!("`{raw}` is not a valid CIDR")))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let bits: u8 = bits
            .parse()
            .ok()
            .filter(|b| *b <= max)
            .ok_or_else(|| invalid(key, format!("`{raw}` has an invalid prefix length")))?;
        return Ok(Insecure::Cidr(ip, bits));
    }
    if raw.is_empty() || raw.contains(char::is_whitespace) || raw.contains('/') {
        return Err(invalid(key, format!("`{raw}` is not a `host[:port]`")));
    }
    Ok(Insecure::Host(raw.to_owned()))
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn parse(text: &str) -> Result<DaemonConfig> {
        DaemonConfig::parse(Path::new("daemon.json"), text)
    }

    #[test]
    fn dockers_file_gives_only_its_registry_keys_when_ours_is_missing() {
        let t = tempfile::tempdir().unwrap();
        let own = t.path().join("berth.json");
        let docker = t.path().join("docker.json");
        // Nothing at all: defaults.
        let c = DaemonConfig::load_default(&own, &docker).unwrap();
        assert!(c.source.is_none() && !c.from_docker);
        std::fs::write(
            &docker,
            r#"{"data-root": "/var/lib/docker", "mtu": 1400, "registry-mirrors": ["http://m:5000"],
                "insecure-registries": ["reg:5000"], "max-concurrent-downloads": 7}"#,
        )
        .unwrap();
        let c = DaemonConfig::load_default(&own, &docker).unwrap();
        assert!(c.from_docker);
        assert_eq!(c.source.as_deref(), Some(docker.as_path()));
        assert_eq!(c.registry_mirrors, ["http://m:5000"]);
        assert_eq!(c.max_concurrent_downloads, 7);
        assert!(
            c.data_root.is_none(),
            "Docker's data-root must never be taken"
        );
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        // An unusable Docker file: a warning, defaults.
        std::fs::write(&docker, "{not json").unwrap();
        let c = DaemonConfig::load_default(&own, &docker).unwrap();
        assert!(c.registry_mirrors.is_empty());
        assert!(
            c.warnings[0].contains("cannot use the registry settings"),
            "{:?}",
            c.warnings
        );
        // Ours exists: Docker's is not read, even when ours is empty.
        std::fs::write(&docker, r#"{"registry-mirrors": ["http://m:5000"]}"#).unwrap();
        std::fs::write(&own, "{}").unwrap();
        let c = DaemonConfig::load_default(&own, &docker).unwrap();
        assert!(c.registry_mirrors.is_empty() && !c.from_docker);
        assert_eq!(c.source.as_deref(), Some(own.as_path()));
    }

    #[test]
    fn defaults_like_docker() {
        let c = parse("{}").unwrap();
        assert_eq!(
            (
                c.max_concurrent_downloads,
                c.max_concurrent_uploads,
                c.max_download_attempts
            ),
            (3, 5, 5)
        );
        assert!(c.registry_mirrors.is_empty() && c.warnings.is_empty());
    }

    #[test]
    fn full_file() {
        let c = parse(
            r#"{"data-root": "/srv/berth", "registry-mirrors": ["https://m1.example/", "http://10.0.0.2:5000"],
                "registry-mirror-map": {"ghcr.io": ["https://ghcr-mirror.example"]},
                "registry-mirrors-only": true,
                "insecure-registries": ["reg.internal:5000", "10.1.0.0/16"],
                "max-concurrent-downloads": 8, "log-driver": "json-file",
                "log-opts": {"max-size": "10m", "max-file": "3"}, "log-level": "warn", "colour": 1}"#,
        )
        .unwrap();
        assert_eq!(c.data_root.as_deref(), Some(Path::new("/srv/berth")));
        assert_eq!(
            c.mirrors_for("docker.io"),
            ["https://m1.example", "http://10.0.0.2:5000"]
        );
        assert_eq!(c.mirrors_for("ghcr.io"), ["https://ghcr-mirror.example"]);
        assert!(c.mirrors_for("quay.io").is_empty());
        assert!(c.registry_mirrors_only);
        assert_eq!(c.max_concurrent_downloads, 8);
        assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
        assert!(c.warnings[0].contains("colour") || c.warnings[1].contains("colour"));
        assert_eq!(c.log_driver.as_deref(), Some("json-file"));
        assert_eq!(c.log_opts.get("max-size").map(String::as_str), Some("10m"));
        assert_eq!(c.log_opts.get("max-file").map(String::as_str), Some("3"));
    }

    #[rstest]
    #[case(r#"{"registry-mirrors": ["ftp://x"]}"#, "registry-mirrors")]
    #[case(r#"{"registry-mirrors": ["https://x/v2/"]}"#, "registry-mirrors")]
    #[case(r#"{"registry-mirrors": "https://x"}"#, "registry-mirrors")]
    #[case(r#"{"insecure-registries": ["http://x:5000"]}"#, "insecure-registries")]
    #[case(r#"{"insecure-registries": ["10.0.0.0/40"]}"#, "insecure-registries")]
    #[case(r#"{"max-concurrent-downloads": 0}"#, "max-concurrent-downloads")]
    #[case(r#"{"max-download-attempts": "5"}"#, "max-download-attempts")]
    #[case(r#"{"log-opts": {"max-file": 3}}"#, "log-opts.max-file")]
    #[case(r#"{"log-opts": ["max-size=1m"]}"#, "log-opts")]
    #[case(r#"{"log-driver": 1}"#, "log-driver")]
    #[case(r#"{"data-root": "relative/dir"}"#, "data-root")]
    #[case(
        r#"{"registry-mirror-map": {"ghcr.io": "https://m"}}"#,
        "registry-mirror-map.ghcr.io"
    )]
    #[case(r#"{"registry-mirrors-only": "yes"}"#, "registry-mirrors-only")]
    fn bad_values_name_the_key(#[case] text: &str, #[case] key: &str) {
        let err = parse(text).unwrap_err().to_string();
        assert!(err.contains(&format!("`{key}`")), "{err}");
    }

    #[test]
    fn malformed_json_is_an_error_with_position() {
        let err = parse("{\"registry-mirrors\": [}").unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
        assert!(parse("[]").is_err());
    }

    #[rstest]
    #[case("127.0.0.1:5000", &[], true)]
    #[case("localhost:5000", &[], true)]
    #[case("[::1]:5000", &[], true)]
    #[case("reg.internal:5000", &[], true)]
    #[case("reg.internal:6000", &[], false)]
    #[case("10.1.2.3:443", &[], true)]
    #[case("build.example", &["10.1.9.9"], true)]
    #[case("registry-1.docker.io", &["34.1.1.1"], false)]
    fn insecure_matching(#[case] host: &str, #[case] resolved: &[&str], #[case] expected: bool) {
        let c = parse(r#"{"insecure-registries": ["reg.internal:5000", "10.1.0.0/16"]}"#).unwrap();
        let ips: Vec<IpAddr> = resolved.iter().map(|s| s.parse().unwrap()).collect();
        assert_eq!(c.is_insecure(host, &ips), expected, "{host}");
    }

    #[test]
    fn missing_default_file_is_defaults_but_missing_explicit_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("daemon.json");
        assert_eq!(
            DaemonConfig::load(&p, false).unwrap(),
            DaemonConfig::default()
        );
        assert!(DaemonConfig::load(&p, true).is_err());
    }
}
