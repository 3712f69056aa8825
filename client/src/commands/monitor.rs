//! `berth container-monitor ID` (internal, started by `run -d`): owns one detached container.
//!
//! It records its own PID, starts the container like the foreground path with stdin from
//! `/dev/null` and stdout/stderr into pipes copied to `<id>-json.log` (Docker's json-file
//! format), records init's host PID once the program runs and tells `run` (`ok`, or
//! `err CODE MESSAGE` on its stdout), waits, records the exit code, removes the mount (the
//! runtime removes the cgroups) and, with `--rm`, the container.

use std::cell::RefCell;
use std::io::Write as _;
use std::os::fd::{AsFd as _, AsRawFd as _, OwnedFd};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use berth_runtime::run::{run_with, Stdio};
use oci_spec::runtime::Spec;

use crate::cli::MonitorArgs;
use crate::containers::{self, ProcessId, Status};
use crate::context::Ctx;

/// Runs the monitor until the container exits.
///
/// # Errors
/// The container directory or spec is unreadable.
pub fn run(ctx: &Ctx, args: &MonitorArgs) -> anyhow::Result<()> {
    let dir = containers::root(ctx.store.root()).join(&args.id);
    // Our stdout is `run`'s pipe: keep it for the one word, then point 1 and 2 at /dev/null so
    // nothing else reaches it.
    let ready: OwnedFd = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .context("dup")?;
    let null = || {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
    };
    let devnull = null()?;
    for fd in [1, 2] {
        nix::unistd::dup2(devnull.as_raw_fd(), fd).context("dup2")?;
    }
    let ready = RefCell::new(Some(std::fs::File::from(ready)));
    let tell = |word: &str| {
        if let Some(mut f) = ready.borrow_mut().take() {
            let _ = writeln!(f, "{word}");
        }
    };

    let me = ProcessId::of(nix::unistd::getpid().as_raw());
    let state = containers::update(&dir, |s| s.monitor = me)?;
    let spec = Spec::load(dir.join("config.json")).context("cannot read config.json")?;

    let log_path = containers::log_path(&dir, &args.id);
    let log = Arc::new(Mutex::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("cannot open `{}`", log_path.display()))?,
    ));
    let (out_r, out_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe2")?;
    let (err_r, err_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe2")?;
    let copiers: Vec<_> = [(out_r, "stdout"), (err_r, "stderr")]
        .into_iter()
        .map(|(fd, stream)| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || containers::copy_log(std::fs::File::from(fd), stream, &log))
        })
        .collect();
    let stdio = Stdio {
        stdin: Some(null()?.into()),
        stdout: Some(out_w),
        stderr: Some(err_w),
    };
    let dir2 = dir.clone();
    let mut started = |pid: i32| {
        let init = ProcessId::of(pid);
        let saved = containers::update(&dir2, |s| {
            s.status = Status::Running;
            s.init = init;
            s.started_at = Some(containers::now_rfc3339());
        });
        tell(if saved.is_ok() {
            "ok"
        } else {
            "err 125 cannot record the container's state"
        });
    };
    let result = run_with(&dir, &spec, stdio, &mut started);
    for c in copiers {
        let _ = c.join();
    }
    let code = match &result {
        Ok(code) => *code,
        Err(e) => e.exit_code(),
    };
    containers::teardown(&dir, &args.id);
    if state.auto_remove {
        let _lock = containers::Lock::take(&dir)?;
        fs_err::remove_dir_all(&dir)?;
        // Like `rm -v`: anonymous volumes go with an auto-removed container.
        let _ = crate::volumes::remove_anonymous(ctx.store.root(), &state.volumes);
    } else {
        containers::update(&dir, |s| {
            s.status = Status::Exited;
            s.exit_code = Some(code);
            s.finished_at = Some(containers::now_rfc3339());
        })?;
    }
    if let Err(e) = result {
        tell(&format!("err {code} {:#}", anyhow::Error::new(e)));
    }
    Ok(())
}
