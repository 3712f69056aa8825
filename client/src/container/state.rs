//! A container's recorded state (`<dir>/state.json`): its [`Status`], what created it, who owns
//! it, and the lookups every command starts from ([`find`], [`list`]).
//!
//! Each `state.json` is written atomically (temp file + rename) while holding the directory's
//! [`Lock`], so concurrent `berth` invocations never see half a file or lose an update. The
//! process that owns a running container (the detached monitor, or `berth run` itself in the
//! foreground) records its [`ProcessId`]: when that process is gone (or the PID was reused), the
//! container is reported as exited, never as running forever.
//!
//! May call [`super::lock`], [`crate::procfs`], [`crate::reaper`] (to clean up before listing)
//! and [`crate::format`]; it names [`crate::network::Settings`] as a field only.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::lock::{Lock, LockError};
use super::restart::RestartPolicy;
use crate::procfs::ProcessId;

/// Reading, writing or finding a container's state.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading or writing `state.json` failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// `state.json` is not valid JSON (or cannot be serialized).
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// The directory's lock could not be taken.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// No container has this ID, name or ID prefix.
    #[error("Error response from daemon: No such container: {0}")]
    NoSuchContainer(String),
    /// Several containers' IDs start with this prefix.
    #[error("Error response from daemon: multiple IDs found with provided prefix: {0}")]
    Ambiguous(String),
}

/// What this module's functions return.
pub type Result<T> = std::result::Result<T, StateError>;

/// Lifecycle status, as Docker names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Set up, not started yet.
    #[default]
    Created,
    /// Its process runs.
    Running,
    /// Its process is gone.
    Exited,
}

impl Status {
    /// Whether the container may be started.
    #[must_use]
    pub fn can_start(self) -> bool {
        self == Self::Created
    }

    /// Whether a signal may be sent to the container's process.
    #[must_use]
    pub fn can_kill(self) -> bool {
        self == Self::Running
    }

    /// Whether the container may be removed without `--force`.
    #[must_use]
    pub fn can_remove(self) -> bool {
        self != Self::Running
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Exited => "exited",
        })
    }
}

/// `state.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct State {
    /// 64 hex digits.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Image ID.
    pub image: String,
    /// The image as the user named it (`ps`'s IMAGE column).
    #[serde(default)]
    pub image_name: String,
    /// The container's argv.
    #[serde(default)]
    pub command: Vec<String>,
    /// Lifecycle status as last recorded (see [`State::status`]).
    pub status: Status,
    /// RFC 3339.
    #[serde(default)]
    pub created: String,
    /// RFC 3339, once running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// RFC 3339, once exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Exit status, once exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The process that owns the container (monitor or foreground `berth run`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor: Option<ProcessId>,
    /// The container's init, as seen from the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<ProcessId>,
    /// Remove the container when it exits (`--rm`).
    #[serde(default)]
    pub auto_remove: bool,
    /// `--restart`.
    #[serde(default)]
    pub restart_policy: RestartPolicy,
    /// Restarts so far.
    #[serde(default)]
    pub restart_count: u32,
    /// Waiting to be restarted (still [`Status::Running`]).
    #[serde(default)]
    pub restarting: bool,
    /// Stopped by `stop`, `kill` or `rm -f`: not to be restarted.
    #[serde(default, rename = "HasBeenManuallyStopped")]
    pub stopped_by_user: bool,
    /// The volumes (named and anonymous) the container mounts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
    /// The OOM killer struck during the last run (Docker's `State.OOMKilled`).
    #[serde(default, rename = "OOMKilled")]
    pub oom_killed: bool,
    /// `-t`: the container's stdio is a pty.
    #[serde(default)]
    pub tty: bool,
    /// `-i`: the container's stdin stays open for attached clients.
    #[serde(default)]
    pub open_stdin: bool,
    /// `--network`, `-p`/`-P`, and the address and ports it got ([`crate::network`]).
    #[serde(
        default,
        rename = "NetworkSettings",
        skip_serializing_if = "Option::is_none"
    )]
    pub network: Option<crate::network::Settings>,
    /// `--log-driver` and `--log-opt` (Docker's `HostConfig.LogConfig`).
    #[serde(default)]
    pub log_config: super::log_config::LogConfig,
    /// `pause`d: its processes are frozen (Docker's `State.Paused`); meaningful while it runs.
    #[serde(default)]
    pub paused: bool,
}

