//! Local volumes and the `-v` / `--mount` flags of `run`.
//!
//! Layout (Docker's `local` driver):
//! ```text
//! <data-root>/volumes/<name>/
//!   volume.json   name, driver ("local"), creation time, labels
//!   _data/        the volume's content (the mount source)
//! ```
//! An anonymous volume has a 64-hex name and Docker's `com.docker.volume.anonymous` label.
//! Containers record the volumes they use in their state (`Volumes`), so a volume in use is
//! never removed: the container layer (`crate::container::volume_users`) tells [`remove`] who
//! uses it. This module never calls the container layer.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// The label Docker puts on anonymous volumes.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// `volume.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    /// Volume name.
    pub name: String,
    /// Always `local`.
    pub driver: String,
    /// RFC 3339, seconds.
    pub created_at: String,
    /// User labels (and Docker's anonymous label).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl Volume {
    /// Whether the volume was created anonymously.
    #[must_use]
    pub fn anonymous(&self) -> bool {
        self.labels.contains_key(ANONYMOUS_LABEL)
    }

    /// Docker's `volume inspect` document.
    #[must_use]
    pub fn inspect(&self, data_root: &Path) -> serde_json::Value {
        serde_json::json!({
            "CreatedAt": self.created_at,
            "Driver": self.driver,
            "Labels": self.labels,
            "Mountpoint": mountpoint(data_root, &self.name),
            "Name": self.name,
            "Options": {},
            "Scope": "local",
        })
    }
}

/// `<data-root>/volumes`.
#[must_use]
pub fn root(data_root: &Path) -> PathBuf {
    data_root.join("volumes")
}

/// `<data-root>/volumes/<name>/_data`.
#[must_use]
pub fn mountpoint(data_root: &Path, name: &str) -> PathBuf {
    root(data_root).join(name).join("_data")
}

/// Docker's rule for local volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
#[must_use]
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn invalid_name(name: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "create {name}: \"{name}\" includes invalid characters for a local volume name, only \
         \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, \
         use absolute path"
    )
}

/// A new anonymous volume name: 64 hex digits.
#[must_use]
pub fn anonymous_name() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Creates the volume, or returns the existing one of that name (Docker reuses it); `true`
/// when it was created now.
///
/// # Errors
/// An invalid name, or the file system.
pub fn create(
    data_root: &Path,
    name: &str,
    labels: BTreeMap<String, String>,
) -> anyhow::Result<(Volume, bool)> {
    if !valid_name(name) {
        return Err(invalid_name(name));
    }
    let dir = root(data_root).join(name);
    fs_err::create_dir_all(root(data_root))?;
    match std::fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Ok((get(data_root, name)?, false));
        }
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", dir.display())),
    }
    fs_err::create_dir(dir.join("_data"))?;
    let volume = Volume {
        name: name.to_owned(),
        driver: "local".to_owned(),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        labels,
    };
    let tmp = dir.join("volume.json.tmp");
    fs_err::write(&tmp, serde_json::to_vec_pretty(&volume)?)?;
    fs_err::rename(&tmp, dir.join("volume.json"))?;
    Ok((volume, true))
}

/// The volume named `name`.
///
/// # Errors
/// Docker's `get NAME: no such volume`.
pub fn get(data_root: &Path, name: &str) -> anyhow::Result<Volume> {
    let dir = root(data_root).join(name);
    if !valid_name(name) || !dir.join("_data").is_dir() {
        anyhow::bail!("get {name}: no such volume");
    }
    match fs_err::read(dir.join("volume.json")) {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes)?),
        // Being created right now by another `berth`.
        Err(_) => Ok(Volume {
            name: name.to_owned(),
            driver: "local".to_owned(),
            ..Volume::default()
        }),
    }
}

