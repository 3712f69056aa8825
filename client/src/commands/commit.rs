//! `berth commit`: a container's changes (its overlay `upper/`) become a new layer on top of its
//! image. Whiteouts turn into OCI `.wh.` entries; the config is the image's, plus the layer's
//! diff ID, a history entry (author, comment) and `--change` instructions. Prints
//! `sha256:<image id>`.

use std::ffi::OsStr;
use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use serde_json::json;

use crate::archive::change::{self, ContainerConfig};
use crate::archive::import::write_layer;
use crate::archive::{media, put_blob, ArchiveError, NewBlobs};
use crate::cli::CommitArgs;
use crate::container;
use crate::containers_fs::{append_tree_at, piped, RootDir};
use crate::context::Ctx;
use crate::reference::Reference;
use crate::store::NewImage;

/// Runs `commit`.
///
/// # Errors
/// No such container or image, invalid reference or `--change`, I/O.
pub fn run(ctx: &Ctx, args: &CommitArgs) -> anyhow::Result<()> {
    let reference = args
        .reference
        .as_deref()
        .map(|r| -> anyhow::Result<String> {
            let parsed = Reference::parse(r).with_context(|| format!("invalid reference `{r}`"))?;
            anyhow::ensure!(
                parsed.digest.is_none(),
                "cannot commit to a digest reference"
            );
            Ok(parsed.to_string())
        })
        .transpose()?;
    change::apply(&mut ContainerConfig::default(), &args.change)
        .map_err(|e| ArchiveError::from(e).into_anyhow())?;
    let (dir, state) = container::find(ctx.store.root(), &args.container)?;
    anyhow::ensure!(
        !container::rootfs_copied(&dir),
        "cannot commit container {}: its root file system is a copy (overlayfs was unavailable), so its changes cannot be told apart from the image",
        state.name
    );
    let _lock = container::Lock::take(&dir)?;
    let store = &ctx.store;
    let image = store
        .image(&state.image)
        .with_context(|| format!("the image of container {} is gone", state.name))?;
    let mut doc: serde_json::Value = serde_json::from_slice(&store.read_blob(&image.id.parse()?)?)?;

    let mut new = NewBlobs::new(store);
    // `upper/` is the container's to change while this runs: walk it by handles, so a directory
    // swapped for a symlink is archived as that symlink, never followed (CVE-2018-15664).
    let upper = RootDir::open(&dir.join("upper"))?;
    let mut written = None;
    piped(
        move |w| {
            let mut b = tar::Builder::new(std::io::BufWriter::new(w));
            append_tree_at(&mut b, upper.fd(), OsStr::new("."), Path::new(""), true)
                .context("cannot archive the container's changes")?;
            b.into_inner()?.flush()?;
            Ok(())
        },
        |r| {
            written = Some(write_layer(store, &mut new, r).map_err(ArchiveError::into_anyhow)?);
            Ok(())
        },
    )?;
    let (layer, diff_id) = written.expect("written");
    store.unpack_layer(
        &store.blob_path(&layer.digest.parse()?),
        &layer.media_type,
        &diff_id.parse()?,
    )?;

    let mut config: ContainerConfig =
        serde_json::from_value(doc.get("config").cloned().unwrap_or(json!({})))?;
    change::apply(&mut config, &args.change).map_err(|e| ArchiveError::from(e).into_anyhow())?;
    let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let mut history = json!({
        "created": created,
        "created_by": state.command.join(" "),
    });
    if let Some(a) = &args.author {
        history["author"] = json!(a);
        doc["author"] = json!(a);
    }
    if let Some(m) = &args.message {
        history["comment"] = json!(m);
        doc["comment"] = json!(m);
    }
    // Merge rather than replace, so config fields berth does not model survive.
    let mut merged = doc.get("config").cloned().unwrap_or(json!({}));
    if let (Some(obj), serde_json::Value::Object(changed)) =
        (merged.as_object_mut(), serde_json::to_value(&config)?)
    {
        for (k, v) in changed {
            obj.insert(k, v);
        }
    }
    doc["config"] = merged;
    doc["created"] = json!(created);
    doc["container"] = json!(state.id);
    if !doc["rootfs"]["diff_ids"].is_array() {
        doc["rootfs"] = json!({"type": "layers", "diff_ids": []});
    }
    doc["rootfs"]["diff_ids"]
        .as_array_mut()
        .expect("array")
        .push(json!(diff_id));
    if !doc["history"].is_array() {
        doc["history"] = json!([]);
    }
    doc["history"].as_array_mut().expect("array").push(history);
    let config_bytes = serde_json::to_vec(&doc)?;
    let config_digest =
        put_blob(store, &mut new, &config_bytes).map_err(ArchiveError::into_anyhow)?;

    let mut layers = image.layers.clone();
    layers.push(layer);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": {
            "mediaType": media::OCI_CONFIG,
            "digest": config_digest.to_string(),
            "size": config_bytes.len(),
        },
        "layers": layers.iter().map(|l| json!({
            "mediaType": l.media_type,
            "digest": l.digest,
            "size": l.size,
        })).collect::<Vec<_>>(),
    });
    let manifest_digest = put_blob(store, &mut new, &serde_json::to_vec(&manifest)?)
        .map_err(ArchiveError::into_anyhow)?;
    let rec = store.add_image(&NewImage {
        manifest: manifest_digest.to_string(),
        manifest_media_type: media::OCI_MANIFEST.into(),
        config: config_digest.to_string(),
        layers,
        repo_digest: None,
        tags: reference.into_iter().collect(),
    })?;
    ctx.printer.data(&rec.id);
    Ok(())
}