/// Exit code reported when the owner of a container died without recording one: the container
/// was killed with it (its processes die with `PR_SET_PDEATHSIG` = SIGKILL).
pub const EXIT_OWNER_GONE: i32 = 137;

impl State {
    /// The status as it really is: a container recorded as running whose owner is gone has
    /// exited.
    #[must_use]
    pub fn status(&self) -> Status {
        match (self.status, self.monitor) {
            (Status::Running, Some(m)) if m.alive() => Status::Running,
            (Status::Running, _) => Status::Exited,
            (s, _) => s,
        }
    }

    /// Whether it runs with its processes frozen by `pause`.
    #[must_use]
    pub fn is_paused(&self) -> bool {
        self.paused && self.status() == Status::Running && !self.restarting
    }

    /// Docker's state name: `created`, `running`, `paused`, `restarting` or `exited`.
    #[must_use]
    pub fn state_name(&self) -> &'static str {
        match self.status() {
            Status::Running if self.restarting => "restarting",
            Status::Running if self.paused => "paused",
            Status::Created => "created",
            Status::Running => "running",
            Status::Exited => "exited",
        }
    }

    /// The exit code, [`EXIT_OWNER_GONE`] when the owner died without recording it.
    #[must_use]
    pub fn exit_code(&self) -> i32 {
        self.exit_code.unwrap_or(EXIT_OWNER_GONE)
    }

    /// Docker's STATUS column at `now`: `Created`, `Up 2 seconds`, `Exited (3) 5 seconds ago`.
    #[must_use]
    pub fn status_text(&self, now: DateTime<Utc>) -> String {
        let secs = |t: Option<&String>| {
            t.and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map_or(0, |t| now.signed_duration_since(t).num_seconds())
        };
        match self.status() {
            Status::Created => "Created".into(),
            Status::Running if self.restarting => format!(
                "Restarting ({}) {} ago",
                self.exit_code(),
                crate::format::human_duration(secs(self.finished_at.as_ref()))
            ),
            Status::Running => format!(
                "Up {}{}",
                crate::format::human_duration(secs(self.started_at.as_ref())),
                if self.paused { " (Paused)" } else { "" }
            ),
            Status::Exited => {
                // An owner that died left no finish time; its start time is the best bound.
                let at = self.finished_at.as_ref().or(self.started_at.as_ref());
                format!(
                    "Exited ({}) {} ago",
                    self.exit_code(),
                    crate::format::human_duration(secs(at))
                )
            }
        }
    }

    /// The name Docker prints for `--name`-less references: the name, else the short ID.
    #[must_use]
    pub fn short_id(&self) -> &str {
        &self.id[..12.min(self.id.len())]
    }
}

/// The `containers/` directory under the data root.
#[must_use]
pub fn root(data_root: &Path) -> PathBuf {
    data_root.join("containers")
}

/// Reads `<dir>/state.json`.
///
/// # Errors
/// Missing or malformed.
pub fn load(dir: &Path) -> Result<State> {
    settled(|| {
        let text = fs_err::read(dir.join("state.json"))?;
        Ok(serde_json::from_slice(&text)?)
    })
}

/// A state from `read`, read once more when it says running but its owner looks gone: the owner
/// may have recorded the exit and ended between the read and that look. It records before it
/// ends, so a read made after the look has the exit if there is one; otherwise the owner
/// really died. (Without this, `wait` reported 137 for a container that exited 0.)
fn settled(mut read: impl FnMut() -> Result<State>) -> Result<State> {
    let state = read()?;
    if state.status == Status::Running && state.status() != Status::Running {
        return read();
    }
    Ok(state)
}

