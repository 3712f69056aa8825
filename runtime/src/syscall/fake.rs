//! [`FakeSyscall`]: records every call with its arguments and fails the ones a test asks it to.
//! File-system side effects (directories, bind-mount targets) are left to the caller's real
//! temporary directory; the fake only stands in for the privileged calls.

use std::cell::RefCell;
use std::collections::HashMap;
use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::{AsRawFd as _, BorrowedFd};
use std::path::{Path, PathBuf};

use super::{
    os_err, CapSet, CapsHashSet, CloneFlags, Errno, MntFlags, Mode, MsFlags, Resource, Result,
    SFlag, Syscall,
};

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Call {
    Mount {
        source: Option<PathBuf>,
        target: PathBuf,
        fstype: Option<String>,
        flags: MsFlags,
        data: Option<String>,
    },
    Umount2 {
        target: PathBuf,
        flags: MntFlags,
    },
    PivotRoot {
        new_root: PathBuf,
        put_old: PathBuf,
    },
    Chdir(PathBuf),
    Sethostname(String),
    /// `write_sysctl(key, value)`.
    Sysctl(String, String),
    Unshare(CloneFlags),
    Mknod {
        path: PathBuf,
        kind: SFlag,
        perm: Mode,
        major: u64,
        minor: u64,
    },
    Symlink {
        target: PathBuf,
        link: PathBuf,
    },
    SetNoNewPrivs,
    Setsid,
    SetKeepCaps(bool),
    Setgroups(Vec<u32>),
    Setresgid(u32),
    Setresuid(u32),
    DropBoundingCaps(CapsHashSet),
    /// The set by name (`Effective`, `Permitted`, `Inheritable`, `Ambient`, `Bounding`).
    SetCaps(String, CapsHashSet),
    Setrlimit {
        resource: Resource,
        soft: u64,
        hard: u64,
    },
    SetCloexecFrom(i32),
    LoopbackUp,
    SetupConsole {
        socket: i32,
        uid: u32,
        gid: u32,
    },
    Setns(i32, CloneFlags),
    /// Instructions in the program.
    Seccomp(usize),
    Execve {
        path: PathBuf,
        argv: Vec<String>,
        envp: Vec<String>,
    },
}

/// A [`Syscall`] that records instead of acting.
#[derive(Debug, Default)]
pub struct FakeSyscall {
    calls: RefCell<Vec<Call>>,
    failures: RefCell<HashMap<&'static str, Errno>>,
    rlimits: RefCell<HashMap<Resource, (u64, u64)>>,
}

impl FakeSyscall {
    /// Every call so far, in order.
    #[must_use]
    pub fn calls(&self) -> Vec<Call> {
        self.calls.borrow().clone()
    }

    /// The mount calls, in order.
    #[must_use]
    pub fn mounts(&self) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| matches!(c, Call::Mount { .. }))
            .collect()
    }

    /// Targets of the mount calls, in order.
    #[must_use]
    pub fn mount_targets(&self) -> Vec<PathBuf> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Mount { target, .. } => Some(target),
                _ => None,
            })
            .collect()
    }

    /// Makes every later call named `op` (`"mount"`, `"execve"`, …) fail with `errno`.
    pub fn fail_on(&self, op: &'static str, errno: Errno) {
        self.failures.borrow_mut().insert(op, errno);
    }

    /// Sets what `getrlimit` reports (and the hard limit `setrlimit` enforces, as the kernel
    /// does without `CAP_SYS_RESOURCE`).
    pub fn set_rlimit(&self, resource: Resource, soft: u64, hard: u64) {
        self.rlimits.borrow_mut().insert(resource, (soft, hard));
    }

    fn record(&self, op: &'static str, call: Call) -> Result<()> {
        self.calls.borrow_mut().push(call);
        match self.failures.borrow().get(op) {
            Some(e) => Err(os_err(op, None, *e)),
            None => Ok(()),
        }
    }
}

fn lossy(v: &[CString]) -> Vec<String> {
    v.iter().map(|c| c.to_string_lossy().into_owned()).collect()
}

impl Syscall for FakeSyscall {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<()> {
        self.record(
            "mount",
            Call::Mount {
                source: source.map(Path::to_owned),
                target: target.to_owned(),
                fstype: fstype.map(str::to_owned),
                flags,
                data: data.map(str::to_owned),
            },
        )
    }

    fn umount2(&self, target: &Path, flags: MntFlags) -> Result<()> {
        self.record(
            "umount2",
            Call::Umount2 {
                target: target.to_owned(),
                flags,
            },
        )
    }

    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> Result<()> {
        self.record(
            "pivot_root",
            Call::PivotRoot {
                new_root: new_root.to_owned(),
                put_old: put_old.to_owned(),
            },
        )
    }

