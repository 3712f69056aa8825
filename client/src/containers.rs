//! Container state shared by `run`, `ps`, `logs`, `stop`, `kill`, `rm` and `wait`.
//!
//! Each container's `state.json` is written atomically (temp file + rename) while holding an
//! exclusive `flock` on the directory's `lock` file, so concurrent `berth` invocations never see
//! half a file or lose an update. The process that owns a running container (the detached
//! monitor, or `berth run` itself in the foreground) records its PID and start time
//! (`/proc/<pid>/stat` field 22): when that process is gone (or the PID was reused), the
//! container is reported as exited, never as running forever.

use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

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

/// A process identified by PID and start time, so a reused PID is not mistaken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessId {
    /// Host PID.
    pub pid: i32,
    /// `/proc/<pid>/stat` field 22 (clock ticks since boot).
    pub start: u64,
}

impl ProcessId {
    /// The process `pid` as it is now; `None` when it does not exist.
    #[must_use]
    pub fn of(pid: i32) -> Option<Self> {
        let (state, start) = proc_stat(pid)?;
        (state != 'Z').then_some(Self { pid, start })
    }

    /// Whether this very process still runs (a zombie does not).
    #[must_use]
    pub fn alive(&self) -> bool {
        Self::of(self.pid).is_some_and(|now| now.start == self.start)
    }
}

/// State and start time of `pid` from `/proc/<pid>/stat`.
fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// Field 3 (state) and 22 (start time) of a `/proc/<pid>/stat` line; the command name (field
/// 2) may contain spaces and parentheses, so fields are counted after its last `)`.
fn parse_stat(text: &str) -> Option<(char, u64)> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // After the state (field 3), field 22 is the 19th.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
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
}

/// Docker's restart policy (`--restart`), as `state.json`'s `RestartPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "Name", rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Never restart (the default).
    #[default]
    No,
    /// Restart after a non-zero exit, at most `max` times (`0`: no limit).
    OnFailure {
        /// `:max-retries`.
        #[serde(rename = "MaximumRetryCount")]
        max: u32,
    },
    /// Restart after any exit, unless stopped by the user.
    Always,
    /// Like `always` (there is no daemon restart to tell them apart).
    UnlessStopped,
}

impl RestartPolicy {
    /// Parses `--restart` with Docker's messages.
    ///
    /// # Errors
    /// A malformed value, an unknown policy or a misplaced or negative retry count.
    pub fn parse(v: &str) -> anyhow::Result<Self> {
        let (name, count) = match v.split_once(':') {
            Some(("", _)) => {
                anyhow::bail!("invalid restart policy format: no policy provided before colon")
            }
            Some((name, count)) => (name, count),
            None => (v, ""),
        };
        let count: i64 = if count.is_empty() {
            0
        } else {
            count.parse().map_err(|_| {
                anyhow::anyhow!(
                    "invalid restart policy format: maximum retry count must be an integer"
                )
            })?
        };
        let daemon =
            |m: &str| anyhow::anyhow!("Error response from daemon: invalid restart policy: {m}");
        match name {
            "no" | "" | "always" | "unless-stopped" if count != 0 => Err(daemon(&format!(
                "maximum retry count can only be used with 'on-failure'{}",
                if count < 0 { " and cannot be negative" } else { "" }
            ))),
            "no" | "" => Ok(Self::No),
            "always" => Ok(Self::Always),
            "unless-stopped" => Ok(Self::UnlessStopped),
            "on-failure" => u32::try_from(count)
                .map(|max| Self::OnFailure { max })
                .map_err(|_| daemon("maximum retry count cannot be negative")),
            other => Err(daemon(&format!(
                "unknown policy '{other}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
            ))),
        }
    }

    /// Whether this is `no`.
    #[must_use]
    pub fn is_none(self) -> bool {
        self == Self::No
    }

    /// Docker's decision after an exit with `code`, `restarts` restarts so far.
    #[must_use]
    pub fn should_restart(self, code: i32, restarts: u32, stopped_by_user: bool) -> bool {
        if stopped_by_user {
            return false;
        }
        match self {
            Self::No => false,
            Self::Always | Self::UnlessStopped => true,
            Self::OnFailure { max } => code != 0 && (max == 0 || restarts < max),
        }
    }
}

