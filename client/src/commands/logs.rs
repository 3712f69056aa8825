//! `berth logs`: a container's json-file log, stdout lines to stdout and stderr lines to
//! stderr; `-t` timestamps, `--tail N|all`, `-f` follows until the container exits.
//! `--since`/`--until` take Docker's times ([`crate::timestamp`]) and, as Docker's json-file
//! reader, apply after `--tail` picks the last lines; `-f --until` stops at that time.

use std::io::{Read as _, Seek as _, Write as _};

use chrono::{DateTime, Utc};

use crate::cli::LogsArgs;
use crate::container::{self, LogEntry, Status};
use crate::context::Ctx;

fn print(entries: &[LogEntry], timestamps: bool) -> std::io::Result<()> {
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    for e in entries {
        let w: &mut dyn std::io::Write = if e.stream == "stderr" {
            &mut err
        } else {
            &mut out
        };
        if timestamps {
            write!(w, "{} ", container::padded_time(&e.time))?;
        }
        w.write_all(e.log.as_bytes())?;
    }
    out.flush()?;
    err.flush()
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

/// Prints the logs.
///
/// # Errors
/// No such container, or I/O.
pub fn run(ctx: &Ctx, args: &LogsArgs) -> anyhow::Result<()> {
    let (dir, state) = container::find(ctx.store.root(), &args.container)?;
    let path = container::log_path(&dir, &state.id);
    let mut tail = container::parse_tail(&args.tail);
    let now = chrono::Utc::now();
    let time = |flag: &str, v: &Option<String>| {
        v.as_deref()
            .map(|v| crate::timestamp::parse(v, now))
            .transpose()
            .map_err(|e| anyhow::anyhow!("invalid value for \"{flag}\": {e}"))
    };
    let since = time("since", &args.since)?;
    let until = time("until", &args.until)?;
    let mut pos = 0u64;
    loop {
        // Read the status first: whatever the container wrote before exiting is then in the
        // file when we read it.
        let running = container::load(&dir).is_ok_and(|s| s.status() == Status::Running);
        let mut data = Vec::new();
        if let Ok(mut f) = std::fs::File::open(&path) {
            f.seek(std::io::SeekFrom::Start(pos))?;
            f.read_to_end(&mut data)?;
        }
        // Only whole lines; a line being written is read next time.
        let whole = data.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        pos += u64::try_from(whole)?;
        let entries = container::parse_log(&String::from_utf8_lossy(&data[..whole]));
        let (chosen, past_until) = within(container::tail(&entries, tail.take()), since, until);
        print(&chosen, args.timestamps)?;
        let until_passed = until.is_some_and(|u| chrono::Utc::now() > u);
        if !args.follow || !running || past_until || until_passed {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
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
