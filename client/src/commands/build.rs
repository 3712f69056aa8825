//! `berth build [OPTIONS] PATH | -`: reads the context (a directory, or from STDIN a tar or a
//! Dockerfile) and the Dockerfile, pulls missing base images like `berth pull`, then runs the
//! build ([`crate::build`]). Step lines go to stderr, Docker's classic shape; stdout carries
//! only the image ID, with `-q`. A failing RUN exits with its own code, as Docker does.
//!
//! `--cache-from`/`--cache-to type=registry` move the cache format of
//! [`crate::build::remote_cache`] with the registry client, as `pull` (mirrors first, the
//! upstream's credentials never sent to a mirror) and `push` (the target registry only) do.
//! `ADD <url>` downloads with an HTTP client made here (proxies from the environment), handed
//! to the build as [`crate::build::Network::download`]. `-o` writes the result with the archive
//! code's `save` (type=oci|docker) or [`crate::build::output`] (type=tar|local).

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::build_url;
use crate::build::context::Context;
use crate::build::output::{OutputKind, OutputSpec};
use crate::build::remote_cache::{self, ExportMode, Imported};
use crate::build::{BuildError, BuildNetwork, BuildOptions, Built, Network};
use crate::cli::BuildArgs;
use crate::context::Ctx;
use crate::printer::Printer;
use crate::reference::Reference;
use crate::remote::{self, Client, Endpoint, RemoteOptions};
use crate::store::{LayerRecord, Store};

pub(super) fn is_tar(head: &[u8]) -> bool {
    head.starts_with(&[0x1f, 0x8b])
        || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || head.get(257..262) == Some(b"ustar".as_slice())
}

fn key_values(list: &[String], from_env: bool) -> Vec<(String, String)> {
    list.iter()
        .filter_map(|kv| match kv.split_once('=') {
            Some((k, v)) => Some((k.to_owned(), v.to_owned())),
            None if from_env => std::env::var(kv).ok().map(|v| (kv.clone(), v)),
            None => Some((kv.clone(), String::new())),
        })
        .collect()
}

fn secrets(list: &[String]) -> anyhow::Result<BTreeMap<String, PathBuf>> {
    let mut out = BTreeMap::new();
    for s in list {
        let mut id = None;
        let mut src = None;
        for field in s.split(',') {
            match field.split_once('=') {
                Some(("id", v)) => id = Some(v.to_owned()),
                Some(("src" | "source", v)) => src = Some(PathBuf::from(v)),
                Some(("type", "file")) => {}
                _ => anyhow::bail!("invalid secret `{s}`: expected id=NAME,src=FILE"),
            }
        }
        match (id, src) {
            (Some(i), Some(p)) => {
                out.insert(i, fs_err::canonicalize(&p)?);
            }
            _ => anyhow::bail!("invalid secret `{s}`: expected id=NAME,src=FILE"),
        }
    }
    Ok(out)
}

/// A `--cache-from`/`--cache-to` value: the registry reference and the export mode.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CacheSpec {
    reference: Reference,
    mode: ExportMode,
}