/// First restart delay; it doubles after each restart up to [`RESTART_DELAY_MAX`], and starts
/// over once the container ran for [`RESTART_RESET_AFTER`].
pub const RESTART_DELAY_MIN: std::time::Duration = std::time::Duration::from_millis(100);
/// Longest restart delay (Docker's is a minute; short for now).
pub const RESTART_DELAY_MAX: std::time::Duration = std::time::Duration::from_secs(1);
/// A run this long resets the delay.
pub const RESTART_RESET_AFTER: std::time::Duration = std::time::Duration::from_secs(10);

/// The delay before the next restart, after `previous` and a run of `ran`.
#[must_use]
pub fn restart_delay(
    previous: Option<std::time::Duration>,
    ran: std::time::Duration,
) -> std::time::Duration {
    match previous {
        Some(d) if ran < RESTART_RESET_AFTER => (d * 2).min(RESTART_DELAY_MAX),
        _ => RESTART_DELAY_MIN,
    }
}

/// Records that the user stopped the container (`stop`, `kill`, `rm -f`), before it is
/// signalled, so its monitor does not restart it.
pub fn mark_stopped_by_user(dir: &Path) {
    let _ = update(dir, |s| s.stopped_by_user = true);
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
                "Up {}",
                crate::format::human_duration(secs(self.started_at.as_ref()))
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

/// Now, as Docker's RFC3339Nano (trailing zeros of the fraction dropped).
#[must_use]
pub fn now_rfc3339() -> String {
    rfc3339_nano(Utc::now())
}

/// Go's `time.RFC3339Nano`: `2024-01-02T03:04:05.1234Z`.
#[must_use]
pub fn rfc3339_nano(t: DateTime<Utc>) -> String {
    let s = t.to_rfc3339_opts(SecondsFormat::Nanos, true);
    match s.split_once('.') {
        Some((secs, frac)) => {
            let frac = frac.trim_end_matches('Z').trim_end_matches('0');
            if frac.is_empty() {
                format!("{secs}Z")
            } else {
                format!("{secs}.{frac}Z")
            }
        }
        None => s,
    }
}

/// The `containers/` directory under the data root.
#[must_use]
pub fn root(data_root: &Path) -> PathBuf {
    data_root.join("containers")
}

/// An exclusive `flock` on a container's `lock` file, released on drop.
#[derive(Debug)]
pub struct Lock(#[allow(dead_code)] nix::fcntl::Flock<std::fs::File>);

impl Lock {
    /// Blocks until the container directory `dir` is ours.
    ///
    /// # Errors
    /// The lock file cannot be opened (the container is gone).
    pub fn take(dir: &Path) -> anyhow::Result<Self> {
        Self::take_file(&dir.join("lock"))
    }

    /// Blocks until the lock file `path` (created if missing) is ours.
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn take_file(path: &Path) -> anyhow::Result<Self> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .with_context(|| format!("cannot lock `{}`", path.display()))?;
        let mut f = f;
        loop {
            match nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive) {
                Ok(l) => return Ok(Self(l)),
                Err((back, nix::errno::Errno::EINTR)) => f = back,
                Err((_, e)) => return Err(e).context("flock"),
            }
        }
    }
}

/// The names lock (`<data-root>/containers.lock`, beside `containers/` so that directory holds
/// only containers): `run` and `rename` hold it from their uniqueness check until the name is
/// in `state.json`.
///
/// # Errors
/// The file cannot be created or locked.
pub fn lock_names(data_root: &Path) -> anyhow::Result<Lock> {
    Lock::take_file(&data_root.join("containers.lock"))
}

/// Reads `<dir>/state.json`.
///
/// # Errors
/// Missing or malformed.
pub fn load(dir: &Path) -> anyhow::Result<State> {
    let text = fs_err::read(dir.join("state.json"))?;
    Ok(serde_json::from_slice(&text)?)
}

