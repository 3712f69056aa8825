//! Image archives: `save` writes one tar that is both a docker-archive (`manifest.json`,
//! `repositories`, `specs/docker-image/v1.2.md`) and an OCI image layout (`oci-layout`,
//! `index.json`, `blobs/`), `load` reads either flavour, and `import` turns a filesystem tarball
//! into a one-layer image.
//!
//! This module owns the archive formats and the `--change` instruction parser. It calls the
//! [`Store`](crate::store::Store) (blobs in, `add_image`) and [`Reference`](crate::Reference),
//! never the registry protocol or the printer: commands in `commands/` print.
//!
//! Every path inside an archive is hostile. Loading never uses a tar path as a file system path:
//! entries are streamed straight into the store's verified blob ingestion and only their
//! (cleaned) names are kept, as keys.

pub mod change;
mod contents;
pub mod import;
pub mod load;
pub mod save;

use std::io::{self, BufRead, Read, Write};
use std::path::{Path, PathBuf};

use oci_spec::image::Digest;
use sha2::{Digest as _, Sha256};

use crate::reference::ReferenceError;
use crate::store::{Store, StoreError};

/// Result type of the archive module.
pub type Result<T> = std::result::Result<T, ArchiveError>;

/// OCI media types used in archives.
pub mod media {
    /// OCI image manifest.
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// OCI image index.
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// OCI image config.
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    /// Uncompressed OCI layer.
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    /// gzip OCI layer.
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    /// zstd OCI layer.
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    /// Docker schema 2 manifest.
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// Docker manifest list.
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
}

/// `org.opencontainers.image.ref.name`
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// `io.containerd.image.name`: the full reference, as Docker and containerd write it.
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";

