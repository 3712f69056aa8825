//! `--cap-add`, `--cap-drop`, `--privileged` and `--security-opt apparmor=…/label=…` end to
//! end as root, and Docker's argument order (everything after the image is the command).

use berth_tests::ContainerEnv;

/// `CapEff` as a number.
fn cap_eff(report: &str) -> u64 {
    let hex = report
        .lines()
        .find_map(|l| l.strip_prefix("capeff="))
        .unwrap_or_else(|| panic!("no capeff in {report}"));
    u64::from_str_radix(hex, 16).unwrap()
}

const CAP_NET_RAW: u64 = 1 << 13;
const CAP_SYS_ADMIN: u64 = 1 << 21;
const CAP_SYS_PTRACE: u64 = 1 << 19;

#[test]
fn capabilities_follow_the_flags_and_open_their_seccomp_groups() {
    let env = ContainerEnv::new(&[]);
    let report = |flags: &[&str]| {
        let (code, out, err) = env.sh(flags, "berth-check report; berth-check pidfd_getfd");
        assert!(code == 0 || code == 1, "{flags:?}: {err}");
        out
    };
    let default = report(&["--network", "none"]);
    assert_eq!(cap_eff(&default), 0xa804_25fb, "Docker's default set");
    assert!(default.contains("pidfd_getfd=EPERM"), "{default}");
    let out = report(&[
        "--network",
        "none",
        "--cap-add",
        "sys_ptrace",
        "--cap-drop",
        "CAP_NET_RAW",
    ]);
    assert_eq!(cap_eff(&out), 0xa804_25fb & !CAP_NET_RAW | CAP_SYS_PTRACE);
    // moby's profile opens pidfd_getfd (and ptrace, kcmp, …) with CAP_SYS_PTRACE.
    assert!(out.contains("pidfd_getfd=ok"), "{out}");
    assert_eq!(
        cap_eff(&report(&["--network", "none", "--cap-drop", "ALL"])),
        0
    );
    let all = cap_eff(&report(&["--network", "none", "--cap-add", "ALL"]));
    assert!(all & CAP_SYS_ADMIN != 0);
    // CAP_SYS_ADMIN also opens the namespace calls in the profile.
    let (code, _, err) = env.sh(
        &["--network", "none", "--cap-add", "SYS_ADMIN"],
        "unshare -U true",
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, _) = env.sh(&["--network", "none"], "unshare -U true");
    assert_ne!(code, 0);
    let (code, _, err) = env.sh(&["--cap-add", "BOGUS"], "true");
    assert_eq!(code, 125);
    assert!(
        err.contains("invalid CapAdd: unknown capability: \"CAP_BOGUS\""),
        "{err}"
    );
}

#[test]
fn privileged_lifts_the_confinement() {
    let env = ContainerEnv::new(&[]);
    let (code, out, err) = env.sh(&["--network", "none", "--privileged"], "berth-check report");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("seccomp=0"), "{out}");
    assert!(cap_eff(&out) & CAP_SYS_ADMIN != 0, "{out}");
    assert!(out.contains("mount=/sys sysfs rw"), "{out}");
    assert!(
        !out.contains("mount=/proc/keys"),
        "paths still masked: {out}"
    );
    let (_, out, _) = env.sh(&["--network", "none"], "berth-check report");
    assert!(out.contains("mount=/sys sysfs ro"), "{out}");
    assert!(out.contains("mount=/proc/keys"), "{out}");
}

#[test]
fn security_opts_berth_cannot_apply_are_refused_clearly() {
    let env = ContainerEnv::new(&[]);
    for ok in ["apparmor=unconfined", "label=disable"] {
        let (code, _, err) = env.sh(&["--network", "none", "--security-opt", ok], "true");
        assert_eq!(code, 0, "{ok}: {err}");
    }
    for bad in ["apparmor=docker-default", "label=type:svirt_t", "bogus=1"] {
        let (code, _, err) = env.sh(&["--security-opt", bad], "true");
        assert_eq!(code, 125, "{bad}");
        assert!(err.contains("Error response from daemon:"), "{bad}: {err}");
    }
    assert!(env.container_ids().is_empty(), "{:?}", env.container_ids());
}

#[test]
fn everything_after_the_image_is_the_command() {
    let env = ContainerEnv::new(&[]);
    let elsewhere = env.tmp.path().join("elsewhere");
    let out = env.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "bb:1",
        "echo",
        "--data-root",
        elsewhere.to_str().unwrap(),
        "-v",
    ]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("--data-root {} -v\n", elsewhere.display())
    );
    // A flag right after the image is the command too (not found: 127), never berth's.
    let out = env.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "bb:1",
        "--data-root",
        elsewhere.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(127),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!elsewhere.exists());
}