/// Every volume, by name.
#[must_use]
pub fn list(data_root: &Path) -> Vec<Volume> {
    let Ok(entries) = fs_err::read_dir(root(data_root)) else {
        return Vec::new();
    };
    let mut out: Vec<Volume> = entries
        .flatten()
        .filter_map(|e| get(data_root, e.file_name().to_str()?).ok())
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Removes the volume unless `users` (volume name → IDs of the containers that use it, as
/// `crate::container::volume_users` finds them) says a container uses it.
///
/// # Errors
/// Docker's `remove NAME: volume is in use - [IDS]`, `get NAME: no such volume`.
pub fn remove(
    data_root: &Path,
    name: &str,
    users: &BTreeMap<String, BTreeSet<String>>,
) -> anyhow::Result<u64> {
    get(data_root, name)?;
    if let Some(ids) = users.get(name) {
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        anyhow::bail!("remove {name}: volume is in use - [{}]", ids.join(", "));
    }
    let dir = root(data_root).join(name);
    let size = disk_usage(&dir);
    fs_err::remove_dir_all(&dir)?;
    Ok(size)
}

/// Bytes of regular files under `path`.
#[must_use]
pub fn disk_usage(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return if meta.is_file() { meta.len() } else { 0 };
    }
    std::fs::read_dir(path).map_or(0, |entries| {
        entries.flatten().map(|e| disk_usage(&e.path())).sum()
    })
}

/// Docker's copy-up: the image's content at a mount point fills a new, empty volume. `src` is
/// the path already resolved inside the container's root file system; symlinks below it are
/// copied as symlinks, never followed.
///
/// # Errors
/// The file system.
pub fn copy_up(src: &Path, dst: &Path) -> anyhow::Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(src) else {
        return Ok(());
    };
    if !meta.is_dir() || fs_err::read_dir(dst)?.next().is_some() {
        return Ok(());
    }
    copy_tree(src, dst, &meta)
}

fn copy_tree(src: &Path, dst: &Path, meta: &std::fs::Metadata) -> anyhow::Result<()> {
    for entry in fs_err::read_dir(src)? {
        let entry = entry?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let m = std::fs::symlink_metadata(&from)?;
        let ft = m.file_type();
        if ft.is_dir() {
            fs_err::create_dir(&to)?;
            copy_tree(&from, &to, &m)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(fs_err::read_link(&from)?, &to)?;
            std::os::unix::fs::lchown(&to, Some(m.uid()), Some(m.gid()))?;
        } else if ft.is_file() {
            fs_err::copy(&from, &to)?;
            attributes(&to, &m)?;
        }
        // Devices, sockets and FIFOs are left out.
    }
    attributes(dst, meta)
}

fn attributes(path: &Path, meta: &std::fs::Metadata) -> anyhow::Result<()> {
    std::os::unix::fs::chown(path, Some(meta.uid()), Some(meta.gid()))?;
    fs_err::set_permissions(path, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    Ok(())
}

/// What a `-v` / `--mount` flag mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A named volume (created on first use).
    Named(String),
    /// A new anonymous volume.
    Anonymous,
    /// A host path (absolute).
    Bind(PathBuf),
}

/// One `-v` / `--mount` flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    /// What is mounted.
    pub source: Source,
    /// Absolute path in the container.
    pub target: String,
    /// Mounted read-only.
    pub readonly: bool,
    /// A bind source that does not exist is created (`-v`) rather than refused (`--mount`).
    pub create_source: bool,
}

fn bad_volume(spec: &str, why: Option<String>) -> anyhow::Error {
    match why {
        None => anyhow::anyhow!("invalid volume specification: '{spec}'"),
        Some(why) => anyhow::anyhow!("invalid volume specification: '{spec}': {why}"),
    }
}

fn check_target(target: &str, typ: &str) -> Result<(), String> {
    if !target.starts_with('/') {
        return Err(format!(
            "invalid mount config for type \"{typ}\": invalid mount path: '{target}' mount path must be absolute"
        ));
    }
    if Path::new(target).components().count() == 1 {
        return Err(format!(
            "invalid mount config for type \"{typ}\": invalid specification: destination can't be '/'"
        ));
    }
    Ok(())
}

fn host_path(src: &str) -> anyhow::Result<PathBuf> {
    let p = Path::new(src);
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    })
}

