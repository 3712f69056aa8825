//! Seccomp: Docker's default profile as the spec's `linux.seccomp` ([`docker_default`]), and
//! that section compiled to a BPF program ([`compile`]) that init installs
//! ([`crate::syscall::Syscall::seccomp`]) before it drops its capabilities, as runc does when
//! `noNewPrivileges` is off (installing a filter then needs `CAP_SYS_ADMIN`).
//!
//! The profile follows moby's `profiles/seccomp/default.json` for Docker's default capability
//! set: an allow-list, everything else fails with `EPERM`; `clone` without namespace flags;
//! `personality` with the harmless personas; `clone3` fails with `ENOSYS` so libcs fall back to
//! `clone`, where the flags can be checked. Names unknown on this architecture are skipped, as
//! libseccomp does. `seccompiler` builds the BPF (arch check, argument comparisons); the
//! `syscalls` crate maps names to numbers.

use std::collections::BTreeMap;
use std::str::FromStr as _;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompBuilder,
    LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// Errors building or compiling a filter.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// oci-spec refused a value.
    #[error("invalid seccomp section")]
    Oci(#[from] oci_spec::OciSpecError),
    /// The section asks for something this runtime cannot express.
    #[error("unsupported seccomp {what}")]
    Unsupported {
        /// What.
        what: String,
    },
    /// seccompiler refused the rules.
    #[error("cannot compile the seccomp filter: {0:?}")]
    Compile(seccompiler::BackendError),
}

/// Result of this module.
pub type Result<T> = std::result::Result<T, SeccompError>;

/// `EPERM`, Docker's answer to a syscall outside the profile.
const EPERM: u32 = 1;
/// `ENOSYS`, for `clone3`.
const ENOSYS: u32 = 38;
/// `clone` flags that create namespaces (`CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER
/// | NEWPID | NEWNET`), refused without `CAP_SYS_ADMIN`.
const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;
/// Personas Docker allows (`PER_LINUX`, `UNAME26`, `PER_LINUX32`, their mix, and the query).
const PERSONAS: [u64; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// The syscalls Docker's default profile allows unconditionally to a container with the
/// default capabilities.
pub const ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "arch_prctl",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "chroot",
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
    "listxattr",
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
    "modify_ldt",
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
    "pidfd_getfd",
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
    "process_vm_readv",
    "process_vm_writev",
    "pselect6",
    "pselect6_time64",
    "ptrace",
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
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
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
    "socket",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
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

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Docker's default seccomp profile as an OCI `linux.seccomp` section, so that runc or crun
/// running the same bundle apply the same filter.
///
/// # Errors
/// oci-spec refusing a value (not expected).
pub fn docker_default() -> Result<LinuxSeccomp> {
    let allow = |list: &[&str]| -> Result<LinuxSyscall> {
        Ok(LinuxSyscallBuilder::default()
            .names(names(list))
            .action(LinuxSeccompAction::ScmpActAllow)
            .build()?)
    };
    let mut syscalls = vec![allow(ALLOWED)?];
    for persona in PERSONAS {
        syscalls.push(
            LinuxSyscallBuilder::default()
                .names(names(&["personality"]))
                .action(LinuxSeccompAction::ScmpActAllow)
                .args(vec![LinuxSeccompArgBuilder::default()
                    .index(0usize)
                    .value(persona)
                    .op(LinuxSeccompOperator::ScmpCmpEq)
                    .build()?])
                .build()?,
        );
    }
    syscalls.push(
        LinuxSyscallBuilder::default()
            .names(names(&["clone"]))
            .action(LinuxSeccompAction::ScmpActAllow)
            .args(vec![LinuxSeccompArgBuilder::default()
                .index(0usize)
                .value(CLONE_NAMESPACE_FLAGS)
                .value_two(0u64)
                .op(LinuxSeccompOperator::ScmpCmpMaskedEq)
                .build()?])
            .build()?,
    );
    syscalls.push(
        LinuxSyscallBuilder::default()
            .names(names(&["clone3"]))
            .action(LinuxSeccompAction::ScmpActErrno)
            .errno_ret(ENOSYS)
            .build()?,
    );
    Ok(LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActErrno)
        .default_errno_ret(EPERM)
        .architectures(vec![
            Arch::ScmpArchX86_64,
            Arch::ScmpArchX86,
            Arch::ScmpArchX32,
        ])
        .syscalls(syscalls)
        .build()?)
}

fn target_arch() -> Result<TargetArch> {
    match std::env::consts::ARCH {
        "x86_64" => Ok(TargetArch::x86_64),
        "aarch64" => Ok(TargetArch::aarch64),
        "riscv64" => Ok(TargetArch::riscv64),
        other => Err(SeccompError::Unsupported {
            what: format!("architecture {other}"),
        }),
    }
}

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> Result<SeccompAction> {
    Ok(match a {
        LinuxSeccompAction::ScmpActAllow => SeccompAction::Allow,
        LinuxSeccompAction::ScmpActErrno => SeccompAction::Errno(errno.unwrap_or(EPERM)),
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            SeccompAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => SeccompAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => SeccompAction::Trap,
        LinuxSeccompAction::ScmpActLog => SeccompAction::Log,
        other => {
            return Err(SeccompError::Unsupported {
                what: format!("action {other:?}"),
            })
        }
    })
}

