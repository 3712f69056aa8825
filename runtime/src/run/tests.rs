//! Unit tests of the run: init's steps on the fake syscalls, rlimits, exit codes, lookups.

use oci_spec::runtime::{PosixRlimitBuilder, ProcessBuilder, SpecBuilder};

use super::main_process::setup_cgroups;
use super::wait::exit_status;
use super::*;
use crate::spec::{build, Network, RunOptions, DEFAULT_CAPS};
use crate::syscall::{Call, Cap, FakeSyscall};
use crate::syscall::{CapsHashSet, CloneFlags, Errno, Resource};
use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, PosixRlimitType, Spec};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn spec(rootfs: &Path, user: Option<&str>, command: &[&str]) -> Spec {
    let opts = RunOptions {
        hostname: "box".into(),
        env: vec![],
        workdir: Some(std::env::temp_dir().display().to_string()),
        user: user.map(str::to_owned),
        entrypoint: None,
        command: command.iter().map(|s| (*s).to_owned()).collect(),
        network: Network::None,
        etc_files: vec![],
    };
    build(None, &opts, rootfs).unwrap()
}

fn docker_caps() -> CapsHashSet {
    DEFAULT_CAPS
        .iter()
        .map(|c| c.parse::<Cap>().unwrap())
        .collect()
}

#[test]
fn init_runs_the_steps_in_order_and_execs() {
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(t.path().join("rootfs")).unwrap();
    let spec = spec(
        &t.path().join("rootfs"),
        Some("1000:1000"),
        &["/bin/sh", "-c", "true"],
    );
    let sys = FakeSyscall::default();
    let err = init(&sys, &spec, t.path(), None).unwrap_err();
    // The fake's execve "fails" after recording: everything before it ran.
    assert!(matches!(
        err,
        InitError::Exec {
            errno: Errno::ENOSYS,
            ..
        }
    ));
    let calls = sys.calls();
    let pos = |want: &Call| {
        calls
            .iter()
            .position(|c| c == want)
            .unwrap_or_else(|| panic!("{want:?} not called"))
    };
    let pivot = calls
        .iter()
        .position(|c| matches!(c, Call::PivotRoot { .. }))
        .unwrap();
    let lo = pos(&Call::LoopbackUp);
    let host = pos(&Call::Sethostname("box".into()));
    let seccomp = calls
        .iter()
        .position(|c| matches!(c, Call::Seccomp(n) if *n > 300))
        .unwrap();
    let bounding = pos(&Call::DropBoundingCaps(docker_caps()));
    let keep = pos(&Call::SetKeepCaps(true));
    let gid = pos(&Call::Setresgid(1000));
    let uid = pos(&Call::Setresuid(1000));
    let unkeep = pos(&Call::SetKeepCaps(false));
    let eff = pos(&Call::SetCaps("Effective".into(), docker_caps()));
    let prm = pos(&Call::SetCaps("Permitted".into(), docker_caps()));
    let inh = pos(&Call::SetCaps("Inheritable".into(), CapsHashSet::new()));
    let amb = pos(&Call::SetCaps("Ambient".into(), CapsHashSet::new()));
    let cloexec = pos(&Call::SetCloexecFrom(3));
    let order = [
        pivot,
        lo,
        host,
        seccomp,
        bounding,
        keep,
        pos(&Call::Setgroups(vec![1000])),
        gid,
        uid,
        unkeep,
        eff,
        prm,
        inh,
        amb,
        cloexec,
    ];
    assert!(order.windows(2).all(|w| w[0] < w[1]), "order: {order:?}");
    // Docker's default: no_new_privs only with --security-opt no-new-privileges.
    assert!(!calls.contains(&Call::SetNoNewPrivs));
    match calls.last().unwrap() {
        Call::Execve { path, argv, envp } => {
            assert_eq!(path, Path::new("/bin/sh"));
            assert_eq!(argv, &["/bin/sh", "-c", "true"]);
            assert!(envp.contains(&"HOSTNAME=box".to_owned()));
        }
        other => panic!("last call {other:?}"),
    }
}

#[test]
fn no_new_privs_when_the_spec_asks() {
    let t = tempfile::tempdir().unwrap();
    let mut spec = spec(t.path(), None, &["/bin/sh"]);
    let mut p = spec.process().clone().unwrap();
    p.set_no_new_privileges(Some(true));
    spec.set_process(Some(p));
    let sys = FakeSyscall::default();
    let _ = init(&sys, &spec, t.path(), None);
    let calls = sys.calls();
    let nnp = calls
        .iter()
        .position(|c| *c == Call::SetNoNewPrivs)
        .unwrap();
    let uid = calls.iter().position(|c| *c == Call::Setresuid(0)).unwrap();
    assert!(nnp < uid);
}

#[test]
fn failing_step_stops_before_exec() {
    let t = tempfile::tempdir().unwrap();
    let spec = spec(t.path(), None, &["/bin/sh"]);
    let sys = FakeSyscall::default();
    sys.fail_on("sethostname", Errno::EPERM);
    let err = init(&sys, &spec, t.path(), None).unwrap_err();
    assert_eq!(err.exit_code(), EXIT_RUNTIME);
    assert!(!sys.calls().iter().any(|c| matches!(c, Call::Execve { .. })));
}