/// Parses `-v`: `/ctr` (anonymous), `NAME:/ctr[:MODE]`, `/host:/ctr[:MODE]`, `./rel:/ctr`;
/// MODE is a comma list of `ro`/`rw` (SELinux and propagation modes are accepted and ignored).
///
/// # Errors
/// Docker's `invalid volume specification: …` wording.
pub fn parse_volume(spec: &str) -> anyhow::Result<MountSpec> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, target, mode) = match parts.as_slice() {
        [t] => (None, *t, None),
        [s, t] => (Some(*s), *t, None),
        [s, t, m] => (Some(*s), *t, Some(*m)),
        _ => return Err(bad_volume(spec, None)),
    };
    if target.is_empty() || src.is_some_and(str::is_empty) {
        return Err(bad_volume(spec, None));
    }
    let mut readonly = false;
    if let Some(mode) = mode {
        let mut rw_seen = false;
        for m in mode.split(',') {
            match m {
                "ro" | "rw" if rw_seen => {
                    return Err(bad_volume(spec, Some(format!("invalid mode: {mode}"))))
                }
                "ro" | "rw" => {
                    rw_seen = true;
                    readonly = m == "ro";
                }
                "z" | "Z" | "nocopy" | "rprivate" | "private" | "rslave" | "slave" | "rshared"
                | "shared" => {}
                _ => return Err(bad_volume(spec, Some(format!("invalid mode: {mode}")))),
            }
        }
    }
    let source = match src {
        None => Source::Anonymous,
        Some(s) if s.starts_with('/') || s.starts_with('.') => Source::Bind(host_path(s)?),
        Some(s) => {
            if !valid_name(s) {
                return Err(invalid_name(s));
            }
            Source::Named(s.to_owned())
        }
    };
    let typ = if matches!(source, Source::Bind(_)) {
        "bind"
    } else {
        "volume"
    };
    check_target(target, typ).map_err(|why| bad_volume(spec, Some(why)))?;
    Ok(MountSpec {
        source,
        target: target.to_owned(),
        readonly,
        create_source: true,
    })
}

/// Parses `--mount type=volume|bind,source=…,target=…[,readonly]` (`src`, `dst`,
/// `destination`, `ro` accepted as Docker does).
///
/// # Errors
/// Docker's `invalid argument "…" for "--mount" flag: …` wording.
pub fn parse_mount(spec: &str) -> anyhow::Result<MountSpec> {
    let bad =
        |why: String| anyhow::anyhow!("invalid argument \"{spec}\" for \"--mount\" flag: {why}");
    let mut typ = "volume".to_owned();
    let mut source = None;
    let mut target = None;
    let mut readonly = false;
    for field in spec.split(',') {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        match (key.as_str(), value) {
            ("readonly" | "ro", None) => readonly = true,
            ("readonly" | "ro", Some(v)) => {
                readonly = match v.to_ascii_lowercase().as_str() {
                    "1" | "true" => true,
                    "0" | "false" => false,
                    _ => return Err(bad(format!("invalid value for {key}: {v}"))),
                };
            }
            (_, None) => {
                return Err(bad(format!(
                    "invalid field '{field}' must be a key=value pair"
                )))
            }
            ("type", Some(v)) => typ = v.to_owned(),
            ("source" | "src", Some(v)) => source = Some(v.to_owned()),
            ("target" | "dst" | "destination", Some(v)) => target = Some(v.to_owned()),
            _ => return Err(bad(format!("unexpected key '{key}' in '{field}'"))),
        }
    }
    let target = target.ok_or_else(|| bad("target is required".to_owned()))?;
    let source = match (typ.as_str(), source) {
        ("volume", None) => Source::Anonymous,
        ("volume", Some(s)) if s.is_empty() => Source::Anonymous,
        ("volume", Some(s)) => {
            if !valid_name(&s) {
                return Err(invalid_name(&s));
            }
            Source::Named(s)
        }
        ("bind", Some(s)) if !s.is_empty() => Source::Bind(host_path(&s)?),
        ("bind", _) => {
            anyhow::bail!("invalid mount config for type \"bind\": field Source must not be empty")
        }
        (other, _) => return Err(bad(format!("mount type '{other}' is not supported"))),
    };
    check_target(&target, &typ).map_err(anyhow::Error::msg)?;
    Ok(MountSpec {
        source,
        target,
        readonly,
        create_source: false,
    })
}

/// A mount ready for the OCI spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Host path to bind.
    pub host: PathBuf,
    /// Absolute path in the container.
    pub target: String,
    /// Read-only.
    pub readonly: bool,
    /// The volume, for a volume mount.
    pub volume: Option<String>,
}

