//! `berth stats [-a] [--no-stream] [--no-trunc] [--format] [CONTAINER…]` (also
//! `container stats`): Docker's resource usage table of [`crate::container::stats`]'s readings,
//! a second apart (so `CPU %` covers that second). Without `--no-stream` the table is redrawn
//! every second until interrupted.

use std::io::Write as _;
use std::time::Duration;

use crate::cli::StatsArgs;
use crate::container::stats::{Sample, Sampler, StatsOptions};
use crate::container::State;
use crate::context::Ctx;
use crate::format::{self, human_size, Row};

const COLUMNS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Name", "NAME"),
    ("CPUPerc", "CPU %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("MemPerc", "MEM %"),
    ("NetIO", "NET I/O"),
    ("BlockIO", "BLOCK I/O"),
    ("PIDs", "PIDS"),
    ("Container", "CONTAINER"),
];

/// The default `--format`: every column but `CONTAINER`.
const DEFAULT_FORMAT: &str = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

/// go-units' `BytesSize`: `%.4g` with binary units (`196KiB`, `5.629MiB`, `1.952GiB`).
#[must_use]
pub fn bytes_size(bytes: f64) -> String {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut v = bytes;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    format!("{}{}", sig4(v), UNITS[i])
}

/// Go's `%.4g` for values in [0, 1024): four significant digits, trailing zeros dropped.
fn sig4(v: f64) -> String {
    let decimals = match v {
        v if v >= 1000.0 => 0,
        v if v >= 100.0 => 1,
        v if v >= 10.0 => 2,
        _ => 3,
    };
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// The row Docker prints for a container: `shown` is the name or ID the user gave.
#[must_use]
#[allow(clippy::cast_precision_loss)]
pub fn row(state: &State, shown: &str, now: Sample, cpu_percent: f64, trunc: bool) -> Row {
    let mut r = Row::new();
    r.insert(
        "ID",
        if trunc {
            state.short_id().to_owned()
        } else {
            state.id.clone()
        },
    );
    r.insert("Name", state.name.clone());
    r.insert("Container", shown.to_owned());
    r.insert("CPUPerc", format!("{cpu_percent:.2}%"));
    r.insert(
        "MemUsage",
        format!(
            "{} / {}",
            bytes_size(now.memory as f64),
            bytes_size(now.limit as f64)
        ),
    );
    let mem_percent = if now.limit == 0 {
        0.0
    } else {
        now.memory as f64 / now.limit as f64 * 100.0
    };
    r.insert("MemPerc", format!("{mem_percent:.2}%"));
    r.insert(
        "NetIO",
        format!("{} / {}", human_size(now.net.0), human_size(now.net.1)),
    );
    r.insert(
        "BlockIO",
        format!("{} / {}", human_size(now.block.0), human_size(now.block.1)),
    );
    r.insert("PIDs", now.pids.to_string());
    r
}

/// Shows the statistics once (`--no-stream`) or every second.
///
/// # Errors
/// No such container; a bad `--format`.
pub fn run(ctx: &Ctx, args: &StatsArgs) -> anyhow::Result<()> {
    let format = args.format.as_deref().unwrap_or(DEFAULT_FORMAT);
    let format = if format == "table" {
        DEFAULT_FORMAT
    } else {
        format
    };
    let opts = StatsOptions {
        containers: args.containers.clone(),
        all: args.all,
    };
    let mut sampler = Sampler::start(ctx.store.root(), opts)?;
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let rows: Vec<Row> = sampler
            .read()?
            .iter()
            .map(|u| row(&u.state, &u.shown, u.sample, u.cpu_percent, !args.no_trunc))
            .collect();
        let out = format::render(&rows, COLUMNS, Some(format)).map_err(anyhow::Error::msg)?;
        if args.no_stream {
            ctx.printer.data(&out);
            return Ok(());
        }
        let mut stdout = std::io::stdout().lock();
        // Docker's screen refresh: clear, cursor home, the table.
        write!(stdout, "\x1b[2J\x1b[H{out}")?;
        stdout.flush()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[rstest::rstest]
    #[case(0.0, "0B")]
    #[case(200_704.0, "196KiB")]
    #[case(5_902_000.0, "5.629MiB")]
    #[case(67_108_864.0, "64MiB")]
    #[case(2_096_000_000.0, "1.952GiB")]
    #[case(1023.0, "1023B")]
    fn binary_sizes_like_go_units(#[case] n: f64, #[case] s: &str) {
        assert_eq!(bytes_size(n), s);
    }

    #[test]
    fn rows_use_dockers_units() {
        let s = State {
            id: "0123456789abcdef".into(),
            name: "web".into(),
            ..State::default()
        };
        let now = Sample {
            cpu: 0,
            memory: 1 << 20,
            limit: 64 << 20,
            net: (2480, 0),
            block: (4_110_000, 0),
            pids: 2,
        };
        let r = row(&s, "web", now, 0.284, true);
        assert_eq!(r["ID"], "0123456789ab");
        assert_eq!(r["CPUPerc"], "0.28%");
        assert_eq!(r["MemUsage"], "1MiB / 64MiB");
        assert_eq!(r["MemPerc"], "1.56%");
        assert_eq!(r["NetIO"], "2.48kB / 0B");
        assert_eq!(r["BlockIO"], "4.11MB / 0B");
        assert_eq!(r["PIDs"], "2");
        let out = format::render(&[r], COLUMNS, Some(DEFAULT_FORMAT)).unwrap();
        assert!(
            out.starts_with("CONTAINER ID   NAME   CPU %   MEM USAGE / LIMIT   MEM %   NET I/O"),
            "{out}"
        );
    }
}
