//! The build context: a directory (the user's, or scratch space a tar on stdin was unpacked
//! into) seen through `.dockerignore`. Owns the rules for COPY/ADD sources: lexical `..` above
//! the root is refused, symlinks are resolved as if the root were `/` and one pointing out is
//! refused, globs match path components, and [`Context::hash`] digests what a source would copy
//! (paths, modes, owners, bytes, link targets; never mtimes) for cache keys.
//! Calls only the file system and [`super::ignore`].

use std::io::Read;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::ignore::Matcher;
use super::{BuildError, Result};

/// A resolved source: its host path and its path relative to the context root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Host path (symlinks in the source path resolved inside the root).
    pub host: PathBuf,
    /// Relative to the root, slash-separated (`""` for the root itself).
    pub rel: String,
}

/// A build context.
#[derive(Debug)]
pub struct Context {
    root: PathBuf,
    matcher: Matcher,
    scratch: bool,
}

impl Drop for Context {
    fn drop(&mut self) {
        if self.scratch {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

impl Context {
    /// The directory `root`, filtered by its `.dockerignore`; the Dockerfile (`keep`) and
    /// `.dockerignore` are never excluded, as Docker's CLI sends them anyway.
    ///
    /// # Errors
    /// `root` is not a readable directory, or `.dockerignore` has a bad pattern.
    pub fn dir(root: &Path, keep: Option<&str>) -> Result<Self> {
        let root = fs_err::canonicalize(root).map_err(BuildError::io(root))?;
        if !root.is_dir() {
            return Err(BuildError::Io {
                path: root,
                source: std::io::Error::other("the build context is not a directory"),
            });
        }
        let text = match fs_err::read_to_string(root.join(".dockerignore")) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(BuildError::io(root.join(".dockerignore"))(e)),
        };
        let mut matcher =
            Matcher::new(&text).map_err(|e| BuildError::setup(".dockerignore")(e.into()))?;
        if matcher.excluded(".dockerignore") {
            matcher.keep(".dockerignore");
        }
        if let Some(k) = keep {
            if matcher.excluded(k) {
                matcher.keep(k);
            }
        }
        Ok(Self {
            root,
            matcher,
            scratch: false,
        })
    }

    /// A tar (plain, gzip or zstd) unpacked into `scratch`, which is removed on drop.
    ///
    /// # Errors
    /// Not a tar, an entry escaping the directory, I/O.
    pub fn tar(input: impl Read, scratch: &Path, keep: Option<&str>) -> Result<Self> {
        fs_err::create_dir_all(scratch).map_err(BuildError::io(scratch))?;
        let guard = Self {
            root: scratch.to_owned(),
            matcher: Matcher::default(),
            scratch: true,
        };
        let reader = crate::archive::decompressed(std::io::BufReader::new(input))?;
        let mut ar = tar::Archive::new(reader);
        ar.set_preserve_permissions(true);
        ar.set_preserve_mtime(true);
        // tar's `unpack` refuses entries that would land outside the directory.
        ar.unpack(scratch).map_err(BuildError::io(scratch))?;
        let mut ctx = Self::dir(scratch, keep)?;
        ctx.scratch = true;
        std::mem::forget(guard);
        Ok(ctx)
    }

    /// The directory `scratch` (a clone or a download berth made) as the context, removed on
    /// drop.
    ///
    /// # Errors
    /// As [`Context::dir`]; `scratch` is removed then too.
    pub fn owned_dir(scratch: &Path, keep: Option<&str>) -> Result<Self> {
        let guard = Self {
            root: scratch.to_owned(),
            matcher: Matcher::default(),
            scratch: true,
        };
        let mut ctx = Self::dir(scratch, keep)?;
        ctx.scratch = true;
        std::mem::forget(guard);
        Ok(ctx)
    }

    /// Gives up the context, returning its root; the directory is no longer removed on drop
    /// (the caller owns it now).
    #[must_use]
    pub fn release(mut self) -> PathBuf {
        self.scratch = false;
        self.root.clone()
    }

    /// An empty context (a Dockerfile on stdin) in `scratch`, removed on drop.
    ///
    /// # Errors
    /// I/O.
    pub fn empty(scratch: &Path) -> Result<Self> {
        fs_err::create_dir_all(scratch).map_err(BuildError::io(scratch))?;
        Ok(Self {
            root: scratch.to_owned(),
            matcher: Matcher::default(),
            scratch: true,
        })
    }

    /// The root on the host.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// True when `.dockerignore` excludes `rel`.
    #[must_use]
    pub fn excluded(&self, rel: &str) -> bool {
        !rel.is_empty() && self.matcher.excluded(rel)
    }

    /// Resolves a COPY/ADD source (globs allowed) to what it names.
    ///
    /// # Errors
    /// `..` above the root, a symlink pointing out, nothing found.
    pub fn resolve(&self, source: &str) -> Result<Vec<Source>> {
        resolve_in(&self.root, source, Some(self))
    }

    /// Entries under `src` (itself first), sorted, excluded ones left out, not following
    /// symlinks.
    ///
    /// # Errors
    /// I/O.
    pub fn walk(&self, src: &Source) -> Result<Vec<(PathBuf, String)>> {
        walk_in(src, Some(self))
    }

    /// Digest of what the sources would copy: for each entry its relative path, type, mode,
    /// uid, gid and content (bytes, or a symlink's target). Mtimes are left out on purpose.
    ///
    /// # Errors
    /// I/O.
    pub fn hash(&self, sources: &[Source]) -> Result<String> {
        hash_sources(sources, Some(self))
    }
}

/// [`Context::resolve`] in any root (a stage's file system for `COPY --from`, no ignore file).
pub(crate) fn resolve_in(root: &Path, source: &str, ctx: Option<&Context>) -> Result<Vec<Source>> {
    let outside = || BuildError::OutsideContext {
        path: source.to_owned(),
    };
    let mut parts: Vec<String> = Vec::new();
    for c in Path::new(source).components() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                if parts.pop().is_none() {
                    return Err(outside());
                }
            }
            Component::Normal(n) => parts.push(n.to_string_lossy().into_owned()),
        }
    }
    let pattern = parts.join("/");
    let found: Vec<String> = if pattern.contains(['*', '?', '[']) {
        let re = super::ignore::glob(&pattern)
            .map_err(|e| BuildError::setup("COPY source pattern")(e.into()))?;
        let all = walk_in(
            &Source {
                host: root.to_owned(),
                rel: String::new(),
            },
            ctx,
        )?;
        all.into_iter()
            .map(|(_, rel)| rel)
            .filter(|rel| !rel.is_empty() && re.is_match(rel))
            .collect()
    } else {
        vec![pattern]
    };
    let mut out = Vec::new();
    for rel in found {
        let host = follow_inside(root, &rel).ok_or_else(outside)?;
        let rel_after = host
            .strip_prefix(root)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let excluded = ctx.is_some_and(|c| c.excluded(&rel) || c.excluded(&rel_after));
        if excluded || std::fs::symlink_metadata(&host).is_err() {
            continue;
        }
        out.push(Source {
            host,
            rel: rel_after,
        });
    }
    if out.is_empty() {
        return Err(BuildError::NotFound {
            path: source.to_owned(),
        });
    }
    Ok(out)
}

