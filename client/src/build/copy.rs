//! COPY, ADD and WORKDIR: files written into a fresh upper dir over the state's layers
//! ([`super::root`]), from the context (through `.dockerignore`, never outside it), a stage or
//! an image (`--from`), or a heredoc. Destinations resolve inside the image root
//! (`secure_join`); `--chown` names come from the image's passwd/group; `--chmod` is octal;
//! ADD extracts a local tar. Ownership is 0:0 unless `--chown`, as Docker's classic builder.
//!
//! `ADD http(s)://…` downloads through the caller's [`super::Network::download`] into a temp
//! file under `<data-root>/tmp/`: mode 0600 (unless `--chmod`), named after the URL's last path
//! segment when the destination ends in `/`, mtime from `Last-Modified`, never extracted. The
//! cache key carries the `--checksum` when one is given (then a hit needs no download, as in
//! BuildKit) and otherwise the downloaded bytes' digest and `Last-Modified`, so the URL is
//! fetched on every build to know whether it changed, as Docker's classic builder does.

use std::io::Read as _;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use berth_runtime::rootfs::secure_join;

use super::context::{hash_sources, resolve_in, Source};
use super::dockerfile::{Copy, Instruction};
use super::executor::{Builder, StageRun};
use super::root::BuildRoot;
use super::state::ImageState;
use super::{layer, BuildError, Result};
use crate::store::LayerRecord;