/// Writes `<dir>/state.json` atomically; the caller holds the [`Lock`].
///
/// # Errors
/// I/O.
pub fn save(dir: &Path, state: &State, _lock: &Lock) -> Result<()> {
    let tmp = dir.join(".state.json.tmp");
    let mut f = fs_err::File::create(&tmp)?;
    f.write_all(&serde_json::to_vec_pretty(state)?)?;
    f.sync_all()?;
    fs_err::rename(&tmp, dir.join("state.json"))?;
    Ok(())
}

/// Locks, reads, changes and writes back `<dir>/state.json`.
///
/// # Errors
/// I/O.
pub fn update(dir: &Path, change: impl FnOnce(&mut State)) -> Result<State> {
    let lock = Lock::take(dir)?;
    let mut state = load(dir)?;
    change(&mut state);
    save(dir, &state, &lock)?;
    Ok(state)
}

/// Every container with a readable state, newest first (after cleaning up what a killed
/// `berth` left: [`crate::reaper`]).
#[must_use]
pub fn list(data_root: &Path) -> Vec<(PathBuf, State)> {
    let _ = crate::reaper::reap(data_root);
    let mut out: Vec<(PathBuf, State)> = std::fs::read_dir(root(data_root))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| load(&e.path()).ok().map(|s| (e.path(), s)))
        .collect();
    out.sort_by(|a, b| b.1.created.cmp(&a.1.created));
    out
}

