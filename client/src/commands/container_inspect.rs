//! `berth container inspect` (and `berth inspect` on a container): prints
//! [`crate::container::inspect`]'s documents as a JSON array or one `--format` line each.

use serde_json::Value;

use crate::cli::ContainerInspectArgs;
use crate::container::inspect::{self, InspectError, InspectOptions};
use crate::context::Ctx;
use crate::format;

/// Prints documents (a JSON array) or one `--format` line per document; `missing` are the
/// arguments nothing matched, reported after the others as Docker does.
///
/// # Errors
/// A bad template; the missing arguments.
pub fn print(
    ctx: &Ctx,
    docs: &[Value],
    format: Option<&str>,
    missing: &[String],
) -> anyhow::Result<()> {
    match format {
        Some(tpl) if tpl != "json" => {
            for d in docs {
                ctx.printer
                    .data(&format::render_value(tpl, d).map_err(anyhow::Error::msg)?);
            }
        }
        _ => ctx.printer.data(&serde_json::to_string_pretty(docs)?),
    }
    if missing.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{}", missing.join("\n"))
    }
}

/// `container inspect`.
///
/// # Errors
/// `No such container` for any argument (after printing the others).
pub fn run(ctx: &Ctx, args: &ContainerInspectArgs) -> anyhow::Result<()> {
    let opts = InspectOptions { size: args.size };
    let mut docs = Vec::new();
    let mut missing = Vec::new();
    for arg in &args.containers {
        match inspect::inspect(&ctx.store, arg, opts) {
            Ok(doc) => docs.push(doc),
            Err(InspectError::State(_)) => missing.push(format!(
                "Error response from daemon: No such container: {arg}"
            )),
            Err(e) => return Err(e.into()),
        }
    }
    print(ctx, &docs, args.format.as_deref(), &missing)
}
