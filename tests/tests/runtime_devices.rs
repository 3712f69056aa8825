//! Docker's default device policy enforced by the kernel, `--device` and `--privileged`, end to
//! end as root. `CAP_MKNOD` is in Docker's default set, so a container may create any device
//! node; the device cgroup (v1 `devices` and/or the v2 eBPF program) decides which it may open.
//! Every probe is `/bin/berth-check` (`tests/checker/berth-check.c`): `mknod=ok`,
//! `open=EPERM`, ….

use std::path::Path;

use berth_tests::{container_cgroup_dirs, ContainerEnv};

/// `berth run --rm FLAGS bb:1 sh -c 'SCRIPT; true'`, asserting exit 0 (the container ran);
/// stdout.
fn run(env: &ContainerEnv, flags: &[&str], script: &str) -> String {
    let (code, stdout, stderr) = env.sh(flags, &format!("{script}; true"));
    assert_eq!(code, 0, "{flags:?} {script}: {stdout}{stderr}");
    stdout
}

/// The output's lines (one `key=value` per checker call).
fn lines(stdout: &str) -> Vec<&str> {
    stdout.lines().collect()
}

const C: &str = "/bin/berth-check";

#[test]
fn default_policy_allows_mknod_but_not_opening_other_devices() {
    let env = ContainerEnv::new(&[]);
    let script = format!(
        "{C} mknod /dev/t-kmsg c 1 11; {C} open /dev/t-kmsg w; {C} open /dev/t-kmsg r; \
         {C} mknod /dev/t-loop b 7 0; {C} open /dev/t-loop r; \
         {C} mknod /dev/t-kvm c 10 232; {C} open /dev/t-kvm rw; \
         {C} mknod /dev/t-console c 5 1; {C} open /dev/t-console rw; \
         for d in null zero full random urandom; do {C} open /dev/$d rw; done; \
         {C} open /dev/tty rw; true"
    );
    let out = run(&env, &[], &script);
    let l = lines(&out);
    assert_eq!(
        l[..9],
        [
            "mknod=ok",
            "open=EPERM",
            "open=EPERM",
            "mknod=ok",
            "open=EPERM",
            "mknod=ok",
            "open=EPERM",
            "mknod=ok",
            "open=EPERM",
        ],
        "{out}"
    );
    // null, zero, full, random, urandom: read and write.
    assert_eq!(l[9..14], ["open=ok"; 5], "{out}");
    // No terminal: /dev/tty is allowed by the cgroup, the kernel says there is none.
    assert_eq!(l[14], "open=ENXIO", "{out}");
}

#[test]
fn exec_processes_get_the_containers_device_policy() {
    let env = ContainerEnv::new(&[]);
    let id = env.detach(&[], "sleep 300");
    let out = env.ok(&[
        "exec",
        &id,
        "sh",
        "-c",
        &format!("{C} mknod /dev/e-kmsg c 1 11; {C} open /dev/e-kmsg w; {C} open /dev/null w"),
    ]);
    assert_eq!(lines(&out), ["mknod=ok", "open=EPERM", "open=ok"], "{out}");
    // On a host with the v1 devices controller, the list is the kernel's.
    for dir in container_cgroup_dirs(&id) {
        if dir.starts_with("/sys/fs/cgroup/devices") {
            let list = std::fs::read_to_string(dir.join("devices.list")).unwrap();
            assert!(!list.contains("a *:* rwm"), "{list}");
            for rule in [
                "c *:* m",
                "b *:* m",
                "c 1:3 rwm",
                "c 136:* rwm",
                "c 10:200 rwm",
            ] {
                assert!(list.lines().any(|l| l == rule), "{rule} not in {list}");
            }
        }
    }
    // On a host with a cgroup2 mount, the container has a directory there (for the program).
    let unified = Path::new("/sys/fs/cgroup/unified");
    if unified.join("cgroup.controllers").exists() {
        assert!(unified.join("berth").join(&id).is_dir());
    }
    env.ok(&["rm", "-f", &id]);
    assert!(!unified.join("berth").join(&id).exists());
}

#[test]
fn device_flag_adds_the_node_with_the_permissions_asked_for() {
    let env = ContainerEnv::new(&[]);
    // rwm by default, at the same path. (Only writing probes /dev/kmsg: reading it also needs
    // CAP_SYSLOG, which Docker's default set lacks.)
    let out = run(
        &env,
        &["--device", "/dev/kmsg"],
        &format!("ls -l /dev/kmsg | cut -c1; {C} open /dev/kmsg w"),
    );
    assert_eq!(lines(&out), ["c", "open=ok"], "{out}");
    // `:r` alone is the permission, not a path: writing is refused by the cgroup.
    let out = run(
        &env,
        &["--device", "/dev/kmsg:r"],
        &format!("{C} open /dev/kmsg w"),
    );
    assert_eq!(lines(&out), ["open=EPERM"], "{out}");
    // Read only, at another path (/dev/fuse needs no capability to open).
    if Path::new("/dev/fuse").exists() {
        let out = run(
            &env,
            &["--device", "/dev/fuse:/dev/myfuse:r"],
            &format!(
                "ls -l /dev/myfuse | cut -c1; {C} open /dev/myfuse r; {C} open /dev/myfuse w; \
                 {C} open /dev/myfuse rw; test -e /dev/fuse && echo fuse=yes || echo fuse=no"
            ),
        );
        assert_eq!(
            lines(&out),
            ["c", "open=ok", "open=EPERM", "open=EPERM", "fuse=no"],
            "{out}"
        );
    }
    let out = run(
        &env,
        &["--device", "/dev/kmsg:/dev/mykmsg:w"],
        &format!("{C} open /dev/mykmsg w; {C} open /dev/mykmsg rw"),
    );
    assert_eq!(lines(&out), ["open=ok", "open=EPERM"], "{out}");
}

#[test]
fn device_flag_errors_read_like_docker() {
    let env = ContainerEnv::new(&[]);
    let (code, _, stderr) = env.sh(&["--device", "/dev/nope"], "true");
    assert_eq!(code, 125, "{stderr}");
    assert!(
        stderr.contains(
            "error gathering device information while adding custom device \"/dev/nope\": \
             no such file or directory"
        ),
        "{stderr}"
    );
    let (code, _, stderr) = env.sh(&["--device", "/etc/hostname"], "true");
    assert_eq!(code, 125, "{stderr}");
    assert!(stderr.contains("not a device node"), "{stderr}");
    let (code, _, stderr) = env.sh(&["--device", "/dev/kmsg:/dev/k:rx"], "true");
    assert_eq!(code, 125, "{stderr}");
    assert!(stderr.contains("bad mode specified: rx"), "{stderr}");
    // Nothing was left behind.
    assert!(env.container_ids().is_empty(), "{:?}", env.container_ids());
}

#[test]
fn privileged_may_open_any_device() {
    let env = ContainerEnv::new(&[]);
    let out = run(
        &env,
        &["--privileged"],
        &format!(
            "{C} mknod /dev/p-kmsg c 1 11; {C} open /dev/p-kmsg w; {C} open /dev/kmsg r; \
             test -L /dev/ptmx && echo ptmx=link"
        ),
    );
    // The host's devices are there too (/dev/kmsg), and /dev/ptmx stays the devpts link.
    assert_eq!(
        lines(&out),
        ["mknod=ok", "open=ok", "open=ok", "ptmx=link"],
        "{out}"
    );
}