    fn chdir(&self, path: &Path) -> Result<()> {
        self.record("chdir", Call::Chdir(path.to_owned()))
    }

    fn sethostname(&self, name: &str) -> Result<()> {
        self.record("sethostname", Call::Sethostname(name.to_owned()))
    }

    fn write_sysctl(&self, key: &str, value: &str) -> Result<()> {
        self.record(
            "write_sysctl",
            Call::Sysctl(key.to_owned(), value.to_owned()),
        )
    }

    fn unshare(&self, flags: CloneFlags) -> Result<()> {
        self.record("unshare", Call::Unshare(flags))
    }

    fn mknod(&self, path: &Path, kind: SFlag, perm: Mode, major: u64, minor: u64) -> Result<()> {
        self.record(
            "mknod",
            Call::Mknod {
                path: path.to_owned(),
                kind,
                perm,
                major,
                minor,
            },
        )
    }

    fn symlink(&self, target: &Path, link: &Path) -> Result<()> {
        self.record(
            "symlink",
            Call::Symlink {
                target: target.to_owned(),
                link: link.to_owned(),
            },
        )
    }

    fn set_no_new_privs(&self) -> Result<()> {
        self.record("set_no_new_privs", Call::SetNoNewPrivs)
    }

    fn setsid(&self) -> Result<()> {
        self.record("setsid", Call::Setsid)
    }

    fn set_keep_caps(&self, keep: bool) -> Result<()> {
        self.record("set_keep_caps", Call::SetKeepCaps(keep))
    }

    fn setgroups(&self, gids: &[u32]) -> Result<()> {
        self.record("setgroups", Call::Setgroups(gids.to_vec()))
    }

    fn setresgid(&self, gid: u32) -> Result<()> {
        self.record("setresgid", Call::Setresgid(gid))
    }

    fn setresuid(&self, uid: u32) -> Result<()> {
        self.record("setresuid", Call::Setresuid(uid))
    }

    fn drop_bounding_caps(&self, keep: &CapsHashSet) -> Result<()> {
        self.record("drop_bounding_caps", Call::DropBoundingCaps(keep.clone()))
    }

    fn set_caps(&self, set: CapSet, caps: &CapsHashSet) -> Result<()> {
        self.record("set_caps", Call::SetCaps(format!("{set:?}"), caps.clone()))
    }

    fn getrlimit(&self, resource: Resource) -> Result<(u64, u64)> {
        Ok(self
            .rlimits
            .borrow()
            .get(&resource)
            .copied()
            .unwrap_or((u64::MAX, u64::MAX)))
    }

    fn setrlimit(&self, resource: Resource, soft: u64, hard: u64) -> Result<()> {
        self.record(
            "setrlimit",
            Call::Setrlimit {
                resource,
                soft,
                hard,
            },
        )?;
        let (_, cur_hard) = self.getrlimit(resource)?;
        if hard > cur_hard {
            return Err(os_err("setrlimit", None, Errno::EPERM));
        }
        self.rlimits.borrow_mut().insert(resource, (soft, hard));
        Ok(())
    }

    fn set_cloexec_from(&self, from: i32) -> Result<()> {
        self.record("set_cloexec_from", Call::SetCloexecFrom(from))
    }

    fn loopback_up(&self) -> Result<()> {
        self.record("loopback_up", Call::LoopbackUp)
    }

    fn setup_console(&self, socket: BorrowedFd<'_>, uid: u32, gid: u32) -> Result<()> {
        let socket = socket.as_raw_fd();
        self.record("setup_console", Call::SetupConsole { socket, uid, gid })
    }

    fn seccomp(&self, program: &[seccompiler::sock_filter]) -> Result<()> {
        self.record("seccomp", Call::Seccomp(program.len()))
    }

    fn setns(&self, fd: BorrowedFd<'_>, kind: CloneFlags) -> Result<()> {
        self.record("setns", Call::Setns(fd.as_raw_fd(), kind))
    }

    fn execve(&self, path: &Path, argv: &[CString], envp: &[CString]) -> Result<Infallible> {
        self.record(
            "execve",
            Call::Execve {
                path: path.to_owned(),
                argv: lossy(argv),
                envp: lossy(envp),
            },
        )?;
        // A real execve never returns on success; the fake reports that it got this far.
        Err(os_err("execve", Some(path), Errno::ENOSYS))
    }
}
