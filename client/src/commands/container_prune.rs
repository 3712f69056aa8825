//! `berth container prune [-f] [--filter until=…|label=…|label!=…]`: removes every container
//! that is not running (created or exited), as `rm` does (volumes stay), after Docker's
//! confirmation, and prints `Deleted Containers:` with their IDs and the space their writable
//! layers took.

use chrono::{DateTime, Utc};

use crate::cli::ContainerPruneArgs;
use crate::container::rm::RemoveOptions;
use crate::container::{self, Status};
use crate::context::Ctx;
use crate::filters::Filters;
use crate::format::human_size;

/// The filters Docker's `container prune` accepts.
const ACCEPTED: &[&str] = &["until", "label", "label!"];

/// The single `until` of the filters, as an instant.
///
/// # Errors
/// More than one, or a bad time.
pub fn until(filters: &Filters, now: DateTime<Utc>) -> anyhow::Result<Option<DateTime<Utc>>> {
    match filters.get("until") {
        [] => Ok(None),
        [one] => crate::timestamp::parse(one, now)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("Error response from daemon: {e}")),
        _ => anyhow::bail!("Error response from daemon: more than one until filter specified"),
    }
}

/// Removes the stopped containers.
///
/// # Errors
/// Bad filters; no confirmation; a container that cannot be removed (the others are).
pub fn run(ctx: &Ctx, args: &ContainerPruneArgs) -> anyhow::Result<()> {
    // `label!=x` parses as key `label!`, value `x`.
    let filters = Filters::parse(&args.filter)?;
    filters.validate(ACCEPTED)?;
    let until = until(&filters, Utc::now())?;
    if !super::confirm(
        "WARNING! This will remove all stopped containers.",
        args.force,
    )? {
        return Ok(());
    }
    let root = ctx.store.root();
    let mut deleted = Vec::new();
    let mut reclaimed = 0u64;
    let mut errors = Vec::new();
    for (dir, state) in container::list(root) {
        if state.status() == Status::Running {
            continue;
        }
        let created = DateTime::parse_from_rfc3339(&state.created).map(|t| t.with_timezone(&Utc));
        if let Some(u) = until {
            if created.map_or(true, |c| c >= u) {
                continue;
            }
        }
        if filters.contains("label") || filters.contains("label!") {
            let labels = crate::container::config::load_create_config(&dir, &state).labels;
            if !Filters::labels_match(filters.get("label"), filters.get("label!"), &labels) {
                continue;
            }
        }
        let size = crate::volumes::disk_usage(&dir.join("upper"));
        match crate::container::rm::remove(ctx.store.root(), &state.id, RemoveOptions::default()) {
            Ok(()) => {
                deleted.push(state.id.clone());
                reclaimed += size;
            }
            Err(e) => errors.push(format!("{:#}", anyhow::Error::from(e))),
        }
    }
    let mut out = String::new();
    if !deleted.is_empty() {
        out.push_str("Deleted Containers:\n");
        for id in &deleted {
            out.push_str(id);
            out.push('\n');
        }
        out.push('\n');
    }
    out.push_str(&format!("Total reclaimed space: {}", human_size(reclaimed)));
    ctx.printer.data(&out);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(anyhow::anyhow!(errors.join("\n")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(flags: &[&str]) -> Filters {
        Filters::parse(&flags.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn until_is_one_docker_timestamp() {
        let now = DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(until(&f(&[]), now).unwrap(), None);
        assert_eq!(
            until(&f(&["until=1h"]), now).unwrap().unwrap().to_rfc3339(),
            "2024-05-01T11:00:00+00:00"
        );
        let e = until(&f(&["until=1h", "until=2h"]), now).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Error response from daemon: more than one until filter specified"
        );
        assert!(until(&f(&["until=soon"]), now).is_err());
        // `label!=x` is the key `label!`.
        assert_eq!(f(&["label!=x"]).get("label!"), ["x"]);
        assert!(f(&["label!=x", "until=1h"]).validate(ACCEPTED).is_ok());
        assert!(f(&["name=x"]).validate(ACCEPTED).is_err());
    }
}