#[test]
fn rlimits_are_clamped_to_the_hard_limit() {
    let spec = SpecBuilder::default()
        .process(
            ProcessBuilder::default()
                .rlimits(vec![PosixRlimitBuilder::default()
                    .typ(PosixRlimitType::RlimitNofile)
                    .soft(1_048_576u64)
                    .hard(1_048_576u64)
                    .build()
                    .unwrap()])
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let sys = FakeSyscall::default();
    sys.set_rlimit(Resource::RLIMIT_NOFILE, 1024, 20_000);
    apply_rlimits(&sys, &spec).unwrap();
    assert_eq!(
        sys.calls(),
        [
            Call::Setrlimit {
                resource: Resource::RLIMIT_NOFILE,
                soft: 1_048_576,
                hard: 1_048_576
            },
            Call::Setrlimit {
                resource: Resource::RLIMIT_NOFILE,
                soft: 20_000,
                hard: 20_000
            },
        ]
    );
}

#[test]
fn exit_codes_follow_docker() {
    assert_eq!(InitError::NotFound { name: "x".into() }.exit_code(), 127);
    assert_eq!(
        InitError::Exec {
            path: "/x".into(),
            errno: Errno::ENOENT
        }
        .exit_code(),
        127
    );
    assert_eq!(
        InitError::Exec {
            path: "/x".into(),
            errno: Errno::EACCES
        }
        .exit_code(),
        126
    );
    assert_eq!(
        InitError::Exec {
            path: "/x".into(),
            errno: Errno::ENOEXEC
        }
        .exit_code(),
        126
    );
    assert_eq!(InitError::NoProcess.exit_code(), 125);
    assert_eq!(
        exit_status(WaitStatus::Signaled(
            Pid::from_raw(1),
            Signal::SIGKILL,
            false
        )),
        137
    );
    assert_eq!(exit_status(WaitStatus::Exited(Pid::from_raw(1), 3)), 3);
}

#[test]
fn lookup_searches_the_containers_path() {
    let t = tempfile::tempdir().unwrap();
    let exe = t.path().join("tool");
    std::fs::write(&exe, "#!/bin/sh\n").unwrap();
    std::fs::write(t.path().join("data"), "").unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let env = vec![format!("PATH=/nonexistent:{}", t.path().display())];
    assert_eq!(lookup("tool", &env).unwrap(), exe);
    // Not executable: skipped, so not found (127), like Go's LookPath.
    assert!(matches!(
        lookup("data", &env),
        Err(InitError::NotFound { .. })
    ));
    assert_eq!(lookup("./rel", &env).unwrap(), Path::new("./rel"));
}

#[test]
fn resources_need_a_cgroups_path() {
    let t = tempfile::tempdir().unwrap();
    let mut spec = spec(t.path(), None, &["sh"]);
    let mut linux = spec.linux().clone().unwrap();
    linux.set_resources(Some(crate::cgroups::test_util::resources()));
    spec.set_linux(Some(linux));
    assert!(matches!(
        setup_cgroups(&spec),
        Err(RunError::Unsupported { .. })
    ));
    // Neither: no cgroups, nothing touched.
    let spec = super::tests::spec(t.path(), None, &["sh"]);
    assert!(setup_cgroups(&spec).unwrap().is_none());
}

#[test]
fn joining_namespaces_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let mut spec = spec(t.path(), None, &["sh"]);
    let mut linux = spec.linux().clone().unwrap();
    let mut ns = linux.namespaces().clone().unwrap();
    ns[1].set_path(Some("/proc/1/ns/pid".into()));
    linux.set_namespaces(Some(ns));
    spec.set_linux(Some(linux));
    assert!(matches!(
        namespace_flags(&spec),
        Err(RunError::Unsupported { .. })
    ));
}

#[test]
fn a_network_namespace_path_is_joined_not_created() {
    let t = tempfile::tempdir().unwrap();
    let mut spec = spec(t.path(), None, &["sh"]);
    let mut linux = spec.linux().clone().unwrap();
    let mut ns = linux.namespaces().clone().unwrap();
    let net = ns
        .iter_mut()
        .find(|n| n.typ() == LinuxNamespaceType::Network)
        .unwrap();
    net.set_path(Some("/proc/42/ns/net".into()));
    linux.set_namespaces(Some(ns));
    spec.set_linux(Some(linux));
    let flags = namespace_flags(&spec).unwrap();
    assert!(!flags.contains(CloneFlags::CLONE_NEWNET));
    assert!(flags.contains(CloneFlags::CLONE_NEWPID));
    assert_eq!(
        namespace_joins(&spec),
        vec![(CloneFlags::CLONE_NEWNET, PathBuf::from("/proc/42/ns/net"))]
    );
}