/// Parses Docker's `type=registry,ref=REF[,mode=min|max]`, or a bare reference (as buildx
/// accepts for both flags).
fn cache_spec(value: &str, flag: &str) -> anyhow::Result<CacheSpec> {
    let mut kind = None;
    let mut reference = None;
    let mut mode = ExportMode::Min;
    let mut unknown = None;
    if !value.contains('=') {
        reference = Some(value.to_owned());
        kind = Some("registry".to_owned());
    } else {
        for field in value.split(',') {
            match field.split_once('=') {
                Some(("type", v)) => kind = Some(v.to_owned()),
                Some(("ref", v)) => reference = Some(v.to_owned()),
                Some(("mode", "min")) => mode = ExportMode::Min,
                Some(("mode", "max")) => mode = ExportMode::Max,
                Some(("mode", v)) => {
                    anyhow::bail!(
                        "invalid {flag} `{value}`: mode must be `min` or `max`, not `{v}`"
                    )
                }
                // buildx options berth has no use for (compression, OCI media types, …).
                Some((
                    "compression" | "compression-level" | "force-compression" | "oci-mediatypes"
                    | "image-manifest" | "ignore-error",
                    _,
                )) => {}
                _ => unknown = Some(field.to_owned()),
            }
        }
    }
    match kind.as_deref() {
        Some("registry") | None => {}
        Some(other) => anyhow::bail!(
            "{flag} type `{other}` is not supported by berth build: use type=registry,ref=HOST/REPO:TAG"
        ),
    }
    if let Some(field) = unknown {
        anyhow::bail!(
            "invalid {flag} `{value}`: unknown field `{field}`; expected type=registry,ref=HOST/REPO:TAG[,mode=min|max]"
        );
    }
    let raw = reference
        .with_context(|| format!("invalid {flag} `{value}`: ref=HOST/REPO:TAG is required"))?;
    let reference = Reference::parse(&raw)
        .with_context(|| format!("invalid {flag} `{value}`: `{raw}` is not a reference"))?;
    Ok(CacheSpec { reference, mode })
}

/// Writes one `-o` output of the image `id`; `tags` are the `-t` references.
fn write_output(ctx: &Ctx, spec: &OutputSpec, id: &str, tags: &[String]) -> anyhow::Result<()> {
    let record = ctx.store.image(id)?;
    let write = |out: &mut dyn std::io::Write| -> anyhow::Result<()> {
        match spec.kind {
            OutputKind::Oci | OutputKind::Docker => {
                let mut refs = Vec::new();
                for t in tags.iter().chain(&spec.names) {
                    let mut r = Reference::parse(t)
                        .with_context(|| format!("invalid output name `{t}`"))?;
                    if r.tag.is_none() && r.digest.is_none() {
                        r.tag = Some("latest".into());
                    }
                    if !refs.contains(&r) {
                        refs.push(r);
                    }
                }
                let image = crate::archive::save::SaveImage {
                    record: record.clone(),
                    tags: refs,
                };
                crate::archive::save::save(&ctx.store, &[image], out)
                    .map_err(crate::archive::ArchiveError::into_anyhow)
            }
            OutputKind::Tar => Ok(crate::build::output::rootfs_tar(&ctx.store, &record, out)?),
            OutputKind::Local => unreachable!("written as a directory"),
        }
    };
    match (&spec.dest, spec.kind) {
        (Some(dir), OutputKind::Local) => {
            crate::build::output::rootfs_dir(&ctx.store, &record, dir)
                .with_context(|| format!("cannot write the output to `{}`", dir.display()))?;
        }
        (Some(file), _) => {
            // Beside the target, renamed at the end: a failed build leaves no partial file.
            let tmp = crate::archive::TempPath::beside(file);
            let mut f = fs_err::File::create(tmp.path())?;
            write(&mut f)
                .with_context(|| format!("cannot write the output to `{}`", file.display()))?;
            f.sync_all()?;
            tmp.persist(file)
                .map_err(crate::archive::ArchiveError::into_anyhow)?;
        }
        (None, _) => {
            let mut out = std::io::stdout().lock();
            write(&mut out).context("cannot write the output to STDOUT")?;
            std::io::Write::flush(&mut out)?;
        }
    }
    Ok(())
}

