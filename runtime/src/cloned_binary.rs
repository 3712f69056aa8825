//! CVE-2019-5736: a container must never reach the host's runtime binary through
//! `/proc/<pid>/exe`. The processes that enter a container (init, `exec`'s process) are forks of
//! the process that owns the container, so until they `execve` the container's program their
//! `/proc/self/exe` is that binary; an image whose entrypoint is `#!/proc/self/exe` makes the
//! kernel run it inside the container, where container root could open it for writing and
//! replace it on the host.
//!
//! So the owner first re-executes itself from a path where the binary cannot be written
//! ([`ensure`]): a read-only bind mount of it at `/run/berth/exe/berth-<dev>-<inode>`, made once
//! per binary (a new install gets a new inode, hence a new mount) in the host's mount namespace,
//! where no container can reach the mount to make it writable again. Opening `/proc/<pid>/exe`
//! for writing then fails with `EROFS`. Where that mount cannot be made, the fallback is runc's
//! sealed `memfd` copy of the binary (about 10 ms for Berth's 17 MB, against about 1 ms for the
//! re-exec through the mount).

use std::ffi::{CStr, CString};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt as _;

use nix::fcntl::{FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MemFdCreateFlag};

/// The environment variable that carries the original binary's path across the re-exec (so the
/// process can still start `berth` by path, e.g. a monitor).
pub const ORIGINAL_EXE: &str = "BERTH_ORIGINAL_EXE";

/// The memfd's name, as `/proc/self/exe` shows it (`/memfd:berth-cloned (deleted)`).
const NAME: &CStr = c"berth-cloned";

/// Where the read-only bind mounts of the binary live.
pub const MOUNT_DIR: &str = "/run/berth/exe";

/// Whether this process already runs from the read-only mount or the sealed copy.
#[must_use]
pub fn is_cloned() -> bool {
    std::fs::read_link("/proc/self/exe").is_ok_and(|p| {
        let b = p.as_os_str().as_bytes();
        b.starts_with(b"/memfd:berth-cloned") || b.starts_with(MOUNT_DIR.as_bytes())
    })
}

/// Unmounts the mounts of other (older) binaries that no process runs from any more, so a
/// rebuilt or upgraded berth does not keep old binaries' disk space pinned. A mount in use is
/// busy (`EBUSY`) and stays.
fn release_unused(dir: &std::path::Path, keep: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let is_mount = e.file_name().to_string_lossy().starts_with("berth-");
        if path == keep || !is_mount {
            continue;
        }
        if nix::mount::umount2(&path, nix::mount::MntFlags::empty()).is_ok() {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// A read-only bind mount of `exe` under [`MOUNT_DIR`], made if missing (under a lock, so
/// concurrent callers make one).
fn read_only_mount(exe: &std::path::Path) -> std::io::Result<std::path::PathBuf> {
    use nix::mount::{mount, MsFlags};
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::metadata(exe)?;
    let dir = std::path::Path::new(MOUNT_DIR);
    let target = dir.join(format!("berth-{}-{}", meta.dev(), meta.ino()));
    let mounted = |t: &std::path::Path| {
        // A read-only file system answers EROFS to a write-access check.
        nix::unistd::access(t, nix::unistd::AccessFlags::W_OK) == Err(nix::errno::Errno::EROFS)
    };
    if mounted(&target) {
        return Ok(target);
    }
    std::fs::create_dir_all(dir)?;
    let lock = std::fs::File::create(dir.join(".lock"))?;
    nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| std::io::Error::from(e))
        .and_then(|_guard| {
            if !mounted(&target) {
                release_unused(dir, &target);
                std::fs::File::create(&target)?;
                mount(
                    Some(exe),
                    &target,
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )?;
                let ro = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
                if let Err(e) = mount(None::<&str>, &target, None::<&str>, ro, None::<&str>) {
                    let _ = nix::mount::umount2(&target, nix::mount::MntFlags::MNT_DETACH);
                    return Err(e.into());
                }
            }
            Ok(target)
        })
}

/// The path of the binary as installed: the original one when running from the copy.
///
/// # Errors
/// The path cannot be found.
pub fn original_exe() -> std::io::Result<std::path::PathBuf> {
    match std::env::var_os(ORIGINAL_EXE) {
        Some(p) if is_cloned() => Ok(p.into()),
        _ => std::env::current_exe(),
    }
}

/// Re-executes the current process, same arguments and environment, from the read-only mount
/// of its binary (or else a sealed memfd copy), unless it already runs from one. Call it early, while single-threaded.
/// Returns only on failure (or when already cloned).
///
/// # Errors
/// The copy or the exec failed.
pub fn ensure() -> std::io::Result<()> {
    if is_cloned() {
        return Ok(());
    }
    let exe = std::env::current_exe()?;
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()?;
    let mut env: Vec<CString> = std::env::vars_os()
        .filter(|(k, _)| k != ORIGINAL_EXE)
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv)
        })
        .collect::<Result<_, _>>()?;
    let mut orig = ORIGINAL_EXE.as_bytes().to_vec();
    orig.push(b'=');
    orig.extend_from_slice(exe.as_os_str().as_bytes());
    env.push(CString::new(orig)?);
    if let Ok(target) = read_only_mount(&exe) {
        let path = CString::new(target.as_os_str().as_bytes())?;
        // Returns only on failure: then try the copy.
        let _ = nix::unistd::execve(&path, &args, &env);
    }
    let fd = clone_binary(&exe)?;
    let err = nix::unistd::fexecve(std::os::fd::AsRawFd::as_raw_fd(&fd), &args, &env)
        .map_or_else(|e| e, |never| match never {});
    Err(err.into())
}