/// What can go wrong reading or writing an archive.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The store refused or failed (digest mismatch, hostile layer, I/O).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Reading the input failed (truncated or not a tar).
    #[error("cannot read the archive")]
    Read {
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// The tar structure is broken (not a tar, or cut short).
    #[error("the input is not a tar archive, or it is truncated")]
    Tar {
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// `import` got something that is not a tarball of a file system.
    #[error("the input is not a tar archive of a file system")]
    NotATar {
        /// What the store saw when unpacking it.
        #[source]
        source: StoreError,
    },
    /// Downloading the source of `import` failed.
    #[error("cannot download `{url}`")]
    Download {
        /// The URL.
        url: String,
        /// Cause.
        #[source]
        source: reqwest::Error,
    },
    /// Writing the output failed.
    #[error("cannot write the archive")]
    Write {
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// A local file could not be read or written.
    #[error("I/O error on {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// An entry tries to escape, alias through a link, or is of a type images never contain.
    #[error("refusing archive entry `{entry}`: {reason}")]
    UnsafeEntry {
        /// The entry's name as written in the tar.
        entry: String,
        /// Why.
        reason: String,
    },
    /// An entry is shorter than its header says.
    #[error("truncated archive: `{entry}` ends after {got} of {expected} bytes")]
    Truncated {
        /// The entry.
        entry: String,
        /// Bytes read.
        got: u64,
        /// Bytes promised.
        expected: u64,
    },
    /// Neither `manifest.json` nor `index.json`.
    #[error("not an image archive: {reason}")]
    NotAnArchive {
        /// What was found instead.
        reason: String,
    },
    /// The input is compressed with something we cannot read.
    #[error("the archive is compressed with {format}, which is not supported")]
    Compression {
        /// `bzip2`, `xz`.
        format: &'static str,
    },
    /// A file the archive's metadata points at is not in the archive.
    #[error("`{path}` (referenced by `{referenced_by}`) is missing from the archive")]
    Missing {
        /// The missing path.
        path: String,
        /// Which metadata file named it.
        referenced_by: String,
    },
    /// A JSON document is malformed.
    #[error("`{path}` is not a valid {what}")]
    Json {
        /// Path in the archive.
        path: String,
        /// `docker-archive manifest`, `image config`, …
        what: &'static str,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
    /// Metadata is well-formed JSON but inconsistent.
    #[error("invalid {what} `{path}`: {reason}")]
    Invalid {
        /// Path in the archive (or image).
        path: String,
        /// Kind of document.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A blob's content does not hash to the digest that names it.
    #[error("digest mismatch for `{path}`: expected {expected}, got {actual}")]
    DigestMismatch {
        /// Path in the archive.
        path: String,
        /// Digest in the descriptor or file name.
        expected: String,
        /// Digest of the content.
        actual: String,
    },
    /// A blob's size differs from its descriptor's.
    #[error("size mismatch for `{path}`: descriptor says {expected} bytes, archive has {actual}")]
    SizeMismatch {
        /// Path in the archive.
        path: String,
        /// Descriptor size.
        expected: u64,
        /// Actual size.
        actual: u64,
    },
    /// No manifest in an index matches the platform.
    #[error("no image for platform {platform} in `{path}`")]
    Platform {
        /// The index.
        path: String,
        /// `linux/amd64`.
        platform: String,
    },
    /// A reference (tag) is invalid.
    #[error("invalid reference `{input}`")]
    Reference {
        /// The text.
        input: String,
        /// Cause.
        #[source]
        source: ReferenceError,
    },
    /// A `--change` instruction is invalid.
    #[error(transparent)]
    Change(#[from] change::ChangeError),
    /// A `--platform` value is invalid.
    #[error("invalid platform `{0}`: expected os[/arch[/variant]]")]
    PlatformSyntax(String),
    /// `save` would write binary data to a terminal.
    #[error("cowardly refusing to save to a terminal. Use the -o flag or redirect")]
    Terminal,
}

impl ArchiveError {
    /// An [`anyhow::Error`] whose chain holds the store's own error when there is one, so the
    /// binary's hints (`berth_client::hints`) find it.
    #[must_use]
    pub fn into_anyhow(self) -> anyhow::Error {
        match self {
            Self::Store(e) => anyhow::Error::new(e),
            other => anyhow::Error::new(other),
        }
    }
}

/// A platform: `os[/arch[/variant]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `linux`
    pub os: String,
    /// GOARCH spelling: `amd64`, `arm64`, …
    pub architecture: String,
    /// `v8`, `v7`, …
    pub variant: Option<String>,
}

impl Platform {
    /// The platform this binary runs on (Go's spelling, as images use it).
    #[must_use]
    pub fn host() -> Self {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "x86" => ("386", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" => ("arm", Some("v7")),
            "powerpc64" => ("ppc64le", None),
            "loongarch64" => ("loong64", None),
            other => (other, None),
        };
        Self {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: variant.map(Into::into),
        }
    }

    /// Parses `os[/arch[/variant]]`; a missing architecture is the host's.
    ///
    /// # Errors
    /// [`ArchiveError::PlatformSyntax`].
    pub fn parse(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok = |p: &str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if parts.len() > 3 || !parts.iter().all(|p| ok(p)) {
            return Err(ArchiveError::PlatformSyntax(s.to_owned()));
        }
        let host = Self::host();
        let os = parts[0].to_ascii_lowercase();
        Ok(match parts.len() {
            1 => Self { os, ..host },
            _ => Self {
                os,
                architecture: parts[1].to_ascii_lowercase(),
                variant: parts.get(2).map(|v| v.to_ascii_lowercase()),
            },
        })
    }

    /// True when an index entry's `platform` fits this one (a missing variant fits any).
    #[must_use]
    pub fn matches(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        self.os == os
            && self.architecture == architecture
            && match (&self.variant, variant) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// Wraps `input` in a decompressor chosen by its first bytes (gzip, zstd or none).
///
/// # Errors
/// [`ArchiveError::Compression`] for bzip2 and xz, [`ArchiveError::Read`] on I/O errors.
pub fn decompressed<'a, R: BufRead + 'a>(mut input: R) -> Result<Box<dyn Read + 'a>> {
    let head = input
        .fill_buf()
        .map_err(|source| ArchiveError::Read { source })?;
    let head = head.get(..6).unwrap_or(head).to_vec();
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(input))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(
            zstd::stream::read::Decoder::with_buffer(input)
                .map_err(|source| ArchiveError::Read { source })?,
        )
    } else if head.starts_with(b"BZh") {
        return Err(ArchiveError::Compression { format: "bzip2" });
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        return Err(ArchiveError::Compression { format: "xz" });
    } else {
        Box::new(input)
    })
}

/// A file that is removed on drop unless [`TempPath::persist`] renamed it into place.
#[derive(Debug)]
pub struct TempPath {
    path: PathBuf,
    armed: bool,
}

impl TempPath {
    /// A fresh name beside `target` (same directory, so the final rename is atomic).
    #[must_use]
    pub fn beside(target: &Path) -> Self {
        let dir = target.parent().filter(|d| !d.as_os_str().is_empty());
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = format!(".{name}.berth-tmp-{}", uuid::Uuid::new_v4().simple());
        Self::at(dir.map_or_else(|| PathBuf::from(&tmp), |d| d.join(&tmp)))
    }

    /// Takes responsibility for `path`.
    #[must_use]
    pub fn at(path: PathBuf) -> Self {
        Self { path, armed: true }
    }

    /// The path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the file to `target`.
    ///
    /// # Errors
    /// [`ArchiveError::Io`] when the rename fails (the file is then removed).
    pub fn persist(mut self, target: &Path) -> Result<()> {
        std::fs::rename(&self.path, target).map_err(|source| ArchiveError::Io {
            path: target.to_owned(),
            source,
        })?;
        self.armed = false;
        Ok(())
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Blobs this operation added to the store. When it ends (successfully or not) those that no
/// image record references are removed again, so a failed or partial load leaves nothing behind
/// and metadata files of an archive do not linger as blobs. A blob an image record references
/// (this operation's or another `berth`'s) is kept.
#[derive(Debug)]
pub struct NewBlobs<'s> {
    store: &'s Store,
    added: Vec<Digest>,
}

impl<'s> NewBlobs<'s> {
    /// Tracks nothing yet.
    #[must_use]
    pub fn new(store: &'s Store) -> Self {
        Self {
            store,
            added: Vec::new(),
        }
    }

    /// Records `d` as added by this operation when `existed` is false.
    pub fn note(&mut self, d: &Digest, existed: bool) {
        if !existed && !self.added.contains(d) {
            self.added.push(d.clone());
        }
    }
}

impl Drop for NewBlobs<'_> {
    fn drop(&mut self) {
        if self.added.is_empty() {
            return;
        }
        let Ok(_lock) = self.store.lock() else { return };
        let Ok(images) = self.store.images() else {
            return;
        };
        for d in &self.added {
            let s = d.to_string();
            let used = images
                .iter()
                .any(|i| i.id == s || i.manifest == s || i.layers.iter().any(|l| l.digest == s));
            if !used {
                let _ = std::fs::remove_file(self.store.blob_path(d));
            }
        }
    }
}

/// A writer that hashes (sha256) and counts what passes through.
pub(crate) struct HashingWriter<W> {
    pub(crate) inner: W,
    pub(crate) hasher: Sha256,
    pub(crate) written: u64,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            written: 0,
        }
    }

    /// The digest of everything written so far.
    pub(crate) fn digest(&self) -> Digest {
        sha256_digest(self.hasher.clone().finalize().as_slice())
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// `sha256:<hex>` from a raw hash.
pub(crate) fn sha256_digest(raw: &[u8]) -> Digest {
    format!("sha256:{}", hex::encode(raw))
        .parse()
        .expect("valid sha256 digest")
}

/// Stores `data` as a blob, noting whether it is new.
pub(crate) fn put_blob(store: &Store, new: &mut NewBlobs<'_>, data: &[u8]) -> Result<Digest> {
    let d = sha256_digest(Sha256::digest(data).as_slice());
    let existed = store.has_blob(&d);
    let stored = store.put_blob(data)?;
    new.note(&stored, existed);
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case("linux/amd64", "linux", "amd64", None)]
    #[case("linux/arm64/v8", "linux", "arm64", Some("v8"))]
    #[case("LINUX/ARM/v7", "linux", "arm", Some("v7"))]
    fn platforms(
        #[case] input: &str,
        #[case] os: &str,
        #[case] arch: &str,
        #[case] variant: Option<&str>,
    ) {
        let p = Platform::parse(input).unwrap();
        assert_eq!(
            (p.os.as_str(), p.architecture.as_str(), p.variant.as_deref()),
            (os, arch, variant)
        );
    }

    #[rstest]
    #[case("")]
    #[case("linux//amd64")]
    #[case("a/b/c/d")]
    #[case("linux/amd 64")]
    fn bad_platforms(#[case] input: &str) {
        assert!(Platform::parse(input).is_err());
    }

    #[test]
    fn os_alone_takes_the_host_architecture() {
        let p = Platform::parse("linux").unwrap();
        assert_eq!(p.architecture, Platform::host().architecture);
    }
}
