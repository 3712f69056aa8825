//! `top`: a container's processes, as moby finds them: run the host's `ps` with the options
//! (default `-ef`), keep the rows whose `PID` is one of the container's processes (its
//! cgroup's `cgroup.procs`, or else the processes in its init's PID namespace), under `ps`'s
//! own titles (`UID PID PPID C STIME TTY TIME CMD` for `-ef`).
//!
//! May call [`super::state`] and `berth_runtime::cgroups`; the table is the command's.

use std::path::Path;

use super::state::{self, StateError, Status};

/// `ps`'s options or output cannot be used (moby's wording).
#[derive(Debug, thiserror::Error)]
pub enum PsError {
    /// `-o K=PID…` would rename the `PID` column.
    #[error("specifying \"{key}={value}\" is not allowed")]
    RenamedPid {
        /// The renamed column.
        key: String,
        /// The new title.
        value: String,
    },
    /// `ps` printed no `PID` column.
    #[error("Couldn't find PID field in ps output")]
    NoPidColumn,
    /// A `PID` cell is not a number.
    #[error("Unexpected pid '{pid}': {reason}")]
    BadPid {
        /// The cell.
        pid: String,
        /// Why it does not parse.
        reason: std::num::ParseIntError,
    },
}

/// The container's processes could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum TopError {
    /// No such container.
    #[error(transparent)]
    State(#[from] StateError),
    /// Bad `ps` options or output.
    #[error("Error response from daemon: {0}")]
    Ps(PsError),
    /// The container does not run.
    #[error("Error response from daemon: Container {0} is not running")]
    NotRunning(String),
    /// The container is between two runs of its restart policy.
    #[error(
        "Error response from daemon: Container {0} is restarting, wait until the container is running"
    )]
    Restarting(String),
    /// `ps` cannot be run.
    #[error("cannot run `ps`")]
    Spawn(#[source] std::io::Error),
    /// `ps` failed; the first line of its stderr.
    #[error("Error response from daemon: ps: {0}")]
    Failed(String),
}

/// What this module's functions return.
pub type Result<T> = std::result::Result<T, TopError>;

/// What to list (`top`'s arguments).
#[derive(Debug, Clone, Default)]
pub struct TopOptions {
    /// The container's name or ID.
    pub container: String,
    /// `ps`'s options; empty for `-ef`.
    pub ps_args: Vec<String>,
}

/// `ps`'s titles and the container's rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Processes {
    /// The header's words.
    pub titles: Vec<String>,
    /// One row per process (or thread line), the last cell the rest of the line.
    pub rows: Vec<Vec<String>>,
}

/// moby's `validatePSArgs`: `-o x=PID…` would rename the PID column it looks for.
///
/// # Errors
/// `specifying "K=V" is not allowed` for a key other than `pid`.
pub fn validate_ps_args(args: &str) -> std::result::Result<(), PsError> {
    // Equivalent of the regexp `\s+([^\s]*)=\s*(PID[^\s]*)`.
    let words: Vec<&str> = args.split_ascii_whitespace().collect();
    for (i, w) in words.iter().enumerate() {
        if i == 0 && !args.starts_with(|c: char| c.is_ascii_whitespace()) {
            continue;
        }
        let Some((k, v)) = w.split_once('=') else {
            continue;
        };
        let v = if v.is_empty() {
            words.get(i + 1).copied().unwrap_or("")
        } else {
            v
        };
        if v.starts_with("PID") && k != "pid" {
            return Err(PsError::RenamedPid {
                key: k.to_owned(),
                value: v.to_owned(),
            });
        }
    }
    Ok(())
}

/// `ps`'s output as titles and rows, keeping the rows of `pids` (moby's `parsePSOutput`):
/// lines whose PID is `-` (threads with `m`) follow the process above them; the last column
/// takes the rest of the line.
///
/// # Errors
/// No `PID` column, or a PID that is not a number.
pub fn parse_ps(output: &str, pids: &[i32]) -> std::result::Result<Processes, PsError> {
    let mut lines = output.split('\n');
    let titles: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split_ascii_whitespace()
        .map(str::to_owned)
        .collect();
    let pid_index = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or(PsError::NoPidColumn)?;
    let mut rows = Vec::new();
    let mut previous_kept = false;
    for line in lines.filter(|l| !l.is_empty()) {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        let Some(pid) = fields.get(pid_index) else {
            continue;
        };
        let keep = if *pid == "-" {
            previous_kept
        } else {
            let p: i32 = pid.parse().map_err(|reason| PsError::BadPid {
                pid: (*pid).to_owned(),
                reason,
            })?;
            previous_kept = pids.contains(&p);
            previous_kept
        };
        if keep {
            let split = (titles.len() - 1).min(fields.len());
            let mut row: Vec<String> = fields[..split].iter().map(|s| (*s).to_owned()).collect();
            row.push(fields[split..].join(" "));
            rows.push(row);
        }
    }
    Ok(Processes { titles, rows })
}