/// The syscall's argument conditions as one rule; `None` when it has none (unconditional).
fn rule(syscall: &LinuxSyscall) -> Result<Option<SeccompRule>> {
    let mut conditions = Vec::new();
    for arg in syscall.args().as_deref().unwrap_or_default() {
        let op = match arg.op() {
            LinuxSeccompOperator::ScmpCmpEq => SeccompCmpOp::Eq,
            LinuxSeccompOperator::ScmpCmpNe => SeccompCmpOp::Ne,
            LinuxSeccompOperator::ScmpCmpLt => SeccompCmpOp::Lt,
            LinuxSeccompOperator::ScmpCmpLe => SeccompCmpOp::Le,
            LinuxSeccompOperator::ScmpCmpGt => SeccompCmpOp::Gt,
            LinuxSeccompOperator::ScmpCmpGe => SeccompCmpOp::Ge,
            // libseccomp: (arg & value) == valueTwo.
            LinuxSeccompOperator::ScmpCmpMaskedEq => SeccompCmpOp::MaskedEq(arg.value()),
        };
        let value = match arg.op() {
            LinuxSeccompOperator::ScmpCmpMaskedEq => arg.value_two().unwrap_or(0),
            _ => arg.value(),
        };
        let index = u8::try_from(arg.index()).map_err(|_| SeccompError::Unsupported {
            what: format!("argument index {}", arg.index()),
        })?;
        conditions.push(
            SeccompCondition::new(index, SeccompCmpArgLen::Qword, op, value)
                .map_err(SeccompError::Compile)?,
        );
    }
    if conditions.is_empty() {
        return Ok(None);
    }
    SeccompRule::new(conditions)
        .map(Some)
        .map_err(SeccompError::Compile)
}

/// Rules per syscall number; `None`: matches whatever the arguments.
type Rules = BTreeMap<i64, Option<Vec<SeccompRule>>>;

/// Adds `rule` for `nr`: an unconditional rule wins over conditional ones (they are ORed).
fn add(rules: &mut Rules, nr: i64, rule: Option<SeccompRule>) {
    match (rules.entry(nr).or_insert_with(|| Some(Vec::new())), rule) {
        (slot @ Some(_), None) => *slot = None,
        (Some(list), Some(r)) => list.push(r),
        (None, _) => {}
    }
}

/// Compiles a `linux.seccomp` section for this architecture. Rules whose action is neither
/// the default nor `allow` (Docker's `clone3` → `ENOSYS`) go into a second program, installed
/// after the first; the kernel takes the most restrictive answer of all filters, so the first
/// allows those syscalls and the second answers them. Returns the programs in order.
///
/// # Errors
/// An unsupported action, operator or architecture.
pub fn compile(section: &LinuxSeccomp) -> Result<Vec<BpfProgram>> {
    let arch = target_arch()?;
    let default = action(section.default_action(), section.default_errno_ret())?;
    let mut allowed = Rules::new();
    let mut other: Vec<(SeccompAction, Rules)> = Vec::new();
    for sc in section.syscalls().as_deref().unwrap_or_default() {
        let act = action(sc.action(), sc.errno_ret())?;
        let rule = rule(sc)?;
        for name in sc.names() {
            let Ok(nr) = syscalls::Sysno::from_str(name) else {
                continue;
            };
            let nr = i64::from(nr.id());
            if act == SeccompAction::Allow {
                add(&mut allowed, nr, rule.clone());
            } else if act != default {
                add(&mut allowed, nr, None);
                let at = match other.iter().position(|(a, _)| *a == act) {
                    Some(i) => i,
                    None => {
                        other.push((act.clone(), Rules::new()));
                        other.len() - 1
                    }
                };
                add(&mut other[at].1, nr, rule.clone());
            }
        }
    }
    let mut programs = vec![to_bpf(allowed, default, SeccompAction::Allow, arch)?];
    for (act, rules) in other {
        programs.push(to_bpf(rules, SeccompAction::Allow, act, arch)?);
    }
    Ok(programs)
}

fn to_bpf(
    rules: Rules,
    mismatch: SeccompAction,
    matched: SeccompAction,
    arch: TargetArch,
) -> Result<BpfProgram> {
    // seccompiler: an empty rule list matches whatever the arguments.
    let rules = rules
        .into_iter()
        .map(|(nr, r)| (nr, r.unwrap_or_default()))
        .collect();
    let filter =
        SeccompFilter::new(rules, mismatch, matched, arch).map_err(SeccompError::Compile)?;
    BpfProgram::try_from(filter).map_err(SeccompError::Compile)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_profile_compiles_to_an_allow_list_and_an_enosys_filter() {
        let section = docker_default().unwrap();
        assert_eq!(section.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(section.default_errno_ret(), Some(EPERM));
        let programs = compile(&section).unwrap();
        assert_eq!(programs.len(), 2);
        // Hundreds of syscalls: far more than a handful of instructions.
        assert!(programs[0].len() > 300, "{}", programs[0].len());
        assert!(programs[1].len() < 20, "{}", programs[1].len());
        // Dangerous ones are not in the list.
        for denied in [
            "mount",
            "umount2",
            "unshare",
            "setns",
            "pivot_root",
            "keyctl",
            "bpf",
            "kexec_load",
            "reboot",
        ] {
            assert!(!ALLOWED.contains(&denied), "{denied}");
        }
        // Everything init does after installing it is allowed.
        for needed in [
            "setgroups",
            "setresgid",
            "setresuid",
            "capset",
            "prctl",
            "chdir",
            "execve",
            "openat",
            "getdents64",
            "fcntl",
            "newfstatat",
            "statx",
        ] {
            assert!(ALLOWED.contains(&needed), "{needed}");
        }
    }

    #[test]
    fn unsupported_actions_are_refused() {
        let section = LinuxSeccompBuilder::default()
            .default_action(LinuxSeccompAction::ScmpActNotify)
            .build()
            .unwrap();
        assert!(matches!(
            compile(&section),
            Err(SeccompError::Unsupported { .. })
        ));
    }
}
