//! The real [`Syscall`]: nix for everything it wraps, `caps` for capget/capset and the bounding
//! set, libc for the one ioctl nix lacks (`SIOCSIFFLAGS`).

use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::Path;

use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::sys::stat::{fchmodat, makedev, mknod, FchmodatFlags};
use nix::unistd::{Gid, Uid};

use super::{
    os_err, CapSet, CapsHashSet, CloneFlags, Errno, MntFlags, Mode, MsFlags, Resource, Result,
    SFlag, Syscall, SyscallError,
};

/// System calls for real, on the calling process.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinuxSyscall;

impl Syscall for LinuxSyscall {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<()> {
        nix::mount::mount(source, target, fstype, flags, data)
            .map_err(|e| os_err("mount", Some(target), e))
    }

    fn umount2(&self, target: &Path, flags: MntFlags) -> Result<()> {
        nix::mount::umount2(target, flags).map_err(|e| os_err("umount2", Some(target), e))
    }

    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> Result<()> {
        nix::unistd::pivot_root(new_root, put_old)
            .map_err(|e| os_err("pivot_root", Some(new_root), e))
    }

    fn chdir(&self, path: &Path) -> Result<()> {
        nix::unistd::chdir(path).map_err(|e| os_err("chdir", Some(path), e))
    }

    fn sethostname(&self, name: &str) -> Result<()> {
        nix::unistd::sethostname(name).map_err(|e| os_err("sethostname", None, e))
    }

    fn write_sysctl(&self, key: &str, value: &str) -> Result<()> {
        let path = Path::new("/proc/sys").join(key.replace('.', "/"));
        std::fs::write(&path, value).map_err(|e| {
            let errno = e
                .raw_os_error()
                .map_or(nix::errno::Errno::EIO, nix::errno::Errno::from_raw);
            os_err("write sysctl", Some(&path), errno)
        })
    }

    fn unshare(&self, flags: CloneFlags) -> Result<()> {
        nix::sched::unshare(flags).map_err(|e| os_err("unshare", None, e))
    }

    fn mknod(&self, path: &Path, kind: SFlag, perm: Mode, major: u64, minor: u64) -> Result<()> {
        mknod(path, kind, perm, makedev(major, minor))
            .map_err(|e| os_err("mknod", Some(path), e))?;
        fchmodat(None, path, perm, FchmodatFlags::FollowSymlink)
            .map_err(|e| os_err("chmod", Some(path), e))
    }

    fn symlink(&self, target: &Path, link: &Path) -> Result<()> {
        nix::unistd::symlinkat(target, None, link).map_err(|e| os_err("symlink", Some(link), e))
    }

    fn setsid(&self) -> Result<()> {
        nix::unistd::setsid()
            .map(drop)
            .map_err(|e| os_err("setsid", None, e))
    }

    fn set_no_new_privs(&self) -> Result<()> {
        nix::sys::prctl::set_no_new_privs()
            .map_err(|e| os_err("prctl(PR_SET_NO_NEW_PRIVS)", None, e))
    }

    fn set_keep_caps(&self, keep: bool) -> Result<()> {
        nix::sys::prctl::set_keepcaps(keep).map_err(|e| os_err("prctl(PR_SET_KEEPCAPS)", None, e))
    }

    fn setgroups(&self, gids: &[u32]) -> Result<()> {
        let gids: Vec<Gid> = gids.iter().copied().map(Gid::from_raw).collect();
        nix::unistd::setgroups(&gids).map_err(|e| os_err("setgroups", None, e))
    }

    fn setresgid(&self, gid: u32) -> Result<()> {
        let g = Gid::from_raw(gid);
        nix::unistd::setresgid(g, g, g).map_err(|e| os_err("setresgid", None, e))
    }

    fn setresuid(&self, uid: u32) -> Result<()> {
        let u = Uid::from_raw(uid);
        nix::unistd::setresuid(u, u, u).map_err(|e| os_err("setresuid", None, e))
    }

    fn drop_bounding_caps(&self, keep: &CapsHashSet) -> Result<()> {
        for cap in caps::all() {
            if keep.contains(&cap) {
                continue;
            }
            caps::drop(None, CapSet::Bounding, cap).map_err(|source| SyscallError::Caps {
                op: "PR_CAPBSET_DROP",
                source,
            })?;
        }
        Ok(())
    }

    fn set_caps(&self, set: CapSet, caps: &CapsHashSet) -> Result<()> {
        caps::set(None, set, caps).map_err(|source| SyscallError::Caps {
            op: "capset",
            source,
        })
    }

    fn getrlimit(&self, resource: Resource) -> Result<(u64, u64)> {
        nix::sys::resource::getrlimit(resource).map_err(|e| os_err("getrlimit", None, e))
    }

