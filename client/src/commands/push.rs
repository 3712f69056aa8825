//! `berth push`: upload what the registry lacks (HEAD first, cross-repository mount when the
//! image is known in another repository of the same registry), then the manifest. Never uses
//! mirrors and never sends credentials anywhere but the target registry.

use std::sync::Arc;

use anyhow::Context as _;
use oci_spec::image::Digest;
use tokio::sync::Semaphore;

use super::short_id;
use crate::cli::PushArgs;
use crate::context::Ctx;
use crate::printer::{layer_bar, Printer};
use crate::reference::Reference;
use crate::remote::{Client, RemoteOptions};
use crate::store::ImageRecord;

/// Pushes `NAME[:TAG]` (every local tag of the repository with `--all-tags`).
///
/// # Errors
/// No such local image, registry errors.
pub async fn run(ctx: &Ctx, args: &PushArgs) -> anyhow::Result<()> {
    let reference = Reference::parse(&args.name)?;
    if reference.digest.is_some() {
        anyhow::bail!(
            "cannot push a digest reference; push a tag: `{}`",
            args.name
        );
    }
    let printer = ctx.printer.quiet(args.quiet);
    let targets: Vec<Reference> = if args.all_tags {
        if Reference::has_explicit_tag(&args.name) {
            anyhow::bail!("tag can't be used with --all-tags/-a");
        }
        let name = reference.name();
        ctx.store
            .tags()?
            .keys()
            .filter_map(|k| Reference::parse(k).ok())
            .filter(|r| r.name() == name)
            .collect()
    } else {
        vec![reference.clone()]
    };
    if targets.is_empty() {
        anyhow::bail!(
            "An image does not exist locally with the tag: {}",
            reference.familiar_name()
        );
    }
    let opts = RemoteOptions::load(&ctx.daemon)?;
    let client = Client::connect(&reference.registry, &opts).await?;
    printer.status(&format!(
        "The push refers to repository [{}]",
        reference.name()
    ));
    for r in &targets {
        let image = ctx
            .store
            .tags()?
            .get(&r.to_string())
            .map(|id| ctx.store.image(id))
            .transpose()?
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "An image does not exist locally with the tag: {}",
                    r.familiar()
                )
            })?;
        let digest = push_one(ctx, &client, &printer, r, &image).await?;
        if args.quiet {
            ctx.printer.data(&r.familiar());
        }
        let _ = digest;
    }
    Ok(())
}

async fn push_one(
    ctx: &Ctx,
    client: &Client,
    printer: &Printer,
    r: &Reference,
    image: &ImageRecord,
) -> anyhow::Result<Digest> {
    // Repositories of the same registry known to hold this image: candidates for mounting.
    let mount_from: Vec<String> = image
        .repo_digests
        .iter()
        .filter_map(|d| Reference::parse(d).ok())
        .filter(|o| o.registry == r.registry && o.repository != r.repository)
        .map(|o| o.repository)
        .collect();
    let sem = Arc::new(Semaphore::new(ctx.daemon.max_concurrent_uploads as usize));
    let multi = printer.multi();
    let mut tasks = tokio::task::JoinSet::new();
    let mut blobs: Vec<(Digest, u64)> = Vec::new();
    for l in image.layers.iter().rev() {
        blobs.push((
            l.digest
                .parse()
                .with_context(|| format!("invalid layer digest {}", l.digest))?,
            l.size,
        ));
    }
    let config: Digest = image.id.parse()?;
    let config_size = std::fs::metadata(ctx.store.blob_path(&config))
        .map(|m| m.len())
        .unwrap_or(0);
    blobs.push((config, config_size));
    for (digest, size) in blobs {
        let path = ctx.store.blob_path(&digest);
        if !path.exists() {
            anyhow::bail!(
                "blob {digest} of {} is missing from the local store; pull or load the image again",
                r.familiar()
            );
        }
        let short = short_id(digest.digest());
        let bar = layer_bar(&multi, &short, size);
        bar.set_message("Preparing");
        let (client, sem, printer, repo, from) = (
            client.clone(),
            sem.clone(),
            printer.clone(),
            r.repository.clone(),
            mount_from.clone(),
        );
        tasks.spawn(async move {
            let _permit = sem.acquire_owned().await.expect("semaphore open");
            let line = |what: &str| {
                if !printer.draws_bars() {
                    printer.status(&format!("{short}: {what}"));
                }
            };
            if client.blob_size(&repo, &digest).await?.is_some() {
                bar.finish_with_message("Layer already exists");
                line("Layer already exists");
                return anyhow::Ok(());
            }
            for other in &from {
                if client.mount(&repo, &digest, other).await.unwrap_or(false) {
                    bar.finish_with_message(format!("Mounted from {other}"));
                    line(&format!("Mounted from {other}"));
                    return Ok(());
                }
            }
            bar.set_message("Pushing");
            let b = bar.clone();
            client
                .upload(&repo, &digest, size, &path, &move |n| b.set_position(n))
                .await?;
            bar.finish_with_message("Pushed");
            line("Pushed");
            Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.context("upload task failed")??;
    }
    let manifest_digest: Digest = image.manifest.parse()?;
    let bytes = bytes::Bytes::from(ctx.store.read_blob(&manifest_digest)?);
    let size = bytes.len();
    let tag = r.tag.clone().unwrap_or_else(|| "latest".into());
    let digest = client
        .put_manifest(&r.repository, &tag, &image.manifest_media_type, bytes)
        .await?;
    printer.status(&format!("{tag}: digest: {digest} size: {size}"));
    // Remember where the image now lives (for `images --digests` and later mounts).
    let store = ctx.store.clone();
    let (id, rd) = (image.id.clone(), format!("{}@{}", r.name(), digest));
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let _lock = store.lock()?;
        let mut rec = store.image(&id)?;
        let repo = rd.split('@').next().unwrap_or(&rd).to_owned();
        rec.repo_digests
            .retain(|d| d.split('@').next() != Some(repo.as_str()));
        rec.repo_digests.push(rd);
        rec.repo_digests.sort();
        store.save_image(&rec)?;
        Ok(())
    })
    .await??;
    Ok(digest)
}