/// Lexically cleaned absolute path (`/a/./b/../c/` → `/a/c`).
pub(super) fn clean_abs(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// `mkdir -p` of the working directory; its layer when it had to be created.
pub(super) fn make_workdir(
    b: &mut Builder<'_>,
    state: &ImageState,
    path: &str,
) -> Result<Option<(LayerRecord, String)>> {
    let mut root = BuildRoot::mount(b.store, &state.layers)?;
    let host = secure_join(&root.rootfs(), Path::new(path))
        .map_err(|e| BuildError::setup(format!("WORKDIR {path}"))(e.into()))?;
    if !host.is_dir() {
        mkdir_all(&root.rootfs(), &host, None)?;
    }
    root.unmount()?;
    layer::from_upper(b.store, &root.upper(), b.opts.source_date_epoch)
}

/// Creates `dir` and missing parents under `rootfs` (0755, owned by `owner` or root).
fn mkdir_all(rootfs: &Path, dir: &Path, owner: Option<(u32, u32)>) -> Result<()> {
    if dir.is_dir() || dir == rootfs {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        mkdir_all(rootfs, parent, owner)?;
    }
    if std::fs::symlink_metadata(dir).is_ok() {
        fs_err::remove_file(dir).map_err(BuildError::io(dir))?;
    }
    fs_err::create_dir(dir).map_err(BuildError::io(dir))?;
    fs_err::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .map_err(BuildError::io(dir))?;
    let (u, g) = owner.unwrap_or((0, 0));
    std::os::unix::fs::lchown(dir, Some(u), Some(g)).map_err(BuildError::io(dir))?;
    Ok(())
}

/// Where a COPY comes from.
enum Origin {
    Context,
    Root(BuildRoot),
}

/// An `ADD <url>` source.
struct UrlSource {
    url: String,
    /// The file name in the image when the destination is a directory.
    name: String,
    /// Downloaded before the cache lookup (no `--checksum`): the file and what it was.
    fetched: Option<(crate::archive::TempPath, super::Downloaded)>,
}

struct Plan {
    sources: Vec<Source>,
    urls: Vec<UrlSource>,
    checksum: Option<String>,
    heredocs: Vec<(String, String)>,
    dest: String,
    chown: Option<String>,
    chmod: Option<u32>,
    origin: Origin,
    add: bool,
    line: usize,
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://") || s.starts_with("git@")
}

/// `%XX` decoded (invalid escapes kept as written).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The file name Docker gives a downloaded URL: the last segment of its path (`path.Base`).
fn url_file_name(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let path = rest.split(['?', '#']).next()?;
    let path = path.split_once('/').map_or("", |(_, p)| p);
    let last = path.trim_end_matches('/').rsplit('/').next()?;
    let name = percent_decode(last);
    (!name.is_empty() && name != "." && name != ".." && !name.contains('/')).then_some(name)
}

/// Downloads `url` into a temp file, verifying `checksum` when given.
fn fetch_url(
    b: &Builder<'_>,
    url: &str,
    checksum: Option<&str>,
    line: usize,
) -> Result<(crate::archive::TempPath, super::Downloaded)> {
    let download = b.net.download.as_ref().ok_or_else(|| BuildError::Invalid {
        line,
        message: format!("ADD {url}: this build cannot download files"),
    })?;
    let dir = b.store.root().join("tmp");
    fs_err::create_dir_all(&dir).map_err(BuildError::io(&dir))?;
    let tmp = crate::archive::TempPath::at(
        dir.join(format!("build-add-{}", uuid::Uuid::new_v4().simple())),
    );
    let got = download(url, tmp.path()).map_err(|source| BuildError::Setup {
        what: format!("ADD failed: cannot download {url} (line {line})"),
        source,
    })?;
    if let Some(want) = checksum {
        if want != got.digest {
            return Err(BuildError::Invalid {
                line,
                message: format!(
                    "ADD {url}: digest mismatch: --checksum={want} but the download is {}",
                    got.digest
                ),
            });
        }
    }
    Ok((tmp, got))
}

/// Runs one COPY or ADD (or serves it from the cache).
pub(super) fn dispatch(
    b: &mut Builder<'_>,
    st: &mut StageRun,
    ins: &Instruction,
    c: &Copy,
    add: bool,
) -> Result<()> {
    let esc = b.file.escape;
    let line = ins.line;
    let keyword = if add { "ADD" } else { "COPY" };
    let dest_raw = st.expand(&c.dest, esc, line)?;
    let workdir = st.state.workdir();
    let dest = if dest_raw.starts_with('/') {
        dest_raw.clone()
    } else {
        format!("{}/{dest_raw}", workdir.trim_end_matches('/'))
    };
    let dest = if dest_raw.ends_with('/') || dest_raw == "." || dest_raw.ends_with("/.") {
        format!("{}/", clean_abs(&dest))
    } else {
        clean_abs(&dest)
    };
    let chown = c
        .chown
        .as_deref()
        .map(|v| st.expand(v, esc, line))
        .transpose()?;
    let chmod = c
        .chmod
        .as_deref()
        .map(|v| {
            u32::from_str_radix(v, 8).map_err(|_| BuildError::Invalid {
                line,
                message: format!("invalid chmod parameter: {v}"),
            })
        })
        .transpose()?;
    let from = c
        .from
        .as_deref()
        .map(|f| st.expand(f, esc, line))
        .transpose()?;
    let origin = match &from {
        None => Origin::Context,
        Some(f) => {
            let state = b.source_state(f, line)?;
            Origin::Root(BuildRoot::mount(b.store, &state.layers)?)
        }
    };
    let mut sources = Vec::new();
    let mut urls: Vec<UrlSource> = Vec::new();
    let mut heredocs = Vec::new();
    for s in &c.sources {
        if let Some(name) = s
            .strip_prefix("<<")
            .map(|n| n.trim_start_matches('-').trim_matches(['"', '\'']))
        {
            if let Some(h) = c.heredocs.iter().find(|h| h.name == name) {
                let content = if h.expand {
                    st.expand(
                        &format!("\"{}\"", h.content.replace('"', "\\\"")),
                        esc,
                        line,
                    )?
                } else {
                    h.content.clone()
                };
                heredocs.push((name.to_owned(), content));
                continue;
            }
        }
        let s = st.expand(s, esc, line)?;
        if is_url(&s) && (!add || s.starts_with("git@")) {
            return Err(BuildError::Invalid {
                line,
                message: if add {
                    format!("ADD of a Git repository ({s}) is not supported by berth build: clone it into the context")
                } else {
                    format!("source can't be a URL for COPY: {s} (use ADD to download it)")
                },
            });
        }
        if is_url(&s) {
            let name = url_file_name(&s).ok_or_else(|| BuildError::Invalid {
                line,
                message: format!("cannot determine filename from url: {s}"),
            })?;
            urls.push(UrlSource {
                url: s,
                name,
                fetched: None,
            });
            continue;
        }
        match &origin {
            Origin::Context => sources.extend(b.ctx.resolve(&s)?),
            Origin::Root(r) => sources.extend(resolve_in(&r.rootfs(), &s, None)?),
        }
    }
    let checksum = c
        .checksum
        .as_deref()
        .map(|v| st.expand(v, esc, line))
        .transpose()?;
    if let Some(cs) = &checksum {
        if urls.len() != 1 || !sources.is_empty() || !heredocs.is_empty() {
            return Err(BuildError::Invalid {
                line,
                message: "checksum can't be specified for non-HTTP(S) sources or for more than one source".into(),
            });
        }
        let hex = cs.strip_prefix("sha256:").unwrap_or_default();
        if hex.len() != 64 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(BuildError::Invalid {
                line,
                message: format!(
                    "invalid checksum digest format: {cs} (expected sha256:<64 hex digits>)"
                ),
            });
        }
    } else {
        for u in &mut urls {
            u.fetched = Some(fetch_url(b, &u.url, None, line)?);
        }
    }
    let multiple = sources.len() + urls.len() + heredocs.len() > 1;
    if multiple && !dest.ends_with('/') {
        return Err(BuildError::Invalid {
            line,
            message: format!("When using {keyword} with more than one source file, the destination must be a directory and end with a /"),
        });
    }
    let mut files = match &origin {
        Origin::Context => b.ctx.hash(&sources)?,
        Origin::Root(_) => hash_sources(&sources, None)?,
    };
    if !heredocs.is_empty() || !urls.is_empty() {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update(files.as_bytes());
        for (n, c) in &heredocs {
            h.update(n.as_bytes());
            h.update([0]);
            h.update(c.as_bytes());
        }
        for u in &urls {
            // With --checksum the checksum stands for the content; else what was downloaded.
            let what = match (&checksum, &u.fetched) {
                (Some(cs), _) => cs.clone(),
                (None, Some((_, d))) => format!("{} {:?}", d.digest, d.last_modified),
                (None, None) => String::new(),
            };
            for part in [&u.url, &u.name, &what] {
                h.update(part.as_bytes());
                h.update([0]);
            }
        }
        files = hex::encode(h.finalize());
    }
    let kind = match sources.as_slice() {
        [one] if heredocs.is_empty() && urls.is_empty() && one.host.is_dir() => "dir",
        [_] if heredocs.is_empty() && urls.is_empty() => "file",
        [] if heredocs.is_empty() && urls.len() == 1 => "file",
        _ => "multi",
    };
    let chown_text = chown
        .as_ref()
        .map(|c| format!("--chown={c}"))
        .unwrap_or_default();
    let from_text = from
        .as_ref()
        .map(|f| format!("--from={f} "))
        .unwrap_or_default();
    let created_by =
        format!("/bin/sh -c #(nop) {keyword} {chown_text}{kind}:{files} in {dest_raw} ");
    let inputs = super::cache::KeyInputs {
        parent: st.state.id(),
        // Without the content hash, which goes in `files`, so a miss can say the files changed.
        instruction: format!(
            "{keyword} {from_text}{chown_text}{:?} heredocs={} urls={:?} in {dest} chmod={chmod:?}",
            plan_sources(&sources),
            heredocs.len(),
            urls.iter().map(|u| u.url.as_str()).collect::<Vec<_>>()
        ),
        args: Vec::new(),
        files: Some(files),
    };
    let plan = Plan {
        sources,
        urls,
        checksum,
        heredocs,
        dest,
        chown,
        chmod,
        origin,
        add,
        line,
    };
    b.commit(st, &inputs, &created_by, |b, state| {
        execute(b, state, &plan)
    })
}

