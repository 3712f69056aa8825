//! `logs`: reads a container's json-file log ([`super::logs`]) for `logs`: `tail` picks the
//! last lines, then `since`/`until` (Docker's times, [`crate::timestamp`]) bound them, as
//! Docker's json-file reader does; with `follow` it reads on until the container exits or
//! `until` passes. The caller gets the entries in batches and prints them.
//!
//! May call [`super::state`], [`super::logs`] and [`crate::timestamp`].

use std::io::{Read as _, Seek as _};
use std::path::Path;

use chrono::{DateTime, Utc};

use super::logs::{self, LogEntry};
use super::state::{self, StateError, Status};

/// The log could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadLogsError {
    /// No such container.
    #[error(transparent)]
    State(#[from] StateError),
    /// `--since` or `--until` is no time Docker takes.
    #[error("invalid value for \"{flag}\": {reason}")]
    Time {
        /// `since` or `until`.
        flag: &'static str,
        /// Why, as [`crate::timestamp::parse`] says.
        reason: String,
    },
    /// Reading the log, or the caller's sink, failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// What this module's functions return.
pub type Result<T> = std::result::Result<T, ReadLogsError>;

/// Which entries (`logs`'s flags).
#[derive(Debug, Clone, Default)]
pub struct ReadLogsOptions {
    /// The container's name or ID.
    pub container: String,
    /// `-f`.
    pub follow: bool,
    /// `--tail`: a number or `all`.
    pub tail: String,
    /// `--since`.
    pub since: Option<String>,
    /// `--until`.
    pub until: Option<String>,
}

/// Reads the log and hands `sink` its entries, batch by batch, until the log ends (or, with
/// `follow`, the container exits or `until` passes).
///
/// # Errors
/// No such container, a bad `since`/`until`, I/O, or what `sink` returns.
pub fn read_logs(
    data_root: &Path,
    opts: &ReadLogsOptions,
    mut sink: impl FnMut(&[LogEntry]) -> std::io::Result<()>,
) -> Result<()> {
    let (dir, state) = state::find(data_root, &opts.container)?;
    let path = logs::log_path(&dir, &state.id);
    let mut tail = logs::parse_tail(&opts.tail);
    let now = chrono::Utc::now();
    let time = |flag: &'static str, v: &Option<String>| {
        v.as_deref()
            .map(|v| crate::timestamp::parse(v, now))
            .transpose()
            .map_err(|reason| ReadLogsError::Time { flag, reason })
    };
    let since = time("since", &opts.since)?;
    let until = time("until", &opts.until)?;
    let mut pos = 0u64;
    loop {
        // Read the status first: whatever the container wrote before exiting is then in the
        // file when we read it.
        let running = state::load(&dir).is_ok_and(|s| s.status() == Status::Running);
        let mut data = Vec::new();
        if let Ok(mut f) = std::fs::File::open(&path) {
            f.seek(std::io::SeekFrom::Start(pos))?;
            f.read_to_end(&mut data)?;
        }
        // Only whole lines; a line being written is read next time.
        let whole = data.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        pos += whole as u64;
        let entries = logs::parse_log(&String::from_utf8_lossy(&data[..whole]));
        let (chosen, past_until) = within(logs::tail(&entries, tail.take()), since, until);
        sink(&chosen)?;
        let until_passed = until.is_some_and(|u| chrono::Utc::now() > u);
        if !opts.follow || !running || past_until || until_passed {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The entries logged at `since` or later, up to `until` (both optional); true when an entry
/// after `until` was reached.
#[must_use]
pub fn within(
    entries: &[LogEntry],
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> (Vec<LogEntry>, bool) {
    let mut out = Vec::new();
    for e in entries {
        let Ok(t) = DateTime::parse_from_rfc3339(&e.time) else {
            continue;
        };
        if since.is_some_and(|s| t < s) {
            continue;
        }
        if until.is_some_and(|u| t > u) {
            return (out, true);
        }
        out.push(e.clone());
    }
    (out, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn since_and_until_bound_the_entries() {
        let entry = |log: &str, time: &str| LogEntry {
            log: log.into(),
            stream: "stdout".into(),
            time: time.into(),
        };
        let e = vec![
            entry("a", "2024-01-01T00:00:01Z"),
            entry("b", "2024-01-01T00:00:02.5Z"),
            entry("c", "2024-01-01T00:00:04Z"),
        ];
        let logs = |v: &[LogEntry]| v.iter().map(|e| e.log.clone()).collect::<String>();
        let (all, stop) = within(&e, None, None);
        assert_eq!((logs(&all).as_str(), stop), ("abc", false));
        let (x, stop) = within(&e, Some(at("2024-01-01T00:00:02Z")), None);
        assert_eq!((logs(&x).as_str(), stop), ("bc", false));
        let (x, stop) = within(&e, None, Some(at("2024-01-01T00:00:03Z")));
        assert_eq!((logs(&x).as_str(), stop), ("ab", true));
        let (x, _) = within(
            &e,
            Some(at("2024-01-01T00:00:02.5Z")),
            Some(at("2024-01-01T00:00:02.5Z")),
        );
        assert_eq!(logs(&x), "b");
    }
}