/// Writes `<dir>/state.json` atomically; the caller holds the [`Lock`].
///
/// # Errors
/// I/O.
pub fn save(dir: &Path, state: &State, _lock: &Lock) -> anyhow::Result<()> {
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
pub fn update(dir: &Path, change: impl FnOnce(&mut State)) -> anyhow::Result<State> {
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
pub fn find(data_root: &Path, arg: &str) -> anyhow::Result<(PathBuf, State)> {
    let all = list(data_root);
    let name = arg.strip_prefix('/').unwrap_or(arg);
    if let Some(hit) = all.iter().find(|(_, s)| s.id == arg || s.name == name) {
        return Ok(hit.clone());
    }
    let mut prefixed = all.into_iter().filter(|(_, s)| s.id.starts_with(arg));
    match (prefixed.next(), prefixed.next()) {
        (Some(hit), None) if !arg.is_empty() => Ok(hit),
        (Some(_), Some(_)) => {
            anyhow::bail!(
                "Error response from daemon: multiple IDs found with provided prefix: {arg}"
            )
        }
        _ => anyhow::bail!("Error response from daemon: No such container: {arg}"),
    }
}

const ADJECTIVES: &[&str] = &[
    "admiring",
    "adoring",
    "agitated",
    "amazing",
    "angry",
    "awesome",
    "blissful",
    "bold",
    "boring",
    "brave",
    "busy",
    "charming",
    "clever",
    "compassionate",
    "competent",
    "condescending",
    "confident",
    "cool",
    "cranky",
    "crazy",
    "dazzling",
    "determined",
    "distracted",
    "dreamy",
    "eager",
    "ecstatic",
    "elastic",
    "elated",
    "elegant",
    "eloquent",
    "epic",
    "exciting",
    "fervent",
    "festive",
    "flamboyant",
    "focused",
    "friendly",
    "frosty",
    "funny",
    "gallant",
    "gifted",
    "goofy",
    "gracious",
    "great",
    "happy",
    "hardcore",
    "heuristic",
    "hopeful",
    "hungry",
    "infallible",
    "inspiring",
    "intelligent",
    "interesting",
    "jolly",
    "jovial",
    "keen",
    "kind",
    "laughing",
    "loving",
    "lucid",
    "magical",
    "modest",
    "musing",
    "mystifying",
    "naughty",
    "nervous",
    "nice",
    "nifty",
    "nostalgic",
    "objective",
    "optimistic",
    "peaceful",
    "pedantic",
    "pensive",
    "practical",
    "priceless",
    "quirky",
    "quizzical",
    "relaxed",
    "reverent",
    "romantic",
    "sad",
    "serene",
    "sharp",
    "silly",
    "sleepy",
    "stoic",
    "strange",
    "stupefied",
    "suspicious",
    "sweet",
    "tender",
    "thirsty",
    "trusting",
    "upbeat",
    "vibrant",
    "vigilant",
    "vigorous",
    "wizardly",
    "wonderful",
    "xenodochial",
    "youthful",
    "zealous",
    "zen",
];

const NAMES: &[&str] = &[
    "agnesi",
    "albattani",
    "allen",
    "archimedes",
    "babbage",
    "banach",
    "bardeen",
    "bartik",
    "bell",
    "blackwell",
    "bohr",
    "booth",
    "borg",
    "bose",
    "brahmagupta",
    "brattain",
    "brown",
    "cannon",
    "carson",
    "cerf",
    "chandrasekhar",
    "curie",
    "darwin",
    "diffie",
    "dijkstra",
    "einstein",
    "elion",
    "euclid",
    "euler",
    "faraday",
    "fermat",
    "fermi",
    "feynman",
    "franklin",
    "galileo",
    "gauss",
    "goldberg",
    "goodall",
    "hamilton",
    "hawking",
    "heisenberg",
    "hermann",
    "hodgkin",
    "hopper",
    "hypatia",
    "jackson",
    "jang",
    "johnson",
    "kalam",
    "kepler",
    "khorana",
    "knuth",
    "kowalevski",
    "lamarr",
    "lamport",
    "leakey",
    "lovelace",
    "lumiere",
    "mayer",
    "mccarthy",
    "mcclintock",
    "meitner",
    "mendel",
    "mirzakhani",
    "morse",
    "newton",
    "nobel",
    "noether",
    "pare",
    "pascal",
    "pasteur",
    "perlman",
    "pike",
    "poincare",
    "ptolemy",
    "raman",
    "ritchie",
    "rosalind",
    "sammet",
    "shannon",
    "shockley",
    "sinoussi",
    "stonebraker",
    "swanson",
    "tesla",
    "thompson",
    "torvalds",
    "turing",
    "varahamihira",
    "wescoff",
    "wiles",
    "williams",
    "wilson",
    "wing",
    "wozniak",
    "wright",
    "yalow",
    "yonath",
];

/// A Docker-like `adjective_surname` name no container in `taken` has (a digit is appended
/// after a few collisions, as Docker does).
#[must_use]
pub fn generate_name(taken: &dyn Fn(&str) -> bool) -> String {
    let mut retry = 0u32;
    loop {
        let r = uuid::Uuid::new_v4().as_u128();
        #[allow(clippy::cast_possible_truncation)]
        let (a, n) = (
            ADJECTIVES[(r % ADJECTIVES.len() as u128) as usize],
            NAMES[((r >> 64) % NAMES.len() as u128) as usize],
        );
        let mut name = format!("{a}_{n}");
        if retry > 3 {
            name.push_str(&((r >> 32) % 10).to_string());
        }
        if !taken(&name) {
            return name;
        }
        retry += 1;
    }
}

/// The json-file log of a container: `<dir>/<id>-json.log`.
#[must_use]
pub fn log_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}-json.log"))
}

