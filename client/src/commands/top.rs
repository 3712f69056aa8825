//! `berth top CONTAINER [ps OPTIONS]` (also `container top`): [`crate::container::top`]'s
//! processes, printed under `ps`'s own header in `docker top`'s table.

use std::fmt::Write as _;

use crate::cli::TopArgs;
use crate::container::top::{self, Processes, TopOptions};
use crate::context::Ctx;

/// Go's `tabwriter.NewWriter(out, 20, 1, 3, ' ', 0)` as `docker top` uses it: each column but
/// the last as wide as its widest cell plus 3, at least 20.
#[must_use]
pub fn table(titles: &[String], rows: &[Vec<String>]) -> String {
    let all: Vec<&[String]> = std::iter::once(titles)
        .chain(rows.iter().map(Vec::as_slice))
        .collect();
    let ncol = all.iter().map(|r| r.len()).max().unwrap_or(0);
    let mut width = vec![0usize; ncol];
    for r in &all {
        for (i, c) in r.iter().enumerate().take(r.len().saturating_sub(1)) {
            width[i] = width[i].max((c.chars().count() + 3).max(20));
        }
    }
    let mut out = String::new();
    for r in all {
        for (i, c) in r.iter().enumerate() {
            if i + 1 < r.len() {
                let _ = write!(out, "{c:<w$}", w = width[i]);
            } else {
                out.push_str(c);
            }
        }
        out.push('\n');
    }
    out
}

/// Prints the container's processes.
///
/// # Errors
/// No such container, not running, bad `ps` options.
pub fn run(ctx: &Ctx, args: &TopArgs) -> anyhow::Result<()> {
    let opts = TopOptions {
        container: args.container.clone(),
        ps_args: args.ps_args.clone(),
    };
    let Processes { titles, rows } = top::top(ctx.store.root(), &opts)?;
    ctx.printer.data(&table(&titles, &rows));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_dockers_tabwriter() {
        let titles: Vec<String> = ["UID", "PID", "CMD"].map(String::from).to_vec();
        let rows = vec![["root", "42", "sleep 300"].map(String::from).to_vec()];
        assert_eq!(
            table(&titles, &rows),
            format!(
                "{:<20}{:<20}CMD\n{:<20}{:<20}sleep 300\n",
                "UID", "PID", "root", "42"
            )
        );
    }
}
