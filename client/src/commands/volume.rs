//! `berth volume create|ls|inspect|rm|prune`: local volumes ([`crate::volumes`]).

use std::collections::BTreeMap;

use crate::cli::{
    VolumeCreateArgs, VolumeInspectArgs, VolumeLsArgs, VolumePruneArgs, VolumeRmArgs,
};
use crate::context::Ctx;
use crate::format::{self, human_size, Row};
use crate::volumes;

const COLUMNS: &[(&str, &str)] = &[("Driver", "DRIVER"), ("Name", "VOLUME NAME")];

/// `volume create [NAME] [--label K=V]`: prints the name.
///
/// # Errors
/// An invalid name, the file system.
pub fn create(ctx: &Ctx, args: &VolumeCreateArgs) -> anyhow::Result<()> {
    let labels: BTreeMap<String, String> = args
        .label
        .iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect();
    let name = args.name.clone().unwrap_or_else(volumes::anonymous_name);
    let (volume, _) = volumes::create(ctx.store.root(), &name, labels)
        .map_err(|e| e.context("Error response from daemon"))
        .map_err(flatten)?;
    ctx.printer.data(&volume.name);
    Ok(())
}

/// `Error response from daemon: CAUSE` on one line.
fn flatten(e: anyhow::Error) -> anyhow::Error {
    anyhow::anyhow!("{e:#}")
}

fn row(v: &volumes::Volume, data_root: &std::path::Path) -> Row {
    let labels = v
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    Row::from([
        ("Driver", v.driver.clone()),
        ("Name", v.name.clone()),
        (
            "Mountpoint",
            volumes::mountpoint(data_root, &v.name)
                .display()
                .to_string(),
        ),
        ("Labels", labels),
        ("Scope", "local".to_owned()),
    ])
}

/// `volume ls [-q] [--format]`.
///
/// # Errors
/// A bad template.
pub fn ls(ctx: &Ctx, args: &VolumeLsArgs) -> anyhow::Result<()> {
    let all = volumes::list(ctx.store.root());
    if args.quiet {
        for v in &all {
            ctx.printer.data(&v.name);
        }
        return Ok(());
    }
    let rows: Vec<Row> = all.iter().map(|v| row(v, ctx.store.root())).collect();
    let out = format::render(&rows, COLUMNS, args.format.as_deref()).map_err(anyhow::Error::msg)?;
    if !out.is_empty() {
        ctx.printer.data(&out);
    }
    Ok(())
}

/// `volume inspect [-f FORMAT] VOLUME...`: Docker's JSON array.
///
/// # Errors
/// `No such volume: NAME` (the others are still shown).
pub fn inspect(ctx: &Ctx, args: &VolumeInspectArgs) -> anyhow::Result<()> {
    let mut docs = Vec::new();
    let mut errors = Vec::new();
    for name in &args.volumes {
        match volumes::get(ctx.store.root(), name) {
            Ok(v) => docs.push(v.inspect(ctx.store.root())),
            Err(_) => errors.push(format!("No such volume: {name}")),
        }
    }
    match &args.format {
        Some(tpl) if tpl != "json" => {
            for d in &docs {
                let line = format::render_value(tpl, d).map_err(anyhow::Error::msg)?;
                ctx.printer.data(&line);
            }
        }
        _ => ctx
            .printer
            .data(&serde_json::to_string_pretty(&serde_json::Value::Array(
                docs,
            ))?),
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(anyhow::anyhow!(errors.join("\n")))
    }
}

/// `volume rm [-f] VOLUME...`: refuses a volume in use; `-f` ignores missing ones.
///
/// # Errors
/// Docker's `Error response from daemon: …` for each volume not removed.
pub fn rm(ctx: &Ctx, args: &VolumeRmArgs) -> anyhow::Result<()> {
    super::each(ctx, &args.volumes, |name| {
        if args.force && volumes::get(ctx.store.root(), name).is_err() {
            return Ok(None);
        }
        match crate::container::volume_users::remove_volume(ctx.store.root(), name) {
            Ok(_) => Ok(Some(name.to_owned())),
            Err(e) => Err(anyhow::anyhow!("Error response from daemon: {e:#}")),
        }
    })
}

/// `volume prune [-a] [-f]`: unused anonymous volumes (all unused with `-a`), asking first
/// unless `-f`.
///
/// # Errors
/// No confirmation; the file system.
pub fn prune(ctx: &Ctx, args: &VolumePruneArgs) -> anyhow::Result<()> {
    let warning = if args.all {
        "WARNING! This will remove all local volumes not used by at least one container."
    } else {
        "WARNING! This will remove anonymous local volumes not used by at least one container."
    };
    if !super::confirm(warning, args.force)? {
        return Ok(());
    }
    let root = ctx.store.root();
    let users = crate::container::volume_users::users(root);
    let mut deleted = Vec::new();
    let mut reclaimed = 0;
    for v in volumes::list(root) {
        if users.contains_key(&v.name) || !(args.all || v.anonymous()) {
            continue;
        }
        // `remove` checks again, so a container that started using it meanwhile keeps it.
        if let Ok(size) = crate::container::volume_users::remove_volume(root, &v.name) {
            reclaimed += size;
            deleted.push(v.name);
        }
    }
    let mut out = String::new();
    if !deleted.is_empty() {
        out.push_str("Deleted Volumes:\n");
        out.push_str(&deleted.join("\n"));
        out.push_str("\n\n");
    }
    out.push_str(&format!("Total reclaimed space: {}", human_size(reclaimed)));
    ctx.printer.data(&out);
    Ok(())
}