/// One line of Docker's json-file log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// The text, with its `\n` when the line had one.
    pub log: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// RFC3339Nano.
    pub time: String,
}

/// Parses a json-file log, skipping malformed lines (a line being written).
#[must_use]
pub fn parse_log(text: &str) -> Vec<LogEntry> {
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// `--tail`: `all` (or anything that is not a non-negative integer, as Docker does) means
/// every line.
#[must_use]
pub fn parse_tail(v: &str) -> Option<usize> {
    v.parse().ok()
}

/// The last `tail` entries (all with `None`).
#[must_use]
pub fn tail(entries: &[LogEntry], tail: Option<usize>) -> &[LogEntry] {
    match tail {
        Some(n) => &entries[entries.len().saturating_sub(n)..],
        None => entries,
    }
}

/// Docker's `-t` timestamp: RFC3339Nano with the fraction padded to nine digits.
#[must_use]
pub fn padded_time(time: &str) -> String {
    DateTime::parse_from_rfc3339(time).map_or_else(
        |_| time.to_owned(),
        |t| {
            t.with_timezone(&Utc)
                .to_rfc3339_opts(SecondsFormat::Nanos, true)
        },
    )
}

/// Appends the lines read from `from` to the log as `stream` entries until EOF.
///
/// # Errors
/// Reading or writing fails.
pub fn copy_log(
    from: impl std::io::Read,
    stream: &str,
    log: &std::sync::Mutex<std::fs::File>,
) -> std::io::Result<()> {
    let mut reader = std::io::BufReader::new(from);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            return Ok(());
        }
        let entry = LogEntry {
            log: String::from_utf8_lossy(&buf).into_owned(),
            stream: stream.to_owned(),
            time: now_rfc3339(),
        };
        let mut line = serde_json::to_vec(&entry).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut f = log
            .lock()
            .map_err(|_| std::io::Error::other("log lock poisoned"))?;
        f.write_all(&line)?;
    }
}

/// Removes what a container left on the host: its root file system mount, its cgroups and its
/// bridge address. Best effort; safe when they are already gone.
pub fn teardown(dir: &Path, id: &str) {
    use berth_runtime::cgroups::CgroupManager as _;
    use berth_runtime::syscall::{MntFlags, Syscall as _};
    let rootfs = dir.join("rootfs");
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let target = rootfs.display().to_string();
    if mounts.lines().any(|l| l.split(' ').nth(1) == Some(&target)) {
        let _ = berth_runtime::syscall::LinuxSyscall.umount2(&rootfs, MntFlags::MNT_DETACH);
    }
    if let Ok(layout) = berth_runtime::cgroups::detect_host() {
        if let Ok(m) = berth_runtime::cgroups::Manager::new(&layout, &format!("/berth/{id}")) {
            let _ = m.remove();
        }
    }
    crate::network::release(id);
}

/// Marker file: the container's root file system is a plain copy of its layers (overlayfs could
/// not be mounted on the data root).
pub const ROOTFS_COPY_MARKER: &str = "rootfs.copy";

/// Whether the container's root file system is a copy rather than an overlay mount.
#[must_use]
pub fn rootfs_copied(dir: &Path) -> bool {
    dir.join(ROOTFS_COPY_MARKER).exists()
}

/// Whether the root file system is ready to run: mounted, or a copy.
#[must_use]
pub fn rootfs_ready(dir: &Path) -> bool {
    rootfs_copied(dir) || rootfs_mounted(dir)
}

