//! `berth logs`: [`crate::container::read_logs`]'s entries of a container's json-file log,
//! stdout lines to stdout and stderr lines to stderr; `-t` timestamps, `--tail N|all`, `-f`
//! follows until the container exits.
//! `--since`/`--until` take Docker's times ([`crate::timestamp`]) and, as Docker's json-file
//! reader, apply after `--tail` picks the last lines; `-f --until` stops at that time.

use std::io::Write as _;

use crate::cli::LogsArgs;
use crate::container::read_logs::{self, ReadLogsOptions};
use crate::container::{self, LogEntry};
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

/// Prints the logs.
///
/// # Errors
/// No such container, or I/O.
pub fn run(ctx: &Ctx, args: &LogsArgs) -> anyhow::Result<()> {
    let opts = ReadLogsOptions {
        container: args.container.clone(),
        follow: args.follow,
        tail: args.tail.clone(),
        since: args.since.clone(),
        until: args.until.clone(),
    };
    read_logs::read_logs(ctx.store.root(), &opts, |entries| {
        print(entries, args.timestamps)
    })?;
    Ok(())
}
