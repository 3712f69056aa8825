//! Cleans up after a `berth` that was killed (SIGKILL, OOM, power loss) while it owned a
//! container, so nothing it left stays invisible or half-made. Run by every invocation that
//! lists or looks up containers ([`crate::container::list`], [`crate::container::find`]):
//!
//! - a container directory without `state.json` whose creator (recorded in [`CREATING`]) is
//!   gone: its root file system mount, cgroups and directory are removed (no command can see
//!   such a directory, so nothing else would ever remove it);
//! - a container recorded as running whose owner (foreground `berth run` or monitor) is gone:
//!   its mount, cgroups and address are released; with `--rm` it is removed with its anonymous
//!   volumes, as its owner would have done; otherwise it is recorded as exited (137), and
//!   when its restart policy asks for a restart after that exit (`always`, `unless-stopped`,
//!   `on-failure` within its count; not after a `stop`) it is returned to the caller to start
//!   again — after its monitor was killed, or after a reboot ([`crate::commands::start::restore`]).
//!
//! Each container is handled under its lock, and only when its owner is provably dead (PID and
//! start time), so a live `run` or monitor is never touched. Calls [`crate::container`] and
//! [`crate::volumes`].

use std::path::Path;

use crate::container::{self, State, Status};
use crate::procfs::ProcessId;

/// Marker written into a new container directory before anything is mounted, holding the
/// creating process ([`ProcessId`] as JSON); removed once `state.json` exists.
pub const CREATING: &str = "creating";

/// Records this process as the creator of the container directory `dir`.
///
/// # Errors
/// I/O.
pub fn mark_creating(dir: &Path) -> std::io::Result<()> {
    let me = ProcessId::of(nix::unistd::getpid().as_raw());
    fs_err::write(dir.join(CREATING), serde_json::to_vec(&me)?)
}

/// Removes the creation marker once the container's state is saved.
pub fn done_creating(dir: &Path) {
    let _ = std::fs::remove_file(dir.join(CREATING));
}

/// Cleans up every container of `data_root` whose owner died (see the module doc); returns the
/// IDs of those whose restart policy asks to run them again. Best effort: a container that
/// cannot be cleaned now is left for the next invocation.
pub fn reap(data_root: &Path) -> Vec<String> {
    let mut restart = Vec::new();
    let Ok(entries) = std::fs::read_dir(container::root(data_root)) else {
        return restart;
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        if !dir.is_dir() {
            continue;
        }
        let id = entry.file_name().to_string_lossy().into_owned();
        if dir.join("state.json").exists() {
            if let Ok(state) = container::load(&dir) {
                if owner_died(&state) && reap_orphan(data_root, &dir, &id) {
                    restart.push(id);
                }
            }
        } else if creator_died(&dir) {
            reap_unfinished(&dir, &id);
        }
    }
    restart
}

/// Recorded as running, but the process that owned it is gone.
fn owner_died(state: &State) -> bool {
    state.status == Status::Running && state.status() != Status::Running
}

/// The creation marker names a process that no longer runs.
fn creator_died(dir: &Path) -> bool {
    let Ok(text) = std::fs::read(dir.join(CREATING)) else {
        return false;
    };
    match serde_json::from_slice::<Option<ProcessId>>(&text) {
        Ok(Some(p)) => !p.alive(),
        // Unreadable (cut short by the kill itself): the creator died while writing it.
        _ => true,
    }
}

fn reap_unfinished(dir: &Path, id: &str) {
    let Ok(_lock) = container::Lock::take(dir) else {
        return;
    };
    // Re-check under the lock: the creator may have finished in between.
    if dir.join("state.json").exists() || !creator_died(dir) {
        return;
    }
    tracing::debug!(
        "removing the unfinished container directory {}",
        dir.display()
    );
    container::teardown(dir, id);
    if !container::rootfs_mounted(dir) {
        let _ = fs_err::remove_dir_all(dir);
    }
}