/// Whether `<dir>/rootfs` is still a mount point.
#[must_use]
pub fn rootfs_mounted(dir: &Path) -> bool {
    let target = dir.join("rootfs").display().to_string();
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(1) == Some(&target))
}

/// Polls until the container is no longer running or `timeout` passes; the last state read.
/// The poll interval starts at 1 ms and doubles up to 50 ms, so a container that stops at
/// once (the usual `stop`) is seen within a few milliseconds, not a whole 50 ms tick.
#[must_use]
pub fn wait_exit(dir: &Path, timeout: Option<std::time::Duration>) -> Option<State> {
    let start = std::time::Instant::now();
    let mut tick = std::time::Duration::from_millis(1);
    loop {
        let state = load(dir).ok()?;
        if state.status() != Status::Running {
            return Some(state);
        }
        if timeout.is_some_and(|t| start.elapsed() >= t) {
            return Some(state);
        }
        std::thread::sleep(tick);
        tick = (tick * 2).min(std::time::Duration::from_millis(50));
    }
}

/// Polls until the owner process of the container is gone (it has recorded the exit and torn
/// down), at most `timeout`; every 1 ms at first, backing off to 20 ms.
pub fn wait_owner(state: &State, timeout: std::time::Duration) {
    let start = std::time::Instant::now();
    let mut tick = std::time::Duration::from_millis(1);
    while state.monitor.is_some_and(|m| m.alive()) && start.elapsed() < timeout {
        std::thread::sleep(tick);
        tick = (tick * 2).min(std::time::Duration::from_millis(20));
    }
}

/// Parses a signal as Docker does: `SIGHUP`, `HUP`, `hup` or `1`.
///
/// # Errors
/// Docker's `Invalid signal: …`.
pub fn parse_signal(v: &str) -> anyhow::Result<nix::sys::signal::Signal> {
    use std::str::FromStr as _;
    if let Ok(n) = v.parse::<i32>() {
        return nix::sys::signal::Signal::try_from(n)
            .map_err(|_| anyhow::anyhow!("Invalid signal: {v}"));
    }
    let upper = v.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    nix::sys::signal::Signal::from_str(&name).map_err(|_| anyhow::anyhow!("Invalid signal: {v}"))
}