fn plan_sources(sources: &[Source]) -> Vec<&str> {
    sources.iter().map(|s| s.rel.as_str()).collect()
}

fn is_archive(path: &Path) -> bool {
    let mut head = [0u8; 262];
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let n = f.read(&mut head).unwrap_or(0);
    let head = &head[..n];
    head.starts_with(&[0x1f, 0x8b])
        || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || (n >= 262 && &head[257..262] == b"ustar")
}

fn execute(
    b: &mut Builder<'_>,
    state: &ImageState,
    plan: &Plan,
) -> Result<Option<(LayerRecord, String)>> {
    let mut root = BuildRoot::mount(b.store, &state.layers)?;
    let rootfs = root.rootfs();
    let owner = match &plan.chown {
        None => None,
        Some(spec) => {
            let (user, group) = spec.split_once(':').unwrap_or((spec, ""));
            let u = berth_runtime::user::resolve_in(&rootfs, user).map_err(|e| {
                BuildError::Invalid {
                    line: plan.line,
                    message: format!("unable to convert uid/gid chown string to host mapping: {e}"),
                }
            })?;
            let gid = if group.is_empty() {
                // Docker: a user alone means the same number as the group.
                u.uid
            } else {
                berth_runtime::user::resolve_in(&rootfs, &format!("{user}:{group}"))
                    .map_err(|e| BuildError::Invalid {
                        line: plan.line,
                        message: format!(
                            "unable to convert uid/gid chown string to host mapping: {e}"
                        ),
                    })?
                    .gid
            };
            Some((u.uid, gid))
        }
    };
    let dest_dir = plan.dest.ends_with('/');
    let dest_host = secure_join(&rootfs, Path::new(plan.dest.trim_end_matches('/')))
        .map_err(|e| BuildError::setup(format!("destination {}", plan.dest))(e.into()))?;
    let w = Writer {
        owner,
        chmod: plan.chmod,
    };
    for (name, content) in &plan.heredocs {
        let target = if dest_dir {
            dest_host.join(name)
        } else {
            dest_host.clone()
        };
        mkdir_all(&rootfs, target.parent().unwrap_or(&rootfs), owner)?;
        replace(&target)?;
        fs_err::write(&target, content).map_err(BuildError::io(&target))?;
        w.finish(&target, 0o644)?;
    }
    for src in &plan.sources {
        let meta = fs_err::symlink_metadata(&src.host).map_err(BuildError::io(&src.host))?;
        if meta.is_dir() {
            mkdir_all(&rootfs, &dest_host, owner)?;
            let entries = match &plan.origin {
                Origin::Context => b.ctx.walk(src)?,
                Origin::Root(_) => walk_plain(src)?,
            };
            for (host, rel) in entries.into_iter().skip(1) {
                let sub = rel
                    .strip_prefix(&src.rel)
                    .unwrap_or(&rel)
                    .trim_start_matches('/');
                let target = secure_join(
                    &rootfs,
                    &Path::new(plan.dest.trim_end_matches('/')).join(sub),
                )
                .map_err(|e| BuildError::setup(format!("destination {}", plan.dest))(e.into()))?;
                w.copy_entry(&host, &target)?;
            }
        } else if plan.add && matches!(plan.origin, Origin::Context) && is_archive(&src.host) {
            mkdir_all(&rootfs, &dest_host, owner)?;
            let f = fs_err::File::open(&src.host).map_err(BuildError::io(&src.host))?;
            let reader = crate::archive::decompressed(std::io::BufReader::new(f))?;
            let mut ar = tar::Archive::new(reader);
            ar.set_preserve_permissions(true);
            ar.set_preserve_mtime(true);
            ar.set_preserve_ownerships(true);
            ar.unpack(&dest_host).map_err(BuildError::io(&src.host))?;
        } else {
            let name = Path::new(&src.rel)
                .file_name()
                .map(PathBuf::from)
                .unwrap_or_default();
            let target = if dest_dir || dest_host.is_dir() {
                dest_host.join(name)
            } else {
                dest_host.clone()
            };
            mkdir_all(&rootfs, target.parent().unwrap_or(&rootfs), owner)?;
            w.copy_entry(&src.host, &target)?;
        }
    }
    for u in &plan.urls {
        let later;
        let (tmp, got) = match &u.fetched {
            Some((tmp, got)) => (tmp.path(), got),
            None => {
                later = fetch_url(b, &u.url, plan.checksum.as_deref(), plan.line)?;
                (later.0.path(), &later.1)
            }
        };
        let target = if dest_dir {
            dest_host.join(&u.name)
        } else {
            dest_host.clone()
        };
        mkdir_all(&rootfs, target.parent().unwrap_or(&rootfs), owner)?;
        replace(&target)?;
        fs_err::copy(tmp, &target).map_err(BuildError::io(&target))?;
        w.finish(&target, 0o600)?;
        if let Some(secs) = got.last_modified.and_then(|s| u64::try_from(s).ok()) {
            let f = fs_err::File::options()
                .write(true)
                .open(&target)
                .map_err(BuildError::io(&target))?;
            f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
                .map_err(BuildError::io(&target))?;
        }
    }
    if let Origin::Root(_) = &plan.origin {
        // The source root is unmounted when the plan drops; nothing to do here.
    }
    root.unmount()?;
    layer::from_upper(b.store, &root.upper(), b.opts.source_date_epoch)
}