/// Resolves `rel` under `root` following symlinks as if `root` were `/`, except that a symlink
/// whose target (absolute, or relative climbing past the root) leaves the root is refused:
/// `None`.
fn follow_inside(root: &Path, rel: &str) -> Option<PathBuf> {
    let mut resolved: Vec<String> = Vec::new();
    let mut pending: Vec<String> = rel
        .split('/')
        .filter(|s| !s.is_empty())
        .rev()
        .map(str::to_owned)
        .collect();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "." => continue,
            ".." => {
                resolved.pop()?;
                continue;
            }
            _ => {}
        }
        let here: PathBuf = resolved
            .iter()
            .fold(root.to_owned(), |p, c| p.join(c))
            .join(&part);
        match std::fs::read_link(&here) {
            Ok(target) => {
                hops += 1;
                if hops > 40 || target.is_absolute() {
                    // An absolute link points at the host's file system from the context's view.
                    return None;
                }
                for c in target.to_string_lossy().split('/').rev() {
                    if !c.is_empty() {
                        pending.push(c.to_owned());
                    }
                }
            }
            Err(_) => resolved.push(part),
        }
    }
    Some(resolved.iter().fold(root.to_owned(), |p, c| p.join(c)))
}

fn walk_in(src: &Source, ctx: Option<&Context>) -> Result<Vec<(PathBuf, String)>> {
    let mut out = vec![(src.host.clone(), src.rel.clone())];
    let meta = fs_err::symlink_metadata(&src.host).map_err(BuildError::io(&src.host))?;
    if meta.is_dir() {
        walk_dir(&src.host, &src.rel, ctx, &mut out)?;
    }
    Ok(out)
}

