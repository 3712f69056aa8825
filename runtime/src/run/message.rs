//! The one message a process sends its parent about a container's start, in one encoding for
//! every pipe that carries it: init to the caller (before `execve`; a close-on-exec pipe, so
//! EOF with no message means the program runs), the monitor to `run`/`start`, a detached
//! `exec` to its caller. Written as one line, `ok` or `err CODE MESSAGE` (CODE is Docker's
//! 125/126/127).

use std::io::{BufRead, Write};

/// A start's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// The container's program runs.
    Started,
    /// It could not be started.
    Failed {
        /// Docker's exit status for the failure (125, 126, 127).
        code: i32,
        /// Why, on one line.
        message: String,
    },
}

impl Report {
    /// The line, without its newline.
    #[must_use]
    pub fn encode(&self) -> String {
        match self {
            Self::Started => "ok".into(),
            Self::Failed { code, message } => {
                format!("err {code} {}", message.replace('\n', " "))
            }
        }
    }

    /// Parses a line (trailing newline allowed); `None` when empty or not a report.
    #[must_use]
    pub fn decode(line: &str) -> Option<Self> {
        let line = line.trim_end_matches(['\n', '\r']);
        if line == "ok" {
            return Some(Self::Started);
        }
        let rest = line.strip_prefix("err ")?;
        let (code, message) = rest.split_once(' ').unwrap_or((rest, ""));
        Some(Self::Failed {
            code: code.parse().ok()?,
            message: message.to_owned(),
        })
    }

    /// Writes the line and its newline.
    ///
    /// # Errors
    /// The pipe is gone.
    pub fn write_to(&self, w: &mut impl Write) -> std::io::Result<()> {
        writeln!(w, "{}", self.encode())?;
        w.flush()
    }

    /// Reads one line; `None` at EOF or for anything that is not a report.
    pub fn read_from(r: &mut impl BufRead) -> Option<Self> {
        let mut line = String::new();
        r.read_line(&mut line).ok()?;
        Self::decode(&line)
    }
}

/// Reports the failure on the pipe and exits with its code (child side).
pub(crate) fn report_and_exit(mut pipe: std::fs::File, code: i32, message: &str) -> ! {
    let _ = Report::Failed {
        code,
        message: message.to_owned(),
    }
    .write_to(&mut pipe);
    drop(pipe);
    std::process::exit(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip() {
        for r in [
            Report::Started,
            Report::Failed {
                code: 127,
                message: "exec: \"nope\": executable file not found in $PATH".into(),
            },
            Report::Failed {
                code: 125,
                message: String::new(),
            },
        ] {
            assert_eq!(Report::decode(&r.encode()), Some(r.clone()));
            let mut buf = Vec::new();
            r.write_to(&mut buf).unwrap();
            assert_eq!(Report::read_from(&mut buf.as_slice()), Some(r));
        }
        assert_eq!(Report::decode(""), None);
        assert_eq!(Report::decode("err x y"), None);
        assert_eq!(Report::decode("started"), None);
        // A message is one line whatever it held.
        let r = Report::Failed {
            code: 1,
            message: "a\nb".into(),
        };
        assert_eq!(r.encode(), "err 1 a b");
    }
}
