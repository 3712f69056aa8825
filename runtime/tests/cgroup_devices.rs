//! The cgroup v2 eBPF device program on the real kernel, as root: a child cgroup of the host's
//! `cgroup2` mount (a hybrid host's `unified`, whose only controller may be `hugetlb`: device
//! programs need none), a program attached by `cgroups::devices::attach`, a shell moved in, and
//! what it may open. No v1 `devices` controller is involved, so this proves the program alone.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use berth_runtime::cgroups::{self, devices, Layout};
use berth_runtime::oci_spec::runtime::{LinuxDeviceCgroupBuilder, LinuxDeviceType};

/// The host's `cgroup2` mount.
fn cgroup2_root() -> PathBuf {
    assert!(
        nix::unistd::geteuid().is_root(),
        "cgroup device tests need root"
    );
    match cgroups::detect_host().expect("cgroups") {
        Layout::Unified { root } => root,
        Layout::Legacy { unified, .. } => unified.expect("no cgroup2 mount on this host"),
    }
}

/// A child cgroup, removed on drop (after its tasks exited).
struct TestCgroup(PathBuf);

impl TestCgroup {
    fn new(name: &str) -> Self {
        let dir = cgroup2_root().join(format!("berth-test-{name}-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        for _ in 0..100 {
            if std::fs::remove_dir(&self.0).is_ok() || !self.0.exists() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// Runs `script` under `sh` inside the cgroup `dir` (the shell waits on stdin until it has been
/// moved in); (stdout, stderr).
fn run_in(dir: &Path, script: &str) -> (String, String) {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("read _ ; {script}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::fs::write(dir.join("cgroup.procs"), child.id().to_string()).unwrap();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let out = child.wait_with_output().unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn rule(
    allow: bool,
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> devices::DeviceRule {
    let mut r = LinuxDeviceCgroupBuilder::default()
        .allow(allow)
        .typ(typ)
        .access(access)
        .build()
        .unwrap();
    r.set_major(major);
    r.set_minor(minor);
    devices::from_spec(&r).unwrap()
}

#[test]
fn a_deny_rule_refuses_reading_dev_null() {
    let cg = TestCgroup::new("deny-null-read");
    let rules = [
        rule(true, LinuxDeviceType::A, None, None, "rwm"),
        rule(false, LinuxDeviceType::C, Some(1), Some(3), "r"),
    ];
    devices::attach(&cg.0, &rules).unwrap();
    let (stdout, stderr) = run_in(
        &cg.0,
        "cat /dev/null; echo read=$?; echo x > /dev/null && echo write=ok; \
         head -c 1 /dev/zero | wc -c",
    );
    assert!(stdout.contains("read=1"), "{stdout}");
    assert!(stderr.contains("Operation not permitted"), "{stderr}");
    assert!(stdout.contains("write=ok"), "{stdout}");
    assert!(stdout.trim_end().ends_with('1'), "{stdout}");
    // The same shell outside the cgroup reads it.
    let out = Command::new("cat").arg("/dev/null").status().unwrap();
    assert!(out.success());
}

#[test]
fn dockers_default_list_allows_mknod_but_not_open() {
    let cg = TestCgroup::new("docker-default");
    let rules: Vec<_> = berth_runtime::spec::default_device_rules()
        .unwrap()
        .iter()
        .map(|r| devices::from_spec(r).unwrap())
        .collect();
    devices::attach(&cg.0, &rules).unwrap();
    let node = std::env::temp_dir().join(format!("berth-test-kmsg-{}", std::process::id()));
    let _ = std::fs::remove_file(&node);
    let script = format!(
        "mknod {n} c 1 11 && echo mknod=ok; \
         (: > {n}) 2>/dev/null && echo kmsg=open || echo kmsg=refused; \
         (: < /dev/kvm) 2>/dev/null && echo kvm=open || echo kvm=refused; \
         head -c 4 /dev/urandom | wc -c; echo x > /dev/null && echo null=ok",
        n = node.display()
    );
    let (stdout, stderr) = run_in(&cg.0, &script);
    let _ = std::fs::remove_file(&node);
    assert!(stdout.contains("mknod=ok"), "{stdout}{stderr}");
    assert!(stdout.contains("kmsg=refused"), "{stdout}{stderr}");
    if Path::new("/dev/kvm").exists() {
        assert!(stdout.contains("kvm=refused"), "{stdout}{stderr}");
    }
    assert!(
        stdout.contains("\n4\n") || stdout.starts_with("4\n"),
        "{stdout}"
    );
    assert!(stdout.contains("null=ok"), "{stdout}{stderr}");
}

#[test]
fn the_v2_manager_attaches_the_spec_rules_and_removes_the_cgroup() {
    use berth_runtime::cgroups::CgroupManager as _;
    use berth_runtime::oci_spec::runtime::LinuxResourcesBuilder;
    // The cgroup2 mount as a pure v2 host's whole hierarchy.
    let root = cgroup2_root();
    let rel = format!("berth-test-v2-{}", std::process::id());
    let manager = cgroups::Manager::new(&Layout::Unified { root: root.clone() }, &rel).unwrap();
    let resources = LinuxResourcesBuilder::default()
        .devices(berth_runtime::spec::default_device_rules().unwrap())
        .build()
        .unwrap();
    manager.create(Some(&resources)).unwrap();
    let dir = root.join(&rel);
    let script = "(: > /dev/full) 2>/dev/null && echo full=ok; \
                  (: < /dev/kmsg) 2>/dev/null && echo kmsg=open || echo kmsg=refused";
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("read _ ; {script}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    manager
        .add_task(i32::try_from(child.id()).unwrap())
        .unwrap();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    manager.remove().unwrap();
    assert!(!dir.exists());
    assert_eq!(stdout, "full=ok\nkmsg=refused\n");
}
