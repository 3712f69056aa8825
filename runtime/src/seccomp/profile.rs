//! Moby's default seccomp profile as data (`moby/profiles` `seccomp/default_linux.go`
//! `DefaultProfile`) and its evaluation for one container (`seccomp_linux.go`
//! `setupSeccomp`): an entry applies unless its `excludes` match (the architecture is listed,
//! any listed capability is in the bounding set, or the kernel is at least `minKernel`), and
//! only if its `includes` match (the architecture is listed, every listed capability is in the
//! bounding set, the kernel is at least `minKernel`).

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompBuilder,
    LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};

use super::{Result, SeccompError, ENOSYS, EPERM};

/// A Linux kernel version, `major.minor`, compared as moby's `KernelVersion`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct KernelVersion {
    /// `6` in `6.8.0-45-generic`.
    pub major: u32,
    /// `8` in `6.8.0-45-generic`.
    pub minor: u32,
}

/// Where the running kernel's release string is read.
const OSRELEASE: &str = "/proc/sys/kernel/osrelease";

impl KernelVersion {
    /// `major.minor` at the start of a release string (`6.8.0-45-generic`, `4.19`).
    #[must_use]
    pub fn parse(release: &str) -> Option<Self> {
        let mut parts = release.trim().splitn(3, '.');
        let major = parts.next()?.parse().ok()?;
        let minor: String = parts
            .next()?
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        Some(Self {
            major,
            minor: minor.parse().ok()?,
        })
    }

    /// The running kernel's version.
    ///
    /// # Errors
    /// [`OSRELEASE`] cannot be read or does not start with `major.minor`.
    pub fn host() -> Result<Self> {
        let release =
            fs_err::read_to_string(OSRELEASE).map_err(|e| SeccompError::KernelVersion {
                path: OSRELEASE,
                source: e,
            })?;
        Self::parse(&release).ok_or_else(|| SeccompError::KernelVersion {
            path: OSRELEASE,
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("unexpected kernel release {release:?}"),
            ),
        })
    }
}

/// When an entry applies; empty lists and `None` do not constrain.
#[derive(Default)]
struct Filter {
    /// Architectures, in moby's (libseccomp's) names: `amd64`, `x32`, `arm64`, `s390x`, ...
    arches: &'static [&'static str],
    /// Capabilities (`CAP_SYS_ADMIN`), checked against the bounding set.
    caps: &'static [&'static str],
    min_kernel: Option<KernelVersion>,
}

/// One entry of moby's profile: a `linux.seccomp` syscall rule and when it applies.
struct Entry {
    names: &'static [&'static str],
    action: LinuxSeccompAction,
    errno: Option<u32>,
    /// `(index, value, op)`; moby's `valueTwo` is always 0.
    args: Vec<(usize, u64, LinuxSeccompOperator)>,
    includes: Filter,
    excludes: Filter,
}

impl Entry {
    fn allow(names: &'static [&'static str]) -> Self {
        Self {
            names,
            action: LinuxSeccompAction::ScmpActAllow,
            errno: None,
            args: Vec::new(),
            includes: Filter::default(),
            excludes: Filter::default(),
        }
    }

    fn arg(mut self, index: usize, value: u64, op: LinuxSeccompOperator) -> Self {
        self.args.push((index, value, op));
        self
    }

    fn with_caps(mut self, caps: &'static [&'static str]) -> Self {
        self.includes.caps = caps;
        self
    }

    fn on(mut self, arches: &'static [&'static str]) -> Self {
        self.includes.arches = arches;
        self
    }

    fn without_caps(mut self, caps: &'static [&'static str]) -> Self {
        self.excludes.caps = caps;
        self
    }

    fn applies(&self, caps: &[String], arch: &str, kernel: KernelVersion) -> bool {
        let has = |c: &&str| caps.iter().any(|have| have == c);
        let (inc, exc) = (&self.includes, &self.excludes);
        let excluded = exc.arches.contains(&arch)
            || exc.caps.iter().any(has)
            || exc.min_kernel.is_some_and(|k| kernel >= k);
        let included = (inc.arches.is_empty() || inc.arches.contains(&arch))
            && inc.caps.iter().all(has)
            && inc.min_kernel.is_none_or(|k| kernel >= k);
        !excluded && included
    }

    fn to_oci(&self) -> Result<LinuxSyscall> {
        let mut b = LinuxSyscallBuilder::default()
            .names(
                self.names
                    .iter()
                    .map(|n| (*n).to_owned())
                    .collect::<Vec<_>>(),
            )
            .action(self.action);
        if let Some(errno) = self.errno {
            b = b.errno_ret(errno);
        }
        if !self.args.is_empty() {
            let mut args = Vec::new();
            for &(index, value, op) in &self.args {
                let mut arg = LinuxSeccompArgBuilder::default()
                    .index(index)
                    .value(value)
                    .op(op);
                if op == LinuxSeccompOperator::ScmpCmpMaskedEq {
                    arg = arg.value_two(0u64);
                }
                args.push(arg.build()?);
            }
            b = b.args(args);
        }
        Ok(b.build()?)
    }
}