/// `--cache-from`: the entries of each cache reference, and a fetcher for their layers from the
/// endpoint that served the manifest. A cache that cannot be read is a warning, as in Docker.
async fn import_caches(
    ctx: &Ctx,
    printer: &Printer,
    specs: &[CacheSpec],
) -> anyhow::Result<Imported<'static>> {
    let mut imported = Imported::default();
    if specs.is_empty() {
        return Ok(imported);
    }
    let opts = RemoteOptions::load(&ctx.daemon)?;
    let mut sources: Vec<(Client, String, Vec<LayerRecord>)> = Vec::new();
    for spec in specs {
        let r = &spec.reference;
        printer.status(&format!("importing cache manifest from {r}"));
        let mut last = None;
        for ep in remote::pull_endpoints(&r.registry, &ctx.daemon) {
            match read_cache(&ep, &opts, r, &mut imported).await {
                Ok((client, n, layers)) => {
                    printer.status(&format!("{n} cached steps in {r}"));
                    sources.push((client, r.repository.clone(), layers));
                    last = None;
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        if let Some(e) = last {
            printer.status(&format!(
                "[Warning] failed to import cache from {r}, building without it: {e:#}"
            ));
        }
    }
    if sources.is_empty() {
        return Ok(imported);
    }
    let store = ctx.store.clone();
    let handle = tokio::runtime::Handle::current();
    let attempts = ctx.daemon.max_download_attempts.max(1);
    imported.fetch = Some(Box::new(move |layer: &LayerRecord| {
        let (client, repo, _) = sources
            .iter()
            .find(|(_, _, ls)| ls.iter().any(|l| l.digest == layer.digest))
            .context("no imported cache lists this layer")?;
        tokio::task::block_in_place(|| {
            handle.block_on(async {
                let mut tries = 0;
                loop {
                    tries += 1;
                    match fetch_layer(client, &store, repo, layer).await {
                        Err(e) if tries < attempts => {
                            tracing::debug!(digest = %layer.digest, error = %e, "retrying a cache layer");
                            tokio::time::sleep(std::time::Duration::from_millis(200 << tries.min(5)))
                                .await;
                        }
                        other => return other,
                    }
                }
            })
        })
    }));
    Ok(imported)
}

/// Reads one cache manifest and its config from `ep` into `imported`: the client, the number of
/// entries and the cache's layers.
async fn read_cache(
    ep: &Endpoint,
    opts: &RemoteOptions,
    r: &Reference,
    imported: &mut Imported<'static>,
) -> anyhow::Result<(Client, usize, Vec<LayerRecord>)> {
    let client = match ep {
        Endpoint::Mirror(url) => Client::mirror(url, opts).await,
        Endpoint::Upstream(host) => Client::connect(host, opts).await,
    }?;
    let m = client
        .manifest(
            &r.repository,
            &r.target(),
            &[crate::archive::media::OCI_MANIFEST],
        )
        .await?;
    let (config, layers) = remote_cache::parse_manifest(&m.bytes)?;
    let config: oci_spec::image::Digest = config.parse()?;
    let mut stream = client.blob(&r.repository, &config, 0).await?;
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        bytes.extend_from_slice(&chunk?);
        anyhow::ensure!(
            bytes.len() <= remote::MAX_MANIFEST_SIZE * 4,
            "the cache config is too large"
        );
    }
    let actual = format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))
    );
    anyhow::ensure!(
        actual == config.to_string(),
        "the cache config {config} has digest {actual}"
    );
    let n = imported.add(&bytes, &layers)?;
    Ok((client, n, layers))
}

/// Downloads a cached layer into the store (its digest verified by the store) and unpacks it
/// (its diff ID verified).
async fn fetch_layer(
    client: &Client,
    store: &Store,
    repo: &str,
    layer: &LayerRecord,
) -> anyhow::Result<()> {
    let digest: oci_spec::image::Digest = layer.digest.parse()?;
    let diff: oci_spec::image::Digest = layer.diff_id.parse()?;
    if !store.has_blob(&digest) {
        let mut writer = store.ingest(Some(&digest))?;
        let mut stream = client.blob(repo, &digest, 0).await?;
        if stream.start != 0 || writer.offset() != 0 {
            writer.discard();
            writer = store.ingest(Some(&digest))?;
        }
        while let Some(chunk) = stream.next().await {
            std::io::Write::write_all(&mut writer, &chunk?)?;
        }
        writer
            .commit()
            .with_context(|| format!("cached layer {digest} failed verification"))?;
    }
    store.unpack_layer(&store.blob_path(&digest), &layer.media_type, &diff)?;
    Ok(())
}

