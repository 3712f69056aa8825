//! `berth build URL`: contexts from Git repositories and HTTP(S) URLs, as Docker takes them, and
//! the downloader of `ADD <url>`.
//!
//! - A Git URL (`git://…`, `git@…`, `github.com/…`, or an http(s) URL whose path ends in
//!   `.git`), with an optional `#REF[:SUBDIR]` fragment, is cloned with the `git` on `PATH`
//!   (shallow, submodules included, no credential prompts) into scratch space; `SUBDIR` (which
//!   must stay inside the clone) becomes the context.
//! - Any other http(s) URL is downloaded: a tar (plain, gzip or zstd) is the context; anything
//!   else is the Dockerfile, with an empty context.
//!
//! Both go through scratch space under the store's `tmp/` that the context removes when the
//! build ends. May call `crate::build::context` and `crate::remote` (the user agent).

use std::path::{Component, Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;

use crate::build::context::Context;
use crate::build::Downloaded;
use crate::remote;

/// A build context named by URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteContext {
    /// A Git repository: clone URL, ref (branch, tag or commit) and sub-directory.
    Git {
        /// What `git clone` is given.
        url: String,
        /// `#REF`.
        reference: Option<String>,
        /// `#REF:SUBDIR`.
        subdir: Option<String>,
    },
    /// A tar or a Dockerfile over HTTP(S).
    Http(String),
}

/// What a remote context gave.
pub enum Fetched {
    /// A directory to build (removed on drop unless turned into a context).
    Dir(Scratch),
    /// A Dockerfile, with no context.
    Dockerfile(String),
}

/// A directory berth made; removed on drop unless [`Scratch::keep`] hands it to a context.
pub struct Scratch(Option<PathBuf>);

impl Scratch {
    /// The directory.
    #[must_use]
    pub fn root(&self) -> &Path {
        self.0.as_deref().unwrap_or(Path::new(""))
    }

