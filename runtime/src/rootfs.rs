//! The container's root file system: the overlay on the host side ([`mount_overlay`]), and,
//! inside the new mount namespace, the spec's mounts, `/dev`, `pivot_root`, masked and read-only
//! paths ([`setup_rootfs`], [`finish_rootfs`]). Calls the kernel only through [`Syscall`].

use std::path::{Component, Path, PathBuf};

use nix::sys::stat::{Mode, SFlag};
use oci_spec::runtime::{LinuxDeviceType, Mount, Spec};

use crate::syscall::{MntFlags, MsFlags, Syscall, SyscallError};

/// Errors setting up a root file system.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// A mount, pivot or device call failed.
    #[error("cannot set up the root file system")]
    Syscall(#[from] SyscallError),
    /// Creating a mount point or file failed.
    #[error("cannot prepare `{}`", path.display())]
    Io {
        /// What was being created.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A path resolves through more symlinks than Linux allows.
    #[error("too many levels of symbolic links under `{}`", path.display())]
    SymlinkLoop {
        /// The path asked for.
        path: PathBuf,
    },
    /// The overlay mount options do not fit in one page.
    #[error("{count} layers make overlay options longer than a page ({len} bytes)")]
    TooManyLayers {
        /// Number of lower directories.
        count: usize,
        /// Length of the option string.
        len: usize,
    },
}

/// Result of this module.
pub type Result<T> = std::result::Result<T, RootfsError>;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RootfsError + '_ {
    move |source| RootfsError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Joins `unsafe_path` under `root`, resolving `..` and symlinks as if `root` were `/`, so the
/// result never leaves `root`. CVE-2019-19921 / CVE-2021-30465: a mount destination in an image
/// can be a symlink pointing at a host path; resolving it against the host would mount outside
/// the rootfs. (Not race-free against a concurrent writer in the container; nothing in the
/// container runs yet while we resolve.)
///
/// # Errors
/// A symlink loop.
pub fn secure_join(root: &Path, unsafe_path: &Path) -> Result<PathBuf> {
    let mut pending: Vec<PathBuf> = unsafe_path
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(PathBuf::from(n)),
            Component::ParentDir => Some(PathBuf::from("..")),
            _ => None,
        })
        .collect();
    let mut resolved: Vec<PathBuf> = Vec::new();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part.as_os_str() == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved
            .iter()
            .fold(root.to_owned(), |p, c| p.join(c))
            .join(&part);
        match fs_err::read_link(&candidate) {
            Ok(target) => {
                links += 1;
                if links > 40 {
                    return Err(RootfsError::SymlinkLoop {
                        path: unsafe_path.to_owned(),
                    });
                }
                if target.is_absolute() {
                    resolved.clear();
                }
                for c in target.components().rev() {
                    match c {
                        Component::Normal(n) => pending.push(PathBuf::from(n)),
                        Component::ParentDir => pending.push(PathBuf::from("..")),
                        _ => {}
                    }
                }
            }
            Err(_) => resolved.push(part),
        }
    }
    Ok(resolved.iter().fold(root.to_owned(), |p, c| p.join(c)))
}

/// Mounts an overlay of `lowers` (top layer first, as overlayfs's `lowerdir` wants) with
/// `upper`/`work` at `target`, on the host. The caller unmounts it after the container exits.
///
/// # Errors
/// The options exceed a page, or the mount fails.
pub fn mount_overlay(
    sys: &dyn Syscall,
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<()> {
    let lower: Vec<String> = lowers.iter().map(|p| p.display().to_string()).collect();
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        upper.display(),
        work.display()
    );
    if data.len() >= 4096 {
        return Err(RootfsError::TooManyLayers {
            count: lowers.len(),
            len: data.len(),
        });
    }
    sys.mount(
        Some(Path::new("overlay")),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(&data),
    )?;
    Ok(())
}