/// `--cache-to`: pushes the cache of `built` (blobs the registry lacks, then the manifest).
async fn export_cache(
    ctx: &Ctx,
    printer: &Printer,
    spec: &CacheSpec,
    built: &Built,
) -> anyhow::Result<()> {
    let r = &spec.reference;
    let export = remote_cache::export(&built.records, |stage| {
        spec.mode == ExportMode::Max || built.lineage.contains(&stage)
    });
    printer.status(&format!("exporting cache to {r}"));
    let opts = RemoteOptions::load(&ctx.daemon)?;
    let client = Client::connect(&r.registry, &opts).await?;
    let tmp = crate::archive::TempPath::at(
        ctx.store
            .root()
            .join("tmp")
            .join(format!("build-cache-{}", uuid::Uuid::new_v4().simple())),
    );
    fs_err::create_dir_all(ctx.store.root().join("tmp"))?;
    fs_err::write(tmp.path(), &export.config)?;
    let config_digest = format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&export.config))
    );
    let mut blobs: Vec<(String, u64, std::path::PathBuf)> = Vec::new();
    for l in &export.layers {
        let d: oci_spec::image::Digest = l.digest.parse()?;
        blobs.push((l.digest.clone(), l.size, ctx.store.blob_path(&d)));
    }
    blobs.push((
        config_digest,
        export.config.len() as u64,
        tmp.path().to_owned(),
    ));
    for (digest, size, path) in blobs {
        let d: oci_spec::image::Digest = digest.parse()?;
        if client.blob_size(&r.repository, &d).await?.is_some() {
            continue;
        }
        anyhow::ensure!(
            path.is_file(),
            "blob {d} is missing from the local store; build again with --no-cache"
        );
        client
            .upload(&r.repository, &d, size, &path, &|_| {})
            .await?;
    }
    let tag = r.tag.clone().unwrap_or_else(|| "latest".into());
    let digest = client
        .put_manifest(
            &r.repository,
            &tag,
            crate::archive::media::OCI_MANIFEST,
            bytes::Bytes::from(export.manifest),
        )
        .await?;
    printer.status(&format!("exported cache to {r}: digest: {digest}"));
    Ok(())
}

/// The Dockerfile's text and its name inside the context, if it is there.
fn read_dockerfile(
    args: &BuildArgs,
    context_dir: Option<&Path>,
    stdin: &mut Option<Vec<u8>>,
) -> anyhow::Result<(String, Option<String>)> {
    match args.file.as_deref() {
        Some("-") => {
            let bytes = stdin.take().context("STDIN is already the build context")?;
            Ok((String::from_utf8(bytes)?, None))
        }
        Some(f) => {
            let path = fs_err::canonicalize(f).with_context(|| {
                format!("unable to prepare context: the Dockerfile `{f}` cannot be read")
            })?;
            let name = context_dir
                .and_then(|c| path.strip_prefix(c).ok())
                .map(|p| p.to_string_lossy().into_owned());
            Ok((fs_err::read_to_string(&path)?, name))
        }
        None => {
            let dir = context_dir.context("no Dockerfile: give one with -f")?;
            for name in ["Dockerfile", "dockerfile"] {
                if let Ok(text) = fs_err::read_to_string(dir.join(name)) {
                    return Ok((text, Some(name.to_owned())));
                }
            }
            anyhow::bail!(
                "unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {}: no such file or directory",
                dir.join("Dockerfile").display()
            )
        }
    }
}