#[test]
fn sysctls_are_written_after_pivot_before_read_only_paths() {
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(t.path().join("rootfs")).unwrap();
    let mut spec = spec(&t.path().join("rootfs"), None, &["/bin/true"]);
    let mut linux = spec.linux().clone().unwrap();
    linux.set_sysctl(Some(
        [("net.ipv4.ip_forward".to_owned(), "1".to_owned())]
            .into_iter()
            .collect(),
    ));
    spec.set_linux(Some(linux.clone()));
    let sys = FakeSyscall::default();
    let _ = init(&sys, &spec, t.path(), None);
    let calls = sys.calls();
    let at = |pred: &dyn Fn(&Call) -> bool| calls.iter().position(pred).unwrap();
    let pivot = at(&|c| matches!(c, Call::PivotRoot { .. }));
    let sysctl = at(&|c| c == &Call::Sysctl("net.ipv4.ip_forward".into(), "1".into()));
    let read_only = at(&|c| {
        matches!(c, Call::Mount { target, flags, .. }
            if target == Path::new("/proc/sys") && flags.contains(crate::syscall::MsFlags::MS_REMOUNT))
    });
    assert!(pivot < sysctl && sysctl < read_only, "{calls:?}");
    // A key that would leave /proc/sys is refused before any write.
    for bad in ["net/../../x", "net..x", ".net"] {
        linux.set_sysctl(Some(
            [(bad.to_owned(), "1".to_owned())].into_iter().collect(),
        ));
        spec.set_linux(Some(linux.clone()));
        let sys = FakeSyscall::default();
        assert!(matches!(
            init(&sys, &spec, t.path(), None),
            Err(InitError::Sysctl(_))
        ));
        assert!(!sys.calls().iter().any(|c| matches!(c, Call::Sysctl(..))));
    }
}

#[test]
fn namespaced_sysctls_are_refused_without_their_namespace() {
    use oci_spec::runtime::LinuxNamespaceType;
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(t.path().join("rootfs")).unwrap();
    for (key, ns, name) in [
        ("kernel.shmmax", LinuxNamespaceType::Ipc, "ipc"),
        ("fs.mqueue.msg_max", LinuxNamespaceType::Ipc, "ipc"),
        (
            "net.ipv4.ip_forward",
            LinuxNamespaceType::Network,
            "network",
        ),
        ("kernel.domainname", LinuxNamespaceType::Uts, "uts"),
    ] {
        let mut spec = spec(&t.path().join("rootfs"), None, &["/bin/true"]);
        let mut linux = spec.linux().clone().unwrap();
        linux.set_sysctl(Some(
            [(key.to_owned(), "1".to_owned())].into_iter().collect(),
        ));
        spec.set_linux(Some(linux.clone()));
        // With its namespace: written.
        let sys = FakeSyscall::default();
        let _ = init(&sys, &spec, t.path(), None);
        assert!(
            sys.calls().contains(&Call::Sysctl(key.into(), "1".into())),
            "{key}"
        );
        // The host's namespace: the host's value would change; refused, nothing written.
        let kept: Vec<_> = linux
            .namespaces()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|n| n.typ() != ns)
            .collect();
        // Joined by path (another container's): its own, written.
        let mut joined = kept.clone();
        joined.push(
            oci_spec::runtime::LinuxNamespaceBuilder::default()
                .typ(ns)
                .path("/proc/42/ns/x")
                .build()
                .unwrap(),
        );
        linux.set_namespaces(Some(joined));
        spec.set_linux(Some(linux.clone()));
        let sys = FakeSyscall::default();
        let _ = init(&sys, &spec, t.path(), None);
        assert!(
            sys.calls().contains(&Call::Sysctl(key.into(), "1".into())),
            "{key} in a joined namespace"
        );
        linux.set_namespaces(Some(kept));
        spec.set_linux(Some(linux));
        let sys = FakeSyscall::default();
        match init(&sys, &spec, t.path(), None) {
            Err(InitError::SysctlHostNamespace { key: k, namespace }) => {
                assert_eq!((k.as_str(), namespace), (key, name));
            }
            other => panic!("{key}: {other:?}"),
        }
        assert!(!sys.calls().iter().any(|c| matches!(c, Call::Sysctl(..))));
    }
}

#[test]
#[allow(unsafe_code)]
fn fork_into_falls_back_to_a_plain_fork_when_the_kernel_refuses_the_directory() {
    use nix::unistd::ForkResult;
    use std::os::fd::AsFd;
    // Not a cgroup v2 directory: `clone3` fails, so a plain fork, reported as not placed.
    let not_a_cgroup = std::fs::File::open("/dev/null").unwrap();
    for target in [Some(not_a_cgroup.as_fd()), None] {
        match super::wait::fork_into(target).unwrap() {
            // SAFETY: the child of a multi-threaded test only ends, without atexit handlers.
            (ForkResult::Child, _) => unsafe { libc::_exit(7) },
            (ForkResult::Parent { child }, placed) => {
                assert!(!placed);
                assert_eq!(wait_for(child).unwrap(), 7);
            }
        }
    }
}
