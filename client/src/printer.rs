//! Where output goes. stdout carries only data a user may pipe (tables, IDs, digests, tar
//! streams); messages and progress go to stderr. Progress bars are drawn only on a terminal and
//! never with `--quiet` or `BERTH_NO_PROGRESS`.

use std::io::{IsTerminal, Write};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Output sink for commands.
#[derive(Debug, Clone)]
pub struct Printer {
    quiet: bool,
    debug: bool,
    bars: bool,
}

impl Printer {
    /// A printer; `quiet` suppresses messages (not data), `debug` enables debug lines.
    #[must_use]
    pub fn new(quiet: bool, debug: bool) -> Self {
        let bars = !quiet
            && std::io::stderr().is_terminal()
            && std::env::var_os("BERTH_NO_PROGRESS").is_none();
        Self { quiet, debug, bars }
    }

    /// The same printer with `quiet` set.
    #[must_use]
    pub fn quiet(&self, quiet: bool) -> Self {
        let mut p = self.clone();
        p.quiet |= quiet;
        p.bars &= !quiet;
        p
    }

    /// True when messages are suppressed.
    #[must_use]
    pub fn is_quiet(&self) -> bool {
        self.quiet
    }

    /// Whether `--debug` is on.
    #[must_use]
    pub fn is_debug(&self) -> bool {
        self.debug
    }

    /// Data for stdout (always printed).
    #[allow(clippy::print_stdout)]
    pub fn data(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        if !text.ends_with('\n') {
            let _ = out.write_all(b"\n");
        }
    }

    /// A status message for stderr (dropped when quiet).
    #[allow(clippy::print_stderr)]
    pub fn status(&self, text: &str) {
        if !self.quiet {
            eprintln!("{text}");
        }
    }

    /// A warning (always shown).
    #[allow(clippy::print_stderr)]
    pub fn warn(&self, text: &str) {
        eprintln!("warning: {text}");
    }

    /// A debug line (only with `--debug`).
    #[allow(clippy::print_stderr)]
    pub fn debug(&self, text: &str) {
        if self.debug {
            eprintln!("debug: {text}");
        }
    }

    /// A group of per-layer progress lines, hidden unless drawing is enabled.
    #[must_use]
    pub fn multi(&self) -> MultiProgress {
        if self.bars {
            MultiProgress::with_draw_target(ProgressDrawTarget::stderr())
        } else {
            MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
        }
    }

    /// True when bars are drawn; otherwise commands print plain status lines instead.
    #[must_use]
    pub fn draws_bars(&self) -> bool {
        self.bars
    }
}

/// Docker's per-layer line: `<short id>: <status> [bar] <done>/<total>`.
#[must_use]
pub fn layer_bar(multi: &MultiProgress, short_id: &str, total: u64) -> ProgressBar {
    let bar = multi.add(ProgressBar::new(total));
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix}: {msg:<16} {bar:40.cyan/blue} {bytes}/{total_bytes}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(short_id.to_owned());
    bar
}