/// Syscalls moby allows to every container (its first entry).
pub const ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "getxattrat",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listmount",
    "listxattr",
    "listxattrat",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "mseal",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "removexattrat",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "riscv_hwprobe",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "setxattrat",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statmount",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "uretprobe",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
];

/// `clone` flags that create namespaces (`CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER
/// | NEWPID | NEWNET`), refused without `CAP_SYS_ADMIN`.
const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;
/// Personas moby allows (`PER_LINUX`, `UNAME26`, `PER_LINUX32`, their mix, and the query).
const PERSONAS: [u64; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// The address families `socket(2)` may use: moby's `allowedSocketDomains`, the UAPI's list
/// without the removed families (`AF_DECnet` 12, `AF_ECONET` 19, `AF_ATMSVC` 20, `AF_IRDA` 23,
/// `AF_WANPIPE` 25, `AF_ISDN` 34, `AF_CAIF` 37) and the blocked ones: `AF_ALG` (38, the kernel
/// crypto API, no use in a general-purpose container) and `AF_VSOCK` (40, host/guest sockets,
/// global across network namespaces by default, so a container could reach any VM by CID).
/// `socketcall(2)` (32-bit ABIs) passes its arguments behind a pointer and is not filtered.
const SOCKET_DOMAINS: &[u64] = &[
    1,  // AF_UNIX
    2,  // AF_INET
    3,  // AF_AX25
    4,  // AF_IPX
    5,  // AF_APPLETALK
    6,  // AF_NETROM
    7,  // AF_BRIDGE
    8,  // AF_ATMPVC
    9,  // AF_X25
    10, // AF_INET6
    11, // AF_ROSE
    13, // AF_NETBEUI
    14, // AF_SECURITY
    15, // AF_KEY
    16, // AF_NETLINK
    17, // AF_PACKET
    18, // AF_ASH
    21, // AF_RDS
    22, // AF_SNA
    24, // AF_PPPOX
    26, // AF_LLC
    27, // AF_IB
    28, // AF_MPLS
    29, // AF_CAN
    30, // AF_TIPC
    31, // AF_BLUETOOTH
    32, // AF_IUCV
    33, // AF_RXRPC
    35, // AF_PHONET
    36, // AF_IEEE802154
    39, // AF_NFC
    41, // AF_KCM
    42, // AF_QIPCRTR
    43, // AF_SMC
    44, // AF_XDP
    45, // AF_MCTP
];

/// moby's `socketSyscallsForDomains`: the run of families from `AF_UNIX` as one `< end` rule
/// (`AF_UNSPEC`, 0, cannot be created), then one `==` rule each. A bounded range would need
/// two comparisons, which runc ORs instead of ANDs (opencontainers/runc#2735).
fn socket_entries() -> Vec<Entry> {
    use LinuxSeccompOperator::{ScmpCmpEq, ScmpCmpLt};
    let mut domains = SOCKET_DOMAINS.to_vec();
    domains.sort_unstable();
    let mut entries = Vec::new();
    let mut rest = &domains[..];
    if domains.len() > 1 && domains[0] == 1 && domains[1] == 2 {
        let run = domains.windows(2).take_while(|w| w[1] == w[0] + 1).count() + 1;
        entries.push(Entry::allow(&["socket"]).arg(0, domains[run - 1] + 1, ScmpCmpLt));
        rest = &domains[run..];
    }
    entries.extend(
        rest.iter()
            .map(|&d| Entry::allow(&["socket"]).arg(0, d, ScmpCmpEq)),
    );
    entries
}

/// Moby's `DefaultProfile().Syscalls`, in its order.
#[allow(clippy::too_many_lines)]
fn entries() -> Vec<Entry> {
    use LinuxSeccompOperator::{ScmpCmpEq, ScmpCmpMaskedEq};
    let mut e = vec![
        Entry::allow(ALLOWED),
        Entry {
            includes: Filter {
                min_kernel: Some(KernelVersion { major: 4, minor: 8 }),
                ..Filter::default()
            },
            ..Entry::allow(&["process_vm_readv", "process_vm_writev", "ptrace"])
        },
    ];
    e.extend(socket_entries());
    e.extend(
        PERSONAS
            .iter()
            .map(|&p| Entry::allow(&["personality"]).arg(0, p, ScmpCmpEq)),
    );
    e.extend([
        Entry::allow(&["sync_file_range2", "swapcontext"]).on(&["ppc64le"]),
        Entry::allow(&[
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "sync_file_range2",
            "breakpoint",
            "cacheflush",
            "set_tls",
        ])
        .on(&["arm", "arm64"]),
        Entry::allow(&["arch_prctl"]).on(&["amd64", "x32"]),
        Entry::allow(&["modify_ldt"]).on(&["amd64", "x32", "x86"]),
        Entry::allow(&[
            "s390_pci_mmio_read",
            "s390_pci_mmio_write",
            "s390_runtime_instr",
        ])
        .on(&["s390", "s390x"]),
        Entry::allow(&["riscv_flush_icache"]).on(&["riscv64"]),
        Entry::allow(&["open_by_handle_at"]).with_caps(&["CAP_DAC_READ_SEARCH"]),
        Entry::allow(&[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "lsm_get_self_attr",
            "lsm_list_modules",
            "lsm_set_self_attr",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ])
        .with_caps(&["CAP_SYS_ADMIN"]),
        Entry {
            excludes: Filter {
                arches: &["s390", "s390x"],
                caps: &["CAP_SYS_ADMIN"],
                min_kernel: None,
            },
            ..Entry::allow(&["clone"]).arg(0, CLONE_NAMESPACE_FLAGS, ScmpCmpMaskedEq)
        },
        // s390 passes clone's flags second.
        Entry::allow(&["clone"])
            .arg(1, CLONE_NAMESPACE_FLAGS, ScmpCmpMaskedEq)
            .on(&["s390", "s390x"])
            .without_caps(&["CAP_SYS_ADMIN"]),
        Entry {
            action: LinuxSeccompAction::ScmpActErrno,
            errno: Some(ENOSYS),
            ..Entry::allow(&["clone3"]).without_caps(&["CAP_SYS_ADMIN"])
        },
        Entry::allow(&["reboot"]).with_caps(&["CAP_SYS_BOOT"]),
        Entry::allow(&["chroot"]).with_caps(&["CAP_SYS_CHROOT"]),
        Entry::allow(&["delete_module", "init_module", "finit_module"])
            .with_caps(&["CAP_SYS_MODULE"]),
        Entry::allow(&["acct"]).with_caps(&["CAP_SYS_PACCT"]),
        Entry::allow(&[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ])
        .with_caps(&["CAP_SYS_PTRACE"]),
        Entry::allow(&["iopl", "ioperm"]).with_caps(&["CAP_SYS_RAWIO"]),
        Entry::allow(&["settimeofday", "stime", "clock_settime", "clock_settime64"])
            .with_caps(&["CAP_SYS_TIME"]),
        Entry::allow(&["vhangup"]).with_caps(&["CAP_SYS_TTY_CONFIG"]),
        Entry::allow(&[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ])
        .with_caps(&["CAP_SYS_NICE"]),
        Entry::allow(&["syslog"]).with_caps(&["CAP_SYSLOG"]),
        Entry::allow(&["bpf"]).with_caps(&["CAP_BPF"]),
        Entry::allow(&["perf_event_open"]).with_caps(&["CAP_PERFMON"]),
    ]);
    e
}

/// Moby's (libseccomp's) name for the architecture this runtime was built for, as Go's
/// `goToNative[runtime.GOARCH]`.
pub(super) fn native_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "x86",
        "aarch64" => "arm64",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        other => other,
    }
}

