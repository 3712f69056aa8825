//! Docker's default seccomp profile and `--security-opt`, end to end as root: the filter is
//! installed for `run` and `exec`, blocks what the profile leaves out even where capabilities
//! and the kernel would allow it, and `seccomp=unconfined` / `no-new-privileges` change that.

use berth_tests::ContainerEnv;

fn out(env: &ContainerEnv, args: &[&str]) -> (i32, String, String) {
    let o = env.berth(args);
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// `unshare -U` needs no capability (the kernel lets anyone make a user namespace), so only
/// seccomp can refuse it.
const PROBE: &str = "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; \
                     unshare -U true 2>/dev/null && echo userns=yes || echo userns=no";

#[test]
fn the_default_profile_filters_run_and_exec() {
    let env = ContainerEnv::new(&[]);
    let (code, stdout, stderr) = out(&env, &["run", "--rm", "bb:1", "sh", "-c", PROBE]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("Seccomp:\t2"), "{stdout}");
    assert!(stdout.contains("NoNewPrivs:\t0"), "{stdout}");
    assert!(stdout.contains("userns=no"), "{stdout}");
    // The same process without the filter can: the refusal above was seccomp's.
    let (code, stdout, stderr) = out(
        &env,
        &[
            "run",
            "--rm",
            "--security-opt",
            "seccomp=unconfined",
            "bb:1",
            "sh",
            "-c",
            PROBE,
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("Seccomp:\t0"), "{stdout}");
    assert!(stdout.contains("userns=yes"), "{stdout}");
    // exec'd processes get the container's filter too.
    env.ok(&["run", "-d", "--name", "box", "bb:1", "sleep", "300"]);
    let (code, stdout, stderr) = out(&env, &["exec", "box", "sh", "-c", PROBE]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("Seccomp:\t2"), "{stdout}");
    assert!(stdout.contains("userns=no"), "{stdout}");
    // Ordinary work is unaffected: processes, pipes, files, signals.
    let (code, stdout, _) = out(
        &env,
        &[
            "run",
            "--rm",
            "bb:1",
            "sh",
            "-c",
            "echo a > /f && cat /f | wc -l && sleep 0 & wait; kill -0 $$ && echo ok",
        ],
    );
    assert_eq!((code, stdout.as_str()), (0, "1\nok\n"));
}

#[test]
fn security_opts_follow_docker() {
    let env = ContainerEnv::new(&[]);
    let (code, stdout, _) = out(
        &env,
        &[
            "run",
            "--rm",
            "--security-opt",
            "no-new-privileges",
            "bb:1",
            "grep",
            "NoNewPrivs",
            "/proc/self/status",
        ],
    );
    assert_eq!((code, stdout.as_str()), (0, "NoNewPrivs:\t1\n"));
    let (code, _, stderr) = out(
        &env,
        &["run", "--rm", "--security-opt", "bogus", "bb:1", "true"],
    );
    assert_eq!(code, 125);
    assert!(
        stderr.contains("invalid --security-opt: \"bogus\""),
        "{stderr}"
    );
    let (code, _, stderr) = out(
        &env,
        &[
            "run",
            "--rm",
            "--security-opt",
            "seccomp=/nonexistent.json",
            "bb:1",
            "true",
        ],
    );
    assert_eq!(code, 125);
    assert!(stderr.contains("seccomp profile"), "{stderr}");
}

/// CVE-2019-5736: the processes that own and enter containers run from a read-only bind mount
/// of berth (or a sealed memfd copy), so `/proc/<pid>/exe` seen from a container cannot be
/// opened for writing.
#[test]
fn container_owners_run_from_a_sealed_copy_of_berth() {
    let env = ContainerEnv::new(&[]);
    let exe_of = |pid: u32| std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    let protected = |p: &std::path::Path| {
        let s = p.to_string_lossy().into_owned();
        s.starts_with("/run/berth/exe/berth-") || s.starts_with("/memfd:berth-cloned")
    };
    let unwritable = |pid: u32| {
        std::fs::OpenOptions::new()
            .write(true)
            .open(format!("/proc/{pid}/exe"))
            .is_err()
    };
    // A foreground run: berth itself owns the container.
    let mut child = env
        .cmd(&["run", "--rm", "bb:1", "sh", "-c", "echo up; sleep 5"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut up = [0u8; 3];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut up).unwrap();
    let exe = exe_of(child.id());
    assert!(protected(&exe), "{exe:?}");
    assert!(unwritable(child.id()));
    // Writing through that path is refused as well (read-only mount, or busy).
    if exe.starts_with("/run/berth/exe") {
        let err = std::fs::OpenOptions::new()
            .write(true)
            .open(&exe)
            .unwrap_err();
        assert!(
            matches!(err.raw_os_error(), Some(30 | 26)),
            "EROFS or ETXTBSY expected: {err}"
        );
    }
    child.kill().unwrap();
    let _ = child.wait();
    // A detached container's monitor.
    env.ok(&["run", "-d", "--name", "box", "bb:1", "sleep", "300"]);
    let monitor = env.state("box")["Monitor"]["pid"].as_u64().unwrap();
    let monitor = u32::try_from(monitor).unwrap();
    let exe = exe_of(monitor);
    assert!(protected(&exe), "{exe:?}");
    assert!(unwritable(monitor));
    // The monitor was started through the installed binary's path and still serves exec.
    let (code, out, _) = out(&env, &["exec", "box", "echo", "exec-ok"]);
    assert_eq!((code, out.as_str()), (0, "exec-ok\n"));
}
