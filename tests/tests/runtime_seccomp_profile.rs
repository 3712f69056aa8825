//! moby's current default seccomp profile, end to end as root: `socket(AF_VSOCK)` and
//! `pidfd_getfd` (without `CAP_SYS_PTRACE`) fail with `EPERM` in a default container, the
//! address families containers use (`AF_UNIX`, `AF_INET`, `AF_NETLINK`) still work, and with
//! `--security-opt seccomp=unconfined` the same calls reach the kernel.

use berth_tests::ContainerEnv;

fn out(env: &ContainerEnv, args: &[&str]) -> (i32, String, String) {
    let o = env.berth(args);
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn check(env: &ContainerEnv, flags: &[&str], mode: &str) -> (i32, String, String) {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["bb:1", "/bin/berth-check", mode]);
    out(env, &args)
}

#[test]
fn vsock_and_pidfd_getfd_are_refused_by_the_default_profile() {
    let env = ContainerEnv::new(&[]);
    // moby allows `socket` only for its list of families; AF_VSOCK (40) is not in it, so the
    // profile's default action answers: EPERM.
    let (code, stdout, stderr) = check(&env, &[], "vsock");
    assert_eq!((code, stdout.as_str()), (1, "vsock=EPERM\n"), "{stderr}");
    // `pidfd_getfd` is in moby's CAP_SYS_PTRACE group; `pidfd_open` is allowed to everyone.
    let (code, stdout, stderr) = check(&env, &[], "pidfd_getfd");
    assert_eq!(
        (code, stdout.as_str()),
        (1, "pidfd_getfd=EPERM\n"),
        "{stderr}"
    );
}

#[test]
fn without_the_filter_the_kernel_answers() {
    let env = ContainerEnv::new(&[]);
    let unconfined = ["--security-opt", "seccomp=unconfined"];
    // The kernel creates the socket where vsock is available (this VM's kernel does) and says
    // EAFNOSUPPORT where it is not: never seccomp's EPERM.
    let (_, stdout, stderr) = check(&env, &unconfined, "vsock");
    assert!(
        stdout == "vsock=ok\n" || stdout == "vsock=EAFNOSUPPORT\n",
        "{stdout}{stderr}"
    );
    // Taking a descriptor from oneself needs no capability: only seccomp refused it above.
    let (code, stdout, stderr) = check(&env, &unconfined, "pidfd_getfd");
    assert_eq!((code, stdout.as_str()), (0, "pidfd_getfd=ok\n"), "{stderr}");
}

#[test]
fn ordinary_sockets_still_work() {
    let env = ContainerEnv::new(&[]);
    // AF_UNIX datagrams (syslogd on /dev/log, logger), AF_INET over loopback (nc, once the
    // listener shows in /proc/net/tcp: port 9000 is 0x2328, 0A is LISTEN), AF_NETLINK (ip).
    let script = "syslogd -n -O /syslog & \
                  for i in 1 2 3 4 5 6 7 8 9 10; do [ -S /dev/log ] && break; sleep 0.1; done; \
                  logger -t t unix-ok; sleep 0.3; grep -o unix-ok /syslog; kill %1; \
                  nc -l -p 9000 > /got & \
                  for i in $(seq 100); do grep -q ':2328 00000000:0000 0A' /proc/net/tcp && break; sleep 0.05; done; \
                  echo inet-ok | nc 127.0.0.1 9000; \
                  wait %2 2>/dev/null; cat /got; \
                  ip -o link show lo | grep -o 'lo:'";
    let (code, stdout, stderr) = out(&env, &["run", "--rm", "bb:1", "sh", "-c", script]);
    assert_eq!(
        (code, stdout.as_str()),
        (0, "unix-ok\ninet-ok\nlo:\n"),
        "{stderr}"
    );
}
