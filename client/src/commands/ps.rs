//! `berth ps`: lists [`crate::container::ps`]'s containers (running ones, `-a` all, `-n`/`-l`
//! the last created, `--filter` as [`crate::container::ps_filter`] describes) in a table or a
//! `--format` template.

use crate::cli::PsArgs;
use crate::container::ps::{self, PsOptions};
use crate::container::{State, Status};
use crate::context::Ctx;
use crate::format::{self, Row};

const COLUMNS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("RunningFor", "CREATED"),
    ("Status", "STATUS"),
    ("Ports", "PORTS"),
    ("Names", "NAMES"),
];

/// Docker's `Ellipsis`: at most `max` characters, the last one `…` when cut.
#[must_use]
pub fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The COMMAND column: the argv joined by spaces, cut to 20 characters unless `--no-trunc`,
/// quoted like Go's `strconv.Quote`.
#[must_use]
pub fn command_column(argv: &[String], trunc: bool) -> String {
    let joined = argv.join(" ");
    let cmd = if trunc { ellipsis(&joined, 20) } else { joined };
    serde_json::to_string(&cmd).unwrap_or_default()
}

fn row(s: &State, trunc: bool) -> Row {
    let mut row = Row::new();
    let id = if trunc {
        s.short_id().to_owned()
    } else {
        s.id.clone()
    };
    row.insert("ID", id);
    let image = if s.image_name.is_empty() {
        super::short_id(&s.image)
    } else {
        s.image_name.clone()
    };
    row.insert("Image", image);
    row.insert("Command", command_column(&s.command, trunc));
    row.insert("CreatedAt", s.created.clone());
    row.insert("RunningFor", format::since(Some(&s.created)));
    row.insert("Status", s.status_text(chrono::Utc::now()));
    row.insert("State", s.status().to_string());
    let ports = match (&s.network, s.status()) {
        (Some(n), Status::Running) => crate::network::ps_ports(n),
        _ => String::new(),
    };
    row.insert("Ports", ports);
    row.insert("Names", s.name.clone());
    row
}

/// Lists containers.
///
/// # Errors
/// A bad `--format` template.
pub fn run(ctx: &Ctx, args: &PsArgs) -> anyhow::Result<()> {
    let opts = PsOptions {
        all: args.all,
        last: args.last,
        latest: args.latest,
        filters: args.filter.clone(),
    };
    let chosen = ps::ps(&ctx.store, &opts)?;
    let trunc = !args.no_trunc;
    if args.quiet {
        let ids: String = chosen
            .iter()
            .map(|s| row(s, trunc)["ID"].clone() + "\n")
            .collect();
        if !ids.is_empty() {
            ctx.printer.data(&ids);
        }
        return Ok(());
    }
    let rows: Vec<Row> = chosen.iter().map(|s| row(s, trunc)).collect();
    let out = format::render(&rows, COLUMNS, args.format.as_deref()).map_err(anyhow::Error::msg)?;
    if !out.is_empty() {
        ctx.printer.data(&out);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_quoted_and_cut_like_dockers() {
        let argv: Vec<String> = ["sh", "-c", "echo hi; echo err >&2; sleep 30"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert_eq!(command_column(&argv, true), "\"sh -c echo hi; echo…\"");
        assert_eq!(
            command_column(&argv, false),
            "\"sh -c echo hi; echo err >&2; sleep 30\""
        );
        assert_eq!(command_column(&["top".into()], true), "\"top\"");
        assert_eq!(ellipsis("abc", 3), "abc");
        assert_eq!(ellipsis("abcd", 3), "ab…");
    }
}