/// A sealed (no write, grow, shrink or further seals), close-on-exec memfd holding `exe`.
fn clone_binary(exe: &std::path::Path) -> std::io::Result<OwnedFd> {
    let fd = memfd_create(
        NAME,
        MemFdCreateFlag::MFD_CLOEXEC | MemFdCreateFlag::MFD_ALLOW_SEALING,
    )?;
    let mut src = std::fs::File::open(exe)?;
    let mut dst = std::fs::File::from(fd);
    // std uses copy_file_range/sendfile between two files: no copy through user space.
    std::io::copy(&mut src, &mut dst)?;
    let fd = OwnedFd::from(dst);
    nix::fcntl::fcntl(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        FcntlArg::F_ADD_SEALS(
            SealFlag::F_SEAL_SEAL
                | SealFlag::F_SEAL_SHRINK
                | SealFlag::F_SEAL_GROW
                | SealFlag::F_SEAL_WRITE,
        ),
    )?;
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_is_sealed_against_writes_and_identical() {
        let exe = std::env::current_exe().unwrap();
        let fd = clone_binary(&exe).unwrap();
        let copy = std::fs::read(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&fd)
        ))
        .unwrap();
        assert_eq!(copy, std::fs::read(&exe).unwrap());
        // Reopening it for writing is refused: the seal holds for every path to it.
        let w = std::fs::OpenOptions::new().write(true).open(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&fd)
        ));
        match w {
            Err(e) => assert_eq!(e.raw_os_error(), Some(nix::libc::EPERM), "{e}"),
            Ok(mut f) => {
                use std::io::Write as _;
                assert!(f.write_all(b"x").is_err(), "a sealed memfd took a write");
            }
        }
        assert!(!is_cloned());
    }

    #[test]
    fn the_read_only_mount_refuses_writes_and_is_made_once() {
        // A file nobody executes (the running test binary would answer ETXTBSY first).
        let t = tempfile::tempdir().unwrap();
        let file = t.path().join("binary");
        std::fs::write(&file, b"#!/bin/true\n").unwrap();
        let target = read_only_mount(&file).unwrap();
        let result = || {
            assert!(target.starts_with(MOUNT_DIR));
            assert_eq!(read_only_mount(&file).unwrap(), target);
            let err = std::fs::OpenOptions::new()
                .write(true)
                .open(&target)
                .unwrap_err();
            assert_eq!(err.raw_os_error(), Some(nix::libc::EROFS), "{err}");
            assert_eq!(std::fs::read(&target).unwrap(), b"#!/bin/true\n");
            let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
            let n = mounts
                .lines()
                .filter(|l| l.split(' ').nth(4) == Some(target.to_str().unwrap()))
                .count();
            assert_eq!(n, 1, "{mounts}");
        };
        let outcome = std::panic::catch_unwind(result);
        let _ = nix::mount::umount2(&target, nix::mount::MntFlags::MNT_DETACH);
        let _ = std::fs::remove_file(&target);
        outcome.unwrap();
    }
}
