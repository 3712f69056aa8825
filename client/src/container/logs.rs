//! A container's json-file log (`<dir>/<id>-json.log`, Docker's format): its path, parsing,
//! `--tail`, `-t` timestamps, and the line logger the owner process writes the container's
//! output with (through [`super::log_config::LogWriter`], which rotates): from a pipe or a pty
//! ([`copy_log`]), or as a sink of the foreground relay ([`crate::relay::Sink`]).
//!
//! May call [`crate::timestamp`], [`super::log_config`] and [`crate::relay`] (its `Sink`).

use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::timestamp::now_rfc3339;

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

/// The longest entry: a longer line is logged in pieces of this size (Docker's 16 KiB), so
/// a container that never writes a newline costs the monitor no more memory than this.
pub const MAX_ENTRY: usize = 16 * 1024;

/// Turns a stream's output, chunk by chunk, into json-file entries: one per line, a line
/// longer than [`MAX_ENTRY`] in several (only the last with the `\n`: Docker's partial
/// messages, which `logs` prints back to back), the rest of an unfinished line at [`Self::end`].
pub struct LineLogger {
    stream: &'static str,
    pending: Vec<u8>,
    log: std::sync::Arc<std::sync::Mutex<super::log_config::LogWriter>>,
    /// False with the `none` driver: lines are then not even cut.
    keeps: bool,
}

impl LineLogger {
    /// Entries of `stream` (`stdout` or `stderr`) into `log`.
    #[must_use]
    pub fn new(
        stream: &'static str,
        log: std::sync::Arc<std::sync::Mutex<super::log_config::LogWriter>>,
    ) -> Self {
        let keeps = log.lock().map_or(true, |l| l.keeps());
        Self {
            stream,
            pending: Vec::new(),
            log,
            keeps,
        }
    }

    /// Logs the whole lines (and full-size pieces) of what came so far.
    ///
    /// # Errors
    /// Writing the log failed.
    pub fn feed(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if !self.keeps {
            return Ok(());
        }
        self.pending.extend_from_slice(bytes);
        // Entries are written from `start` on and removed once at the end, not one by one.
        let mut start = 0;
        let written = loop {
            let rest = &self.pending[start..];
            let cut = match rest.iter().take(MAX_ENTRY).position(|b| *b == b'\n') {
                Some(i) => i + 1,
                None if rest.len() >= MAX_ENTRY => MAX_ENTRY,
                None => break Ok(()),
            };
            if let Err(e) = self.write(&rest[..cut]) {
                break Err(e);
            }
            start += cut;
        };
        self.pending.drain(..start);
        written
    }

    /// Logs what is left of an unfinished line.
    ///
    /// # Errors
    /// Writing the log failed.
    pub fn end(&mut self) -> std::io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let rest = std::mem::take(&mut self.pending);
        self.write(&rest)
    }

    fn write(&self, bytes: &[u8]) -> std::io::Result<()> {
        let entry = LogEntry {
            log: String::from_utf8_lossy(bytes).into_owned(),
            stream: self.stream.to_owned(),
            time: now_rfc3339(),
        };
        let mut line = serde_json::to_vec(&entry).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.log
            .lock()
            .map_err(|_| std::io::Error::other("log lock poisoned"))?
            .write_entry(&line)
    }
}

impl crate::relay::Sink for LineLogger {
    fn chunk(&mut self, bytes: &[u8]) {
        // A log that cannot be written must not stop the container's output on the terminal.
        let _ = self.feed(bytes);
    }

    fn end(&mut self) {
        let _ = LineLogger::end(self);
    }
}

/// Appends what `from` gives until EOF to the log as `stream` entries ([`LineLogger`]).
///
/// # Errors
/// Reading or writing fails.
pub fn copy_log(
    from: impl std::io::Read,
    stream: &'static str,
    log: &std::sync::Arc<std::sync::Mutex<super::log_config::LogWriter>>,
) -> std::io::Result<()> {
    let mut from = from;
    let mut logger = LineLogger::new(stream, std::sync::Arc::clone(log));
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) => return logger.end(),
            Ok(n) => logger.feed(&buf[..n])?,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = logger.end();
                return Err(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let config = super::super::log_config::LogConfig::default();
        let writer = super::super::log_config::LogWriter::open(&path, &config).unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(writer));
        copy_log(&b"one\ntwo"[..], "stderr", &log).unwrap();
        let e = parse_log(&std::fs::read_to_string(&path).unwrap());
        assert_eq!(e.len(), 2);
        assert_eq!((e[0].log.as_str(), e[1].log.as_str()), ("one\n", "two"));
        assert!(e
            .iter()
            .all(|e| e.stream == "stderr" && e.time.ends_with('Z')));
        // A line longer than an entry is cut into entries of MAX_ENTRY bytes; joined, they are
        // the line again.
        let long = "x".repeat(MAX_ENTRY * 2 + 100) + "\n";
        copy_log(long.as_bytes(), "stdout", &log).unwrap();
        let e = parse_log(&std::fs::read_to_string(&path).unwrap());
        let parts: Vec<&str> = e[2..].iter().map(|e| e.log.as_str()).collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [MAX_ENTRY, MAX_ENTRY, 101]
        );
        assert_eq!(parts.concat(), long);
    }
}
