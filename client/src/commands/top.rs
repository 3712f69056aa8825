//! `berth top CONTAINER [ps OPTIONS]` (also `container top`), as moby does it: run the host's
//! `ps` with the options (default `-ef`), keep the rows whose `PID` is one of the container's
//! processes (its cgroup's `cgroup.procs`, or else the processes in its init's PID namespace),
//! and print them under `ps`'s own header (`UID PID PPID C STIME TTY TIME CMD` for `-ef`).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use berth_runtime::cgroups;

use crate::cli::TopArgs;
use crate::container::{self, Status};
use crate::context::Ctx;

/// moby's `validatePSArgs`: `-o x=PID…` would rename the PID column it looks for.
///
/// # Errors
/// `specifying "K=V" is not allowed` for a key other than `pid`.
pub fn validate_ps_args(args: &str) -> anyhow::Result<()> {
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
            anyhow::bail!("specifying \"{k}={v}\" is not allowed");
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
pub fn parse_ps(output: &str, pids: &[i32]) -> anyhow::Result<(Vec<String>, Vec<Vec<String>>)> {
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
        .ok_or_else(|| anyhow::anyhow!("Couldn't find PID field in ps output"))?;
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
            let p: i32 = pid
                .parse()
                .map_err(|e| anyhow::anyhow!("Unexpected pid '{pid}': {e}"))?;
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
    Ok((titles, rows))
}

/// Go's `tabwriter.NewWriter(out, 20, 1, 3, ' ', 0)` as `docker top` uses it: each column but
/// the last as wide as its widest cell plus 3, at least 20.
#[must_use]
pub fn table(titles: &[String], rows: &[Vec<String>]) -> String {
    let all: Vec<&[String]> = std::iter::once(titles)
        .chain(rows.iter().map(Vec::as_slice))
        .collect();
    let ncol = all.iter().map(|r| r.len()).max().unwrap_or(0);
    let mut width = vec![0usize; ncol];
    for r in &all {
        for (i, c) in r.iter().enumerate().take(r.len().saturating_sub(1)) {
            width[i] = width[i].max((c.chars().count() + 3).max(20));
        }
    }
    let mut out = String::new();
    for r in all {
        for (i, c) in r.iter().enumerate() {
            if i + 1 < r.len() {
                let _ = write!(out, "{c:<w$}", w = width[i]);
            } else {
                out.push_str(c);
            }
        }
        out.push('\n');
    }
    out
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
    let from_cgroup = cgroups::detect_host()
        .ok()
        .and_then(|l| cgroups::Manager::new(&l, &format!("/berth/{id}")).ok())
        .and_then(|m| m.procs().ok())
        .unwrap_or_default();
    if from_cgroup.is_empty() {
        pidns_members(init)
    } else {
        from_cgroup
    }
}

/// Prints the container's processes.
///
/// # Errors
/// No such container, not running, bad `ps` options.
pub fn run(ctx: &Ctx, args: &TopArgs) -> anyhow::Result<()> {
    let ps_args = if args.ps_args.is_empty() {
        "-ef".to_owned()
    } else {
        args.ps_args.join(" ")
    };
    validate_ps_args(&ps_args).map_err(|e| anyhow::anyhow!("Error response from daemon: {e}"))?;
    let (_, state) = container::find(ctx.store.root(), &args.container)?;
    let init = state.init.filter(|i| i.alive());
    let Some(init) = init.filter(|_| state.status() == Status::Running) else {
        anyhow::bail!(
            "Error response from daemon: Container {} is not running",
            state.id
        );
    };
    if state.restarting {
        anyhow::bail!(
            "Error response from daemon: Container {} is restarting, wait until the container is running",
            state.id
        );
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
    let out = std::process::Command::new("ps")
        .args(&words)
        .arg(&quick)
        .output()
        .context("cannot run `ps`")?;
    // Some options (such as `f`) cannot go with `q`: retry without it, as moby does.
    let out = if out.status.success() {
        out
    } else {
        let out = std::process::Command::new("ps")
            .args(&words)
            .output()
            .context("cannot run `ps`")?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            anyhow::bail!(
                "Error response from daemon: ps: {}",
                err.lines().next().unwrap_or("exit status 1")
            );
        }
        out
    };
    let (titles, rows) = parse_ps(&String::from_utf8_lossy(&out.stdout), &pids)
        .map_err(|e| anyhow::anyhow!("Error response from daemon: {e}"))?;
    ctx.printer.data(&table(&titles, &rows));
    Ok(())
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
        let (titles, rows) = parse_ps(PS, &[4242, 4243]).unwrap();
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
        let (_, rows) = parse_ps(out, &[10]).unwrap();
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

    #[test]
    fn table_is_dockers_tabwriter() {
        let titles: Vec<String> = ["UID", "PID", "CMD"].map(String::from).to_vec();
        let rows = vec![["root", "42", "sleep 300"].map(String::from).to_vec()];
        assert_eq!(
            table(&titles, &rows),
            format!(
                "{:<20}{:<20}CMD\n{:<20}{:<20}sleep 300\n",
                "UID", "PID", "root", "42"
            )
        );
    }
}