/// Creates what the mounts need: volumes (filled from the image at `rootfs` when new), or the
/// host directory of a `-v` bind. Refuses two mounts on one path and a missing `--mount` bind
/// source.
///
/// # Errors
/// Docker's wording; the file system.
pub fn resolve(
    data_root: &Path,
    rootfs: &Path,
    specs: &[MountSpec],
) -> anyhow::Result<Vec<Resolved>> {
    let mut seen = BTreeSet::new();
    for s in specs {
        let clean: PathBuf = Path::new(&s.target).components().collect();
        if !seen.insert(clean) {
            anyhow::bail!("Duplicate mount point: {}", s.target);
        }
    }
    let mut out = Vec::new();
    for s in specs {
        let (host, volume) = match &s.source {
            Source::Bind(p) => {
                if !p.exists() {
                    if s.create_source {
                        fs_err::create_dir_all(p)?;
                    } else {
                        anyhow::bail!(
                            "invalid mount config for type \"bind\": bind source path does not exist: {}",
                            p.display()
                        );
                    }
                }
                (p.clone(), None)
            }
            Source::Named(_) | Source::Anonymous => {
                let (name, labels) = match &s.source {
                    Source::Named(n) => (n.clone(), BTreeMap::new()),
                    _ => (
                        anonymous_name(),
                        BTreeMap::from([(ANONYMOUS_LABEL.to_owned(), String::new())]),
                    ),
                };
                let (_, new) = create(data_root, &name, labels)?;
                let data = mountpoint(data_root, &name);
                if new {
                    let inside = berth_runtime::rootfs::secure_join(rootfs, Path::new(&s.target))?;
                    copy_up(&inside, &data).with_context(|| {
                        format!("cannot copy the image's {} into volume {name}", s.target)
                    })?;
                }
                (data, Some(name))
            }
        };
        out.push(Resolved {
            host,
            target: s.target.clone(),
            readonly: s.readonly,
            volume,
        });
    }
    Ok(out)
}