/// Runs `build`.
///
/// # Errors
/// Bad flags, an unreadable context, a failed pull, a failed build (with the failing RUN's
/// exit code attached).
#[allow(clippy::too_many_lines)]
pub async fn run(ctx: &Ctx, args: &BuildArgs) -> anyhow::Result<()> {
    let host = crate::archive::Platform::host();
    if let Some(p) = &args.platform {
        let want = crate::archive::Platform::parse(p)?;
        if want.os != host.os || want.architecture != host.architecture {
            anyhow::bail!(
                "berth build builds for the host's platform only ({}/{}), not `{p}`: other platforms would need emulation",
                host.os,
                host.architecture
            );
        }
    }
    let network = match args.network.as_str() {
        "default" | "bridge" => BuildNetwork::Bridge,
        "none" => BuildNetwork::None,
        "host" => BuildNetwork::Host,
        other => anyhow::bail!(
            "network mode `{other}` is not supported by berth build: use `default` (the bridge), `bridge`, `none` or `host`"
        ),
    };
    let mut tags = Vec::new();
    let mut shown = Vec::new();
    for t in &args.tags {
        let r = Reference::parse(t)
            .with_context(|| format!("invalid argument \"{t}\" for \"-t, --tag\" flag"))?;
        anyhow::ensure!(
            r.digest.is_none(),
            "invalid argument \"{t}\" for \"-t, --tag\" flag: a tag cannot have a digest"
        );
        let mut full = r.clone();
        if full.tag.is_none() {
            full.tag = Some("latest".into());
        }
        shown.push(full.familiar());
        tags.push(full.to_string());
    }
    let scratch = ctx
        .store
        .root()
        .join("tmp")
        .join(format!("build-context-{}", uuid::Uuid::new_v4().simple()));
    let mut stdin_bytes = None;
    if args.context == "-" || args.file.as_deref() == Some("-") {
        let mut buf = Vec::new();
        std::io::stdin().lock().read_to_end(&mut buf)?;
        stdin_bytes = Some(buf);
    }
    let (context, dockerfile, dockerfile_name) = if args.context == "-" {
        let bytes = stdin_bytes.take().unwrap_or_default();
        if is_tar(&bytes) {
            let keep = args.file.clone().unwrap_or_else(|| "Dockerfile".into());
            let c = Context::tar(&bytes[..], &scratch, Some(&keep))?;
            let text = match &args.file {
                Some(f) => fs_err::read_to_string(c.root().join(f))?,
                None => fs_err::read_to_string(c.root().join("Dockerfile"))
                    .context("the context on STDIN has no Dockerfile")?,
            };
            (c, text, Some(keep))
        } else {
            (Context::empty(&scratch)?, String::from_utf8(bytes)?, None)
        }
    } else if let Some(remote) = build_url::RemoteContext::parse(&args.context) {
        let fetched = remote.fetch(&scratch).await?;
        match fetched {
            build_url::Fetched::Dir(c) => {
                let root = c.root().to_owned();
                let (text, name) = read_dockerfile(args, Some(&root), &mut stdin_bytes)?;
                let c = c.keep(name.as_deref())?;
                (c, text, name)
            }
            build_url::Fetched::Dockerfile(text) => {
                anyhow::ensure!(
                    args.file.is_none(),
                    "`{}` is a Dockerfile, not a context: -f cannot name another one",
                    args.context
                );
                (Context::empty(&scratch)?, text, None)
            }
        }
    } else {
        let dir = fs_err::canonicalize(&args.context).with_context(|| {
            format!(
                "unable to prepare context: path \"{}\" not found",
                args.context
            )
        })?;
        let (text, name) = read_dockerfile(args, Some(&dir), &mut stdin_bytes)?;
        (Context::dir(&dir, name.as_deref())?, text, name)
    };
    let opts = BuildOptions {
        dockerfile,
        dockerfile_name,
        tags,
        build_args: key_values(&args.build_args, true).into_iter().collect(),
        target: args.target.clone(),
        no_cache: args.no_cache,
        labels: key_values(&args.labels, false),
        network,
        plain: args.progress == "plain",
        quiet: args.quiet,
        source_date_epoch: std::env::var("SOURCE_DATE_EPOCH")
            .ok()
            .and_then(|v| v.parse().ok()),
        secrets: secrets(&args.secret)?,
    };
    let cache_from = args
        .export
        .cache_from
        .iter()
        .map(|v| cache_spec(v, "--cache-from"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let cache_to = args
        .export
        .cache_to
        .iter()
        .map(|v| cache_spec(v, "--cache-to"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let outputs = args
        .export
        .output
        .iter()
        .map(|v| OutputSpec::parse(v))
        .collect::<Result<Vec<_>, _>>()?;
    if outputs.iter().any(|o| o.dest.is_none()) {
        anyhow::ensure!(
            !args.quiet,
            "`-q` prints the image ID on STDOUT, where the output goes too: give the output a dest=FILE"
        );
        anyhow::ensure!(
            !std::io::IsTerminal::is_terminal(&std::io::stdout()),
            "refusing to write the output to a terminal: give it a dest=FILE or redirect STDOUT"
        );
    }
    let policy = if args.pull { "always" } else { "missing" };
    for image in crate::build::external_images(&opts.dockerfile, &opts)? {
        super::pull::for_run(ctx, &image, policy, None).await?;
    }
    let quiet = args.quiet;
    let printer = &ctx.printer;
    let imported = if opts.no_cache {
        Imported::default()
    } else {
        import_caches(ctx, &printer.quiet(quiet), &cache_from).await?
    };
    let log = |line: &str| {
        if !quiet {
            printer.status(line);
        }
    };
    let net = Network {
        cache: imported,
        download: Some(Box::new(build_url::downloader()?)),
    };
    match crate::build::build(&ctx.store, &context, &opts, &net, &log) {
        Ok(built) => {
            for spec in &cache_to {
                export_cache(ctx, &printer.quiet(quiet), spec, &built)
                    .await
                    .with_context(|| {
                        format!(
                            "image {} was built, but its cache could not be exported to {}",
                            super::short_id(&built.id),
                            spec.reference
                        )
                    })?;
            }
            for o in &outputs {
                write_output(ctx, o, &built.id, &opts.tags)?;
            }
            if let Some(f) = &args.iidfile {
                fs_err::write(f, &built.id)?;
            }
            if quiet {
                printer.data(&built.id);
            } else {
                printer.status(&format!(
                    "Successfully built {}",
                    super::short_id(&built.id)
                ));
                for t in &shown {
                    printer.status(&format!("Successfully tagged {t}"));
                }
            }
            Ok(())
        }
        Err(e) => {
            if let BuildError::RunFailed { output, .. } = &e {
                if quiet {
                    for l in output {
                        printer.quiet(false).status(l);
                    }
                }
            }
            let code = e.exit_code();
            Err(anyhow::Error::new(e).context(crate::Exit(code)))
        }
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case(
        "--cache-from",
        "reg.example:5000/cache/app:main",
        "main",
        ExportMode::Min
    )]
    #[case(
        "--cache-from",
        "type=registry,ref=reg.example:5000/cache/app:b",
        "b",
        ExportMode::Min
    )]
    #[case(
        "--cache-to",
        "type=registry,ref=reg.example:5000/cache/app:c,mode=max",
        "c",
        ExportMode::Max
    )]
    #[case(
        "--cache-to",
        "ref=reg.example:5000/cache/app:d,mode=min,compression=zstd",
        "d",
        ExportMode::Min
    )]
    fn cache_specs_parse_like_buildx(
        #[case] flag: &str,
        #[case] value: &str,
        #[case] tag: &str,
        #[case] mode: ExportMode,
    ) {
        let spec = cache_spec(value, flag).unwrap();
        assert_eq!(spec.reference.registry, "reg.example:5000");
        assert_eq!(spec.reference.repository, "cache/app");
        assert_eq!(spec.reference.tag.as_deref(), Some(tag));
        assert_eq!(spec.mode, mode);
    }

    #[rstest]
    #[case(
        "--cache-to",
        "type=registry,mode=max",
        "ref=HOST/REPO:TAG is required"
    )]
    #[case("--cache-to", "type=gha", "type `gha` is not supported")]
    #[case("--cache-from", "type=local,src=/x", "type `local` is not supported")]
    #[case(
        "--cache-to",
        "type=registry,ref=r/a:1,mode=all",
        "mode must be `min` or `max`"
    )]
    #[case(
        "--cache-to",
        "type=registry,ref=r/a:1,foo=bar",
        "unknown field `foo=bar`"
    )]
    fn bad_cache_specs_say_what_to_write(
        #[case] flag: &str,
        #[case] value: &str,
        #[case] want: &str,
    ) {
        let e = format!("{:#}", cache_spec(value, flag).unwrap_err());
        assert!(e.contains(want), "{e}");
    }
}
