//! The profile against moby's own file (the fixture), evaluated the way moby does, and the
//! compiled programs run through a small classic-BPF interpreter with the kernel's rules for
//! combining several filters.

use std::collections::{BTreeMap, BTreeSet};

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompBuilder};
use rstest::rstest;
use serde_json::{json, Value};

use super::profile::{profile, ALLOWED};
use super::{compile, KernelVersion, SeccompError, EPERM};

/// moby/profiles `seccomp/default.json` at commit 02e898b137aed1024e232d59bcb05e6179b72177.
const MOBY: &str = include_str!("../../tests/fixtures/moby-seccomp-default.json");

const KERNEL: KernelVersion = KernelVersion {
    major: 6,
    minor: 18,
};

fn default_caps() -> Vec<String> {
    crate::spec::DEFAULT_CAPS
        .iter()
        .map(|c| (*c).to_owned())
        .collect()
}

fn with(extra: &[&str]) -> Vec<String> {
    let mut caps = default_caps();
    caps.extend(extra.iter().map(|c| (*c).to_owned()));
    caps
}

/// Every capability moby's profile mentions, and the default ones (`--privileged`-like).
fn all_caps() -> Vec<String> {
    with(&[
        "CAP_SYS_ADMIN",
        "CAP_SYS_PTRACE",
        "CAP_DAC_READ_SEARCH",
        "CAP_SYS_BOOT",
        "CAP_SYS_MODULE",
        "CAP_SYS_PACCT",
        "CAP_SYS_RAWIO",
        "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG",
        "CAP_SYS_NICE",
        "CAP_SYSLOG",
        "CAP_BPF",
        "CAP_PERFMON",
    ])
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn kernel(v: &Value) -> Option<KernelVersion> {
    v.as_str()
        .map(|s| KernelVersion::parse(s).expect("minKernel"))
}

/// moby's `setupSeccomp` over the fixture, for a bounding set, an architecture (moby's names)
/// and a kernel version: the `linux.seccomp` section as JSON.
fn moby(caps: &[String], arch: &str, running: KernelVersion) -> Value {
    let profile: Value = serde_json::from_str(MOBY).unwrap();
    let native = match arch {
        "amd64" => "SCMP_ARCH_X86_64",
        "arm64" => "SCMP_ARCH_AARCH64",
        "riscv64" => "SCMP_ARCH_RISCV64",
        other => panic!("no test mapping for {other}"),
    };
    let mut architectures = Vec::new();
    for a in profile["archMap"].as_array().unwrap() {
        if a["architecture"] == native {
            architectures.push(native);
            architectures.extend(strings(&a["subArchitectures"]));
            break;
        }
    }
    let has = |c: &&str| caps.iter().any(|have| have == c);
    let mut syscalls = Vec::new();
    for call in profile["syscalls"].as_array().unwrap() {
        let (inc, exc) = (&call["includes"], &call["excludes"]);
        if strings(&exc["arches"]).contains(&arch)
            || strings(&exc["caps"]).iter().any(has)
            || kernel(&exc["minKernel"]).is_some_and(|k| running >= k)
        {
            continue;
        }
        let arches = strings(&inc["arches"]);
        if (!arches.is_empty() && !arches.contains(&arch))
            || !strings(&inc["caps"]).iter().all(has)
            || kernel(&inc["minKernel"]).is_some_and(|k| running < k)
        {
            continue;
        }
        let mut call = call.clone();
        for key in ["includes", "excludes", "comment"] {
            call.as_object_mut().unwrap().remove(key);
        }
        syscalls.push(call);
    }
    json!({
        "defaultAction": profile["defaultAction"],
        "defaultErrnoRet": profile["defaultErrnoRet"],
        "architectures": architectures,
        "syscalls": syscalls,
    })
}

/// A section as comparable data: the header, and each syscall name's rules as strings
/// (action, errno, arguments), so that the order of entries does not matter.
fn normalize(section: &Value) -> (String, BTreeMap<String, BTreeSet<String>>) {
    let header = format!(
        "defaultAction={} defaultErrnoRet={} architectures={}",
        section["defaultAction"], section["defaultErrnoRet"], section["architectures"]
    );
    let mut rules: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for call in section["syscalls"].as_array().unwrap() {
        let args: Vec<String> = call["args"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|arg| {
                        format!(
                            "arg{} {} {} {}",
                            arg["index"],
                            arg["op"].as_str().unwrap(),
                            arg["value"],
                            arg["valueTwo"].as_u64().unwrap_or(0)
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let rule = format!(
            "{} errno={} [{}]",
            call["action"].as_str().unwrap(),
            call["errnoRet"],
            args.join(", ")
        );
        for name in strings(&call["names"]) {
            rules
                .entry(name.to_owned())
                .or_default()
                .insert(rule.clone());
        }
    }
    (header, rules)
}

/// Differences between moby's evaluated profile and ours, one line each.
fn differences(caps: &[String], arch: &str, running: KernelVersion) -> Vec<String> {
    let ours = serde_json::to_value(profile(caps, arch, running).unwrap()).unwrap();
    let (moby_header, moby_rules) = normalize(&moby(caps, arch, running));
    let (our_header, our_rules) = normalize(&ours);
    let mut diffs = Vec::new();
    if moby_header != our_header {
        diffs.push(format!("header: moby {moby_header} / berth {our_header}"));
    }
    let names: BTreeSet<&String> = moby_rules.keys().chain(our_rules.keys()).collect();
    for name in names {
        let none = BTreeSet::new();
        let m = moby_rules.get(name).unwrap_or(&none);
        let o = our_rules.get(name).unwrap_or(&none);
        if m != o {
            let only_moby: Vec<_> = m.difference(o).collect();
            let only_ours: Vec<_> = o.difference(m).collect();
            diffs.push(format!(
                "{name}: only in moby's {only_moby:?}, only in berth's {only_ours:?}"
            ));
        }
    }
    diffs
}

/// Documented differences from moby's profile in the section: none.
const EXCEPTIONS: &[&str] = &[];

#[rstest]
#[case::default_caps(default_caps(), "amd64", KERNEL)]
#[case::sys_ptrace(with(&["CAP_SYS_PTRACE"]), "amd64", KERNEL)]
#[case::sys_admin(with(&["CAP_SYS_ADMIN"]), "amd64", KERNEL)]
#[case::every_cap(all_caps(), "amd64", KERNEL)]
#[case::no_caps(Vec::new(), "amd64", KERNEL)]
#[case::kernel_before_4_8(default_caps(), "amd64", KernelVersion { major: 4, minor: 7 })]
#[case::arm64(with(&["CAP_SYS_ADMIN"]), "arm64", KERNEL)]
#[case::riscv64(default_caps(), "riscv64", KERNEL)]
fn the_profile_is_mobys_syscall_by_syscall(
    #[case] caps: Vec<String>,
    #[case] arch: &str,
    #[case] running: KernelVersion,
) {
    let diffs: Vec<String> = differences(&caps, arch, running)
        .into_iter()
        .filter(|d| !EXCEPTIONS.iter().any(|e| d.starts_with(e)))
        .collect();
    assert!(
        diffs.is_empty(),
        "{} difference(s) from moby's profile:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

/// Allowed syscall names of a section (any rule with the allow action).
fn allowed_names(section: &LinuxSeccomp) -> BTreeSet<String> {
    section
        .syscalls()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter(|s| s.action() == LinuxSeccompAction::ScmpActAllow)
        .flat_map(|s| s.names().iter().cloned())
        .collect()
}

#[test]
fn capabilities_open_their_groups() {
    let default = allowed_names(&profile(&default_caps(), "amd64", KERNEL).unwrap());
    let ptrace = allowed_names(&profile(&with(&["SYS_PTRACE"]), "amd64", KERNEL).unwrap());
    let admin = allowed_names(&profile(&with(&["CAP_SYS_ADMIN"]), "amd64", KERNEL).unwrap());
    for name in ["pidfd_getfd", "kcmp", "process_madvise"] {
        assert!(!default.contains(name), "{name}");
        assert!(ptrace.contains(name), "{name}");
    }
    for name in [
        "mount",
        "umount2",
        "unshare",
        "setns",
        "clone3",
        "sethostname",
        "bpf",
    ] {
        assert!(!default.contains(name), "{name}");
        assert!(admin.contains(name), "{name}");
    }
    // ptrace itself needs only a kernel where seccomp cannot be bypassed with it (4.8).
    assert!(default.contains("ptrace"));
    let old = profile(
        &default_caps(),
        "amd64",
        KernelVersion { major: 4, minor: 7 },
    )
    .unwrap();
    assert!(!allowed_names(&old).contains("ptrace"));
    assert!(ALLOWED.contains(&"getxattrat") && !ALLOWED.contains(&"socket"));
}

#[rstest]
#[case("6.8.0-45-generic", Some((6, 8)))]
#[case("6.18.44-fc-v1272", Some((6, 18)))]
#[case("4.19", Some((4, 19)))]
#[case("5.10-rc1", Some((5, 10)))]
#[case("garbage", None)]
#[case("6", None)]
fn kernel_versions_parse(#[case] release: &str, #[case] want: Option<(u32, u32)>) {
    let got = KernelVersion::parse(release).map(|k| (k.major, k.minor));
    assert_eq!(got, want);
}

#[test]
fn the_host_kernel_version_is_read() {
    assert!(KernelVersion::host().unwrap() >= KernelVersion { major: 3, minor: 0 });
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

#[cfg(target_arch = "x86_64")]
mod x86_64 {
    use seccompiler::BpfProgram;

    use super::*;
    use crate::seccomp::compile::number;

    /// Names moby lists for amd64 that x86_64 has no syscall for (32-bit or other ABIs).
    const NOT_ON_X86_64: &[&str] = &[
        "_llseek",
        "_newselect",
        "chown32",
        "clock_adjtime64",
        "clock_getres_time64",
        "clock_gettime64",
        "clock_nanosleep_time64",
        "fadvise64_64",
        "fchown32",
        "fcntl64",
        "fstat64",
        "fstatat64",
        "fstatfs64",
        "ftruncate64",
        "futex_time64",
        "getegid32",
        "geteuid32",
        "getgid32",
        "getgroups32",
        "getresgid32",
        "getresuid32",
        "getuid32",
        "io_pgetevents_time64",
        "ipc",
        "lchown32",
        "lstat64",
        "mmap2",
        "mq_timedreceive_time64",
        "mq_timedsend_time64",
        "ppoll_time64",
        "pselect6_time64",
        "recv",
        "recvmmsg_time64",
        "riscv_hwprobe",
        "rt_sigtimedwait_time64",
        "sched_rr_get_interval_time64",
        "semtimedop_time64",
        "send",
        "sendfile64",
        "setfsgid32",
        "setfsuid32",
        "setgid32",
        "setgroups32",
        "setregid32",
        "setresgid32",
        "setresuid32",
        "setreuid32",
        "setuid32",
        "sigprocmask",
        "sigreturn",
        "socketcall",
        "stat64",
        "statfs64",
        "stime",
        "timer_gettime64",
        "timer_settime64",
        "timerfd_gettime64",
        "timerfd_settime64",
        "truncate64",
        "ugetrlimit",
        "umount",
        "utimensat_time64",
        "waitpid",
        "clock_settime64",
    ];

    #[test]
    fn every_name_moby_allows_on_amd64_has_a_number_here() {
        let section = profile(&all_caps(), "amd64", KERNEL).unwrap();
        let missing: Vec<String> = allowed_names(&section)
            .into_iter()
            .filter(|n| number(n).is_none() && !NOT_ON_X86_64.contains(&n.as_str()))
            .collect();
        assert!(missing.is_empty(), "no syscall number for {missing:?}");
        // The ones newer than the `syscalls` crate come from our own table.
        assert_eq!(number("mseal"), Some(462));
        assert_eq!(number("uretprobe"), Some(335));
        for name in NOT_ON_X86_64 {
            assert_eq!(number(name), None, "{name} exists on x86_64");
        }
    }

    const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
    const AUDIT_ARCH_I386: u32 = 0x4000_0003;
    const RET_ALLOW: u32 = 0x7fff_0000;
    const RET_ERRNO: u32 = 0x0005_0000;
    const RET_KILL_PROCESS: u32 = 0x8000_0000;

    /// Runs one classic-BPF seccomp program over `seccomp_data` (the instructions seccompiler
    /// emits: `ld [k]`, `and #k`, `jeq/jgt/jge #k`, `ja`, `ret #k`).
    fn run(program: &BpfProgram, data: &[u8; 64]) -> u32 {
        let word = |k: u32| {
            let k = k as usize;
            u32::from_ne_bytes(data[k..k + 4].try_into().unwrap())
        };
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let ins = &program[pc];
            pc += 1;
            let jump = |cond: bool| usize::from(if cond { ins.jt } else { ins.jf });
            match ins.code {
                0x20 => acc = word(ins.k),        // BPF_LD | BPF_W | BPF_ABS
                0x54 => acc &= ins.k,             // BPF_ALU | BPF_AND | BPF_K
                0x05 => pc += ins.k as usize,     // BPF_JMP | BPF_JA
                0x15 => pc += jump(acc == ins.k), // BPF_JMP | BPF_JEQ | BPF_K
                0x25 => pc += jump(acc > ins.k),  // BPF_JMP | BPF_JGT | BPF_K
                0x35 => pc += jump(acc >= ins.k), // BPF_JMP | BPF_JGE | BPF_K
                0x06 => return ins.k,             // BPF_RET | BPF_K
                code => panic!("instruction {code:#x} not interpreted"),
            }
        }
    }

    /// What the kernel answers with all `programs` installed: the most restrictive action
    /// (lowest `SECCOMP_RET_ACTION_FULL` as a signed value).
    fn answer(programs: &[BpfProgram], arch: u32, nr: i64, args: &[u64]) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&(nr as i32).to_ne_bytes());
        data[4..8].copy_from_slice(&arch.to_ne_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
        }
        programs
            .iter()
            .map(|p| run(p, &data))
            .min_by_key(|r| (r & 0xffff_0000) as i32)
            .unwrap()
    }

    fn programs(caps: &[String]) -> Vec<BpfProgram> {
        compile(&profile(caps, "amd64", KERNEL).unwrap()).unwrap()
    }

    fn call(programs: &[BpfProgram], name: &str, args: &[u64]) -> u32 {
        answer(programs, AUDIT_ARCH_X86_64, number(name).unwrap(), args)
    }

    const EPERM_RET: u32 = RET_ERRNO | EPERM;
    const ENOSYS_RET: u32 = RET_ERRNO | 38;

    #[test]
    fn sockets_follow_mobys_address_families() {
        let p = programs(&default_caps());
        for allowed in [1u64, 2, 10, 16, 17, 45] {
            assert_eq!(call(&p, "socket", &[allowed, 1, 0]), RET_ALLOW, "{allowed}");
        }
        // AF_VSOCK, AF_ALG, AF_DECnet, past AF_MCTP, and AF_INET with high bits set.
        for refused in [40u64, 38, 12, 46, 0x1_0000_0002, u64::MAX] {
            assert_eq!(
                call(&p, "socket", &[refused, 1, 0]),
                EPERM_RET,
                "{refused:#x}"
            );
        }
        assert_eq!(call(&p, "socketpair", &[1, 1, 0]), RET_ALLOW);
    }

    #[test]
    fn ptrace_like_calls_need_cap_sys_ptrace() {
        let default = programs(&default_caps());
        let ptrace = programs(&with(&["CAP_SYS_PTRACE"]));
        for name in ["pidfd_getfd", "kcmp", "process_madvise"] {
            assert_eq!(call(&default, name, &[]), EPERM_RET, "{name}");
            assert_eq!(call(&ptrace, name, &[]), RET_ALLOW, "{name}");
        }
        for name in [
            "ptrace",
            "process_vm_readv",
            "pidfd_open",
            "getxattrat",
            "mseal",
        ] {
            assert_eq!(call(&default, name, &[]), RET_ALLOW, "{name}");
        }
    }

    #[test]
    fn namespaces_and_clone3_need_cap_sys_admin() {
        const CLONE_NEWUSER: u64 = 0x1000_0000;
        const SIGCHLD: u64 = 17;
        let default = programs(&default_caps());
        let admin = programs(&with(&["CAP_SYS_ADMIN"]));
        assert_eq!(default.len(), 2);
        assert_eq!(admin.len(), 1);
        assert_eq!(call(&default, "clone", &[SIGCHLD]), RET_ALLOW);
        assert_eq!(
            call(&default, "clone", &[SIGCHLD | CLONE_NEWUSER]),
            EPERM_RET
        );
        assert_eq!(call(&default, "clone3", &[]), ENOSYS_RET);
        assert_eq!(call(&default, "unshare", &[CLONE_NEWUSER]), EPERM_RET);
        assert_eq!(call(&default, "mount", &[]), EPERM_RET);
        assert_eq!(call(&admin, "clone", &[SIGCHLD | CLONE_NEWUSER]), RET_ALLOW);
        assert_eq!(call(&admin, "clone3", &[]), RET_ALLOW);
        assert_eq!(call(&admin, "unshare", &[CLONE_NEWUSER]), RET_ALLOW);
        assert_eq!(call(&admin, "mount", &[]), RET_ALLOW);
    }

    #[test]
    fn personality_and_the_rest() {
        let p = programs(&default_caps());
        assert_eq!(call(&p, "personality", &[0x8]), RET_ALLOW);
        assert_eq!(call(&p, "personality", &[0xffff_ffff]), RET_ALLOW);
        assert_eq!(call(&p, "personality", &[0x0040_0000]), EPERM_RET); // READ_IMPLIES_EXEC
        assert_eq!(call(&p, "reboot", &[]), EPERM_RET);
        assert_eq!(call(&p, "open_by_handle_at", &[]), EPERM_RET);
        assert_eq!(call(&p, "chroot", &[]), RET_ALLOW);
        for name in [
            "execve",
            "openat",
            "setresuid",
            "capset",
            "prctl",
            "arch_prctl",
        ] {
            assert_eq!(call(&p, name, &[]), RET_ALLOW, "{name}");
        }
    }

    /// The documented difference: one architecture per program.
    #[test]
    fn other_abis_are_refused() {
        let p = programs(&default_caps());
        // i386 `getpid` (20): seccompiler's architecture check kills.
        assert_eq!(answer(&p, AUDIT_ARCH_I386, 20, &[]), RET_KILL_PROCESS);
        // x32 `getpid` (39 | __X32_SYSCALL_BIT): no rule matches, the default answers.
        assert_eq!(
            answer(&p, AUDIT_ARCH_X86_64, 39 | 0x4000_0000, &[]),
            EPERM_RET
        );
    }
}