/// moby's `archMap` entry for `arch`: the architecture and its sub-architectures.
fn architectures(arch: &str) -> Vec<Arch> {
    match arch {
        "amd64" => vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32],
        "arm64" => vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm],
        "s390x" => vec![Arch::ScmpArchS390x, Arch::ScmpArchS390],
        "riscv64" => vec![Arch::ScmpArchRiscv64],
        // Not in moby's `archMap` (ppc64le, x86, arm) or not mapped (loong64): none listed.
        _ => Vec::new(),
    }
}

/// `CAP_SYS_PTRACE` for `SYS_PTRACE`, `sys_ptrace` or `CAP_SYS_PTRACE`.
fn cap_name(cap: &str) -> String {
    let upper = cap.to_ascii_uppercase();
    if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    }
}

/// Moby's default profile for a container whose bounding set is `caps`, on `arch` (moby's
/// names, [`native_arch`]) and a kernel `kernel`.
///
/// # Errors
/// oci-spec refusing a value (not expected).
pub(super) fn profile(caps: &[String], arch: &str, kernel: KernelVersion) -> Result<LinuxSeccomp> {
    let caps: Vec<String> = caps.iter().map(|c| cap_name(c)).collect();
    let syscalls = entries()
        .iter()
        .filter(|e| e.applies(&caps, arch, kernel))
        .map(Entry::to_oci)
        .collect::<Result<Vec<_>>>()?;
    Ok(LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActErrno)
        .default_errno_ret(EPERM)
        .architectures(architectures(arch))
        .syscalls(syscalls)
        .build()?)
}

/// Docker's default seccomp profile for a container whose bounding capability set is `caps`
/// (`CAP_SYS_PTRACE`; the `CAP_` prefix may be left out), on this architecture and the running
/// kernel: what `docker run` with those capabilities (`--cap-add`, `--cap-drop`) puts in the
/// spec, so that runc or crun running the same bundle apply the same filter.
///
/// # Errors
/// The kernel version cannot be read.
pub fn docker_profile<S: AsRef<str>>(caps: &[S]) -> Result<LinuxSeccomp> {
    let caps: Vec<String> = caps.iter().map(|c| c.as_ref().to_owned()).collect();
    profile(&caps, native_arch(), KernelVersion::host()?)
}

/// [`docker_profile`] for Docker's default capabilities ([`crate::spec::DEFAULT_CAPS`]).
///
/// # Errors
/// The kernel version cannot be read.
pub fn docker_default() -> Result<LinuxSeccomp> {
    docker_profile(&crate::spec::DEFAULT_CAPS)
}