/// Sends `sig` to the container's init when it still runs.
///
/// # Errors
/// The container is not running, or the kernel refused.
pub fn signal(state: &State, sig: nix::sys::signal::Signal) -> anyhow::Result<()> {
    let init = state
        .init
        .filter(|i| state.status() == Status::Running && i.alive())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "Error response from daemon: cannot kill container: {}: container {} is not running",
                state.short_id(),
                state.id
            )
        })?;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(init.pid), sig)
        .with_context(|| format!("cannot send {sig} to the container"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[rstest::rstest]
    #[case("no", Ok(RestartPolicy::No))]
    #[case("always", Ok(RestartPolicy::Always))]
    #[case("unless-stopped", Ok(RestartPolicy::UnlessStopped))]
    #[case("on-failure", Ok(RestartPolicy::OnFailure { max: 0 }))]
    #[case("on-failure:3", Ok(RestartPolicy::OnFailure { max: 3 }))]
    #[case("no:0", Ok(RestartPolicy::No))]
    #[case(
        ":3",
        Err("invalid restart policy format: no policy provided before colon")
    )]
    #[case(
        "on-failure:x",
        Err("invalid restart policy format: maximum retry count must be an integer")
    )]
    #[case("on-failure:-1", Err("Error response from daemon: invalid restart policy: maximum retry count cannot be negative"))]
    #[case("always:2", Err("Error response from daemon: invalid restart policy: maximum retry count can only be used with 'on-failure'"))]
    #[case("no:-1", Err("Error response from daemon: invalid restart policy: maximum retry count can only be used with 'on-failure' and cannot be negative"))]
    #[case("sometimes", Err("Error response from daemon: invalid restart policy: unknown policy 'sometimes'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"))]
    fn restart_policies_parse_like_docker(
        #[case] v: &str,
        #[case] want: Result<RestartPolicy, &str>,
    ) {
        assert_eq!(
            RestartPolicy::parse(v).map_err(|e| e.to_string()),
            want.map_err(str::to_owned)
        );
    }

    #[rstest::rstest]
    #[case(RestartPolicy::No, 1, 0, false, false)]
    #[case(RestartPolicy::Always, 0, 9, false, true)]
    #[case(RestartPolicy::Always, 0, 0, true, false)]
    #[case(RestartPolicy::UnlessStopped, 1, 0, false, true)]
    #[case(RestartPolicy::UnlessStopped, 1, 0, true, false)]
    #[case(RestartPolicy::OnFailure { max: 3 }, 0, 0, false, false)]
    #[case(RestartPolicy::OnFailure { max: 3 }, 1, 2, false, true)]
    #[case(RestartPolicy::OnFailure { max: 3 }, 1, 3, false, false)]
    #[case(RestartPolicy::OnFailure { max: 0 }, 1, 100, false, true)]
    #[case(RestartPolicy::OnFailure { max: 0 }, 1, 0, true, false)]
    fn restart_decision(
        #[case] p: RestartPolicy,
        #[case] code: i32,
        #[case] restarts: u32,
        #[case] stopped: bool,
        #[case] want: bool,
    ) {
        assert_eq!(p.should_restart(code, restarts, stopped), want);
    }

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
    fn restart_delay_doubles_up_to_the_cap_and_resets() {
        use std::time::Duration as D;
        let short = D::from_millis(5);
        let mut d = None;
        let mut seen = vec![];
        for _ in 0..6 {
            let next = restart_delay(d, short);
            seen.push(next.as_millis());
            d = Some(next);
        }
        assert_eq!(seen, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(restart_delay(d, D::from_secs(10)), RESTART_DELAY_MIN);
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
    fn stat_fields_survive_odd_command_names() {
        let line = "42 (a b) c)) S 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 12345 0 0";
        assert_eq!(parse_stat(line), Some(('S', 12345)));
        assert_eq!(parse_stat("garbage"), None);
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
    fn log_parsing_and_tail() {
        let text = concat!(
            r#"{"log":"hi\n","stream":"stdout","time":"2024-01-01T00:00:00.5Z"}"#,
            "\n",
            r#"{"log":"err\n","stream":"stderr","time":"2024-01-01T00:00:01Z"}"#,
            "\n",
            r#"{"log":"partial"#,
        );
        let e = parse_log(text);
        assert_eq!(e.len(), 2);
        assert_eq!(
            (e[1].log.as_str(), e[1].stream.as_str()),
            ("err\n", "stderr")
        );
        assert_eq!(tail(&e, Some(1)), &e[1..]);
        assert_eq!(tail(&e, Some(0)), &[] as &[LogEntry]);
        assert_eq!(tail(&e, Some(9)), &e[..]);
        assert_eq!(tail(&e, parse_tail("all")), &e[..]);
        assert_eq!(parse_tail("-1"), None);
        assert_eq!(padded_time(&e[0].time), "2024-01-01T00:00:00.500000000Z");
    }

    #[test]
    fn copied_lines_become_json_file_entries() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("x-json.log");
        let log = std::sync::Mutex::new(std::fs::File::create(&path).unwrap());
        copy_log(&b"one\ntwo"[..], "stderr", &log).unwrap();
        let e = parse_log(&std::fs::read_to_string(&path).unwrap());
        assert_eq!(e.len(), 2);
        assert_eq!((e[0].log.as_str(), e[1].log.as_str()), ("one\n", "two"));
        assert!(e
            .iter()
            .all(|e| e.stream == "stderr" && e.time.ends_with('Z')));
    }

    #[test]
    fn times_are_rfc3339_nano() {
        let t = DateTime::parse_from_rfc3339("2024-01-02T03:04:05.120Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(rfc3339_nano(t), "2024-01-02T03:04:05.12Z");
        let t = DateTime::parse_from_rfc3339("2024-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(rfc3339_nano(t), "2024-01-02T03:04:05Z");
    }

    #[test]
    fn names_look_like_dockers_and_avoid_taken_ones() {
        let n = generate_name(&|_| false);
        let (a, b) = n.split_once('_').unwrap();
        assert!(ADJECTIVES.contains(&a) && NAMES.contains(&b), "{n}");
        let first = n.clone();
        assert_ne!(generate_name(&|c| c == first), first);
    }

    #[test]
    fn signals_parse_like_docker() {
        use nix::sys::signal::Signal;
        for v in ["SIGHUP", "HUP", "hup", "1"] {
            assert_eq!(parse_signal(v).unwrap(), Signal::SIGHUP);
        }
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("99").is_err());
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
