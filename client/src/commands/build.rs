//! `berth build [OPTIONS] PATH | -`: reads the context (a directory, or from STDIN a tar or a
//! Dockerfile) and the Dockerfile, pulls missing base images like `berth pull`, then runs the
//! build ([`crate::build`]). Step lines go to stderr, Docker's classic shape; stdout carries
//! only the image ID, with `-q`. A failing RUN exits with its own code, as Docker does.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::build::context::Context;
use crate::build::{BuildError, BuildNetwork, BuildOptions};
use crate::cli::BuildArgs;
use crate::context::Ctx;
use crate::reference::Reference;

fn is_tar(head: &[u8]) -> bool {
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
    if args.context.contains("://") || args.context.starts_with("git@") {
        anyhow::bail!(
            "building from a URL ({}) is not supported: clone or download it, then build the directory",
            args.context
        );
    }
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
        "default" | "none" => BuildNetwork::None,
        "host" => BuildNetwork::Host,
        other => anyhow::bail!(
            "network mode `{other}` is not supported by berth build: use `none` (the default) or `host`"
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
    let policy = if args.pull { "always" } else { "missing" };
    for image in crate::build::external_images(&opts.dockerfile, &opts)? {
        super::pull::for_run(ctx, &image, policy).await?;
    }
    let quiet = args.quiet;
    let printer = &ctx.printer;
    let log = |line: &str| {
        if !quiet {
            printer.status(line);
        }
    };
    match crate::build::build(&ctx.store, &context, &opts, &log) {
        Ok(built) => {
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