fn walk_dir(
    dir: &Path,
    rel: &str,
    ctx: Option<&Context>,
    out: &mut Vec<(PathBuf, String)>,
) -> Result<()> {
    let mut names: Vec<_> = fs_err::read_dir(dir)
        .map_err(BuildError::io(dir))?
        .filter_map(std::result::Result::ok)
        .map(|e| e.file_name())
        .collect();
    names.sort();
    for name in names {
        let child_rel = if rel.is_empty() {
            name.to_string_lossy().into_owned()
        } else {
            format!("{rel}/{}", name.to_string_lossy())
        };
        let host = dir.join(&name);
        let is_dir = std::fs::symlink_metadata(&host).is_ok_and(|m| m.is_dir());
        let excluded = ctx.is_some_and(|c| c.excluded(&child_rel));
        if excluded && !(is_dir && ctx.is_some_and(|c| c.matcher.has_exceptions())) {
            continue;
        }
        let at = out.len();
        if !excluded {
            out.push((host.clone(), child_rel.clone()));
        }
        if is_dir {
            walk_dir(&host, &child_rel, ctx, out)?;
            // An excluded directory appears only when an exception keeps something inside.
            if excluded && out.len() > at {
                out.insert(at, (host, child_rel));
            }
        }
    }
    Ok(())
}

pub(crate) fn hash_sources(sources: &[Source], ctx: Option<&Context>) -> Result<String> {
    let mut h = Sha256::new();
    for src in sources {
        let base = src.rel.clone();
        for (host, rel) in walk_in(src, ctx)? {
            let meta = fs_err::symlink_metadata(&host).map_err(BuildError::io(&host))?;
            let name = rel.strip_prefix(&base).unwrap_or(&rel);
            h.update(name.as_bytes());
            h.update([0]);
            h.update(
                format!(
                    "{:o} {} {} {}\0",
                    meta.mode(),
                    meta.uid(),
                    meta.gid(),
                    meta.len()
                )
                .as_bytes(),
            );
            if meta.file_type().is_symlink() {
                let t = fs_err::read_link(&host).map_err(BuildError::io(&host))?;
                h.update(t.to_string_lossy().as_bytes());
            } else if meta.is_file() {
                let mut f = fs_err::File::open(&host).map_err(BuildError::io(&host))?;
                std::io::copy(&mut f, &mut h).map_err(BuildError::io(&host))?;
            }
            h.update([0]);
        }
    }
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        fs_err::create_dir_all(r.join("ctx/src/deep")).unwrap();
        fs_err::write(r.join("ctx/src/a.rs"), "a").unwrap();
        fs_err::write(r.join("ctx/src/deep/b.rs"), "b").unwrap();
        fs_err::write(r.join("ctx/notes.md"), "n").unwrap();
        fs_err::write(r.join("ctx/README.md"), "r").unwrap();
        fs_err::write(r.join("secret"), "s").unwrap();
        symlink("../secret", r.join("ctx/out")).unwrap();
        symlink("/etc/passwd", r.join("ctx/abs")).unwrap();
        symlink("src/a.rs", r.join("ctx/in")).unwrap();
        fs_err::write(r.join("ctx/.dockerignore"), "*.md\n!README.md\n").unwrap();
        t
    }

    #[test]
    fn sources_stay_inside() {
        let t = tree();
        let c = Context::dir(&t.path().join("ctx"), None).unwrap();
        assert!(matches!(
            c.resolve("../secret"),
            Err(BuildError::OutsideContext { .. })
        ));
        assert!(matches!(
            c.resolve("out"),
            Err(BuildError::OutsideContext { .. })
        ));
        assert!(matches!(
            c.resolve("abs"),
            Err(BuildError::OutsideContext { .. })
        ));
        assert_eq!(c.resolve("in").unwrap()[0].rel, "src/a.rs");
        assert!(matches!(
            c.resolve("notes.md"),
            Err(BuildError::NotFound { .. })
        ));
        assert_eq!(c.resolve("README.md").unwrap().len(), 1);
        let g: Vec<String> = c
            .resolve("src/*.rs")
            .unwrap()
            .into_iter()
            .map(|s| s.rel)
            .collect();
        assert_eq!(g, ["src/a.rs"]);
    }

    #[test]
    fn walk_honours_dockerignore() {
        let t = tree();
        let c = Context::dir(&t.path().join("ctx"), None).unwrap();
        let root = c.resolve(".").unwrap();
        let names: Vec<String> = c.walk(&root[0]).unwrap().into_iter().map(|e| e.1).collect();
        assert!(names.contains(&"README.md".to_owned()));
        assert!(!names.contains(&"notes.md".to_owned()));
        assert!(names.contains(&"src/deep/b.rs".to_owned()));
    }

    #[test]
    fn hash_ignores_mtime_but_not_bytes() {
        let t = tree();
        let c = Context::dir(&t.path().join("ctx"), None).unwrap();
        let s = c.resolve("src").unwrap();
        let h1 = c.hash(&s).unwrap();
        let f = fs_err::File::options()
            .write(true)
            .open(t.path().join("ctx/src/a.rs"))
            .unwrap();
        f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(c.hash(&s).unwrap(), h1);
        fs_err::write(t.path().join("ctx/src/a.rs"), "A").unwrap();
        assert_ne!(c.hash(&s).unwrap(), h1);
    }
}
