//! `logs`: reads a container's json-file log ([`super::logs`]) for `logs`, its rotated files
//! first ([`super::log_config::rotated`]): `tail` picks the last lines, then `since`/`until`
//! (Docker's times, [`crate::timestamp`]) bound them, as Docker's json-file reader does; with
//! `follow` it reads on, across rotations, until the container exits or `until` passes. The
//! caller gets the entries in batches and prints them. Memory stays bounded whatever the log's
//! size: the files are read in chunks, and `--tail N` keeps N entries.
//!
//! May call [`super::state`], [`super::logs`], [`super::log_config`] and [`crate::timestamp`].

use std::collections::VecDeque;
use std::io::{Read as _, Seek as _};
use std::os::unix::fs::MetadataExt as _;
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
    /// The container logs with `--log-driver none`.
    #[error("Error response from daemon: configured logging driver does not support reading")]
    NotReadable,
    /// Reading the log, or the caller's sink, failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// How much of a log file is read at once.
const CHUNK: usize = 1 << 20;

/// The entries read so far and where they go: held back for `--tail` until the log as it was
/// has been read, filtered by `since`/`until`, then handed to the sink.
struct Feed<'a, S> {
    tail: Option<VecDeque<LogEntry>>,
    tail_len: usize,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    past_until: bool,
    sink: &'a mut S,
}

impl<S: FnMut(&[LogEntry]) -> std::io::Result<()>> Feed<'_, S> {
    fn push(&mut self, entries: Vec<LogEntry>) -> std::io::Result<()> {
        if let Some(ring) = self.tail.as_mut() {
            for e in entries {
                if ring.len() == self.tail_len {
                    ring.pop_front();
                }
                if self.tail_len > 0 {
                    ring.push_back(e);
                }
            }
            return Ok(());
        }
        self.emit(&entries)
    }

    fn emit(&mut self, entries: &[LogEntry]) -> std::io::Result<()> {
        let (chosen, past) = within(entries, self.since, self.until);
        self.past_until |= past;
        (self.sink)(&chosen)
    }

    /// The log as it was when `logs` started has been read: the last `tail` entries go out.
    fn end_of_history(&mut self) -> std::io::Result<()> {
        if let Some(ring) = self.tail.take() {
            let entries: Vec<LogEntry> = ring.into();
            self.emit(&entries)?;
        }
        Ok(())
    }
}

/// Reads `f` from where it is to its end in chunks, pushing whole lines; a line being written
/// stays in `carry` for the next read.
fn drain<S: FnMut(&[LogEntry]) -> std::io::Result<()>>(
    f: &mut std::fs::File,
    carry: &mut Vec<u8>,
    feed: &mut Feed<'_, S>,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        carry.extend_from_slice(&buf[..n]);
        let whole = carry.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let entries = logs::parse_log(&String::from_utf8_lossy(&carry[..whole]));
        carry.drain(..whole);
        // No entry is this long (the writer splits at 16 KiB): not a log line, dropped.
        if carry.len() > CHUNK {
            carry.clear();
        }
        feed.push(entries)?;
    }
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
    if !state.log_config.readable() {
        return Err(ReadLogsError::NotReadable);
    }
    let path = logs::log_path(&dir, &state.id);
    let tail = logs::parse_tail(&opts.tail);
    let now = chrono::Utc::now();
    let time = |flag: &'static str, v: &Option<String>| {
        v.as_deref()
            .map(|v| crate::timestamp::parse(v, now))
            .transpose()
            .map_err(|reason| ReadLogsError::Time { flag, reason })
    };
    let mut feed = Feed {
        tail: tail.map(|n| VecDeque::with_capacity(n.min(4096))),
        tail_len: tail.unwrap_or(0),
        since: time("since", &opts.since)?,
        until: time("until", &opts.until)?,
        past_until: false,
        sink: &mut sink,
    };
    // Read the status first: whatever the container wrote before exiting is then in the files
    // when we read them.
    let mut running = state::load(&dir).is_ok_and(|s| s.status() == Status::Running);
    // Every file opened before any is read: an open file follows its data through the renames
    // of a rotation meanwhile, where a name would then hold the next file's.
    let rotated: Vec<std::fs::File> = super::log_config::rotated(&path)
        .iter()
        .filter_map(|old| std::fs::File::open(old).ok())
        .collect();
    let mut current = std::fs::File::open(&path).ok();
    for mut f in rotated {
        drain(&mut f, &mut Vec::new(), &mut feed)?;
    }
    let mut carry = Vec::new();
    if let Some(f) = current.as_mut() {
        drain(f, &mut carry, &mut feed)?;
    }
    feed.end_of_history()?;
    loop {
        let until_passed = feed.until.is_some_and(|u| chrono::Utc::now() > u);
        if !opts.follow || !running || feed.past_until || until_passed {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        running = state::load(&dir).is_ok_and(|s| s.status() == Status::Running);
        // Which file the name holds, looked at before the read: once it is another, the writer
        // has moved on, so the read below takes the old file's last lines.
        let theirs = std::fs::metadata(&path).ok().map(|m| m.ino());
        if let Some(f) = current.as_mut() {
            drain(f, &mut carry, &mut feed)?;
        }
        // Emptied (`max-file=1`): from its start again.
        if let Some(f) = current.as_mut() {
            let len = f.metadata().map_or(0, |m| m.len());
            if f.stream_position().is_ok_and(|pos| pos > len) {
                f.seek(std::io::SeekFrom::Start(0))?;
                carry.clear();
                drain(f, &mut carry, &mut feed)?;
            }
        }
        // Rotated since (or created): the rest of the old file was read above; on to the new.
        let ours = current
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map(|m| m.ino());
        if theirs.is_some() && theirs != ours {
            current = std::fs::File::open(&path).ok();
            carry.clear();
            if let Some(f) = current.as_mut() {
                drain(f, &mut carry, &mut feed)?;
            }
        }
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