/// Cleans up one container whose owner died; true when its restart policy wants it running.
fn reap_orphan(data_root: &Path, dir: &Path, id: &str) -> bool {
    let Ok(lock) = container::Lock::take(dir) else {
        return false;
    };
    let Ok(mut state) = container::load(dir) else {
        return false;
    };
    if !owner_died(&state) {
        return false;
    }
    tracing::debug!("cleaning up container {id}: its owner is gone");
    container::teardown(dir, id);
    if state.auto_remove {
        if container::rootfs_mounted(dir) {
            return false;
        }
        drop(lock);
        if fs_err::remove_dir_all(dir).is_ok() {
            let _ = crate::container::volume_users::remove_anonymous(data_root, &state.volumes);
        }
        return false;
    }
    state.status = Status::Exited;
    state.exit_code = Some(state.exit_code());
    state
        .finished_at
        .get_or_insert_with(crate::timestamp::now_rfc3339);
    state.restarting = false;
    if let Some(n) = state.network.as_mut() {
        n.forget();
    }
    let restart = state.restart_policy.should_restart(
        state.exit_code(),
        state.restart_count,
        state.stopped_by_user,
    );
    container::save(dir, &state, &lock).is_ok() && restart
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_creator_keeps_its_directory_and_a_dead_one_does_not() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("containers/abc");
        std::fs::create_dir_all(&dir).unwrap();
        mark_creating(&dir).unwrap();
        reap(t.path());
        assert!(dir.exists(), "our own directory was reaped");
        // PID 1's start time is not 1: a process that does not exist any more.
        std::fs::write(dir.join(CREATING), r#"{"pid":1,"start":1}"#).unwrap();
        reap(t.path());
        assert!(!dir.exists());
        // No marker and no state: left alone (not ours to judge).
        std::fs::create_dir_all(&dir).unwrap();
        reap(t.path());
        assert!(dir.exists());
    }

    #[test]
    fn a_running_container_whose_owner_died_is_exited_or_removed() {
        let t = tempfile::tempdir().unwrap();
        let dead = ProcessId { pid: 1, start: 1 };
        for (id, auto_remove) in [("keep", false), ("gone", true)] {
            let dir = t.path().join("containers").join(id);
            std::fs::create_dir_all(&dir).unwrap();
            let state = State {
                id: id.into(),
                status: Status::Running,
                monitor: Some(dead),
                auto_remove,
                ..State::default()
            };
            let lock = container::Lock::take(&dir).unwrap();
            container::save(&dir, &state, &lock).unwrap();
        }
        assert!(reap(t.path()).is_empty(), "no restart policy");
        let kept = container::load(&t.path().join("containers/keep")).unwrap();
        assert_eq!(kept.status, Status::Exited);
        assert_eq!(kept.exit_code, Some(137));
        assert!(kept.finished_at.is_some());
        assert!(!t.path().join("containers/gone").exists());
        // Our own live process as owner: untouched.
        let dir = t.path().join("containers/live");
        std::fs::create_dir_all(&dir).unwrap();
        let state = State {
            id: "live".into(),
            status: Status::Running,
            monitor: ProcessId::of(nix::unistd::getpid().as_raw()),
            ..State::default()
        };
        let lock = container::Lock::take(&dir).unwrap();
        container::save(&dir, &state, &lock).unwrap();
        drop(lock);
        reap(t.path());
        assert_eq!(container::load(&dir).unwrap().status, Status::Running);
    }

    #[test]
    fn restart_policies_decide_what_comes_back() {
        let t = tempfile::tempdir().unwrap();
        let dead = ProcessId { pid: 1, start: 1 };
        let cases = [
            ("always", container::RestartPolicy::Always, false, true),
            (
                "unless",
                container::RestartPolicy::UnlessStopped,
                false,
                true,
            ),
            (
                "failure",
                container::RestartPolicy::OnFailure { max: 2 },
                false,
                true,
            ),
            ("stopped", container::RestartPolicy::Always, true, false),
            ("never", container::RestartPolicy::No, false, false),
        ];
        for (id, policy, stopped, _) in cases {
            let dir = t.path().join("containers").join(id);
            std::fs::create_dir_all(&dir).unwrap();
            let state = State {
                id: id.into(),
                status: Status::Running,
                monitor: Some(dead),
                restart_policy: policy,
                stopped_by_user: stopped,
                ..State::default()
            };
            let lock = container::Lock::take(&dir).unwrap();
            container::save(&dir, &state, &lock).unwrap();
        }
        let mut back = reap(t.path());
        back.sort();
        let mut want: Vec<String> = cases
            .iter()
            .filter(|c| c.3)
            .map(|c| c.0.to_owned())
            .collect();
        want.sort();
        assert_eq!(back, want);
        // Recorded as exited in the meantime, and not returned twice.
        assert!(reap(t.path()).is_empty());
    }
}
