//! `berth cp`: copies between a container and the host, `CONTAINER:SRC DEST` or
//! `SRC CONTAINER:DEST`, `-` standing for a tar stream on STDIN/STDOUT. Container paths are
//! resolved with `secure_join` against the container's merged root, so a symlink in the
//! container (`/evil -> /`) never leads to a host file (CVE-2018-15664 class).

use std::ffi::OsString;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use berth_runtime::rootfs::secure_join;

use crate::cli::CpArgs;
use crate::containers;
use crate::containers_fs::{append_tree, extract_in_root, piped, MergedRoot};
use crate::context::Ctx;

/// `CONTAINER:PATH` split, or `None` for a local path (one with a `/` before any `:`, as Docker
/// decides).
fn split(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') || arg.starts_with('.') {
        return None;
    }
    let (c, p) = arg.split_once(':')?;
    if c.is_empty() || c.contains('/') {
        return None;
    }
    Some((c, p))
}

/// Runs `cp`.
///
/// # Errors
/// Both or neither side in a container, a missing source, I/O.
pub fn run(ctx: &Ctx, args: &CpArgs) -> anyhow::Result<()> {
    match (split(&args.source), split(&args.destination)) {
        (Some((c, src)), None) => copy_out(ctx, c, src, &args.destination),
        (None, Some((c, dest))) => copy_in(ctx, &args.source, c, dest),
        (Some(_), Some(_)) => anyhow::bail!("copying between containers is not supported"),
        (None, None) => anyhow::bail!("must specify at least one container source"),
    }
}

fn open(ctx: &Ctx, container: &str) -> anyhow::Result<MergedRoot> {
    let (dir, state) = containers::find(ctx.store.root(), container)?;
    MergedRoot::open(&ctx.store, &dir, &state)
}

/// The container path `p` with its parent resolved inside `root` and its last component kept
/// (not followed), plus that last component (`None` for the root itself).
fn resolve_keep_last(root: &Path, p: &str) -> anyhow::Result<(PathBuf, Option<OsString>)> {
    let p = Path::new(if p.is_empty() { "/" } else { p });
    let rel = crate::containers_fs::normal(p);
    match rel.file_name() {
        Some(name) => {
            let parent = secure_join(root, rel.parent().unwrap_or(Path::new("")))?;
            Ok((parent.join(name), Some(name.to_owned())))
        }
        None => Ok((root.to_owned(), None)),
    }
}

fn copy_out(ctx: &Ctx, container: &str, src: &str, dest: &str) -> anyhow::Result<()> {
    let root = open(ctx, container)?;
    let (path, name) = resolve_keep_last(root.path(), src)?;
    std::fs::symlink_metadata(&path).with_context(|| {
        format!(
            "Error response from daemon: Could not find the file {src} in container {container}"
        )
    })?;
    let name = name.unwrap_or_else(|| OsString::from("."));
    if dest == "-" {
        let mut b = tar::Builder::new(BufWriter::new(std::io::stdout().lock()));
        append_tree(&mut b, &path, Path::new(&name), false)?;
        b.into_inner()?.flush()?;
        return Ok(());
    }
    // Into an existing directory under the source's name, or else as DEST itself.
    let dest = Path::new(dest);
    let (dir, top) = if dest.is_dir() {
        (dest.to_owned(), name)
    } else {
        let parent = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        anyhow::ensure!(
            parent.is_dir(),
            "destination directory `{}` does not exist",
            parent.display()
        );
        (
            parent,
            dest.file_name().context("invalid destination")?.to_owned(),
        )
    };
    let top = PathBuf::from(top);
    piped(
        move |w| {
            let mut b = tar::Builder::new(BufWriter::new(w));
            append_tree(&mut b, &path, &top, false)?;
            b.into_inner()?.flush()?;
            Ok(())
        },
        |r| {
            let mut a = tar::Archive::new(r);
            a.set_preserve_permissions(true);
            a.set_preserve_ownerships(nix::unistd::geteuid().is_root());
            a.set_overwrite(true);
            a.unpack(&dir)
                .with_context(|| format!("cannot extract into `{}`", dir.display()))
        },
    )
}

fn copy_in(ctx: &Ctx, src: &str, container: &str, dest: &str) -> anyhow::Result<()> {
    let root = open(ctx, container)?;
    let root_path = root.path().to_owned();
    let dest_in = crate::containers_fs::normal(Path::new(dest));
    let resolved = secure_join(&root_path, &dest_in)?;
    if src == "-" {
        anyhow::ensure!(
            resolved.is_dir(),
            "Error response from daemon: extraction point is not a directory"
        );
        return extract_in_root(&root_path, &dest_in, std::io::stdin().lock());
    }
    let src_path = PathBuf::from(src);
    std::fs::symlink_metadata(&src_path)
        .with_context(|| format!("could not find the file {src}"))?;
    let (dir, top) = if resolved.is_dir() {
        let name = src_path
            .canonicalize()?
            .file_name()
            .map_or_else(|| OsString::from("."), ToOwned::to_owned);
        (dest_in, name)
    } else {
        let parent = dest_in.parent().unwrap_or(Path::new("")).to_owned();
        anyhow::ensure!(
            secure_join(&root_path, &parent)?.is_dir(),
            "Error response from daemon: Could not find the file {} in container {container}",
            parent.display()
        );
        (
            parent,
            dest_in
                .file_name()
                .context("invalid destination")?
                .to_owned(),
        )
    };
    let top = PathBuf::from(top);
    piped(
        move |w| {
            let mut b = tar::Builder::new(BufWriter::new(w));
            append_tree(&mut b, &src_path, &top, false)?;
            b.into_inner()?.flush()?;
            Ok(())
        },
        |r| extract_in_root(&root_path, &dir, r),
    )
}
