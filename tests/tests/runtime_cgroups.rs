//! `berth run` with cgroup limits, end to end as root: `-m` OOM-kills a shell that holds more,
//! `--pids-limit` stops forks, the container's cgroups hold the limits on the host while it
//! runs and are gone after it, and bad values exit 125. The host here is hybrid (v1
//! controllers); the host-side checks also read a pure v2 layout.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use berth_tests::{container_cgroup_dirs, ContainerEnv};

/// The shared container test environment (cleans up after itself), plus this file's helpers.
struct Env(ContainerEnv);

impl std::ops::Deref for Env {
    type Target = ContainerEnv;
    fn deref(&self) -> &ContainerEnv {
        &self.0
    }
}

impl Env {
    /// A data root with the busybox image `bb:1` imported, on a host with cgroups.
    fn new() -> Self {
        assert!(
            Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
                || Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists(),
            "no cgroup v2 or v1 memory hierarchy under /sys/fs/cgroup: mount the cgroups"
        );
        Self(ContainerEnv::new(&[]))
    }

    fn containers(&self) -> Vec<String> {
        self.container_ids()
    }
}

/// The host file of container `id`'s cgroup: the v1 name under its controller, or the v2 name.
fn cgroup_file(id: &str, controller: &str, v1: &str, v2: &str) -> PathBuf {
    let root = Path::new("/sys/fs/cgroup");
    if root.join("cgroup.controllers").exists() {
        root.join("berth").join(id).join(v2)
    } else {
        root.join(controller).join("berth").join(id).join(v1)
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_owned()
}

/// Holds ~100 MB in a shell variable (more than 32m of memory plus as much swap).
const HOG: &str = "x=$(yes 2>/dev/null | head -c 100000000); echo done ${#x}";

#[test]
fn memory_limit_oom_kills_and_no_limit_does_not() {
    let env = Env::new();
    let (code, out, err) = env.sh(&[], HOG);
    assert_eq!((code, out.as_str()), (0, "done 99999999\n"), "{err}");
    let (code, out, err) = env.sh(&["--memory", "32m"], HOG);
    assert_eq!((code, out.as_str()), (137, ""), "{err}");
    // Lots of memory for a limit of 200 MB: fine.
    let (code, out, err) = env.sh(&["-m", "200M"], HOG);
    assert_eq!((code, out.as_str()), (0, "done 99999999\n"), "{err}");
    assert!(env.containers().is_empty());
}

/// Starts up to 30 background sleeps, printing the count after each fork, then counts the
/// container's processes with shell builtins only.
const FORKS: &str = "i=0; while [ $i -lt 30 ]; do sleep 5 & i=$((i+1)); echo $i; done; \
                     set -- /proc/[0-9]*; echo procs=$#";

#[test]
fn pids_limit_stops_forks() {
    let env = Env::new();
    let (code, out, err) = env.sh(&[], FORKS);
    assert_eq!(code, 0, "{err}");
    assert!(out.ends_with("\n30\nprocs=31\n"), "{out}");
    // The shell and 9 sleeps make 10: the 10th fork fails and ash gives up (status 2).
    let (code, out, err) = env.sh(&["--pids-limit", "10"], FORKS);
    assert_eq!(code, 2, "stdout {out:?}, stderr {err:?}");
    assert!(out.ends_with("\n8\n9\n"), "{out}");
    assert!(err.contains("can't fork"), "{err}");
    // -1 is unlimited.
    let (code, out, err) = env.sh(&["--pids-limit", "-1"], FORKS);
    assert_eq!(code, 0, "{err}");
    assert!(out.ends_with("procs=31\n"), "{out}");
}

#[test]
fn cgroups_hold_the_limits_while_running_and_are_removed_after() {
    let env = Env::new();
    let child = env
        .cmd(&[
            "run",
            "--rm",
            "-m",
            "32m",
            "--cpus",
            "0.5",
            "--pids-limit",
            "10",
            "bb:1",
            "sleep",
            "3",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let (id, procs) = loop {
        assert!(Instant::now() < deadline, "the container never started");
        if let Some(id) = env.containers().pop() {
            let procs = cgroup_file(&id, "pids", "cgroup.procs", "cgroup.procs");
            if let Ok(p) = std::fs::read_to_string(&procs) {
                if !p.trim().is_empty() {
                    break (id, p);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // The container's init (now `sleep`) is in the cgroup; the intermediate process is not.
    let pids: Vec<&str> = procs.split_whitespace().collect();
    assert_eq!(pids.len(), 1, "{procs}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let cmdline = format!("/proc/{}/cmdline", pids[0]);
    while std::fs::read_to_string(&cmdline).unwrap_or_default() != "sleep\u{0}3\u{0}" {
        assert!(Instant::now() < deadline, "init never exec'd sleep");
        std::thread::sleep(Duration::from_millis(20));
    }
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let mem = cgroup_file(&id, "memory", "memory.limit_in_bytes", "memory.max");
    assert_eq!(read(&mem), "33554432");
    let memsw = cgroup_file(
        &id,
        "memory",
        "memory.memsw.limit_in_bytes",
        "memory.swap.max",
    );
    if memsw.exists() {
        assert_eq!(read(&memsw), if v2 { "33554432" } else { "67108864" });
    }
    if v2 {
        assert_eq!(
            read(&cgroup_file(&id, "cpu", "", "cpu.max")),
            "50000 100000"
        );
    } else {
        assert_eq!(
            read(&cgroup_file(&id, "cpu", "cpu.cfs_quota_us", "")),
            "50000"
        );
        assert_eq!(
            read(&cgroup_file(&id, "cpu", "cpu.cfs_period_us", "")),
            "100000"
        );
    }
    assert_eq!(
        read(&cgroup_file(&id, "pids", "pids.max", "pids.max")),
        "10"
    );
    assert_eq!(
        read(&cgroup_file(&id, "pids", "pids.current", "pids.current")),
        "1"
    );
    let dirs = container_cgroup_dirs(&id);
    assert!(!dirs.is_empty());
    for d in &dirs {
        assert_eq!(
            read(&d.join("cgroup.procs")),
            procs.trim(),
            "{}",
            d.display()
        );
    }

    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for d in &dirs {
        assert!(!d.exists(), "{} is left behind", d.display());
    }
}

#[test]
fn bad_values_exit_125_naming_the_flag() {
    let env = Env::new();
    for (flags, want) in [
        (
            &["--memory", "abc"][..],
            "invalid argument \"abc\" for \"-m, --memory\" flag: invalid size: 'abc'",
        ),
        (&["-m", "12x"][..], "for \"-m, --memory\" flag"),
        (&["-m", "1k"][..], "Minimum memory limit allowed is 6MB"),
        (
            &["--cpus", "half"][..],
            "invalid argument \"half\" for \"--cpus\" flag",
        ),
        (&["--cpus", "1000"][..], "Range of CPUs is from 0.01"),
        (
            &["--pids-limit", "ten"][..],
            "invalid argument \"ten\" for \"--pids-limit\" flag",
        ),
        (
            &["--memory-swap", "64m"][..],
            "You should always set the Memory limit when using Memoryswap limit, see usage",
        ),
        (
            &["-m", "64m", "--memory-swap", "32m"][..],
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ),
        (
            &["-c", "lots"][..],
            "invalid argument \"lots\" for \"-c, --cpu-shares\" flag",
        ),
    ] {
        let (code, _, err) = env.sh(flags, "true");
        assert_eq!(code, 125, "{flags:?}: {err}");
        assert!(err.contains(want), "{flags:?}: {err}");
    }
    assert!(env.containers().is_empty());
}

#[test]
fn inspect_reports_the_oom_kill() {
    let env = ContainerEnv::new(&[]);
    for (name, flags, want) in [
        ("hog", &["-m", "32m"][..], "true 137"),
        ("fine", &[][..], "false 0"),
    ] {
        let mut args = vec!["run", "--name", name];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["bb:1", "sh", "-c", HOG]);
        let _ = env.berth(&args);
        let got = env.ok(&[
            "inspect",
            "--format",
            "{{.State.OOMKilled}} {{.State.ExitCode}}",
            name,
        ]);
        assert_eq!(got.trim(), want, "{name}");
        // Detached, through the monitor, the same.
        let mut args = vec!["run", "-d", "--name"];
        let dname = format!("{name}-d");
        args.push(&dname);
        args.extend_from_slice(flags);
        args.extend_from_slice(&["bb:1", "sh", "-c", HOG]);
        env.ok(&args);
        env.ok(&["wait", &dname]);
        let got = env.ok(&[
            "inspect",
            "--format",
            "{{.State.OOMKilled}} {{.State.ExitCode}}",
            &dname,
        ]);
        assert_eq!(got.trim(), want, "{dname}");
    }
}

#[test]
fn exec_processes_are_in_every_cgroup_of_the_container() {
    let env = Env::new();
    let id = env.detach(&["--pids-limit", "20"], "sleep 300");
    env.ok(&["exec", "-d", &id, "sleep", "299"]);
    let dirs = container_cgroup_dirs(&id);
    assert!(!dirs.is_empty());
    let is_exec = |pid: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default()
            == "sleep\u{0}299\u{0}"
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid = loop {
        let procs = std::fs::read_to_string(dirs[0].join("cgroup.procs")).unwrap_or_default();
        if let Some(p) = procs.split_whitespace().find(|p| is_exec(p)) {
            break p.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "the exec'd process never showed up"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    // In each hierarchy (v1 controllers and the cgroup2 directory alike), as init is.
    for d in &dirs {
        let procs = read(&d.join("cgroup.procs"));
        assert!(
            procs.split_whitespace().any(|p| p == pid),
            "{pid} not in {}: {procs}",
            d.display()
        );
    }
    env.ok(&["rm", "-f", &id]);
}

#[test]
fn memory_swap_and_cpu_shares_reach_the_cgroups_and_inspect() {
    let env = Env::new();
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    for (flags, memsw, shares) in [
        (
            &["-m", "32m", "--memory-swap", "48m", "-c", "512"][..],
            48i64 << 20,
            512u64,
        ),
        (
            &["-m", "32m", "--memory-swap", "-1", "--cpu-shares", "2048"][..],
            -1,
            2048,
        ),
    ] {
        let id = env.detach(flags, "sleep 300");
        let swap_file = cgroup_file(
            &id,
            "memory",
            "memory.memsw.limit_in_bytes",
            "memory.swap.max",
        );
        if swap_file.exists() {
            let want = match (memsw, v2) {
                (-1, true) => "max".to_owned(),
                // Unlimited: the kernel's own value, as the root cgroup has it.
                (-1, false) => read(Path::new(
                    "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes",
                )),
                (t, true) => (t - (32 << 20)).to_string(),
                (t, false) => t.to_string(),
            };
            assert_eq!(read(&swap_file), want, "{flags:?}");
        }
        let weight = cgroup_file(&id, "cpu", "cpu.shares", "cpu.weight");
        let want = if v2 {
            (1 + (shares - 2) * 9999 / 262_142).to_string()
        } else {
            shares.to_string()
        };
        assert_eq!(read(&weight), want, "{flags:?}");
        let shown = env.ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.MemorySwap}} {{.HostConfig.CpuShares}}",
            &id,
        ]);
        assert_eq!(shown.trim(), format!("{memsw} {shares}"), "{flags:?}");
        env.ok(&["rm", "-f", &id]);
    }
    // Without them: Docker's defaults (swap as much again as memory, shares unset).
    let id = env.detach(&["-m", "32m"], "sleep 300");
    let shown = env.ok(&[
        "inspect",
        "-f",
        "{{.HostConfig.MemorySwap}} {{.HostConfig.CpuShares}}",
        &id,
    ]);
    assert_eq!(shown.trim(), format!("{} 0", 64i64 << 20));
    env.ok(&["rm", "-f", &id]);
}

#[test]
fn update_changes_limits_live_and_for_later_starts_and_the_restart_policy() {
    let env = Env::new();
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let id = env.detach(&["-m", "32m", "--pids-limit", "10"], "sleep 300");
    let out = env.ok(&[
        "update",
        "-m",
        "64m",
        "--pids-limit",
        "20",
        "--cpus",
        "0.5",
        "--restart",
        "always",
        &id,
    ]);
    assert_eq!(out.trim(), id);
    // In the running container's cgroups at once.
    let mem = cgroup_file(&id, "memory", "memory.limit_in_bytes", "memory.max");
    assert_eq!(read(&mem), (64u64 << 20).to_string());
    let pids = cgroup_file(&id, "pids", "pids.max", "pids.max");
    assert_eq!(read(&pids), "20");
    if v2 {
        assert_eq!(
            read(&cgroup_file(&id, "cpu", "", "cpu.max")),
            "50000 100000"
        );
    } else {
        assert_eq!(
            read(&cgroup_file(&id, "cpu", "cpu.cfs_quota_us", "")),
            "50000"
        );
    }
    let shown = env.ok(&[
        "inspect",
        "-f",
        "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{.HostConfig.NanoCpus}} {{.HostConfig.RestartPolicy.Name}}",
        &id,
    ]);
    assert_eq!(shown.trim(), format!("{} 20 500000000 always", 64u64 << 20));
    // Stopped, updated, started: the new limit is there from the start.
    env.ok(&["stop", "-t", "1", &id]);
    env.ok(&["update", "--pids-limit", "30", &id]);
    env.ok(&["start", &id]);
    assert_eq!(read(&pids), "30");
    assert_eq!(read(&mem), (64u64 << 20).to_string());
    env.ok(&["rm", "-f", &id]);

    // Docker's refusals; nothing changes then.
    let rm = env.detach(&["--rm"], "sleep 300");
    let out = env.berth(&["update", "--restart", "always", &rm]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("Restart policy cannot be updated because AutoRemove is enabled"),
        "{out:?}"
    );
    let out = env.berth(&["update", &rm]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("you must provide one or more flags"));
    let out = env.berth(&["update", "-m", "1k", &rm]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("Minimum memory limit allowed is 6MB"));
    let out = env.berth(&["update", "--pids-limit", "5", "nope"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("No such container"));
    env.ok(&["rm", "-f", &rm]);
}

#[test]
fn pause_freezes_every_process_until_unpause_and_stop_still_works() {
    let env = Env::new();
    let id = env.detach(
        &["--name", "ticker"],
        "i=0; while true; do i=$((i+1)); echo $i > /etc/n; sleep 0.05; done",
    );
    let counter = env
        .data_root()
        .join("containers")
        .join(&id)
        .join("rootfs/etc/n");
    let count = || -> u64 {
        std::fs::read_to_string(&counter)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while count() < 2 {
        assert!(Instant::now() < deadline, "the counter never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(env.ok(&["pause", "ticker"]), "ticker\n");
    let frozen_at = count();
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(count(), frozen_at, "a paused container went on");
    let ps = env.ok(&[
        "ps",
        "--filter",
        "status=paused",
        "--format",
        "{{.Names}} {{.Status}}",
    ]);
    assert!(
        ps.starts_with("ticker Up ") && ps.trim_end().ends_with("(Paused)"),
        "{ps}"
    );
    let shown = env.ok(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.Paused}}",
        "ticker",
    ]);
    assert_eq!(shown.trim(), "paused true");
    // Docker's refusals while paused.
    let err = |args: &[&str]| String::from_utf8_lossy(&env.berth(args).stderr).into_owned();
    assert!(err(&["pause", "ticker"]).contains("is already paused"));
    assert!(
        err(&["exec", "ticker", "true"]).contains("is paused, unpause the container before exec")
    );
    // Thawed: it counts again.
    assert_eq!(env.ok(&["unpause", "ticker"]), "ticker\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    while count() <= frozen_at {
        assert!(Instant::now() < deadline, "the counter did not resume");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(err(&["unpause", "ticker"]).contains("is not paused"));
    // Paused, then stopped: the stop thaws it and it ends.
    env.ok(&["pause", "ticker"]);
    env.ok(&["stop", "-t", "1", "ticker"]);
    let shown = env.ok(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.Paused}}",
        "ticker",
    ]);
    assert_eq!(shown.trim(), "exited false");
    assert!(err(&["pause", "ticker"]).contains("is not running"));
    env.ok(&["rm", "ticker"]);
}