/// Mount flags and the rest (file-system data) of an OCI mount's options (runc's table).
fn parse_options(options: &[String]) -> (MsFlags, MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut propagation = MsFlags::empty();
    let mut data = Vec::new();
    for o in options {
        match o.as_str() {
            "ro" => flags |= MsFlags::MS_RDONLY,
            "rw" | "defaults" => {}
            "nosuid" => flags |= MsFlags::MS_NOSUID,
            "nodev" => flags |= MsFlags::MS_NODEV,
            "noexec" => flags |= MsFlags::MS_NOEXEC,
            // The opposites clear what an earlier option set (Docker's tmpfs `exec`).
            "suid" => flags -= MsFlags::MS_NOSUID,
            "dev" => flags -= MsFlags::MS_NODEV,
            "exec" => flags -= MsFlags::MS_NOEXEC,
            "async" => flags -= MsFlags::MS_SYNCHRONOUS,
            "atime" => flags -= MsFlags::MS_NOATIME,
            "diratime" => flags -= MsFlags::MS_NODIRATIME,
            "dirsync" => flags |= MsFlags::MS_DIRSYNC,
            "sync" => flags |= MsFlags::MS_SYNCHRONOUS,
            "bind" => flags |= MsFlags::MS_BIND,
            "rbind" => flags |= MsFlags::MS_BIND | MsFlags::MS_REC,
            "strictatime" => flags |= MsFlags::MS_STRICTATIME,
            "relatime" => flags |= MsFlags::MS_RELATIME,
            "noatime" => flags |= MsFlags::MS_NOATIME,
            "nodiratime" => flags |= MsFlags::MS_NODIRATIME,
            "private" => propagation |= MsFlags::MS_PRIVATE,
            "rprivate" => propagation |= MsFlags::MS_PRIVATE | MsFlags::MS_REC,
            "slave" => propagation |= MsFlags::MS_SLAVE,
            "rslave" => propagation |= MsFlags::MS_SLAVE | MsFlags::MS_REC,
            "shared" => propagation |= MsFlags::MS_SHARED,
            "rshared" => propagation |= MsFlags::MS_SHARED | MsFlags::MS_REC,
            other => data.push(other.to_owned()),
        }
    }
    (flags, propagation, data.join(","))
}

/// Mounts one spec entry under `rootfs`.
fn mount_one(sys: &dyn Syscall, rootfs: &Path, m: &Mount) -> Result<()> {
    let dest = secure_join(rootfs, m.destination())?;
    let (flags, propagation, data) = parse_options(m.options().as_deref().unwrap_or_default());
    let is_bind = flags.contains(MsFlags::MS_BIND) || m.typ().as_deref() == Some("bind");
    let source = m.source().clone().unwrap_or_else(|| PathBuf::from("none"));
    if is_bind && !source.is_dir() {
        // A file bind mount needs a file to land on.
        if let Some(parent) = dest.parent() {
            fs_err::create_dir_all(parent).map_err(io(parent))?;
        }
        if !dest.exists() {
            fs_err::File::create(&dest).map_err(io(&dest))?;
        }
    } else {
        fs_err::create_dir_all(&dest).map_err(io(&dest))?;
    }
    if is_bind {
        let bind = MsFlags::MS_BIND | (flags & MsFlags::MS_REC);
        sys.mount(Some(&source), &dest, None, bind, None)?;
        // Bind mounts ignore other flags; apply them with a remount (runc does the same).
        let rest = flags - (MsFlags::MS_BIND | MsFlags::MS_REC);
        if !rest.is_empty() {
            sys.mount(
                None,
                &dest,
                None,
                rest | MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
                None,
            )?;
        }
    } else {
        let data = (!data.is_empty()).then_some(data.as_str());
        sys.mount(Some(&source), &dest, m.typ().as_deref(), flags, data)?;
    }
    if !propagation.is_empty() {
        sys.mount(None, &dest, None, propagation, None)?;
    }
    Ok(())
}