    /// The build context over this directory (which it removes when done); `keep` is the
    /// Dockerfile's name, kept even if `.dockerignore` names it.
    ///
    /// # Errors
    /// As [`Context::owned_dir`].
    pub fn keep(mut self, keep: Option<&str>) -> anyhow::Result<Context> {
        let root = self.0.take().context("the scratch directory is gone")?;
        Ok(Context::owned_dir(&root, keep)?)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

impl RemoteContext {
    /// `None` when `context` is not a URL (a directory or `-`).
    #[must_use]
    pub fn parse(context: &str) -> Option<Self> {
        let http = context.starts_with("http://") || context.starts_with("https://");
        let (base, fragment) = match context.split_once('#') {
            Some((b, f)) => (b, Some(f)),
            None => (context, None),
        };
        let git = context.starts_with("git://")
            || context.starts_with("git@")
            || context.starts_with("github.com/")
            || (http && base.ends_with(".git"));
        if git {
            let url = if base.starts_with("github.com/") {
                format!("https://{base}")
            } else {
                base.to_owned()
            };
            let (reference, subdir) = match fragment {
                Some(f) => match f.split_once(':') {
                    Some((r, d)) => (Some(r), Some(d)),
                    None => (Some(f), None),
                },
                None => (None, None),
            };
            let nonempty = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_owned);
            return Some(Self::Git {
                url,
                reference: nonempty(reference),
                subdir: nonempty(subdir),
            });
        }
        http.then(|| Self::Http(context.to_owned()))
    }

    /// Clones or downloads into `scratch`.
    ///
    /// # Errors
    /// `git` missing or failing, a sub-directory outside the clone, a failed download.
    pub async fn fetch(&self, scratch: &Path) -> anyhow::Result<Fetched> {
        match self {
            Self::Git {
                url,
                reference,
                subdir,
            } => {
                let (url, reference, subdir, scratch) = (
                    url.clone(),
                    reference.clone(),
                    subdir.clone(),
                    scratch.to_owned(),
                );
                tokio::task::spawn_blocking(move || {
                    clone(&url, reference.as_deref(), subdir.as_deref(), &scratch)
                })
                .await?
                .map(Fetched::Dir)
            }
            Self::Http(url) => {
                let parent = scratch.parent().context("no scratch directory")?;
                fs_err::create_dir_all(parent)?;
                let file = parent.join(format!(
                    "{}.download",
                    scratch.file_name().unwrap_or_default().to_string_lossy()
                ));
                let http = client()?;
                let result = download(&http, url, &file).await;
                let fetched = result.and_then(|_| {
                    let mut head = [0u8; 512];
                    let n = std::io::Read::read(&mut fs_err::File::open(&file)?, &mut head)?;
                    if super::build::is_tar(&head[..n]) {
                        // Unpacked (entries kept inside), then handed on as scratch: the context
                        // is made again once the Dockerfile's name is known.
                        let c = Context::tar(fs_err::File::open(&file)?, scratch, None)?;
                        Ok(Fetched::Dir(Scratch(Some(c.release()))))
                    } else {
                        let text = fs_err::read_to_string(&file).with_context(|| {
                            format!("`{url}` is neither a tar archive nor a text Dockerfile")
                        })?;
                        Ok(Fetched::Dockerfile(text))
                    }
                });
                let _ = std::fs::remove_file(&file);
                fetched
            }
        }
    }
}

/// `git clone` of `url` at `reference` into `scratch` (its `subdir` only).
fn clone(
    url: &str,
    reference: Option<&str>,
    subdir: Option<&str>,
    scratch: &Path,
) -> anyhow::Result<Scratch> {
    if let Some(d) = subdir {
        anyhow::ensure!(
            Path::new(d)
                .components()
                .all(|c| matches!(c, Component::Normal(_) | Component::CurDir)),
            "the sub-directory `{d}` of a Git context must be a relative path inside the repository"
        );
    }
    if let Some(r) = reference {
        // Never an option to git (`#--upload-pack=…`).
        anyhow::ensure!(
            !r.starts_with('-'),
            "the Git reference `{r}` is not a branch, tag or commit"
        );
    }
    let checkout = scratch.with_extension("git");
    let _ = std::fs::remove_dir_all(&checkout);
    let cleanup = Scratch(Some(checkout.clone()));
    let git = |args: &[&str], dir: Option<&Path>| -> anyhow::Result<()> {
        let mut c = Command::new("git");
        c.args(args).env("GIT_TERMINAL_PROMPT", "0");
        if let Some(d) = dir {
            c.current_dir(d);
        }
        let out = c.output().map_err(|e| {
            anyhow::anyhow!("cannot run git ({e}): building from a Git URL needs git on PATH (apt-get install git)")
        })?;
        anyhow::ensure!(
            out.status.success(),
            "unable to prepare context: git {}: {}",
            args.first().copied().unwrap_or(""),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(())
    };
    let dest = checkout.to_string_lossy().into_owned();
    let mut shallow = vec!["clone", "--quiet", "--depth", "1", "--recurse-submodules"];
    if let Some(r) = reference {
        shallow.extend(["--branch", r]);
    }
    shallow.extend(["--", url, dest.as_str()]);
    if git(&shallow, None).is_err() {
        // A commit ID is not a branch: clone everything, then check it out.
        let _ = std::fs::remove_dir_all(&checkout);
        git(
            &["clone", "--quiet", "--recurse-submodules", "--", url, &dest],
            None,
        )?;
        if let Some(r) = reference {
            git(&["checkout", "--quiet", r, "--"], Some(&checkout))?;
            git(
                &["submodule", "--quiet", "update", "--init", "--recursive"],
                Some(&checkout),
            )?;
        }
    }
    let root = fs_err::canonicalize(&checkout)?;
    let chosen = match subdir {
        Some(d) => fs_err::canonicalize(root.join(d))
            .with_context(|| format!("the Git context has no sub-directory `{d}`"))?,
        None => root.clone(),
    };
    anyhow::ensure!(
        chosen.starts_with(&root) && chosen.is_dir(),
        "the sub-directory of a Git context must be a directory inside the repository"
    );
    let _ = std::fs::remove_dir_all(scratch);
    fs_err::rename(&chosen, scratch)?;
    drop(cleanup);
    // The clone's own metadata is not part of the context.
    let _ = std::fs::remove_dir_all(scratch.join(".git"));
    Ok(Scratch(Some(scratch.to_owned())))
}

/// The HTTP client of remote contexts and `ADD <url>`: proxies from the environment, berth's
/// user agent.
fn client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(remote::user_agent())
        .connect_timeout(std::time::Duration::from_secs(15))
        .read_timeout(std::time::Duration::from_secs(120))
        .build()
        .context("cannot set up the HTTP client")
}

/// The `ADD <url>` downloader: a plain HTTP client (proxies from `HTTP_PROXY`, `HTTPS_PROXY`
/// and `NO_PROXY`, as the registry client's; berth's user agent), run from the synchronous build
/// on this thread.
pub fn downloader() -> anyhow::Result<impl Fn(&str, &Path) -> anyhow::Result<Downloaded>> {
    let http = client()?;
    let handle = tokio::runtime::Handle::current();
    Ok(move |url: &str, dest: &Path| {
        tokio::task::block_in_place(|| handle.block_on(download(&http, url, dest)))
    })
}

/// Seconds since the epoch of an HTTP date (`Sun, 13 Sep 2020 12:26:40 GMT`).
fn http_date(v: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc2822(v)
        .ok()
        .map(|t| t.timestamp())
}

/// Downloads `url` into `dest`: its digest and `Last-Modified`.
async fn download(http: &reqwest::Client, url: &str, dest: &Path) -> anyhow::Result<Downloaded> {
    use sha2::Digest as _;
    let mut resp = http
        .get(url)
        .send()
        .await
        .with_context(|| format!("failed to GET {url}"))?;
    let status = resp.status();
    if !status.is_success() {
        // The start of the error page only: a server cannot make the build buffer more.
        let mut head = Vec::new();
        while head.len() < 1024 {
            match resp.chunk().await {
                Ok(Some(c)) => head.extend_from_slice(&c),
                _ => break,
            }
        }
        let body: String = String::from_utf8_lossy(&head).chars().take(200).collect();
        anyhow::bail!("failed to GET {url} with status {status}: {}", body.trim());
    }
    let last_modified = resp
        .headers()
        .get(reqwest::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(http_date);
    let mut file = std::io::BufWriter::new(fs_err::File::create(dest)?);
    let mut hash = sha2::Sha256::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .with_context(|| format!("failed to read {url}"))?
    {
        hash.update(&chunk);
        std::io::Write::write_all(&mut file, &chunk)?;
    }
    std::io::Write::flush(&mut file)?;
    Ok(Downloaded {
        digest: format!("sha256:{}", hex::encode(hash.finalize())),
        last_modified,
    })
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_modified_parses_as_http_dates() {
        assert_eq!(
            http_date("Sun, 13 Sep 2020 12:26:40 GMT"),
            Some(1_600_000_000)
        );
        assert_eq!(http_date("yesterday"), None);
    }

    #[test]
    fn option_like_references_never_reach_git() {
        let dir = std::env::temp_dir().join(format!("berth-url-test-{}", std::process::id()));
        let err = clone(
            "https://h/r.git",
            Some("--upload-pack=touch /x"),
            None,
            &dir,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("not a branch, tag or commit"), "{err}");
        let err = clone("https://h/r.git", None, Some("../up"), &dir)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("inside the repository"), "{err}");
    }

    #[test]
    fn urls_are_told_apart_as_docker_does() {
        let git = |url: &str, r: Option<&str>, d: Option<&str>| RemoteContext::Git {
            url: url.into(),
            reference: r.map(Into::into),
            subdir: d.map(Into::into),
        };
        assert_eq!(RemoteContext::parse("."), None);
        assert_eq!(RemoteContext::parse("-"), None);
        assert_eq!(RemoteContext::parse("dir/with#hash"), None);
        assert_eq!(
            RemoteContext::parse("https://h/ctx.tar.gz"),
            Some(RemoteContext::Http("https://h/ctx.tar.gz".into()))
        );
        assert_eq!(
            RemoteContext::parse("https://h/r.git#v1:sub/dir"),
            Some(git("https://h/r.git", Some("v1"), Some("sub/dir")))
        );
        assert_eq!(
            RemoteContext::parse("github.com/o/r#:docker"),
            Some(git("https://github.com/o/r", None, Some("docker")))
        );
        assert_eq!(
            RemoteContext::parse("git@host:o/r.git#main"),
            Some(git("git@host:o/r.git", Some("main"), None))
        );
    }
}