fn walk_plain(src: &Source) -> Result<Vec<(PathBuf, String)>> {
    let mut out = vec![(src.host.clone(), src.rel.clone())];
    fn rec(dir: &Path, rel: &str, out: &mut Vec<(PathBuf, String)>) -> Result<()> {
        let mut names: Vec<_> = fs_err::read_dir(dir)
            .map_err(BuildError::io(dir))?
            .filter_map(std::result::Result::ok)
            .map(|e| e.file_name())
            .collect();
        names.sort();
        for n in names {
            let host = dir.join(&n);
            let r = format!("{rel}/{}", n.to_string_lossy());
            out.push((host.clone(), r.clone()));
            if std::fs::symlink_metadata(&host).is_ok_and(|m| m.is_dir()) {
                rec(&host, &r, out)?;
            }
        }
        Ok(())
    }
    if src.host.is_dir() {
        rec(&src.host, &src.rel, &mut out)?;
    }
    Ok(out)
}

/// Removes a non-directory at `target` so a new entry can take its place.
fn replace(target: &Path) -> Result<()> {
    match std::fs::symlink_metadata(target) {
        Ok(m) if !m.is_dir() => fs_err::remove_file(target).map_err(BuildError::io(target)),
        _ => Ok(()),
    }
}

struct Writer {
    owner: Option<(u32, u32)>,
    chmod: Option<u32>,
}