/// Finds a container by full ID, name, or unique ID prefix, as Docker does.
///
/// # Errors
/// Docker's `No such container: …`, or an ambiguous prefix.
pub fn find(data_root: &Path, arg: &str) -> Result<(PathBuf, State)> {
    let all = list(data_root);
    let name = arg.strip_prefix('/').unwrap_or(arg);
    if let Some(hit) = all.iter().find(|(_, s)| s.id == arg || s.name == name) {
        return Ok(hit.clone());
    }
    let mut prefixed = all.into_iter().filter(|(_, s)| s.id.starts_with(arg));
    match (prefixed.next(), prefixed.next()) {
        (Some(hit), None) if !arg.is_empty() => Ok(hit),
        (Some(_), Some(_)) => Err(StateError::Ambiguous(arg.to_owned())),
        _ => Err(StateError::NoSuchContainer(arg.to_owned())),
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::timestamp::rfc3339_nano;

    #[test]
    fn restarting_status_text() {
        let now = Utc::now();
        let s = State {
            status: Status::Running,
            monitor: ProcessId::of(nix::unistd::getpid().as_raw()),
            restarting: true,
            exit_code: Some(1),
            finished_at: Some(rfc3339_nano(now)),
            ..State::default()
        };
        assert_eq!(s.status_text(now), "Restarting (1) Less than a second ago");
    }

    #[test]
    fn an_exit_recorded_while_the_owner_was_looked_at_is_seen() {
        // A process that has ended: a child of ours, reaped.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        child.wait().unwrap();
        // (Were the PID taken again, its start time would not be 1.)
        let gone = ProcessId { pid, start: 1 };
        let running = State {
            status: Status::Running,
            monitor: Some(gone),
            ..State::default()
        };
        let exited = State {
            status: Status::Exited,
            monitor: Some(gone),
            exit_code: Some(0),
            ..State::default()
        };
        // First read: still running, owner already gone (it wrote and ended after that read).
        let mut reads = vec![exited.clone(), running.clone()];
        let s = settled(|| Ok(reads.pop().unwrap())).unwrap();
        assert_eq!(s.exit_code, Some(0), "the recorded exit, not 137");
        assert!(reads.is_empty(), "read twice");
        // The owner died without recording: the second read says so too.
        let mut reads = vec![running.clone(), running];
        let s = settled(|| Ok(reads.pop().unwrap())).unwrap();
        assert_eq!(s.status(), Status::Exited);
        assert_eq!(s.exit_code(), EXIT_OWNER_GONE);
        // A live owner: read once.
        let live = State {
            status: Status::Running,
            monitor: ProcessId::of(nix::unistd::getpid().as_raw()),
            ..State::default()
        };
        let mut reads = vec![exited, live];
        let s = settled(|| Ok(reads.pop().unwrap())).unwrap();
        assert_eq!(s.status(), Status::Running);
        assert_eq!(reads.len(), 1);
    }

    #[test]
    fn restart_policy_in_state_json() {
        let s = State {
            restart_policy: RestartPolicy::OnFailure { max: 3 },
            restart_count: 2,
            ..State::default()
        };
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(
            v["RestartPolicy"],
            serde_json::json!({"Name": "on-failure", "MaximumRetryCount": 3})
        );
        assert_eq!(v["RestartCount"], 2);
        assert_eq!(serde_json::from_value::<State>(v).unwrap(), s);
        let old: State =
            serde_json::from_str(r#"{"Id":"x","Name":"n","Image":"i","Status":"exited"}"#).unwrap();
        assert_eq!(old.restart_policy, RestartPolicy::No);
    }

    #[test]
    fn state_machine() {
        assert!(Status::Created.can_start());
        assert!(!Status::Running.can_start());
        assert!(!Status::Exited.can_start());
        assert!(Status::Running.can_kill());
        assert!(!Status::Exited.can_kill());
        assert!(!Status::Created.can_kill());
        assert!(!Status::Running.can_remove());
        assert!(Status::Exited.can_remove());
    }

    #[test]
    fn running_without_a_live_owner_is_exited() {
        let me = ProcessId::of(std::process::id().try_into().unwrap()).unwrap();
        let mut s = State {
            status: Status::Running,
            monitor: Some(me),
            ..State::default()
        };
        assert_eq!(s.status(), Status::Running);
        // Same PID, other start time: a reused PID.
        s.monitor = Some(ProcessId {
            pid: me.pid,
            start: me.start + 1,
        });
        assert_eq!(s.status(), Status::Exited);
        assert_eq!(s.exit_code(), EXIT_OWNER_GONE);
        s.monitor = None;
        assert_eq!(s.status(), Status::Exited);
    }

    #[test]
    fn status_text_follows_docker() {
        let now = DateTime::parse_from_rfc3339("2024-01-01T00:01:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let me = ProcessId::of(std::process::id().try_into().unwrap());
        let running = State {
            status: Status::Running,
            monitor: me,
            started_at: Some("2024-01-01T00:00:58Z".into()),
            ..State::default()
        };
        assert_eq!(running.status_text(now), "Up 2 seconds");
        let exited = State {
            status: Status::Exited,
            exit_code: Some(3),
            started_at: Some("2024-01-01T00:00:00Z".into()),
            finished_at: Some("2024-01-01T00:00:55.5Z".into()),
            ..State::default()
        };
        assert_eq!(exited.status_text(now), "Exited (3) 4 seconds ago");
        assert_eq!(State::default().status_text(now), "Created");
        let gone = State {
            status: Status::Running,
            started_at: Some("2024-01-01T00:00:00Z".into()),
            ..State::default()
        };
        assert_eq!(gone.status_text(now), "Exited (137) About a minute ago");
    }

    #[test]
    fn find_by_id_prefix_and_name() {
        let t = tempfile::tempdir().unwrap();
        for (id, name) in [("abc123", "one"), ("abd456", "two")] {
            let dir = root(t.path()).join(id);
            std::fs::create_dir_all(&dir).unwrap();
            let lock = Lock::take(&dir).unwrap();
            let s = State {
                id: id.into(),
                name: name.into(),
                ..State::default()
            };
            save(&dir, &s, &lock).unwrap();
        }
        assert_eq!(find(t.path(), "abc123").unwrap().1.name, "one");
        assert_eq!(find(t.path(), "two").unwrap().1.id, "abd456");
        assert_eq!(find(t.path(), "/two").unwrap().1.id, "abd456");
        assert_eq!(find(t.path(), "abc").unwrap().1.name, "one");
        let e = find(t.path(), "ab").unwrap_err().to_string();
        assert!(e.contains("multiple IDs"), "{e}");
        let e = find(t.path(), "zz").unwrap_err().to_string();
        assert_eq!(e, "Error response from daemon: No such container: zz");
    }
}