/// The OCI mounts: recursive binds, `ro` when asked.
///
/// # Errors
/// Never in practice (the builder's validation).
pub fn oci_mounts(
    resolved: &[Resolved],
) -> Result<Vec<oci_spec::runtime::Mount>, oci_spec::OciSpecError> {
    resolved
        .iter()
        .map(|r| {
            let mut options = vec!["rbind".to_owned(), "rprivate".to_owned()];
            if r.readonly {
                options.push("ro".to_owned());
            }
            oci_spec::runtime::MountBuilder::default()
                .destination(&r.target)
                .typ("bind")
                .source(&r.host)
                .options(options)
                .build()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn named(n: &str) -> Source {
        Source::Named(n.to_owned())
    }

    #[rstest]
    #[case("/data", Source::Anonymous, "/data", false)]
    #[case("vol:/data", named("vol"), "/data", false)]
    #[case("vol:/data:ro", named("vol"), "/data", true)]
    #[case("vol:/data:rw", named("vol"), "/data", false)]
    #[case("vol:/data:ro,z", named("vol"), "/data", true)]
    #[case("/srv/x:/data", Source::Bind("/srv/x".into()), "/data", false)]
    #[case("/srv/x:/data:ro", Source::Bind("/srv/x".into()), "/data", true)]
    fn volume_flags(
        #[case] flag: &str,
        #[case] source: Source,
        #[case] target: &str,
        #[case] readonly: bool,
    ) {
        let m = parse_volume(flag).unwrap();
        assert_eq!(
            (m.source, m.target.as_str(), m.readonly, m.create_source),
            (source, target, readonly, true)
        );
    }

    #[test]
    fn relative_bind_is_from_the_current_directory() {
        let m = parse_volume("./content:/content").unwrap();
        assert_eq!(
            m.source,
            Source::Bind(std::env::current_dir().unwrap().join("./content"))
        );
    }

    #[rstest]
    #[case("a:b:c:d", "invalid volume specification: 'a:b:c:d'")]
    #[case("vol:", "invalid volume specification: 'vol:'")]
    #[case(
        "vol:/data:xx",
        "invalid volume specification: 'vol:/data:xx': invalid mode: xx"
    )]
    #[case(
        "vol:/data:ro,rw",
        "invalid volume specification: 'vol:/data:ro,rw': invalid mode: ro,rw"
    )]
    #[case(
        "vol:data",
        "invalid volume specification: 'vol:data': invalid mount config for type \"volume\": invalid mount path: 'data' mount path must be absolute"
    )]
    #[case(
        "/h:rel",
        "invalid volume specification: '/h:rel': invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute"
    )]
    #[case(
        "vol:/",
        "invalid volume specification: 'vol:/': invalid mount config for type \"volume\": invalid specification: destination can't be '/'"
    )]
    #[case(
        "b$d:/data",
        "create b$d: \"b$d\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
    )]
    fn volume_flag_errors(#[case] flag: &str, #[case] want: &str) {
        assert_eq!(parse_volume(flag).unwrap_err().to_string(), want);
    }

    #[rstest]
    #[case("type=volume,target=/data", Source::Anonymous, "/data", false)]
    #[case("target=/data", Source::Anonymous, "/data", false)]
    #[case("type=volume,source=v1,target=/data", named("v1"), "/data", false)]
    #[case("type=volume,src=v1,dst=/data,readonly", named("v1"), "/data", true)]
    #[case(
        "type=volume,src=v1,destination=/data,ro=true",
        named("v1"),
        "/data",
        true
    )]
    #[case(
        "type=volume,src=v1,target=/data,readonly=false",
        named("v1"),
        "/data",
        false
    )]
    #[case("type=bind,src=/srv,dst=/data", Source::Bind("/srv".into()), "/data", false)]
    fn mount_flags(
        #[case] flag: &str,
        #[case] source: Source,
        #[case] target: &str,
        #[case] readonly: bool,
    ) {
        let m = parse_mount(flag).unwrap();
        assert_eq!(
            (m.source, m.target.as_str(), m.readonly, m.create_source),
            (source, target, readonly, false)
        );
    }

    #[rstest]
    #[case(
        "type=volume,src=v1",
        "invalid argument \"type=volume,src=v1\" for \"--mount\" flag: target is required"
    )]
    #[case(
        "type=volume,foo=bar,target=/d",
        "invalid argument \"type=volume,foo=bar,target=/d\" for \"--mount\" flag: unexpected key 'foo' in 'foo=bar'"
    )]
    #[case(
        "type=volume,target",
        "invalid argument \"type=volume,target\" for \"--mount\" flag: invalid field 'target' must be a key=value pair"
    )]
    #[case(
        "target=/d,readonly=maybe",
        "invalid argument \"target=/d,readonly=maybe\" for \"--mount\" flag: invalid value for readonly: maybe"
    )]
    #[case(
        "type=bind,target=/d",
        "invalid mount config for type \"bind\": field Source must not be empty"
    )]
    #[case(
        "type=volume,target=rel",
        "invalid mount config for type \"volume\": invalid mount path: 'rel' mount path must be absolute"
    )]
    fn mount_flag_errors(#[case] flag: &str, #[case] want: &str) {
        assert_eq!(parse_mount(flag).unwrap_err().to_string(), want);
    }

    #[test]
    fn names_follow_docker() {
        for ok in ["ab", "a1", "my_vol.1-x", "0a"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "a", "_a", "-a", ".a", "a/b", "a b", "a:b", ".."] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn create_reuses_and_resolve_refuses_duplicates_and_missing_binds() {
        let tmp = tempfile::tempdir().unwrap();
        let (v, new) = create(tmp.path(), "vol1", BTreeMap::new()).unwrap();
        assert!(new);
        assert_eq!(v.driver, "local");
        let (again, new) = create(tmp.path(), "vol1", BTreeMap::new()).unwrap();
        assert!(!new);
        assert_eq!(again, v);
        assert_eq!(list(tmp.path()), vec![v]);
        let rootfs = tmp.path().join("rootfs");
        let dup = [
            parse_volume("a1:/d").unwrap(),
            parse_mount("target=/d/").unwrap(),
        ];
        assert_eq!(
            resolve(tmp.path(), &rootfs, &dup).unwrap_err().to_string(),
            "Duplicate mount point: /d/"
        );
        let missing = tmp.path().join("nope");
        let m = parse_mount(&format!("type=bind,src={},dst=/d", missing.display())).unwrap();
        assert_eq!(
            resolve(tmp.path(), &rootfs, &[m]).unwrap_err().to_string(),
            format!(
                "invalid mount config for type \"bind\": bind source path does not exist: {}",
                missing.display()
            )
        );
        let m = parse_volume(&format!("{}:/d", missing.display())).unwrap();
        resolve(tmp.path(), &rootfs, &[m]).unwrap();
        assert!(missing.is_dir());
    }

    #[test]
    fn copy_up_keeps_links_and_modes_and_skips_a_filled_volume() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        fs_err::create_dir_all(src.join("sub")).unwrap();
        fs_err::write(src.join("sub/f"), "hi").unwrap();
        fs_err::set_permissions(src.join("sub/f"), std::fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", src.join("link")).unwrap();
        let dst = tmp.path().join("dst");
        fs_err::create_dir(&dst).unwrap();
        copy_up(&src, &dst).unwrap();
        assert_eq!(fs_err::read_to_string(dst.join("sub/f")).unwrap(), "hi");
        assert_eq!(
            fs_err::metadata(dst.join("sub/f")).unwrap().mode() & 0o777,
            0o640
        );
        assert_eq!(
            fs_err::read_link(dst.join("link")).unwrap(),
            Path::new("/etc/passwd")
        );
        fs_err::write(src.join("new"), "x").unwrap();
        copy_up(&src, &dst).unwrap();
        assert!(!dst.join("new").exists());
    }
}