/// The host PIDs of processes in the PID namespace of `init` (when the cgroup tells nothing).
fn pidns_members(init: i32) -> Vec<i32> {
    let ns = |pid: &str| std::fs::read_link(Path::new("/proc").join(pid).join("ns/pid")).ok();
    let Some(want) = ns(&init.to_string()) else {
        return Vec::new();
    };
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid: i32 = name.parse().ok()?;
            (ns(&name).as_ref() == Some(&want)).then_some(pid)
        })
        .collect()
}

/// The container's processes: its cgroup's, else its init's PID namespace's.
fn container_pids(id: &str, init: i32) -> Vec<i32> {
    let from_cgroup = super::cgroup::manager(id)
        .ok()
        .and_then(|m| m.procs().ok())
        .unwrap_or_default();
    if from_cgroup.is_empty() {
        pidns_members(init)
    } else {
        from_cgroup
    }
}

/// Lists the container's processes.
///
/// # Errors
/// No such container, not running, bad `ps` options, `ps` failed.
pub fn top(data_root: &Path, opts: &TopOptions) -> Result<Processes> {
    let ps_args = if opts.ps_args.is_empty() {
        "-ef".to_owned()
    } else {
        opts.ps_args.join(" ")
    };
    validate_ps_args(&ps_args).map_err(TopError::Ps)?;
    let (_, state) = state::find(data_root, &opts.container)?;
    let init = state.init.filter(|i| i.alive());
    let Some(init) = init.filter(|_| state.status() == Status::Running) else {
        return Err(TopError::NotRunning(state.id));
    };
    if state.restarting {
        return Err(TopError::Restarting(state.id));
    }
    let pids = container_pids(&state.id, init.pid);
    let words: Vec<&str> = ps_args.split(' ').collect();
    let quick = format!(
        "-q{}",
        pids.iter()
            .map(i32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    );
    let ps = |quick: Option<&str>| {
        std::process::Command::new("ps")
            .args(&words)
            .args(quick)
            .output()
            .map_err(TopError::Spawn)
    };
    let out = ps(Some(&quick))?;
    // Some options (such as `f`) cannot go with `q`: retry without it, as moby does.
    let out = if out.status.success() {
        out
    } else {
        let out = ps(None)?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(TopError::Failed(
                err.lines().next().unwrap_or("exit status 1").to_owned(),
            ));
        }
        out
    };
    parse_ps(&String::from_utf8_lossy(&out.stdout), &pids).map_err(TopError::Ps)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PS: &str = "\
UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 07:00 ?        00:00:01 /sbin/init
root        4242    4240  0 07:01 ?        00:00:00 sleep 300
root        4243    4242  0 07:01 ?        00:00:00 sh -c echo hi; sleep 5
";

    #[test]
    fn keeps_the_containers_rows_with_the_whole_command() {
        let Processes { titles, rows } = parse_ps(PS, &[4242, 4243]).unwrap();
        assert_eq!(
            titles,
            ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
        );
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0][1], "4242");
        assert_eq!(rows[0][7], "sleep 300");
        assert_eq!(rows[1][7], "sh -c echo hi; sleep 5");
    }

    #[test]
    fn thread_lines_follow_their_process() {
        let out = "PID TTY TIME CMD\n10 ? 0:00 app\n- - 0:00 -\n11 ? 0:00 other\n- - 0:00 -\n";
        let rows = parse_ps(out, &[10]).unwrap().rows;
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1][0], "-");
    }

    #[test]
    fn bad_ps_output_is_an_error() {
        let e = parse_ps("USER CMD\nroot x\n", &[1])
            .unwrap_err()
            .to_string();
        assert_eq!(e, "Couldn't find PID field in ps output");
        let e = parse_ps("PID CMD\nx y\n", &[1]).unwrap_err().to_string();
        assert!(e.starts_with("Unexpected pid 'x'"), "{e}");
    }

    #[test]
    fn pid_cannot_be_renamed() {
        assert!(validate_ps_args("-ef").is_ok());
        assert!(validate_ps_args("-o pid=PID,comm").is_ok());
        assert_eq!(
            validate_ps_args("-o user=PIDX").unwrap_err().to_string(),
            "specifying \"user=PIDX\" is not allowed"
        );
    }
}
