//! `berth cp`: copies between a container and the host, `CONTAINER:SRC DEST` or
//! `SRC CONTAINER:DEST`, `-` standing for a tar stream on STDIN/STDOUT. Container paths are
//! looked up inside a handle of the container's merged root ([`RootDir`]), and the copy reads
//! and writes relative to handles from there, so a symlink in the container (`/evil -> /`), even
//! one swapped in while the copy runs, never leads to a host file (CVE-2018-15664).

use std::ffi::OsString;
use std::io::{BufWriter, Write as _};
use std::os::fd::AsFd as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use rustix::fs::{AtFlags, FileType};

use crate::cli::CpArgs;
use crate::container;
use crate::containers_fs::resolve::lexical;
use crate::containers_fs::{
    append_tree, append_tree_at, extract_in_root, piped, MergedRoot, RootDir,
};
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

fn open(ctx: &Ctx, container: &str) -> anyhow::Result<(MergedRoot, RootDir)> {
    let (dir, state) = container::find(ctx.store.root(), container)?;
    let merged = MergedRoot::open(&ctx.store, &dir, &state)?;
    let root = RootDir::open(merged.path())?;
    Ok((merged, root))
}

/// Whether the container path `p` is a directory (symlinks followed inside the root).
fn is_dir(root: &RootDir, p: &Path) -> bool {
    root.resolve(p)
        .ok()
        .and_then(|fd| rustix::fs::fstat(fd).ok())
        .is_some_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)
}

fn copy_out(ctx: &Ctx, container: &str, src: &str, dest: &str) -> anyhow::Result<()> {
    let (_merged, root) = open(ctx, container)?;
    let missing = || {
        format!(
            "Error response from daemon: Could not find the file {src} in container {container}"
        )
    };
    // The source's directory as a handle inside the root; its last component is not followed.
    let (parent, name) = root
        .resolve_parent(Path::new(if src.is_empty() { "/" } else { src }))
        .with_context(missing)?;
    let last = name.clone().unwrap_or_else(|| OsString::from("."));
    rustix::fs::statat(&parent, &last, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(std::io::Error::from)
        .with_context(missing)?;
    let name = name.unwrap_or_else(|| OsString::from("."));
    if dest == "-" {
        let mut b = tar::Builder::new(BufWriter::new(std::io::stdout().lock()));
        append_tree_at(&mut b, parent.as_fd(), &last, Path::new(&name), false)?;
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
            append_tree_at(&mut b, parent.as_fd(), &last, &top, false)?;
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
    let (_merged, root) = open(ctx, container)?;
    let dest_in = lexical(Path::new(dest));
    if src == "-" {
        anyhow::ensure!(
            is_dir(&root, &dest_in),
            "Error response from daemon: extraction point is not a directory"
        );
        return extract_in_root(&root, &dest_in, std::io::stdin().lock());
    }
    let src_path = PathBuf::from(src);
    std::fs::symlink_metadata(&src_path)
        .with_context(|| format!("could not find the file {src}"))?;
    let (dir, top) = if is_dir(&root, &dest_in) {
        let name = src_path
            .canonicalize()?
            .file_name()
            .map_or_else(|| OsString::from("."), ToOwned::to_owned);
        (dest_in, name)
    } else {
        let parent = dest_in.parent().unwrap_or(Path::new("")).to_owned();
        anyhow::ensure!(
            is_dir(&root, &parent),
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
        |r| extract_in_root(&root, &dir, r),
    )
}
