//! `berth pull`: resolve the manifest (index → platform), download layers concurrently while
//! verifying them, unpack each as soon as it is complete, then register the image.
//!
//! Endpoints come from daemon.json: mirrors for the registry in order, then the upstream
//! (unless `registry-mirrors-only`). A mirror that fails or lacks the content falls through
//! to the next endpoint; stderr says which endpoint served the image.

use std::sync::Arc;

use anyhow::Context as _;
use bytes::Bytes;
use oci_spec::image::{Digest, ImageIndex, ImageManifest};
use tokio::sync::Semaphore;

use super::short_id;
use crate::cli::PullArgs;
use crate::context::Ctx;
use crate::printer::{layer_bar, Printer};
use crate::reference::Reference;
use crate::remote::{self, Client, Endpoint, RemoteOptions};
use crate::store::{ImageRecord, LayerRecord, NewImage, Store};

/// Manifest types `pull` accepts, most specific last as Docker sends them.
pub const ACCEPT: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// `os/arch[/variant]` to select from an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// e.g. `linux`
    pub os: String,
    /// e.g. `amd64`
    pub arch: String,
    /// e.g. `v8`
    pub variant: Option<String>,
}

impl Platform {
    /// The host's platform in OCI terms.
    #[must_use]
    pub fn host() -> Self {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Self {
            os: "linux".into(),
            arch: arch.into(),
            variant: None,
        }
    }