    fn setrlimit(&self, resource: Resource, soft: u64, hard: u64) -> Result<()> {
        nix::sys::resource::setrlimit(resource, soft, hard)
            .map_err(|e| os_err("setrlimit", None, e))
    }

    fn set_cloexec_from(&self, from: i32) -> Result<()> {
        let dir = Path::new("/proc/self/fd");
        let entries = std::fs::read_dir(dir).map_err(|e| {
            os_err(
                "readdir",
                Some(dir),
                Errno::from_raw(e.raw_os_error().unwrap_or(0)),
            )
        })?;
        // Collect first: the directory's own descriptor is in the listing while it is open.
        let fds: Vec<i32> = entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .filter(|fd| *fd >= from)
            .collect();
        for fd in fds {
            match fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)) {
                Ok(_) | Err(Errno::EBADF) => {}
                Err(e) => return Err(os_err("fcntl(F_SETFD)", None, e)),
            }
        }
        Ok(())
    }

    #[allow(unsafe_code)]
    fn loopback_up(&self) -> Result<()> {
        let sock = nix::sys::socket::socket(
            nix::sys::socket::AddressFamily::Inet,
            nix::sys::socket::SockType::Datagram,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(|e| os_err("socket", None, e))?;
        // SAFETY: `ifreq` is plain old data; zeroed is a valid value. The name is "lo\0".
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = libc::c_char::try_from(*src).unwrap_or_default();
        }
        #[allow(clippy::cast_possible_truncation)]
        {
            req.ifr_ifru.ifru_flags = (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        }
        // SAFETY: SIOCSIFFLAGS reads one `ifreq`, which lives for the call.
        let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) };
        if rc < 0 {
            return Err(os_err("ioctl(SIOCSIFFLAGS lo)", None, Errno::last()));
        }
        Ok(())
    }

    #[allow(unsafe_code)]
    fn setup_console(&self, socket: BorrowedFd<'_>, uid: u32, gid: u32) -> Result<()> {
        use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
        use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
        let err = |op| move |e| os_err(op, None, e);
        let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
            .map_err(err("open(/dev/ptmx)"))?;
        grantpt(&master).map_err(err("grantpt"))?;
        unlockpt(&master).map_err(err("unlockpt"))?;
        let name = ptsname_r(&master).map_err(err("ptsname"))?;
        let slave = nix::fcntl::open(
            Path::new(&name),
            OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| os_err("open", Some(Path::new(&name)), e))?;
        nix::unistd::fchown(slave, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
            .map_err(|e| os_err("fchown", Some(Path::new(&name)), e))?;
        // The caller made this process a session leader ([`Syscall::setsid`]).
        // SAFETY: TIOCSCTTY takes an int argument (0: do not steal); `slave` is open.
        if unsafe { libc::ioctl(slave, libc::TIOCSCTTY, 0) } < 0 {
            return Err(os_err("ioctl(TIOCSCTTY)", None, Errno::last()));
        }
        for fd in 0..3 {
            nix::unistd::dup2(slave, fd).map_err(err("dup2"))?;
        }
        if slave > 2 {
            let _ = nix::unistd::close(slave);
        }
        let fds = [master.as_raw_fd()];
        let iov = [std::io::IoSlice::new(b"pty")];
        sendmsg::<()>(
            socket.as_raw_fd(),
            &iov,
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .map_err(err("sendmsg(console socket)"))?;
        Ok(())
    }

    #[allow(unsafe_code)]
    fn seccomp(&self, program: &[seccompiler::sock_filter]) -> Result<()> {
        #[repr(C)]
        struct SockFprog {
            len: libc::c_ushort,
            filter: *const seccompiler::sock_filter,
        }
        let len = libc::c_ushort::try_from(program.len())
            .map_err(|_| os_err("seccomp", None, Errno::E2BIG))?;
        let prog = SockFprog {
            len,
            filter: program.as_ptr(),
        };
        // SAFETY: the kernel copies `len` instructions from `filter`, which `program` keeps
        // alive for the call; `prog` outlives it too.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                std::ptr::addr_of!(prog),
            )
        };
        if rc != 0 {
            return Err(os_err(
                "seccomp(SECCOMP_SET_MODE_FILTER)",
                None,
                Errno::last(),
            ));
        }
        Ok(())
    }

    fn setns(&self, fd: BorrowedFd<'_>, kind: CloneFlags) -> Result<()> {
        nix::sched::setns(fd, kind).map_err(|e| os_err("setns", None, e))
    }

    fn execve(&self, path: &Path, argv: &[CString], envp: &[CString]) -> Result<Infallible> {
        let c = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| os_err("execve", Some(path), Errno::EINVAL))?;
        nix::unistd::execve(&c, argv, envp).map_err(|e| os_err("execve", Some(path), e))
    }
}
