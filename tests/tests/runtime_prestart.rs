//! The runtime's prestart hook, as root: it runs with init's host PID in init's fresh network
//! namespace before the container's program, and its failure stops the start with 125 and the
//! hook's message, the program never run.

use std::path::Path;

use berth_runtime::run::{run_with_prestart, RunError, Stdio};
use berth_runtime::spec::{build, Network, RunOptions};

fn spec(rootfs: &Path, script: &str) -> berth_runtime::oci_spec::runtime::Spec {
    let opts = RunOptions {
        hostname: "hooked".into(),
        env: vec![],
        workdir: None,
        user: None,
        entrypoint: None,
        command: vec!["sh".into(), "-c".into(), script.into()],
        network: Network::Bridge,
        etc_files: vec![],
    };
    build(None, &opts, rootfs).unwrap()
}

fn netns(pid: i32) -> std::path::PathBuf {
    std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap()
}

#[test]
fn the_hook_runs_in_init_s_namespace_before_the_program_and_can_stop_it() {
    berth_tests::require_root();
    let tmp = tempfile::tempdir().unwrap();
    let _ = berth_tests::busybox_rootfs_tar(tmp.path(), &[]);
    // The spec's root is the bundle's `rootfs`.
    let rootfs = tmp.path().join("rootfs");
    std::fs::rename(tmp.path().join("rfs"), &rootfs).unwrap();

    // The program sees what the hook wrote: the hook ran before it.
    let spec_ok = spec(&rootfs, "cat /hook-ran > /seen");
    let mut hooked = None;
    let mut hook = |pid: i32| {
        // Init has its own network namespace already.
        assert_ne!(netns(pid), netns(std::process::id() as i32));
        std::fs::write(rootfs.join("hook-ran"), pid.to_string())?;
        hooked = Some(pid);
        Ok(())
    };
    let mut started = None;
    let code = run_with_prestart(
        tmp.path(),
        &spec_ok,
        Stdio::default(),
        &mut hook,
        &mut |pid| started = Some(pid),
    )
    .unwrap();
    assert_eq!(code, 0);
    let pid = hooked.expect("the hook ran");
    assert_eq!(started, Some(pid), "the hook got init's PID");
    assert_eq!(
        std::fs::read_to_string(rootfs.join("seen")).unwrap(),
        pid.to_string()
    );

    // A failing hook: 125 with its message, and the program never ran.
    let spec_fail = spec(&rootfs, "touch /must-not-exist");
    let mut failing = |_pid: i32| Err("no network for you".into());
    let err = run_with_prestart(
        tmp.path(),
        &spec_fail,
        Stdio::default(),
        &mut failing,
        &mut |_| panic!("not started"),
    )
    .unwrap_err();
    assert!(matches!(err, RunError::Prestart(_)), "{err:?}");
    assert_eq!(err.to_string(), "no network for you");
    assert_eq!(err.exit_code(), 125);
    assert!(!rootfs.join("must-not-exist").exists());
}
