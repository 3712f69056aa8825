//! `--tmpfs PATH[:OPTIONS]` and `--read-only`: the spec edits for a container's tmpfs mounts and
//! a read-only root file system.
//!
//! Options follow the Docker daemon (moby `daemon/oci_linux.go`, `mount.MergeTmpfsOptions`):
//! `noexec,nosuid,nodev,rprivate` first, then the user's, the last of a flag pair (`exec` after
//! `noexec`) or of a data key (`size=`) winning. With `--read-only`, `/etc/hostname`,
//! `/etc/hosts` and `/etc/resolv.conf` are mounted read-only too, as Docker does; `/dev`,
//! `/proc`, `/sys`, `/dev/shm`, volumes and tmpfs mounts keep their own modes.
//!
//! Calls nothing else in the crate.

use std::collections::{BTreeMap, HashSet};

use oci_spec::runtime::{Mount, MountBuilder, RootBuilder, Spec};

/// A `--tmpfs` the Docker daemon would refuse (its wording).
#[derive(Debug, thiserror::Error)]
pub enum TmpfsError {
    /// `--tmpfs /`.
    #[error("Error response from daemon: invalid specification: destination can't be '/'")]
    Root,
    /// A relative destination.
    #[error("Error response from daemon: invalid mount path: '{0}' mount path must be absolute")]
    Relative(String),
    /// An option that is neither a mount flag nor a tmpfs data key.
    #[error("Error response from daemon: invalid tmpfs option {0:?}")]
    Option(String),
    /// Building the spec entry.
    #[error("cannot build the tmpfs mount for `{0}`")]
    Spec(String, #[source] oci_spec::OciSpecError),
}

/// Mount flags `MergeTmpfsOptions` accepts (moby `mount/flags.go`).
const FLAGS: [&str; 33] = [
    "defaults",
    "ro",
    "rw",
    "suid",
    "nosuid",
    "dev",
    "nodev",
    "exec",
    "noexec",
    "sync",
    "async",
    "dirsync",
    "remount",
    "mand",
    "nomand",
    "atime",
    "noatime",
    "diratime",
    "nodiratime",
    "bind",
    "rbind",
    "unbindable",
    "runbindable",
    "private",
    "rprivate",
    "shared",
    "rshared",
    "slave",
    "rslave",
    "relatime",
    "norelatime",
    "strictatime",
    "nostrictatime",
];

/// tmpfs data keys `MergeTmpfsOptions` accepts.
const DATA: [&str; 7] = [
    "size",
    "mode",
    "uid",
    "gid",
    "nr_inodes",
    "nr_blocks",
    "mpol",
];

/// The pair a flag belongs to (`noexec` and `exec` are one; `ro` and `rw` are one).
fn flag_key(flag: &str) -> &str {
    match flag {
        "ro" | "rw" => "rw",
        "nostrictatime" => "strictatime",
        f => f.strip_prefix("no").unwrap_or(f),
    }
}

/// Docker's defaults then `user`'s options, the last of each flag pair and data key kept.
///
/// # Errors
/// An unknown option.
pub fn merge_options(user: &str) -> Result<Vec<String>, TmpfsError> {
    let options: Vec<&str> = ["noexec", "nosuid", "nodev", "rprivate"]
        .into_iter()
        .chain(user.split(',').filter(|o| !o.is_empty()))
        .collect();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for option in options.into_iter().rev() {
        if option == "defaults" {
            continue;
        }
        let key = if FLAGS.contains(&option) {
            flag_key(option)
        } else {
            match option.split_once('=') {
                Some((k, _)) if DATA.contains(&k) => k,
                _ => return Err(TmpfsError::Option(option.to_owned())),
            }
        };
        if seen.insert(key.to_owned()) {
            out.push(option.to_owned());
        }
    }
    out.reverse();
    Ok(out)
}

/// `--tmpfs` values as Docker's `HostConfig.Tmpfs` (destination to options, the last one for a
/// destination winning), checked as the daemon checks them.
///
/// # Errors
/// `/`, a relative destination, an unknown option.
pub fn parse(values: &[String]) -> Result<BTreeMap<String, String>, TmpfsError> {
    let mut out = BTreeMap::new();
    for v in values {
        let (dest, options) = v.split_once(':').unwrap_or((v, ""));
        if dest == "/" {
            return Err(TmpfsError::Root);
        }
        if !dest.starts_with('/') {
            return Err(TmpfsError::Relative(dest.to_owned()));
        }
        merge_options(options)?;
        out.insert(dest.to_owned(), options.to_owned());
    }
    Ok(out)
}

/// The OCI mounts for `tmpfs` (from [`parse`]).
///
/// # Errors
/// An unknown option.
pub fn oci_mounts(tmpfs: &BTreeMap<String, String>) -> Result<Vec<Mount>, TmpfsError> {
    tmpfs
        .iter()
        .map(|(dest, options)| {
            MountBuilder::default()
                .destination(dest)
                .typ("tmpfs")
                .source("tmpfs")
                .options(merge_options(options)?)
                .build()
                .map_err(|e| TmpfsError::Spec(dest.clone(), e))
        })
        .collect()
}

/// `--read-only`: `root.readonly`, and the network files read-only as Docker mounts them.
///
/// # Errors
/// The spec has no root (it always has one).
pub fn set_read_only(spec: &mut Spec) -> Result<(), TmpfsError> {
    let path = spec
        .root()
        .as_ref()
        .map(|r| r.path().clone())
        .unwrap_or_default();
    let root = RootBuilder::default()
        .path(path)
        .readonly(true)
        .build()
        .map_err(|e| TmpfsError::Spec("/".into(), e))?;
    spec.set_root(Some(root));
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    for m in &mut mounts {
        let etc = ["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"];
        if etc
            .iter()
            .any(|e| m.destination() == std::path::Path::new(e))
        {
            let mut options = m.options().clone().unwrap_or_default();
            options.push("ro".into());
            m.set_options(Some(options));
        }
    }
    spec.set_mounts(Some(mounts));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_merge_as_docker_does() {
        assert_eq!(
            merge_options("").unwrap(),
            ["noexec", "nosuid", "nodev", "rprivate"]
        );
        assert_eq!(
            merge_options("rw,exec,size=64m,mode=1777,size=1m").unwrap(),
            [
                "nosuid",
                "nodev",
                "rprivate",
                "rw",
                "exec",
                "mode=1777",
                "size=1m"
            ]
        );
        assert_eq!(
            merge_options("ro,rw").unwrap(),
            ["noexec", "nosuid", "nodev", "rprivate", "rw"]
        );
        let e = merge_options("rw,bogus").unwrap_err().to_string();
        assert_eq!(
            e,
            "Error response from daemon: invalid tmpfs option \"bogus\""
        );
    }

    #[test]
    fn destinations_are_checked() {
        let m = parse(&["/run".into(), "/tmp:size=1m".into(), "/run:exec".into()]).unwrap();
        assert_eq!(m["/run"], "exec");
        assert_eq!(m["/tmp"], "size=1m");
        assert!(matches!(parse(&["/".into()]), Err(TmpfsError::Root)));
        assert_eq!(
            parse(&["run".into()]).unwrap_err().to_string(),
            "Error response from daemon: invalid mount path: 'run' mount path must be absolute"
        );
    }
}
