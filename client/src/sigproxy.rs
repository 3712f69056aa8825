//! Docker's `--sig-proxy`: while `berth` waits on a container in the foreground, the signals a
//! user sends it (SIGINT from Ctrl-C, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2) go to the
//! container's init instead of killing `berth` and leaving the container's mount and cgroups
//! behind. The handlers are tokio's, so they cover every thread of the process.

use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use nix::sys::signal::Signal;

/// Whom to signal.
#[derive(Debug, Clone)]
pub enum Target {
    /// The init recorded in this container directory's state.
    Container(PathBuf),
    /// A host PID, set once known (`0` until then: signals are dropped).
    Pid(Arc<AtomicI32>),
}

/// Forwards signals to `target` until the returned task is aborted (or the process exits).
#[must_use]
pub fn forward(target: Target) -> Option<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let handle = tokio::runtime::Handle::try_current().ok()?;
    Some(handle.spawn(async move {
        let kinds = [
            (SignalKind::interrupt(), Signal::SIGINT),
            (SignalKind::terminate(), Signal::SIGTERM),
            (SignalKind::hangup(), Signal::SIGHUP),
            (SignalKind::quit(), Signal::SIGQUIT),
            (SignalKind::user_defined1(), Signal::SIGUSR1),
            (SignalKind::user_defined2(), Signal::SIGUSR2),
        ];
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for (kind, sig) in kinds {
            let Ok(mut stream) = signal(kind) else {
                continue;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                while stream.recv().await.is_some() {
                    if tx.send(sig).is_err() {
                        return;
                    }
                }
            });
        }
        while let Some(sig) = rx.recv().await {
            match &target {
                Target::Container(dir) => {
                    if let Ok(state) = crate::container::load(dir) {
                        let _ = crate::container::signal(dir, &state, sig);
                    }
                }
                Target::Pid(pid) => {
                    let pid = pid.load(Ordering::SeqCst);
                    if pid > 0 {
                        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
                    }
                }
            }
        }
    }))
}
