//! Interactive containers end to end, as root: `run -it` through a real pty (driven by
//! `script`), `run -i` with piped input, `exec` (`-i -t -e -w -u -d`), `attach` with the
//! detach keys, `create` + `start [-a]`, and `restart`.

use std::io::{Read as _, Write as _};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_tests::{bin, require, ContainerEnv};

/// A berth command running on a pty made by `script`, its output collected as it comes.
struct OnPty {
    child: Child,
    output: Arc<Mutex<Vec<u8>>>,
}

impl OnPty {
    fn spawn(env: &ContainerEnv, args: &[&str]) -> Self {
        require("script", "install it with `apt-get install bsdutils`");
        let mut line = format!(
            "{} --data-root {}",
            bin("berth").display(),
            env.data_root().display()
        );
        for a in args {
            line.push_str(&format!(" '{a}'"));
        }
        let mut child = Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let output = Arc::new(Mutex::new(Vec::new()));
        let mut out = child.stdout.take().unwrap();
        let sink = Arc::clone(&output);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Self { child, output }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    /// Waits until the output contains `what`.
    fn expect(&self, what: &str) {
        let start = Instant::now();
        while !self.text().contains(what) {
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "no {what:?} in {:?}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(bytes).unwrap();
        stdin.flush().unwrap();
    }

    /// The exit code of the berth command (script passes it on with `-e`).
    fn wait(mut self) -> (i32, String) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader drain.
                std::thread::sleep(Duration::from_millis(100));
                return (status.code().unwrap_or(-1), self.text());
            }
            if start.elapsed() > Duration::from_secs(20) {
                let _ = self.child.kill();
                panic!("still running; output so far: {:?}", self.text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn code(out: &std::process::Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

#[test]
fn run_it_gives_a_real_terminal_and_the_shells_exit_code() {
    let env = ContainerEnv::new(&[]);
    let mut pty = OnPty::spawn(&env, &["run", "-it", "--rm", "bb:1", "sh"]);
    pty.expect("# ");
    // The container's stdin, stdout and stderr are its own pty from its own devpts; the
    // terminal's size reached it; TERM is set like Docker's.
    pty.send(b"tty; [ -t 0 ] && [ -t 2 ] && echo both-ttys; echo term=$TERM; stty size; exit 7\r");
    let (exit, out) = pty.wait();
    assert_eq!(exit, 7, "{out}");
    assert!(out.contains("/dev/pts/0"), "{out}");
    assert!(out.contains("both-ttys"), "{out}");
    assert!(out.contains("term=xterm"), "{out}");
    assert!(
        std::fs::read_dir(env.data_root().join("containers"))
            .unwrap()
            .next()
            .is_none(),
        "--rm left the container"
    );
}

#[test]
fn ctrl_c_reaches_the_container_through_the_pty() {
    let env = ContainerEnv::new(&[]);
    let mut pty = OnPty::spawn(&env, &["run", "-it", "--rm", "bb:1", "sh"]);
    pty.expect("# ");
    pty.send(b"sleep 30; echo after-sleep\r");
    std::thread::sleep(Duration::from_millis(300));
    // ^C interrupts the sleep inside; the shell (and berth) go on.
    pty.send(&[3]);
    pty.send(b"echo still-$((40+2)); exit 0\r");
    let (exit, out) = pty.wait();
    assert_eq!(exit, 0, "{out}");
    assert!(out.contains("still-42"), "{out}");
    assert!(!out.contains("after-sleep\r\n"), "{out}");
}

#[test]
fn run_it_without_a_terminal_is_refused_like_docker() {
    let env = ContainerEnv::new(&[]);
    let out = env
        .cmd(&["run", "-it", "--rm", "bb:1", "true"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(code(&out), 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("the input device is not a TTY"));
}

#[test]
fn run_i_streams_stdin_and_closes_it_at_eof() {
    let env = ContainerEnv::new(&[]);
    let mut child = env
        .cmd(&[
            "run",
            "-i",
            "--rm",
            "bb:1",
            "sh",
            "-c",
            "cat; echo err >&2; exit 3",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"line one\nline two\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 3);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "line one\nline two\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
}

#[test]
fn exec_runs_in_the_containers_namespaces_with_its_options() {
    let env = ContainerEnv::new(&[]);
    let id = env
        .ok(&[
            "run",
            "-d",
            "--name",
            "box",
            "-e",
            "FROM_RUN=1",
            "bb:1",
            "sleep",
            "300",
        ])
        .trim()
        .to_owned();
    // Same PID namespace (init is `sleep`), hostname and environment as the container.
    let out = env.ok(&[
        "exec",
        "box",
        "sh",
        "-c",
        "cat /proc/1/cmdline | tr '\\0' ' '; hostname; echo run=$FROM_RUN",
    ]);
    assert_eq!(out, format!("sleep 300 {}\nrun=1\n", &id[..12]));
    // -e, -w, -u and the command's exit code.
    let out = env.berth(&[
        "exec",
        "-e",
        "X=y",
        "-w",
        "/etc",
        "-u",
        "1000:1001",
        "box",
        "sh",
        "-c",
        "echo $X $(pwd) $(id -u):$(id -g); exit 9",
    ]);
    assert_eq!(code(&out), 9);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "y /etc 1000:1001\n");
    // Docker's capability set, not the host's.
    let caps = env.ok(&["exec", "box", "grep", "CapEff", "/proc/self/status"]);
    assert!(caps.contains("00000000a80425fb"), "{caps}");
    // Not found: 127; not executable: 126.
    let out = env.berth(&["exec", "box", "no-such-command"]);
    assert_eq!(code(&out), 127);
    assert!(String::from_utf8_lossy(&out.stderr).contains("executable file not found in $PATH"));
    let out = env.berth(&["exec", "box", "/bin"]);
    assert_eq!(code(&out), 126, "{}", String::from_utf8_lossy(&out.stderr));
    // -i: our stdin.
    let mut child = env
        .cmd(&["exec", "-i", "box", "wc", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"12345").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "5");
    // -d: returns at once, the process runs on in the container.
    // (`output()` also waits for berth's stdout and stderr to close: nothing may keep them.)
    env.ok(&[
        "exec",
        "-d",
        "box",
        "sh",
        "-c",
        "sleep 2; touch /from-exec-d",
    ]);
    let exists = || code(&env.berth(&["exec", "box", "test", "-e", "/from-exec-d"]));
    assert_eq!(exists(), 1);
    let start = Instant::now();
    while exists() != 0 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "exec -d never ran"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // A stopped container: Docker's error, exit 1.
    env.ok(&["stop", "-t", "0", "box"]);
    let out = env.berth(&["exec", "box", "true"]);
    assert_eq!(code(&out), 1);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("container {id} is not running"))
    );
}

#[test]
fn exec_it_gets_a_terminal() {
    let env = ContainerEnv::new(&[]);
    env.ok(&["run", "-d", "--name", "box", "bb:1", "sleep", "300"]);
    let mut pty = OnPty::spawn(&env, &["exec", "-it", "box", "sh"]);
    pty.expect("# ");
    pty.send(b"tty; ps -o pid,comm | grep -c sleep; exit 4\r");
    let (exit, out) = pty.wait();
    assert_eq!(exit, 4, "{out}");
    // The exec's pty is the container's second one: init has none, this is /dev/pts/0.
    assert!(out.contains("/dev/pts/"), "{out}");
}

#[test]
fn attach_detaches_with_ctrl_p_ctrl_q_and_returns_the_exit_code() {
    let env = ContainerEnv::new(&[]);
    env.ok(&["run", "-dit", "--name", "shell", "bb:1", "sh"]);
    let mut pty = OnPty::spawn(&env, &["attach", "shell"]);
    std::thread::sleep(Duration::from_millis(300));
    pty.send(b"echo first-$((1+1))\r");
    pty.expect("first-2");
    pty.send(&[0x10, 0x11]);
    let (exit, out) = pty.wait();
    assert_eq!(exit, 0, "{out}");
    assert!(out.contains("read escape sequence"), "{out}");
    assert_eq!(env.state("shell")["Status"], "running");
    // Attach again: the shell kept its state; its exit code is attach's.
    let mut pty = OnPty::spawn(&env, &["attach", "shell"]);
    std::thread::sleep(Duration::from_millis(300));
    pty.send(b"exit 13\r");
    let (exit, out) = pty.wait();
    assert_eq!(exit, 13, "{out}");
    // What the shell printed is in its json-file log too.
    let logs = env.ok(&["logs", "shell"]);
    assert!(logs.contains("first-2"), "{logs}");
    // A stopped container cannot be attached to.
    let out = env.berth(&["attach", "shell"]);
    assert_ne!(code(&out), 0);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("You cannot attach to a stopped container")
    );
}

#[test]
fn create_then_start_and_restart() {
    let env = ContainerEnv::new(&[]);
    let id = env
        .ok(&[
            "create",
            "--name",
            "job",
            "bb:1",
            "sh",
            "-c",
            "echo run-$(cat /count 2>/dev/null || echo 0); echo x >> /count; exit 4",
        ])
        .trim()
        .to_owned();
    assert_eq!(id.len(), 64);
    assert_eq!(env.state("job")["Status"], "created");
    assert!(env.ok(&["ps", "-a"]).contains("Created"));
    // start -a: its output and exit code.
    let out = env.berth(&["start", "-a", "job"]);
    assert_eq!(code(&out), 4);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "run-0\n");
    // Started again: same container, same file system (the file written before is there).
    let out = env.berth(&["start", "-a", "job"]);
    assert_eq!(code(&out), 4);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "run-x\n");
    // Plain start prints the name and returns; the container runs in the background.
    let id2 = env.ok(&["run", "-d", "--name", "srv", "bb:1", "sleep", "300"]);
    let pid_before = env.state("srv")["Init"]["pid"].as_i64().unwrap();
    assert_eq!(env.ok(&["restart", "-t", "1", "srv"]), "srv\n");
    let state = env.state("srv");
    assert_eq!(state["Status"], "running");
    assert_ne!(state["Init"]["pid"].as_i64().unwrap(), pid_before);
    env.ok(&["stop", "-t", "0", "srv"]);
    assert_eq!(env.ok(&["start", "srv"]), "srv\n");
    assert_eq!(env.state(id2.trim())["Status"], "running");
    // Unknown container: Docker's error.
    let out = env.berth(&["start", "nope"]);
    assert_ne!(code(&out), 0);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("No such container: nope"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn signals_to_a_foreground_berth_reach_the_container() {
    let env = ContainerEnv::new(&[]);
    let script = "trap 'echo got-int; exit 3' INT; echo ready; while :; do sleep 0.1; done";
    for flags in [&["run", "--rm"][..], &["run", "--rm", "-i"][..]] {
        let mut args = flags.to_vec();
        args.extend_from_slice(&["bb:1", "sh", "-c", script]);
        let mut child = env
            .cmd(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut ready = [0u8; 6];
        stdout.read_exact(&mut ready).unwrap();
        assert_eq!(&ready, b"ready\n");
        let kill = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let status = child.wait().unwrap();
        let mut rest = String::new();
        stdout.read_to_string(&mut rest).unwrap();
        // The container's trap ran and its code is berth's; berth cleaned up after it.
        assert_eq!(
            (status.code(), rest.as_str()),
            (Some(3), "got-int\n"),
            "{flags:?}"
        );
        let left: Vec<_> = std::fs::read_dir(env.data_root().join("containers"))
            .unwrap()
            .collect();
        assert!(left.is_empty(), "{flags:?}: --rm left {left:?}");
    }
}
