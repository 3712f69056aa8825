//! What `/proc` tells about host processes: [`ProcessId`] (a PID with its start time, so a
//! reused PID is never mistaken for the process) and mount points. Calls nothing else in the
//! crate, so both the container layer and [`crate::network`] may use it.

use serde::{Deserialize, Serialize};

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

/// Whether `path` is a mount point in this process's mount namespace (`/proc/self/mounts`).
#[must_use]
pub fn is_mount_point(path: &std::path::Path) -> bool {
    let target = path.display().to_string();
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(1) == Some(&target))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_survive_odd_command_names() {
        let line = "42 (a b) c)) S 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 12345 0 0";
        assert_eq!(parse_stat(line), Some(('S', 12345)));
        assert_eq!(parse_stat("garbage"), None);
    }
}