/// The devices every container gets (`runtime-linux.md`, "Default Devices"): name, major, minor.
pub const DEFAULT_DEVICES: [(&str, u64, u64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// The default `/dev` symlinks (`runtime-linux.md`, "Dev symbolic links").
pub const DEFAULT_SYMLINKS: [(&str, &str); 5] = [
    ("/proc/self/fd", "fd"),
    ("/proc/self/fd/0", "stdin"),
    ("/proc/self/fd/1", "stdout"),
    ("/proc/self/fd/2", "stderr"),
    ("pts/ptmx", "ptmx"),
];

/// Creates the default devices (0666, root-owned, as runc) and symlinks in `dev`.
fn populate_dev(sys: &dyn Syscall, dev: &Path) -> Result<()> {
    for (name, major, minor) in DEFAULT_DEVICES {
        let path = dev.join(name);
        match sys.mknod(
            &path,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            major,
            minor,
        ) {
            Ok(())
            | Err(SyscallError::Os {
                errno: nix::errno::Errno::EEXIST,
                ..
            }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    // runc also links /dev/core to /proc/kcore where the kernel has one.
    let core = Path::new("/proc/kcore")
        .exists()
        .then_some(("/proc/kcore", "core"));
    for (target, name) in DEFAULT_SYMLINKS.into_iter().chain(core) {
        match sys.symlink(Path::new(target), &dev.join(name)) {
            Ok(())
            | Err(SyscallError::Os {
                errno: nix::errno::Errno::EEXIST,
                ..
            }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Creates the spec's `linux.devices` under `rootfs` (runc's `createDeviceNode`): parent
/// directories, then the node with its mode (0666 when unset, as runc) and owner. A node
/// already there is kept; `/dev/ptmx` stays the symlink to `pts/ptmx` (runc's `setupPtmx`
/// replaces a `ptmx` device with it too).
fn create_devices(sys: &dyn Syscall, spec: &Spec, rootfs: &Path) -> Result<()> {
    let devices = spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().clone())
        .unwrap_or_default();
    for d in devices {
        if d.path() == Path::new("/dev/ptmx") {
            continue;
        }
        let kind = match d.typ() {
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            _ => SFlag::S_IFCHR,
        };
        let path = secure_join(rootfs, d.path())?;
        if let Some(parent) = path.parent() {
            fs_err::create_dir_all(parent).map_err(io(parent))?;
        }
        let number = |n: i64| u64::try_from(n).unwrap_or(0);
        let mode = Mode::from_bits_truncate(d.file_mode().unwrap_or(0o666));
        match sys.mknod(&path, kind, mode, number(d.major()), number(d.minor())) {
            Ok(()) => {}
            Err(SyscallError::Os {
                errno: nix::errno::Errno::EEXIST,
                ..
            }) => continue,
            Err(e) => return Err(e.into()),
        }
        let (uid, gid) = (d.uid().unwrap_or(0), d.gid().unwrap_or(0));
        if (uid, gid) != (0, 0) {
            std::os::unix::fs::lchown(&path, Some(uid), Some(gid)).map_err(io(&path))?;
        }
    }
    Ok(())
}

/// Inside the container's new mount namespace: stops propagation to the host, bind-mounts the
/// rootfs on itself, performs the spec's mounts in order, fills `/dev`, and pivots into the
/// rootfs, detaching the old root. Afterwards `/` is the rootfs and the cwd is `/`.
///
/// # Errors
/// Any failed mount or pivot.
pub fn setup_rootfs(sys: &dyn Syscall, spec: &Spec, rootfs: &Path) -> Result<()> {
    // Nothing mounted from here on may propagate back to the host.
    sys.mount(
        None,
        Path::new("/"),
        None,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None,
    )?;
    // pivot_root needs the new root to be a mount point.
    sys.mount(
        Some(rootfs),
        rootfs,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )?;
    let mounts = spec.mounts().clone().unwrap_or_default();
    for m in &mounts {
        mount_one(sys, rootfs, m)?;
    }
    populate_dev(sys, &secure_join(rootfs, Path::new("/dev"))?)?;
    create_devices(sys, spec, rootfs)?;
    pivot(sys, rootfs)
}

/// runc's `pivot_root(".", ".")`: no put_old directory is left in the container, and the old
/// root is made a slave before its lazy unmount so the unmount cannot reach the host.
fn pivot(sys: &dyn Syscall, rootfs: &Path) -> Result<()> {
    sys.chdir(rootfs)?;
    sys.pivot_root(Path::new("."), Path::new("."))?;
    sys.mount(
        None,
        Path::new("."),
        None,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None,
    )?;
    sys.umount2(Path::new("."), MntFlags::MNT_DETACH)?;
    sys.chdir(Path::new("/"))?;
    Ok(())
}

/// After `pivot_root`: masks `linux.maskedPaths` (tmpfs on directories, `/dev/null` on files),
/// makes `linux.readonlyPaths` read-only, and `/` read-only when `root.readonly` is set.
/// Paths that do not exist are skipped, as runc does.
///
/// # Errors
/// Any failed mount.
pub fn finish_rootfs(sys: &dyn Syscall, spec: &Spec) -> Result<()> {
    let linux = spec.linux().clone().unwrap_or_default();
    for p in linux.masked_paths().clone().unwrap_or_default() {
        let path = Path::new(&p);
        if path.is_dir() {
            sys.mount(
                Some(Path::new("tmpfs")),
                path,
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None,
            )?;
        } else if path.exists() {
            sys.mount(
                Some(Path::new("/dev/null")),
                path,
                None,
                MsFlags::MS_BIND,
                None,
            )?;
        }
    }
    for p in linux.readonly_paths().clone().unwrap_or_default() {
        let path = Path::new(&p);
        if !path.exists() {
            continue;
        }
        sys.mount(
            Some(path),
            path,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )?;
        sys.mount(
            None,
            path,
            None,
            MsFlags::MS_BIND
                | MsFlags::MS_REMOUNT
                | MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC,
            None,
        )?;
    }
    if spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
        sys.mount(
            None,
            Path::new("/"),
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use oci_spec::runtime::{LinuxBuilder, RootBuilder, SpecBuilder};

    use super::*;
    use crate::spec::{build, Network, RunOptions};
    use crate::syscall::{Call, FakeSyscall};

    fn spec_for(rootfs: &Path, hostname_file: &Path) -> Spec {
        let opts = RunOptions {
            hostname: "h".into(),
            env: vec![],
            workdir: None,
            user: None,
            entrypoint: None,
            command: vec!["sh".into()],
            network: Network::None,
            etc_files: vec![(hostname_file.to_owned(), "/etc/hostname")],
        };
        build(None, &opts, rootfs).unwrap()
    }

    #[test]
    fn secure_join_stays_inside_root() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("a/abs")).unwrap();
        std::os::unix::fs::symlink("../../..", root.join("a/b/up")).unwrap();
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        assert_eq!(
            secure_join(root, Path::new("/a/abs/hosts")).unwrap(),
            root.join("etc/hosts")
        );
        assert_eq!(
            secure_join(root, Path::new("/a/b/up/x")).unwrap(),
            root.join("x")
        );
        assert_eq!(
            secure_join(root, Path::new("../../etc")).unwrap(),
            root.join("etc")
        );
        assert!(matches!(
            secure_join(root, Path::new("/loop")),
            Err(RootfsError::SymlinkLoop { .. })
        ));
    }

    #[test]
    fn overlay_lists_lower_dirs_top_first() {
        let sys = FakeSyscall::default();
        let lowers = [PathBuf::from("/l/top"), PathBuf::from("/l/base")];
        mount_overlay(
            &sys,
            &lowers,
            Path::new("/c/upper"),
            Path::new("/c/work"),
            Path::new("/c/rootfs"),
        )
        .unwrap();
        assert_eq!(
            sys.calls(),
            [Call::Mount {
                source: Some("overlay".into()),
                target: "/c/rootfs".into(),
                fstype: Some("overlay".into()),
                flags: MsFlags::empty(),
                data: Some("lowerdir=/l/top:/l/base,upperdir=/c/upper,workdir=/c/work".into()),
            }]
        );
        let many: Vec<PathBuf> = (0..200)
            .map(|i| PathBuf::from(format!("/var/lib/berth/layers/sha256/{i:064}/fs")))
            .collect();
        assert!(matches!(
            mount_overlay(
                &sys,
                &many,
                Path::new("/u"),
                Path::new("/w"),
                Path::new("/r")
            ),
            Err(RootfsError::TooManyLayers { .. })
        ));
    }

    #[test]
    fn mounts_in_spec_order_then_dev_then_pivot() {
        let t = tempfile::tempdir().unwrap();
        let rootfs = t.path().join("rootfs");
        std::fs::create_dir_all(&rootfs).unwrap();
        // A hostile image: /etc is an absolute symlink, which must resolve inside the rootfs.
        std::os::unix::fs::symlink("/real-etc", rootfs.join("etc")).unwrap();
        let hostname = t.path().join("hostname");
        std::fs::write(&hostname, "h\n").unwrap();
        let spec = spec_for(&rootfs, &hostname);
        let sys = FakeSyscall::default();
        setup_rootfs(&sys, &spec, &rootfs).unwrap();

        let targets = sys.mount_targets();
        let r = |p: &str| rootfs.join(p);
        assert_eq!(
            targets,
            [
                PathBuf::from("/"),
                rootfs.clone(),
                r("proc"),
                r("dev"),
                r("dev/pts"),
                r("sys"),
                r("dev/mqueue"),
                r("dev/shm"),
                r("real-etc/hostname"), // the bind
                r("real-etc/hostname"), // its propagation (rprivate)
                PathBuf::from("."),
            ]
        );
        // The bind target was created inside the rootfs.
        assert!(rootfs.join("real-etc/hostname").is_file());
        let calls = sys.calls();
        assert!(
            matches!(&calls[0], Call::Mount { flags, .. } if *flags == MsFlags::MS_REC | MsFlags::MS_PRIVATE)
        );
        // The sysfs mount is read-only, as Docker's.
        assert!(calls.iter().any(|c| matches!(c, Call::Mount { fstype: Some(t), flags, .. } if t == "sysfs" && flags.contains(MsFlags::MS_RDONLY))));
        // devpts gets newinstance and ptmxmode as data.
        assert!(calls.iter().any(|c| matches!(c, Call::Mount { fstype: Some(t), data: Some(d), .. } if t == "devpts" && d == "newinstance,ptmxmode=0666,mode=0620,gid=5")));
        let nodes: Vec<(String, u64, u64)> = calls
            .iter()
            .filter_map(|c| match c {
                Call::Mknod {
                    path,
                    major,
                    minor,
                    perm,
                    ..
                } => {
                    assert_eq!(perm.bits(), 0o666);
                    Some((
                        path.file_name().unwrap().to_string_lossy().into_owned(),
                        *major,
                        *minor,
                    ))
                }
                _ => None,
            })
            .collect();
        assert_eq!(nodes.len(), 6);
        assert!(nodes.contains(&("tty".into(), 5, 0)) && nodes.contains(&("null".into(), 1, 3)));
        assert!(calls.contains(&Call::Symlink {
            target: "/proc/self/fd".into(),
            link: r("dev/fd")
        }));
        let tail: Vec<Call> = calls[calls.len() - 5..].to_vec();
        assert_eq!(
            tail,
            [
                Call::Chdir(rootfs.clone()),
                Call::PivotRoot {
                    new_root: ".".into(),
                    put_old: ".".into()
                },
                Call::Mount {
                    source: None,
                    target: ".".into(),
                    fstype: None,
                    flags: MsFlags::MS_SLAVE | MsFlags::MS_REC,
                    data: None
                },
                Call::Umount2 {
                    target: ".".into(),
                    flags: MntFlags::MNT_DETACH
                },
                Call::Chdir("/".into()),
            ]
        );
    }

    #[test]
    fn spec_devices_are_created_with_their_mode() {
        let t = tempfile::tempdir().unwrap();
        let rootfs = t.path().join("rootfs");
        std::fs::create_dir_all(&rootfs).unwrap();
        let hostname = t.path().join("hostname");
        std::fs::write(&hostname, "h\n").unwrap();
        let mut spec = spec_for(&rootfs, &hostname);
        let dev = |path: &str, typ, major: i64, minor: i64, mode: u32| {
            oci_spec::runtime::LinuxDeviceBuilder::default()
                .path(path)
                .typ(typ)
                .major(major)
                .minor(minor)
                .file_mode(mode)
                .build()
                .unwrap()
        };
        let mut linux = spec.linux().clone().unwrap();
        linux.set_devices(Some(vec![
            dev("/dev/net/tun", LinuxDeviceType::C, 10, 200, 0o600),
            dev("/dev/xvda", LinuxDeviceType::B, 8, 0, 0o660),
            dev("/dev/ptmx", LinuxDeviceType::C, 5, 2, 0o666),
        ]));
        spec.set_linux(Some(linux));
        let sys = FakeSyscall::default();
        setup_rootfs(&sys, &spec, &rootfs).unwrap();
        let created: Vec<_> = sys
            .calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Mknod {
                    path,
                    kind,
                    perm,
                    major,
                    minor,
                } if !DEFAULT_DEVICES
                    .iter()
                    .any(|(name, ..)| path == rootfs.join("dev").join(name)) =>
                {
                    Some((path, kind, perm.bits(), major, minor))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            created,
            [
                (rootfs.join("dev/net/tun"), SFlag::S_IFCHR, 0o600, 10, 200),
                (rootfs.join("dev/xvda"), SFlag::S_IFBLK, 0o660, 8, 0),
            ]
        );
        // The parent directory was made inside the rootfs.
        assert!(rootfs.join("dev/net").is_dir());
    }

    #[test]
    fn failed_mount_stops_setup() {
        let t = tempfile::tempdir().unwrap();
        let spec = spec_for(t.path(), &t.path().join("h"));
        let sys = FakeSyscall::default();
        sys.fail_on("mount", nix::errno::Errno::EPERM);
        assert!(setup_rootfs(&sys, &spec, t.path()).is_err());
        assert_eq!(sys.calls().len(), 1);
    }

    #[test]
    fn masked_and_readonly_paths_after_pivot() {
        let spec = SpecBuilder::default()
            .root(
                RootBuilder::default()
                    .path("rootfs")
                    .readonly(true)
                    .build()
                    .unwrap(),
            )
            .linux(
                LinuxBuilder::default()
                    .masked_paths(vec![
                        "/proc/version".into(),
                        "/proc/acpi-not-there".into(),
                        "/sys/firmware".into(),
                    ])
                    .readonly_paths(vec!["/proc/sys".into()])
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        let sys = FakeSyscall::default();
        finish_rootfs(&sys, &spec).unwrap();
        let calls = sys.calls();
        // /proc/version is a file: /dev/null on top. /sys/firmware is a directory: read-only tmpfs.
        assert!(calls.contains(&Call::Mount {
            source: Some("/dev/null".into()),
            target: "/proc/version".into(),
            fstype: None,
            flags: MsFlags::MS_BIND,
            data: None
        }));
        assert!(calls.contains(&Call::Mount {
            source: Some("tmpfs".into()),
            target: "/sys/firmware".into(),
            fstype: Some("tmpfs".into()),
            flags: MsFlags::MS_RDONLY,
            data: None
        }));
        assert!(!sys
            .mount_targets()
            .contains(&PathBuf::from("/proc/acpi-not-there")));
        assert!(calls.iter().any(|c| matches!(c, Call::Mount { target, flags, .. } if target == Path::new("/proc/sys") && flags.contains(MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY))));
        assert!(
            matches!(calls.last(), Some(Call::Mount { target, flags, .. }) if target == Path::new("/") && flags.contains(MsFlags::MS_RDONLY))
        );
    }
}
