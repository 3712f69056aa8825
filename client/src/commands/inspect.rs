//! `berth inspect` / `berth image inspect`: Docker's JSON, or `--format` over it.
//!
//! `berth inspect NAME|ID…` looks for a container first, then an image, then a volume, as
//! Docker does; `--type container|image|volume` looks at one kind only.

use crate::cli::{InspectArgs, ObjectInspectArgs};
use crate::context::Ctx;
use crate::format;
use crate::reference::Reference;
use crate::store::ImageRecord;

/// Docker's inspect document for an image.
///
/// # Errors
/// Missing or corrupt config blob.
pub fn document(ctx: &Ctx, image: &ImageRecord) -> anyhow::Result<serde_json::Value> {
    let config: serde_json::Value =
        serde_json::from_slice(&ctx.store.read_blob(&image.id.parse()?)?)?;
    let tags = ctx.store.tags()?;
    let repo_tags: Vec<String> = tags
        .iter()
        .filter(|(_, v)| **v == image.id)
        .map(|(k, _)| Reference::parse(k).map_or_else(|_| k.clone(), |r| r.familiar()))
        .collect();
    let repo_digests: Vec<String> = image
        .repo_digests
        .iter()
        .map(|d| Reference::parse(d).map_or_else(|_| d.clone(), |r| r.familiar()))
        .collect();
    let diff_ids: Vec<&str> = image.layers.iter().map(|l| l.diff_id.as_str()).collect();
    Ok(serde_json::json!({
        "Id": image.id,
        "RepoTags": repo_tags,
        "RepoDigests": repo_digests,
        "Parent": "",
        // Docker's config keeps `comment` (and `author`) at the top; OCI has only `author`
        // there and the comment in the newest history entry.
        "Comment": config
            .get("comment")
            .or_else(|| {
                config
                    .get("history")
                    .and_then(|h| h.as_array())
                    .and_then(|h| h.last())
                    .and_then(|e| e.get("comment"))
            })
            .cloned()
            .unwrap_or_else(|| "".into()),
        "Author": config.get("author").cloned().unwrap_or_else(|| "".into()),
        "Created": image.created.clone().unwrap_or_default(),
        "Config": config.get("config").cloned().unwrap_or(serde_json::Value::Null),
        "Architecture": config.get("architecture").cloned().unwrap_or_else(|| "".into()),
        "Variant": config.get("variant").cloned(),
        "Os": config.get("os").cloned().unwrap_or_else(|| "".into()),
        "Size": image.size,
        "RootFS": {"Type": "layers", "Layers": diff_ids},
        "Descriptor": {"mediaType": image.manifest_media_type, "digest": image.manifest},
    }))
}

/// Prints one JSON array (Docker's shape) or one formatted line per image.
///
/// # Errors
/// `No such image` for any argument (after printing the others, like Docker).
pub fn run(ctx: &Ctx, args: &InspectArgs) -> anyhow::Result<()> {
    let mut docs = Vec::new();
    let mut missing = Vec::new();
    for arg in &args.images {
        match super::find_image(ctx, arg) {
            Ok(image) => docs.push(document(ctx, &image)?),
            Err(_) => missing.push(arg.clone()),
        }
    }
    match &args.format {
        Some(tpl) => {
            for d in &docs {
                ctx.printer
                    .data(&format::render_value(tpl, d).map_err(anyhow::Error::msg)?);
            }
        }
        None => ctx.printer.data(&serde_json::to_string_pretty(&docs)?),
    }
    if missing.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("No such image: {}", missing.join(", "))
    }
}

/// The kinds `inspect --type` accepts.
const KINDS: [&str; 3] = ["container", "image", "volume"];

/// `berth inspect`: containers, images and volumes by name or ID.
///
/// # Errors
/// An unknown `--type`; `No such object` (or `No such container`, … with `--type`) for any
/// argument, after printing the others.
pub fn run_objects(ctx: &Ctx, args: &ObjectInspectArgs) -> anyhow::Result<()> {
    if let Some(kind) = args.kind.as_deref() {
        if !KINDS.contains(&kind) {
            let kinds: Vec<String> = KINDS.iter().map(|k| format!("\"{k}\"")).collect();
            anyhow::bail!(
                "unknown type: \"{kind}\": must be one of {}",
                kinds.join(", ")
            );
        }
    }
    let wants = |k: &str| args.kind.as_deref().is_none_or(|t| t == k);
    let root = ctx.store.root();
    let mut docs = Vec::new();
    let mut missing = Vec::new();
    for arg in &args.objects {
        if wants("container") {
            let opts = crate::container::inspect::InspectOptions { size: args.size };
            match crate::container::inspect::inspect(&ctx.store, arg, opts) {
                Ok(doc) => {
                    docs.push(doc);
                    continue;
                }
                Err(crate::container::inspect::InspectError::State(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if wants("image") {
            if let Ok(image) = super::find_image(ctx, arg) {
                docs.push(document(ctx, &image)?);
                continue;
            }
        }
        if wants("volume") {
            if let Ok(v) = crate::volumes::get(root, arg) {
                docs.push(v.inspect(root));
                continue;
            }
        }
        missing.push(match args.kind.as_deref() {
            None => format!("No such object: {arg}"),
            Some(kind) => format!("Error response from daemon: No such {kind}: {arg}"),
        });
    }
    super::container_inspect::print(ctx, &docs, args.format.as_deref(), &missing)
}