    /// Parses `os[/arch[/variant]]`.
    ///
    /// # Errors
    /// Empty components.
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        let parts: Vec<&str> = s.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) || parts.len() > 3 {
            anyhow::bail!("invalid platform `{s}`: use os[/arch[/variant]], e.g. linux/arm64");
        }
        let host = Self::host();
        Ok(Self {
            os: parts[0].to_owned(),
            arch: parts.get(1).map_or(host.arch, |a| (*a).to_owned()),
            variant: parts.get(2).map(|v| (*v).to_owned()),
        })
    }

    /// Whether `os`/`arch`/`variant` is this platform (any variant when this one has none).
    fn is(&self, os: &str, arch: &str, variant: Option<&str>) -> bool {
        os == self.os
            && arch == self.arch
            && self.variant.as_deref().is_none_or(|v| variant == Some(v))
    }

    /// The platform an image configuration names.
    fn of(c: &oci_spec::image::ImageConfiguration) -> Self {
        Self {
            os: c.os().to_string(),
            arch: c.architecture().to_string(),
            variant: c.variant().clone(),
        }
    }

    /// Whether an image with `config` is of this platform.
    fn fits(&self, c: &oci_spec::image::ImageConfiguration) -> bool {
        let p = Self::of(c);
        self.is(&p.os, &p.arch, p.variant.as_deref())
    }

    /// Whether an index entry's platform is this one.
    fn matches(&self, p: &oci_spec::image::Platform) -> bool {
        let (os, arch) = (p.os().to_string(), p.architecture().to_string());
        self.is(&os, &arch, p.variant().as_deref())
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// Pulls `NAME[:TAG|@DIGEST]` (or every tag with `--all-tags`).
///
/// # Errors
/// Bad reference or platform, every endpoint failing, verification or unpack failures.
pub async fn run(ctx: &Ctx, args: &PullArgs) -> anyhow::Result<()> {
    let reference = Reference::parse(&args.name)?;
    let platform = match &args.platform {
        Some(p) => Platform::parse(p)?,
        None => Platform::host(),
    };
    let printer = ctx.printer.quiet(args.quiet);
    let opts = RemoteOptions::load(&ctx.daemon)?;
    if args.all_tags {
        if reference.digest.is_some() || Reference::has_explicit_tag(&args.name) {
            anyhow::bail!("tag can't be used with --all-tags/-a");
        }
        let tags = list_tags(ctx, &opts, &reference).await?;
        for tag in tags {
            let r = Reference {
                tag: Some(tag),
                ..reference.clone()
            };
            pull(ctx, &opts, &printer, &r, &platform).await?;
            if !args.quiet {
                ctx.printer.data(&r.to_string());
            }
        }
        if args.quiet {
            ctx.printer.data(&reference.name());
        }
        return Ok(());
    }
    pull(ctx, &opts, &printer, &reference, &platform).await?;
    // The full reference on stdout, as Docker prints it (also with `-q`: then alone).
    ctx.printer.data(&reference.to_string());
    Ok(())
}

/// `run`/`create --pull POLICY [--platform P]`: with `missing` (the default) pulls the image
/// when the store does not have it, or has it for another platform than `--platform`, after
/// Docker's `Unable to find image 'X' locally`; with `always` pulls anyway; with `never` pulls
/// nothing. Progress goes to stderr as with `pull`; stdout stays for the container's ID or
/// output. With `--platform`, an image of another platform is refused with Docker's message,
/// also when the registry has no other.
///
/// # Errors
/// A bad platform, the pull failed, or the image is of another platform (the caller exits
/// 125).
pub async fn for_run(
    ctx: &Ctx,
    image: &str,
    policy: &str,
    platform: Option<&str>,
) -> anyhow::Result<()> {
    let wanted = platform.map(Platform::parse).transpose()?;
    let local = super::find_image(ctx, image).ok();
    let fits = |rec: &ImageRecord| match (&wanted, image_config(ctx, rec)) {
        (None, _) => Ok(()),
        (Some(w), Some(c)) if w.fits(&c) => Ok(()),
        (Some(w), c) => Err(mismatch(image, w, c.as_ref())),
    };
    match (policy, &local) {
        ("never", Some(rec)) => return fits(rec),
        ("never", None) => return Ok(()),
        ("missing", Some(rec)) if fits(rec).is_ok() => return Ok(()),
        _ => {}
    }
    let reference = Reference::parse(image)?;
    if policy != "always" {
        ctx.printer.status(&format!(
            "Unable to find image '{}' locally",
            reference.familiar()
        ));
    }
    let opts = RemoteOptions::load(&ctx.daemon)?;
    let target = wanted.clone().unwrap_or_else(Platform::host);
    let rec = pull(ctx, &opts, &ctx.printer, &reference, &target).await?;
    fits(&rec)
}

/// The configuration of a stored image; `None` when it cannot be read.
fn image_config(ctx: &Ctx, rec: &ImageRecord) -> Option<oci_spec::image::ImageConfiguration> {
    let digest: Digest = rec.id.parse().ok()?;
    serde_json::from_slice(&ctx.store.read_blob(&digest).ok()?).ok()
}

/// Docker's refusal of an image of another platform than `--platform`.
fn mismatch(
    image: &str,
    wanted: &Platform,
    config: Option<&oci_spec::image::ImageConfiguration>,
) -> anyhow::Error {
    let actual = config.map_or_else(|| "unknown".to_owned(), |c| Platform::of(c).to_string());
    anyhow::anyhow!(
        "image with reference {image} was found but does not match the specified platform: wanted {wanted}, actual: {actual}"
    )
}

async fn list_tags(ctx: &Ctx, opts: &RemoteOptions, r: &Reference) -> anyhow::Result<Vec<String>> {
    let mut last = None;
    for ep in remote::pull_endpoints(&r.registry, &ctx.daemon) {
        let result = async {
            let c = connect(&ep, &r.registry, opts).await?;
            c.tags(&r.repository).await.map_err(anyhow::Error::from)
        }
        .await;
        match result {
            Ok(t) => return Ok(t),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("no endpoint to list tags of {}", r.name())))
}

async fn connect(ep: &Endpoint, registry: &str, opts: &RemoteOptions) -> anyhow::Result<Client> {
    let client = match ep {
        Endpoint::Mirror(url) => Client::mirror(url, opts).await,
        Endpoint::Upstream(host) => Client::connect(host, opts).await,
    };
    client.with_context(|| format!("cannot reach {registry}"))
}

/// Pulls one reference through the configured endpoints.
///
/// # Errors
/// The last endpoint's error when none could serve the image.
pub async fn pull(
    ctx: &Ctx,
    opts: &RemoteOptions,
    printer: &Printer,
    r: &Reference,
    platform: &Platform,
) -> anyhow::Result<ImageRecord> {
    let tag_line = r.tag.clone().unwrap_or_else(|| r.target());
    printer.status(&format!("{tag_line}: Pulling from {}", display_repo(r)));
    let endpoints = remote::pull_endpoints(&r.registry, &ctx.daemon);
    let mut failures: Vec<String> = Vec::new();
    for ep in &endpoints {
        let label = match ep {
            Endpoint::Mirror(u) => format!("mirror {u}"),
            Endpoint::Upstream(h) => format!("registry {h}"),
        };
        let attempt = async {
            let client = connect(ep, &r.registry, opts).await?;
            pull_from(ctx, &client, printer, r, platform).await
        }
        .await;
        match attempt {
            Ok((rec, updated, digest)) => {
                printer.status(&format!("Pulled from {label}"));
                printer.status(&format!("Digest: {digest}"));
                let shown = r.familiar();
                if updated {
                    printer.status(&format!("Status: Downloaded newer image for {shown}"));
                } else {
                    printer.status(&format!("Status: Image is up to date for {shown}"));
                }
                return Ok(rec);
            }
            Err(e) => {
                printer.debug(&format!("{label} failed: {e:#}"));
                failures.push(format!("{label}: {e:#}"));
                // Bad content from the upstream itself is final; mirrors fall through.
                if matches!(ep, Endpoint::Upstream(_)) {
                    return Err(e);
                }
                printer.status(&format!(
                    "{label} could not serve {}; trying the next endpoint",
                    r.familiar()
                ));
            }
        }
    }
    if ctx.daemon.registry_mirrors_only && !endpoints.is_empty() {
        anyhow::bail!(
            "every mirror failed and `registry-mirrors-only` forbids the upstream:\n  {}",
            failures.join("\n  ")
        );
    }
    anyhow::bail!(
        "no endpoint could serve {}:\n  {}",
        r.familiar(),
        failures.join("\n  ")
    )
}

fn display_repo(r: &Reference) -> String {
    if r.registry == crate::reference::DOCKER_HUB {
        r.repository.clone()
    } else {
        r.name()
    }
}

/// Resolves, downloads and registers from one endpoint. Returns the record, whether anything
/// changed locally, and the digest of the top-level manifest.
async fn pull_from(
    ctx: &Ctx,
    client: &Client,
    printer: &Printer,
    r: &Reference,
    platform: &Platform,
) -> anyhow::Result<(ImageRecord, bool, Digest)> {
    let top = client.manifest(&r.repository, &r.target(), ACCEPT).await?;
    let top_digest = top.digest.clone();
    let manifest = if is_index(&top.media_type) {
        let index: ImageIndex =
            serde_json::from_slice(&top.bytes).context("invalid image index")?;
        let child = index
            .manifests()
            .iter()
            .find(|d| d.platform().as_ref().is_some_and(|p| platform.matches(p)))
            .ok_or_else(|| {
                anyhow::anyhow!("no matching manifest for {platform} in the manifest list entries")
            })?;
        client
            .manifest(&r.repository, child.digest().as_ref(), ACCEPT)
            .await?
    } else {
        top
    };
    let parsed: ImageManifest =
        serde_json::from_slice(&manifest.bytes).context("invalid image manifest")?;
    let store = ctx.store.clone();
    // Manifest and config are small: fetch, verify (by digest), store.
    store_bytes(&store, &manifest.digest, manifest.bytes.clone()).await?;
    let config_digest = parsed.config().digest().clone();
    if !store.has_blob(&config_digest) {
        download(
            client,
            &store,
            &r.repository,
            &config_digest,
            ctx.daemon.max_download_attempts,
            &|_| {},
            None,
        )
        .await?;
    }
    let config: oci_spec::image::ImageConfiguration =
        serde_json::from_slice(&store.read_blob(&config_digest)?)
            .context("invalid image config")?;
    let diff_ids = config.rootfs().diff_ids().clone();
    if diff_ids.len() != parsed.layers().len() {
        anyhow::bail!(
            "image config lists {} layers but the manifest has {}",
            diff_ids.len(),
            parsed.layers().len()
        );
    }
    let existing = store.image(config_digest.as_ref()).ok();
    let sem = Arc::new(Semaphore::new(ctx.daemon.max_concurrent_downloads as usize));
    let multi = printer.multi();
    let mut tasks = tokio::task::JoinSet::new();
    let mut layers = Vec::new();
    for (desc, diff) in parsed.layers().iter().zip(diff_ids.iter()) {
        let layer = LayerRecord {
            digest: desc.digest().to_string(),
            media_type: desc.media_type().to_string(),
            size: desc.size(),
            diff_id: diff.clone(),
        };
        layers.push(layer.clone());
        let diff: Digest = diff
            .parse()
            .with_context(|| format!("invalid diff ID {diff}"))?;
        let short = short_id(desc.digest().digest());
        if store.has_blob(desc.digest()) && store.layer_size(&diff).is_some() {
            printer_line(printer, &short, "Already exists");
            continue;
        }
        let bar = layer_bar(&multi, &short, desc.size());
        bar.set_message("Pulling fs layer");
        printer_line(printer, &short, "Pulling fs layer");
        let (client, store, sem, printer) =
            (client.clone(), store.clone(), sem.clone(), printer.clone());
        let (repo, digest, attempts) = (
            r.repository.clone(),
            desc.digest().clone(),
            ctx.daemon.max_download_attempts,
        );
        tasks.spawn(async move {
            let permit = sem.acquire_owned().await.expect("semaphore open");
            bar.set_message("Downloading");
            let mut unpacked = false;
            if !store.has_blob(&digest) {
                let b = bar.clone();
                let stream_unpack = store
                    .layer_size(&diff)
                    .is_none()
                    .then(|| (layer.media_type.clone(), diff.clone()));
                unpacked = download(
                    &client,
                    &store,
                    &repo,
                    &digest,
                    attempts,
                    &move |n| b.set_position(n),
                    stream_unpack,
                )
                .await?;
            }
            drop(permit); // unpacking does not hold a download slot
            printer_line(&printer, &short, "Download complete");
            if !unpacked {
                bar.set_message("Extracting");
                let (s, blob, mt) = (
                    store.clone(),
                    store.blob_path(&digest),
                    layer.media_type.clone(),
                );
                tokio::task::spawn_blocking(move || s.unpack_layer(&blob, &mt, &diff)).await??;
            }
            bar.set_message("Pull complete");
            bar.finish();
            printer_line(&printer, &short, "Pull complete");
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.context("download task failed")??;
    }
    let tags = r.tag.iter().map(|_| r.to_string()).collect();
    let new = NewImage {
        manifest: manifest.digest.to_string(),
        manifest_media_type: manifest.media_type.clone(),
        config: config_digest.to_string(),
        layers,
        repo_digest: Some(format!("{}@{}", r.name(), top_digest)),
        tags,
    };
    let was_tagged = ctx
        .store
        .tags()?
        .get(&r.to_string())
        .is_some_and(|id| *id == new.config);
    let rec = tokio::task::spawn_blocking(move || store.add_image(&new)).await??;
    Ok((rec, existing.is_none() || !was_tagged, top_digest))
}

fn printer_line(printer: &Printer, short: &str, what: &str) {
    if !printer.draws_bars() {
        printer.status(&format!("{short}: {what}"));
    }
}

fn is_index(media_type: &str) -> bool {
    media_type == ACCEPT[0] || media_type == ACCEPT[1]
}

async fn store_bytes(store: &Store, digest: &Digest, bytes: Bytes) -> anyhow::Result<()> {
    if store.has_blob(digest) {
        return Ok(());
    }
    let (s, d) = (store.clone(), digest.clone());
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut w = s.ingest(Some(&d))?;
        std::io::Write::write_all(&mut w, &bytes)?;
        w.commit()?;
        Ok(())
    })
    .await??;
    Ok(())
}

/// Downloads one blob into the store, verifying its digest, resuming a partial download and
/// retrying transport failures up to `attempts` times. Writing and hashing run on a blocking
/// thread fed through a small channel, so memory stays bounded.
///
/// With `unpack` (media type, diff ID), a download that starts from the beginning is also
/// unpacked while it streams (one pass over the bytes instead of two); the layer is published
/// only after both the blob digest and the diff ID verify. Returns whether that happened; a
/// resumed download is unpacked afterwards by the caller.
async fn download(
    client: &Client,
    store: &Store,
    repo: &str,
    digest: &Digest,
    attempts: u32,
    progress: &(dyn Fn(u64) + Send + Sync),
    unpack: Option<(String, Digest)>,
) -> anyhow::Result<bool> {
    let mut tries = 0;
    loop {
        tries += 1;
        match download_once(client, store, repo, digest, progress, unpack.clone()).await {
            Ok(unpacked) => return Ok(unpacked),
            Err(DownloadError::Fatal(e)) => return Err(e),
            Err(DownloadError::Retry(e)) if tries >= attempts.max(1) => {
                return Err(e.context(format!(
                    "download of {digest} failed after {tries} attempts"
                )));
            }
            Err(DownloadError::Retry(e)) => {
                tracing::debug!(%digest, error = %e, "retrying download");
                tokio::time::sleep(std::time::Duration::from_millis(200 << tries.min(5))).await;
            }
        }
    }
}

enum DownloadError {
    Retry(anyhow::Error),
    Fatal(anyhow::Error),
}

async fn download_once(
    client: &Client,
    store: &Store,
    repo: &str,
    digest: &Digest,
    progress: &(dyn Fn(u64) + Send + Sync),
    unpack: Option<(String, Digest)>,
) -> Result<bool, DownloadError> {
    let fatal = |e: anyhow::Error| DownloadError::Fatal(e);
    let (s, d) = (store.clone(), digest.clone());
    let mut writer = tokio::task::spawn_blocking(move || s.ingest(Some(&d)))
        .await
        .map_err(|e| fatal(e.into()))?
        .map_err(|e| fatal(e.into()))?;
    let offset = writer.offset();
    let mut stream = client
        .blob(repo, digest, offset)
        .await
        .map_err(|e| DownloadError::Retry(e.into()))?;
    if stream.start != offset {
        // The server ignored the Range: start over.
        writer.discard();
        let (s, d) = (store.clone(), digest.clone());
        writer = tokio::task::spawn_blocking(move || s.ingest(Some(&d)))
            .await
            .map_err(|e| fatal(e.into()))?
            .map_err(|e| fatal(e.into()))?;
    }
    // Unpack alongside only when the whole blob flows through this attempt.
    let (unpack_tx, unpacker) = match unpack.filter(|_| stream.start == 0) {
        Some((media_type, diff)) => {
            let (utx, urx) = tokio::sync::mpsc::channel::<Bytes>(8);
            let s = store.clone();
            let reader = ChannelReader {
                rx: urx,
                current: Bytes::new(),
            };
            let handle = tokio::task::spawn_blocking(move || {
                s.unpack_reader(Box::new(reader), &media_type, &diff)
            });
            (Some(utx), Some(handle))
        }
        None => (None, None),
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(8);
    let sink = tokio::task::spawn_blocking(move || -> anyhow::Result<crate::store::BlobWriter> {
        while let Some(chunk) = rx.blocking_recv() {
            std::io::Write::write_all(&mut writer, &chunk)?;
        }
        Ok(writer)
    });
    let mut done = stream.start;
    let mut transport = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(chunk) => {
                done += chunk.len() as u64;
                progress(done);
                if let Some(utx) = &unpack_tx {
                    // An unpacker that stopped (hostile or broken tar) reports below.
                    let _ = utx.send(chunk.clone()).await;
                }
                if tx.send(chunk).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                transport = Some(e);
                break;
            }
        }
    }
    drop(tx);
    drop(unpack_tx);
    let mut writer = sink.await.map_err(|e| fatal(e.into()))?.map_err(fatal)?;
    let pending = match unpacker {
        Some(h) => Some(h.await.map_err(|e| fatal(e.into()))?),
        None => None,
    };
    if let Some(e) = transport {
        // Keep the partial file: the next attempt resumes from it.
        let _ = std::io::Write::flush(&mut writer);
        return Err(DownloadError::Retry(anyhow::Error::from(e)));
    }
    tokio::task::spawn_blocking(move || writer.commit())
        .await
        .map_err(|e| fatal(e.into()))?
        .map_err(|e| {
            fatal(anyhow::Error::from(e).context(format!(
                "blob {digest} failed verification; nothing was stored"
            )))
        })?;
    match pending {
        // The blob is verified: a failed unpack is the layer's own fault (hostile, wrong diff ID).
        Some(p) => {
            let p = p.map_err(|e| fatal(e.into()))?;
            tokio::task::spawn_blocking(move || p.publish())
                .await
                .map_err(|e| fatal(e.into()))?
                .map_err(|e| fatal(e.into()))?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// `Read` over chunks arriving on a channel (end of stream when the sender is dropped).
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.current = b,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        bytes::Buf::advance(&mut self.current, n);
        Ok(n)
    }
}
