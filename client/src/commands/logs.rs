//! `berth logs`: a container's json-file log, stdout lines to stdout and stderr lines to
//! stderr; `-t` timestamps, `--tail N|all`, `-f` follows until the container exits.

use std::io::{Read as _, Seek as _, Write as _};

use crate::cli::LogsArgs;
use crate::containers::{self, LogEntry, Status};
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
            write!(w, "{} ", containers::padded_time(&e.time))?;
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
    let (dir, state) = containers::find(ctx.store.root(), &args.container)?;
    let path = containers::log_path(&dir, &state.id);
    let mut tail = containers::parse_tail(&args.tail);
    let mut pos = 0u64;
    loop {
        // Read the status first: whatever the container wrote before exiting is then in the
        // file when we read it.
        let running = containers::load(&dir).is_ok_and(|s| s.status() == Status::Running);
        let mut data = Vec::new();
        if let Ok(mut f) = std::fs::File::open(&path) {
            f.seek(std::io::SeekFrom::Start(pos))?;
            f.read_to_end(&mut data)?;
        }
        // Only whole lines; a line being written is read next time.
        let whole = data.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        pos += u64::try_from(whole)?;
        let entries = containers::parse_log(&String::from_utf8_lossy(&data[..whole]));
        print(containers::tail(&entries, tail.take()), args.timestamps)?;
        if !args.follow || !running {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