impl Writer {
    fn finish(&self, target: &Path, mode: u32) -> Result<()> {
        let (u, g) = self.owner.unwrap_or((0, 0));
        std::os::unix::fs::lchown(target, Some(u), Some(g)).map_err(BuildError::io(target))?;
        let mode = self.chmod.unwrap_or(mode & 0o7777);
        fs_err::set_permissions(target, std::fs::Permissions::from_mode(mode))
            .map_err(BuildError::io(target))
    }

    /// Copies one entry (not recursing): a directory is created, a file copied, a symlink
    /// re-created; other types are skipped.
    fn copy_entry(&self, host: &Path, target: &Path) -> Result<()> {
        let meta = fs_err::symlink_metadata(host).map_err(BuildError::io(host))?;
        let ft = meta.file_type();
        if ft.is_dir() {
            if !target.is_dir() {
                replace(target)?;
                fs_err::create_dir(target).map_err(BuildError::io(target))?;
            }
            self.finish(target, meta.mode())?;
        } else if ft.is_symlink() {
            let link = fs_err::read_link(host).map_err(BuildError::io(host))?;
            replace(target)?;
            std::os::unix::fs::symlink(&link, target).map_err(BuildError::io(target))?;
            let (u, g) = self.owner.unwrap_or((0, 0));
            std::os::unix::fs::lchown(target, Some(u), Some(g)).map_err(BuildError::io(target))?;
            return Ok(());
        } else if ft.is_file() {
            replace(target)?;
            fs_err::copy(host, target).map_err(BuildError::io(target))?;
            self.finish(target, meta.mode())?;
        } else {
            return Ok(());
        }
        let mtime = std::time::UNIX_EPOCH
            + std::time::Duration::from_secs(u64::try_from(meta.mtime()).unwrap_or(0));
        if let Ok(f) = std::fs::File::open(target) {
            let _ = f.set_modified(mtime);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case("/a/./b/../c/", "/a/c")]
    #[case("/", "/")]
    #[case("/../x", "/x")]
    fn clean(#[case] p: &str, #[case] want: &str) {
        assert_eq!(clean_abs(p), want);
    }

    #[rstest]
    #[case("http://h:8/a/b.tar.gz", Some("b.tar.gz"))]
    #[case("https://h/dir/file%20name.txt?x=1#f", Some("file name.txt"))]
    #[case("https://h/dir/", Some("dir"))]
    #[case("https://h", None)]
    #[case("https://h/", None)]
    #[case("https://h/a%2Fb", None)]
    fn url_file_names_follow_docker(#[case] url: &str, #[case] want: Option<&str>) {
        assert_eq!(url_file_name(url).as_deref(), want);
    }
}
